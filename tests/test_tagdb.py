"""Tests for `TagDatabase`: the shipped data, CSV reading, unions, and lazy loading."""

from __future__ import annotations

import gzip
import itertools
import random
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from animagine.core import (
    DEFAULT_TAGDB_FILE,
    TAGDB_FORMAT,
    TagCategory,
    TagDatabase,
    TagMatch,
    format_tagdb_lines,
    normalize_name,
)
from animagine.errors import (
    AnimagineError,
    InvalidArgumentError,
    MissingFileError,
    NotAFileError,
    TagDatabaseError,
    WrongTypeError,
)

DATA = Path(__file__).parent / "data"
SAMPLE_CSV = DATA / "tags_sample.csv"


@pytest.fixture(scope="module")
def sample() -> TagDatabase:
    return TagDatabase.from_csv(SAMPLE_CSV)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every database file read (``Path.read_bytes`` of a ``.gz`` file)."""
    calls: list[str] = []
    real: Callable[[Path], bytes] = Path.read_bytes

    def spy(path: Path) -> bytes:
        if path.suffix == ".gz":
            calls.append(str(path))
            time.sleep(0.05)  # widen the window for the concurrent-first-lookup test
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", spy)
    return calls


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every gzip member unpacked with ``zlib.decompress`` (one per chunk)."""
    calls: list[int] = []
    real: Callable[..., bytes] = zlib.decompress

    def spy(data: bytes, *args: int, **kwargs: int) -> bytes:
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(zlib, "decompress", spy)
    return calls


def loaded(db: TagDatabase) -> bool:
    """``db.loaded``, read through a call (mypy narrows a property across asserts)."""
    return db.loaded


@pytest.fixture
def fresh() -> TagDatabase:
    """The shipped data as a new, unloaded database (the default one is shared and loaded)."""
    return TagDatabase.from_file(DEFAULT_TAGDB_FILE)


# -- the shipped database ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["arima kana", "hoshimachi suisei", "firefly (honkai: star rail)", "saber (fate)"]
)
def test_default_knows_characters(name: str) -> None:
    db = TagDatabase.default()
    assert db.kind(name) == "character"
    assert db.is_character(name)
    assert not db.is_series(name)
    assert name in db
    assert db.canonical(name) == name


@pytest.mark.parametrize("name", ["oshi no ko", "honkai: star rail", "hololive", "fate (series)"])
def test_default_knows_series(name: str) -> None:
    db = TagDatabase.default()
    assert db.kind(name) == "series"
    assert db.is_series(name)
    assert not db.is_character(name)


@pytest.mark.parametrize("name", ["masterpiece", "arima", "", "   ", "long hiar"])
def test_default_does_not_know_other_names(name: str) -> None:
    db = TagDatabase.default()
    assert db.kind(name) is None
    assert db.category(name) is None
    assert db.canonical(name) is None
    assert db.post_count(name) is None
    assert name not in db


@pytest.mark.parametrize(
    "spelling",
    ["Arima_Kana", "ARIMA KANA", "arima_kana", "  arima   kana ", "arima\tkana", "Arima_kana"],
)
def test_lookups_ignore_case_and_underscores(spelling: str) -> None:
    db = TagDatabase.default()
    assert db.kind(spelling) == "character"
    assert db.canonical(spelling) == "arima kana"


@pytest.mark.parametrize(
    ("character", "series"),
    [
        ("firefly (honkai: star rail)", "honkai: star rail"),
        ("Firefly_(Honkai:_Star_Rail)", "honkai: star rail"),
        ("arima kana", None),  # no qualifier: nothing is guessed
        ("saber (fate)", "fate (series)"),  # Danbooru's `(series)` suffix
        ("toki (bunny) (blue archive)", "blue archive"),  # qualifiers read right to left
        ("hoshimachi suisei (1st costume)", None),  # a qualifier that is no series
        ("oshi no ko", None),  # a series is no character
        ("nobody (oshi no ko)", None),  # an unknown character
    ],
)
def test_default_series_of(character: str, series: str | None) -> None:
    assert TagDatabase.default().series_of(character) == series


def test_default_is_a_singleton() -> None:
    assert TagDatabase.default() is TagDatabase.default()


def test_default_counts_and_repr() -> None:
    db = TagDatabase.default()
    assert len(db) == 464_939
    assert "arima kana" in db  # loads it
    assert repr(db) == (
        "<TagDatabase default (322058 characters, 52508 series, 30782 general, 59201 artists, "
        "390 meta, 29967 aliases)>"
    )


