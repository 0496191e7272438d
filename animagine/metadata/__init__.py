"""Generation parameters and the image metadata that carries them (imports only the core).

- :class:`GenerationParameters` and :class:`HiresParameters`: the records, checked when made;
  to and from A1111's infotext and our JSON (``JSON_FORMAT``); the infotext keys of the prompt's
  template and presets (``TEMPLATE_KEY``, ``STYLE_KEY``, ``QUALITY_KEY``);
- :func:`read_parameters`: the parameters of an image file or PIL image, from our ``animagine``
  PNG chunk, A1111's ``parameters`` chunk or Exif, or the official demo's JSON;
- :func:`write_png` and :func:`png_info`: save an image with both of our chunks;
- :func:`from_demo_json` (the official demos' JSON), :func:`infotext_pairs` (the ``key: value``
  pairs of an A1111 parameters line, read in linear time), :func:`split_infotext` (an infotext
  as prompt, negative prompt and values: :class:`Infotext`) and :func:`repair_latin1` (UTF-8
  text that a PNG declared Latin-1).

Reading and writing images needs Pillow, imported on first use.
"""

from __future__ import annotations

from animagine.metadata._demo import from_demo_json
from animagine.metadata._infotext import VERSION_KEY, Infotext, repair_latin1
from animagine.metadata._infotext import pairs as infotext_pairs
from animagine.metadata._infotext import split as split_infotext
from animagine.metadata._png import (
    ANIMAGINE_CHUNK,
    DEMO_CHUNK,
    PARAMETERS_CHUNK,
    png_info,
    read_parameters,
    verify_png,
    write_png,
)
from animagine.metadata._records import (
    JSON_FORMAT,
    QUALITY_KEY,
    STYLE_KEY,
    TEMPLATE_KEY,
    GenerationParameters,
    HiresParameters,
)

__all__ = [
    "ANIMAGINE_CHUNK",
    "DEMO_CHUNK",
    "JSON_FORMAT",
    "PARAMETERS_CHUNK",
    "QUALITY_KEY",
    "STYLE_KEY",
    "TEMPLATE_KEY",
    "VERSION_KEY",
    "GenerationParameters",
    "HiresParameters",
    "Infotext",
    "from_demo_json",
    "infotext_pairs",
    "png_info",
    "read_parameters",
    "repair_latin1",
    "split_infotext",
    "verify_png",
    "write_png",
]
