"""Quality and style presets: the official demos' menus as data, and the user's own.

The texts live in ``presets/official.json``, one table per version, exactly as the official
Gradio demos define them (the 3.0 demo for ``v3``, the 3.1 demo for ``v3.1``, the 4.0 demo for
``v4``). A preset is a positive template holding ``{prompt}`` and a negative text. The demos
assemble a prompt this way, and so does :meth:`PresetTable.apply`:

- the positive: each preset's template gets the text so far as ``{prompt}``, skipped when that
  text is empty; 3.x applies the quality preset first, then the style preset; 4.0 applies the
  style, then its quality tags (its ``add_quality_tags`` switch);
- the negative: style negative, quality negative, user negative. ``v3.1`` and ``v4`` join the
  non-empty parts with ``", "``; ``v3`` concatenates them (its preset texts end in ``", "``).

Users add presets from a JSON or TOML file of the same shape, or from A1111's ``styles.csv``
(:func:`presets_for`).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from animagine.core._vocab import ModelVersion, get_version
from animagine.errors import GenerationArgumentError, GenerationTypeError, MissingFileError

__all__ = [
    "PRESET_FILE_SUFFIXES",
    "Preset",
    "PresetTable",
    "presets_for",
]

#: The file types :func:`presets_for` reads user presets from.
PRESET_FILE_SUFFIXES: Final = (".json", ".toml", ".csv")
_PLACEHOLDER: Final = "{prompt}"
_OFFICIAL: Final = Path(__file__).parent / "presets" / "official.json"
_PRESET_KEYS: Final = frozenset({"name", "prompt", "negative_prompt"})
_TABLE_KEYS: Final = frozenset(
    {"order", "negative", "default_quality", "default_style", "quality", "style"}
)
_USER_KEYS: Final = frozenset({"quality", "style"})


def _text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise GenerationTypeError(
            f"preset {attribute.name} must be a str, got {type(value).__name__}: {value!r}"
        )


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(instance, attribute, value)
    assert isinstance(value, str)
    if not value.strip():
        raise GenerationArgumentError("a preset name must not be empty")


@attrs.frozen
class Preset:
    """One quality or style preset.

    Attributes:
        name: The name the demo's menu shows (``"Standard v3.1"``, ``"Anim4gine"``).
        prompt: The positive template: ``{prompt}`` stands for the text so far. A template
            without ``{prompt}`` (an A1111 style) is appended to it with ``", "``.
        negative_prompt: The negative text it contributes ("" for none). A ``{prompt}`` in it
            (A1111 styles may have one) stands for the rest of the negative prompt.
    """

    name: str = attrs.field(validator=_name)
    prompt: str = attrs.field(default=_PLACEHOLDER, validator=_text)
    negative_prompt: str = attrs.field(default="", validator=_text)

    def apply(self, prompt: str) -> str:
        """The positive template filled with ``prompt``; ``prompt`` unchanged when it is empty.

        The official presets are ``template.format(prompt=prompt)`` as in the demos (a
        plain replacement, so braces in ``prompt`` are safe).
        """
        if not prompt.strip():
            return prompt
        if _PLACEHOLDER in self.prompt:
            return self.prompt.replace(_PLACEHOLDER, prompt)
        return ", ".join(part for part in (prompt.strip(), self.prompt.strip()) if part)

    def to_json(self) -> dict[str, str]:
        """``{"name": ..., "prompt": ..., "negative_prompt": ...}``, the file shape."""
        return attrs.asdict(self)


def _named(presets: Sequence[Preset], name: str, kind: str, version: str) -> Preset:
    for preset in presets:
        if preset.name == name:
            return preset
    folded = [preset for preset in presets if preset.name.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    names = ", ".join(repr(preset.name) for preset in presets)
    raise GenerationArgumentError(
        f"unknown {kind} preset {name!r} for {version}; the {kind} presets are: {names}"
    )


def _named_anywhere(table: PresetTable, kind: str, name: str) -> Preset:
    """``name`` in ``table``, else the one official preset of another version so named."""
    own: Sequence[Preset] = table.quality if kind == "quality" else table.style
    try:
        return _named(own, name, kind, table.version)
    except GenerationArgumentError as error:
        found = {
            preset
            for other in _official().values()
            if other.version != table.version
            for preset in (other.quality if kind == "quality" else other.style)
            if isinstance(name, str) and preset.name.casefold() == name.casefold()
        }
        if len(found) == 1:
            return found.pop()
        raise error from None


@attrs.frozen(kw_only=True)
class PresetTable:
    """The quality and style presets of one model version, and how the demo assembles them.

    Attributes:
        version: The version name (``"v3"``, ``"v3.1"``, ``"v4"``).
        quality: The quality presets, in the demo's menu order.
        style: The style presets, in the demo's menu order (``"(None)"`` first).
        default_quality: The demo's default quality preset.
        default_style: The demo's default style preset.
        quality_first: True when the quality preset is applied before the style (3.x); 4.0
            appends its quality tags after the style's.
        concatenate: True when the negative parts are concatenated as they are (the 3.0 demo,
            whose texts end in ``", "``); otherwise the non-empty parts are joined with ``", "``.
    """

    version: str
    quality: tuple[Preset, ...]
    style: tuple[Preset, ...]
    default_quality: str
    default_style: str
    quality_first: bool = True
    concatenate: bool = False

    def quality_preset(self, name: str) -> Preset:
        """The quality preset called ``name`` (exact, else the one that matches ignoring case).

        A name this version's demo does not have may name another demo's preset, as the 3.1
        demo offers ``Standard v3.0``: ``quality="Standard v3.1"`` works with a 4.0 model, and
        is assembled by this version's rule. A name that several other demos use for different
        presets is not guessed.

        Raises:
            GenerationArgumentError: no such preset; the message lists this version's.
        """
        return _named_anywhere(self, "quality", name)

    def style_preset(self, name: str) -> Preset:
        """The style preset called ``name``; see :meth:`quality_preset`."""
        return _named_anywhere(self, "style", name)

    def apply(
        self,
        prompt: str,
        negative_prompt: str = "",
        *,
        style: str | None = None,
        quality: str | None = None,
        quality_tags: bool = True,
    ) -> tuple[str, str]:
        """The demo's assembly: ``(positive, negative)`` for ``prompt`` with the named presets.

        Args:
            prompt: The user's prompt.
            negative_prompt: The user's negative prompt.
            style: A style preset name, or None for none.
            quality: A quality preset name, or None for none.
            quality_tags: The demos' ``add_quality_tags`` switch: when False, the quality
                preset's positive template is skipped (its negative still applies, as in the
                demos).

        Raises:
            GenerationArgumentError: an unknown preset name.
        """
        style_preset = None if style is None else self.style_preset(style)
        quality_preset = None if quality is None else self.quality_preset(quality)
        positive_quality = quality_preset if quality_tags else None
        steps = (
            (positive_quality, style_preset)
            if self.quality_first
            else (style_preset, positive_quality)
        )
        text = prompt
        for preset in steps:
            if preset is not None:
                text = preset.apply(text)
        parts = [
            "" if style_preset is None else style_preset.negative_prompt,
            "" if quality_preset is None else quality_preset.negative_prompt,
            negative_prompt,
        ]
        return text, self._join_negative(parts)

    def _join_negative(self, parts: list[str]) -> str:
        style, rest = parts[0], parts[1:]
        tail = "".join(rest) if self.concatenate else ", ".join(part for part in rest if part)
        if _PLACEHOLDER in style:
            return style.replace(_PLACEHOLDER, tail)
        if self.concatenate:
            return style + tail
        return ", ".join(part for part in (style, tail) if part)

    def extended(self, quality: Sequence[Preset] = (), style: Sequence[Preset] = ()) -> PresetTable:
        """This table with more presets: a preset with a known name replaces that one."""
        return attrs.evolve(
            self, quality=_merge(self.quality, quality), style=_merge(self.style, style)
        )

    def to_json(self) -> dict[str, Any]:
        """The table in the file shape of ``presets/official.json``."""
        return {
            "order": "quality, style" if self.quality_first else "style, quality",
            "negative": "concat" if self.concatenate else "join",
            "default_quality": self.default_quality,
            "default_style": self.default_style,
            "quality": [preset.to_json() for preset in self.quality],
            "style": [preset.to_json() for preset in self.style],
        }


def _merge(base: tuple[Preset, ...], added: Sequence[Preset]) -> tuple[Preset, ...]:
    result = {preset.name: preset for preset in base}
    for preset in added:
        result[preset.name] = preset
    return tuple(result.values())


# --- reading ---------------------------------------------------------------------------------


def _presets(data: object, where: str) -> tuple[Preset, ...]:
    if not isinstance(data, list):
        raise GenerationArgumentError(f"{where} must be a list of presets")
    result = []
    for index, item in enumerate(data):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise GenerationArgumentError(f"{here} must be an object with a name")
        unknown = sorted(set(item) - _PRESET_KEYS)
        if unknown:
            raise GenerationArgumentError(
                f"{here} has unknown key(s) {', '.join(map(repr, unknown))}; a preset has name,"
                " prompt and negative_prompt"
            )
        if "name" not in item:
            raise GenerationArgumentError(f"{here} has no name")
        try:
            result.append(Preset(**item))
        except (TypeError, ValueError) as error:
            raise GenerationArgumentError(f"{here}: {error}") from None
    names = [preset.name for preset in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GenerationArgumentError(f"{where} names {duplicates[0]!r} twice")
    return tuple(result)


def _table(version: str, data: Mapping[str, Any]) -> PresetTable:
    where = f"the {version} presets"
    order = data["order"]
    if order not in ("quality, style", "style, quality"):
        raise GenerationArgumentError(
            f"{where}: order must be 'quality, style' or 'style, quality'"
        )
    negative = data["negative"]
    if negative not in ("join", "concat"):
        raise GenerationArgumentError(f"{where}: negative must be 'join' or 'concat'")
    table = PresetTable(
        version=version,
        quality=_presets(data["quality"], f"{where}: quality"),
        style=_presets(data["style"], f"{where}: style"),
        default_quality=data["default_quality"],
        default_style=data["default_style"],
        quality_first=order == "quality, style",
        concatenate=negative == "concat",
    )
    table.quality_preset(table.default_quality)
    table.style_preset(table.default_style)
    return table


@functools.cache
def _official() -> dict[str, PresetTable]:
    data = json.loads(_OFFICIAL.read_text(encoding="utf-8"))
    return {name: _table(name, table) for name, table in data.items()}


def _read_mapping(path: Path, suffix: str) -> object:
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as error:
            raise GenerationArgumentError(f"{path}: not valid JSON: {error}") from None
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 (only for TOML files)
    else:  # pragma: no cover - Python 3.10
        from animagine.extras import require  # noqa: PLC0415

        tomllib = require("tomli", what="reading TOML presets on Python 3.10", extra="presets")
    try:
        return tomllib.loads(text)
    except ValueError as error:
        raise GenerationArgumentError(f"{path}: not valid TOML: {error}") from None


_UserPresets = dict[str | None, tuple[tuple[Preset, ...], tuple[Preset, ...]]]


def _read_csv(path: Path) -> _UserPresets:
    """A1111's ``styles.csv``: ``name,prompt,negative_prompt``; every row is a style."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
        header = set(rows[0]) if rows else set()
    if rows and "name" not in header:
        raise GenerationArgumentError(
            f"{path}: an A1111 styles file needs a header 'name,prompt,negative_prompt'"
        )
    styles = [
        Preset(
            name=row["name"],
            prompt=row.get("prompt") or "",
            negative_prompt=row.get("negative_prompt") or "",
        )
        for row in rows
        if (row.get("name") or "").strip()
    ]
    return {None: ((), _presets([p.to_json() for p in styles], f"{path}: styles"))}


