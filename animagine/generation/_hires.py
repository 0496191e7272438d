"""The hires fix: latent upscalers by their A1111 names, and the checked plan of a second pass."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Final

import attrs

from animagine.errors import GenerationArgumentError, GenerationTypeError
from animagine.generation._checks import int_argument, number_argument
from animagine.limits import MAX_HIRES_SCALE, MAX_SIZE, MAX_STEPS
from animagine.metadata import HiresParameters

__all__ = [
    "DEMO_HIRES_STRENGTH",
    "DEMO_HIRES_UPSCALER",
    "HIRES_UPSCALERS",
    "Upscaler",
    "check_hires",
    "hires_size",
    "to_hires",
    "upscaler_named",
]

#: The official demo's hires-fix settings: ``upscale_by=1.5``, ``upscaler_strength=0.55``,
#: latents upscaled with ``nearest-exact``.
DEMO_HIRES_STRENGTH: Final = 0.55
DEMO_HIRES_UPSCALER: Final = "Latent (nearest-exact)"


@attrs.frozen
class Upscaler:
    name: str
    mode: str
    antialias: bool = False


#: A1111's latent upscalers (``latent_upscale_modes``) and the ``torch.nn.functional.interpolate``
#: mode of each; ``Latent (bilinear)`` is how the demo's JSON (``upscale_method``) reads back.
_UPSCALER_TABLE: Final = (
    Upscaler("Latent", "bilinear"),
    Upscaler("Latent (antialiased)", "bilinear", antialias=True),
    Upscaler("Latent (bicubic)", "bicubic"),
    Upscaler("Latent (bicubic antialiased)", "bicubic", antialias=True),
    Upscaler("Latent (nearest)", "nearest"),
    Upscaler("Latent (nearest-exact)", "nearest-exact"),
    Upscaler("Latent (bilinear)", "bilinear"),
)
_UPSCALERS_BY_KEY: Final = {upscaler.name.lower(): upscaler for upscaler in _UPSCALER_TABLE}
#: The hires-fix upscaler names :meth:`Generator.__call__` accepts (latent upscalers only).
HIRES_UPSCALERS: Final = tuple(upscaler.name for upscaler in _UPSCALER_TABLE)


_HIRES_KEYS: Final = ("scale", "strength", "upscaler", "steps")


def upscaler_named(name: str) -> Upscaler:
    """The latent upscaler called ``name`` (any case); ``name`` was checked by :func:`to_hires`."""
    return _UPSCALERS_BY_KEY[" ".join(name.split()).lower()]


def to_hires(value: object) -> HiresParameters | None:
    """Check a ``hires`` option and give it its recorded form, before any model work.

    A number is the upscale factor with the official demo's other settings; a mapping gives
    some of :class:`~animagine.HiresParameters`' fields (``{"scale": 1.5}``) and takes the demo's
    settings for the rest; ``steps`` left out (or ``None``) means the first pass's steps.

    Raises:
        GenerationTypeError: not a HiresParameters, number, mapping or None; a field of the wrong
            type.
        GenerationArgumentError: a value out of range, an unknown key or upscaler.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise GenerationTypeError(
            "hires must be a HiresParameters, a number (the upscale factor), a mapping of its"
            f" fields or None, got bool: {value!r}"
        )
    if isinstance(value, HiresParameters):
        fields: dict[str, object] = {
            "scale": value.scale,
            "strength": value.strength,
            "upscaler": value.upscaler,
            "steps": value.steps,
        }
    elif isinstance(value, Mapping):
        unknown = sorted(str(key) for key in value if key not in _HIRES_KEYS)
        if unknown:
            raise GenerationArgumentError(
                f"unknown hires key(s) {', '.join(map(repr, unknown))}; hires takes"
                f" {', '.join(_HIRES_KEYS)}"
            )
        if "scale" not in value:
            raise GenerationArgumentError("hires needs a 'scale' (the upscale factor)")
        fields = {
            "scale": value["scale"],
            "strength": value.get("strength", DEMO_HIRES_STRENGTH),
            "upscaler": value.get("upscaler", DEMO_HIRES_UPSCALER),
            "steps": value.get("steps"),
        }
    elif isinstance(value, numbers.Real):
        fields = {
            "scale": value,
            "strength": DEMO_HIRES_STRENGTH,
            "upscaler": DEMO_HIRES_UPSCALER,
            "steps": None,
        }
    else:
        raise GenerationTypeError(
            "hires must be a HiresParameters, a number (the upscale factor), a mapping of its"
            f" fields or None, got {type(value).__name__}: {value!r}"
        )
    scale = number_argument("hires.scale", fields["scale"])
    if not 1 <= scale <= MAX_HIRES_SCALE:
        raise GenerationArgumentError(
            f"hires.scale must be between 1 and {MAX_HIRES_SCALE:g}, got {fields['scale']!r}"
        )
    strength = number_argument("hires.strength", fields["strength"])
    if not 0 < strength <= 1:
        raise GenerationArgumentError(
            f"hires.strength must be above 0 and at most 1, got {fields['strength']!r}"
        )
    steps = fields["steps"]
    checked_steps = None if steps is None else int_argument("hires.steps", steps, 1, MAX_STEPS)
    upscaler = fields["upscaler"]
    if not isinstance(upscaler, str):
        raise GenerationTypeError(
            f"hires.upscaler must be a str, got {type(upscaler).__name__}: {upscaler!r}"
        )
    known = _UPSCALERS_BY_KEY.get(" ".join(upscaler.split()).lower())
    if known is None:
        raise GenerationArgumentError(
            f"unknown hires.upscaler {upscaler!r}; the latent upscalers are"
            f" {', '.join(map(repr, HIRES_UPSCALERS))}"
        )
    return HiresParameters(scale=scale, strength=strength, upscaler=known.name, steps=checked_steps)


def hires_size(side: int, scale: float) -> int:
    """``round(side * scale)`` down to a multiple of 8."""
    return math.floor(side * scale + 0.5) // 8 * 8


def check_hires(
    hires: HiresParameters, width: int, height: int, steps: int
) -> tuple[int, int, int]:
    """The second pass's ``(width, height, steps)``; errors for what the first pass implies.

    Raises:
        GenerationArgumentError: the upscaled size is too large, or the second pass would run
            no step (``int(steps * strength) < 1``).
    """
    hires_steps = steps if hires.steps is None else hires.steps
    if int(hires_steps * hires.strength) < 1:
        raise GenerationArgumentError(
            f"hires.strength={hires.strength:g} with {hires_steps} hires steps denoises for"
            f" int({hires_steps} * {hires.strength:g}) = 0 steps; raise the strength or"
            " hires.steps"
        )
    target = (hires_size(width, hires.scale), hires_size(height, hires.scale))
    if max(target) > MAX_SIZE:
        raise GenerationArgumentError(
            f"hires scale {hires.scale:g} makes {width}x{height} into {target[0]}x{target[1]};"
            f" sides must be at most {MAX_SIZE}"
        )
    return target[0], target[1], hires_steps
