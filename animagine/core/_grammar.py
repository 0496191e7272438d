"""Reading prompt text into weighted tags.

Two readers share everything after tokenisation:

* the Lark LALR parser built from ``grammar/prompt.lark``, the definition of the syntax, loaded
  once and lazily; it decides what is valid and produces every syntax error;
* a fast path: one compiled regular expression over the *same* terminal patterns and a bracket
  check. When it meets anything it is not sure of (an unbalanced bracket, a character no terminal
  matches) it hands the text to Lark, so errors always come from the grammar.

Both produce the same token stream, which :func:`_assemble` turns into :class:`ParsedTag` items:
it applies A1111 emphasis, joins escaped characters, and recognises ``name (qualifier)`` written
without backslashes. ``tests/test_grammar.py`` proves the paths agree with Hypothesis.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

from animagine.core._tag import BREAK, Tag, normalize_name
from animagine.errors import PromptSyntaxError

if TYPE_CHECKING:
    import lark

__all__ = ["ParsedTag", "parse_tags"]

ROUND_MULTIPLIER: Final = 1.1
SQUARE_MULTIPLIER: Final = 1 / 1.1

# Terminal patterns in the lexer's priority order. They are the ones in grammar/prompt.lark,
# character for character (a test compares them with what Lark loads).
TERMINALS: Final[tuple[tuple[str, str], ...]] = (
    ("AND", r"\bAND\b"),
    ("EXTRA", r"<[A-Za-z_][\w-]*:[^>\n]*>"),
    ("BREAK", r"\bBREAK\b"),
    ("WEIGHT", r":[ \t]*[+-]?(?:\d+(?:\.\d*)?|\.\d+)[ \t]*(?=[)\]])"),
    ("ESC", r"\\[\\()\[\]:]"),
    ("BACKSLASH", r"\\"),
    ("COLON", r":"),
    ("PIPE", r"\|"),
    ("COMMA", r","),
    ("NEWLINE", r"\r\n?|\n"),
    ("LPAR", r"\("),
    ("RPAR", r"\)"),
    ("LSQB", r"\["),
    ("RSQB", r"\]"),
    ("TEXT", r"(?:[^\\()\[\],:|\r\nAB<]+|(?!\bBREAK\b|\bAND\b)[AB]|<(?![A-Za-z_][\w-]*:))+"),
)
_FAST_LEXER: Final = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in TERMINALS))

_TEXTLIKE: Final = frozenset({"TEXT", "COLON", "ESC", "BACKSLASH"})
_OPEN: Final = {"LPAR": "RPAR", "LSQB": "RSQB"}
_CLOSE: Final = frozenset({"RPAR", "RSQB"})
_AFTER_QUALIFIER: Final = frozenset({"COMMA", "NEWLINE", "RPAR", "RSQB", "BREAK", "WEIGHT"})
_NUMBERISH: Final = re.compile(r"[ \t]*[+-]?[\d.]\S*[ \t]*\Z")


# (type, text, start, end): plain tuples, built by the million in the fast path.
Token = tuple[str, str, int, int]


class ParsedTag(NamedTuple):
    """A tag as read from text, with where it was found.

    ``start``/``end`` are character offsets of the tag's text in the prompt (without
    surrounding whitespace or emphasis brackets). ``qualifier`` is the ``(start, end)`` span of an
    unescaped ``(qualifier)`` that was read as part of the name, or ``None``.
    """

    tag: Tag
    start: int
    end: int
    qualifier: tuple[int, int] | None = None


class _Defer(Exception):
    """The fast path is unsure: let the grammar decide."""


# -- tokenising ---------------------------------------------------------------------------------


def _fast_tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    append = tokens.append
    position = 0
    for match in _FAST_LEXER.finditer(text):
        start, end = match.span()
        if start != position:
            raise _Defer
        position = end
        append((match.lastgroup or "", text[start:end], start, end))
    if position != len(text):
        raise _Defer
    return tokens


@functools.cache
def _lark_parser() -> lark.Lark:
    import lark  # noqa: PLC0415  (lark loads only when the fast path defers)

    return lark.Lark.open(
        "grammar/prompt.lark",
        rel_to=__file__,
        parser="lalr",
        lexer="basic",
        keep_all_tokens=True,
        propagate_positions=False,
        maybe_placeholders=False,
    )


def _lark_tokens(text: str) -> list[Token]:
    import lark  # noqa: PLC0415

    try:
        tree = _lark_parser().parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise _syntax_error(text, error) from error
    tokens: list[Token] = []

    def walk(node: lark.Tree[lark.Token]) -> None:
        for child in node.children:
            if isinstance(child, lark.Token):
                assert child.start_pos is not None
                assert child.end_pos is not None
                tokens.append((child.type, str(child), child.start_pos, child.end_pos))
            else:
                walk(child)

    walk(tree)
    return tokens


def _syntax_error(text: str, error: Exception) -> PromptSyntaxError:
    """Explain a Lark failure in the prompt's own terms."""
    import lark  # noqa: PLC0415

    offset = getattr(error, "pos_in_stream", None)
    if offset is None:
        offset = len(text)
    # A bracket scan names the real culprit better than "unexpected token".
    stack: list[tuple[str, int]] = []
    try:
        scan = _fast_tokens(text)
    except _Defer:
        scan = []
    for token in scan:
        if token[0] in _OPEN:
            stack.append((token[1], token[2]))
        elif token[0] in _CLOSE:
            if not stack:
                return PromptSyntaxError(
                    f"unmatched {token[1]!r} (escape it as '\\{token[1]}' if it is part of a tag)",
                    text=text,
                    offset=token[2],
                )
            opener, where = stack.pop()
            if _OPEN["LPAR" if opener == "(" else "LSQB"] != token[0]:
                return PromptSyntaxError(
                    f"{token[1]!r} does not close {opener!r} opened at column "
                    f"{where - text.rfind(chr(10), 0, where)}",
                    text=text,
                    offset=token[2],
                )
    if stack:
        opener, where = stack[-1]
        return PromptSyntaxError(
            f"{opener!r} is never closed (escape it as '\\{opener}' if it is part of a tag)",
            text=text,
            offset=where,
        )
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        if text.startswith("<", offset):
            return PromptSyntaxError(
                "unclosed extra-network tag '<...:' (LoRA and similar tags are not prompt syntax)",
                text=text,
                offset=offset,
            )
        return PromptSyntaxError(f"unexpected character {text[offset]!r}", text=text, offset=offset)
    return PromptSyntaxError("invalid prompt", text=text, offset=offset)