def test_shipped_file_is_well_formed() -> None:
    """The data file passes the full check, and its header is what ``format_tagdb_lines`` writes."""
    TagDatabase.from_file(DEFAULT_TAGDB_FILE).load()  # the full check, as from_file reads
    lines = gzip.decompress(DEFAULT_TAGDB_FILE.read_bytes()).decode("utf-8").split("\n")
    magic, version, *fields = lines[0].split("\t")
    counts = dict(field.split("=", 1) for field in fields)
    assert (magic, version) == ("animagine-tagdb", TAGDB_FORMAT) == ("animagine-tagdb", "3")
    assert counts["source"] == "danbooru.csv 2025-01-03 + tipo-kgen 0.3.1"
    assert counts["block"] == "16"
    assert counts["chunk"] == "64"
    assert lines[-1] == ""
    # What the build script writes for a table of the same counts has the same header fields.
    written = format_tagdb_lines({"a": ("general", 1)}, {}, source=counts["source"])[0].split("\t")
    assert [field.split("=")[0] for field in written] == [
        field.split("=")[0] for field in lines[0].split("\t")
    ]
    keys = [key for line in lines[2:-1] for key in line.split("\t")[0::2]]
    assert lines[1].split("\t") == [line.split("\t", 1)[0] for line in lines[2:-1:64]]
    assert all(key and key == normalize_name(key).lower() for key in keys[::97])
    assert DEFAULT_TAGDB_FILE.stat().st_size <= 4_500_000


def test_notice_attributes_the_sources() -> None:
    notice = (DEFAULT_TAGDB_FILE.parent / "NOTICE").read_text(encoding="utf-8")
    assert "tipo-kgen 0.3.1" in notice
    assert "Apache License, Version 2.0" in notice
    assert "4170882f90b47be130a0ff9314f663c230b9153d" in notice  # the danbooru.csv commit
    assert "MIT License" in notice
    assert "format 3: 30782 general, 59201 artist, 52508 series," in notice


# -- lazy, thread-safe loading ------------------------------------------------------------------


def test_default_reads_its_file_on_first_lookup() -> None:
    """In a fresh interpreter: importing and ``default()`` read nothing; the first lookup does."""
    code = (
        "from animagine.core import TagDatabase\n"
        "db = TagDatabase.default()\n"
        "print(db.loaded, repr(db))\n"
        "print(db.is_character('arima kana'), db.loaded, db is TagDatabase.default())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "False <TagDatabase default (not loaded)>",
        "True True True",
    ]


def test_from_file_reads_on_first_lookup_once(fresh: TagDatabase, reads: list[str]) -> None:
    assert not loaded(fresh)
    assert reads == []
    assert repr(fresh) == f"<TagDatabase {str(DEFAULT_TAGDB_FILE)!r} (not loaded)>"
    assert fresh.is_character("arima kana")
    assert loaded(fresh)
    assert len(reads) == 1
    assert fresh.is_series("hololive")
    assert len(reads) == 1


def test_load_reads_now_and_returns_the_database(fresh: TagDatabase, reads: list[str]) -> None:
    assert fresh.load() is fresh
    assert loaded(fresh)
    assert len(reads) == 1
    assert fresh.load() is fresh
    assert len(reads) == 1
    assert TagDatabase.default().load() is TagDatabase.default()
    assert TagDatabase.empty().load().loaded


def test_union_with_a_file_stays_lazy(fresh: TagDatabase, reads: list[str]) -> None:
    db = fresh | TagDatabase.from_names(characters=["my oc"])
    assert repr(db) == (
        f"<TagDatabase {str(DEFAULT_TAGDB_FILE)!r} (not loaded) | names (1 character, 0 series)>"
    )
    assert not loaded(db)
    assert db.kind("my oc") == "character"  # answered by the right operand: nothing read
    assert reads == []
    assert db.kind("arima kana") == "character"
    assert len(reads) == 1
    assert loaded(db)


def test_concurrent_first_lookups_read_once(fresh: TagDatabase, reads: list[str]) -> None:
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def look() -> None:
        barrier.wait()
        results.append(fresh.kind("hololive"))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["series"] * 8
    assert len(reads) == 1


def _file_text(tags: dict[str, tuple[TagCategory, int | None]], aliases: dict[str, str]) -> str:
    return "\n".join(format_tagdb_lines(tags, aliases, source="test")) + "\n"


