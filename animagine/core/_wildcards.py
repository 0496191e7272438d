"""Prompt templates with variants and wildcards, in the dynamic-prompts syntax.

The syntax is the one the ``dynamicprompts`` library (behind the sd-dynamic-prompts extension)
documents, read by a small recursive-descent parser (its rules are in the docstrings below)::

    template  = piece*                       (at the top level "|" and "$$" are plain text)
    piece     = text | escape | wildcard | variant
    escape    = "\\" ("{" | "}" | "|")          (any other backslash pair is kept as it is)
    wildcard  = "__" NAME "__"                 NAME: letters, digits, "_", "-", ".", "/", "*"
    variant   = "{" ["~"] [count "$$" [separator "$$"]] option ("|" option)* "}"
    count     = N | N "-" M | "-" M | N "-"     (how many options to draw)
    option    = [NUMBER "::"] piece*           (a weight, default 1; "|" and "}" end it)

Drawing: a variant draws ``count`` of its options (default 1) without replacement, each with
probability proportional to its weight, and joins them with the separator (default ``", "``);
a count above the number of options draws them all. A variant whose only option is a wildcard
(``{2$$__colors__}``) draws from the wildcard's lines. A wildcard is replaced by one of its
lines, drawn again at each occurrence (``mode="random"``, dynamic prompts' rule) or once for
all occurrences of the same name (``mode="demo"``, the official 3.x demos' rule). The lines of
wildcard files are templates too (nesting), up to :data:`MAX_DEPTH` deep.

A :class:`WildcardFolder` reads ``NAME.txt`` files (one value a line; empty lines and lines
starting with ``#`` are skipped), ``.json`` files (a list of values, or objects of lists whose
keys make the names ``dir/key/...``) and, with PyYAML installed, ``.yaml`` files of the same
shape. ``__dir/name__`` is ``dir/name.txt``; ``*`` in a name matches any characters but ``/``.

Expansion is seeded: the same template, seed, folder and mode give the same text.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    MissingFileError,
    PromptSyntaxError,
)

__all__ = [
    "DEFAULT_SEPARATOR",
    "MAX_DEPTH",
    "WILDCARD_MODES",
    "Template",
    "WildcardFolder",
    "expand",
]

#: How drawn variant options are joined when the template names no separator.
DEFAULT_SEPARATOR: Final = ", "
#: How deep wildcard lines may nest wildcards (a cycle is reported before that).
MAX_DEPTH: Final = 16
#: ``"random"``: every wildcard occurrence draws a line (dynamic prompts); ``"demo"``: one line
#: per wildcard name for the whole prompt (the official 3.x demos).
WILDCARD_MODES: Final = ("random", "demo")

_WILDCARD: Final = re.compile(r"__([A-Za-z0-9\-./*]+(?:_[A-Za-z0-9\-./*]+)*)__")
_COUNT: Final = re.compile(r"\s*(\d*)\s*(-?)\s*(\d*)\s*\$\$")
_SEPARATOR: Final = re.compile(r"([^{}|$]*)\$\$")
_WEIGHT: Final = re.compile(r"([^{}|:]*)::")
_ESCAPABLE: Final = "{}|"
_SUFFIXES: Final = (".txt", ".json", ".yaml", ".yml")


# --- the template tree -----------------------------------------------------------------------


@attrs.frozen
class _Text:
    text: str


@attrs.frozen
class _Wildcard:
    name: str
    offset: int


@attrs.frozen
class _Option:
    weight: float
    pieces: tuple[_Node, ...]


@attrs.frozen
class _Variant:
    options: tuple[_Option, ...]
    low: int
    high: int | None  # None: as many as there are options
    separator: str
    offset: int


_Node = _Text | _Wildcard | _Variant


class _Parser:
    """The recursive-descent reader of the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, offset: int | None = None) -> PromptSyntaxError:
        return PromptSyntaxError(
            message, text=self.text, offset=self.pos if offset is None else offset
        )

    def template(self) -> tuple[_Node, ...]:
        """``template = piece*``, up to the end; a stray ``}`` is an error."""
        pieces = self.pieces(top=True)
        if self.pos < len(self.text):
            raise self.error("'}' closes no '{'")
        return pieces

    def pieces(self, *, top: bool) -> tuple[_Node, ...]:
        """``piece*``: stops at the end, at ``}``, and inside a variant at ``|``."""
        text = self.text
        result: list[_Node] = []
        buffer: list[str] = []
        stops = "}" if top else "}|"
        while self.pos < len(text):
            char = text[self.pos]
            if char in stops:
                break
            if char == "\\" and self.pos + 1 < len(text):
                following = text[self.pos + 1]
                buffer.append(following if following in _ESCAPABLE else char + following)
                self.pos += 2
                continue
            if char == "{":
                if buffer:
                    result.append(_Text("".join(buffer)))
                    buffer = []
                result.append(self.variant())
                continue
            if char == "_" and text.startswith("__", self.pos):
                match = _WILDCARD.match(text, self.pos)
                if match is not None:
                    if buffer:
                        result.append(_Text("".join(buffer)))
                        buffer = []
                    result.append(_Wildcard(match.group(1), self.pos))
                    self.pos = match.end()
                    continue
            if char == "$" and text.startswith("${", self.pos):
                raise self.error("template variables (${name=...}) are not supported")
            buffer.append(char)
            self.pos += 1
        if buffer:
            result.append(_Text("".join(buffer)))
        return tuple(result)

    def variant(self) -> _Variant:
        """``"{" ["~"] [count "$$" [separator "$$"]] option ("|" option)* "}"``."""
        start = self.pos
        text = self.text
        self.pos += 1
        if text.startswith("~", self.pos):
            self.pos += 1
        elif self.pos < len(text) and text[self.pos] in "@!":
            raise self.error(
                f"the {text[self.pos]!r} sampler prefix is not supported (random sampling only)"
            )
        low: int = 1
        high: int | None = 1
        separator = DEFAULT_SEPARATOR
        count = _COUNT.match(text, self.pos)
        if count is not None and (count.group(1) or count.group(3)):
            low, high = self.count(count)
            self.pos = count.end()
            found = _SEPARATOR.match(text, self.pos)
            if found is not None:
                separator = found.group(1)
                self.pos = found.end()
        options = [self.option()]
        while self.pos < len(text) and text[self.pos] == "|":
            self.pos += 1
            options.append(self.option())
        if self.pos >= len(text):
            raise self.error("'{' is never closed", start)
        self.pos += 1  # "}"
        return _Variant(tuple(options), low, high, separator, start)

    def count(self, match: re.Match[str]) -> tuple[int, int | None]:
        """``count = N | N "-" M | "-" M | N "-"``."""
        first, dash, second = match.group(1), match.group(2), match.group(3)
        if not dash:
            return int(first), int(first)
        low = int(first) if first else 1
        top = int(second) if second else None
        if top is not None and top < low:
            raise self.error(f"the count range {low}-{top} runs backwards", match.start())
        return low, top

    def option(self) -> _Option:
        """``option = [NUMBER "::"] piece*``."""
        weight = 1.0
        found = _WEIGHT.match(self.text, self.pos)
        if found is not None:
            raw = found.group(1).strip()
            try:
                weight = float(raw)
            except ValueError:
                raise self.error(f"the weight {raw!r} is not a number", found.start()) from None
            if not (weight >= 0 and weight != float("inf")):
                raise self.error(
                    f"the weight {raw!r} must be a finite number, 0 or more", found.start()
                )
            self.pos = found.end()
        return _Option(weight, self.pieces(top=False))


