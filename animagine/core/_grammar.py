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
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

from animagine.core._tag import BREAK, Tag, normalize_name
from animagine.errors import PromptSyntaxError, PromptTooLongError, WrongTypeError

if TYPE_CHECKING:
    import lark

__all__ = ["MAX_PROMPT_CHARS", "TERMINALS", "ParsedTag", "parse_tags"]

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


class _Groups(NamedTuple):
    """Bracket structure, found in one pass so that no group is scanned once per opener."""

    close: dict[int, int]  # opener index -> its closer's index
    pipe: dict[int, int]  # opener index -> the first `|` directly inside that group


def _matching(tokens: Sequence[Token]) -> _Groups:
    pairs: dict[int, int] = {}
    pipes: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        kind = token[0]
        if kind in _OPEN:
            stack.append(index)
        elif kind in _CLOSE:
            pairs[stack.pop()] = index
        elif kind == "PIPE" and stack and stack[-1] not in pipes:
            pipes[stack[-1]] = index
    return _Groups(pairs, pipes)


def _group_multiplier(
    text: str, tokens: Sequence[Token], open_index: int, groups: _Groups
) -> float:
    """The factor a bracket group applies, rejecting what A1111 means but we do not support.

    Only the opener and the last two tokens of the group are looked at (``groups`` knows where
    its ``|`` is), so nested groups cost nothing extra.
    """
    opener = tokens[open_index]
    close = groups.close[open_index]
    size = close - open_index - 1  # tokens inside the group
    last = tokens[close - 1] if size else None
    weight = last if last is not None and last[0] == "WEIGHT" else None
    if opener[0] == "LSQB":
        if weight is not None:
            raise PromptSyntaxError(
                "prompt editing '[from:to:when]' is not supported (write the tags you want)",
                text=text,
                offset=opener[2],
            )
        pipe = groups.pipe.get(open_index)
        if pipe is not None:
            raise PromptSyntaxError(
                "alternation '[a|b]' is not supported",
                text=text,
                offset=tokens[pipe][2],
            )
        return SQUARE_MULTIPLIER
    if weight is not None:
        return float(weight[1].strip(": \t"))
    # `(a:)` and `(a:1.2.3)`: a colon before the closer that was meant as a weight.
    if last is not None and last[0] == "COLON":
        raise PromptSyntaxError("missing weight after ':'", text=text, offset=last[3])
    if (
        last is not None
        and size >= 2
        and tokens[close - 2][0] == "COLON"
        and last[0] == "TEXT"
        and (_NUMBERISH.match(last[1]))
    ):
        raise PromptSyntaxError(
            f"weight {last[1].strip()!r} is not a number",
            text=text,
            offset=last[2] + len(last[1]) - len(last[1].lstrip()),
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
    groups = _matching(tokens) if any(t[0] in _OPEN for t in tokens) else _Groups({}, {})
    pairs = groups.close
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
            weight *= _group_multiplier(text, tokens, index, groups)
            if not math.isfinite(weight):
                raise PromptSyntaxError(
                    "emphasis weight out of range (too many brackets, or too big a weight)",
                    text=text,
                    offset=token[2],
                )
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
        WrongTypeError: ``text`` is not a ``str`` (a ``TypeError``).
        PromptTooLongError: ``text`` is longer than :data:`MAX_PROMPT_CHARS`.
        PromptSyntaxError: the text is not a valid prompt.
    """
    check_text(text)
    return _assemble(text, tokenize(text, use_grammar=use_grammar))


def check_text(text: object) -> None:
    """Raise unless ``text`` is a str of at most :data:`MAX_PROMPT_CHARS` characters."""
    if not isinstance(text, str):
        raise WrongTypeError(f"prompt must be a str, got {type(text).__name__}")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptTooLongError(text=text, limit=MAX_PROMPT_CHARS)