def _write_gzip(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def test_failed_load_raises_and_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "db.txt.gz"
    path.write_bytes(b"not gzip")
    db = TagDatabase.from_file(path)
    for _ in range(2):
        with pytest.raises(TagDatabaseError, match=r"db\.txt\.gz"):
            db.kind("arima kana")
        assert not loaded(db)
    with pytest.raises(TagDatabaseError):
        db.load()
    _write_gzip(path, _file_text({"arima kana": ("character", None)}, {}))
    assert db.kind("arima kana") == "character"
    assert loaded(db)


def test_from_file_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as missing:
        TagDatabase.from_file(tmp_path / "nowhere.txt.gz")
    assert isinstance(missing.value, FileNotFoundError)
    assert missing.value.filename == str(tmp_path / "nowhere.txt.gz")
    with pytest.raises(NotAFileError) as folder:
        TagDatabase.from_file(tmp_path)
    assert isinstance(folder.value, IsADirectoryError)
    with pytest.raises(WrongTypeError):
        TagDatabase.from_file(3)  # type: ignore[arg-type]


_GOOD = _file_text({"a": ("general", 5), "b": ("character", None)}, {"c": "a"})
_HEAD = (
    "animagine-tagdb\t3\tgeneral=1\tartist=0\tseries=0\tcharacter=1\tmeta=0\taliases=1"
    "\tblock=16\tchunk=64"
)
_INDEX = "a\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip", "not gzip'd UTF-8"),
        (gzip.compress(b"\xff\xfe\n"), "not gzip'd UTF-8"),
        (gzip.compress(b"something else\t2\n"), "line 1: expected"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=0\tseries=0\n"), "line 1: expected"),
        (gzip.compress(_GOOD.replace("general=1", "general=x").encode()), "line 1: header"),
        (gzip.compress(_GOOD.replace("\tmeta=0", "").encode()), "line 1: header"),
        (gzip.compress(_GOOD.replace("block=16", "block=8").encode()), "block or chunk size"),
        (gzip.compress(_GOOD.replace("chunk=64", "chunk=8").encode()), "block or chunk size"),
        (gzip.compress(_GOOD.replace("test\na\n", "test\nb\ta\n").encode()), "line 2: expected"),
        (gzip.compress(f"{_HEAD}\nb\na\tg5\tb\tc\tc\t>a\n".encode()), "chunk 1 starts with"),
        (gzip.compress(_GOOD.replace("aliases=1", "aliases=-1").encode()), "negative"),
        (gzip.compress(_GOOD.rstrip("\n").encode()), "does not end"),
        (gzip.compress(_GOOD.replace("aliases=1", "aliases=20").encode()), "promises 22"),
        (gzip.compress(f"{_HEAD}\n{_INDEX}b\tc\ta\tg5\tc\t>a\n".encode()), "not sorted"),
        (gzip.compress(f"{_HEAD}\n{_INDEX}a\tg5\tb\tx\tc\t>a\n".encode()), "bad value"),
        (gzip.compress(f"{_HEAD}\n{_INDEX}a\tg5\tb\tc\tc\t>z\n".encode()), "unknown tag"),
        (gzip.compress(f"{_HEAD}\n{_INDEX}a\tg5\tb\tc\tc\n".encode()), "key/value"),
        (gzip.compress(f"{_HEAD}\n{_INDEX}a\tg5\tb\ts\tc\t>a\n".encode()), "counts do not"),
    ],
)
def test_corrupt_data_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "db.txt.gz"
    path.write_bytes(content)
    with pytest.raises(TagDatabaseError, match=message):
        TagDatabase.from_file(path).load()


def test_data_file_round_trip(tmp_path: Path) -> None:
    db = TagDatabase.from_file(_write_gzip(tmp_path / "db.txt.gz", _GOOD))
    assert db.category("a") == "general"
    assert db.post_count("a") == 5
    assert db.kind("b") == "character"
    assert db.post_count("b") is None
    assert db.canonical("c") == "a"
    assert db.alias_target("c") == "a"
    assert db.kind("d") is None
    assert db.kind("") is None
    assert len(db) == 2
    assert sorted(db.names()) == ["a", "b"]


def test_names(sample: TagDatabase) -> None:
    names = list(sample.names())
    assert len(names) == len(set(names)) == len(sample)
    assert "arima kana" in names
    assert "hololive" in names
    assert "kana arima" not in names  # an alias
    mine = TagDatabase.from_names(characters=["My OC", "arima kana"], series=["X"])
    union = sample | mine
    both = list(union.names())
    assert len(both) == len(set(map(str.lower, both))) == len(union) == len(sample) + 2
    assert "My OC" in both  # the canonical spelling
    assert list(TagDatabase.empty().names()) == []


# -- from_names, empty ------------------------------------------------------------------------


def test_empty_knows_nothing() -> None:
    db = TagDatabase.empty()
    assert len(db) == 0
    assert "arima kana" not in db
    assert db.kind("arima kana") is None
    assert db.canonical("arima kana") is None
    assert db.series_of("firefly (honkai: star rail)") is None
    assert not db.is_character("arima kana")
    assert not db.is_series("hololive")
    assert repr(db) == "<TagDatabase empty>"
    assert len(TagDatabase()) == 0


def test_from_names() -> None:
    db = TagDatabase.from_names(
        characters=["My_OC", "my oc", "Rin (My Series)"], series=["My Series", "Both"]
    )
    assert db.kind("MY OC") == "character"
    assert db.canonical("my_oc") == "My OC"  # the first spelling, normalised, case kept
    assert db.series_of("rin_(my_series)") == "My Series"
    assert db.kind("both") == "series"
    assert len(db) == 4
    assert repr(db) == "<TagDatabase names (2 characters, 2 series)>"


def test_from_names_accepts_any_iterable() -> None:
    db = TagDatabase.from_names(characters=(name for name in ["a", "b"]), series={"c"})
    assert (db.kind("a"), db.kind("b"), db.kind("c")) == ("character", "character", "series")


