"""Generation parameters and the image metadata that carries them.

One record, :class:`GenerationParameters`, and three ways it travels inside an image:

- A1111's ``parameters`` text (the "infotext" WebUI, Civitai, sd-parsers and most viewers read)::

      {prompt}
      Negative prompt: {negative prompt}
      Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 123, Size: 832x1216, Model: ..., ...

- our own ``animagine`` PNG chunk: :meth:`GenerationParameters.to_json` as JSON, lossless, and
  the one :func:`read_parameters` prefers;
- the official Animagine gradio demo's JSON (read only). The demo saves it in a ``metadata``
  chunk (3.0 and 3.1 spaces) or, in the 4.0-era ``utils.save_image``, in the ``parameters`` chunk
  where A1111 tools expect infotext. Its ``prompt`` already holds the quality and style tags.

:func:`write_png` writes both of our chunks atomically and never replaces an existing file unless
asked to.
"""

from __future__ import annotations

import errno
import json
import math
import operator
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.errors import MetadataError

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.PngImagePlugin import PngInfo

__all__ = [
    "GenerationParameters",
    "HiresParameters",
    "MetadataError",
    "png_info",
    "read_parameters",
    "write_png",
]

#: Name of the PNG text chunk A1111 writes and every tool reads.
PARAMETERS_CHUNK: Final = "parameters"
#: Name of our own PNG text chunk: :meth:`GenerationParameters.to_json` as JSON.
ANIMAGINE_CHUNK: Final = "animagine"
#: Name of the PNG text chunk the official Animagine demo writes its JSON into.
DEMO_CHUNK: Final = "metadata"
#: The ``format`` marker of :meth:`GenerationParameters.to_json` documents.
JSON_FORMAT: Final = "animagine-parameters/1"
#: Infotext key for :attr:`GenerationParameters.version` (A1111 ignores keys it does not know).
VERSION_KEY: Final = "Animagine version"

_NEGATIVE_PREFIX: Final = "Negative prompt:"
# One `key: value` of an A1111 parameters line, as A1111's own reader (`re_param` in
# modules/infotext_utils.py) finds them: a JSON-quoted value, or anything up to the next comma.
# One addition: an unquoted `{...}` JSON object, which Civitai-style `Hashes: {"model": ...}`
# values are written as and which would otherwise be cut at their first comma.
_PARAM: Final = re.compile(
    r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}(?=\s*(?:,|$))|[^,]*)(?:,|$)'
)
# A key we can write so that the reader above finds it again: two characters at least, no
# trailing space (readers strip it).
_KEY: Final = re.compile(r"\w[\w \-/]*[\w\-/]")
_SIZE: Final = re.compile(r"(\d+)x(\d+)")
_DEMO_SIZE: Final = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*")
_MODEL_VERSION: Final = re.compile(r"animagine[\s_-]*xl[\s_-]*v?(\d+)(?:[._](\d+))?", re.IGNORECASE)
_VERSION_NAMES: Final = {("3", "0"): "v3", ("3", "1"): "v3.1", ("4", "0"): "v4"}
# A1111 >= 1.9 writes `Sampler: DPM++ 2M, Schedule type: Karras` for what earlier versions, the
# demo and diffusers call `DPM++ 2M Karras`. These schedules had such combined names.
_COMBINED_SCHEDULES: Final = ("Karras", "Exponential")
_MAX_SEED: Final = 2**64 - 1

