"""Caption folders: captions read as data, normalised in place, atomically, in parallel."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import CHILDREN_OF, children, running

from animagine import PromptSyntaxError, UnknownVersionError
from animagine.apps import captions as captions_module
from animagine.apps.captions import (
    SEPARATOR,
    CaptionFailure,
    CaptionReport,
    CaptionStyle,
    find_captions,
    normalise_caption,
    normalise_captions,
)
from animagine.apps.cli import main
from animagine.core import (
    MAX_PROMPT_CHARS,
    VERSIONS,
    Prompt,
    Tag,
    TagDatabase,
    normalize_name,
)
from animagine.errors import (
    InvalidArgumentError,
    MissingFileError,
    PromptTooLongError,
    WrongTypeError,
)
from animagine.files import is_temporary, write_atomic

DATA = Path(__file__).parent / "data" / "captions"
TAGGER_FILES = sorted(DATA.glob("*.txt"))

MESSY = "masterpiece, long_hair, 1girl, hatsune_miku, smile\n"
CLEAN = "1girl, hatsune miku, long hair, smile, masterpiece\n"
LATIN1 = b"caf\xe9, 1girl\n"
JEANNE = "jeanne_d'arc_alter_(avenger)_(fate)"

FLAGS = ("underscores", "escape", "separator", "canonical")
#: Every combination of the writing flags.
STYLES = [
    dict(zip(FLAGS, values, strict=True))
    for values in itertools.product((False, True), repeat=len(FLAGS))
]


def write(path: Path, text: str | bytes, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    if mode is not None:
        path.chmod(mode)
    return path


def read(path: Path) -> str:
    """A file's text exactly as stored (no newline translation)."""
    return path.read_bytes().decode("utf-8")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "10_miku"
    write(root / "001.txt", MESSY, 0o640)
    write(root / "002.txt", CLEAN)
    write(root / "003.txt", LATIN1)  # not UTF-8: cannot be read
    write(root / "004.txt", "smile, 1girl")  # no trailing newline
    write(root / "005.txt", "smile, 1girl\r\n")
    write(root / "001.png", "not a caption")
    write(root / "sub" / "006.txt", MESSY)
    write(root / ".cache" / "007.txt", MESSY)
    return root


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- the documented rules, written out independently of the module --------------------------

_TOKENS = re.compile(r"(?:\\[\\()\[\]]|[^\\()\[\]]|\\(?![\\()\[\]]))*")
_PAIR = re.compile(r"\\([\\()\[\]])")


def literal(item: str) -> str:
    """An item's literal name: escaped items (a pair and no bare bracket) are unescaped."""
    if _TOKENS.fullmatch(item) and _PAIR.search(item):
        return _PAIR.sub(r"\1", item)
    return item


def names(part: str, *, canonical: bool = False) -> list[str]:
    """The tag names of one ``|||`` part of a line, as the documented reading rule gives them."""
    found = [normalize_name(literal(item.strip())) for item in part.split(",") if item.strip()]
    if canonical:
        database = TagDatabase.default()
        found = [normalize_name(database.alias_target(name) or name) for name in found]
    return found


def escaped(name: str) -> str:
    return re.sub(r"([\\()\[\]])", r"\\\1", name)


def written(name: str, *, underscores: bool, escape: bool) -> str:
    """How the documentation says a name is written."""
    text = escaped(name) if escape or literal(name) != name else name
    return text.replace(" ", "_") if underscores else text


def lines(text: str) -> tuple[list[str], list[str]]:
    """A caption file's lines and its line breaks."""
    pieces = re.split(r"(\r\n|\r|\n)", text.removeprefix("\ufeff"))
    return pieces[::2], pieces[1::2]