def test_a_name_that_is_both_is_a_character() -> None:
    db = TagDatabase.from_names(characters=["twin"], series=["Twin"])
    assert db.kind("twin") == "character"
    assert db.is_character("twin")
    assert not db.is_series("twin")
    assert len(db) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"characters": "my oc"}, TypeError, "characters must be an iterable of names, not a str"),
        ({"series": [3]}, TypeError, "series must hold str names, got int: 3"),
        ({"characters": [""]}, ValueError, "characters contains an empty name"),
        ({"series": ["   "]}, ValueError, "series contains an empty name"),
        ({"characters": ["a, b"]}, ValueError, "must not contain ','"),
        ({"characters": ["a\nb"]}, ValueError, "must not contain"),
    ],
)
def test_from_names_rejects_bad_input(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TagDatabase.from_names(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["kind", "is_character", "is_series", "canonical", "series_of"])
def test_lookups_reject_non_str(method: str) -> None:
    with pytest.raises(TypeError, match="must be a str, got int"):
        getattr(TagDatabase.empty(), method)(1)


def test_contains_non_str_is_false(sample: TagDatabase) -> None:
    assert 1 not in sample
    assert None not in sample


@given(st.text())
def test_lookups_never_raise_on_text(text: str) -> None:
    db = TagDatabase.default()
    db.kind(text)
    db.series_of(text)
    assert (text in db) == (db.canonical(text) is not None)


@given(st.text(min_size=1).filter(lambda s: normalize_name(s) and "," not in s))
def test_from_names_finds_what_it_was_given(text: str) -> None:
    if "\n" in text or "\r" in text:
        return
    db = TagDatabase.from_names(characters=[text])
    assert db.is_character(text)
    assert db.canonical(text) == normalize_name(text)


# -- union --------------------------------------------------------------------------------------


def test_union_adds_names_to_the_default() -> None:
    mine = TagDatabase.from_names(characters=["my oc (oshi no ko)"], series=["my series"])
    db = TagDatabase.default() | mine
    assert db.kind("my_oc_(oshi_no_ko)") == "character"
    assert db.kind("arima kana") == "character"
    assert db.kind("my series") == "series"
    # The character from one side finds its series on the other.
    assert db.series_of("my oc (oshi no ko)") == "oshi no ko"
    assert len(db) == len(TagDatabase.default()) + 2
    assert len(mine | TagDatabase.default()) == len(db)


def test_union_right_operand_wins() -> None:
    mine = TagDatabase.from_names(series=["Arima Kana"])
    assert (TagDatabase.default() | mine).kind("arima kana") == "series"
    assert (TagDatabase.default() | mine).canonical("arima kana") == "Arima Kana"
    assert (mine | TagDatabase.default()).kind("arima kana") == "character"
    assert len(TagDatabase.default() | mine) == len(TagDatabase.default())


def test_union_of_repeated_sources(sample: TagDatabase) -> None:
    names = TagDatabase.from_names(characters=["x"])
    assert repr(sample | names | sample) == repr(names | sample)
    assert repr(TagDatabase.empty() | names) == repr(names)
    assert len(sample | sample) == len(sample)
    assert len(sample | names) == len(sample) + 1


def test_union_with_something_else_fails() -> None:
    with pytest.raises(TypeError):
        TagDatabase.empty() | {"x"}  # type: ignore[operator]


# -- from_csv -----------------------------------------------------------------------------------


def test_csv_kinds(sample: TagDatabase) -> None:
    assert sample.kind("hoshimachi_suisei") == "character"
    assert sample.kind("Arima_Kana") == "character"
    assert sample.kind("no count character") == "character"
    assert sample.kind("hololive") == "series"
    assert sample.kind("two field series") == "series"
    for other in ("1girl", "long hair", "^_^", "ixy", "highres", "comment"):
        assert other in sample
        assert sample.kind(other) is None
    assert len(sample) == 24
    assert repr(sample) == (
        f"<TagDatabase {str(SAMPLE_CSV)!r} (9 characters, 9 series, 4 general, 1 artist, "
        "1 meta, 23 aliases)>"
    )


@pytest.mark.parametrize(
    ("name", "category", "posts"),
    [
        ("1girl", "general", 4114588),
        ("1girls", "general", 4114588),  # an alias answers for its tag
        ("^_^", "general", 1000),
        ("ixy", "artist", 3000),
        ("ixy (artist)", "artist", 3000),
        ("highres", "meta", 5000000),
        ("hololive", "series", 400000),
        ("kirby", "character", 12000),  # a character beats a series of the same name
        ("no count character", "character", None),
    ],
)
def test_csv_categories_and_counts(
    sample: TagDatabase, name: str, category: str, posts: int | None
) -> None:
    assert sample.category(name) == category
    assert sample.post_count(name) == posts


@pytest.mark.parametrize(
    ("alias", "kind", "canonical"),
    [
        ("suisei", "character", "hoshimachi suisei"),
        ("Sui-chan", "character", "hoshimachi suisei"),
        ("kana_arima", "character", "arima kana"),
        ("有馬かな", "character", "arima kana"),
        ("holopro", "series", "hololive"),
        ("hololive_production", "series", "hololive"),
        ("【推しの子】", "series", "oshi no ko"),
        ("HSR", "series", "honkai: star rail"),
        ("kancolle", "series", "kantai collection"),
        ("pink puff", "character", "kirby"),
        ("miku", "character", "hatsune miku"),
    ],
)
def test_csv_aliases(sample: TagDatabase, alias: str, kind: str, canonical: str) -> None:
    assert sample.kind(alias) == kind
    assert alias in sample
    assert sample.canonical(alias) == canonical


def test_csv_aliases_of_every_category(sample: TagDatabase) -> None:
    for alias, tag in (("sole female", "1girl"), ("ixy (artist)", "ixy"), ("hi res", "highres")):
        assert sample.alias_target(alias) == tag
        assert sample.canonical(alias) == tag
    assert "" not in sample


def test_csv_conflicts(sample: TagDatabase) -> None:
    # `kirby` is listed as a character and as a copyright: a character.
    assert sample.kind("kirby") == "character"
    # `vocaloid` is a copyright tag and also an alias of a character: the tag name wins.
    assert sample.kind("vocaloid") == "series"
    # `kirby` is also an alias of a general tag, which is ignored.
    assert sample.canonical("kirby") == "kirby"


@pytest.mark.parametrize(
    ("character", "series"),
    [
        ("firefly (honkai: star rail)", "honkai: star rail"),
        ("shimakaze (kancolle)", "kantai collection"),  # the qualifier is a series alias
        ("shimakaze_(kantai_collection)", "kantai collection"),  # asked by its alias
        ("saber (fate)", "fate (series)"),
        ("toki (bunny) (blue archive)", "blue archive"),
        ("hoshimachi suisei", None),
        ("hololive", None),
        ("1girl", None),
    ],
)
def test_csv_series_of(sample: TagDatabase, character: str, series: str | None) -> None:
    assert sample.series_of(character) == series


def test_csv_crlf_bom_and_header(tmp_path: Path, sample: TagDatabase) -> None:
    text = SAMPLE_CSV.read_text(encoding="utf-8")
    path = tmp_path / "crlf.csv"
    crlf_text = ("name,category,post_count,aliases\n" + text).replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + crlf_text.encode("utf-8"))
    crlf = TagDatabase.from_csv(path)
    assert b"\r\n" in path.read_bytes()
    assert len(crlf) == len(sample)
    for name in ("arima kana", "hololive", "kancolle", "hsr", "two field series"):
        assert crlf.kind(name) == sample.kind(name)
        assert crlf.canonical(name) == sample.canonical(name)


