"""Reading prompt text into weighted tags, and writing tags back as prompt text.

Two readers share everything after tokenisation:

* the Lark LALR parser built from ``grammar/prompt.lark``, the definition of the syntax, loaded
  once and lazily; it decides what is valid and produces every syntax error, named after the
  token its rules reject (see :func:`_syntax_error`);
* a fast path: one compiled regular expression over the *same* terminal patterns
  (:data:`TERMINALS`) and :func:`_accepts`, which checks the grammar's rules on the token
  stream (brackets pair up; a weight only last in ``(...)``; no ``|`` or weight directly in
  ``[...]``; no ``AND`` or extra-network tag). When it meets anything the rules reject it hands
  the text to Lark, so errors always come from the grammar.

Both produce the same token stream, which :func:`_assemble` turns into :class:`ParsedTag` items:
one tag per comma-separated item, with A1111 emphasis, escapes joined, and ``name (qualifier)``
written without backslashes read as the Danbooru name. ``tests/test_grammar.py`` proves with
Hypothesis that the paths agree, and that :func:`render_tags` writes text that reads back as
the same tags.

Reading is linear in the length of the text, nesting depth included: brackets are paired in
one pass, and a group looks only at its opener, its first tokens and its last one.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

from animagine.core._tag import BREAK, BREAK_NAME, Tag, canonical_parts, normalize_name
from animagine.errors import PromptSyntaxError, PromptTooLongError, WrongTypeError

if TYPE_CHECKING:
    import lark

__all__ = ["MAX_PROMPT_CHARS", "TERMINALS", "ParsedTag", "parse_tags", "render_tags"]

#: The longest prompt text read, in characters. Longer text raises :class:`PromptTooLongError`
#: before anything is parsed. SDXL reads 77 tokens per chunk; 100,000 characters is hundreds of
#: chunks, far beyond any real prompt, and reading it takes well under a second (reading and lint
#: take time linear in the length of the text).
MAX_PROMPT_CHARS: Final = 100_000

ROUND_MULTIPLIER: Final = 1.1
SQUARE_MULTIPLIER: Final = 1 / 1.1

#: The grammar's terminals as ``(name, regular expression)``, in the lexer's priority order: the
#: patterns of ``grammar/prompt.lark`` character for character (a test compares them with what
#: Lark loads). The fast reader is one regular expression built from them.
TERMINALS: Final[tuple[tuple[str, str], ...]] = (
    ("AND", r"\bAND\b"),
    ("EXTRA", r"<[A-Za-z_][\w-]*:[^>\n]*>"),
    ("BREAK", r"\bBREAK\b"),
    ("WEIGHT", r":[ \t]*[+-]?[\d.]+[ \t]*(?=[)\]])"),
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
#: Terminals that no rule of the grammar accepts: they exist to name the error.
REJECTED: Final = ("AND", "EXTRA")

_TEXTLIKE: Final = frozenset({"TEXT", "COLON", "ESC", "BACKSLASH"})
_OPENERS: Final = frozenset({"LPAR", "LSQB"})
_AFTER_QUALIFIER: Final = frozenset({"COMMA", "NEWLINE", "RPAR", "RSQB", "BREAK", "WEIGHT"})


# (type, text, start, end): plain tuples, built by the million in the fast path.
Token = tuple[str, str, int, int]


class ParsedTag(NamedTuple):
    """A tag as read from text, with where it was found.

    ``start``/``end`` are character offsets of the tag's text in the prompt, at least one
    character apart: from its first to its last non-blank character, emphasis brackets inside
    the tag included but not those around it (for ``()``, the tag named ``()``, the brackets).
    ``qualifier`` is the ``(start, end)`` span of an unescaped ``(qualifier)`` that was read as
    part of the name, or ``None``.
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


class _KeepRejected:
    """A no-op post-lexer whose only job is to keep :data:`REJECTED` terminals in the lexer.

    Lark drops terminals no rule uses; these must still be lexed, so the parser can reject
    them by name.
    """

    always_accept = REJECTED

    def process(self, stream: Iterator[lark.Token]) -> Iterator[lark.Token]:
        return stream


@functools.cache
def _lark_parser() -> lark.Lark:
    import lark  # noqa: PLC0415  (lark loads only when the fast path defers)

    return lark.Lark.open(
        "grammar/prompt.lark",
        rel_to=__file__,
        parser="lalr",
        lexer="basic",
        postlex=_KeepRejected(),
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
    # Depth first, left to right, without recursion: brackets may nest thousands deep.
    stack: list[lark.Tree[lark.Token] | lark.Token] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, lark.Token):
            assert node.start_pos is not None
            assert node.end_pos is not None
            tokens.append((node.type, str(node), node.start_pos, node.end_pos))
        else:
            stack.extend(reversed(node.children))
    return tokens