_MAIN_KEYS: Final = frozenset(
    {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Clip skip"}
    | {VERSION_KEY, "Negative prompt", "Prompt"}
)
_HIRES_KEYS: Final = frozenset(
    {"Denoising strength", "Hires upscale", "Hires steps", "Hires upscaler"}
)


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
        raise TypeError(f"{attribute.name} must be an int, got {_type_name(value)}: {value!r}")
    if value < minimum:
        raise ValueError(f"{attribute.name} must be at least {minimum}, got {value!r}")


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
    if value > _MAX_SEED:
        raise ValueError(f"{attribute.name} must be below 2**64, got {value!r}")


def _finite_float(attribute: attrs.Attribute[Any], value: object) -> float:
    if not isinstance(value, float):
        raise TypeError(f"{attribute.name} must be a number, got {_type_name(value)}: {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")
    return value


def _positive_float(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if _finite_float(attribute, value) <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _upscale_factor(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if _finite_float(attribute, value) < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


def _unit_float(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not 0 <= _finite_float(attribute, value) <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, got {_type_name(value)}: {value!r}")


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(instance, attribute, value)
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


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
        raise TypeError(f"extra must be a mapping of str to str, got {_type_name(value)}")
    try:
        return _FrozenMap(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"extra must be a mapping of str to str, got {_type_name(value)}: {value!r}"
        ) from error


def _to_json_object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A detached copy as JSON would give it back (tuples become lists)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"structured_prompt must be a dict, got {_type_name(value)}: {value!r}")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f"structured_prompt must hold only JSON values: {error}") from error
    return copy


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
        return {
            "scale": self.scale,
            "strength": self.strength,
            "upscaler": self.upscaler,
            "steps": self.steps,
        }


def _check_extra(
    instance: GenerationParameters, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    reserved = _MAIN_KEYS | (_HIRES_KEYS if instance.hires is not None else frozenset())
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"extra must map str to str, got {key!r}: {item!r}")
        if not _KEY.fullmatch(key):
            raise ValueError(
                f"extra key {key!r} is not an A1111 infotext key (letters, digits, '_', ' ', '-',"
                " '/'; two characters at least; no ':' or ',')"
            )
        if key in reserved:
            raise ValueError(f"extra key {key!r} is written from its own field; set that instead")


def _check_hires(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, HiresParameters):
        raise TypeError(f"hires must be a HiresParameters or None, got {_type_name(value)}")


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
        clip_skip: A1111 ``Clip skip`` when set.
        hires: The hires-fix pass, if there was one.
        structured_prompt: The parsed prompt in JSON form, kept in our ``animagine`` chunk only.
            Stored as a copy the way JSON gives it back (tuples become lists).
        extra: Other A1111 ``key: value`` pairs, kept in order and written back unchanged.
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
            ("CFG scale", _format_number(self.guidance_scale)),
            ("Seed", str(self.seed)),
            ("Size", f"{self.width}x{self.height}"),
        ]
        if self.model_hash is not None:
            pairs.append(("Model hash", self.model_hash))
        if self.model:
            pairs.append(("Model", self.model))
        if self.clip_skip is not None:
            pairs.append(("Clip skip", str(self.clip_skip)))
        if self.hires is not None:
            pairs.append(("Denoising strength", _format_number(self.hires.strength)))
            pairs.append(("Hires upscale", _format_number(self.hires.scale)))
            if self.hires.steps is not None:
                pairs.append(("Hires steps", str(self.hires.steps)))
            pairs.append(("Hires upscaler", self.hires.upscaler))
        pairs.extend(self.extra.items())
        if self.version is not None:
            pairs.append((VERSION_KEY, self.version))
        text = self.prompt
        if self.negative_prompt:
            text += f"\n{_NEGATIVE_PREFIX} {self.negative_prompt}"
        return text + "\n" + ", ".join(f"{key}: {_quote(value)}" for key, value in pairs)

    @classmethod
    def from_infotext(cls, text: str) -> GenerationParameters:
        """Read an A1111 ``parameters`` text.

        The last line is the parameters line (it needs 3 ``key: value`` pairs at least); the
        lines before it are the prompt up to a line starting ``Negative prompt:``, and the
        negative prompt after it. ``Steps``, ``Sampler``, ``CFG scale``, ``Seed`` and ``Size``
        are required. ``Hires upscale``, ``Denoising strength`` and ``Hires upscaler`` together
        make :attr:`hires`; otherwise they stay in :attr:`extra` with every other key.
        ``Sampler: DPM++ 2M, Schedule type: Karras`` reads as sampler ``DPM++ 2M Karras``
        (the schedule type stays in :attr:`extra`). Without an ``Animagine version`` key the
        version comes from an Animagine model name (``animagine-xl-3.1`` is ``v3.1``), or is None.

        Raises:
            MetadataError: no parameters line, a required key missing, or a value that does not
                read (the message names the key).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_type_name(text)}")
        lines = text.rstrip().split("\n")
        pairs = _PARAM.findall(lines[-1])
        if len(pairs) < 3:
            raise MetadataError(
                "no A1111 parameters line: the last line must hold 'key: value' pairs such as"
                f" 'Steps: 28, Sampler: Euler a, ...', got {lines[-1][:80]!r}"
            )
        prompt_lines: list[str] = []
        negative_lines: list[str] | None = None
        for line in lines[:-1]:
            if negative_lines is not None:
                negative_lines.append(line)
            elif line.startswith(_NEGATIVE_PREFIX):
                rest = line[len(_NEGATIVE_PREFIX) :]
                negative_lines = [rest[1:] if rest.startswith(" ") else rest]
            else:
                prompt_lines.append(line)

        values: dict[str, str] = {}
        for key, raw in pairs:
            values[key.strip()] = _unquote(raw)
        return _build(
            "infotext",
            values,
            prompt="\n".join(prompt_lines),
            negative_prompt="" if negative_lines is None else "\n".join(negative_lines),
        )

    # --- our JSON ---

    def to_json(self) -> dict[str, Any]:
        """Our structured form, the content of the ``animagine`` PNG chunk."""
        return {
            "format": JSON_FORMAT,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "sampler": self.sampler,
            "guidance_scale": self.guidance_scale,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "model": self.model,
            "version": self.version,
            "model_hash": self.model_hash,
            "clip_skip": self.clip_skip,
            "hires": None if self.hires is None else self.hires.to_json(),
            "structured_prompt": self.structured_prompt,
            "extra": dict(self.extra),
        }

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
        unknown = sorted(set(data) - _JSON_KEYS - {"format"})
        if unknown:
            raise MetadataError(f"unknown key(s) {', '.join(map(repr, unknown))}")
        missing = [key for key in _JSON_REQUIRED if key not in data]
        if missing:
            raise MetadataError(f"missing key {missing[0]!r}")
        fields: dict[str, Any] = {key: data[key] for key in _JSON_KEYS if key in data}
        fields.setdefault("version", None)
        hires = fields.get("hires")
        try:
            if hires is not None:
                if not isinstance(hires, Mapping):
                    raise TypeError(f"hires must be an object or null, got {_type_name(hires)}")
                fields["hires"] = HiresParameters(**_hires_fields(hires))
            extra = fields.get("extra", {})
            if not isinstance(extra, Mapping):
                raise TypeError(f"extra must be an object, got {_type_name(extra)}")
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
}


def _hires_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    known = {"scale", "strength", "upscaler", "steps"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown hires key(s) {', '.join(map(repr, unknown))}")
    for key in ("scale", "strength", "upscaler"):
        if key not in data:
            raise ValueError(f"hires is missing {key!r}")
    return dict(data)


def _check_json_types(fields: Mapping[str, Any]) -> None:
    """JSON has no numpy ints or int subclasses; keep from_json as strict as the format."""
    for key in ("steps", "seed", "width", "height", "clip_skip"):
        value = fields.get(key)
        if value is not None and type(value) is not int:
            raise TypeError(f"{key} must be an int, got {_type_name(value)}: {value!r}")


# --- infotext values -------------------------------------------------------------------------


def _format_number(value: float) -> str:
    """``5.0`` as ``5``, ``4.5`` as ``4.5``: A1111's look, and exact (shortest repr)."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _is_bare_json_object(value: str) -> bool:
    inner = value[1:-1]
    if not (value.startswith("{") and value.endswith("}")) or any(c in inner for c in "{}\n\r"):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _quote(value: str) -> str:
    """A1111's quoting: JSON-quote a value holding ``,``, ``:`` or a newline.

    Also quoted, so that they read back unchanged: values starting with ``"``, with leading or
    trailing white space, or with control characters. A ``{...}`` JSON object is written bare,
    as Civitai writes ``Hashes``.
    """
    if _is_bare_json_object(value):
        return value
    if (
        any(char in value for char in ",:\n")
        or value.startswith('"')
        or value != value.strip()
        or any(ord(char) < 32 for char in value)
    ):
        return json.dumps(value, ensure_ascii=False)
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            result = json.loads(value)
        except ValueError:
            return value
        if isinstance(result, str):
            return result
    return value


def _infer_version(model: str) -> str | None:
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
    for key in ("Steps", "Sampler", "CFG scale", "Seed", "Size"):
        if key not in values:
            raise MetadataError(f"{source}: missing key {key!r} in the parameters line")
    steps = _take_int(source, values, "Steps")
    sampler = values.pop("Sampler")
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
    clip_skip = _take_int(source, values, "Clip skip") if "Clip skip" in values else None
    version = values.pop(VERSION_KEY, None)
    if version is None:
        version = _infer_version(model)

    hires = None
    if all(key in values for key in ("Hires upscale", "Denoising strength", "Hires upscaler")):
        scale = _take_float(source, values, "Hires upscale")
        strength = _take_float(source, values, "Denoising strength")
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
        )
    except (TypeError, ValueError) as error:
        raise MetadataError(f"{source}: {error}") from error