def test_csv_blank_lines_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text('\n\n my_oc , 4 , 10 , " oc , my_o_c "\n\n', encoding="utf-8")
    db = TagDatabase.from_csv(path)
    assert db.canonical("OC") == "my oc"
    assert db.canonical("my o c") == "my oc"
    assert len(db) == 1


def test_csv_accepts_str_and_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text("a,4\n", encoding="utf-8")
    assert TagDatabase.from_csv(str(path)).is_character("a")
    assert TagDatabase.from_csv(path).is_character("a")


def test_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert len(TagDatabase.from_csv(path)) == 0


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"a,4,1,\nb\n", 2, "expected name,category"),
        (b"a,4,1,\nb,4,1,x,y\n", 2, r"\(2 to 4 fields\), got 5"),
        (b"a,4,1,\n\nb,character,1,\n", 3, "category must be an integer, got 'character'"),
        (b"a,4,1,\nb,4,many,\n", 2, "post count must be an integer, got 'many'"),
        (b"a,4,1,\n  ,4,1,\n", 2, "empty tag name"),
        (b"a,4,1,\n,4,1,\n", 2, "empty tag name"),
        (b"a,4,1,\nname,category\n", 2, "category must be an integer"),  # header not first
        (b'a,4,1,\nb,4,1,"x"y\n', 2, "expected after"),
        (b'a,4,1,\r\nb,4,1,\r\nc,4,1,"x\r\n', 3, "unexpected end of data"),
        (b"a,4,1,\nb,4,1,\n\xff,4,1,\n", 3, "not UTF-8"),
        (b"a,4,1,\r\n\r\nb,x\r\n", 3, "category must be an integer"),
    ],
)
def test_csv_malformed(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(TagDatabaseError, match=message) as info:
        TagDatabase.from_csv(path)
    text = str(info.value)
    assert str(path) in text
    assert f"line {line}:" in text
    assert isinstance(info.value, AnimagineError)
    assert isinstance(info.value, ValueError)


def test_csv_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(MissingFileError, match=r"nowhere\.csv") as info:
        TagDatabase.from_csv(path)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.filename == str(path)


def test_csv_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotAFileError) as info:
        TagDatabase.from_csv(tmp_path)
    assert isinstance(info.value, IsADirectoryError)