# --- wildcard files --------------------------------------------------------------------------


def _lines(text: str) -> tuple[str, ...]:
    values = (line.strip() for line in text.splitlines())
    return tuple(value for value in values if value and not value.startswith("#"))


def _flatten(data: object, prefix: str, into: dict[str, tuple[str, ...]], where: str) -> None:
    if isinstance(data, list):
        if not all(isinstance(item, (str, int, float)) for item in data):
            raise GenerationArgumentError(f"{where}: a wildcard list must hold strings")
        into[prefix] = tuple(str(item) for item in data)
    elif isinstance(data, Mapping):
        for key, value in data.items():
            _flatten(value, f"{prefix}/{key}" if prefix else str(key), into, where)
    else:
        raise GenerationArgumentError(f"{where}: expected lists of strings, got {data!r}")


class WildcardFolder:
    """A folder of wildcard files, read on first use; that reading is kept for its lifetime.

    A new ``WildcardFolder`` on the same folder sees changed files (unchanged ones come from a
    cache): each generation call makes its own.

    Args:
        folder: The folder: ``NAME.txt`` makes ``__NAME__``, ``dir/NAME.txt`` makes
            ``__dir/NAME__``; ``.json`` and ``.yaml`` files hold lists, or objects of lists.

    Raises:
        MissingFileError: no such folder.
        GenerationArgumentError: a file where the folder should be.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        if not isinstance(folder, (str, os.PathLike)):
            raise GenerationTypeError(
                f"wildcards must be a folder path, got {type(folder).__name__}"
            )
        path = Path(folder).expanduser()
        if not path.exists():
            raise MissingFileError.from_path(os.fspath(folder))
        if not path.is_dir():
            raise GenerationArgumentError(
                f"wildcards must be a folder, got the file {os.fspath(folder)!r}"
            )
        self._folder = path
        self._snapshot: dict[str, tuple[str, ...]] | None = None

    @property
    def folder(self) -> Path:
        """The folder."""
        return self._folder

    def __repr__(self) -> str:
        return f"WildcardFolder({os.fspath(self._folder)!r})"

    def _files(self) -> Iterator[Path]:
        for path in sorted(self._folder.rglob("*")):
            if path.suffix.lower() in _SUFFIXES and path.is_file():
                yield path

    @property
    def names(self) -> tuple[str, ...]:
        """Every wildcard name the folder defines, sorted."""
        return tuple(sorted(self._table()))

    def _table(self) -> dict[str, tuple[str, ...]]:
        if self._snapshot is None:
            self._snapshot = self._read()
        return self._snapshot

    def _read(self) -> dict[str, tuple[str, ...]]:
        stamp = []
        for path in self._files():
            status = path.stat()
            relative = path.relative_to(self._folder).as_posix()
            stamp.append((relative, status.st_mtime_ns, status.st_size))
        return _read_folder(os.fspath(self._folder), tuple(stamp))

    def _matches(self, name: str) -> list[str]:
        table = self._table()
        if "*" not in name:
            return [name] if name in table else []
        matches = [key for key in sorted(table) if fnmatch.fnmatchcase(key, name)]
        return [key for key in matches if key.count("/") == name.count("/")]

    def missing(self, name: str) -> str | None:
        """Why ``__name__`` has no values here (a sentence), or None when it has.

        Raises:
            GenerationArgumentError: a wildcard file that does not read.
        """
        if self._matches(name):
            return None
        if "*" in name:
            return f"no wildcard matches __{name}__ in {self._folder}"
        return f"no wildcard file for __{name}__ in {self._folder} (looked for {name}.txt)"

    def values(self, name: str) -> tuple[str, ...]:
        """The values of ``__name__`` (a ``*`` pattern: of every match, in name order).

        Raises:
            GenerationArgumentError: no wildcard of that name.
        """
        reason = self.missing(name)
        if reason is not None:
            raise GenerationArgumentError(reason)
        table = self._table()
        return tuple(value for key in self._matches(name) for value in table[key])


@functools.lru_cache(maxsize=16)
def _read_folder(
    folder: str, stamp: tuple[tuple[str, int, int], ...]
) -> dict[str, tuple[str, ...]]:
    """The values of every wildcard file of ``folder`` (``stamp`` keys the cache)."""
    root = Path(folder)
    table: dict[str, tuple[str, ...]] = {}
    for relative, _, _ in stamp:
        path = root / relative
        where = os.fspath(path)
        stem, suffix = relative.rsplit(".", 1)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise GenerationArgumentError(f"cannot read wildcard file {where}: {error}") from None
        if suffix.lower() == "txt":
            table[stem] = _lines(text)
            continue
        if suffix.lower() == "json":
            try:
                data = json.loads(text)
            except ValueError as error:
                raise GenerationArgumentError(f"{where}: not valid JSON: {error}") from None
        else:
            from animagine.extras import require  # noqa: PLC0415

            yaml = require("yaml", what="YAML wildcard files", extra="wildcards")
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise GenerationArgumentError(f"{where}: not valid YAML: {error}") from None
        if isinstance(data, list):
            _flatten(data, stem, table, where)
        else:
            prefix = stem.rsplit("/", 1)[0] if "/" in stem else ""
            _flatten(data, prefix, table, where)
    return table


# --- expansion -------------------------------------------------------------------------------


@attrs.frozen
class Template:
    """A prompt template, read and checked; :meth:`expand` draws a prompt from it.

    Build one with :meth:`parse`.

    Attributes:
        text: The template text.
    """

    text: str
    _nodes: tuple[_Node, ...] = attrs.field(repr=False, eq=False)

    @classmethod
    def parse(cls, text: str) -> Template:
        """Read ``text`` as a template.

        Raises:
            PromptSyntaxError: an unclosed ``{``, a stray ``}``, a weight that is not a number,
                an unsupported form (``@``/``!`` prefixes, ``${...}`` variables); with the
                position.
            GenerationTypeError: ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise GenerationTypeError(f"template must be a str, got {type(text).__name__}")
        return cls(text, _parse(text))

    @property
    def wildcard_names(self) -> tuple[str, ...]:
        """The wildcard names the template itself uses (not those of nested lines), in order."""
        names: list[str] = []
        for node in _walk(self._nodes):
            if isinstance(node, _Wildcard) and node.name not in names:
                names.append(node.name)
        return tuple(names)

    @property
    def is_dynamic(self) -> bool:
        """Whether the template has a variant or a wildcard (else it expands to itself)."""
        return any(isinstance(node, (_Wildcard, _Variant)) for node in _walk(self._nodes))

    def check(self, wildcards: WildcardFolder | None = None) -> None:
        """Check that every wildcard, nested ones included, exists and reads as a template.

        Raises:
            PromptSyntaxError: a missing wildcard (at its position in this template, or in the
                line that uses it), a wildcard line that is not a valid template, or wildcards
                that use each other in a cycle.
        """
        _check(self.text, self._nodes, wildcards, (), set())

    def expand(
        self, seed: int, *, wildcards: WildcardFolder | None = None, mode: str = "random"
    ) -> str:
        """The prompt drawn with ``seed``: the same arguments always give the same text.

        Raises:
            PromptSyntaxError: see :meth:`check` (which runs first).
            GenerationArgumentError: an unknown ``mode``.
        """
        _check_mode(mode)
        self.check(wildcards)
        state = _State(random.Random(seed), wildcards, mode == "demo")
        return state.expand(self._nodes, 0)