@functools.cache
def _read_file(path: Path, stamp: tuple[int, int]) -> _UserPresets:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    data = _read_mapping(path, suffix)
    if not isinstance(data, Mapping):
        raise GenerationArgumentError(f"{path}: expected an object of preset lists")
    result: _UserPresets = {}
    shared = {key: data[key] for key in _USER_KEYS if key in data}
    if shared:
        result[None] = _user_part(shared, f"{path}")
    for key, value in data.items():
        if key in _USER_KEYS:
            continue
        try:
            version = get_version(str(key)).name
        except ValueError:
            raise GenerationArgumentError(
                f"{path}: unknown key {key!r}; expected 'quality', 'style' or a version name"
                " (v3, v3.1, v4)"
            ) from None
        if not isinstance(value, Mapping):
            raise GenerationArgumentError(f"{path}: {key!r} must be an object of preset lists")
        result[version] = _user_part(value, f"{path}: {key}")
    return result


def _user_part(
    data: Mapping[str, Any], where: str
) -> tuple[tuple[Preset, ...], tuple[Preset, ...]]:
    unknown = sorted(set(data) - _TABLE_KEYS)
    if unknown:
        raise GenerationArgumentError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    fixed = sorted(set(data) - _USER_KEYS)
    if fixed:
        raise GenerationArgumentError(
            f"{where}: {fixed[0]!r} is the demo's own; a presets file adds quality and style"
            " presets only"
        )
    return (
        _presets(data.get("quality", []), f"{where}: quality"),
        _presets(data.get("style", []), f"{where}: style"),
    )


