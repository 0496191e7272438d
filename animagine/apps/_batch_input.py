"""Batch input: the lines of a prompt file as checked generation options."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import types
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from animagine.errors import (
    AnimagineError,
    BatchInputError,
    GenerationArgumentError,
    GenerationTypeError,
)
from animagine.generation import GenerationOptions, check_names, set_values
from animagine.limits import MAX_IMAGES

__all__ = [
    "BadLine",
    "BatchItem",
    "derive_seed",
    "output_names",
    "physical_lines",
    "read_batch",
]

_SIZE_OPTIONS: Final = frozenset({"width", "height", "aspect"})
_FORMATS: Final = ("txt", "jsonl", "csv")
_SUFFIX_FORMATS: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


# --- input ------------------------------------------------------------------------------------


def _frozen_options(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value))


def _check_options(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    assert isinstance(value, Mapping)
    check_names(tuple(value))
    if not isinstance(value.get("prompt"), str):
        raise GenerationTypeError("options must hold a 'prompt' str")
    # Checked here too, not only by GenerationOptions: the output names are built from it, so
    # an item asking for a billion images must not get as far as naming them.
    count = value.get("num_images")
    if count is not None and (
        not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_IMAGES
    ):
        raise GenerationArgumentError(
            f"num_images must be an int from 1 to {MAX_IMAGES}, got {_short(count)}"
        )


_MESSAGE_CHARS: Final = 300


def _brief(message: str) -> str:
    """A report about a line, not the line echoed back: at most 300 characters."""
    if len(message) <= _MESSAGE_CHARS:
        return message
    return f"{message[: _MESSAGE_CHARS - 25]}... ({len(message):,} characters)"


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge int"
    return text if len(text) <= 60 else text[:57] + "..."


def _positive_line(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GenerationArgumentError(f"line must be a positive int, got {value!r}")


@attrs.frozen
class BatchItem:
    """One line of a batch: where it came from and the generation options it asks for.

    Attributes:
        line: The 1-based line of the input file it was read from (the first line of a CSV
            record); it names the outputs (:func:`output_names`) and orders the manifest.
        options: The options the line sets (:class:`animagine.GenerationOptions` field names,
            ``prompt`` at least) as read, with the batch defaults applied; read-only.
    """

    line: int = attrs.field(validator=_positive_line)
    options: Mapping[str, Any] = attrs.field(
        converter=_frozen_options, validator=_check_options, hash=False
    )

    @property
    def num_images(self) -> int:
        count = self.options.get("num_images")
        return count if isinstance(count, int) and 1 <= count <= MAX_IMAGES else 1

    def generation_options(self) -> GenerationOptions:
        """The item's options as the checked record a :class:`Generator` call takes."""
        return GenerationOptions.from_mapping(self.options)


@attrs.frozen
class BadLine:
    """An input line that was left out, and why.

    Attributes:
        line: The 1-based line number in the input file.
        message: What is wrong with it.
    """

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _options(fields: Mapping[str, object], *, text: bool) -> dict[str, object]:
    """The options a line sets, checked by :class:`GenerationOptions` (CSV cells: ``text``)."""
    options = set_values(fields, text=text)  # unset ones take the defaults
    checked = GenerationOptions.from_mapping(options)
    if isinstance(checked.prompt, str) and not checked.prompt.strip():
        raise GenerationArgumentError("no prompt")
    return options


def _with_defaults(options: dict[str, object], defaults: Mapping[str, object]) -> dict[str, object]:
    merged = dict(options)
    sized = any(name in options for name in _SIZE_OPTIONS)
    for name, value in defaults.items():
        if name in merged or value is None:
            continue
        if sized and name in _SIZE_OPTIONS:
            continue  # a line that sets its size sets all of it
        merged[name] = value
    return merged


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise BatchInputError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
        return format
    return _SUFFIX_FORMATS.get(path.suffix.lower(), "txt")


_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def physical_lines(text: str) -> list[str]:
    """``text`` split at ``\n``, ``\r\n`` and ``\r`` only, as editors and ``wc -l`` count lines.

    Not :meth:`str.splitlines`, which also splits at U+2028, U+0085, form feeds...: characters
    that a JSON string may hold as they are (``json.dumps(..., ensure_ascii=False)``).
    """
    lines = _LINE_BREAK.split(text)
    if lines and not lines[-1]:
        lines.pop()  # the text ends with a line break
    return lines