# --- the official demo's JSON ------------------------------------------------------------------

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


def _from_demo_json(data: Mapping[str, Any]) -> GenerationParameters:
    """Read the JSON the official Animagine gradio demos save with their images.

    Keys (cagliostrolab 3.0 ``app.py``, 3.1 space ``app.py``, 4.0-era ``app.py``): ``prompt``,
    ``negative_prompt``, ``resolution`` ("832 x 1216"), ``guidance_scale``,
    ``num_inference_steps``, ``seed``, ``sampler``, ``use_upscaler`` (null or
    ``{upscale_method, upscaler_strength, upscale_by, new_resolution}``) and the model as
    ``"Model": {"Model": name, "Model hash": hash}`` (3.1, only when the upscaler was off) or
    flat ``"Model"`` and ``"Model hash"`` (4.0-era); the rest (``sdxl_style``, ``style_preset``,
    ``quality_tags``, ``add_quality_tags``, ``use_lora``) goes to ``extra``.
    """
    for key in _DEMO_REQUIRED:
        if key not in data:
            raise MetadataError(f"not the Animagine demo's JSON: missing key {key!r}")
    try:
        resolution = _demo_str("resolution", data["resolution"])
        match = _DEMO_SIZE.fullmatch(resolution)
        if match is None:
            raise ValueError(f"'resolution' is not 'WIDTH x HEIGHT': {resolution!r}")
        model_info = data.get("Model")
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
        used = {*_DEMO_REQUIRED, "Model", "Model hash", "use_upscaler"}
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
            version=_infer_version(model),
            model_hash=model_hash,
            hires=hires,
            extra=extra,
        )
    except (TypeError, ValueError) as error:
        raise MetadataError(f"unreadable Animagine demo JSON: {error}") from error


