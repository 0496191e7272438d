"""`TagDatabase`: Danbooru's tags, their categories, post counts and aliases, offline.

The shipped database (``_data/tagdb.txt.gz``, built by ``tools/build_tagdb.py``) is gzip'd text
in the format :func:`format_lines` writes and :func:`_parse_lines` reads (described in the build
script): every tag and alias is one ``key <TAB> value`` entry, the entries are sorted by key and
cut into blocks of 16, one line per block, and the blocks into chunks of 64, one gzip member per
chunk (:func:`pack_lines`). A table keeps one string per block and the blocks' first keys; a
lookup bisects the first keys and splits one short line. The first lookup reads the file and its
index of chunks and unpacks one chunk (about 20 KB of text), and each chunk is unpacked when a
lookup first needs it, so a process that checks a few prompts never unpacks the 11 MB of text.

Search and spelling suggestions need indexes of their own; they are built when first needed, in
parts (search per first character, suggestions per word length).

Every source (``from_names``, ``from_csv``, ``from_file``, the default) is held the same way, so
lookups, prefix search and spelling suggestions share one code path.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import re
import threading
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, pairwise
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar, final, get_args

import attrs

from animagine.core._tag import lookup_key, normalize_name
from animagine.errors import (
    InvalidArgumentError,
    MissingFileError,
    NotAFileError,
    TagDatabaseError,
    WrongTypeError,
)
from animagine.files import path_text

__all__ = [
    "DEFAULT_TAGDB_FILE",
    "FORMAT",
    "Category",
    "DatabaseMemo",
    "TagDatabase",
    "TagMatch",
    "database_or_default",
    "format_lines",
]

Kind = Literal["character", "series"]
Category = Literal["general", "artist", "series", "character", "meta"]

#: The file of :meth:`TagDatabase.default`: gzip'd text in the format ``tools/build_tagdb.py``
#: writes (and :meth:`TagDatabase.from_file` reads).
DEFAULT_TAGDB_FILE: Final = Path(__file__).parent.parent / "_data" / "tagdb.txt.gz"
MAGIC: Final = "animagine-tagdb"
FORMAT: Final = "3"
#: Entries per block line, and block lines per chunk (one gzip member of the data file).
BLOCK: Final = 16
CHUNK: Final = 64
#: The gzip extra field of a data file's first member that lists the chunk members' sizes.
_EXTRA_ID: Final = b"AT"
#: The categories in the order of the data file's header.
CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)
_LETTER: Final[Mapping[Category, str]] = {
    "general": "g",
    "artist": "a",
    "series": "s",
    "character": "c",
    "meta": "m",
}
_CATEGORY_OF: Final[Mapping[str, Category]] = {
    letter: category for category, letter in _LETTER.items()
}
_VALUE: Final = re.compile(r"[gascm](?:0|[1-9][0-9]*)?|>.+", re.DOTALL)
# The a1111 tag-autocomplete CSV (and Danbooru's own API) number tag categories like this.
_CSV_CATEGORIES: Final[Mapping[int, Category]] = {
    0: "general",
    1: "artist",
    3: "series",
    4: "character",
    5: "meta",
}
_CSV_HEADER_NAMES: Final = frozenset({"name", "tag", "tag_name", "tags"})
_BAD_NAME_CHARS: Final = (",", "\n", "\r")
#: ``suggest`` proposes tags of these categories with at least this many posts.
SUGGEST_CATEGORIES: Final[frozenset[Category]] = frozenset(
    {"general", "meta", "character", "series"}
)
SUGGEST_MIN_POSTS: Final = 100
#: ... and characters and series with at least this many.
SUGGEST_MIN_NAME_POSTS: Final = 1000
_SUGGEST_MIN: Final[Mapping[str, int]] = {
    "g": SUGGEST_MIN_POSTS,
    "m": SUGGEST_MIN_POSTS,
    "c": SUGGEST_MIN_NAME_POSTS,
    "s": SUGGEST_MIN_NAME_POSTS,
}
#: Names of this many characters or more may be two edits away from the suggestion.
SUGGEST_LONG: Final = 10
#: Search keeps entries ranked within groups of a common first 0 to 3 characters ...
_SEARCH_LEVELS: Final = 4
#: ... and sorts the entries of a prefix this rare itself.
_SEARCH_SCAN: Final = 2048
_HASH_MASK: Final = (1 << 43) - 1
#: A block value with a count of 100 or more in a category ``suggest`` proposes.
_CANDIDATE: Final = re.compile(r"\t[gmcs][1-9][0-9]{2}")
_INDEX_BITS: Final = 20

# (category, canonical spelling, post count, whether the name asked for is an alias)
_Hit = tuple[Category, str, "int | None", bool]
# A search result before spelling: rank (-posts, entry key), tag key, category, posts, alias key
_Match = tuple[int, str, str, Category, "int | None", "str | None"]
# A chunk of a table: its blocks' first keys, and its blocks
_Chunk = tuple[list[str], list[str]]


@attrs.frozen
class TagMatch:
    """One answer of :meth:`TagDatabase.search`.

    Attributes:
        name: The tag's canonical name (``"long hair"``).
        category: ``"general"``, ``"artist"``, ``"series"``, ``"character"`` or ``"meta"``.
        post_count: How many Danbooru posts carry the tag, or ``None`` when the source does not
            say (most character and series names of the shipped database beyond Danbooru's
            tag list, and every name of :meth:`TagDatabase.from_names`).
        alias: The alias that matched the text, when the tag's own name did not
            (``"longhair"`` for ``long hair``); ``None`` when the name itself matched.
    """

    name: str
    category: Category
    post_count: int | None
    alias: str | None = None


@final
class TagDatabase:
    """Danbooru's tags offline: categories, post counts, aliases, search and suggestions.

    Build one with :meth:`default` (the shipped Danbooru tags), :meth:`empty`,
    :meth:`from_names`, :meth:`from_csv` or :meth:`from_file`, and combine them with ``|``::

        >>> db = TagDatabase.default() | TagDatabase.from_names(characters=["my oc"])
        >>> db.kind("Arima_Kana"), db.kind("oshi no ko"), db.kind("my OC"), db.kind("smile")
        ('character', 'series', 'character', None)
        >>> db.category("smile"), db.post_count("long hair") > 1_000_000
        ('general', True)
        >>> db.canonical("longhair"), db.alias_target("long hair")
        ('long hair', None)
        >>> db.series_of("firefly_(honkai:_star_rail)")
        'honkai: star rail'

    Lookups ignore case and treat underscores as spaces (emoticon tags such as ``^_^`` keep
    theirs), the way prompt tags are matched everywhere in animagine. A database never changes once
    built; the default one reads its file on the first lookup, not before.

    An alias (``longhair``, ``saber``) answers every lookup with what its source says about the
    tag it stands for: its category, post count and, from :meth:`canonical`, its name.

    Conflicts are settled in this order, and the first rule that applies decides:

    1. Across ``a | b``, the right operand wins, as in ``dict`` union: ``b``'s answer for a name
       it knows (as a tag or as an alias) replaces ``a``'s, so ``TagDatabase.default() | mine``
       lets ``mine`` override.
    2. Within one source, a tag name beats an alias (Danbooru never aliases a name that is
       itself a tag, so such a row is stale).
    3. Within one source, a name listed both as a character and as a series is a character, and
       so is an alias that points at both. Danbooru gives a series that shares a character's
       name a ``(series)`` suffix (``kirby`` and ``kirby (series)``), so a bare name listed as
       both is most likely the character. Otherwise the first row for a name wins.

    ``is_character``, ``is_series``, ``kind`` and ``category`` always agree: a name has one
    category at most.

    Loading: :meth:`default` and :meth:`from_file` read their file on the first lookup, once and
    thread-safely; the others are read when built. The default database then unpacks each part
    of its file (a chunk of about 1,000 names) on the first lookup that needs it. :attr:`loaded`
    says whether every file has been read, and :meth:`load` reads and unpacks everything now (to
    pay the cost up front, or to see a broken file fail at start-up rather than at the first
    prompt). :meth:`names` lists every tag.
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
        """The database shipped with animagine: Danbooru's tags, post counts and aliases.

        Every tag of Danbooru's tag list with at least 25 posts (general, artist, series,
        character and meta tags, with their post counts and 30,000 aliases), and the longer
        character and series lists of ``tipo-kgen`` (about 322,000 characters and 52,000 series
        in all); see ``animagine/_data/NOTICE``. The same object is returned on every call. Its
        file is read, once and thread-safely, on the first lookup, which unpacks only the part
        it needs (milliseconds); :meth:`load` unpacks all of it (``benchmarks/results/tagdb.md``).

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
        """A database of the given character and series names (no post counts, no aliases).

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
        tags: dict[str, tuple[Category, int | None]] = {}
        spellings: dict[str, str] = {}
        for category, argument, names in (
            ("character", "characters", characters),
            ("series", "series", series),
        ):
            for key, name in _collect_names(argument, names).items():
                if key not in tags:
                    tags[key] = (category, None)  # type: ignore[assignment]
                    spellings[key] = name
        table = _Table.build(tags, {}, spellings)
        return cls((_Layer("names", table=table),))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TagDatabase:
        """A database file in the shipped format, read on the first lookup (like :meth:`default`).

        The format is what ``tools/build_tagdb.py`` writes (format 3, described there): gzip'd
        UTF-8 text, a tab-separated header line (``animagine-tagdb``, ``3``, the number of tags
        of each category and of aliases, the block and chunk sizes), the first key of each
        chunk, then the sorted entries in blocks. The shipped file stores each chunk as a gzip
        member of its own; any other gzip file of the same text is read too.
        :data:`~animagine.core.DEFAULT_TAGDB_FILE` is the shipped one. The file is read and
        checked in full on the first lookup (its order, its values, its counts).

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
        empty. Categories are Danbooru's: 0 general, 1 artist, 3 copyright (series),
        4 character, 5 meta; rows of other categories are skipped. An alias answers with its
        tag's category and post count, and :meth:`canonical` turns it into the tag's name. A
        header row (``name,category,...``) is allowed; blank lines are skipped; line endings
        may be LF or CRLF, and a UTF-8 BOM is ignored. The file is read now, in full.

        Args:
            path: The CSV file.

        Returns:
            A database of the file's tags and their aliases.

        Raises:
            MissingFileError: If the file does not exist (a ``FileNotFoundError``).
            NotAFileError: If ``path`` is a folder (an ``IsADirectoryError``).
            WrongTypeError: If ``path`` is not a str or path.
            TagDatabaseError: If the file cannot be read, is not UTF-8, or has a malformed row;
                the message names the file and the line.
        """
        tags, aliases, spellings = read_csv(_check_path(path))
        table = _Table.build(tags, aliases, spellings)
        return cls((_Layer(repr(os.fspath(path)), table=table),))

    # -- loading -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether every source has been read (:meth:`default` reads its file on first lookup)."""
        return all(layer.loaded for layer in self._layers)

    def load(self) -> TagDatabase:
        """Read and unpack every source not read yet, now; once and thread-safely.

        Returns:
            This database, so ``TagDatabase.default().load()`` reads and returns it.

        Raises:
            TagDatabaseError: A file cannot be read or is malformed (the next call tries again).
        """
        for layer in self._layers:
            layer.table().blocks()  # unpacks every chunk
        return self

    def names(self) -> Iterator[str]:
        """Every distinct tag name, of every category, in its canonical spelling; aliases not.

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
                    yield table.spelling(key)

    # -- lookups -----------------------------------------------------------------------------

    def kind(self, name: str) -> Kind | None:
        """Whether ``name`` (a tag name or alias) is a character or a series.

        Args:
            name: A tag name, with spaces or underscores, in any case.

        Returns:
            ``"character"``, ``"series"``, or ``None`` for a tag of another category or a name
            the database does not know.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        if hit is None or hit[0] not in ("character", "series"):
            return None
        return hit[0]

    def category(self, name: str) -> Category | None:
        """The category of a tag, or of the tag an alias stands for.

        Args:
            name: A tag name or alias, with spaces or underscores, in any case.

        Returns:
            ``"general"``, ``"artist"``, ``"series"``, ``"character"`` or ``"meta"``, or
            ``None`` for a name the database does not know.

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
            The canonical name (``"Arima_Kana"`` gives ``"arima kana"``, the alias ``"saber"``
            gives ``"saber (fate)"``), or ``None`` for an unknown name.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        return None if hit is None else hit[1]

    def alias_target(self, name: str) -> str | None:
        """The tag an alias stands for, when ``name`` is an alias and not itself a tag.

        Args:
            name: A name, with spaces or underscores, in any case.

        Returns:
            The canonical name of the tag (``"sister cleaire"`` gives ``"sister claire"``), or
            ``None`` when ``name`` is a tag or unknown.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        return hit[1] if hit is not None and hit[3] else None

    def post_count(self, name: str) -> int | None:
        """How many Danbooru posts carry a tag (or the tag an alias stands for).

        Args:
            name: A tag name or alias, with spaces or underscores, in any case.

        Returns:
            The post count, or ``None`` for an unknown name or a tag its source gives no count
            (a name of :meth:`from_names`, most character names beyond Danbooru's tag list).

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        hit = self._find(_key_of(name))
        return None if hit is None else hit[2]

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

    def suggest(self, name: str) -> str | None:
        """Did you mean: a well-used tag spelled almost like an unknown ``name``.

        The candidates are the general and meta tags with at least 100 posts and the character
        and series tags with at least 1,000; artists, aliases and names without a post count
        are never suggested. A candidate qualifies when it is one edit away from ``name`` (a
        character inserted, deleted or replaced, or two neighbours swapped: ``long hiar`` is
        one edit from ``long hair``), or, for names of 10 characters or more, two edits away
        when one of them is a character too many in ``name``. The qualifying tag with the most
        posts wins (then the closer one, then the first by name).

        Candidates are found through a deletion index (each candidate with each of its
        characters deleted, hashed into sorted arrays, one per word length, of about 330,000
        entries in all for the shipped database). The candidates are listed on the first call
        of a database, and each length is hashed on the first call that needs it; a call then
        costs well under a millisecond (``benchmarks/results/tagdb.md``).

        Args:
            name: An unknown tag name, with spaces or underscores, in any case.

        Returns:
            The canonical name of the suggested tag, or ``None`` when ``name`` is known (a tag
            or an alias) or no tag qualifies.

        Raises:
            WrongTypeError: If ``name`` is not a ``str`` (a ``TypeError``).
        """
        key = _key_of(name)
        if not key or self._find(key) is not None:
            return None
        best: tuple[int, int, str] | None = None
        best_table: _Table | None = None
        for layer in self._search_order:
            table = layer.table()
            for candidate, posts, distance in table.suggestions(key):
                if any(self._find_in(other, candidate) for other in self._overriding(layer)):
                    continue  # a source further right answers for this name
                rank = (-posts, distance, candidate)
                if best is None or rank < best:
                    best, best_table = rank, table
        if best is None or best_table is None:
            return None
        return best_table.spelling(best[2])

    def search(
        self, text: str, *, limit: int = 10, category: Category | None = None
    ) -> list[TagMatch]:
        """Complete a tag: the tags whose name or alias starts with ``text``, most used first.

        ``text`` is normalised like a tag name (case and underscores do not matter). Tags are
        ranked by post count, those without one last, and ties by name; a tag comes once, with
        the alias that matched when its own name did not (``longh`` finds ``long hair`` through
        the alias ``longhair``). Meant for editors and web front ends: a query costs well under
        a millisecond on the shipped database once its search index is built. The index is
        built per first character (and category), on the first query that needs it
        (``benchmarks/results/tagdb.md``). An empty ``text`` lists the most used tags, and
        builds the index of every first character.

        Args:
            text: What the user has typed so far.
            limit: The most matches to return (1 or more).
            category: Only tags of this category (``"general"``, ``"artist"``, ``"series"``,
                ``"character"`` or ``"meta"``); ``None`` for all.

        Returns:
            Up to ``limit`` :class:`TagMatch` objects, best first.

        Raises:
            WrongTypeError: ``text`` is not a str, ``limit`` not an int, or ``category`` not a
                str or None (a ``TypeError``).
            InvalidArgumentError: ``limit`` is below 1 or ``category`` is not a category (a
                ``ValueError``).
        """
        prefix = _key_of(text, argument="text")
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise WrongTypeError(f"limit must be an int, got {type(limit).__name__}: {limit!r}")
        if limit < 1:
            raise InvalidArgumentError(f"limit must be 1 or more, got {limit}")
        if category is not None:
            if not isinstance(category, str):
                raise WrongTypeError(
                    f"category must be a str or None, got {type(category).__name__}: {category!r}"
                )
            if category not in CATEGORIES:
                raise InvalidArgumentError(
                    f"category must be one of {', '.join(CATEGORIES)}, got {category!r}"
                )
        tables = [layer.table() for layer in self._search_order]
        streams = [_numbered(index, table.matches(prefix, category)) for index, table in
                   enumerate(tables)]  # fmt: skip
        found: list[TagMatch] = []
        seen: set[str] = set()
        for _, entry, index, tag, cat, posts, alias in heapq.merge(*streams):
            if any(tables[right].value(entry) is not None for right in range(index)):
                continue  # a source further right answers for this name
            if tag in seen:
                continue
            seen.add(tag)
            table = tables[index]
            shown = None if alias is None else table.spelling(alias)
            found.append(TagMatch(table.spelling(tag), cat, posts, shown))
            if len(found) == limit:
                break
        return found

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a known tag (of any category) or alias (never raises)."""
        return isinstance(name, str) and self._find(lookup_key(name)) is not None

    def __len__(self) -> int:
        """The number of distinct tag names, of every category, aliases not counted.

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

    def _find(self, key: str) -> _Hit | None:
        for layer in self._search_order:
            hit = layer.table().find(key)
            if hit is not None:
                return hit
        return None

    @staticmethod
    def _find_in(layer: _Layer, key: str) -> bool:
        return layer.table().value(key) is not None

    def _overriding(self, layer: _Layer) -> tuple[_Layer, ...]:
        """The layers further right than ``layer`` (which answer before it)."""
        return self._search_order[: self._search_order.index(layer)]


@final
class _Table:
    """One source's tags and aliases, as sorted blocks of ``key <TAB> value`` entries.

    The blocks are grouped into chunks of :data:`CHUNK` blocks. A table read from a data file
    keeps the file's bytes and unpacks a chunk (one gzip member) on its first lookup, so the
    first lookups of a process read a few chunks, not the whole file; the other sources are
    unpacked when built.
    """

    __slots__ = (
        "_data",
        "_flat",
        "_packed",
        "_rankings",
        "_spans",
        "_suggest",
        "aliases",
        "chunk_firsts",
        "chunks",
        "shown",
        "spellings",
        "tags",
    )

    def __init__(
        self,
        chunk_firsts: list[str],
        chunks: list[_Chunk | None],
        *,
        tags: Mapping[Category, int],
        aliases: int,
        spellings: Mapping[str, str],
        shown: str = "",
        data: bytes = b"",
        spans: Sequence[tuple[int, int]] = (),
    ) -> None:
        # The first key of every chunk, and each chunk's blocks (None: not unpacked yet).
        self.chunk_firsts = chunk_firsts
        self.chunks = chunks
        self.tags = tags
        self.aliases = aliases
        # Spellings that differ from their key; a key absent here is its own.
        self.spellings = spellings
        self.shown = shown
        # The file's bytes and each chunk's gzip member in them, while chunks are packed.
        self._data = data
        self._spans = spans
        # How many chunks are still packed; once none is, every block and its first key in
        # one list each, so a lookup bisects once (as fast as a table read whole).
        self._packed = sum(chunk is None for chunk in chunks)
        self._flat: tuple[list[str], list[str]] | None = None
        if not self._packed:
            self._flatten()
        self._rankings: dict[tuple[Category | None, str], _Ranking] = {}
        self._suggest: _SuggestIndex | None = None

    @classmethod
    def build(
        cls,
        tags: Mapping[str, tuple[Category, int | None]],
        aliases: Mapping[str, str],
        spellings: Mapping[str, str],
    ) -> _Table:
        """A table of ``key -> (category, posts)`` tags and ``alias key -> tag key`` aliases."""
        lines = format_lines(tags, aliases)
        return _parse_lines(lines, "", spellings={k: v for k, v in spellings.items() if k != v})

    # -- chunks ------------------------------------------------------------------------------

    def chunk(self, number: int) -> _Chunk:
        """The first keys and blocks of one chunk, unpacked on first use."""
        found = self.chunks[number]
        if found is None:
            # Two threads may unpack the same chunk at once; both get equal lists.
            found = self.chunks[number] = self._unpack(number)
            self._packed -= 1
            if self._packed <= 0 and all(chunk is not None for chunk in self.chunks):
                self._flatten()
        return found

    def _flatten(self) -> None:
        chunks = [chunk for chunk in self.chunks if chunk is not None]
        self._flat = (
            [first for firsts, _ in chunks for first in firsts],
            [block for _, blocks in chunks for block in blocks],
        )

    def _unpack(self, number: int) -> _Chunk:
        start, end = self._spans[number]
        try:
            text = zlib.decompress(self._data[start:end], wbits=31).decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as error:
            raise TagDatabaseError(
                f"tag database {self.shown!r}: chunk {number + 1} is not gzip'd UTF-8 text: {error}"
            ) from error
        blocks = text.split("\n")
        if blocks.pop() or not blocks or len(blocks) > CHUNK:
            raise TagDatabaseError(f"tag database {self.shown!r}: chunk {number + 1} is malformed")
        return [block[: block.find("\t")] for block in blocks], blocks

    def blocks(self) -> list[str]:
        """Every block, in order (this unpacks every chunk)."""
        return [block for number in range(len(self.chunks)) for block in self.chunk(number)[1]]

    def entries(self) -> tuple[list[str], list[str]]:
        """Every entry's key and value, in key order (new lists, for building indexes)."""
        parts = "\t".join(self.blocks()).split("\t") if self.chunks else []
        return parts[0::2], parts[1::2]

    # -- single lookups ----------------------------------------------------------------------

    def value(self, key: str) -> str | None:
        """The raw value stored for ``key``, or ``None``."""
        flat = self._flat
        if flat is None:
            number = bisect_right(self.chunk_firsts, key) - 1
            if number < 0:
                return None
            flat = self.chunks[number] or self.chunk(number)
        firsts, blocks = flat
        index = bisect_right(firsts, key) - 1
        if index < 0:
            return None
        parts = blocks[index].split("\t")
        keys = parts[0::2]
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return parts[2 * at + 1]
        return None

    def position(self, key: str) -> int:
        """The number of entries whose key sorts before ``key``."""
        number = bisect_right(self.chunk_firsts, key) - 1
        if number < 0:
            return 0
        firsts, blocks = self.chunk(number)
        block = bisect_right(firsts, key) - 1
        keys = blocks[block].split("\t")[0::2]
        return ((number * CHUNK) + block) * BLOCK + bisect_left(keys, key)

    def span(self, prefix: str) -> tuple[int, int]:
        """The positions ``[start, stop)`` of the entries whose key starts with ``prefix``."""
        if not prefix:
            return 0, self.entry_count()
        return self.position(prefix), self.position(_successor(prefix))

    def entry_block(self, number: int) -> str:
        """The block line ``number`` (of the whole table)."""
        chunk, block = divmod(number, CHUNK)
        return self.chunk(chunk)[1][block]

    def entry(self, position: int) -> tuple[str, str]:
        """The key and value of the entry at ``position``."""
        block, at = divmod(position, BLOCK)
        number, block = divmod(block, CHUNK)
        parts = self.chunk(number)[1][block].split("\t")
        return parts[2 * at], parts[2 * at + 1]

    def entry_count(self) -> int:
        return sum(self.tags.values()) + self.aliases

    def find(self, key: str) -> _Hit | None:
        """Category, canonical spelling, post count and alias-ness for a lookup key."""
        value = self.value(key)
        if value is None:
            return None
        if value[0] == ">":
            target = value[1:]
            category, posts = self.decode(self.value(target) or "g")
            return category, self.spelling(target), posts, True
        category, posts = self.decode(value)
        return category, self.spelling(key), posts, False

    @staticmethod
    def decode(value: str) -> tuple[Category, int | None]:
        """``(category, posts)`` of a tag's value (``"g120"``, ``"c"``)."""
        return _CATEGORY_OF[value[0]], int(value[1:]) if len(value) > 1 else None

    def spelling(self, key: str) -> str:
        """The canonical spelling of a key of this table."""
        return self.spellings.get(key, key)

    def name_keys(self) -> Iterator[str]:
        """Every tag key (aliases not)."""
        for block in self.blocks():
            parts = block.split("\t")
            for index in range(0, len(parts), 2):
                if parts[index + 1][0] != ">":
                    yield parts[index]

    def has_name(self, key: str) -> bool:
        """Whether ``key`` is a tag here (aliases do not count)."""
        value = self.value(key)
        return value is not None and value[0] != ">"

    def __len__(self) -> int:
        return sum(self.tags.values())

    def describe(self) -> str:
        """Counts for ``repr``: ``"3 characters, 2 series, 40 general, 4 aliases"``."""
        counts = self.tags
        parts = [
            _plural(counts.get("character", 0), "character"),
            f"{counts.get('series', 0)} series",
        ]
        for category, noun in (("general", ""), ("artist", "artist"), ("meta", "")):
            count = counts.get(category, 0)  # type: ignore[call-overload]
            if count:
                parts.append(_plural(count, noun) if noun else f"{count} {category}")
        if self.aliases:
            parts.append(_plural(self.aliases, "alias"))
        return ", ".join(parts)

    # -- prefix search -----------------------------------------------------------------------

    def ranking(self, category: Category | None, first: str) -> _Ranking:
        """The search index of the entries whose key starts with ``first`` (one character),
        of every category (``None``) or one, built on first use."""
        found = self._rankings.get((category, first))
        if found is None:
            found = self._rankings[category, first] = _Ranking(self, category, first)
        return found

    def matches(self, prefix: str, category: Category | None) -> Iterator[_Match]:
        """The entries starting with ``prefix``, best first: most posts, then by key."""
        if not self.chunks:
            return
        if prefix:
            found = self.ranking(category, prefix[0]).best(self, prefix)
        else:  # every first character's entries, merged
            found = heapq.merge(*(
                self.ranking(category, first).best(self, "") for first in self.first_characters()
            ))  # fmt: skip
        for _, position in found:
            key, value = self.entry(position)
            alias: str | None = None
            tag = key
            if value[0] == ">":
                tag = value[1:]
                value = self.value(tag) or "g"
                alias = None if tag.startswith(prefix) else key
            cat, posts = self.decode(value)
            yield -(posts or 0), key, tag, cat, posts, alias

    def first_characters(self) -> list[str]:
        """The distinct first characters of the keys, in order."""
        found: list[str] = []
        position, end = 0, self.entry_count()
        while position < end:
            first = self.entry(position)[0][0]
            found.append(first)
            position = self.position(_successor(first))
        return found

    # -- suggestions -------------------------------------------------------------------------

    def suggestions(self, key: str) -> list[tuple[str, int, int]]:
        """``(tag key, posts, distance)`` of the candidates that qualify for ``key``."""
        index = self._suggest
        if index is None:
            index = self._suggest = _SuggestIndex(self)
        return index.lookup(key)