def test_csv_path_must_be_a_path() -> None:
    with pytest.raises(WrongTypeError, match="path must be"):
        TagDatabase.from_csv(0)  # type: ignore[arg-type]  # not stdin


# -- series from qualifiers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("character", "series", "expected"),
    [
        ("a (b)", ["b"], "b"),
        ("a (b) (c)", ["b", "c"], "c"),  # right to left
        ("a (b) (c)", ["b"], "b"),
        ("awp (girls' frontline) (nekoya (liu))", ["girls' frontline"], "girls' frontline"),
        ("awp (girls' frontline) (nekoya (liu))", ["nekoya (liu)"], "nekoya (liu)"),
        ("a", ["a"], None),
        ("a(b)", ["b"], None),  # a qualifier follows a space
        ("a b)", ["b"], None),
        ("a (b))", ["b"], None),  # unbalanced
        ("x (y (z)", ["z", "y (z"], "z"),
        ("saber (fate)", ["fate (series)"], "fate (series)"),
    ],
)
def test_series_from_qualifiers(character: str, series: list[str], expected: str | None) -> None:
    db = TagDatabase.from_names(characters=[character], series=series)
    assert db.series_of(character) == expected


# -- Danbooru's tags, aliases, post counts (real rows of the shipped table) --------------------


@pytest.mark.parametrize(
    ("alias", "tag", "category"),
    [
        # Rows of danbooru.csv (a1111-sd-webui-tagcomplete, 2025-01-03).
        ("saber", "saber (fate)", "character"),
        ("sister_cleaire", "sister claire", "character"),
        ("minato_aqua_(5th_costume)", "minato aqua (sailor)", "character"),
        ("altria_pendragon_(fate)", "artoria pendragon (fate)", "character"),
        ("longhair", "long hair", "general"),
        ("1girls", "1girl", "general"),
        ("high_res", "highres", "meta"),
        ("toujou nozomi", "tojo nozomi", "character"),  # also a tipo-kgen name: the alias wins
    ],
)
def test_default_aliases(alias: str, tag: str, category: str) -> None:
    db = TagDatabase.default()
    assert db.canonical(alias) == tag
    assert db.alias_target(alias) == tag
    assert db.alias_target(tag) is None
    assert db.category(alias) == db.category(tag) == category
    assert db.post_count(alias) == db.post_count(tag)
    assert alias in db


@pytest.mark.parametrize(
    ("name", "category", "posts"),
    [
        ("1girl", "general", 6008644),
        ("long_hair", "general", 4350743),
        ("highres", "meta", 5256195),
        ("artoria pendragon (fate)", "character", 38099),
        ("saber (fate)", "character", 17258),
        ("minato aqua", "character", 8376),
        ("longhorn alistar", "character", None),  # a tipo-kgen name beyond the CSV: no count
    ],
)
def test_default_categories_and_counts(name: str, category: str, posts: int | None) -> None:
    db = TagDatabase.default()
    assert db.category(name) == category
    assert db.post_count(name) == posts
    assert db.kind(name) == (category if category in ("character", "series") else None)


def test_every_alias_resolves_to_a_tag() -> None:
    db = TagDatabase.default()
    lines = gzip.decompress(DEFAULT_TAGDB_FILE.read_bytes()).decode("utf-8").split("\n")
    pairs = [
        (key, value[1:])
        for line in lines[2 + 1 : -1 : 50]  # every 50th block
        for key, value in itertools.pairwise(line.split("\t"))
        if value.startswith(">")
    ]
    assert len(pairs) > 100
    for alias, tag in pairs:
        assert db.alias_target(alias) == tag
        assert db.alias_target(tag) is None
        assert db.category(tag) is not None


# -- suggest ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("long hiar", "long hair"),  # neighbours swapped
        ("Long_Hiar", "long hair"),
        ("smiel", "smile"),
        ("lookng at viewer", "looking at viewer"),  # a character missing
        ("hatsune mikku", "hatsune miku"),  # a character too many
        ("blonde hairr", "blonde hair"),
        ("looking att viewerr", "looking at viewer"),  # two too many in a long name
    ],
)
def test_suggest(typo: str, expected: str) -> None:
    assert TagDatabase.default().suggest(typo) == expected


@pytest.mark.parametrize("name", ["long hair", "longhair", "xyzzy plugh", "", "a"])
def test_suggest_nothing(name: str) -> None:
    assert TagDatabase.default().suggest(name) is None


def test_suggest_ranks_by_post_count(sample: TagDatabase) -> None:
    db = TagDatabase.from_csv(SAMPLE_CSV)
    assert db.suggest("long hai") == "long hair"
    assert db.suggest("hololove") == "hololive"
    assert TagDatabase.from_names(characters=["abcdef"]).suggest("abcdeg") is None  # no counts
    with pytest.raises(WrongTypeError):
        db.suggest(3)  # type: ignore[arg-type]


# -- search -----------------------------------------------------------------------------------


