"""Tag: names, weights, rendering."""

from __future__ import annotations

import pytest

from animagine import BREAK, Tag


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
