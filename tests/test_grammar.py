"""The syntax: Lark grammar and fast path, emphasis, escapes, errors."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import animagine.core
from animagine import BREAK, PromptSyntaxError, Tag
from animagine.core import MAX_PROMPT_CHARS, TERMINALS, parse_tags
from animagine.errors import PromptTooLongError, WrongTypeError

GRAMMAR = Path(animagine.core.__file__).parent / "grammar" / "prompt.lark"


@functools.cache
def grammar() -> lark.Lark:
    """The grammar file as the reader loads it (``parse_tags(use_grammar=True)`` uses it)."""
    return lark.Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic")


def tags(text: str, *, use_grammar: bool = False) -> list[Tag]:
    return [item.tag for item in parse_tags(text, use_grammar=use_grammar)]


both_paths = pytest.mark.parametrize("use_grammar", [False, True], ids=["fast", "lark"])


def test_terminals_match_the_grammar_file() -> None:
    loaded = {t.name: t.pattern for t in grammar().terminals}
    assert {name for name, _ in TERMINALS} == set(loaded)
    for name, pattern in TERMINALS:
        lark_pattern = loaded[name]
        if lark_pattern.type == "str":
            assert re.fullmatch(pattern, lark_pattern.value), name
            assert len(pattern.replace("\\", "")) <= 1, name
        else:
            # Lark turns the escapes of the .lark file into the characters themselves.
            value = (
                lark_pattern.value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
            )
            assert pattern == value, name


@both_paths
def test_plain_tags_commas_newlines_and_empty_items(use_grammar: bool) -> None:
    text = "1girl,  smile ,,\nlong hair\r\n\nblue eyes,"
    assert tags(text, use_grammar=use_grammar) == [
        Tag("1girl"), Tag("smile"), Tag("long hair"), Tag("blue eyes"),
    ]  # fmt: skip


@both_paths
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(smile)", [Tag("smile", 1.1)]),
        ("[smile]", [Tag("smile", 1 / 1.1)]),
        ("((smile))", [Tag("smile", 1.21)]),
        ("(smile:1.3)", [Tag("smile", 1.3)]),
        ("( smile : 0.5 )", [Tag("smile", 0.5)]),
        ("(a, b:1.2)", [Tag("a", 1.2), Tag("b", 1.2)]),
        ("(a, (b:1.5))", [Tag("a", 1.1), Tag("b", 1.65)]),
        ("[(a:1.5)]", [Tag("a", 1.5 / 1.1)]),
        ("(a:-0.5)", [Tag("a", -0.5)]),
        ("(masterpiece) best quality", [Tag("masterpiece", 1.1), Tag("best quality")]),
    ],
)
def test_emphasis(use_grammar: bool, text: str, expected: list[Tag]) -> None:
    assert tags(text, use_grammar=use_grammar) == expected


@both_paths
def test_escapes_are_part_of_names(use_grammar: bool) -> None:
    text = r"hoshimachi suisei \(1st costume\), a\[b\], back\\slash, re\:zero, lone\ back"
    assert [t.name for t in tags(text, use_grammar=use_grammar)] == [
        "hoshimachi suisei (1st costume)", "a[b]", "back\\slash", "re:zero", "lone\\ back",
    ]  # fmt: skip


@both_paths
def test_unescaped_qualifier_reads_as_the_danbooru_tag(use_grammar: bool) -> None:
    items = parse_tags("1girl, firefly (honkai: star rail), smile", use_grammar=use_grammar)
    assert items[1].tag == Tag("firefly (honkai: star rail)")
    assert items[1].qualifier == (15, 34)
    # ... also inside emphasis, and not when the group carries a weight or is followed by text.
    assert tags("(hoshimachi suisei (1st costume):1.2)") == [
        Tag("hoshimachi suisei (1st costume)", 1.2)
    ]
    assert tags("vertin (reverse:1999)") == [Tag("vertin"), Tag("reverse", 1999)]
    assert tags("a (b) c") == [Tag("a"), Tag("b", 1.1), Tag("c")]


@both_paths
def test_colons_outside_weights_are_text(use_grammar: bool) -> None:
    assert tags("rating: general, (rating: general), (re:zero)", use_grammar=use_grammar) == [
        Tag("rating: general"), Tag("rating: general", 1.1), Tag("re:zero", 1.1),
    ]  # fmt: skip


@both_paths
def test_break_keyword(use_grammar: bool) -> None:
    assert tags("a, b BREAK c,BREAK,d", use_grammar=use_grammar) == [
        Tag("a"), Tag("b"), BREAK, Tag("c"), BREAK, Tag("d"),
    ]  # fmt: skip
    assert tags("BREAKING news, breakfast", use_grammar=use_grammar) == [
        Tag("BREAKING news"), Tag("breakfast"),
    ]  # fmt: skip


@both_paths
def test_emoticons_and_underscores(use_grammar: bool) -> None:
    text = "^_^, >_<, o_o, hatsune_miku, <|>_<|>"
    assert [t.name for t in tags(text, use_grammar=use_grammar)] == [
        "^_^", ">_<", "o_o", "hatsune miku", "<|>_<|>",
    ]  # fmt: skip


@both_paths
def test_spans_point_at_the_tag_text(use_grammar: bool) -> None:
    text = "  1girl , (smile:1.2),\n [blush]"
    spans = [text[i.start : i.end] for i in parse_tags(text, use_grammar=use_grammar)]
    assert spans == ["1girl", "smile", "blush"]


ERRORS = [
    ("(a", 0, "'(' is never closed"),
    ("a, b)", 4, "unmatched ')'"),
    ("[a", 0, "'[' is never closed"),
    ("(a]", 2, "']' does not close '('"),
    ("[a:b:0.5]", 0, "prompt editing"),
    ("[a:0.5]", 0, "prompt editing"),
    ("[a|b]", 2, "alternation"),
    ("a AND b", 2, "'AND'"),
    ("1girl, <lora:foo:0.8>", 7, "extra-network"),
    ("<lora:foo", 0, "unclosed extra-network"),
    ("(a:1.2.3)", 3, "weight '1.2.3' is not a number"),
    ("(a:)", 3, "missing weight"),
]


@both_paths
@pytest.mark.parametrize(("text", "offset", "message"), ERRORS)
def test_syntax_errors_name_the_construct_and_position(
    use_grammar: bool, text: str, offset: int, message: str
) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_tags(text, use_grammar=use_grammar)
    error = caught.value
    assert message in str(error)
    assert error.offset == offset
    assert error.line == 1
    assert error.column == offset + 1
    assert error.context.splitlines()[1] == " " * offset + "^"
    assert isinstance(error, ValueError)


def test_error_position_on_a_later_line() -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_tags("1girl, smile\nblue eyes, (long hair")
    assert (caught.value.line, caught.value.column) == (2, 12)
    assert caught.value.context == "blue eyes, (long hair\n           ^"


def test_lark_errors_are_chained_not_leaked() -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_tags("a)")
    assert type(caught.value.__cause__).__module__.startswith("lark")


def test_non_str_input_is_a_type_error() -> None:
    with pytest.raises(WrongTypeError, match="prompt must be a str"):
        parse_tags(b"1girl")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_tags(None)  # type: ignore[arg-type]


# -- limits ------------------------------------------------------------------------------------


@both_paths
def test_the_size_limit_is_checked_before_reading(use_grammar: bool) -> None:
    text = "a," * (MAX_PROMPT_CHARS // 2)
    assert len(parse_tags(text[:MAX_PROMPT_CHARS], use_grammar=use_grammar)) == len(text) // 2
    too_long = text + "(unclosed"
    with pytest.raises(PromptTooLongError) as caught:
        parse_tags(too_long, use_grammar=use_grammar)
    error = caught.value
    assert isinstance(error, PromptSyntaxError)
    assert (error.length, error.limit, error.offset) == (len(too_long), MAX_PROMPT_CHARS, 100_000)
    assert error.reason == f"prompt is {len(too_long):,} characters long; the limit is 100,000"
    # The context is a window around the problem, not the whole 100,000-character line.
    assert len(error.context.splitlines()[0]) <= 126
    assert len(str(error)) < 400


@both_paths
def test_deep_nesting_reads_without_recursion(use_grammar: bool) -> None:
    depth = 3000
    (item,) = parse_tags("[" * depth + "a" + "]" * depth, use_grammar=use_grammar)
    assert item.tag.name == "a"
    assert item.tag.weight == 0.0  # 1.1 ** -3000 rounds to nothing


@both_paths
@pytest.mark.parametrize(
    "text",
    [
        "(" * 8000 + "a" + ")" * 8000,
        "(a:" + "9" * 400 + ")",
        "[" * 8000 + "(a:" + "9" * 400 + ")" + "]" * 8000,
    ],
    ids=["nesting", "huge-weight", "zero-times-huge"],
)
def test_weights_out_of_range_are_syntax_errors(use_grammar: bool, text: str) -> None:
    with pytest.raises(PromptSyntaxError, match="emphasis weight out of range"):
        parse_tags(text, use_grammar=use_grammar)


def _best_time(function: Callable[[str], object], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "(" * (n // 2) + "a" + ")" * (n // 2),
        lambda n: "[" * (n // 2) + "a" + "]" * (n // 2),
        lambda n: "[" * (n // 4) + "a|b" + "]" * (n // 4) + ", (x:1.1)" * (n // 18),
        lambda n: "(" * (n - 1) + "a",
        lambda n: ", ".join(f"t{i} (q{i})" for i in range(n // 12)),
    ],
    ids=["nested-round", "nested-square", "pipes", "unclosed", "qualifiers"],
)
def test_reading_time_is_linear(make: Callable[[int], str]) -> None:
    """Four times the text takes about four times as long (a quadratic reader takes 16)."""
    small, big = make(MAX_PROMPT_CHARS // 8), make(MAX_PROMPT_CHARS // 2)

    def read(text: str) -> object:
        try:
            return parse_tags(text)
        except PromptSyntaxError as error:
            return error

    ratio = _best_time(read, big) / max(_best_time(read, small), 1e-4)
    assert ratio < 9, ratio


# -- the fast path and the grammar agree -------------------------------------------------------

_ALPHABET = st.sampled_from(
    [*"ab ,:()[]\\|<>_\n.123", "BREAK", "AND", "<lora:x:1>", ":1.2", "(", ")", "smile"]
)
prompt_texts = st.lists(_ALPHABET, max_size=30).map("".join)


def _outcome(text: str, use_grammar: bool) -> object:
    try:
        return [
            (i.tag, i.start, i.end, i.qualifier) for i in parse_tags(text, use_grammar=use_grammar)
        ]
    except PromptSyntaxError as error:
        return ("error", error.reason, error.offset)


@settings(max_examples=1500, deadline=None)
@given(prompt_texts)
def test_fast_path_equals_grammar(text: str) -> None:
    assert _outcome(text, False) == _outcome(text, True)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_only_raises_animagine_errors(text: str) -> None:
    assert _outcome(text, False) == _outcome(text, True)