def presets_for(
    version: str | ModelVersion, *, file: str | os.PathLike[str] | None = None
) -> PresetTable:
    """The preset table of ``version``: the official demo's, plus those of ``file``.

    Args:
        version: A model version (:func:`animagine.get_version`).
        file: A presets file: JSON or TOML with ``quality`` and ``style`` lists of
            ``{name, prompt, negative_prompt}`` (for every version), and tables named after
            versions holding such lists (for that version); or A1111's ``styles.csv``
            (``name,prompt,negative_prompt``, every row a style for every version). A preset
            named like an official one replaces it.

    Raises:
        MissingFileError: ``file`` does not exist.
        GenerationArgumentError: a file that does not read, or of another type.
    """
    name = get_version(version).name
    table = _official()[name]
    if file is None:
        return table
    if not isinstance(file, (str, os.PathLike)):
        raise GenerationTypeError(f"presets must be a path, got {type(file).__name__}")
    path = Path(file).expanduser()
    if path.suffix.lower() not in PRESET_FILE_SUFFIXES:
        raise GenerationArgumentError(
            f"presets file {os.fspath(file)!r} must be .json, .toml or A1111's styles .csv"
        )
    try:
        status = path.stat()
    except FileNotFoundError:
        raise MissingFileError.from_path(os.fspath(file)) from None
    try:
        parts = _read_file(path.resolve(), (status.st_mtime_ns, status.st_size))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GenerationArgumentError(
            f"cannot read presets file {os.fspath(file)!r}: {error}"
        ) from None
    for key in (None, name):
        if key in parts:
            quality, style = parts[key]
            table = table.extended(quality, style)
    return table