def _check_mode(mode: object) -> None:
    if mode not in WILDCARD_MODES:
        raise GenerationArgumentError(
            f"wildcard mode must be one of {', '.join(map(repr, WILDCARD_MODES))}, got {mode!r}"
        )


@functools.lru_cache(maxsize=65536)
def _parse(text: str) -> tuple[_Node, ...]:
    return _Parser(text).template()


def _walk(nodes: Sequence[_Node]) -> Iterator[_Node]:
    for node in nodes:
        yield node
        if isinstance(node, _Variant):
            for option in node.options:
                yield from _walk(option.pieces)


def _check(
    text: str,
    nodes: tuple[_Node, ...],
    wildcards: WildcardFolder | None,
    chain: tuple[str, ...],
    done: set[str],
) -> None:
    for node in _walk(nodes):
        if not isinstance(node, _Wildcard) or node.name in done:
            continue
        if wildcards is None:
            raise PromptSyntaxError(
                f"__{node.name}__ needs a wildcard folder (wildcards=...)",
                text=text,
                offset=node.offset,
            )
        if node.name in chain:
            cycle = " -> ".join(f"__{name}__" for name in (*chain, node.name))
            raise PromptSyntaxError(
                f"wildcards use each other in a cycle: {cycle}", text=text, offset=node.offset
            )
        if len(chain) >= MAX_DEPTH:
            raise PromptSyntaxError(
                f"wildcards nest more than {MAX_DEPTH} deep", text=text, offset=node.offset
            )
        reason = wildcards.missing(node.name)
        if reason is not None:
            raise PromptSyntaxError(reason, text=text, offset=node.offset)
        for value in wildcards.values(node.name):
            try:
                inner = _parse(value)
            except PromptSyntaxError as error:
                raise PromptSyntaxError(
                    f"in a line of __{node.name}__: {error.reason}", text=value, offset=error.offset
                ) from None
            _check(value, inner, wildcards, (*chain, node.name), done)
        done.add(node.name)