def _text_lines(text: str) -> Iterator[tuple[int, dict[str, object]]]:
    for number, line in enumerate(physical_lines(text), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, {"prompt": stripped}


def _jsonl_lines(text: str) -> Iterator[tuple[int, dict[str, object] | BadLine]]:
    for number, line in enumerate(physical_lines(text), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            reason = error.msg.removesuffix(" at")  # "Invalid control character at"
            yield number, BadLine(number, f"not JSON: {reason} at column {error.colno}")
            continue
        except RecursionError:
            yield number, BadLine(number, "not usable JSON: nested too deeply")
            continue
        except ValueError as error:  # an integer of more than 4,300 digits, ...
            yield number, BadLine(number, f"not usable JSON: {str(error).split(';')[0]}")
            continue
        if not isinstance(data, dict):
            yield number, BadLine(number, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield number, data


def _csv_lines(text: str) -> Iterator[tuple[int, dict[str, object] | BadLine]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        yield 1, BadLine(1, f"bad CSV header: {error}")
        return
    names = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield start, BadLine(start, f"bad CSV: {error}")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield number, BadLine(number, f"{len(row)} fields, the header has {len(names)}")
            continue
        yield number, dict(zip(names, row, strict=True))


def read_batch(
    source: str | os.PathLike[str],
    *,
    format: Literal["txt", "jsonl", "csv"] | None = None,
    defaults: Mapping[str, object] | None = None,
    strict: bool = False,
) -> tuple[tuple[BatchItem, ...], tuple[BadLine, ...]]:
    """Read a batch input file.

    Args:
        source: The file: ``.txt`` (one prompt per line; blank lines and ``#`` comments are
            skipped), ``.jsonl`` (one JSON object of call options per line) or ``.csv`` (a header
            row of option names; an empty cell leaves that option unset). Other suffixes are
            read as text unless ``format`` says otherwise. UTF-8.
        format: ``"txt"``, ``"jsonl"`` or ``"csv"`` instead of the suffix.
        defaults: Options for every line that does not set them (a line that sets ``width``,
            ``height`` or ``aspect`` takes none of those three from here). ``None`` values are
            ignored.
        strict: If any line is bad, raise a :class:`BatchInputError` that lists every bad
            line (all lines are read first).

    Returns:
        ``(items, bad_lines)``, both in line order.

    Raises:
        BatchInputError: an unknown format, a file that is not UTF-8, bad defaults, or (strict)
            bad lines.
        FileNotFoundError: no such file.
    """
    path = Path(source)
    kind = _format_of(path, format)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchInputError(f"{path} is not UTF-8: {error}") from None
    try:
        fixed = _options({"prompt": "-", **(defaults or {})}, text=False)
    except AnimagineError as error:
        raise BatchInputError(f"bad default: {error}") from None
    fixed.pop("prompt")
    if kind == "txt":
        raw: Iterable[tuple[int, dict[str, object] | BadLine]] = _text_lines(text)
    elif kind == "jsonl":
        raw = _jsonl_lines(text)
    else:
        raw = _csv_lines(text)
    items: list[BatchItem] = []
    bad: list[BadLine] = []
    for number, fields in raw:
        if isinstance(fields, BadLine):
            bad.append(fields)
            continue
        try:
            options = _options(fields, text=kind == "csv")
        except AnimagineError as error:
            bad.append(BadLine(number, _brief(str(error))))
            continue
        items.append(BatchItem(number, _with_defaults(options, fixed)))
    if strict and bad:
        raise BatchInputError(f"{path}: {len(bad)} bad line(s)", bad)
    return tuple(items), tuple(bad)


def derive_seed(base: int, line: int) -> int:
    """The seed of a line that sets none: a 32-bit hash of the base seed and the line number.

    A hash rather than ``base + line`` so that lines making several images (seeds ``s, s+1...``)
    do not share noise with the next lines.
    """
    digest = hashlib.sha256(f"animagine-batch:{base}:{line}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def output_names(item: BatchItem) -> tuple[str, ...]:
    """The image file names of an item: ``000042.png``, or ``000042-1.png``... for several."""
    if item.num_images == 1:
        return (f"{item.line:06d}.png",)
    return tuple(f"{item.line:06d}-{k}.png" for k in range(1, item.num_images + 1))