# --- images ----------------------------------------------------------------------------------


def _require_pillow(what: str) -> None:
    try:
        import PIL  # noqa: F401  # Pillow is optional: import on use
    except ImportError as error:
        raise ImportError(
            f"{what} needs Pillow: pip install pillow (or pip install 'animagine[generate]')"
        ) from error


def png_info(parameters: GenerationParameters) -> PngInfo:
    """The PNG text chunks for ``parameters``, for callers who save images themselves.

    ``parameters`` holds the A1111 infotext (tEXt, or iTXt when it is not Latin-1, as A1111
    does); ``animagine`` holds :meth:`GenerationParameters.to_json` as ASCII JSON (tEXt).
    """
    _require_pillow("png_info")
    from PIL.PngImagePlugin import PngInfo

    if not isinstance(parameters, GenerationParameters):
        raise TypeError(f"parameters must be GenerationParameters, got {_type_name(parameters)}")
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, parameters.to_infotext())
    info.add_text(ANIMAGINE_CHUNK, json.dumps(parameters.to_json(), separators=(",", ":")))
    return info


def write_png(
    image: Image,
    path: str | os.PathLike[str],
    parameters: GenerationParameters,
    *,
    overwrite: bool = False,
) -> Path:
    """Save ``image`` as a PNG at ``path``, the parameters in its metadata (see :func:`png_info`).

    The PNG is written to a temporary file next to ``path`` and then moved into place, so
    ``path`` never holds a partial file. Without ``overwrite`` an existing ``path`` is never
    replaced, even by a file created while this one was being encoded.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    _require_pillow("write_png")
    from PIL import Image as PILImage

    if not isinstance(image, PILImage.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {_type_name(image)}")
    info = png_info(parameters)
    target = Path(path)
    if not overwrite and os.path.lexists(target):
        raise _exists(target)
    temp = _create_temp(target)
    try:
        with open(temp, "wb") as file:
            image.save(file, format="PNG", pnginfo=info)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temp, target)
        else:
            _link_new(temp, target)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return target


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(
        errno.EEXIST, "refusing to overwrite an existing file (pass overwrite=True)", str(path)
    )


def _create_temp(target: Path) -> Path:
    """An empty new file beside ``target``, created with the umask's permissions."""
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(descriptor)
        return temp
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", str(target.parent))