def _check_balanced(tokens: Sequence[Token]) -> None:
    """Raise :class:`_Defer` unless brackets pair up and weights sit just before a closer."""
    depth: list[str] = []
    for index, token in enumerate(tokens):
        kind = token[0]
        if kind in _OPEN:
            depth.append(_OPEN[kind])
        elif kind in _CLOSE:
            if not depth or depth.pop() != kind:
                raise _Defer
        elif kind == "WEIGHT" and (
            not depth or index + 1 >= len(tokens) or tokens[index + 1][0] not in _CLOSE
        ):
            raise _Defer
    if depth:
        raise _Defer


def tokenize(text: str, *, use_grammar: bool = False) -> list[Token]:
    """The token stream of ``text``, validated by the grammar's rules."""
    if not use_grammar:
        try:
            tokens = _fast_tokens(text)
            _check_balanced(tokens)
        except _Defer:
            pass
        else:
            return tokens
    return _lark_tokens(text)


# -- assembling tags ----------------------------------------------------------------------------

_TAG_CACHE: dict[tuple[str, float], Tag] = {}
_TAG_CACHE_LIMIT: Final = 65536


def _make_tag(raw: str, weight: float) -> Tag | None:
    key = (raw, weight)
    tag = _TAG_CACHE.get(key)
    if tag is None:
        name = normalize_name(raw)
        if not name:
            return None
        tag = Tag._trusted(name, 1.0 if name == "BREAK" else round(weight, 4))
        if len(_TAG_CACHE) >= _TAG_CACHE_LIMIT:
            _TAG_CACHE.clear()
        _TAG_CACHE[key] = tag
    return tag


def _matching(tokens: Sequence[Token]) -> dict[int, int]:
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token[0] in _OPEN:
            stack.append(index)
        elif token[0] in _CLOSE:
            pairs[stack.pop()] = index
    return pairs


def _group_multiplier(text: str, tokens: Sequence[Token], open_index: int, close: int) -> float:
    """The factor a bracket group applies, rejecting what A1111 means but we do not support."""
    opener = tokens[open_index]
    inner = tokens[open_index + 1 : close]
    weight = inner[-1] if inner and inner[-1][0] == "WEIGHT" else None
    if opener[0] == "LSQB":
        if weight is not None:
            raise PromptSyntaxError(
                "prompt editing '[from:to:when]' is not supported (write the tags you want)",
                text=text,
                offset=opener[2],
            )
        level = 0
        for token in inner:
            if token[0] in _OPEN:
                level += 1
            elif token[0] in _CLOSE:
                level -= 1
            elif token[0] == "PIPE" and level == 0:
                raise PromptSyntaxError(
                    "alternation '[a|b]' is not supported",
                    text=text,
                    offset=token[2],
                )
        return SQUARE_MULTIPLIER
    if weight is not None:
        return float(weight[1].strip(": \t"))
    # `(a:)` and `(a:1.2.3)`: a colon before the closer that was meant as a weight.
    if inner and inner[-1][0] == "COLON":
        raise PromptSyntaxError("missing weight after ':'", text=text, offset=inner[-1][3])
    if (
        len(inner) >= 2
        and inner[-2][0] == "COLON"
        and inner[-1][0] == "TEXT"
        and (_NUMBERISH.match(inner[-1][1]))
    ):
        raise PromptSyntaxError(
            f"weight {inner[-1][1].strip()!r} is not a number",
            text=text,
            offset=inner[-1][2] + len(inner[-1][1]) - len(inner[-1][1].lstrip()),
        )
    return ROUND_MULTIPLIER


