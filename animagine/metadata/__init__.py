"""Generation parameters and the image metadata that carries them (imports only the core)."""

from __future__ import annotations

from animagine.metadata._records import (
    ANIMAGINE_CHUNK,
    DEMO_CHUNK,
    PARAMETERS_CHUNK,
    GenerationParameters,
    HiresParameters,
    png_info,
    read_parameters,
    write_png,
)

__all__ = [
    "ANIMAGINE_CHUNK",
    "DEMO_CHUNK",
    "PARAMETERS_CHUNK",
    "GenerationParameters",
    "HiresParameters",
    "png_info",
    "read_parameters",
    "write_png",
]
