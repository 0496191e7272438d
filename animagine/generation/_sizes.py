"""Image sizes: the version's trained buckets by name, ratio or size."""

from __future__ import annotations

import math
import re
from typing import Final

from animagine.core import ModelVersion
from animagine.errors import GenerationArgumentError, GenerationTypeError

__all__ = ["aspect_size"]


def _reduced(width: int, height: int) -> tuple[int, int]:
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


#: Conventional aspect-ratio labels and the trained bucket each one means (the labels UIs give
#: SDXL's buckets; 832x1216 is 13:19 exactly and "2:3" by convention).
_NOMINAL_RATIOS: Final = {
    (1, 1): (1024, 1024),
    (4, 3): (1152, 896),
    (3, 4): (896, 1152),
    (3, 2): (1216, 832),
    (2, 3): (832, 1216),
    (16, 9): (1344, 768),
    (9, 16): (768, 1344),
    (21, 9): (1536, 640),
    (9, 21): (640, 1536),
}
_NOMINAL_BY_RATIO: Final = {_reduced(*label): size for label, size in _NOMINAL_RATIOS.items()}
_RATIO: Final = re.compile(r"\s*(\d+)\s*([:x/])\s*(\d+)\s*")


def aspect_size(aspect: object, version: ModelVersion) -> tuple[int, int]:
    """The bucket for an aspect name, ratio or ``WxH`` string (see :meth:`Generator.__call__`)."""
    if not isinstance(aspect, str):
        raise GenerationTypeError(f"aspect must be a str, got {type(aspect).__name__}: {aspect!r}")
    resolutions = version.resolutions
    portrait = (version.defaults.width, version.defaults.height)
    names = {
        "portrait": portrait,
        "landscape": (portrait[1], portrait[0]),
        "square": (1024, 1024),
    }
    key = aspect.strip().lower()
    if key in names:
        return names[key]
    match = _RATIO.fullmatch(key)
    if match is not None and int(match[1]) > 0 and int(match[3]) > 0:
        first, second = int(match[1]), int(match[3])
        if match[2] == "x":
            if (first, second) in resolutions:
                return first, second
        else:
            ratio = _reduced(first, second)
            for size in resolutions:
                if _reduced(*size) == ratio:
                    return size
            nominal = _NOMINAL_BY_RATIO.get(ratio)
            if nominal is not None and nominal in resolutions:
                return nominal
    exact = ", ".join(f"{w}:{h}" for w, h in (_reduced(*size) for size in resolutions))
    sizes = ", ".join(f"{w}x{h}" for w, h in resolutions)
    labels = ", ".join(
        f"{w}:{h}" for (w, h), size in _NOMINAL_RATIOS.items() if size in resolutions
    )
    raise GenerationArgumentError(
        f"aspect={aspect!r} is not one of {version.title}'s buckets; use 'portrait', 'landscape',"
        f" 'square', a bucket size ({sizes}), its exact ratio ({exact}) or a conventional label"
        f" ({labels}); for other sizes pass width= and height="
    )
