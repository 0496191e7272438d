"""Tag: names, weights, rendering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import tags

from animagine import BREAK, Tag
from animagine.core import parse_tags, render_tags
from animagine.errors import InvalidArgumentError, WrongTypeError


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("hoshimachi_suisei_(1st_costume)", "hoshimachi suisei (1st costume)"),
        ("  long   hair ", "long hair"),
        ("^_^", "^_^"),
        ("o_o", "o_o"),
        (">_<", ">_<"),
        ("AA_", "AA"),
    ],
)
def test_names_are_normalised(raw: str, name: str) -> None:
    assert Tag(raw).name == name


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        (Tag("smile"), "smile"),
        (Tag("smile", 1.2), "(smile:1.2)"),
        (Tag("firefly (honkai: star rail)"), "firefly \\(honkai: star rail\\)"),
        (Tag("a[b]\\c", 0.5), "(a\\[b\\]\\\\c:0.5)"),
        (Tag("x", 1.1 * 1.1), "(x:1.21)"),
        (Tag("x", 2), "(x:2)"),
        (BREAK, "BREAK"),
    ],
)
def test_rendering(tag: Tag, text: str) -> None:
    assert str(tag) == text


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((1,), TypeError, "name must be a str"),
        (("a", "1.2"), TypeError, "weight must be a number"),
        (("a", True), TypeError, "weight must be a number"),
        (("a", float("inf")), ValueError, "finite"),
        (("a", float("nan")), ValueError, "finite"),
        (("",), ValueError, "empty"),
        (("a, b",), ValueError, "','"),
        (("a\nb",), ValueError, "'\\\\n'"),
        (("BREAK", 1.2), ValueError, "BREAK cannot carry a weight"),
    ],
)
def test_invalid_tags(args: tuple[object, ...], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Tag(*args)


def test_tags_are_hashable_and_compare_by_value() -> None:
    assert {Tag("a"), Tag("a", 1.0)} == {Tag("a")}
    assert Tag("a", 1.1) != Tag("a")
    assert repr(Tag("a", 1.1)) == "Tag('a', weight=1.1)"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("x AND y", "x_AND y"),
        ("AND", "_AND"),
        ("BREAK x", "BREAK_x"),
        (": BREAK", ":_BREAK"),
        ("<a:b>", "<a\\:b>"),
        ("rating: general", "rating: general"),
        ("re:zero", "re:zero"),
    ],
)
def test_rendering_escapes_what_would_read_as_syntax(name: str, text: str) -> None:
    assert str(Tag(name)) == text
    assert [item.tag for item in parse_tags(text)] == [Tag(name)]


def test_weighted_rendering_never_opens_an_extra_network() -> None:
    assert str(Tag("B<safe", 1.2)) == "(B<:1.2)(safe:1.2)"
    assert [item.tag for item in parse_tags("(B<:1.2)(safe:1.2)")] == [Tag("B<safe", 1.2)]


@pytest.mark.parametrize("name", ["x(AND)", "a\\BREAK\\b", "[AND]"])
def test_names_that_cannot_be_written_are_rejected(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot be written in a prompt"):
        Tag(name)


def test_parts_carry_emphasis_inside_one_tag() -> None:
    tag = Tag.from_parts([("an ", 1), ("important", 1.1), (" word", 1)])
    assert tag.name == "an important word"
    assert tag.weight == 1.0
    assert tag.parts == (("an ", 1.0), ("important ", 1.1), ("word", 1.0))
    assert str(tag) == "an (important:1.1) word"
    assert repr(tag) == (
        "Tag('an important word', parts=(('an ', 1), ('important ', 1.1), ('word', 1)))"
    )
    assert eval(repr(tag)) == tag
    assert tag != Tag("an important word")
    assert len({tag, Tag.from_parts([("an", 1), (" important", 1.1), (" word", 1)])}) == 1
    # One weight throughout is a plain tag; underscores and spaces normalise across pieces.
    assert Tag.from_parts([("ab_", 1.2), ("_cd", 1.2)]) == Tag("ab cd", 1.2)
    assert Tag.from_parts([("x ", 1.1), ("  ", 1), ("y", 1)]).parts == (("x ", 1.1), ("y", 1.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "ab", "parts": [("a", 1.1)]}, "at least two"),
        ({"name": "ab", "parts": [("a", 1.1), ("c", 1)]}, "spell 'ac'"),
        ({"name": "ab", "weight": 1.2, "parts": [("a", 1.1), ("b", 1)]}, "not in weight"),
        ({"name": "ab", "parts": [("a", float("inf")), ("b", 1)]}, "finite"),
    ],
)
def test_invalid_parts(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Tag(**kwargs)  # type: ignore[arg-type]


def test_parts_must_be_pairs() -> None:
    with pytest.raises(WrongTypeError):
        Tag("ab", parts="ab")  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError):
        Tag.from_parts([(1, 1.0)])  # type: ignore[list-item]


@settings(max_examples=300, deadline=None)
@given(tags())
def test_every_tag_reads_back_from_its_text(tag: Tag) -> None:
    """The rendering law: ``str(tag)`` reads as exactly ``[tag]``."""
    assert [item.tag for item in parse_tags(str(tag))] == [tag]
    assert [item.tag for item in parse_tags(str(tag), use_grammar=True)] == [tag]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(tags(), st.just(BREAK)), max_size=6))
def test_rendered_tag_lists_read_back(read: list[Tag]) -> None:
    assert [item.tag for item in parse_tags(render_tags(read))] == read
