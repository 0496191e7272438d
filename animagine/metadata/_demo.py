"""The JSON the official Animagine gradio demos save with their images (read only).

The 3.0 and 3.1 spaces save it in a ``metadata`` PNG chunk; the 4.0-era ``utils.save_image``
puts it in the ``parameters`` chunk, where A1111 tools expect infotext. Its ``prompt`` already
holds the quality and style tags; the preset names (``sdxl_style`` or ``style_preset``,
``quality_tags``) are read into :attr:`GenerationParameters.style` and ``quality`` and also kept
in ``extra`` as the demo wrote them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from animagine.errors import MetadataError
from animagine.metadata._records import GenerationParameters, HiresParameters, infer_version

__all__ = ["from_demo_json"]

_DEMO_SIZE: Final = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*")
_DEMO_REQUIRED: Final = (
    "prompt",
    "negative_prompt",
    "resolution",
    "guidance_scale",
    "num_inference_steps",
    "seed",
    "sampler",
)


def _demo_int(key: str, value: object) -> int:
    # gradio sliders can hand back 28.0 for 28.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{key!r} must be an integer, got {value!r}")


def _demo_number(key: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{key!r} must be a number, got {value!r}")


def _demo_str(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"{key!r} must be a string, got {value!r}")


def from_demo_json(data: Mapping[str, Any]) -> GenerationParameters:
    """Read the JSON the official Animagine gradio demos save with their images.

    Keys (cagliostrolab 3.0 ``app.py``, 3.1 space ``app.py``, 4.0-era ``app.py``): ``prompt``,
    ``negative_prompt``, ``resolution`` ("832 x 1216"), ``guidance_scale``,
    ``num_inference_steps``, ``seed``, ``sampler``, ``use_upscaler`` (null or
    ``{upscale_method, upscaler_strength, upscale_by, new_resolution}``) and the model as
    ``"Model": {"Model": name, "Model hash": hash}`` (3.1, only when the upscaler was off),
    flat ``"Model"`` and ``"Model hash"`` (4.0-era) or a lowercase ``"model"`` name (the 3.1
    space: ``"Animagine XL 3.1"``, which gives the version); the rest (``sdxl_style``,
    ``style_preset``, ``quality_tags``, ``add_quality_tags``, ``use_lora``) goes to ``extra``,
    and the preset names also to ``style`` and ``quality``.
    """
    for key in _DEMO_REQUIRED:
        if key not in data:
            raise MetadataError(f"not the Animagine demo's JSON: missing key {key!r}")
    try:
        resolution = _demo_str("resolution", data["resolution"])
        match = _DEMO_SIZE.fullmatch(resolution)
        if match is None:
            raise ValueError(f"'resolution' is not 'WIDTH x HEIGHT': {resolution!r}")
        model_info = data.get("Model", data.get("model"))
        model_hash = data.get("Model hash")
        if isinstance(model_info, Mapping):
            model = model_info.get("Model", "")
            model_hash = model_info.get("Model hash", model_hash)
        elif model_info is None:
            model = ""
        else:
            model = model_info
        model = _demo_str("Model", model)
        if model_hash is not None:
            model_hash = _demo_str("Model hash", model_hash)
        upscaler = data.get("use_upscaler")
        hires = None
        if upscaler is not None:
            if not isinstance(upscaler, Mapping):
                raise TypeError(f"'use_upscaler' must be an object or null, got {upscaler!r}")
            method = _demo_str("upscale_method", upscaler.get("upscale_method", "nearest-exact"))
            hires = HiresParameters(
                scale=_demo_number("upscale_by", upscaler.get("upscale_by")),
                strength=_demo_number("upscaler_strength", upscaler.get("upscaler_strength")),
                upscaler=f"Latent ({method})",
            )
        used = {*_DEMO_REQUIRED, "Model", "Model hash", "model", "use_upscaler"}
        style = data.get("sdxl_style", data.get("style_preset"))
        quality = data.get("quality_tags")
        extra = {
            key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            for key, value in data.items()
            if key not in used and value is not None
        }
        return GenerationParameters(
            prompt=_demo_str("prompt", data["prompt"]),
            negative_prompt=_demo_str("negative_prompt", data["negative_prompt"]),
            steps=_demo_int("num_inference_steps", data["num_inference_steps"]),
            sampler=_demo_str("sampler", data["sampler"]),
            guidance_scale=_demo_number("guidance_scale", data["guidance_scale"]),
            seed=_demo_int("seed", data["seed"]),
            width=int(match.group(1)),
            height=int(match.group(2)),
            model=model,
            version=infer_version(model),
            model_hash=model_hash,
            hires=hires,
            extra=extra,
            style=None if style is None else _demo_str("style", style) or None,
            quality=None if quality is None else _demo_str("quality_tags", quality) or None,
        )
    except (TypeError, ValueError, RecursionError) as error:
        raise MetadataError(f"unreadable Animagine demo JSON: {error}") from error
