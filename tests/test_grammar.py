"""The syntax: Lark grammar and fast path, emphasis, escapes, errors."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lark
import pytest
from hypothesis import Phase, event, find, given, settings
from hypothesis import strategies as st
from strategies import prompt_texts

import animagine.core
from animagine import BREAK, PromptSyntaxError, Tag
from animagine.core import MAX_PROMPT_CHARS, TERMINALS, parse_tags, render_tags
from animagine.errors import PromptTooLongError, WrongTypeError

GRAMMAR = Path(animagine.core.__file__).parent / "grammar" / "prompt.lark"


class _KeepAll:
    """Keep the terminals no rule accepts (AND, EXTRA) in the lexer, as the reader does."""

    always_accept = ("AND", "EXTRA")

    def process(self, stream: Iterator[lark.Token]) -> Iterator[lark.Token]:
        return stream


@functools.cache
def grammar() -> lark.Lark:
    """The grammar file as the reader loads it (``parse_tags(use_grammar=True)`` uses it)."""
    return lark.Lark(
        GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic", postlex=_KeepAll()
    )


def tags(text: str, *, use_grammar: bool = False) -> list[Tag]:
    return [item.tag for item in parse_tags(text, use_grammar=use_grammar)]


both_paths = pytest.mark.parametrize("use_grammar", [False, True], ids=["fast", "lark"])


def test_terminals_match_the_grammar_file() -> None:
    loaded = {t.name: t.pattern for t in grammar().terminals}
    assert {name for name, _ in TERMINALS} == set(loaded)
    # The fast lexer tries them in the order of Lark's priorities, as Lark's lexer does.
    priority = {t.name: t.priority for t in grammar().terminals}
    order = [priority[name] for name, _ in TERMINALS]
    assert order == sorted(order, reverse=True)
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
        ("(masterpiece), best quality", [Tag("masterpiece", 1.1), Tag("best quality")]),
        ("(unnecessary)(parens)", [Tag("unnecessaryparens", 1.1)]),
        ("(a) (b)", [Tag("a b", 1.1)]),
        ("((a:1.2))", [Tag("a", 1.32)]),
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
    assert tags("vertin (reverse:1999)") == [Tag.from_parts([("vertin ", 1), ("reverse", 1999)])]
    assert tags("a (b) c") == [Tag.from_parts([("a ", 1), ("b ", 1.1), ("c", 1)])]
    # ... nor after a bracket: `(x)(y)` is emphasis twice.
    assert tags("(x)(y), (x) (y)") == [Tag("xy", 1.1), Tag("x y", 1.1)]


@both_paths
def test_emphasis_inside_an_item_stays_in_its_tag(use_grammar: bool) -> None:
    """No comma the user did not write: the tag carries its pieces' weights."""
    (item,) = parse_tags("an (important) word", use_grammar=use_grammar)
    assert item.tag.name == "an important word"
    assert item.tag.parts == (("an ", 1.0), ("important ", 1.1), ("word", 1.0))
    assert str(item.tag) == "an (important:1.1) word"
    assert (item.start, item.end) == (0, 19)
    first, second = parse_tags("a (b, c)", use_grammar=use_grammar)
    assert first.tag == Tag.from_parts([("a ", 1), ("b", 1.1)])
    assert second.tag == Tag("c", 1.1)


@both_paths
@pytest.mark.parametrize(
    ("text", "expected", "span"),
    [
        ("(:3)", Tag(":3", 1.1), ":3"),
        ("(:d)", Tag(":d", 1.1), ":d"),
        ("(( :3 ))", Tag(":3", 1.21), ":3"),
        ("()", Tag("()"), "()"),
        ("[ ]", Tag("[]"), "[ ]"),
        ("(())", Tag("()", 1.1), "()"),
        ("(a:)", Tag("a:", 1.1), "a:"),
        ("(a:1e400)", Tag("a:1e400", 1.1), "a:1e400"),
        ("x_AND_y", Tag("x AND y"), "x_AND_y"),
        (":_BREAK", Tag(": BREAK"), ":_BREAK"),
        ("<a\\:b>", Tag("<a:b>"), "<a\\:b>"),
        ("[B<safe]", Tag("B<safe", 1 / 1.1), "B<safe"),
    ],
)
def test_emoticons_empty_emphasis_and_odd_names_are_tags(
    use_grammar: bool, text: str, expected: Tag, span: str
) -> None:
    (item,) = parse_tags(text, use_grammar=use_grammar)
    assert item.tag == expected
    assert text[item.start : item.end] == span
    assert tags(str(item.tag)) == [expected]


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
    ("(a: .)", 4, "weight '.' is not a number"),
    ("a:1)", 3, "unmatched ')'"),
    ("[(a|b)|c]", 6, "alternation"),
    ("(a AND b", 3, "'AND'"),
    ("(a:" + "9" * 309 + ")", 2, "emphasis weight 99999999... (309 characters) out of range"),
    ("(" * 7448 + "a" + ")" * 7448, 7447, "emphasis weight out of range (brackets nested"),
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
    if len(text) <= 120:  # longer lines show a window
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
    with pytest.raises(PromptSyntaxError, match=r"emphasis weight .*out of range"):
        parse_tags(text, use_grammar=use_grammar)


