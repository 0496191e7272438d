"""`Tag`: one Danbooru tag with an A1111 weight, and the name rules shared by every module."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Final

import attrs

from animagine.errors import InvalidArgumentError, WrongTypeError

__all__ = ["BREAK", "Tag", "format_weight", "lookup_key", "normalize_name"]

# Emoticon tags keep their underscores: in them `_` is a mouth, not a space. The list is
# Danbooru's kaomoji tags as taggers and tag databases spell them.
_KAOMOJI: Final = frozenset(
    {
        "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3",
        "6_9", ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||", "^_^;", "-_-",
        ";_;", "t_t", "o_0", "0_o", "._.;", "-_-;", "=_=;", "u_u;", "x_x;",
    }
)  # fmt: skip
# A name with no run of two letters (`o_o`, `^_^`) is an emoticon too.
_WORDISH: Final = re.compile(r"[^\W\d_]{2}")
# Runs of whitespace other than line breaks (a name never holds a line break).
_SPACES: Final = re.compile(r"[^\S\r\n]+")
# Each syntax character to itself behind a backslash (``str.translate``: one pass, in C).
_ESCAPE: Final = str.maketrans({char: f"\\{char}" for char in "\\()[]"})
# What the reader would take for syntax inside rendered tag text: the keywords standing alone,
# and the opener of an extra-network tag (`<lora:`), whose colon is escaped.
_KEYWORD: Final = re.compile(r"\b(?:AND|BREAK)\b")
_EXTRA_OPENER: Final = re.compile(r"(<[A-Za-z_][\w-]*):")
# Text ending so that the colon of a weight after it would open an extra-network tag.
_OPENER_AT_END: Final = re.compile(r"<[A-Za-z_][\w-]*\Z")

BREAK_NAME: Final = "BREAK"


def _converts_underscores(name: str) -> bool:
    """Whether underscores in ``name`` (stripped) stand for spaces."""
    return "_" in name and name not in _KAOMOJI and _WORDISH.search(name) is not None


def normalize_name(name: str) -> str:
    """Return the plain Danbooru name: underscores to spaces (not in emoticons), spaces collapsed.

    Case is kept: ``BREAK`` is a keyword and users' capitalisation is theirs. Every run of
    whitespace other than a line break becomes one space.
    """
    name = name.strip()
    if _converts_underscores(name):
        name = name.replace("_", " ").strip()
    if "  " in name or not name.isprintable():
        name = _SPACES.sub(" ", name)
    return name


def lookup_key(name: str) -> str:
    """The key tag tables are indexed by: the normalised name in lower case."""
    return normalize_name(name).lower()


_ESCAPED: dict[str, str] = {}


def escape_name(name: str) -> str:
    """Escape the characters A1111-style parsers treat as syntax: ``\\ ( ) [ ]``.

    The colon of an extra-network opener (``<lora:``) is escaped too, so that ``<a:b>`` in a
    name is not read as an extra-network tag.
    """
    escaped = _ESCAPED.get(name)
    if escaped is None:
        escaped = name.translate(_ESCAPE)
        if "<" in escaped:
            escaped = _EXTRA_OPENER.sub(r"\1\\:", escaped)
        if len(_ESCAPED) >= 65536:
            _ESCAPED.clear()
        _ESCAPED[name] = escaped
    return escaped


def format_weight(weight: float) -> str:
    """Shortest decimal for a weight rounded to 4 places: ``1.2``, ``0.9091``, ``2``."""
    text = f"{weight:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _to_weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WrongTypeError(f"Tag weight must be a number, got {type(value).__name__}: {value!r}")
    try:
        weight = float(value)
    except OverflowError:  # an int too big for a float
        weight = math.inf
    if not math.isfinite(weight):
        raise InvalidArgumentError(f"Tag weight must be finite, got {weight!r}")
    # Nested emphasis multiplies (1.1 * 1.1 = 1.2100000000000002); four places is far below
    # anything that changes an image and makes rendering round-trip exactly.
    return round(weight, 4)


def _to_name(value: Any) -> str:
    if not isinstance(value, str):
        raise WrongTypeError(f"Tag name must be a str, got {type(value).__name__}: {value!r}")
    return normalize_name(value)


Parts = tuple[tuple[str, float], ...]


def canonical_parts(raw: Iterable[tuple[str, float]]) -> Parts:
    """Normalise the text of weighted pieces of one tag as :func:`normalize_name` does the name.

    ``"".join`` of the result's texts is ``normalize_name`` of the joined input texts. A space
    between two pieces belongs to the piece before it, adjacent pieces of equal weight merge,
    and weights are rounded to 4 places. A1111 reads whitespace the same at any weight.
    """
    raw = [(text, round(weight, 4)) for text, weight in raw]
    underscores = _converts_underscores("".join(text for text, _ in raw).strip())
    texts: list[list[str]] = []
    weights: list[float] = []
    space = False
    for piece, weight in raw:
        for char in piece.replace("_", " ") if underscores else piece:
            if char.isspace() and char not in "\r\n":
                space = bool(texts)
                continue
            if space:
                texts[-1].append(" ")
                space = False
            if weights and weights[-1] == weight:
                texts[-1].append(char)
            else:
                texts.append([char])
                weights.append(weight)
    return tuple(("".join(chars), weight) for chars, weight in zip(texts, weights, strict=True))


def _unrenderable(name: str, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"Tag name {name!r} cannot be written in a prompt: {why}")


def _guard_keywords(texts: list[str], name: str) -> list[str]:
    """Keep ``AND``/``BREAK`` inside a name from reading as keywords.

    Each piece is rendered between brackets or separators, so a keyword is checked within its
    piece. A space next to it becomes ``_`` (read back as that space), or a ``_`` goes where
    the name already has a space or ends; a keyword touching other text of the name in another
    piece cannot be written.
    """
    last = len(texts) - 1
    for index in range(len(texts)):
        text = texts[index]
        while (match := _KEYWORD.search(text)) is not None:
            start, end = match.span()
            if start > 0 and text[start - 1] == " ":
                text = f"{text[: start - 1]}_{text[start:]}"
            elif end < len(text) and text[end] == " ":
                text = f"{text[:end]}_{text[end + 1 :]}"
            elif start == 0 and (index == 0 or texts[index - 1].endswith(" ")):
                text = f"_{text}"
            elif end == len(text) and index == last:
                text = f"{text}_"
            else:
                raise _unrenderable(name, f"{match.group()!r} would read as the keyword")
        texts[index] = text
    return texts


def _weighted(text: str, weight: float) -> str:
    """``(text:weight)`` for escaped ``text``.

    Text ending in ``<ident`` is cut after its ``<`` into two groups of the same weight, which
    read back (and weigh, in A1111) as one piece: ``(B<safe:1.2)`` would open ``<safe:``.
    """
    number = format_weight(weight)
    if "<" in text and (match := _OPENER_AT_END.search(text)) is not None:
        cut = match.start() + 1
        return f"({text[:cut]}:{number})({text[cut:]}:{number})"
    return f"({text}:{number})"


def _render(name: str, weight: float, parts: Parts) -> str:
    """The prompt text of a tag; raises :class:`InvalidArgumentError` when there is none."""
    if name == BREAK_NAME and not parts:
        return BREAK_NAME
    if not parts:
        (text,) = _guard_keywords([name], name) if "AND" in name or "BREAK" in name else [name]
        text = escape_name(text)
        return text if weight == 1.0 else _weighted(text, weight)
    texts = [text for text, _ in parts]
    if any("AND" in text or "BREAK" in text for text in texts):
        texts = _guard_keywords(texts, name)
    out: list[str] = []
    for text, (_, part_weight) in zip(texts, parts, strict=True):
        if part_weight == 1.0:
            out.append(escape_name(text))
        else:
            core = text.rstrip(" ")
            out.append(_weighted(escape_name(core), part_weight))
            if len(core) != len(text):
                out.append(" ")
    return "".join(out)


def _to_parts(value: Any) -> Parts:
    if isinstance(value, (str, bytes)):
        raise WrongTypeError(f"Tag parts must be (text, weight) pairs, got {value!r}")
    try:
        pairs = [(text, weight) for text, weight in value]
    except (TypeError, ValueError):
        raise WrongTypeError(f"Tag parts must be (text, weight) pairs, got {value!r}") from None
    for text, _ in pairs:
        if not isinstance(text, str):
            raise WrongTypeError(f"Tag part text must be a str, got {type(text).__name__}")
    return canonical_parts([(text, _to_weight(weight)) for text, weight in pairs])


def _check_name(instance: Tag, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise InvalidArgumentError("Tag name must not be empty")
    for bad in (",", "\n", "\r"):
        if bad in value:
            raise InvalidArgumentError(f"Tag name must not contain {bad!r}: {value!r}")


def _check_weight(instance: Tag, attribute: attrs.Attribute[float], value: float) -> None:
    if instance.name == BREAK_NAME and value != 1.0:
        raise InvalidArgumentError(f"BREAK cannot carry a weight, got {value!r}")


def _check_parts(instance: Tag, attribute: attrs.Attribute[Parts], value: Parts) -> None:
    if not value:
        return
    if len(value) < 2:
        raise InvalidArgumentError(
            "Tag parts must hold at least two weights; write Tag(name, weight) for one "
            "(Tag.from_parts does this for you)"
        )
    joined = "".join(text for text, _ in value)
    if joined != instance.name:
        raise InvalidArgumentError(
            f"Tag parts spell {joined!r}, not the name {instance.name!r} (use Tag.from_parts)"
        )
    if instance.weight != 1.0:
        raise InvalidArgumentError("a Tag with parts carries its weights in them, not in weight")
    if instance.name == BREAK_NAME:
        raise InvalidArgumentError("BREAK cannot carry a weight")


@attrs.frozen(order=False, repr=False)
class Tag:
    """One Danbooru tag and its A1111 emphasis weight.

    ``name`` is the plain Danbooru name, unescaped and with spaces
    (``Tag("hoshimachi_suisei_(1st_costume)").name == "hoshimachi suisei (1st costume)"``);
    emoticon tags such as ``^_^`` keep their underscores. ``str(tag)`` renders the tag for a
    prompt: parentheses escaped, and the weight in A1111 syntax when it is not 1::

        >>> str(Tag("firefly (honkai: star rail)", 1.2))
        '(firefly \\\\(honkai: star rail\\\\):1.2)'

    A tag written with emphasis on part of it (``an (important) word``: one comma-separated
    item, several weights) keeps those weights in ``parts``, pieces of the name with their
    weights; ``weight`` is then 1 and ``str`` writes each piece with its own weight::

        >>> tag = Tag.from_parts([("an ", 1), ("important", 1.1), (" word", 1)])
        >>> tag.name, str(tag)
        ('an important word', 'an (important:1.1) word')

    Whatever ``str(tag)`` writes reads back as the same tag. The tag named ``BREAK`` (see
    :data:`animagine.BREAK`) is A1111's chunk separator.

    Raises:
        WrongTypeError: ``name`` is not a str, or ``weight`` not a number (a ``TypeError``).
        InvalidArgumentError: an empty name, one with a comma or a line break, one that cannot be
            written in a prompt (the word ``AND`` or ``BREAK`` standing alone where no space
            can hide it, as in ``x(AND)``), a weight that is not finite, a weight on ``BREAK``,
            or ``parts`` that do not spell ``name`` (a ``ValueError``).
    """

    name: str = attrs.field(converter=_to_name, validator=_check_name)
    weight: float = attrs.field(default=1.0, converter=_to_weight, validator=_check_weight)
    parts: Parts = attrs.field(
        default=(), converter=_to_parts, validator=_check_parts, kw_only=True
    )
    _text: str = attrs.field(init=False, eq=False, repr=False, default="")

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_text", _render(self.name, self.weight, self.parts))

    @classmethod
    def from_parts(cls, parts: Iterable[tuple[str, float]]) -> Tag:
        """The tag spelt by ``(text, weight)`` pieces: plain when they share one weight."""
        canonical = _to_parts(parts)
        if not canonical:
            raise InvalidArgumentError("Tag name must not be empty")
        if len(canonical) == 1:
            return cls(canonical[0][0], canonical[0][1])
        name = "".join(text for text, _ in canonical)
        if name == BREAK_NAME:
            return cls(BREAK_NAME)
        return cls(name, parts=canonical)

    @property
    def is_break(self) -> bool:
        """Whether this is the ``BREAK`` keyword rather than a tag."""
        return self.name == BREAK_NAME

    @property
    def key(self) -> str:
        """The name as vocabularies and databases look it up (lower case)."""
        return self.name.lower()

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        if self.parts:
            parts = ", ".join(f"({text!r}, {format_weight(w)})" for text, w in self.parts)
            return f"Tag({self.name!r}, parts=({parts}))"
        if self.weight == 1.0:
            return f"Tag({self.name!r})"
        return f"Tag({self.name!r}, weight={format_weight(self.weight)})"

    @classmethod
    def _trusted(cls, name: str, weight: float = 1.0, parts: Parts = ()) -> Tag:
        """Build a tag from an already-normalised name, weight and parts, skipping validation.

        The parser uses this on its own output; everything else goes through ``Tag(...)``.
        Rendering still happens here, so a name that cannot be written raises.
        """
        tag = object.__new__(cls)
        object.__setattr__(tag, "name", name)
        object.__setattr__(tag, "weight", weight)
        object.__setattr__(tag, "parts", parts)
        object.__setattr__(tag, "_text", _render(name, weight, parts))
        return tag


#: A1111's ``BREAK``: ends the current 75-token chunk. Place it among a prompt's tags.
BREAK: Final = Tag(BREAK_NAME)