@final
class _Ranking:
    """The search index of the entries whose key starts with one character: by post count.

    The entries are those of ``[start, start + count)`` in the table, or, for one category,
    those of its entries at ``positions``; an entry's *index* is its place among them. Its
    *rank*, ``(most posts - its posts) * count + index``, sorts by post count, then by key.
    ``orders[k]`` holds the ranks sorted within each group of entries whose keys share their
    first ``k + 1`` characters (a shorter key is a group of its own); the groups follow key
    order, so a group's ranks sit at the indexes of its entries. A prefix of up to
    :data:`_SEARCH_LEVELS` characters is one slice of an order, read best first; a longer
    prefix with many entries filters the slice of its first characters, and one with few
    (at most :data:`_SEARCH_SCAN`) sorts its own ranks.
    """

    __slots__ = ("count", "most", "orders", "positions", "ranks", "start")

    def __init__(self, table: _Table, category: Category | None, first: str) -> None:
        start, stop = table.span(first)
        low = start - start % BLOCK
        blocks = [table.entry_block(number) for number in range(low // BLOCK, -(-stop // BLOCK))]
        parts = "\t".join(blocks).split("\t")
        keys = parts[2 * (start - low) : 2 * (stop - low) : 2]
        values = parts[2 * (start - low) + 1 : 2 * (stop - low) : 2]
        del parts, blocks
        letters = [value[0] for value in values]
        posts = [int(value[1:]) if len(value) > 1 and value[0] != ">" else 0 for value in values]
        for index in _find_all("".join(letters), ">"):  # an alias ranks as its tag
            target = table.value(values[index][1:]) or "g"
            letters[index] = target[0]
            posts[index] = int(target[1:]) if len(target) > 1 else 0
        self.start = start
        self.positions: array[int] | None = None
        if category is not None:
            chosen = list(_find_all("".join(letters), _LETTER[category]))
            self.positions = array("q", [start + index for index in chosen])
            keys = [keys[index] for index in chosen]
            posts = [posts[index] for index in chosen]
        del values, letters
        self.count = count = len(keys)
        self.most = most = max(posts, default=0)
        ranks = [(most - number) * count + index for index, number in enumerate(posts)]
        del posts
        self.orders = [_int_array(sorted(ranks))]
        for level in range(2, _SEARCH_LEVELS + 1):
            ordered: list[int] = []
            begin = 0
            while begin < count:
                key = keys[begin]
                end = begin + 1
                if len(key) >= level:
                    end = bisect_left(keys, _successor(key[:level]), begin)
                ordered.extend(sorted(ranks[begin:end]) if end - begin > 1 else ranks[begin:end])
                begin = end
            self.orders.append(_int_array(ordered))
        self.ranks = _int_array(ranks)

    def indexes(self, start: int, stop: int) -> tuple[int, int]:
        """The index range of the entries at table positions ``[start, stop)``."""
        if self.positions is None:
            return max(start - self.start, 0), max(min(stop - self.start, self.count), 0)
        return bisect_left(self.positions, start), bisect_left(self.positions, stop)

    def best(self, table: _Table, prefix: str) -> Iterator[tuple[int, int]]:
        """``(-posts, table position)`` of the entries starting with ``prefix``, best first."""
        count, most, start, positions = self.count, self.most, self.start, self.positions
        for rank in self._ranks(table, prefix):
            index = rank % count
            yield rank // count - most, start + index if positions is None else positions[index]

    def _ranks(self, table: _Table, prefix: str) -> Iterator[int]:
        start, stop = self.indexes(*table.span(prefix)) if prefix else (0, self.count)
        if stop - start <= _SEARCH_SCAN:
            heap = list(self.ranks[start:stop])
            heapq.heapify(heap)
            while heap:
                yield heapq.heappop(heap)
            return
        level = max(min(len(prefix), _SEARCH_LEVELS), 1)
        order = self.orders[level - 1]
        if level == len(prefix) or not prefix:
            yield from order[start:stop]
            return
        low, high = self.indexes(*table.span(prefix[:level]))
        count = self.count
        for rank in order[low:high]:
            if start <= rank % count < stop:
                yield rank


def _int_array(values: list[int]) -> array[int]:
    """``values`` as a compact array (they fit in 64 bits for any real table)."""
    return array("q", values)


def _find_all(text: str, char: str) -> Iterator[int]:
    """The indexes of ``char`` in ``text``."""
    at = text.find(char)
    while at >= 0:
        yield at
        at = text.find(char, at + 1)


def _successor(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (not empty)."""
    last = ord(prefix[-1])
    if last == 0x10FFFF:  # no such string; close enough for a key that ends in U+10FFFF
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last + 1)


@final
class _SuggestIndex:
    """The candidates of :meth:`TagDatabase.suggest` and their deletion index.

    The index is kept per string length: the sorted hashes of the candidates of that length
    and of the deletions of those one character longer, each hash packed with the candidate's
    number. A lookup needs the lengths of its probes only (its own and up to two less), so each
    length is hashed on the first lookup that needs it.
    """

    __slots__ = ("by_length", "hashes", "posts", "words")

    def __init__(self, table: _Table) -> None:
        words: list[str] = []
        posts: list[int] = []
        by_length: dict[int, list[int]] = {}
        for block in table.blocks():
            if not _CANDIDATE.search(block):
                continue  # nothing in this block can qualify (most hold no post counts)
            parts = block.split("\t")
            for index in range(1, len(parts), 2):
                value = parts[index]
                if len(value) > 3 and value[0] in "gmcs":  # 3+ digits: 100 posts or more
                    count = int(value[1:])
                    if count >= _SUGGEST_MIN[value[0]]:
                        word = parts[index - 1]
                        by_length.setdefault(len(word), []).append(len(words))
                        words.append(word)
                        posts.append(count)
        self.words = words
        self.posts = array("q", posts)
        self.by_length = by_length
        self.hashes: dict[int, array[int]] = {}

    def _hashes(self, length: int) -> array[int]:
        """The sorted hashes of the strings of ``length`` characters that lead to a candidate:
        the candidates of that length and the deletions of those one character longer, each
        packed with the candidate's number."""
        found = self.hashes.get(length)
        if found is None:
            packed: list[int] = []
            add = packed.append
            words = self.words
            for number in self.by_length.get(length, ()):
                add((hash(words[number]) & _HASH_MASK) << _INDEX_BITS | number)
            for number in self.by_length.get(length + 1, ()):
                word = words[number]
                for cut in range(length + 1):
                    add((hash(word[:cut] + word[cut + 1 :]) & _HASH_MASK) << _INDEX_BITS | number)
            packed.sort()
            found = self.hashes[length] = array("q", packed)
        return found

    def lookup(self, key: str) -> list[tuple[str, int, int]]:
        limit = 2 if len(key) >= SUGGEST_LONG else 1
        probes = {key}
        probes.update(_deletions(key))
        if limit == 2:
            probes.update(chain.from_iterable(_deletions(probe) for probe in list(probes)))
        by_length: dict[int, list[str]] = {}
        for probe in probes:
            by_length.setdefault(len(probe), []).append(probe)
        numbers: set[int] = set()
        mask = (1 << _INDEX_BITS) - 1
        for length, group in by_length.items():
            hashes = self._hashes(length)
            end = len(hashes)
            if not end:
                continue
            for probe in group:
                wanted = hash(probe) & _HASH_MASK
                at = bisect_left(hashes, wanted << _INDEX_BITS)
                while at < end and hashes[at] >> _INDEX_BITS == wanted:
                    numbers.add(hashes[at] & mask)
                    at += 1
        found: list[tuple[str, int, int]] = []
        for number in numbers:
            word = self.words[number]
            if abs(len(word) - len(key)) <= limit:
                distance = _distance(key, word, limit)
                if distance <= limit:
                    found.append((word, self.posts[number], distance))
        return found


def _numbered(
    index: int, matches: Iterator[_Match]
) -> Iterator[tuple[int, str, int, str, Category, int | None, str | None]]:
    """A table's matches with the table's index after the rank, for merging."""
    for rank, entry, tag, category, posts, alias in matches:
        yield rank, entry, index, tag, category, posts, alias


def _deletions(word: str) -> list[str]:
    return [word[:cut] + word[cut + 1 :] for cut in range(len(word))]


def _distance(a: str, b: str, limit: int) -> int:
    """The optimal string alignment distance of ``a`` and ``b`` (edits, neighbour swaps),
    or ``limit + 1`` once it is sure to exceed ``limit``.

    Only the cells within ``limit`` of the diagonal are computed: a path through any other
    cell costs more than ``limit``.
    """
    width, big = len(b), limit + 1
    if abs(len(a) - width) > limit:
        return big
    previous: list[int] = []
    row = [j if j <= limit else big for j in range(width + 1)]
    for i in range(1, len(a) + 1):
        before, previous, row = previous, row, [big] * (width + 1)
        if i <= limit:
            row[0] = i
        low, high = max(1, i - limit), min(width, i + limit)
        char, last = a[i - 1], a[i - 2] if i > 1 else ""
        best = row[low - 1]
        for j in range(low, high + 1):
            value = previous[j - 1] + (char != b[j - 1])
            value = min(value, previous[j] + 1)
            value = min(value, row[j - 1] + 1)
            if j > 1 and char == b[j - 2] and last == b[j - 1] and before[j - 2] + 1 < value:
                value = before[j - 2] + 1
            row[j] = value
            best = min(best, value)
        if best > limit:
            return big
    return min(row[width], big)


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


# -- the data file ------------------------------------------------------------------------------


def format_lines(
    tags: Mapping[str, tuple[Category, int | None]],
    aliases: Mapping[str, str],
    *,
    source: str | None = None,
) -> list[str]:
    """The lines of a data file (format 3) for tags and aliases, keyed by lookup key.

    ``tags`` maps a key to its category and post count (``None``: unknown); ``aliases`` maps
    an alias key to the key of its tag, which must be in ``tags``. The file's text is these
    lines joined by newlines, with a final newline; :func:`pack_lines` gzips them the way the
    shipped file is stored. ``tools/build_tagdb.py`` writes the shipped file with these two
    functions; its docstring describes the format.
    """
    entries: list[tuple[str, str]] = []
    for key, (category, posts) in tags.items():
        letter = _LETTER[category]
        entries.append((key, letter if posts is None else f"{letter}{posts}"))
    for alias, target in aliases.items():
        entries.append((alias, f">{target}"))
    entries.sort()
    blocks = [entries[start : start + BLOCK] for start in range(0, len(entries), BLOCK)]
    counts = dict.fromkeys(CATEGORIES, 0)
    for category, _ in tags.values():
        counts[category] += 1
    header = [
        MAGIC,
        FORMAT,
        *(f"{category}={counts[category]}" for category in CATEGORIES),
        f"aliases={len(aliases)}",
        f"block={BLOCK}",
        f"chunk={CHUNK}",
    ]
    if source is not None:
        header.append(f"source={source}")
    lines = ["\t".join(header), "\t".join(block[0][0] for block in blocks[::CHUNK])]
    lines.extend("\t".join(f"{key}\t{value}" for key, value in block) for block in blocks)
    return lines


def pack_lines(lines: Sequence[str]) -> bytes:
    """A data file's bytes: its lines (from :func:`format_lines`) as gzip members.

    The first member holds the header and index lines, then one member holds each chunk of
    :data:`CHUNK` block lines; the first member's header lists the other members' sizes (an
    extra field ``AT``: little-endian 32-bit sizes), so a reader can unpack one chunk alone.
    Any gzip reader reads the whole text. The bytes depend on the lines only.
    """
    members = [
        _gzip_member("".join(line + "\n" for line in lines[start : start + CHUNK]))
        for start in range(2, len(lines), CHUNK)
    ]
    sizes = b"".join(len(member).to_bytes(4, "little") for member in members)
    if len(sizes) > 0xFFFF - 4:
        raise ValueError(f"too many chunks for one gzip extra field: {len(members)}")
    extra = _EXTRA_ID + len(sizes).to_bytes(2, "little") + sizes
    return _gzip_member(f"{lines[0]}\n{lines[1]}\n", extra) + b"".join(members)


def _gzip_member(text: str, extra: bytes = b"") -> bytes:
    """One gzip member (RFC 1952) of ``text``, with ``extra`` as its extra field."""
    data = text.encode("utf-8")
    header = b"\x1f\x8b\x08" + (b"\x04" if extra else b"\x00") + b"\x00\x00\x00\x00\x02\xff"
    if extra:
        header += len(extra).to_bytes(2, "little") + extra
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = packer.compress(data) + packer.flush()
    trailer = zlib.crc32(data).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(
        4, "little"
    )
    return header + body + trailer


def _member_sizes(data: bytes) -> list[int] | None:
    """The chunk members' sizes from the first member's extra field, if it has them."""
    if len(data) < 12 or data[:3] != b"\x1f\x8b\x08" or not data[3] & 4:
        return None
    extra = data[12 : 12 + int.from_bytes(data[10:12], "little")]
    at = 0
    while at + 4 <= len(extra):
        size = int.from_bytes(extra[at + 2 : at + 4], "little")
        if extra[at : at + 2] == _EXTRA_ID[:2]:
            body = extra[at + 4 : at + 4 + size]
            return [int.from_bytes(body[i : i + 4], "little") for i in range(0, len(body), 4)]
        at += 4 + size
    return None


def _read_data_file(path: Path, *, verify: bool = False) -> _Table:
    """Read a database file written by ``tools/build_tagdb.py`` (format 3).

    A file of chunk members (what :func:`pack_lines` writes) is read lazily: its index now, a
    chunk on its first lookup. ``verify`` unpacks every chunk now and checks every entry
    (order, values, counts), as bisection needs (the shipped file is checked by the tests
    instead, to keep its loading fast). Any other gzip file of the same text is read whole.
    """
    shown = os.fspath(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TagDatabaseError(
            f"cannot read tag database {shown!r}: {error.strerror or error}"
        ) from error
    sizes = _member_sizes(data)
    head = len(data) - sum(sizes) if sizes is not None else len(data)
    if sizes is not None and head <= 0:
        raise TagDatabaseError(f"tag database {shown!r}: the chunk sizes exceed the file")
    text = _inflate(data[:head], shown)
    lines = text.split("\n")
    if lines[-1]:
        raise TagDatabaseError(f"tag database {shown!r}: the last line does not end")
    lines.pop()
    if sizes is None:
        return _parse_lines(lines, shown, verify=verify)
    if len(lines) != 2:
        raise TagDatabaseError(f"tag database {shown!r}: the first gzip member is malformed")
    tags, aliases, firsts, _ = _parse_head(lines, shown)
    if len(sizes) != len(firsts):
        raise TagDatabaseError(
            f"tag database {shown!r}: {len(sizes)} chunk members for {len(firsts)} chunks"
        )
    spans = []
    for size in sizes:
        spans.append((head, head + size))
        head += size
    chunks: list[_Chunk | None] = [None] * len(firsts)
    table = _Table(
        firsts,
        chunks,
        tags=tags,
        aliases=aliases,
        spellings={},
        shown=shown,
        data=data,
        spans=spans,
    )
    if verify:
        table.blocks()  # unpack every chunk
        _verify(table, shown)
    return table


def _inflate(data: bytes, shown: str) -> str:
    """The text of gzip'd UTF-8 ``data`` (every member)."""
    parts: list[bytes] = []
    rest = data
    try:
        while True:  # wbits=31: a gzip member; a file may hold several
            unpacker = zlib.decompressobj(wbits=31)
            parts.append(unpacker.decompress(rest))
            if not unpacker.eof:
                raise zlib.error("incomplete or truncated stream")
            rest = unpacker.unused_data
            if not rest:
                return b"".join(parts).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as error:
        raise TagDatabaseError(
            f"tag database {shown!r} is not gzip'd UTF-8 text: {error}"
        ) from error


def _parse_head(
    lines: Sequence[str], shown: str
) -> tuple[dict[Category, int], int, list[str], int]:
    """The tag counts, alias count, chunk index and entry count of a header and index line."""

    def fail(line: int, message: str) -> TagDatabaseError:
        return TagDatabaseError(f"tag database {shown!r}, line {line}: {message}")

    header = lines[0].split("\t") if lines else []
    if header[:2] != [MAGIC, FORMAT]:
        got = lines[0][:80] if lines else ""
        raise fail(1, f"expected a {MAGIC!r} format {FORMAT} header, got {got!r}")
    fields = dict(field.partition("=")[::2] for field in header[2:])
    try:
        tags = {category: int(fields[category]) for category in CATEGORIES}
        aliases = int(fields["aliases"])
        block = int(fields["block"])
        chunk = int(fields["chunk"])
    except (KeyError, ValueError) as error:
        raise fail(
            1, "header lacks valid counts (general= ... aliases=, block=, chunk=)"
        ) from error
    if min(*tags.values(), aliases) < 0 or block != BLOCK or chunk != CHUNK:
        raise fail(1, f"negative counts, or a block or chunk size other than {BLOCK}, {CHUNK}")
    entries = sum(tags.values()) + aliases
    chunks = -(-entries // (BLOCK * CHUNK))
    firsts = lines[1].split("\t") if len(lines) > 1 and lines[1] else []
    if len(firsts) != chunks or not all(firsts):
        raise fail(2, f"expected the first keys of {chunks} chunks")
    return tags, aliases, firsts, entries


def _parse_lines(
    lines: list[str], shown: str, *, verify: bool = True, spellings: Mapping[str, str] | None = None
) -> _Table:
    """A table from the lines of a data file (without the final empty one)."""
    tags, aliases, firsts, entries = _parse_head(lines, shown)
    count = -(-entries // BLOCK)
    if len(lines) != 2 + count:
        raise TagDatabaseError(
            f"tag database {shown!r}: header promises {entries} entries in {count} blocks, "
            f"file has {len(lines) - 2} block lines"
        )
    chunks: list[_Chunk | None] = []
    for start in range(2, len(lines), CHUNK):
        blocks = lines[start : start + CHUNK]
        chunks.append(([block[: block.find("\t")] for block in blocks], blocks))
    table = _Table(
        firsts, chunks, tags=tags, aliases=aliases, spellings=spellings or {}, shown=shown
    )
    if verify:
        _verify(table, shown)
    return table


def _verify(table: _Table, shown: str) -> None:
    """Check every entry of a table read from a file; raise :class:`TagDatabaseError`."""
    entries = table.entry_count()
    seen = dict.fromkeys(CATEGORIES, 0)
    aliases = 0
    targets: list[tuple[int, str]] = []
    previous = ""
    for number, block in enumerate(table.blocks()):
        line = 3 + number
        parts = block.split("\t")
        keys = parts[0::2]
        wanted = min(BLOCK, entries - number * BLOCK)
        if len(parts) != 2 * wanted or not all(keys):
            raise TagDatabaseError(
                f"tag database {shown!r}, line {line}: expected {wanted} key/value pairs"
            )
        ordered = [previous, *keys] if number else keys
        if any(a >= b for a, b in pairwise(ordered)):
            raise TagDatabaseError(
                f"tag database {shown!r}, line {line}: keys are not sorted and unique "
                f"(after {previous[:40]!r})"
            )
        if number % CHUNK == 0 and table.chunk_firsts[number // CHUNK] != keys[0]:
            raise TagDatabaseError(
                f"tag database {shown!r}, line 2: chunk {number // CHUNK + 1} starts with "
                f"{keys[0]!r}, not {table.chunk_firsts[number // CHUNK]!r}"
            )
        previous = keys[-1]
        for value in parts[1::2]:
            if not _VALUE.fullmatch(value):
                raise TagDatabaseError(f"tag database {shown!r}, line {line}: bad value {value!r}")
            if value[0] == ">":
                aliases += 1
                targets.append((line, value[1:]))
            else:
                seen[_CATEGORY_OF[value[0]]] += 1
    if seen != dict(table.tags) or aliases != table.aliases:
        raise TagDatabaseError(f"tag database {shown!r}, line 1: the counts do not match")
    for line, target in targets:
        if not table.has_name(target):
            raise TagDatabaseError(
                f"tag database {shown!r}, line {line}: alias of unknown tag {target!r}"
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


# -- the tag-autocomplete CSV -------------------------------------------------------------------


def read_csv(
    path: str | os.PathLike[str],
) -> tuple[dict[str, tuple[Category, int | None]], dict[str, str], dict[str, str]]:
    """Read an a1111 tag-autocomplete CSV (see :meth:`TagDatabase.from_csv`).

    Returns:
        The tags (``key -> (category, posts)``), the aliases (``alias key -> tag key``) and the
        spellings (``key -> name`` for names and aliases), conflicts settled.
    """
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

    tags: dict[str, tuple[Category, int | None]] = {}
    spellings: dict[str, str] = {}
    alias_rows: dict[str, list[str]] = {}
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
            category, name, posts, row_aliases = parsed
            key = name.lower()
            known = tags.get(key)
            if known is None or (known[0] == "series" and category == "character"):
                tags[key] = (category, posts)
                spellings.setdefault(key, name)
            for alias in row_aliases:
                alias_key = alias.lower()
                spellings.setdefault(alias_key, alias)
                alias_rows.setdefault(alias_key, []).append(key)
    except csv.Error as error:
        raise TagDatabaseError(
            f"tag database {shown!r}, line {reader.line_num}: {error}"
        ) from error
    aliases: dict[str, str] = {}
    for alias_key, targets in alias_rows.items():
        if alias_key in tags:
            continue  # a tag name beats an alias
        characters = [target for target in targets if tags[target][0] == "character"]
        aliases[alias_key] = (characters or targets)[0]
    return tags, aliases, spellings


def _parse_csv_row(
    fields: list[str], *, header_allowed: bool
) -> tuple[Category, str, int | None, list[str]] | None:
    """``(category, name, posts, aliases)`` for a row, ``None`` to skip the row.

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
        number = int(fields[1])
    except ValueError:
        if header_allowed and fields[0].lower() in _CSV_HEADER_NAMES:
            return None
        raise ValueError(f"category must be an integer, got {fields[1]!r}") from None
    posts: int | None = None
    if len(fields) > 2 and fields[2]:
        try:
            posts = int(fields[2])
        except ValueError:
            raise ValueError(f"post count must be an integer, got {fields[2]!r}") from None
        if posts < 0:
            raise ValueError(f"post count must not be negative, got {posts}")
    if not name:
        raise ValueError("empty tag name")
    category = _CSV_CATEGORIES.get(number)
    if category is None:
        return None
    row_aliases = []
    if len(fields) > 3:
        row_aliases = [alias for alias in map(normalize_name, fields[3].split(",")) if alias]
    for text in (name, *row_aliases):
        if "\n" in text or "\r" in text:
            raise ValueError(f"a name must not contain a line break: {text[:40]!r}")
    return category, name, posts, row_aliases


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


_Answer = TypeVar("_Answer")


class DatabaseMemo(Generic[_Answer]):
    """Answers remembered per database and scope, for callers that ask about the same tags over
    and over (classification per version, lint's alias and did-you-mean questions).

    A database never changes once built, so an answer never goes stale. The database is kept
    beside its answers, so a recycled ``id()`` is never mistaken for it; a table that reaches
    ``limit`` answers starts again empty, and so does the whole memo past 16 tables.
    """

    __slots__ = ("_limit", "_tables")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._tables: dict[tuple[int, str], tuple[TagDatabase, dict[str, _Answer]]] = {}

    def table(self, database: TagDatabase, scope: str = "") -> dict[str, _Answer]:
        """The answers remembered for ``database`` in ``scope``, to read and fill."""
        key = (id(database), scope)
        hit = self._tables.get(key)
        if hit is not None and hit[0] is database and len(hit[1]) < self._limit:
            return hit[1]
        if len(self._tables) >= 16:
            self._tables.clear()
        table: dict[str, _Answer] = {}
        self._tables[key] = (database, table)
        return table


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
    """The number of distinct tag keys across ``tables``."""
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