def assert_only_documented_changes(before: str, after: str, **flags: bool) -> None:
    """Nothing but the documented transformations turns ``before`` into ``after``.

    Per line: the same tags (as a multiset), each written as documented; the separator kept
    (or, with ``separator``, added after identity tags only); lines, line breaks and the byte
    order mark kept.
    """
    assert after.startswith("\ufeff") == before.startswith("\ufeff")
    old_lines, old_breaks = lines(before)
    new_lines, new_breaks = lines(after)
    assert new_breaks == old_breaks
    assert len(new_lines) == len(old_lines)
    style = {"underscores": flags.get("underscores", False), "escape": flags.get("escape", False)}
    for old, new in zip(old_lines, new_lines, strict=True):
        old_parts, new_parts = old.split(SEPARATOR), new.split(SEPARATOR)
        if len(old_parts) > 1 or not flags.get("separator", False):
            assert len(new_parts) == len(old_parts), (old, new)
        else:
            assert len(new_parts) in (1, 2), (old, new)
        old_names = [
            n for p in old_parts for n in names(p, canonical=flags.get("canonical", False))
        ]
        new_items = [item.strip() for part in new_parts for item in part.split(",")]
        new_items = [item for item in new_items if item]
        assert Counter(new_items) == Counter(written(n, **style) for n in old_names), (old, new)
        if len(old_parts) > 1:  # each part keeps its own tags
            for old_part, new_part in zip(old_parts, new_parts, strict=True):
                got = [item.strip() for item in new_part.split(",") if item.strip()]
                want = [
                    written(n, **style)
                    for n in names(old_part, canonical=flags.get("canonical", False))
                ]
                assert Counter(got) == Counter(want), (old_part, new_part)
        assert ", ," not in new, new
        assert new == new.strip(), new


# --- one caption ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MESSY, CLEAN),
        ("smile, 1girl", "1girl, smile"),
        ("smile, 1girl\r\n", "1girl, smile\r\n"),
        ("\ufeffsmile, 1girl\n", "\ufeff1girl, smile\n"),
        ("", ""),
        ("\n", "\n"),
        ("  \n", "\n"),
        ("smile,, ,1girl,", "1girl, smile"),
        # Names are literal: brackets, weights, colons and keywords are text.
        (f"{JEANNE}, 1girl", "1girl, jeanne d'arc alter (avenger) (fate)"),
        ("hu_tao_(genshin_impact), 1girl, ^_^", "1girl, hu tao (genshin impact), ^_^"),
        ("1girl, (smile", "1girl, (smile"),
        ("smile, ), 1girl, [", "1girl, smile, ), ["),
        ("(smile:1.2), 1girl, [abstract]", "1girl, (smile:1.2), [abstract]"),
        ("cat AND dog, 1girl, BREAK_dancing", "1girl, cat AND dog, BREAK dancing"),
        ("\\(^o^)/, \\m/, 1girl", "1girl, \\(^o^)/, \\m/"),
        ("ミク, 1girl, café", "1girl, ミク, café"),
        # Each line is a caption of its own (kohya trains on the first one).
        ("smile,\n1girl\n", "smile\n1girl\n"),
        ("smile, 1girl\n\nsmile, 1boy", "1girl, smile\n\n1boy, smile"),
        # An escaped caption is read back as the literal names it stands for.
        ("hu tao \\(genshin impact\\), 1girl", "1girl, hu tao (genshin impact)"),
        ("1girl, a \\\\ b", "1girl, a \\ b"),
        # kohya's keep-tokens separator stays; each side is ordered on its own.
        ("smile ||| arima kana, 1girl", "smile ||| 1girl, arima kana"),
        ("oshi no ko, 1girl|||smile,night", "1girl, oshi no ko ||| smile, night"),
        (
            "1girl ||| smile ||| masterpiece, absurdres",
            "1girl ||| smile ||| masterpiece, absurdres",
        ),
        ("||| smile, 1girl", "||| 1girl, smile"),
        ("1girl, |||", "1girl |||"),
    ],
)
def test_normalise_caption(text: str, expected: str) -> None:
    assert normalise_caption(text) == expected
    assert normalise_caption(expected) == expected  # idempotent
    assert_only_documented_changes(text, expected)


