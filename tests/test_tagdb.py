"""Tests for `TagDatabase`: the shipped data, CSV reading, unions, and lazy loading."""

from __future__ import annotations

import gzip
import itertools
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

from animagine.core import DEFAULT_TAGDB_FILE, TagDatabase, normalize_name
from animagine.errors import (
    AnimagineError,
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
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every database file decompressed (each read of a data file is one)."""
    calls: list[int] = []
    real: Callable[..., bytes] = zlib.decompress

    def spy(data: bytes, *args: int, **kwargs: int) -> bytes:
        calls.append(len(data))
        time.sleep(0.05)  # widen the window for the concurrent-first-lookup test
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


@pytest.mark.parametrize("name", ["1girl", "long hair", "masterpiece", "arima", "", "   "])
def test_default_does_not_know_general_tags(name: str) -> None:
    db = TagDatabase.default()
    assert db.kind(name) is None
    assert db.canonical(name) is None
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
    assert len(db) > 370_000
    assert "arima kana" in db  # loads it
    assert repr(db).startswith("<TagDatabase default (322737 characters, 52594 series")


def test_shipped_file_is_well_formed() -> None:
    """The data file's sections are sorted, unique and normalised, as bisection needs."""
    lines = gzip.decompress(DEFAULT_TAGDB_FILE.read_bytes()).decode("utf-8").split("\n")
    magic, version, *fields = lines[0].split("\t")
    counts = dict(field.split("=", 1) for field in fields)
    assert (magic, version) == ("animagine-tagdb", "1")
    assert counts["source"] == "tipo-kgen 0.3.1"
    split = 1 + int(counts["characters"])
    end = split + int(counts["series"])
    assert lines[end:] == [""]
    for section in (lines[1:split], lines[split:end]):
        assert all(a < b for a, b in itertools.pairwise(section))  # sorted, no duplicates
    names = lines[1:end]
    assert not set(lines[1:split]) & set(lines[split:end])
    assert all(name and name == normalize_name(name).lower() for name in names)
    assert DEFAULT_TAGDB_FILE.stat().st_size <= 3_000_000


def test_notice_attributes_the_source() -> None:
    notice = (DEFAULT_TAGDB_FILE.parent / "NOTICE").read_text(encoding="utf-8")
    assert "tipo-kgen 0.3.1" in notice
    assert "Apache License, Version 2.0" in notice


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


def test_from_file_reads_on_first_lookup_once(fresh: TagDatabase, reads: list[int]) -> None:
    assert not loaded(fresh)
    assert reads == []
    assert repr(fresh) == f"<TagDatabase {str(DEFAULT_TAGDB_FILE)!r} (not loaded)>"
    assert fresh.is_character("arima kana")
    assert loaded(fresh)
    assert len(reads) == 1
    assert fresh.is_series("hololive")
    assert len(reads) == 1


def test_load_reads_now_and_returns_the_database(fresh: TagDatabase, reads: list[int]) -> None:
    assert fresh.load() is fresh
    assert loaded(fresh)
    assert len(reads) == 1
    assert fresh.load() is fresh
    assert len(reads) == 1
    assert TagDatabase.default().load() is TagDatabase.default()
    assert TagDatabase.empty().load().loaded


def test_union_with_a_file_stays_lazy(fresh: TagDatabase, reads: list[int]) -> None:
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


def test_concurrent_first_lookups_read_once(fresh: TagDatabase, reads: list[int]) -> None:
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
    _write_gzip(path, "animagine-tagdb\t1\tcharacters=1\tseries=0\narima kana\n")
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip", "not gzip'd UTF-8"),
        (gzip.compress(b"\xff\xfe\n"), "not gzip'd UTF-8"),
        (gzip.compress(b"something else\t1\n"), "line 1: expected"),
        (gzip.compress(b"animagine-tagdb\t2\tcharacters=0\tseries=0\n"), "line 1: expected"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=x\tseries=0\n"), "line 1: header"),
        (gzip.compress(b"animagine-tagdb\t1\tseries=0\n"), "line 1: header"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=-1\tseries=2\na\n"), "negative"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=2\tseries=0\na\n"), "promises 2"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=1\tseries=0\na\nb\n"), "promises 1"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=2\tseries=0\nb\na\n"), "line 3: names"),
        (gzip.compress(b"animagine-tagdb\t1\tcharacters=0\tseries=2\na\na\n"), "not sorted"),
    ],
)
def test_corrupt_data_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "db.txt.gz"
    path.write_bytes(content)
    with pytest.raises(TagDatabaseError, match=message):
        TagDatabase.from_file(path).load()


def test_data_file_round_trip(tmp_path: Path) -> None:
    text = "animagine-tagdb\t1\tcharacters=2\tseries=1\tsource=test\na\nc\nb\n"
    db = TagDatabase.from_file(_write_gzip(tmp_path / "db.txt.gz", text))
    assert db.kind("a") == "character"
    assert db.kind("c") == "character"
    assert db.kind("b") == "series"
    assert db.kind("d") is None
    assert db.kind("") is None
    assert len(db) == 3
    assert sorted(db.names()) == ["a", "b", "c"]


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
        assert other not in sample  # general, artist and meta tags are ignored
    assert len(sample) == 18
    assert repr(sample) == f"<TagDatabase {str(SAMPLE_CSV)!r} (9 characters, 9 series, 16 aliases)>"


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


def test_csv_aliases_of_other_categories_are_ignored(sample: TagDatabase) -> None:
    for alias in ("1girls", "sole female", "ixy (artist)", "hi res", ""):
        assert alias not in sample


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
