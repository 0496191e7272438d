"""Limits shared by every layer: what a seed can be, how big an image may get.

These are the figures that validation everywhere checks against; each one is defined here once.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_GUIDANCE",
    "MAX_HIRES_SCALE",
    "MAX_IMAGES",
    "MAX_SEED",
    "MAX_SIZE",
    "MAX_STEPS",
    "MIN_SIZE",
]

#: Largest seed: seeds are unsigned 64-bit integers (``torch.Generator.manual_seed`` takes them).
MAX_SEED: Final = 2**64 - 1
#: Smallest and largest image side accepted, in pixels (multiples of 8). Animagine was trained on
#: the buckets of :attr:`animagine.ModelVersion.resolutions`; sizes far from them give poor images.
MIN_SIZE: Final = 64
MAX_SIZE: Final = 4096
#: Most sampling steps of one pass.
MAX_STEPS: Final = 200
#: Largest classifier-free guidance scale.
MAX_GUIDANCE: Final = 30.0
#: Most images of one call.
MAX_IMAGES: Final = 64
#: Largest hires-fix upscale factor.
MAX_HIRES_SCALE: Final = 4.0