def _open_brackets(text: str, offset: int) -> list[tuple[str, int]]:
    """The brackets still open at ``offset`` (which the grammar read without error up to)."""
    stack: list[tuple[str, int]] = []
    for match in _FAST_LEXER.finditer(text, 0, offset):
        kind = match.lastgroup
        if kind in _OPENERS:
            stack.append((match.group(), match.start()))
        elif (kind == "RPAR" or kind == "RSQB") and stack:  # noqa: PLR1714
            stack.pop()
    return stack


def _column(text: str, where: int) -> int:
    return where - text.rfind("\n", 0, where)


def _syntax_error(text: str, error: Exception) -> PromptSyntaxError:
    """Name the construct the grammar rejected, at the position of the rejected token."""
    import lark  # noqa: PLC0415

    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        offset = error.pos_in_stream or 0
        if text.startswith("<", offset):
            return PromptSyntaxError(
                "unclosed extra-network tag '<...:' (LoRA and similar tags are not prompt syntax)",
                text=text,
                offset=offset,
            )
        return PromptSyntaxError(f"unexpected character {text[offset]!r}", text=text, offset=offset)
    if not isinstance(error, lark.exceptions.UnexpectedToken):
        return PromptSyntaxError("invalid prompt", text=text, offset=len(text))
    token = error.token
    kind = token.type
    offset = len(text) if kind == "$END" else (token.start_pos or 0)
    value = str(token)
    stack = _open_brackets(text, offset)
    if kind == "AND":
        return PromptSyntaxError(
            "'AND' (composable diffusion) is not supported", text=text, offset=offset
        )
    if kind == "EXTRA":
        return PromptSyntaxError(
            f"extra-network tag {value!r} is not prompt syntax here (load LoRAs with "
            "Generator.load_lora)",
            text=text,
            offset=offset,
        )
    if kind == "PIPE":
        return PromptSyntaxError("alternation '[a|b]' is not supported", text=text, offset=offset)
    if kind == "WEIGHT":
        if stack and stack[-1][0] == "[":
            return PromptSyntaxError(
                "prompt editing '[from:to:when]' is not supported (write the tags you want)",
                text=text,
                offset=stack[-1][1],
            )
        # A weight outside brackets: the closer after it has nothing to close.
        offset += len(value)
        value = text[offset]
        kind = "RPAR" if value == ")" else "RSQB"
    if kind in ("RPAR", "RSQB"):
        if not stack:
            return PromptSyntaxError(
                f"unmatched {value!r} (escape it as '\\{value}' if it is part of a tag)",
                text=text,
                offset=offset,
            )
        opener, where = stack[-1]
        return PromptSyntaxError(
            f"{value!r} does not close {opener!r} opened at column {_column(text, where)}",
            text=text,
            offset=offset,
        )
    if kind == "$END" and stack:
        opener, where = stack[-1]
        return PromptSyntaxError(
            f"{opener!r} is never closed (escape it as '\\{opener}' if it is part of a tag)",
            text=text,
            offset=where,
        )
    return PromptSyntaxError(f"unexpected {value!r}", text=text, offset=offset)  # pragma: no cover


def _accepts(tokens: Sequence[Token]) -> dict[int, int]:
    """Raise :class:`_Defer` unless the grammar's rules accept ``tokens``; pair the brackets.

    The rules of ``grammar/prompt.lark`` on a token stream: brackets pair up; ``WEIGHT`` only
    directly inside ``(...)`` (the terminal itself ends before a closing bracket); ``PIPE`` not
    directly inside ``[...]``; no ``AND`` or ``EXTRA`` anywhere. Returns opener index -> closer
    index, as :func:`_matching` does.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        kind = token[0]
        if kind == "TEXT" or kind == "COMMA":  # noqa: PLR1714 (hot loop)
            continue
        if kind == "LPAR" or kind == "LSQB":  # noqa: PLR1714
            stack.append(index)
        elif kind == "RPAR" or kind == "RSQB":  # noqa: PLR1714
            if not stack:
                raise _Defer
            opener = stack.pop()
            if tokens[opener][0] != ("LPAR" if kind == "RPAR" else "LSQB"):
                raise _Defer
            pairs[opener] = index
        elif kind == "PIPE":
            if stack and tokens[stack[-1]][0] == "LSQB":
                raise _Defer
        elif kind == "WEIGHT":
            if not stack or tokens[stack[-1]][0] != "LPAR":
                raise _Defer
        elif kind == "AND" or kind == "EXTRA":  # noqa: PLR1714
            raise _Defer
    if stack:
        raise _Defer
    return pairs


def tokenize(text: str, *, use_grammar: bool = False) -> tuple[list[Token], dict[int, int]]:
    """The token stream of ``text``, validated by the grammar's rules, and its bracket pairs."""
    if not use_grammar:
        try:
            tokens = _fast_tokens(text)
            pairs = _accepts(tokens)
        except _Defer:
            pass
        else:
            return tokens, pairs
    tokens = _lark_tokens(text)
    return tokens, _matching(tokens)


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
        tag = BREAK if name == BREAK_NAME else Tag._trusted(name, round(weight, 4))
        if len(_TAG_CACHE) >= _TAG_CACHE_LIMIT:
            _TAG_CACHE.clear()
        _TAG_CACHE[key] = tag
    return tag