class _State:
    def __init__(self, rng: random.Random, wildcards: WildcardFolder | None, once: bool) -> None:
        self.rng = rng
        self.wildcards = wildcards
        self.once = once
        self.drawn: dict[str, str] = {}

    def expand(self, nodes: Sequence[_Node], depth: int) -> str:
        parts: list[str] = []
        for node in nodes:
            if isinstance(node, _Text):
                parts.append(node.text)
            elif isinstance(node, _Wildcard):
                parts.append(self.wildcard(node.name, depth))
            else:
                parts.append(self.variant(node, depth))
        return "".join(parts)

    def values(self, name: str) -> tuple[str, ...]:
        assert self.wildcards is not None  # checked before expanding
        return self.wildcards.values(name)

    def wildcard(self, name: str, depth: int) -> str:
        if self.once and name in self.drawn:
            return self.drawn[name]
        values = self.values(name)
        line = values[self.rng.randrange(len(values))] if values else ""
        text = self.expand(_parse(line), depth + 1)
        if self.once:
            self.drawn[name] = text
        return text

    def variant(self, node: _Variant, depth: int) -> str:
        options = node.options
        single = options[0].pieces if len(options) == 1 else ()
        if len(single) == 1 and isinstance(single[0], _Wildcard):
            values = self.values(single[0].name)
            chosen = self.draw([1.0] * len(values), node)
            return node.separator.join(
                self.expand(_parse(values[index]), depth + 1) for index in chosen
            )
        chosen = self.draw([option.weight for option in options], node)
        return node.separator.join(self.expand(options[i].pieces, depth) for i in chosen)

    def draw(self, weights: list[float], node: _Variant) -> list[int]:
        """``count`` indices drawn without replacement, by weight."""
        size = len(weights)
        high = size if node.high is None else min(node.high, size)
        low = min(node.low, high)
        count = low if low == high else self.rng.randint(low, high)
        remaining = list(range(size))
        chosen: list[int] = []
        for _ in range(count):
            total = sum(weights[index] for index in remaining)
            if total <= 0:
                pick = remaining[self.rng.randrange(len(remaining))]
            else:
                point = self.rng.random() * total
                pick = remaining[-1]
                for index in remaining:
                    point -= weights[index]
                    if point < 0:
                        pick = index
                        break
            remaining.remove(pick)
            chosen.append(pick)
        return chosen


def expand(
    template: str,
    *,
    seed: int,
    wildcards: str | os.PathLike[str] | WildcardFolder | None = None,
    mode: str = "random",
) -> str:
    """Expand ``template`` with ``seed``; see :class:`Template` and :class:`WildcardFolder`.

    Raises:
        PromptSyntaxError: a template that does not read, or a missing wildcard (positioned).
        MissingFileError: no such wildcard folder.
        GenerationArgumentError: an unknown ``mode``.
    """
    folder = (
        wildcards
        if wildcards is None or isinstance(wildcards, WildcardFolder)
        else WildcardFolder(wildcards)
    )
    return Template.parse(template).expand(seed, wildcards=folder, mode=mode)