def test_search_ranks_by_post_count() -> None:
    matches = TagDatabase.default().search("long", limit=3)
    assert matches == [
        TagMatch("long hair", "general", 4350743),
        TagMatch("long sleeves", "general", 1568684),
        TagMatch("ponytail", "general", 599087, alias="long ponytail"),
    ]
    counts = [m.post_count or 0 for m in TagDatabase.default().search("s", limit=50)]
    assert counts == sorted(counts, reverse=True)


def test_search_completes_aliases() -> None:
    db = TagDatabase.default()
    assert db.search("Sister_Clea", limit=1) == [
        TagMatch("sister claire", "character", 1150, alias="sister cleaire")
    ]
    # A tag whose own name matches is shown without its alias.
    assert db.search("longh", limit=1) == [TagMatch("long hair", "general", 4350743, "longhair")]
    assert db.search("long h", limit=1) == [TagMatch("long hair", "general", 4350743)]


def test_search_category_and_limit() -> None:
    db = TagDatabase.default()
    characters = db.search("hatsune", category="character", limit=4)
    assert len(characters) == 4
    assert characters[0] == TagMatch("hatsune miku", "character", 106634)
    assert all(m.category == "character" for m in characters)
    meta = db.search("a", category="meta", limit=2)
    assert [m.name for m in meta] == ["absurdres", "animated"]
    assert len(db.search("a", limit=25)) == 25
    assert db.search("zzzzqqq") == []
    names = [m.name for m in db.search("", limit=3)]
    assert names == ["1girl", "highres", "solo"]


def test_search_names_without_counts_come_last(sample: TagDatabase) -> None:
    found = sample.search("no")
    assert found == [TagMatch("no count character", "character", None)]
    mine = TagDatabase.from_names(characters=["b", "a"], series=["ab"])
    assert [m.name for m in mine.search("")] == ["a", "ab", "b"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"text": 3}, WrongTypeError, "text must be a str"),
        ({"text": "a", "limit": "3"}, WrongTypeError, "limit must be an int"),
        ({"text": "a", "limit": True}, WrongTypeError, "limit must be an int"),
        ({"text": "a", "limit": 0}, InvalidArgumentError, "limit must be 1 or more"),
        ({"text": "a", "category": "copyright"}, InvalidArgumentError, "category must be one"),
        ({"text": "a", "category": 3}, WrongTypeError, "category must be a str or None"),
    ],
)
def test_search_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TagDatabase.empty().search(**kwargs)  # type: ignore[arg-type]


def test_union_overrides_every_method() -> None:
    mine = TagDatabase.from_names(series=["Long Hair"], characters=["long hare"])
    db = TagDatabase.default() | mine
    assert db.category("long hair") == "series"
    assert db.kind("long hair") == "series"
    assert db.canonical("long hair") == "Long Hair"
    assert db.post_count("long hair") is None
    assert db.category("longhair") == "general"  # the default's alias answers for itself
    assert db.alias_target("longhair") == "long hair"
    assert db.suggest("long hiar") is None  # `long hair` now has no post count
    found = db.search("long h", limit=100)
    assert TagMatch("Long Hair", "series", None) in found
    assert all(match.name != "long hair" for match in found)
    assert (mine | TagDatabase.default()).category("long hair") == "general"


def _search_by_hand(
    db: TagDatabase, entries: dict[str, str | None], text: str, limit: int, category: str | None
) -> list[TagMatch]:
    """What ``search`` must answer, by sorting every entry (``alias key -> tag`` or ``None``)."""
    prefix = normalize_name(text).lower()
    ranked = []
    for key, target in entries.items():
        if not key.startswith(prefix):
            continue
        tag = key if target is None else target
        found = TagMatch(
            tag,
            db.category(tag),  # type: ignore[arg-type]
            db.post_count(tag),
            None if target is None or tag.startswith(prefix) else key,
        )
        if category is None or found.category == category:
            ranked.append((-(found.post_count or 0), key, found))
    result: list[TagMatch] = []
    for _, _, found in sorted(ranked, key=lambda item: item[:2]):
        if all(match.name != found.name for match in result):
            result.append(found)
    return result[:limit]


def test_search_matches_sorting_everything(tmp_path: Path) -> None:
    rng = random.Random(7)
    categories: list[TagCategory] = ["general", "artist", "series", "character", "meta"]

    def name() -> str:
        return " ".join("".join(rng.choices("abc", k=rng.randint(1, 3))) for _ in range(2))[
            : rng.randint(1, 7)
        ].strip()

    def tag() -> tuple[TagCategory, int | None]:
        return rng.choice(categories), rng.choice([None, 0, 1, 5, 5, 40, 1000])

    tags = {name(): tag() for _ in range(3000)}
    # Enough names under one 5-letter prefix that every way search reads its index is taken:
    # a whole group of 1 to 4 letters, a longer prefix filtering its group, a rare prefix.
    tags |= {"aaaaa" + "".join(rng.choices("abc", k=8)): tag() for _ in range(2500)}
    names = sorted(tags)
    aliases = {f"{rng.choice(names)}{rng.choice('xy')}": rng.choice(names) for _ in range(300)}
    db = TagDatabase.from_file(_write_gzip(tmp_path / "db.txt.gz", _file_text(tags, aliases)))
    entries: dict[str, str | None] = dict.fromkeys(tags) | dict(aliases)
    prefixes = ["", "a", "aa", "aaaa", "aaaaa", "aaaaab", "b", "ab", "a ", "ba", "abc", "a b"]
    for prefix in [*prefixes, "c", "aax", "zz"]:
        for category in (None, "general", "character"):
            for limit in (1, 3, 50):
                expected = _search_by_hand(db, entries, prefix, limit, category)
                found = db.search(prefix, limit=limit, category=category)  # type: ignore[arg-type]
                assert found == expected, (prefix, category, limit)


