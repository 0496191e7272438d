"""Generation parameters and the image metadata that carries them (imports only the core).

- :class:`GenerationParameters` and :class:`HiresParameters`: the records, checked when made;
  to and from A1111's infotext and our JSON (``JSON_FORMAT``);
- :func:`read_parameters`: the parameters of an image file or PIL image, from our ``animagine``
  PNG chunk, A1111's ``parameters`` chunk or Exif, or the official demo's JSON;
- :func:`write_png` and :func:`png_info`: save an image with both of our chunks.

Reading and writing images needs Pillow, imported on first use.
"""

from __future__ import annotations

from animagine.metadata._infotext import VERSION_KEY
from animagine.metadata._png import (
    ANIMAGINE_CHUNK,
    DEMO_CHUNK,
    PARAMETERS_CHUNK,
    png_info,
    read_parameters,
    write_png,
)
from animagine.metadata._records import JSON_FORMAT, GenerationParameters, HiresParameters

__all__ = [
    "ANIMAGINE_CHUNK",
    "DEMO_CHUNK",
    "JSON_FORMAT",
    "PARAMETERS_CHUNK",
    "VERSION_KEY",
    "GenerationParameters",
    "HiresParameters",
    "png_info",
    "read_parameters",
    "write_png",
]
