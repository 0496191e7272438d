"""`Tag`: one Danbooru tag with an A1111 weight, and the name rules shared by every module."""

from __future__ import annotations

import math
import re
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
_SPACES: Final = re.compile(r"\s+")
_ESCAPE: Final = re.compile(r"([\\()\[\]])")

BREAK_NAME: Final = "BREAK"


def normalize_name(name: str) -> str:
    """Return the plain Danbooru name: underscores to spaces (not in emoticons), spaces collapsed.

    Case is kept: ``BREAK`` is a keyword and users' capitalisation is theirs.
    """
    name = name.strip()
    if "_" in name and name not in _KAOMOJI and _WORDISH.search(name):
        name = name.replace("_", " ").strip()
    if "  " in name or "\t" in name:
        name = _SPACES.sub(" ", name)
    return name


def lookup_key(name: str) -> str:
    """The key tag tables are indexed by: the normalised name in lower case."""
    return normalize_name(name).lower()


_ESCAPED: dict[str, str] = {}


def escape_name(name: str) -> str:
    """Escape the characters A1111-style parsers treat as syntax: ``\\ ( ) [ ]``."""
    escaped = _ESCAPED.get(name)
    if escaped is None:
        escaped = _ESCAPE.sub(r"\\\1", name)
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


def _check_name(instance: Tag, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise InvalidArgumentError("Tag name must not be empty")
    for bad in (",", "\n", "\r"):
        if bad in value:
            raise InvalidArgumentError(f"Tag name must not contain {bad!r}: {value!r}")


def _check_weight(instance: Tag, attribute: attrs.Attribute[float], value: float) -> None:
    if instance.name == BREAK_NAME and value != 1.0:
        raise InvalidArgumentError(f"BREAK cannot carry a weight, got {value!r}")


@attrs.frozen(order=False, repr=False)
class Tag:
    """One Danbooru tag and its A1111 emphasis weight.

    ``name`` is the plain Danbooru name, unescaped and with spaces
    (``Tag("hoshimachi_suisei_(1st_costume)").name == "hoshimachi suisei (1st costume)"``);
    emoticon tags such as ``^_^`` keep their underscores. ``str(tag)`` renders the tag for a
    prompt: parentheses escaped, and the weight in A1111 syntax when it is not 1::

        >>> str(Tag("firefly (honkai: star rail)", 1.2))
        '(firefly \\\\(honkai: star rail\\\\):1.2)'

    The tag named ``BREAK`` (see :data:`animagine.BREAK`) is A1111's chunk separator.

    Raises:
        WrongTypeError: ``name`` is not a str, or ``weight`` not a number (a ``TypeError``).
        InvalidArgumentError: an empty name, one with a comma or a line break, a weight that is
            not finite, or a weight on ``BREAK`` (a ``ValueError``).
    """

    name: str = attrs.field(converter=_to_name, validator=_check_name)
    weight: float = attrs.field(default=1.0, converter=_to_weight, validator=_check_weight)

    @property
    def is_break(self) -> bool:
        """Whether this is the ``BREAK`` keyword rather than a tag."""
        return self.name == BREAK_NAME

    @property
    def key(self) -> str:
        """The name as vocabularies and databases look it up (lower case)."""
        return self.name.lower()

    def __str__(self) -> str:
        if self.name == BREAK_NAME:
            return BREAK_NAME
        text = escape_name(self.name)
        if self.weight == 1.0:
            return text
        return f"({text}:{format_weight(self.weight)})"

    def __repr__(self) -> str:
        if self.weight == 1.0:
            return f"Tag({self.name!r})"
        return f"Tag({self.name!r}, weight={format_weight(self.weight)})"

    @classmethod
    def _trusted(cls, name: str, weight: float = 1.0) -> Tag:
        """Build a tag from an already-normalised name and weight, skipping validation.

        The parser uses this on its own output; everything else goes through ``Tag(...)``.
        """
        tag = object.__new__(cls)
        object.__setattr__(tag, "name", name)
        object.__setattr__(tag, "weight", weight)
        return tag


#: A1111's ``BREAK``: ends the current 75-token chunk. Place it among a prompt's tags.
BREAK: Final = Tag(BREAK_NAME)
