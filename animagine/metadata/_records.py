"""The generation parameter records, :class:`GenerationParameters` and :class:`HiresParameters`.

A record checks its fields when it is made and travels in three forms: A1111's infotext
(:meth:`GenerationParameters.to_infotext`, the text format is ``_infotext.py``), our JSON
(:meth:`GenerationParameters.to_json`, lossless) and, read only, the official demo's JSON
(``_demo.py``). Images carry them through ``_png.py``.

A field of the wrong type raises :class:`~animagine.errors.GenerationTypeError` and a value out of
range :class:`~animagine.errors.GenerationArgumentError`, the errors a generation call raises for
the same option; reading a text or JSON that does not hold valid parameters raises
:class:`~animagine.errors.MetadataError`.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import attrs

from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    MetadataError,
    WrongTypeError,
)
from animagine.limits import MAX_SEED
from animagine.metadata import _infotext
from animagine.metadata._infotext import VERSION_KEY, format_number

__all__ = [
    "JSON_FORMAT",
    "QUALITY_KEY",
    "STYLE_KEY",
    "TEMPLATE_KEY",
    "GenerationParameters",
    "HiresParameters",
    "infer_version",
]

#: The ``format`` marker of :meth:`GenerationParameters.to_json` documents.
JSON_FORMAT: Final = "animagine-parameters/1"

_SIZE: Final = re.compile(r"(\d+)x(\d+)")
_MODEL_VERSION: Final = re.compile(r"animagine[\s_-]*xl[\s_-]*v?(\d+)(?:[._](\d+))?", re.IGNORECASE)
_VERSION_NAMES: Final = {("3", "0"): "v3", ("3", "1"): "v3.1", ("4", "0"): "v4"}
# A1111 >= 1.9 writes `Sampler: DPM++ 2M, Schedule type: Karras` for what earlier versions, the
# demo and diffusers call `DPM++ 2M Karras`. These schedules had such combined names.
_COMBINED_SCHEDULES: Final = ("Karras", "Exponential")

# Infotext keys written from a field of their own, which `extra` may not hold.
_MAIN_KEYS: Final = frozenset(
    {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Clip skip"}
    | {VERSION_KEY, "Negative prompt", "Prompt"}
)
# A1111's ``Clip skip`` N takes the N-th text encoder layer from the end; diffusers' (and our)
# ``clip_skip`` k takes ``hidden_states[-(k + 2)]``: N = k + 2, SDXL's default being N = 2.
_CLIP_SKIP_OFFSET: Final = 2
#: Infotext keys of the template (sd-dynamic-prompts writes ``Template`` too) and the presets.
TEMPLATE_KEY: Final = "Template"
STYLE_KEY: Final = "Style preset"
QUALITY_KEY: Final = "Quality preset"
_RECIPE_KEYS: Final = {"template": TEMPLATE_KEY, "style": STYLE_KEY, "quality": QUALITY_KEY}
_RECIPE_VALUES: Final = frozenset(_RECIPE_KEYS.values())
_HIRES_KEYS: Final = frozenset(
    {"Denoising strength", "Hires upscale", "Hires scale", "Hires steps", "Hires upscaler"}
)
# What A1111 and Forge use when an infotext's hires fix names no denoising strength.
_A1111_HIRES_STRENGTH: Final = 0.7
# Some SD.Next versions write no `Sampler`; every Animagine version's default stands in.
_DEFAULT_SAMPLER: Final = "Euler a"


# --- field checks ----------------------------------------------------------------------------


def _to_int(value: int) -> int:
    """Accept any integer type (``numpy.int64`` seeds); anything else is left for the validator."""
    candidate: object = value
    if isinstance(candidate, int):
        return candidate
    try:
        return operator.index(candidate)  # type: ignore[arg-type]  # numpy ints and the like
    except TypeError:
        return value


def _to_optional_int(value: int | None) -> int | None:
    return None if value is None else _to_int(value)


def _to_float(value: float) -> float:
    """Ints become floats (``guidance_scale=5``); anything else is left for the validator."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_int(attribute: attrs.Attribute[Any], value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise GenerationTypeError(
            f"{attribute.name} must be an int, got {_type_name(value)}: {value!r}"
        )
    if value < minimum:
        raise GenerationArgumentError(f"{attribute.name} must be at least {minimum}, got {value!r}")


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_int(attribute, value, 1)