def _qualifier_close(tokens: Sequence[Token], open_index: int, close: int) -> bool:
    """Whether ``(...)`` at ``open_index`` reads as a Danbooru qualifier of the text before it."""
    if tokens[open_index][0] != "LPAR" or close == open_index + 1:
        return False
    has_text = False
    for index in range(open_index + 1, close):
        token = tokens[index]
        if token[0] not in _TEXTLIKE:
            return False
        if token[0] != "COLON" and token[1].strip():
            has_text = True
    follower = tokens[close + 1][0] if close + 1 < len(tokens) else "COMMA"
    return has_text and follower in _AFTER_QUALIFIER


def _assemble(text: str, tokens: Sequence[Token]) -> list[ParsedTag]:
    pairs = _matching(tokens) if any(t[0] in _OPEN for t in tokens) else {}
    items: list[ParsedTag] = []
    pieces: list[str] = []
    first = last = 0  # source span of the pieces
    weight = 1.0
    weights: list[float] = []
    qualifier: tuple[int, int] | None = None

    def flush() -> None:
        nonlocal qualifier
        if pieces:
            raw = "".join(pieces)
            stripped = raw.strip()
            if stripped:
                tag = _make_tag(stripped, weight)
                if tag is not None:
                    start = first + (len(raw) - len(raw.lstrip()))
                    end = last - (len(raw) - len(raw.rstrip())) if qualifier is None else last
                    items.append(ParsedTag(tag, start, end, qualifier))
            pieces.clear()
        qualifier = None

    index = 0
    count = len(tokens)
    while index < count:
        token = tokens[index]
        kind = token[0]
        if kind == "TEXT" or kind == "COLON" or kind == "BACKSLASH":  # noqa: PLR1714 (hot loop)
            if not pieces:
                first = token[2]
            pieces.append(token[1])
            last = token[3]
        elif kind == "COMMA" or kind == "NEWLINE":  # noqa: PLR1714
            flush()
        elif kind == "ESC":
            if not pieces:
                first = token[2]
            pieces.append(token[1][1])
            last = token[3]
        elif kind == "LPAR" or kind == "LSQB":  # noqa: PLR1714
            close = pairs[index]
            if pieces and "".join(pieces).strip() and _qualifier_close(tokens, index, close):
                inner = "".join(
                    t[1][1] if t[0] == "ESC" else t[1] for t in tokens[index + 1 : close]
                )
                pieces.append(f"({inner})")
                qualifier = (tokens[index][2], tokens[close][3])
                last = tokens[close][3]
                index = close + 1
                continue
            flush()
            weights.append(weight)
            weight *= _group_multiplier(text, tokens, index, close)
        elif kind == "RPAR" or kind == "RSQB":  # noqa: PLR1714
            flush()
            weight = weights.pop()
        elif kind == "BREAK":
            flush()
            items.append(ParsedTag(BREAK, token[2], token[3]))
        elif kind == "PIPE":
            if not pieces:
                first = token[2]
            pieces.append("|")
            last = token[3]
        elif kind == "AND":
            raise PromptSyntaxError(
                "'AND' (composable diffusion) is not supported", text=text, offset=token[2]
            )
        elif kind == "EXTRA":
            raise PromptSyntaxError(
                f"extra-network tag {token[1]!r} is not prompt syntax here (load LoRAs with "
                "Generator.load_lora)",
                text=text,
                offset=token[2],
            )
        # WEIGHT was applied when its group opened.
        index += 1
    flush()
    return items


def parse_tags(text: str, *, use_grammar: bool = False) -> list[ParsedTag]:
    """Read ``text`` into weighted tags in source order (``BREAK`` included).

    Args:
        text: The prompt.
        use_grammar: Always use the Lark parser (the fast path is otherwise tried first; both
            give the same result).

    Raises:
        TypeError: ``text`` is not a ``str``.
        PromptSyntaxError: the text is not a valid prompt.
    """
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a str, got {type(text).__name__}")
    return _assemble(text, tokenize(text, use_grammar=use_grammar))