def test_jeanne_stays_one_tag_in_every_style() -> None:
    """The issue's example: one tag, two qualifiers, no weight, no backslash unless asked."""
    assert normalise_caption(JEANNE) == "jeanne d'arc alter (avenger) (fate)"
    assert normalise_caption(JEANNE, underscores=True) == JEANNE
    assert normalise_caption(JEANNE, escape=True) == "jeanne d'arc alter \\(avenger\\) \\(fate\\)"
    assert normalise_caption(JEANNE, escape=True, underscores=True) == (
        "jeanne_d'arc_alter_\\(avenger\\)_\\(fate\\)"
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, "1girl, hu tao (genshin impact), long hair, ^_^, smile"),
        ({"underscores": True}, "1girl, hu_tao_(genshin_impact), long_hair, ^_^, smile"),
        ({"escape": True}, "1girl, hu tao \\(genshin impact\\), long hair, ^_^, smile"),
        ({"separator": True}, "1girl, hu tao (genshin impact) ||| long hair, ^_^, smile"),
    ],
)
def test_flags(flags: dict[str, Any], expected: str) -> None:
    text = "long_hair, hu_tao_(genshin_impact), ^_^, 1girl, smile"
    assert normalise_caption(text, **flags) == expected
    assert normalise_caption(expected, **flags) == expected


def test_escape_and_literal_round_trip() -> None:
    for path in TAGGER_FILES:
        literal_text = normalise_caption(read(path))
        escaped_text = normalise_caption(literal_text, escape=True)
        assert normalise_caption(escaped_text) == literal_text, path.name
        assert normalise_caption(escaped_text, escape=True) == escaped_text, path.name


def test_a_name_that_looks_escaped_is_written_escaped() -> None:
    """``x \\(y`` (read from an escaped caption) written bare would read back as ``x (y``."""
    text = "x \\\\\\(y, 1girl"  # escaped: the name is  x \(y
    once = normalise_caption(text)
    assert once == "1girl, x \\\\\\(y"
    assert normalise_caption(once) == once


def test_separator_only_after_identity_tags() -> None:
    text = "smile, arima kana, oshi no ko, 1girl, night"
    assert normalise_caption(text, separator=True) == (
        "1girl, arima kana, oshi no ko ||| smile, night"
    )
    # Without identity tags there is nothing to keep, so nothing is inserted.
    assert normalise_caption("smile, night", separator=True) == "smile, night"
    # Only identity: everything is kept in place.
    assert normalise_caption("arima kana, 1girl", separator=True) == "1girl, arima kana |||"
    # A caption that has a separator keeps it where it is.
    kept = "1girl, smile ||| arima kana"
    assert normalise_caption(kept, separator=True) == kept


def test_separator_for_3_0_keeps_quality_after_it() -> None:
    text = "masterpiece, smile, arima kana, 1girl"
    once = normalise_caption(text, version="v3", separator=True)
    assert once == "1girl, arima kana ||| masterpiece, smile"
    assert normalise_caption(once, version="v3", separator=True) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Danbooru aliases in the shipped tag database: the old name becomes the tag.
        ("agir_(azur_lane), 1girl, smile", "1girl, aegir (azur lane), smile"),
        ("smile, Agir (Azur Lane), 1girl", "1girl, aegir (azur lane), smile"),
        # Not aliases: left as written, case and all.
        ("Arima_Kana, 1girl, Smile", "1girl, Arima Kana, Smile"),
    ],
)
def test_canonical_replaces_aliases(text: str, expected: str) -> None:
    assert normalise_caption(text, canonical=True) == expected
    assert normalise_caption(expected, canonical=True) == expected


def test_without_canonical_aliases_stay() -> None:
    assert normalise_caption("agir_(azur_lane), 1girl") == "1girl, agir (azur lane)"


def test_versions() -> None:
    text = "masterpiece, smile, 1girl"
    assert normalise_caption(text, version="v3") == "masterpiece, 1girl, smile"
    assert normalise_caption(text, version="v3.1") == "masterpiece, 1girl, smile"
    assert normalise_caption(text, version="v4") == "1girl, smile, masterpiece"


