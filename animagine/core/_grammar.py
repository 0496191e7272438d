"""Reading prompt text into weighted tags, and writing tags back as prompt text.

``grammar/prompt.lark`` defines the syntax. Two readers give the same tokens to
:func:`_assemble`, which turns them into :class:`ParsedTag` items: one tag per comma-separated
item, with A1111 emphasis, escapes joined, and ``name (qualifier)`` written without backslashes
read as the Danbooru name.

* The Lark LALR parser built from the grammar file, loaded once and lazily. It decides what is
  valid, and every syntax error is named after the token its rules reject (see
  :func:`_syntax_error`). ``parse_tags(text, use_grammar=True)`` reads with it alone.
* The fast reader, :func:`_read_fast`, tried first. It cuts the text at its commas. A piece
  outside brackets that the grammar's TEXT terminal matches whole (``long hair``: most of a
  real prompt) is one TEXT token and becomes its tag directly. Other pieces are lexed in place
  by one regular expression built from the same terminal patterns (:data:`TERMINALS`), together
  with the pieces after them until their brackets close, and :func:`_accepts` checks the
  grammar's rules on those tokens (brackets pair up; a weight only last in ``(...)``; no ``|``
  or weight directly in ``[...]``; no ``AND`` or extra-network tag). Anything those rules
  reject, and anything that does not lex, goes to Lark, so syntax errors come from the
  grammar. What a piece outside brackets reads as depends on its text alone, so short pieces'
  results are remembered (a bounded memo) and a piece seen before costs one look-up.

Errors found after the syntax is accepted (a weight that is not a number, or one that
overflows) come from :func:`_assemble` on either path, at the same place.

``tests/test_grammar.py`` checks with Hypothesis, over strategies built from the grammar's
alphabet (``tests/strategies.py``): that :data:`TERMINALS` are the grammar file's patterns; that
the fast reader and the grammar path give the same tags, offsets and qualifiers, or the same
error type, message and offset, read once and read again (pieces remembered), and that the
strategies reach plain pieces, other pieces and groups across commas in the same text; that,
to the grammar's own lexer, a piece between commas gives the same tokens on its own as in its
text, and a piece the TEXT terminal matches whole is that one token; and that
:func:`render_tags` writes text that reads back as the same tags.

Reading is linear in the length of the text, nesting depth included: the fast reader cuts the
text once and lexes each piece at most once, Lark (when it decides) reads the text once,
brackets are paired in one pass, and a group looks only at its opener, its first tokens and its
last one (a test times texts of 12,500 and 50,000 characters of several shapes).
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


# -- assembling tags ----------------------------------------------------------------------------

_TAG_CACHE: dict[tuple[str, float], Tag] = {}
_TAG_CACHE_LIMIT: Final = 65536


def _new_tag(raw: str, weight: float) -> Tag | None:
    """The tag of ``raw`` text (unescaped) read at ``weight``, or None when it is blank."""
    name = normalize_name(raw)
    if not name:
        return None
    return BREAK if name == BREAK_NAME else Tag._trusted(name, round(weight, 4))


def _make_tag(raw: str, weight: float) -> Tag | None:
    """:func:`_new_tag`, remembered."""
    key = (raw, weight)
    tag = _TAG_CACHE.get(key)
    if tag is None:
        tag = _new_tag(raw, weight)
        if tag is None:
            return None
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


def _assemble(
    text: str,
    tokens: Sequence[Token],
    pairs: dict[int, int],
    items: list[ParsedTag] | None = None,
) -> list[ParsedTag]:
    """The tags of ``tokens``, an accepted token stream (``pairs``: its brackets).

    They are appended to ``items`` when it is given, and ``items`` is returned.
    """
    if items is None:
        items = []
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


# -- the fast reader ----------------------------------------------------------------------------

#: The grammar's TEXT terminal. A comma-separated piece it matches whole is one TEXT token to the
#: lexer: every other terminal starts with a character or keyword TEXT stops before.
_TEXT: Final = re.compile(dict(TERMINALS)["TEXT"])


#: What a piece read on its own gave, by its text: ``(tag, start, end, qualifier)`` with offsets
#: within the piece. A piece that stands alone (outside brackets, its own brackets closed) reads
#: the same wherever it stands. Pieces of at most :data:`_PIECE_CHARS` characters are kept (a tag
#: is far shorter), and the memo starts again empty past :data:`_PIECES_LIMIT` of them: a few
#: megabytes at most.
_Known = tuple[tuple[Tag, int, int, "tuple[int, int] | None"], ...]
_PIECES: dict[str, _Known] = {}
_PIECES_LIMIT: Final = 16384
_PIECE_CHARS: Final = 128


def _read_fast(text: str) -> list[ParsedTag]:
    """Read ``text`` as :func:`_assemble` reads the grammar's tokens, or raise :class:`_Defer`.

    The text is cut at its commas. A piece outside brackets that the TEXT terminal matches whole
    (most of a real prompt: ``long hair``) is one TEXT token, read here as :func:`_assemble` reads
    one. Any other piece is lexed in place by the fast lexer, and so are the pieces after it
    until its brackets are closed; each such group, whose tokens are the whole text's tokens
    (only an ``EXTRA`` token can hold a comma, and a piece cut inside one does not lex), is
    checked by :func:`_accepts` and read by :func:`_assemble`. A comma outside brackets ends
    every tag, so reading group by group is reading the whole. A piece that is a group of its
    own reads the same wherever it stands, so what it gave is remembered (:data:`_PIECES`).

    An error :func:`_assemble` raises (a weight that is not a number or overflows) is raised
    once the rest of the text is accepted, as it is after the grammar has read the whole text.
    """
    items: list[ParsedTag] = []
    append = items.append
    new = tuple.__new__
    memo = _PIECES
    # Not fullmatch: on a miss, its nested repeats try every split of the text (exponential).
    text_at = _TEXT.match
    lex = _FAST_LEXER.finditer
    group: list[Token] = []  # the tokens of the pieces read since brackets opened
    depth = 0  # openers minus closers in ``group``
    group_start = 0  # where the group's first piece starts
    error: PromptSyntaxError | None = None  # the first error _assemble raised
    start = 0
    for piece in text.split(","):
        end = start + len(piece)
        if depth:
            group.append(("COMMA", ",", start - 1, start))
        else:
            known = memo.get(piece)
            if known is None:
                found = text_at(piece)
                if found is not None and found.end() == len(piece):
                    known = _plain(piece)
                elif piece:
                    group_start = start
                else:
                    known = ()
            if known is not None:
                for tag, first, last, where in known:
                    qualifier = None if where is None else (start + where[0], start + where[1])
                    append(new(ParsedTag, (tag, start + first, start + last, qualifier)))
                start = end + 1
                continue
        position = start
        for match in lex(text, start, end):
            begin, stop = match.span()
            if begin != position:
                raise _Defer
            position = stop
            kind = match.lastgroup or ""
            if kind == "LPAR" or kind == "LSQB":  # noqa: PLR1714 (hot loop)
                depth += 1
            elif kind == "RPAR" or kind == "RSQB":  # noqa: PLR1714
                depth -= 1
            group.append((kind, text[begin:stop], begin, stop))
        if position != end:
            raise _Defer
        if depth <= 0:
            pairs = _accepts(group)
            if error is None:
                count = len(items)
                try:
                    _assemble(text, group, pairs, items)
                except PromptSyntaxError as found_error:
                    error = found_error
                else:
                    if group_start == start:
                        _remember(piece, start, items[count:])
            group = []
            depth = 0
        start = end + 1
    if depth:
        raise _Defer
    if error is not None:
        raise error
    return items


def _plain(piece: str) -> _Known:
    """What :func:`_assemble` reads in a piece that is one TEXT token (remembered)."""
    short = len(piece) <= _PIECE_CHARS
    # A remembered piece remembers its tag: it needs no other memo.
    make = _new_tag if short else _make_tag
    tag = None if piece.isspace() else make(piece, 1.0)
    if tag is None:
        known: _Known = ()
    else:
        known = ((tag, len(piece) - len(piece.lstrip()), len(piece.rstrip()), None),)
    if short:
        if len(_PIECES) >= _PIECES_LIMIT:
            _PIECES.clear()
        _PIECES[piece] = known
    return known


def _remember(piece: str, start: int, items: list[ParsedTag]) -> None:
    """Remember what ``piece``, read at ``start`` on its own, gave."""
    if len(piece) > _PIECE_CHARS:
        return
    if len(_PIECES) >= _PIECES_LIMIT:
        _PIECES.clear()
    _PIECES[piece] = tuple(
        (tag, first - start, last - start, None if q is None else (q[0] - start, q[1] - start))
        for tag, first, last, q in items
    )


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
    if not use_grammar:
        try:
            return _read_fast(text)
        except _Defer:
            pass  # the grammar decides, and names the error
    tokens = _lark_tokens(text)
    return _assemble(text, tokens, _matching(tokens))


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