def _best_time(function: Callable[[str], object], texts: list[str]) -> float:
    best = float("inf")
    for text in texts:
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


# Each makes text of about n characters; ``salt`` makes the pieces of each text new to the reader
# (it remembers what short pieces read as), so that every timing reads them.
@pytest.mark.parametrize(
    "make",
    [
        lambda n, salt: "(" * (n // 2) + "a" + ")" * (n // 2),
        lambda n, salt: "[" * (n // 2) + "a" + "]" * (n // 2),
        lambda n, salt: "[" * (n // 4) + "a|b" + "]" * (n // 4) + ", (x:1.1)" * (n // 18),
        lambda n, salt: "(" * (n - 1) + "a",
        lambda n, salt: ", ".join(f"t{i}{salt} (q{i})" for i in range(n // 14)),
        lambda n, salt: ", ".join(f"tag {i}{salt}" for i in range(n // 12)),
        lambda n, salt: "(" + ", ".join(f"tag {i}{salt}" for i in range(n // 12)) + ":1.2)",
        lambda n, salt: ", ".join(f"(tag {i}{salt}:1.2), [x{i}{salt}]" for i in range(n // 28)),
        lambda n, salt: ", ".join(f"a long run of text {i}{salt}: more" for i in range(n // 32)),
    ],
    ids=[
        "nested-round", "nested-square", "pipes", "unclosed", "qualifiers", "plain",
        "one-group", "groups", "colons",
    ],
)  # fmt: skip
def test_reading_time_is_linear(make: Callable[[int, str], str]) -> None:
    """Four times the text takes about four times as long (a quadratic reader takes 16)."""
    small = [make(MAX_PROMPT_CHARS // 8, f"s{k}") for k in range(3)]
    big = [make(MAX_PROMPT_CHARS // 2, f"b{k}") for k in range(3)]

    def read(text: str) -> object:
        try:
            return parse_tags(text)
        except PromptSyntaxError as error:
            return error

    ratio = _best_time(read, big) / max(_best_time(read, small), 1e-4)
    assert ratio < 9, ratio


# -- properties over the grammar's alphabet -------------------------------------------------------


def _outcome(text: str, use_grammar: bool) -> object:
    try:
        return [
            (i.tag, i.start, i.end, i.qualifier) for i in parse_tags(text, use_grammar=use_grammar)
        ]
    except PromptSyntaxError as error:
        return (type(error), error.reason, error.offset)


def _fast_equals_grammar(text: str) -> None:
    grammar_outcome = _outcome(text, True)
    # Read twice: the second time, every piece the fast reader remembers is remembered.
    assert _outcome(text, False) == grammar_outcome
    assert _outcome(text, False) == grammar_outcome


_TEXT = re.compile(dict(TERMINALS)["TEXT"])


def _lexed(text: str) -> list[tuple[str, str, int, int]]:
    """The grammar's lexer's tokens of ``text``, up to the first place it cannot lex."""
    tokens = []
    try:
        for token in grammar().lex(text):
            assert token.start_pos is not None
            assert token.end_pos is not None
            tokens.append((token.type, str(token), token.start_pos, token.end_pos))
    except lark.exceptions.UnexpectedCharacters:
        pass
    return tokens


def _pieces(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the text between commas."""
    start = 0
    for piece in text.split(","):
        yield start, start + len(piece)
        start += len(piece) + 1


def _routes(text: str) -> set[str]:
    """How the fast reader reads ``text``, told from the grammar's own tokens.

    ``plain``: a piece outside brackets that the TEXT terminal matches whole; ``alone``: any
    other piece outside brackets that closes its own; ``group``: brackets holding a comma;
    ``error``: the grammar rejects the text, or a weight in it.
    """
    try:
        parse_tags(text, use_grammar=True)
    except PromptSyntaxError:
        return {"error"}
    tokens = _lexed(text)
    depth_at: dict[int, int] = {0: 0}  # offset of each comma token + 1 -> depth there
    depth = 0
    for kind, _, _, end in tokens:
        depth += (kind in ("LPAR", "LSQB")) - (kind in ("RPAR", "RSQB"))
        if kind == "COMMA":
            depth_at[end] = depth
    routes = set()
    for start, end in _pieces(text):
        if depth_at.get(start) != 0:
            routes.add("group")
        elif _is_text(text[start:end]):
            routes.add("plain")
        elif start < end and depth_at.get(end + 1, 0) == 0:
            routes.add("alone")
    return routes


def _is_text(piece: str) -> bool:
    """Whether the TEXT terminal matches all of ``piece``."""
    found = _TEXT.match(piece)
    return found is not None and found.end() == len(piece)


@settings(max_examples=400, deadline=None)
@given(prompt_texts())
def test_fast_path_equals_grammar(text: str) -> None:
    """Same tags, positions and qualifiers, or the same error type, message and offset."""
    for route in sorted(_routes(text)):
        event(route)
    _fast_equals_grammar(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_fast_path_equals_grammar_on_any_text(text: str) -> None:
    _fast_equals_grammar(text)


@pytest.mark.parametrize(
    "routes",
    [{"plain", "alone"}, {"plain", "group"}, {"alone", "group"}, {"error"}],
    ids=lambda routes: "+".join(sorted(routes)),
)
def test_the_strategies_reach_every_route_of_the_fast_reader(routes: set[str]) -> None:
    """The differential tests above see plain pieces, pieces with syntax, and groups, mixed."""
    find(
        prompt_texts(),
        lambda text: routes <= _routes(text),
        settings=settings(
            max_examples=2000, database=None, derandomize=True, phases=[Phase.generate]
        ),
    )


@settings(max_examples=400, deadline=None)
@given(prompt_texts())
def test_a_piece_lexes_alone_as_it_does_in_its_text(text: str) -> None:
    """What the fast reader rests on, checked with the grammar's own lexer.

    Between two commas the lexer reads (commas not inside an extra-network tag), a piece gives
    the same tokens on its own as in its text, so reading it once is reading it anywhere; and a
    piece the TEXT terminal matches whole is that one TEXT token.
    """
    tokens = _lexed(text)
    commas = {start for kind, _, start, _ in tokens if kind == "COMMA"}
    lexed_to = tokens[-1][3] if tokens else 0
    for start, end in _pieces(text):
        if not (start == 0 or start - 1 in commas) or not (end == len(text) or end in commas):
            continue
        if end > lexed_to and end != len(text):
            continue
        inside = [
            (kind, value, begin - start, stop - start)
            for kind, value, begin, stop in tokens
            if start <= begin and stop <= end
        ]
        piece = text[start:end]
        if end <= lexed_to or not piece:
            assert _lexed(piece) == inside
        if _is_text(piece):
            assert inside == [("TEXT", piece, 0, len(piece))]


@settings(max_examples=400, deadline=None)
@given(prompt_texts())
def test_reading_raises_only_syntax_errors_and_rendering_reads_back(text: str) -> None:
    """The round-trip law: whatever reads, renders to text that reads as the same tags."""
    try:
        items = parse_tags(text)
    except PromptSyntaxError:  # PromptTooLongError included; anything else fails the test
        return
    for item in items:
        assert 0 <= item.start < item.end <= len(text)
        assert text[item.start : item.end].strip()
    read = [item.tag for item in items]
    rendered = render_tags(read)
    assert tags(rendered) == read
    assert render_tags(tags(rendered)) == rendered


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "(", "[", "AND", "<x:", ","]), max_size=8))
def test_errors_are_typed_on_any_prefix(atoms: list[str]) -> None:
    text = "".join(atoms)
    try:
        parse_tags(text)
    except PromptSyntaxError as error:
        offset = error.offset
    else:
        offset = 0
    assert 0 <= offset <= len(text)