def test_refused_item_is_a_positioned_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An item the prompt core cannot hold as a tag fails the caption; nothing is guessed."""

    def picky(name: str) -> Tag:
        if "refused" in name:
            raise InvalidArgumentError(f"Tag name must not be {name!r}")
        return Tag(name)

    monkeypatch.setattr(captions_module, "Tag", picky)
    with pytest.raises(PromptSyntaxError) as caught:
        normalise_caption("\ufeff1girl,\nsmile,  refused tag\n")
    assert (caught.value.line, caught.value.column) == (2, 9)
    assert caught.value.reason.startswith("'refused tag' cannot be a tag: ")


def test_tags_the_core_cannot_order_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise InvalidArgumentError("no order")

    monkeypatch.setattr(Prompt, "from_tags", refuse)
    with pytest.raises(PromptSyntaxError) as caught:
        normalise_caption("smile\nsmile, 1girl")
    assert (caught.value.line, caught.value.column) == (1, 1)
    assert caught.value.reason == "the caption cannot be ordered: no order"


def test_too_long_caption() -> None:
    body = "a, " * (MAX_PROMPT_CHARS // 3 + 1)
    with pytest.raises(PromptTooLongError):
        normalise_caption("\ufeff" + body)


# --- the tagger-style caption set -----------------------------------------------------------


def style_id(flags: dict[str, bool]) -> str:
    return "+".join(name for name, on in flags.items() if on) or "literal"


@pytest.mark.parametrize("flags", STYLES, ids=[style_id(s) for s in STYLES])
@pytest.mark.parametrize("path", TAGGER_FILES, ids=[p.name for p in TAGGER_FILES])
def test_tagger_captions_change_only_as_documented(path: Path, flags: dict[str, bool]) -> None:
    before = read(path)
    for version in VERSIONS:
        after = normalise_caption(before, version=version, **flags)
        assert_only_documented_changes(before, after, **flags)
        assert normalise_caption(after, version=version, **flags) == after  # idempotent


def test_tagger_captions_literal_v4() -> None:
    """What the default run makes of each tagger file."""
    out = {p.name: normalise_caption(read(p)) for p in TAGGER_FILES}
    assert out["001_wd14_underscores.txt"] == (
        "1girl, jeanne d'arc alter (avenger) (fate), jeanne d'arc alter (fate), "
        "fate/grand order, fate (series), solo, long hair, breasts, looking at viewer, blush, "
        "smile, bangs, yellow eyes, white hair, ahoge, armor, fur trim, black cape, headpiece\n"
    )
    assert "\\" not in out["004_deepbooru_escaped.txt"]
    assert out["004_deepbooru_escaped.txt"].startswith(
        "1girl, hatsune miku, vocaloid, hatsune miku (append), solo, "
    )
    assert out["005_keep_tokens.txt"].startswith("1girl, arima kana, oshi no ko ||| solo, ")
    assert out["006_keep_tokens_suffix.txt"].endswith("||| masterpiece, best quality\n")
    assert out["007_two_lines.txt"].count("\n") == 2
    assert out["008_bom_crlf.txt"].startswith("\ufeff1girl, artoria pendragon (lancer) (fate), ")
    assert out["008_bom_crlf.txt"].endswith("\r\n")
    three = out["003_wd14_brackets.txt"].split(", ")
    for kept in (":(", ";(", ">:(", "(o)_(o)", "\\(^o^)/", "x_x", "toki (bunny) (blue archive)"):
        assert kept in three
    stray = out["009_no_newline_stray.txt"]
    assert stray.startswith("1boy, male focus, ")
    assert not stray.endswith("\n")
    assert {"(", ")", "[", "]", ":<"} <= set(stray.split(", "))
    kaomoji = out["002_wd14_kaomoji.txt"].split(", ")
    for kept in ("^_^", ">_<", "o_o", "=_=", "\\m/", ":d", ";)"):
        assert kept in kaomoji


@pytest.mark.parametrize("flags", STYLES, ids=[style_id(s) for s in STYLES])
def test_tagger_set_check_passes_after_one_run(tmp_path: Path, flags: dict[str, Any]) -> None:
    for path in TAGGER_FILES:
        write(tmp_path / path.name, path.read_bytes())
    paths = find_captions([tmp_path])
    first = normalise_captions(paths, version="v3.1", **flags)
    assert first.ok
    check = normalise_captions(paths, version="v3.1", check=True, **flags)
    assert (check.ok, check.changed, check.unchanged) == (True, (), len(paths))


# --- idempotence, over generated caption sets -----------------------------------------------

_PLAIN = st.sampled_from(
    [
        "1girl", "2boys", "male_focus", "solo", "smile", "long_hair", "arima kana",
        "hatsune_miku", "oshi no ko", "vocaloid", "hu_tao_(genshin_impact)", JEANNE,
        "masterpiece", "best quality", "great_quality", "high score", "absurdres",
        "very aesthetic", "safe", "general", "sensitive", "nsfw", "explicit", "questionable",
        "rating: general", "rating:_explicit", "year 2020", "year_2024", "year 2005",
        "newest", "late", "recent", "oldest", "AND", "BREAK", "^_^", ">_<", "o_o", "\\m/",
        "\\(^o^)/", ":)", "(", ")", "[", "]", "\\", "(smile:1.2)", "[abstract]", "ミク",
        "café", "x \\(y\\)", "a\\\\b", "|", "||", "  spaced   out  ", "agir_(azur_lane)",
        "sole_female", "<lora:x:1>", "a:b", "{red|blue}",
    ]
)  # fmt: skip
_WORD = st.text(st.characters(exclude_characters=",\r\n", codec="utf-8"), max_size=8)
_KEYWORD_INSIDE = st.builds(
    lambda a, keyword, b, joiner: joiner.join(p for p in (a, keyword, b) if p),
    st.sampled_from(["", "salt", "cat", "x"]),
    st.sampled_from(["AND", "BREAK", "break", "and"]),
    st.sampled_from(["", "pepper", "time", "(fate)"]),
    st.sampled_from([" ", "_", ""]),
)
_QUALIFIED = st.builds(
    lambda name, qualifiers: name + "".join(f"_({q})" for q in qualifiers),
    st.sampled_from(["toki", "saber", "jeanne_d'arc", "firefly"]),
    st.lists(st.sampled_from(["bunny", "fate", "blue_archive", "honkai:_star_rail"]), max_size=3),
)
_ITEM = st.one_of(_PLAIN, _PLAIN, _KEYWORD_INSIDE, _QUALIFIED, _WORD)


@st.composite
def caption_texts(draw: st.DrawFn) -> str:
    comma = st.sampled_from([",", ", ", " , ", ",,", ",  "])
    separator = st.sampled_from([SEPARATOR, f" {SEPARATOR} ", f", {SEPARATOR}, "])
    new_line = st.sampled_from(["\n", "\r\n"])
    text_lines = []
    for _ in range(draw(st.integers(1, 3))):
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            items = draw(st.lists(_ITEM, max_size=8))
            parts.append(draw(comma).join(items) if items else "")
        text = parts[0]
        for part in parts[1:]:
            text += draw(separator) + part
        text_lines.append(text)
    body = text_lines[0]
    for line in text_lines[1:]:
        body += draw(new_line) + line
    if draw(st.booleans()):
        body += draw(new_line)
    return ("\ufeff" if draw(st.booleans()) else "") + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=caption_texts(),
    version=st.sampled_from([v.name for v in VERSIONS]),
    flags=st.sampled_from(STYLES),
)
def test_normalising_twice_changes_nothing(text: str, version: str, flags: dict[str, bool]) -> None:
    try:
        once = normalise_caption(text, version=version, **flags)
    except PromptSyntaxError as error:  # an item the core refuses: reported, never changed
        reason = error.reason
        assert "cannot be a tag" in reason
        return
    assert normalise_caption(once, version=version, **flags) == once
    assert_only_documented_changes(text, once, **flags)


# --- finding files --------------------------------------------------------------------------


def test_find_captions(dataset: Path) -> None:
    names_ = [str(p.relative_to(dataset)) for p in find_captions([dataset])]
    assert names_ == ["001.txt", "002.txt", "003.txt", "004.txt", "005.txt"]
    names_ = [str(p.relative_to(dataset)) for p in find_captions([dataset], recursive=True)]
    assert names_[-1] == os.path.join("sub", "006.txt")
    assert len(names_) == 6  # not the hidden .cache folder
    assert find_captions([dataset / "002.txt"]) == [dataset / "002.txt"]
    assert find_captions([dataset], extension=".png") == [dataset / "001.png"]


def test_find_captions_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as missing:
        find_captions([tmp_path / "missing"])
    assert isinstance(missing.value, FileNotFoundError)
    assert missing.value.filename == str(tmp_path / "missing")
    for extension in ("txt", ".", "*.txt", "./x"):
        with pytest.raises(InvalidArgumentError, match="extension"):
            find_captions([tmp_path], extension=extension)
    with pytest.raises(WrongTypeError, match="extension"):
        find_captions([tmp_path], extension=1)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="single path"):
        find_captions(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="int"):
        find_captions([tmp_path, 3])  # type: ignore[list-item]


# --- normalising files ----------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_normalise_in_place(dataset: Path, jobs: int) -> None:
    paths = find_captions([dataset], recursive=True)
    before = files(dataset)
    report = normalise_captions(paths, jobs=jobs)
    assert isinstance(report, CaptionReport)
    assert [p.name for p in report.changed] == ["001.txt", "004.txt", "005.txt", "006.txt"]
    assert report.unchanged == 1
    assert [(f.path, f.kind) for f in report.failed] == [(dataset / "003.txt", "read")]
    assert str(report.failed[0]).startswith(f"{dataset / '003.txt'}: read not UTF-8 text")
    assert (report.total, report.ok, report.checked) == (6, False, False)
    assert read(dataset / "001.txt") == CLEAN
    assert (dataset / "001.txt").stat().st_mode & 0o777 == 0o640  # mode kept
    assert (dataset / "003.txt").read_bytes() == LATIN1  # untouched
    assert (dataset / "004.txt").read_bytes() == b"1girl, smile"
    assert (dataset / "005.txt").read_bytes() == b"1girl, smile\r\n"
    assert read(dataset / ".cache" / "007.txt") == MESSY
    assert files(dataset) == before  # no temporary files left
    again = normalise_captions(paths, jobs=jobs)
    assert (again.changed, again.unchanged) == ((), 5)


@pytest.mark.parametrize("jobs", [1, 2])
def test_flags_reach_the_workers(tmp_path: Path, jobs: int) -> None:
    paths = [write(tmp_path / f"{i}.txt", f"smile, {JEANNE}, 1girl\n") for i in range(3)]
    normalise_captions(paths, jobs=jobs, escape=True, underscores=True, separator=True)
    expected = "1girl, jeanne_d'arc_alter_\\(avenger\\)_\\(fate\\) ||| smile\n"
    assert [read(p) for p in paths] == [expected] * 3


@pytest.mark.parametrize("jobs", [1, 2])
def test_check_writes_nothing(dataset: Path, jobs: int) -> None:
    paths = find_captions([dataset])
    before = {p: p.read_bytes() for p in paths}
    report = normalise_captions(paths, check=True, jobs=jobs)
    assert [p.name for p in report.changed] == ["001.txt", "004.txt", "005.txt"]
    assert report.checked
    assert not report.ok
    assert {p: p.read_bytes() for p in paths} == before


def test_many_files_in_parallel_keep_input_order(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{i:04}.txt", f"tag{i}, smile, 1girl\n") for i in range(300)]
    report = normalise_captions(paths, jobs=2)
    assert list(report.changed) == paths
    assert all(read(p).startswith("1girl, ") for p in paths)


def test_unreadable_and_undecodable(tmp_path: Path) -> None:
    latin1 = write(tmp_path / "latin1.txt", b"caf\xe9, 1girl")
    missing = tmp_path / "missing.txt"
    report = normalise_captions([latin1, missing])
    assert [(f.path, f.kind) for f in report.failed] == [(latin1, "read"), (missing, "read")]
    assert "not UTF-8" in report.failed[0].message
    assert str(report.failed[1]) == f"{missing}: read no such file or directory"
    assert latin1.read_bytes() == b"caf\xe9, 1girl"


def test_refused_caption_is_reported_and_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def picky(name: str) -> Tag:
        if "refused" in name:
            raise InvalidArgumentError("not a tag")
        return Tag(name)

    monkeypatch.setattr(captions_module, "Tag", picky)
    path = write(tmp_path / "a.txt", "smile,\n1girl, refused, night\n")
    report = normalise_captions([path])
    assert report.failed == (
        CaptionFailure(path, "caption", "'refused' cannot be a tag: not a tag", 2, 8),
    )
    assert str(report.failed[0]) == f"{path}:2:8: caption 'refused' cannot be a tag: not a tag"
    assert read(path) == "smile,\n1girl, refused, night\n"


def test_symlink_is_skipped_unless_followed(tmp_path: Path) -> None:
    target = write(tmp_path / "real" / "a.txt", "smile, 1girl")
    link = tmp_path / "a.txt"
    link.symlink_to(target)
    report = normalise_captions([link])
    assert [(s.path, s.reason) for s in report.skipped] == [(link, "symlink")]
    assert (report.total, report.ok) == (1, True)
    assert read(target) == "smile, 1girl"
    report = normalise_captions([link], follow_symlinks=True)
    assert report.changed == (link,)
    assert link.is_symlink()
    assert read(target) == "1girl, smile"


def test_write_atomic_failure_leaves_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.txt", "old")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert read(path) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.txt", "smile, 1girl")

    def fail(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    report = normalise_captions([path])
    assert [(f.kind, f.message) for f in report.failed] == [("write", "permission denied")]
    assert report.changed == ()


def test_bad_arguments() -> None:
    with pytest.raises(UnknownVersionError):
        normalise_captions([], version="v9")
    with pytest.raises(UnknownVersionError):
        normalise_caption("1girl", version="v9")
    for jobs in (0, -1):
        with pytest.raises(InvalidArgumentError, match="jobs must be a positive int"):
            normalise_captions([], jobs=jobs)
    for wrong in (True, 1.5, "2"):
        with pytest.raises(WrongTypeError, match="jobs must be a positive int"):
            normalise_captions([], jobs=wrong)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="paths"):
        normalise_captions(42)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="caption text must be a str"):
        normalise_caption(b"1girl")  # type: ignore[arg-type]
    for flag in FLAGS:
        with pytest.raises(WrongTypeError, match=f"{flag} must be a bool"):
            normalise_caption("1girl", **{flag: 1})  # type: ignore[arg-type]
        with pytest.raises(WrongTypeError, match=f"{flag} must be a bool"):
            normalise_captions([], **{flag: "yes"})  # type: ignore[arg-type]


def test_caption_style() -> None:
    assert CaptionStyle.flags() == FLAGS
    assert CaptionStyle("3.1") == CaptionStyle(version="v3.1")
    style = CaptionStyle(escape=True)
    assert (style.version, style.escape, style.underscores) == ("v4", True, False)


def test_too_long_caption_is_a_caption_failure(tmp_path: Path) -> None:
    body = "a, " * (MAX_PROMPT_CHARS // 3 + 1)
    path = write(tmp_path / "long.txt", "\ufeff" + body)
    report = normalise_captions([path])
    assert [(f.kind, f.message.split(";")[0]) for f in report.failed] == [
        ("caption", f"prompt is {len(body):,} characters long")
    ]


def test_temporary_files_are_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite killed half-way leaves a hidden temporary file that batch cleanup can spot."""
    path = write(tmp_path / "a.txt", "smile, 1girl")
    seen: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: str) -> None:
        seen.append(os.path.basename(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    normalise_captions([path])
    assert len(seen) == 1
    assert seen[0].startswith(".a.txt.")
    assert is_temporary(seen[0])
    assert not is_temporary("a.txt")
    assert find_captions([tmp_path]) == [path]  # hidden: never taken for a caption


# --- the command ----------------------------------------------------------------------------


def test_command_check(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    status = main(["captions", "--check", str(dataset)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out.splitlines() == [str(dataset / n) for n in ("001.txt", "004.txt", "005.txt")]
    assert err.splitlines() == [
        f"{dataset / '003.txt'}: read not UTF-8 text (invalid continuation byte at byte 3)",
        "5 caption files for v4: 3 would be normalised, 1 unchanged, 1 failed (left untouched)",
    ]
    assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before


def test_command_rewrites_with_jobs(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["captions", "--jobs", "2", "--recursive", "--version", "v3", str(dataset)])
    out, err = capsys.readouterr()
    assert status == 1  # 003.txt cannot be read
    assert len(out.splitlines()) == 4
    assert err.splitlines()[-1] == (
        "6 caption files for v3: 4 normalised, 1 unchanged, 1 failed (left untouched)"
    )
    assert read(dataset / "sub" / "006.txt") == (
        "masterpiece, 1girl, hatsune miku, long hair, smile\n"
    )
    (dataset / "003.txt").unlink()
    assert main(["captions", "--check", "-r", "--version", "v3", str(dataset)]) == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "1girl, jeanne d'arc alter (avenger) (fate), fate (series), smile\n"),
        (["--underscores"], f"1girl, {JEANNE}, fate_(series), smile\n"),
        (
            ["--escape"],
            "1girl, jeanne d'arc alter \\(avenger\\) \\(fate\\), fate \\(series\\), smile\n",
        ),
        (["--separator"], "1girl, jeanne d'arc alter (avenger) (fate), fate (series) ||| smile\n"),
        (["--canonical"], "1girl, jeanne d'arc alter (avenger) (fate), fate (series), smile\n"),
        (
            ["--underscores", "--escape", "--separator"],
            "1girl, jeanne_d'arc_alter_\\(avenger\\)_\\(fate\\), fate_\\(series\\) ||| smile\n",
        ),
    ],
)
def test_command_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    path = write(tmp_path / "a.txt", f"smile, {JEANNE}, fate_(series), 1girl\n")
    assert main(["captions", *flags, str(tmp_path)]) == 0
    assert read(path) == expected
    capsys.readouterr()
    # Once is enough: a second run and --check with the same flags change nothing.
    assert main(["captions", "--check", *flags, str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "1 caption files for v4: 0 would be normalised, 1 unchanged\n"


def test_command_escape_then_literal_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in TAGGER_FILES:
        write(tmp_path / path.name, path.read_bytes())
    assert main(["captions", str(tmp_path)]) == 0
    literal_texts = {p.name: read(p) for p in tmp_path.iterdir()}
    assert main(["captions", "--escape", str(tmp_path)]) == 0
    assert main(["captions", str(tmp_path)]) == 0
    assert {p.name: read(p) for p in tmp_path.iterdir()} == literal_texts
    capsys.readouterr()


def test_command_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["captions", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in FLAGS:
        assert f"--{flag}" in out
    assert "|||" in out


def test_command_clean_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.txt", CLEAN)
    assert main(["captions", "--check", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "1 caption files for v4: 0 would be normalised, 1 unchanged\n"


def test_command_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["captions", str(tmp_path)]) == 0
    assert capsys.readouterr().err == f"no *.txt caption files in {tmp_path}\n"


def test_command_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["captions", str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"animagine captions: error: {tmp_path / 'missing'}: No such file or directory\n"


def test_command_bad_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["captions", "--extension", "txt", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("animagine captions: error: extension must look")


# --- crash safety -----------------------------------------------------------------------------


@pytest.mark.crash
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists(CHILDREN_OF.format(pid=os.getpid())),
    reason="needs Linux and /proc/PID/task/TID/children",
)
def test_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of a `jobs=2` run's parent process: its workers are gone within seconds."""
    # Enough work that the workers are busy for far longer than the test waits for them.
    # About 10 ms of parsing per file on one core: some 15 s for the two workers.
    caption = ", ".join(f"tag {i}" for i in range(2000)) + ", 1girl\n"
    for index in range(1500):
        (tmp_path / f"{index:04}.txt").write_text(caption, encoding="utf-8")
    script = textwrap.dedent(
        f"""
        from animagine.apps.captions import find_captions, normalise_captions
        normalise_captions(find_captions([{str(tmp_path)!r}]), jobs=2, check=True)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            assert parent.poll() is None, "the run ended before its workers could be seen"
            workers = {pid for pid in children(parent.pid) if running(pid)}
            time.sleep(0.05)
        assert len(workers) == 2, f"expected 2 workers, found {workers}"
        time.sleep(1.0)  # let them start on their chunks
        assert all(running(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(running(pid) for pid in workers):
            time.sleep(0.05)
        left = [pid for pid in workers if running(pid)]
        assert left == [], f"workers {left} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