def test_default_unpacks_only_the_chunks_it_needs() -> None:
    """In a fresh interpreter, count the chunks (gzip members) the default database unpacks."""
    code = (
        "import zlib\n"
        "real = zlib.decompress\n"
        "calls = []\n"
        "zlib.decompress = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "from animagine.core import TagDatabase\n"
        "db = TagDatabase.default()\n"
        "print(db.kind('arima kana'), db.loaded, len(calls))\n"
        "print(db.kind('arima kana (oshi no ko)'), len(calls))\n"  # the same chunk
        "print(db.kind('oshi no ko'), len(calls))\n"
        "print(len(db.load()), len(calls))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    chunks = -(-(464_939 + 29_967) // (16 * 64))
    assert result.stdout.splitlines() == [
        "character True 1",
        "None 1",
        "series 2",
        f"464939 {chunks}",
    ]


def test_a_broken_chunk_fails_when_read(tmp_path: Path) -> None:
    data = bytearray(DEFAULT_TAGDB_FILE.read_bytes())
    data[-20] ^= 0xFF  # inside the last chunk
    path = tmp_path / "db.txt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(TagDatabaseError, match=r"chunk 484 is not gzip'd"):
        TagDatabase.from_file(path).load()


def _suggest_by_hand(words: dict[str, int], name: str) -> str | None:
    """What ``suggest`` must answer, trying every word (``word -> posts``) by hand."""
    key = normalize_name(name).lower()

    def deletions(text: str, most: int) -> set[str]:
        found = {text}
        for _ in range(most):
            found |= {word[:cut] + word[cut + 1 :] for word in found for cut in range(len(word))}
        return found

    limit = 2 if len(key) >= 10 else 1
    best: tuple[int, int, str] | None = None
    for word, posts in words.items():
        distance = _full_distance(key, word)
        if distance <= limit and deletions(key, limit) & deletions(word, 1):
            rank = (-posts, distance, word)
            best = rank if best is None or rank < best else best
    return None if key in words or best is None else best[2]


@pytest.fixture(scope="module")
def suggest_db(tmp_path_factory: pytest.TempPathFactory) -> TagDatabase:
    tags: dict[str, tuple[TagCategory, int | None]] = {
        word: ("general", posts) for word, posts in _SUGGEST_WORDS.items()
    }
    path = tmp_path_factory.mktemp("suggest") / "db.txt.gz"
    return TagDatabase.from_file(_write_gzip(path, _file_text(tags, {})))


@given(st.text("abc ", min_size=1, max_size=13))
def test_suggest_matches_trying_every_word(suggest_db: TagDatabase, name: str) -> None:
    assert suggest_db.suggest(name) == _suggest_by_hand(_SUGGEST_WORDS, name)


_SUGGEST_RNG = random.Random(3)
_SUGGEST_WORDS = {
    "".join(_SUGGEST_RNG.choices("abc", k=_SUGGEST_RNG.randint(2, 12))): _SUGGEST_RNG.choice(
        [100, 150, 150, 2000]
    )
    for _ in range(400)
}


def _full_distance(a: str, b: str) -> int:
    """The optimal string alignment distance, every cell computed."""
    rows = [
        [i + j if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)
    ]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def test_a_chunk_index_that_does_not_fit_the_file(tmp_path: Path) -> None:
    data = DEFAULT_TAGDB_FILE.read_bytes()
    path = tmp_path / "db.txt.gz"
    path.write_bytes(data[:-30])  # cut short: the members do not start where the index says
    with pytest.raises(TagDatabaseError, match="not gzip'd"):
        TagDatabase.from_file(path).load()
    path.write_bytes(data + b"junk")  # bytes the index does not list
    with pytest.raises(TagDatabaseError, match="not gzip'd"):
        TagDatabase.from_file(path).load()
    path.write_bytes(data[-40:])  # sizes that add up to more than the file
    with pytest.raises(TagDatabaseError, match="not gzip'd"):
        TagDatabase.from_file(path).load()
    path.write_bytes(data[:10] + b"\xff\xff" + data[12:])  # extra field longer than the file
    with pytest.raises(TagDatabaseError, match="not gzip'd"):
        TagDatabase.from_file(path).load()