def _link_new(temp: Path, target: Path) -> None:
    """Put ``temp`` at ``target`` only if ``target`` does not exist, atomically."""
    try:
        os.link(temp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        # No hard links here (FAT, some network file systems): claim the name exclusively,
        # then move the finished file over our own empty placeholder.
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise _exists(target) from None
        os.close(descriptor)
        try:
            os.replace(temp, target)
        except BaseException:
            os.unlink(target)
            raise


def read_parameters(source: str | os.PathLike[str] | Image) -> GenerationParameters:
    """Read the generation parameters stored in an image file or a PIL image.

    Looks, in order, at our ``animagine`` PNG chunk, A1111's ``parameters`` chunk (or, where
    the Animagine 4.0-era demo put its JSON there, that JSON), the official demo's ``metadata``
    JSON chunk, and the Exif ``UserComment`` A1111 writes into JPEG and WebP files.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        MetadataError: not an image, no parameters found, or parameters that do not read.
    """
    _require_pillow("read_parameters")
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if isinstance(source, PILImage.Image):
        return _read_image(source, str(getattr(source, "filename", "") or "<image>"))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path or a PIL image, got {_type_name(source)}")
    name = os.fspath(source)
    with open(name, "rb") as file:
        try:
            image = PILImage.open(file)
        except UnidentifiedImageError as error:
            raise MetadataError(f"{name} is not an image Pillow can read") from error
        with image:
            return _read_image(image, name)


def _read_image(image: Image, name: str) -> GenerationParameters:
    chunks = _text_chunks(image, name)
    if ANIMAGINE_CHUNK in chunks:
        where = f"the {ANIMAGINE_CHUNK!r} chunk of {name}"
        data = _load_json(chunks[ANIMAGINE_CHUNK], where)
        if not isinstance(data, Mapping):
            raise MetadataError(f"{where} is JSON but not an object")
        try:
            return GenerationParameters.from_json(data)
        except MetadataError as error:
            raise MetadataError(f"{where}: {error}") from error
    if PARAMETERS_CHUNK in chunks:
        text = chunks[PARAMETERS_CHUNK]
        demo = _try_json_object(text)
        if demo is not None:
            return _read_demo(demo, f"the {PARAMETERS_CHUNK!r} chunk of {name}")
        return _read_infotext(text, f"the {PARAMETERS_CHUNK!r} chunk of {name}")
    if DEMO_CHUNK in chunks:
        where = f"the {DEMO_CHUNK!r} chunk of {name}"
        return _read_demo(_load_json(chunks[DEMO_CHUNK], where), where)
    comment = _user_comment(image, name)
    if comment:
        return _read_infotext(comment, f"the Exif UserComment of {name}")
    raise MetadataError(f"no generation parameters found in {name}")


def _read_infotext(text: str, where: str) -> GenerationParameters:
    try:
        return GenerationParameters.from_infotext(text)
    except MetadataError as error:
        raise MetadataError(f"{where}: {error}") from error


def _read_demo(data: object, where: str) -> GenerationParameters:
    if not isinstance(data, Mapping):
        raise MetadataError(f"{where} is JSON but not an object")
    try:
        return _from_demo_json(data)
    except MetadataError as error:
        raise MetadataError(f"{where}: {error}") from error


def _text_chunks(image: Image, name: str) -> dict[str, str]:
    wanted = (ANIMAGINE_CHUNK, PARAMETERS_CHUNK, DEMO_CHUNK)
    chunks = {
        key: value
        for key, value in image.info.items()
        if isinstance(key, str) and isinstance(value, str)
    }
    if image.format == "PNG" and not any(key in chunks for key in wanted):
        # Text chunks after the image data show up in `.text`, which decodes the image.
        try:
            text: dict[str, Any] = getattr(image, "text", {})
        except (OSError, SyntaxError, ValueError) as error:
            raise MetadataError(f"cannot read the PNG chunks of {name}: {error}") from error
        chunks.update((key, value) for key, value in text.items() if isinstance(value, str))
    return chunks


def _try_json_object(text: str) -> object | None:
    """The JSON object ``text`` holds, or None when it is not JSON (an A1111 infotext)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None  # an infotext whose prompt starts with "{", as dynamic prompts write
    return data if isinstance(data, dict) else None


def _load_json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except ValueError as error:
        raise MetadataError(f"{where} is not valid JSON: {error}") from error


_EXIF_IFD: Final = 0x8769
_USER_COMMENT: Final = 0x9286


def _user_comment(image: Image, name: str) -> str | None:
    """The Exif UserComment as text (A1111 writes ``UNICODE\\0`` + UTF-16 via piexif)."""
    try:
        raw = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except (OSError, SyntaxError, ValueError, KeyError) as error:
        raise MetadataError(f"cannot read the Exif data of {name}: {error}") from error
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.rstrip("\0")
    if not isinstance(raw, bytes):
        return None
    prefix, body = raw[:8], raw[8:]
    try:
        if prefix == b"UNICODE\0":
            if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
                encoding = "utf-16-le" if body[:2] == b"\xff\xfe" else "utf-16-be"
                text = body[2:].decode(encoding)
            else:
                # piexif writes big-endian; a few tools write little-endian. Text that is
                # mostly ASCII has its zero bytes first in big-endian order.
                big = body[0::2].count(0) >= body[1::2].count(0)
                text = body.decode("utf-16-be" if big else "utf-16-le")
        elif prefix == b"ASCII\0\0\0":
            text = body.decode("ascii")
        elif prefix == b"\0" * 8:
            text = body.decode("utf-8")
        else:
            return None
    except UnicodeDecodeError as error:
        raise MetadataError(f"cannot decode the Exif UserComment of {name}: {error}") from error
    return text.rstrip("\0")