def _optional_positive_int(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _check_int(attribute, value, 1)


def _seed(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_int(attribute, value, 0)
    assert isinstance(value, int)
    if value > MAX_SEED:
        raise GenerationArgumentError(f"{attribute.name} must be below 2**64, got {value!r}")


def _finite_float(attribute: attrs.Attribute[Any], value: object) -> float:
    if not isinstance(value, float):
        raise GenerationTypeError(
            f"{attribute.name} must be a number, got {_type_name(value)}: {value!r}"
        )
    if not math.isfinite(value):
        raise GenerationArgumentError(f"{attribute.name} must be finite, got {value!r}")
    return value


def _positive_float(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if _finite_float(attribute, value) <= 0:
        raise GenerationArgumentError(f"{attribute.name} must be positive, got {value!r}")


def _upscale_factor(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if _finite_float(attribute, value) < 1:
        raise GenerationArgumentError(f"{attribute.name} must be at least 1, got {value!r}")


def _unit_float(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not 0 <= _finite_float(attribute, value) <= 1:
        raise GenerationArgumentError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise GenerationTypeError(
            f"{attribute.name} must be a str, got {_type_name(value)}: {value!r}"
        )


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(instance, attribute, value)
    if not value:
        raise GenerationArgumentError(f"{attribute.name} must not be empty")


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _optional_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _name(instance, attribute, value)


class _FrozenMap(Mapping[str, str]):
    """An immutable, hashable, picklable ``str -> str`` mapping that keeps insertion order."""

    __slots__ = ("_data",)
    _data: dict[str, str]

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        object.__setattr__(self, "_data", dict(items))

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[type[_FrozenMap], tuple[list[tuple[str, str]]]]:
        return (type(self), (list(self._data.items()),))

    def __repr__(self) -> str:
        return repr(self._data)


_EMPTY: Final = _FrozenMap()


def _to_frozen_map(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    if isinstance(value, _FrozenMap):
        return value
    candidate: object = value
    if isinstance(candidate, (str, bytes)):
        raise GenerationTypeError(f"extra must be a mapping of str to str, got {_type_name(value)}")
    try:
        return _FrozenMap(value)
    except (TypeError, ValueError) as error:
        raise GenerationTypeError(
            f"extra must be a mapping of str to str, got {_type_name(value)}: {value!r}"
        ) from error


def _to_json_object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A detached copy as JSON would give it back (tuples become lists)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise GenerationTypeError(
            f"structured_prompt must be a dict, got {_type_name(value)}: {value!r}"
        )
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError, RecursionError) as error:
        raise GenerationTypeError(
            f"structured_prompt must hold only JSON values: {error}"
        ) from error
    return copy


def _plain_json(instance: object, field: object, value: Any) -> Any:
    """``attrs.asdict`` hook: the frozen ``extra`` mapping as a plain dict."""
    return dict(value) if isinstance(value, _FrozenMap) else value


# --- the records -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class HiresParameters:
    """A1111's "hires fix": a second, img2img pass over the upscaled first image.

    Attributes:
        scale: Upscale factor of the first image (A1111 ``Hires upscale``), at least 1.
        strength: Denoising strength of the second pass (``Denoising strength``), 0 to 1.
        upscaler: Upscaler name as A1111 writes it: ``"Latent"``, ``"Latent (nearest-exact)"``
            (what the official demo does), ``"R-ESRGAN 4x+ Anime6B"``, ...
        steps: Steps of the second pass (``Hires steps``); ``None`` for "as many as the first
            pass", which A1111 writes as no key (or 0).
    """

    scale: float = attrs.field(converter=_to_float, validator=_upscale_factor)
    strength: float = attrs.field(converter=_to_float, validator=_unit_float)
    upscaler: str = attrs.field(validator=_name)
    steps: int | None = attrs.field(
        default=None, converter=_to_optional_int, validator=_optional_positive_int
    )

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict: ``scale``, ``strength``, ``upscaler``, ``steps``."""
        return attrs.asdict(self)


def _check_extra(
    instance: GenerationParameters, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    reserved = (
        _MAIN_KEYS | _RECIPE_VALUES | (_HIRES_KEYS if instance.hires is not None else frozenset())
    )
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise GenerationTypeError(f"extra must map str to str, got {key!r}: {item!r}")
        if not _infotext.is_key(key):
            raise GenerationArgumentError(
                f"extra key {key!r} is not an A1111 infotext key (letters, digits, '_', ' ', '-',"
                " '/'; two characters at least; no ':' or ',')"
            )
        if key in reserved:
            raise GenerationArgumentError(
                f"extra key {key!r} is written from its own field; set that instead"
            )


def _check_hires(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, HiresParameters):
        raise GenerationTypeError(
            f"hires must be a HiresParameters or None, got {_type_name(value)}"
        )


@attrs.frozen(kw_only=True)
class GenerationParameters:
    """Everything needed to reproduce one generated image, and to say how it was made.

    Attributes:
        prompt: The exact positive prompt sent to the model, quality tags included.
        negative_prompt: The exact negative prompt ("" for none).
        steps: Sampling steps.
        sampler: The A1111 sampler name: ``"Euler a"``, ``"DPM++ 2M Karras"``, ...
        guidance_scale: Classifier-free guidance (A1111 ``CFG scale``).
        seed: The seed, 0 to 2**64 - 1.
        width: Width of the first pass in pixels (A1111 ``Size``; hires upscales from it).
        height: Height of the first pass in pixels.
        model: Model name, hub id or file name; "" when the metadata does not say.
        version: Animagine version name (``"v3"``, ``"v3.1"``, ``"v4"``); ``None`` when unknown.
        model_hash: A1111 ``Model hash`` (first 10 hex digits of the file's sha256).
        clip_skip: Text encoder layers skipped beyond SDXL's default (the penultimate layer),
            diffusers' convention; None for none. A1111's ``Clip skip`` counts from the last
            layer, so its infotext holds this plus 2, and ``Clip skip: 1`` or ``2`` (SDXL's
            default) reads as None.
        hires: The hires-fix pass, if there was one.
        structured_prompt: The parsed prompt in JSON form, kept in our ``animagine`` chunk only.
            Stored as a copy the way JSON gives it back (tuples become lists).
        extra: Other A1111 ``key: value`` pairs, kept in order and written back unchanged.
        template: The prompt template before its variants and wildcards were drawn (infotext
            ``Template``, as sd-dynamic-prompts writes it); None when the prompt was not one.
        style: The style preset applied (infotext ``Style preset``; the demos' ``sdxl_style``
            or ``style_preset``), or None.
        quality: The quality preset applied (infotext ``Quality preset``; the 3.x demos'
            ``quality_tags``), or None.

    :attr:`prompt` and :attr:`negative_prompt` are the final texts, presets and draws
    included: they alone reproduce the image; the template and preset names say how they
    were made.
    """

    prompt: str = attrs.field(validator=_text)
    negative_prompt: str = attrs.field(validator=_text)
    steps: int = attrs.field(converter=_to_int, validator=_positive_int)
    sampler: str = attrs.field(validator=_name)
    guidance_scale: float = attrs.field(converter=_to_float, validator=_positive_float)
    seed: int = attrs.field(converter=_to_int, validator=_seed)
    width: int = attrs.field(converter=_to_int, validator=_positive_int)
    height: int = attrs.field(converter=_to_int, validator=_positive_int)
    model: str = attrs.field(validator=_text)
    version: str | None = attrs.field(validator=_optional_name)
    model_hash: str | None = attrs.field(default=None, validator=_optional_text)
    clip_skip: int | None = attrs.field(
        default=None, converter=_to_optional_int, validator=_optional_positive_int
    )
    hires: HiresParameters | None = attrs.field(default=None, validator=_check_hires)
    structured_prompt: dict[str, Any] | None = attrs.field(
        default=None, converter=_to_json_object, hash=False
    )
    extra: Mapping[str, str] = attrs.field(
        default=_EMPTY, converter=_to_frozen_map, validator=_check_extra
    )
    template: str | None = attrs.field(default=None, validator=_optional_text)
    style: str | None = attrs.field(default=None, validator=_optional_name)
    quality: str | None = attrs.field(default=None, validator=_optional_name)

    # --- A1111 infotext ---

    def to_infotext(self) -> str:
        """The A1111 ``parameters`` text.

        Keys are joined with ``", "``; a value holding ``,``, ``:`` or a newline is JSON-quoted.
        The version is written as ``Animagine version: v4`` (A1111 ignores keys it does not know).

        ``from_infotext(p.to_infotext()) == p`` except for :attr:`structured_prompt` (not part of
        the format); a prompt with a line starting ``Negative prompt:``, which every infotext
        reader takes for the start of the negative prompt; a ``version`` of None with an
        Animagine model name, which reads back as that model's version; and an ``extra``
        ``Schedule type`` of Karras or Exponential, which reads back joined to the sampler.
        """
        pairs: list[tuple[str, str]] = [
            ("Steps", str(self.steps)),
            ("Sampler", self.sampler),
            ("CFG scale", format_number(self.guidance_scale)),
            ("Seed", str(self.seed)),
            ("Size", f"{self.width}x{self.height}"),
        ]
        if self.model_hash is not None:
            pairs.append(("Model hash", self.model_hash))
        if self.model:
            pairs.append(("Model", self.model))
        if self.clip_skip is not None:
            pairs.append(("Clip skip", str(self.clip_skip + _CLIP_SKIP_OFFSET)))
        if self.hires is not None:
            pairs.append(("Denoising strength", format_number(self.hires.strength)))
            pairs.append(("Hires upscale", format_number(self.hires.scale)))
            if self.hires.steps is not None:
                pairs.append(("Hires steps", str(self.hires.steps)))
            pairs.append(("Hires upscaler", self.hires.upscaler))
        for name, key in _RECIPE_KEYS.items():
            value = getattr(self, name)
            if value is not None:
                pairs.append((key, value))
        pairs.extend(self.extra.items())
        if self.version is not None:
            pairs.append((VERSION_KEY, self.version))
        return _infotext.join(self.prompt, self.negative_prompt, pairs)

    @classmethod
    def from_infotext(cls, text: str) -> GenerationParameters:
        """Read an A1111 ``parameters`` text.

        The last line is the parameters line (it needs 3 ``key: value`` pairs at least); the
        lines before it are the prompt up to a line starting ``Negative prompt:``, and the
        negative prompt after it. ``Steps``, ``Sampler``, ``CFG scale``, ``Seed`` and ``Size``
        are required, but for ``Sampler``, which some SD.Next versions leave out (it reads as
        ``Euler a``). ``Hires upscale`` (or ``Hires scale``, as SD.Next and Forge write it)
        and ``Hires upscaler`` make :attr:`hires`, with ``Denoising strength`` (when missing:
        A1111's default, 0.7); otherwise they stay in :attr:`extra` with every other key.
        ``Template``, ``Style preset`` and ``Quality preset`` fill :attr:`template`,
        :attr:`style` and :attr:`quality`.
        ``Sampler: DPM++ 2M, Schedule type: Karras`` reads as sampler ``DPM++ 2M Karras``
        (the schedule type stays in :attr:`extra`). Without an ``Animagine version`` key the
        version comes from an Animagine model name (``animagine-xl-3.1`` is ``v3.1``), or is None.

        Raises:
            MetadataError: no parameters line, a required key missing, or a value that does not
                read (the message names the key).
            WrongTypeError: ``text`` is not a str (a ``TypeError``).
        """
        if not isinstance(text, str):
            raise WrongTypeError(f"text must be a str, got {_type_name(text)}")
        parts = _infotext.split(text)
        return _build(
            "infotext",
            parts.values,
            prompt=parts.prompt,
            negative_prompt=parts.negative_prompt,
        )

    # --- our JSON ---

    def to_json(self) -> dict[str, Any]:
        """Our structured form, the content of the ``animagine`` PNG chunk.

        ``{"format": JSON_FORMAT, ...}`` then every field under its own name, in field order:
        :attr:`hires` as an object (or null), :attr:`extra` as an object, and a copy of
        :attr:`structured_prompt`. :attr:`template`, :attr:`style` and :attr:`quality` are
        written only when set.
        """
        data = attrs.asdict(self, value_serializer=_plain_json)
        for name in _RECIPE_KEYS:
            if data[name] is None:
                del data[name]  # written only when set: older readers know no such keys
        return {"format": JSON_FORMAT, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenerationParameters:
        """Read :meth:`to_json`'s form back.

        Raises:
            MetadataError: not that form: an unknown ``format``, a missing or unknown key, or a
                value of the wrong type (the message names the key).
        """
        if not isinstance(data, Mapping):
            raise MetadataError(f"expected a JSON object, got {_type_name(data)}")
        if "format" in data and data["format"] != JSON_FORMAT:
            raise MetadataError(
                f"unsupported format {data['format']!r}; this animagine reads {JSON_FORMAT!r}"
            )
        unknown = sorted(map(repr, set(data) - _JSON_KEYS - {"format"}))
        if unknown:
            raise MetadataError(f"unknown key(s) {', '.join(unknown)}")
        missing = [key for key in _JSON_REQUIRED if key not in data]
        if missing:
            raise MetadataError(f"missing key {missing[0]!r}")
        fields: dict[str, Any] = {key: data[key] for key in _JSON_KEYS if key in data}
        fields.setdefault("version", None)
        hires = fields.get("hires")
        try:
            if hires is not None:
                if not isinstance(hires, Mapping):
                    raise GenerationTypeError(
                        f"hires must be an object or null, got {_type_name(hires)}"
                    )
                fields["hires"] = HiresParameters(**_hires_fields(hires))
            extra = fields.get("extra", {})
            if not isinstance(extra, Mapping):
                raise GenerationTypeError(f"extra must be an object, got {_type_name(extra)}")
            _check_json_types(fields)
            return cls(**fields)
        except (TypeError, ValueError) as error:
            raise MetadataError(f"invalid parameters JSON: {error}") from error

    # --- reproduction ---

    def to_call_kwargs(self) -> dict[str, Any]:
        """The :class:`animagine.Generator` call options that reproduce the image.

        ``add_quality_tags`` is False: the stored prompt already has them. :attr:`hires` is
        passed on when the image was made with the hires fix.
        """
        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "sampler": self.sampler,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
        }
        if self.clip_skip is not None:
            kwargs["clip_skip"] = self.clip_skip
        if self.hires is not None:
            kwargs["hires"] = self.hires
        kwargs["add_quality_tags"] = False
        return kwargs

    def recipe(self) -> dict[str, str]:
        """How the prompt was made: ``template``, ``style`` and ``quality``, those recorded.

        These are the options that made :attr:`prompt` from the user's text; they are not part
        of :meth:`to_call_kwargs`, whose final texts already include them.
        """
        return {name: value for name in _RECIPE_KEYS if (value := getattr(self, name)) is not None}


_JSON_REQUIRED: Final = (
    "prompt",
    "negative_prompt",
    "steps",
    "sampler",
    "guidance_scale",
    "seed",
    "width",
    "height",
    "model",
)
_JSON_KEYS: Final = frozenset(_JSON_REQUIRED) | {
    "version",
    "model_hash",
    "clip_skip",
    "hires",
    "structured_prompt",
    "extra",
    "template",
    "style",
    "quality",
}


def _hires_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    known = {"scale", "strength", "upscaler", "steps"}
    unknown = sorted(map(repr, set(data) - known))
    if unknown:
        raise GenerationArgumentError(f"unknown hires key(s) {', '.join(unknown)}")
    for key in ("scale", "strength", "upscaler"):
        if key not in data:
            raise GenerationArgumentError(f"hires is missing {key!r}")
    return dict(data)


def _check_json_types(fields: Mapping[str, Any]) -> None:
    """JSON has no numpy ints or int subclasses; keep from_json as strict as the format."""
    for key in ("steps", "seed", "width", "height", "clip_skip"):
        value = fields.get(key)
        if value is not None and type(value) is not int:
            raise GenerationTypeError(f"{key} must be an int, got {_type_name(value)}: {value!r}")


# --- reading infotext values ------------------------------------------------------------------


def infer_version(model: str) -> str | None:
    """``"v3.1"`` for ``animagine-xl-3.1``, ``Animagine XL 3.1`` and the like; else None."""
    match = _MODEL_VERSION.search(model)
    if match is None:
        return None
    return _VERSION_NAMES.get((match.group(1), match.group(2) or "0"))


def _take_int(source: str, values: dict[str, str], key: str) -> int:
    raw = values.pop(key)
    try:
        return int(raw.strip())
    except ValueError:
        raise MetadataError(f"{source}: {key!r} is not an integer: {raw!r}") from None


def _take_float(source: str, values: dict[str, str], key: str) -> float:
    raw = values.pop(key)
    try:
        number = float(raw.strip())
    except ValueError:
        raise MetadataError(f"{source}: {key!r} is not a number: {raw!r}") from None
    if not math.isfinite(number):
        raise MetadataError(f"{source}: {key!r} is not a finite number: {raw!r}")
    return number


def _build(
    source: str, values: dict[str, str], *, prompt: str, negative_prompt: str
) -> GenerationParameters:
    """Turn parsed ``key: value`` pairs into parameters; what is not used goes to ``extra``."""
    for key in ("Steps", "CFG scale", "Seed", "Size"):
        if key not in values:
            raise MetadataError(f"{source}: missing key {key!r} in the parameters line")
    steps = _take_int(source, values, "Steps")
    sampler = values.pop("Sampler", "") or _DEFAULT_SAMPLER
    guidance_scale = _take_float(source, values, "CFG scale")
    seed = _take_int(source, values, "Seed")
    size = values.pop("Size")
    match = _SIZE.fullmatch(size.strip())
    if match is None:
        raise MetadataError(f"{source}: 'Size' is not WIDTHxHEIGHT: {size!r}")
    schedule = values.get("Schedule type", "")
    if schedule in _COMBINED_SCHEDULES and not sampler.endswith(f" {schedule}"):
        sampler = f"{sampler} {schedule}"
    model = values.pop("Model", "")
    model_hash = values.pop("Model hash", None)
    clip_skip = None
    if "Clip skip" in values:
        layer = _take_int(source, values, "Clip skip")
        # A1111's count (N: the N-th layer from the end); SDXL's default, the penultimate
        # layer, is N = 2 (and 1), which is no skip here.
        clip_skip = layer - _CLIP_SKIP_OFFSET if layer > _CLIP_SKIP_OFFSET else None
    version = values.pop(VERSION_KEY, None)
    if version is None:
        version = infer_version(model)

    hires = None
    scale_key = next((key for key in ("Hires upscale", "Hires scale") if key in values), None)
    if scale_key is not None and "Hires upscaler" in values:
        scale = _take_float(source, values, scale_key)
        values.pop("Hires scale", None)
        strength = (
            _take_float(source, values, "Denoising strength")
            if "Denoising strength" in values
            else _A1111_HIRES_STRENGTH
        )
        upscaler = values.pop("Hires upscaler")
        hires_steps = _take_int(source, values, "Hires steps") if "Hires steps" in values else 0
        try:
            hires = HiresParameters(
                scale=scale, strength=strength, upscaler=upscaler, steps=hires_steps or None
            )
        except (TypeError, ValueError) as error:
            raise MetadataError(f"{source}: invalid hires values: {error}") from error

    values.pop("Prompt", None)
    values.pop("Negative prompt", None)
    recipe = {name: values.pop(key) for name, key in _RECIPE_KEYS.items() if key in values}
    try:
        return GenerationParameters(
            prompt=prompt,
            negative_prompt=negative_prompt,
            steps=steps,
            sampler=sampler,
            guidance_scale=guidance_scale,
            seed=seed,
            width=int(match.group(1)),
            height=int(match.group(2)),
            model=model,
            version=version,
            model_hash=model_hash,
            clip_skip=clip_skip,
            hires=hires,
            extra=values,
            template=recipe.get("template") or None,
            style=recipe.get("style") or None,
            quality=recipe.get("quality") or None,
        )
    except (TypeError, ValueError) as error:
        raise MetadataError(f"{source}: {error}") from error