def _make_mixed(pieces: Sequence[str], weights: Sequence[float]) -> Tag | None:
    parts = canonical_parts(zip(pieces, weights, strict=True))
    if not parts:
        return None
    if len(parts) == 1:
        return _make_tag(parts[0][0], parts[0][1])
    name = "".join(text for text, _ in parts)
    return BREAK if name == BREAK_NAME else Tag._trusted(name, 1.0, parts)


def _matching(tokens: Sequence[Token]) -> dict[int, int]:
    """Opener index -> its closer's index, in one pass."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        kind = token[0]
        if kind == "LPAR" or kind == "LSQB":  # noqa: PLR1714
            stack.append(index)
        elif kind == "RPAR" or kind == "RSQB":  # noqa: PLR1714
            pairs[stack.pop()] = index
    return pairs


def _blank_until(tokens: Sequence[Token], start: int, stop: int) -> bool:
    """Whether ``tokens[start:stop]`` is only whitespace text (looks no further than needed)."""
    for index in range(start, stop):
        token = tokens[index]
        if token[0] != "TEXT" or not token[1].isspace():
            return False
    return True


def _weight_of(text: str, token: Token) -> float:
    number = token[1].strip(": \t")
    try:
        return float(number)
    except ValueError:
        raise PromptSyntaxError(
            f"weight {number!r} is not a number",
            text=text,
            offset=token[2] + token[1].index(number),
        ) from None


def _qualifier_close(tokens: Sequence[Token], open_index: int, close: int) -> bool:
    """Whether ``(...)`` at ``open_index`` reads as a Danbooru qualifier of the text before it."""
    if tokens[open_index][0] != "LPAR":
        return False
    has_text = False
    for index in range(open_index + 1, close):
        token = tokens[index]
        if token[0] not in _TEXTLIKE:
            return False
        if token[0] != "COLON" and not token[1].isspace():
            has_text = True
    if not has_text:
        return False
    follower = close + 1
    if follower < len(tokens) and tokens[follower][0] == "TEXT" and tokens[follower][1].isspace():
        follower += 1
    return follower >= len(tokens) or tokens[follower][0] in _AFTER_QUALIFIER


def _assemble(text: str, tokens: Sequence[Token], pairs: dict[int, int]) -> list[ParsedTag]:
    items: list[ParsedTag] = []
    pieces: list[str] = []  # the current tag's text, piece by piece, unescaped
    weights: list[float] = []  # the weight of each piece
    mixed = False  # whether the pieces have more than one weight
    first = -1  # source offset of the tag's first non-blank character
    last_piece, last_end = "", 0  # the tag's last non-blank piece, and where it ends
    qualifier: tuple[int, int] | None = None
    fresh = False  # non-blank text since the last bracket (a qualifier may follow)
    weight = 1.0
    outer: list[float] = []

    def add(piece: str, start: int, end: int) -> None:
        # ``piece`` is the text of source[start:end] (or of one escaped character there).
        nonlocal first, last_piece, last_end, mixed
        if first < 0:
            if piece.isspace():
                return  # leading whitespace
            first = start + len(piece) - len(piece.lstrip())
        elif weight != weights[0]:
            mixed = True
        pieces.append(piece)
        weights.append(weight)
        if not piece.isspace():
            last_piece, last_end = piece, end

    def flush() -> None:
        nonlocal first, qualifier, mixed
        if first >= 0:
            tag = _make_mixed(pieces, weights) if mixed else _make_tag("".join(pieces), weights[0])
            if tag is not None:
                last = last_end - (len(last_piece) - len(last_piece.rstrip()))
                items.append(ParsedTag(tag, first, last, qualifier))
            pieces.clear()
            weights.clear()
            first = -1
        qualifier = None
        mixed = False

    index = 0
    count = len(tokens)
    while index < count:
        token = tokens[index]
        kind = token[0]
        if kind == "TEXT" or kind == "COLON" or kind == "BACKSLASH" or kind == "PIPE":  # noqa: PLR1714
            value = token[1]
            if value.isspace():
                if first >= 0:  # leading whitespace is dropped
                    pieces.append(value)
                    weights.append(weight)
                    mixed = mixed or weight != weights[0]
            else:
                if first < 0:
                    first = token[2] + len(value) - len(value.lstrip())
                elif weight != weights[0]:
                    mixed = True
                pieces.append(value)
                weights.append(weight)
                last_piece, last_end = value, token[3]
                fresh = True
        elif kind == "COMMA" or kind == "NEWLINE":  # noqa: PLR1714
            flush()
            fresh = False
        elif kind == "ESC":
            add(token[1][1], token[2], token[3])
            fresh = True
        elif kind == "LPAR" or kind == "LSQB":  # noqa: PLR1714
            close = pairs[index]
            if _blank_until(tokens, index + 1, close):
                # ``()``, ``[]``: empty emphasis is the tag of its brackets.
                add("()" if kind == "LPAR" else "[]", token[2], tokens[close][3])
                fresh = False
                index = close + 1
                continue
            inner_last = tokens[close - 1]
            if inner_last[0] == "WEIGHT" and _blank_until(tokens, index + 1, close - 1):
                # ``(:3)``: the emoticon tag, emphasised.
                saved = weight
                weight = _checked(text, weight * ROUND_MULTIPLIER, token)
                add(inner_last[1], inner_last[2], inner_last[3])
                weight = saved
                fresh = False
                index = close + 1
                continue
            if fresh and _qualifier_close(tokens, index, close):
                inner = "".join(
                    t[1][1] if t[0] == "ESC" else t[1] for t in tokens[index + 1 : close]
                )
                add(f"({inner})", token[2], tokens[close][3])
                qualifier = (token[2], tokens[close][3])
                fresh = False
                index = close + 1
                continue
            outer.append(weight)
            if kind == "LSQB":
                factor = SQUARE_MULTIPLIER
            elif inner_last[0] == "WEIGHT":
                factor = _weight_of(text, inner_last)
            else:
                factor = ROUND_MULTIPLIER
            where = inner_last if kind == "LPAR" and inner_last[0] == "WEIGHT" else token
            weight = _checked(text, weight * factor, where)
            fresh = False
        elif kind == "RPAR" or kind == "RSQB":  # noqa: PLR1714
            weight = outer.pop()
            fresh = False
        elif kind == "BREAK":
            flush()
            items.append(ParsedTag(BREAK, token[2], token[3]))
            fresh = False
        # WEIGHT was applied when its group opened; AND and EXTRA never get here.
        index += 1
    flush()
    return items


def _checked(text: str, weight: float, where: Token) -> float:
    """``weight``, or a syntax error when it overflowed to infinity."""
    if math.isfinite(weight):
        return weight
    if where[0] == "WEIGHT":
        number = where[1].strip(": \t")
        shown = number if len(number) <= 12 else f"{number[:8]}... ({len(number)} characters)"
        reason = f"emphasis weight {shown} out of range (too big a number)"
    else:
        reason = "emphasis weight out of range (brackets nested so deep the weight overflows)"
    raise PromptSyntaxError(reason, text=text, offset=where[2])


def parse_tags(text: str, *, use_grammar: bool = False) -> list[ParsedTag]:
    """Read ``text`` into weighted tags in source order (``BREAK`` included).

    Args:
        text: The prompt.
        use_grammar: Always use the Lark parser (the fast path is otherwise tried first; both
            give the same result).

    Raises:
        WrongTypeError: ``text`` is not a ``str`` (a ``TypeError``).
        PromptTooLongError: ``text`` is longer than :data:`MAX_PROMPT_CHARS`.
        PromptSyntaxError: the text is not a valid prompt.
    """
    check_text(text)
    return _assemble(text, *tokenize(text, use_grammar=use_grammar))


def render_tags(tags: Iterable[Tag]) -> str:
    """Write tags as prompt text: ``, `` between tags, single spaces around ``BREAK``.

    The one way tags become text. ``parse_tags(render_tags(tags))`` reads back exactly ``tags``
    (a Danbooru qualifier aside, every tag is one item).
    """
    parts: list[str] = []
    after_break = True
    for tag in tags:
        if tag.name == BREAK_NAME and not tag.parts:
            parts.append(" BREAK" if parts else "BREAK")
            after_break = True
            continue
        if not after_break:
            parts.append(", ")
        elif parts:
            parts.append(" ")
        parts.append(str(tag))
        after_break = False
    return "".join(parts)


def check_text(text: object) -> None:
    """Raise unless ``text`` is a str of at most :data:`MAX_PROMPT_CHARS` characters."""
    if not isinstance(text, str):
        raise WrongTypeError(f"prompt must be a str, got {type(text).__name__}")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptTooLongError(text=text, limit=MAX_PROMPT_CHARS)
