"""`TagDatabase`: which Danbooru tags name characters and which name series (copyrights).

The shipped database (``_data/tagdb.txt.gz``, built by ``tools/build_tagdb.py``) is a gzip'd text
file: a tab-separated header line, then the character names and then the series names, one per
line, each section sorted. Every name in it is already a lookup key (``lookup_key``), which is
also its spelling. Loading keeps the lines as one sorted list and answers lookups by binary
search, which reads faster and takes far less memory than hashing 375,000 names into sets.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import zlib
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from itertools import chain, islice
from pathlib import Path
from typing import Final, Literal, final

from animagine.core._tag import lookup_key, normalize_name
from animagine.errors import (
    InvalidArgumentError,
    MissingFileError,
    NotAFileError,
    TagDatabaseError,
    WrongTypeError,
)
from animagine.files import path_text

__all__ = ["DEFAULT_TAGDB_FILE", "TagDatabase", "database_or_default"]

Kind = Literal["character", "series"]

#: The file of :meth:`TagDatabase.default`: gzip'd text in the format ``tools/build_tagdb.py``
#: writes (and :meth:`TagDatabase.from_file` reads).
DEFAULT_TAGDB_FILE: Final = Path(__file__).parent.parent / "_data" / "tagdb.txt.gz"
_MAGIC: Final = "animagine-tagdb"
_FORMAT: Final = "1"
# The a1111 tag-autocomplete CSV (and Danbooru's own API) number tag categories like this.
_CSV_KINDS: Final[Mapping[int, Kind]] = {4: "character", 3: "series"}
_CSV_HEADER_NAMES: Final = frozenset({"name", "tag", "tag_name", "tags"})
_BAD_NAME_CHARS: Final = (",", "\n", "\r")


@final
class TagDatabase:
    """Knows which Danbooru tags are characters and which are series (copyrights).

    Build one with :meth:`default` (the shipped Danbooru lists), :meth:`empty`,
    :meth:`from_names`, :meth:`from_csv` or :meth:`from_file`, and combine them with ``|``::

        >>> db = TagDatabase.default() | TagDatabase.from_names(characters=["my oc"])
        >>> db.kind("Arima_Kana"), db.kind("oshi no ko"), db.kind("my OC")
        ('character', 'series', 'character')
        >>> db.series_of("firefly_(honkai:_star_rail)")
        'honkai: star rail'

    Lookups ignore case and treat underscores as spaces (emoticon tags such as ``^_^`` keep
    theirs), the way prompt tags are matched everywhere in animagine. A database never changes once
    built; the default one reads its file on the first lookup, not before.

    Conflicts are settled in this order, and the first rule that applies decides:

    1. Across ``a | b``, the right operand wins, as in ``dict`` union: ``b``'s answer for a name
       it knows replaces ``a``'s, so ``TagDatabase.default() | mine`` lets ``mine`` override.
    2. Within one source, a tag name beats an alias (Danbooru never aliases a name that is
       itself a tag, so such a row is stale).
    3. Within one source, a name listed both as a character and as a series is a character, and
       so is an alias that points at both. Danbooru gives a series that shares a character's
       name a ``(series)`` suffix (``kirby`` and ``kirby (series)``), so a bare name listed as
       both is most likely the character.

    ``is_character``, ``is_series`` and ``kind`` always agree: a name has one kind at most.

    Loading: :meth:`default` and :meth:`from_file` read their file on the first lookup, once and
    thread-safely; the others are read when built. :attr:`loaded` says whether everything has
    been read, and :meth:`load` reads it now (to pay the cost up front, or to see a broken file
    fail at start-up rather than at the first prompt). :meth:`names` lists every name.
    """

    __slots__ = ("_layers", "_len", "_search_order")

    _layers: tuple[_Layer, ...]
    _search_order: tuple[_Layer, ...]
    _len: int | None

    def __init__(self, _layers: tuple[_Layer, ...] = ()) -> None:
        """Create an empty database; use the ``default``/``from_*`` class methods for others."""
        self._layers = _layers
        self._search_order = _layers[::-1]
        self._len = None

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def default(cls) -> TagDatabase:
        """The database shipped with animagine: Danbooru's character and series tags.

        About 323,000 characters and 53,000 series, from the tag lists in ``tipo-kgen``
        (see ``animagine/_data/NOTICE``). The same object is returned on every call. Its file
        is read, once and thread-safely, on the first lookup: about 50 ms and under 40 MB on
        a 2-core server (``benchmarks/results/tagdb.md``).

        Returns:
            The shared default database.
        """
        return _DEFAULT

    @classmethod
    def empty(cls) -> TagDatabase:
        """A database that knows no names.

        Prompt parsing with it falls back to where tags stand in the prompt.

        Returns:
            A database for which every lookup answers "unknown".
        """
        return cls()

    @classmethod
    def from_names(
        cls, *, characters: Iterable[str] = (), series: Iterable[str] = ()
    ) -> TagDatabase:
        """A database of the given names.

        Names are normalised like tags (``"my_oc"`` is ``"my oc"``) and keep their case as
        their canonical spelling; the first spelling of a name wins. A name in both lists is a
        character.

        Args:
            characters: Character names.
            series: Series (copyright) names.

        Returns:
            A database that knows exactly these names.

        Raises:
            WrongTypeError: If an argument is a single ``str``, not iterable, or holds something
                other than ``str`` (a ``TypeError``).
            InvalidArgumentError: If a name is empty or contains a comma or a line break (a
                ``ValueError``).
        """
        table = _Table.from_spellings(
            characters=_collect_names("characters", characters),
            series=_collect_names("series", series),
        )
        return cls((_Layer("names", table=table),))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TagDatabase:
        """A database file in the shipped format, read on the first lookup (like :meth:`default`).

        The format is what ``tools/build_tagdb.py`` writes: gzip'd UTF-8 text, a tab-separated
        header line (``animagine-tagdb``, ``1``, ``characters=N``, ``series=M``), then the
        character names and then the series names, one lookup key per line, each section
        sorted. :data:`~animagine.core.DEFAULT_TAGDB_FILE` is the shipped one.

        Args:
            path: The file.

        Returns:
            A database of the file's names, not read yet.

        Raises:
            MissingFileError: ``path`` does not exist (checked now; a ``FileNotFoundError``).
            NotAFileError: ``path`` is a folder (an ``IsADirectoryError``).
            WrongTypeError: ``path`` is not a str or path.
            TagDatabaseError: on the first lookup (or :meth:`load`), when the file cannot be
                read or is malformed; the next lookup tries again.
        """
        file = Path(_check_path(path))
        layer = _Layer(repr(os.fspath(path)), load=lambda: _read_data_file(file, verify=True))
        return cls((layer,))

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> TagDatabase:
        """Read a Danbooru tag CSV as used by the a1111 tag-autocomplete extensions.

        Each row is ``name,category,post_count,aliases``: ``post_count`` and ``aliases`` may be
        left out, ``aliases`` is one quoted, comma-separated field (``"a_b,c"``) and may be
        empty. Category 4 is a character and 3 a copyright (series); rows of other categories
        are skipped. An alias answers with the kind of its tag, and :meth:`canonical` turns it
        into the tag's name. A header row (``name,category,...``) is allowed; blank lines are
        skipped; line endings may be LF or CRLF, and a UTF-8 BOM is ignored. The file is read
        now, in full.

        Args:
            path: The CSV file.

        Returns:
            A database of the file's character and copyright tags and their aliases.

        Raises:
            MissingFileError: If the file does not exist (a ``FileNotFoundError``).
            NotAFileError: If ``path`` is a folder (an ``IsADirectoryError``).
            WrongTypeError: If ``path`` is not a str or path.
            TagDatabaseError: If the file cannot be read, is not UTF-8, or has a malformed row;
                the message names the file and the line.
        """
        table = _read_csv(_check_path(path))
        return cls((_Layer(repr(os.fspath(path)), table=table),))

    # -- loading -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether every source has been read (:meth:`default` reads its file on first lookup)."""
        return all(layer.loaded for layer in self._layers)

    def load(self) -> TagDatabase:
        """Read every source not read yet, now; once and thread-safely, as a lookup would.

        Returns:
            This database, so ``TagDatabase.default().load()`` reads and returns it.

        Raises:
            TagDatabaseError: A file cannot be read or is malformed (the next call tries again).
        """
        for layer in self._layers:
            layer.table()
        return self

    def names(self) -> Iterator[str]:
        """Every distinct character and series name, in its canonical spelling; aliases not.

        Where sources of a union share a name, it comes once, from the source that answers for
        it. The order is unspecified. This loads every source.
        """
        seen: set[str] = set()
        tables = [layer.table() for layer in self._search_order]
        single = len(tables) == 1
        for table in tables:
            for key in table.name_keys():
                if single or key not in seen:
                    if not single:
                        seen.add(key)
                    yield table.spellings.get(key, key)

    # -- lookups -----------------------------------------------------------------------------

    def kind(self, name: str) -> Kind | None:
        """What ``name`` (a tag name or alias) is.

        Args:
            name: A tag name, with spaces or underscores, in any case.

        Returns:
            ``"character"``, ``"series"``, or ``None`` for a name the database does not know.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        return None if hit is None else hit[0]

    def is_character(self, name: str) -> bool:
        """Whether ``name`` is a character tag (or one's alias).

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        return self.kind(name) == "character"

    def is_series(self, name: str) -> bool:
        """Whether ``name`` is a series (copyright) tag (or one's alias).

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        return self.kind(name) == "series"

    def canonical(self, name: str) -> str | None:
        """The database's spelling of a known name, or of the tag an alias stands for.

        Args:
            name: A tag name or alias, with spaces or underscores, in any case.

        Returns:
            The canonical name (``"Arima_Kana"`` gives ``"arima kana"``), or ``None`` for an
            unknown name.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        return None if hit is None else hit[1]

    def series_of(self, character: str) -> str | None:
        """The series a character belongs to, read from its name's qualifier.

        Danbooru qualifies character names with their series: ``firefly (honkai: star rail)``
        belongs to ``honkai: star rail``. The trailing parenthesised groups of the character's
        canonical name are tried right to left (``toki (bunny) (blue archive)``,
        ``awp (girls' frontline) (nekoya (liu))``); the first one that is a known series, as
        written or with Danbooru's ``(series)`` suffix (``saber (fate)`` belongs to
        ``fate (series)``), or that is an alias of one, gives the answer. Nothing else is
        guessed.

        Args:
            character: A character name or alias.

        Returns:
            The canonical name of the series, or ``None`` when ``character`` is not a known
            character or its name names no known series.

        Raises:
            WrongTypeError: If ``character`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(character, argument="character"))
        if hit is None or hit[0] != "character":
            return None
        for qualifier in _qualifiers(hit[1]):
            for candidate in (qualifier, f"{qualifier} (series)"):
                found = self._find(lookup_key(candidate))
                if found is not None and found[0] == "series":
                    return found[1]
        return None

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a known character or series name or alias (never raises)."""
        return isinstance(name, str) and self._find(lookup_key(name)) is not None

    def __len__(self) -> int:
        """The number of distinct character and series names, aliases not counted.

        This loads the default database if it is part of this one.
        """
        if self._len is None:
            self._len = _count_names([layer.table() for layer in self._layers])
        return self._len

    def __or__(self, other: TagDatabase) -> TagDatabase:
        """The union of two databases; where they disagree, ``other`` wins.

        Nothing is loaded or copied: ``TagDatabase.default() | mine`` stays lazy.
        """
        if not isinstance(other, TagDatabase):
            return NotImplemented
        layers: list[_Layer] = []
        # A source repeated further right answers for all its names there, so the left copy
        # is dead weight.
        for layer in reversed(self._layers + other._layers):
            if layer not in layers:
                layers.append(layer)
        return TagDatabase(tuple(reversed(layers)))

    def __repr__(self) -> str:
        if not self._layers:
            return "<TagDatabase empty>"
        return f"<TagDatabase {' | '.join(layer.describe() for layer in self._layers)}>"

    # -- internals ---------------------------------------------------------------------------

    def _find(self, key: str) -> tuple[Kind, str] | None:
        for layer in self._search_order:
            hit = layer.table().find(key)
            if hit is not None:
                return hit
        return None


@final
class _SortedKeys:
    """A read-only view of ``keys[lo:hi]``, sorted, searched by bisection (no copy)."""

    __slots__ = ("_hi", "_keys", "_lo")

    def __init__(self, keys: list[str], lo: int, hi: int) -> None:
        self._keys = keys
        self._lo = lo
        self._hi = hi

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        index = bisect_left(self._keys, key, self._lo, self._hi)
        return index < self._hi and self._keys[index] == key

    def __len__(self) -> int:
        return self._hi - self._lo

    def __iter__(self) -> Iterator[str]:
        return islice(self._keys, self._lo, self._hi)


@final
class _Table:
    """One source's names, keyed by ``lookup_key``; character and series names are disjoint."""

    __slots__ = ("character_aliases", "characters", "series", "series_aliases", "spellings")

    def __init__(
        self,
        *,
        characters: Collection[str],
        series: Collection[str],
        spellings: Mapping[str, str],
        character_aliases: Mapping[str, str],
        series_aliases: Mapping[str, str],
    ) -> None:
        self.characters = characters
        self.series = series
        # Canonical spellings that differ from their key; a key absent here is its own.
        self.spellings = spellings
        # Alias key -> canonical spelling of the tag it stands for.
        self.character_aliases = character_aliases
        self.series_aliases = series_aliases

    @classmethod
    def from_spellings(
        cls,
        *,
        characters: Mapping[str, str],
        series: Mapping[str, str],
        character_aliases: Mapping[str, str] | None = None,
        series_aliases: Mapping[str, str] | None = None,
    ) -> _Table:
        """Build from ``key -> spelling`` maps, applying the conflict rules."""
        series = {key: name for key, name in series.items() if key not in characters}
        names = characters.keys() | series.keys()
        char_aliases = {
            key: name for key, name in (character_aliases or {}).items() if key not in names
        }
        ser_aliases = {
            key: name
            for key, name in (series_aliases or {}).items()
            if key not in names and key not in char_aliases
        }
        return cls(
            characters=frozenset(characters),
            series=frozenset(series),
            spellings={
                key: name for key, name in chain(characters.items(), series.items()) if key != name
            },
            character_aliases=char_aliases,
            series_aliases=ser_aliases,
        )

    def find(self, key: str) -> tuple[Kind, str] | None:
        """The kind and canonical spelling for a lookup key, or ``None``."""
        if key in self.characters:
            return "character", self.spellings.get(key, key)
        if key in self.series:
            return "series", self.spellings.get(key, key)
        target = self.character_aliases.get(key)
        if target is not None:
            return "character", target
        target = self.series_aliases.get(key)
        if target is not None:
            return "series", target
        return None

    def has_name(self, key: str) -> bool:
        """Whether ``key`` is a character or series name here (aliases do not count)."""
        return key in self.characters or key in self.series

    def name_keys(self) -> Iterator[str]:
        """Every character and series name key."""
        return chain(self.characters, self.series)

    def __len__(self) -> int:
        return len(self.characters) + len(self.series)

    def describe(self) -> str:
        """Counts for ``repr``: ``"3 characters, 2 series, 4 aliases"``."""
        aliases = len(self.character_aliases) + len(self.series_aliases)
        text = f"{_plural(len(self.characters), 'character')}, {len(self.series)} series"
        return f"{text}, {_plural(aliases, 'alias')}" if aliases else text


@final
class _Layer:
    """One operand of a union: a table, or the recipe to read it on first use."""

    __slots__ = ("_load", "_lock", "_table", "label")

    def __init__(
        self,
        label: str,
        *,
        table: _Table | None = None,
        load: Callable[[], _Table] | None = None,
    ) -> None:
        self.label = label
        self._table = table
        self._load = load
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the table has been read."""
        return self._table is not None

    def table(self) -> _Table:
        """The table, read on the first call; concurrent first calls read it once."""
        table = self._table
        if table is None:
            with self._lock:
                table = self._table
                if table is None:
                    assert self._load is not None  # a layer has a table or a loader
                    table = self._table = self._load()
        return table

    def describe(self) -> str:
        """``label (counts)`` without loading anything."""
        if self._table is None:
            return f"{self.label} (not loaded)"
        return f"{self.label} ({self._table.describe()})"


def _read_data_file(path: Path, *, verify: bool = False) -> _Table:
    """Read a database file written by ``tools/build_tagdb.py`` (format 1).

    ``verify`` also checks that each section is sorted without repeats, as bisection needs (the
    shipped file is checked by the tests instead, to keep its loading fast).
    """
    shown = os.fspath(path)
    try:
        compressed = path.read_bytes()
    except OSError as error:
        raise TagDatabaseError(
            f"cannot read tag database {shown!r}: {error.strerror or error}"
        ) from error
    try:
        # wbits=31: a gzip container. zlib reads it in one call, faster than the gzip module.
        text = zlib.decompress(compressed, wbits=31).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as error:
        raise TagDatabaseError(
            f"tag database {shown!r} is not gzip'd UTF-8 text: {error}"
        ) from error
    del compressed
    lines = text.split("\n")
    del text
    header = lines[0].split("\t")
    if header[:2] != [_MAGIC, _FORMAT]:
        raise TagDatabaseError(
            f"tag database {shown!r}, line 1: expected a {_MAGIC!r} format {_FORMAT} header, "
            f"got {lines[0][:80]!r}"
        )
    fields = dict(field.partition("=")[::2] for field in header[2:])
    try:
        characters = int(fields["characters"])
        series = int(fields["series"])
    except (KeyError, ValueError) as error:
        raise TagDatabaseError(
            f"tag database {shown!r}, line 1: header lacks valid characters=/series= counts"
        ) from error
    if characters < 0 or series < 0:
        raise TagDatabaseError(f"tag database {shown!r}, line 1: negative name counts")
    end = 1 + characters + series
    if len(lines) != end + 1 or lines[end]:
        raise TagDatabaseError(
            f"tag database {shown!r}: header promises {end - 1} names, file has {len(lines) - 2}"
        )
    if verify:
        for first, last in ((1, 1 + characters), (1 + characters, end)):
            for index in range(first + 1, last):
                if not lines[index - 1] < lines[index]:
                    raise TagDatabaseError(
                        f"tag database {shown!r}, line {index + 1}: names are not sorted and"
                        f" unique ({lines[index - 1][:40]!r} then {lines[index][:40]!r})"
                    )
    return _Table(
        characters=_SortedKeys(lines, 1, 1 + characters),
        series=_SortedKeys(lines, 1 + characters, end),
        spellings={},  # every name in the file is its own key
        character_aliases={},
        series_aliases={},
    )


def _check_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a str, when it names an existing file."""
    name = path_text(path)
    if not name:
        raise InvalidArgumentError("path must not be empty")
    if os.path.isdir(name):
        raise NotAFileError.from_path(name)
    if not os.path.exists(name):
        raise MissingFileError.from_path(name)
    return name


def _read_csv(path: str | os.PathLike[str]) -> _Table:
    """Read an a1111 tag-autocomplete CSV (see :meth:`TagDatabase.from_csv`)."""
    shown = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise TagDatabaseError(
            f"cannot read tag database {shown!r}: {error.strerror or error}"
        ) from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise TagDatabaseError(
            f"tag database {shown!r}, line {line}: not UTF-8 text ({error.reason})"
        ) from error

    spellings: dict[Kind, dict[str, str]] = {"character": {}, "series": {}}
    aliases: dict[Kind, dict[str, str]] = {"character": {}, "series": {}}
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    line = 1
    first_row = True
    try:
        for row in reader:
            fields = [field.strip() for field in row]
            if not any(fields):
                line = reader.line_num + 1
                continue
            try:
                parsed = _parse_csv_row(fields, header_allowed=first_row)
            except ValueError as error:
                raise TagDatabaseError(f"tag database {shown!r}, line {line}: {error}") from None
            first_row = False
            line = reader.line_num + 1
            if parsed is None:
                continue
            kind, name, row_aliases = parsed
            spelling = spellings[kind].setdefault(lookup_key(name), name)
            for alias in row_aliases:
                aliases[kind].setdefault(lookup_key(alias), spelling)
    except csv.Error as error:
        raise TagDatabaseError(
            f"tag database {shown!r}, line {reader.line_num}: {error}"
        ) from error
    return _Table.from_spellings(
        characters=spellings["character"],
        series=spellings["series"],
        character_aliases=aliases["character"],
        series_aliases=aliases["series"],
    )


def _parse_csv_row(
    fields: list[str], *, header_allowed: bool
) -> tuple[Kind, str, list[str]] | None:
    """``(kind, name, aliases)`` for a character or copyright row, ``None`` to skip the row.

    Raises:
        ValueError: With the reason, for a malformed row.
    """
    if len(fields) < 2 or len(fields) > 4:
        raise ValueError(
            f"expected name,category[,post_count[,aliases]] (2 to 4 fields), "
            f"got {len(fields)}: {','.join(fields)[:80]!r}"
        )
    name = normalize_name(fields[0])
    try:
        category = int(fields[1])
    except ValueError:
        if header_allowed and fields[0].lower() in _CSV_HEADER_NAMES:
            return None
        raise ValueError(f"category must be an integer, got {fields[1]!r}") from None
    if len(fields) > 2 and fields[2]:
        try:
            int(fields[2])
        except ValueError:
            raise ValueError(f"post count must be an integer, got {fields[2]!r}") from None
    if not name:
        raise ValueError("empty tag name")
    kind = _CSV_KINDS.get(category)
    if kind is None:
        return None
    row_aliases = []
    if len(fields) > 3:
        row_aliases = [alias for alias in map(normalize_name, fields[3].split(",")) if alias]
    return kind, name, row_aliases


def _collect_names(argument: str, names: Iterable[str]) -> dict[str, str]:
    """``key -> spelling`` for :meth:`TagDatabase.from_names`, validating each name."""
    if isinstance(names, str):
        raise WrongTypeError(f"{argument} must be an iterable of names, not a str: {names!r}")
    try:
        items = iter(names)
    except TypeError:
        raise WrongTypeError(
            f"{argument} must be an iterable of names, got {type(names).__name__}"
        ) from None
    spellings: dict[str, str] = {}
    for raw in items:
        if not isinstance(raw, str):
            raise WrongTypeError(
                f"{argument} must hold str names, got {type(raw).__name__}: {raw!r}"
            )
        name = normalize_name(raw)
        if not name:
            raise InvalidArgumentError(f"{argument} contains an empty name: {raw!r}")
        for bad in _BAD_NAME_CHARS:
            if bad in name:
                raise InvalidArgumentError(f"{argument} name must not contain {bad!r}: {raw!r}")
        spellings.setdefault(name.lower(), name)
    return spellings


def database_or_default(database: TagDatabase | None) -> TagDatabase:
    """``database``, or :meth:`TagDatabase.default` for None (what ``database=`` options take)."""
    if database is None:
        return _DEFAULT
    if not isinstance(database, TagDatabase):
        raise WrongTypeError(
            f"database must be a TagDatabase or None, got {type(database).__name__}"
        )
    return database


def _key_of(name: object, *, argument: str = "name") -> str:
    if not isinstance(name, str):
        raise WrongTypeError(f"{argument} must be a str, got {type(name).__name__}: {name!r}")
    return lookup_key(name)


def _qualifiers(name: str) -> Iterator[str]:
    """The trailing parenthesised groups of ``name``, right to left, outer groups only.

    ``"awp (girls' frontline) (nekoya (liu))"`` gives ``"nekoya (liu)"`` then
    ``"girls' frontline"``. A group must follow a space and some name.
    """
    end = len(name)
    while end and name[end - 1] == ")":
        depth = 0
        start = end - 1
        while start >= 0:
            char = name[start]
            if char == ")":
                depth += 1
            elif char == "(":
                depth -= 1
                if depth == 0:
                    break
            start -= 1
        if start < 2 or name[start - 1] != " ":
            return
        yield name[start + 1 : end - 1]
        end = start - 1


def _count_names(tables: list[_Table]) -> int:
    """The number of distinct name keys across ``tables``."""
    if not tables:
        return 0
    biggest = max(tables, key=len)
    extra = {
        key
        for table in tables
        if table is not biggest
        for key in table.name_keys()
        if not biggest.has_name(key)
    }
    return len(biggest) + len(extra)


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"


def _new_default() -> TagDatabase:
    """A fresh, unloaded default database (``TagDatabase.default()`` shares one)."""
    # The lambda looks both names up when it runs, so tests can point it elsewhere.
    return TagDatabase((_Layer("default", load=lambda: _read_data_file(DEFAULT_TAGDB_FILE)),))


_DEFAULT: Final = _new_default()
