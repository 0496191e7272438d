"""Hypothesis strategies built from the prompt grammar's alphabet, shared by the tests.

* :func:`prompt_texts`: prompt text, mostly valid: structured prompts (Danbooru-like names,
  many of them plain text, as most items of a real prompt are, others with emphasis, weights,
  qualifiers, groups of several tags, ``BREAK``) mixed with raw soup of the grammar's alphabet
  (brackets, escapes, ``:``, ``<``, ``>``, ``|``, ``_``, ``\\``, commas, line breaks including
  ``\\r``, the keywords ``AND``/``BREAK`` inside and outside words, numbers up to overflow,
  non-ASCII letters and spaces).
* :func:`tags`: any :class:`~animagine.Tag` the constructor accepts, plain or with ``parts``,
  with names drawn from the same alphabet.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from animagine import Tag
from animagine.errors import InvalidArgumentError

__all__ = ["ATOMS", "prompt_texts", "tag_names", "tags", "weights"]

#: The grammar's alphabet: every terminal's characters and the words and numbers that make or
#: break its rules.
ATOMS: tuple[str, ...] = (
    # brackets and escapes
    "(", ")", "[", "]", "\\", "\\(", "\\)", "\\[", "\\]", "\\\\", "\\:", "\\a",
    # weights and colons
    ":", ":1.2", ": 0.5 ", ":-1", ":+2", ":.5", ":1.", ":1.2.3", ":.", ":1e400",
    ":" + "9" * 309, ":3", ":d", "1", "0", "9" * 309,
    # extra networks, pipes, underscores
    "<", ">", "<lora:x:0.8>", "<a:", "<a\\:b>", "<_-x", "|", "_", "__",
    # separators and whitespace
    ",", ", ", "\n", "\r", "\r\n", " ", "  ", "\t", "\xa0", "\u3000", "\u2028", "\x0b",
    # keywords alone and inside words
    "AND", "BREAK", " AND ", " BREAK ", "_AND_", "_BREAK", "ANDROID", "BREAKING", "xAND",
    "A", "B", "AN", "BREA",
    # letters, Danbooru words, emoticons, non-ASCII
    "a", "b", "x", "smile", "1girl", "hair", "o_o", "^_^", ">_<", "é", "ß", "ドレス", "🙂",
)  # fmt: skip

_NAME_WORDS = (
    "1girl", "smile", "long hair", "blue_eyes", "looking at viewer", "hatsune miku",
    "rating: general", "re:zero", "honkai: star rail", "^_^", ">_<", "o_o", ":3", ":d",
    "x_AND_y", "BREAKING news", "año", "ドレス", "a|b", "<3", ">_o", "1st costume",
)  # fmt: skip


def _danbooru_name() -> st.SearchStrategy[str]:
    word = st.sampled_from(_NAME_WORDS)
    # Most names have no qualifier, as in real prompts, so that many items are plain text.
    qualifier = st.sampled_from(
        ["", "", "", "", " (series)", " \\(1st costume\\)", " (honkai: star rail)"]
    )
    return st.tuples(word, qualifier).map("".join)


def _weight_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["1.2", "0.5", "1", "2", "-0.5", "0", "1.2345", ".5", "1.", "9" * 309]),
        st.decimals(min_value=-10, max_value=10, places=3).map(str),
    )


@st.composite
def _structured(draw: st.DrawFn) -> str:
    """A prompt as people write them: tags, emphasis, weights, qualifiers, BREAK."""

    def item(depth: int) -> str:
        text = draw(_danbooru_name())
        kind = draw(st.integers(0, 9 if depth < 3 else 4))
        if kind <= 4:
            return text
        inner = item(depth + 1)
        if kind == 5:
            return f"({inner})"
        if kind == 6:
            return f"[{inner}]"
        if kind == 7:
            return f"({inner}:{draw(_weight_text())})"
        if kind == 8:
            return f"{text} ({inner}) {draw(_danbooru_name())}"
        return f"({inner}, {item(depth + 1)}:{draw(_weight_text())})"

    count = draw(st.integers(0, 8))
    separators = st.sampled_from([", ", ",", "\n", " BREAK ", ", BREAK, ", ",\r\n", " , "])
    out = [item(0)] if count else []
    for _ in range(count - 1):
        out.append(draw(separators))
        out.append(item(0))
    return "".join(out)


def _soup() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(ATOMS), max_size=24).map("".join)


def prompt_texts() -> st.SearchStrategy[str]:
    """Prompt text from the grammar's alphabet: structured prompts, soup, and the two mixed."""
    return st.one_of(
        _structured(),
        _soup(),
        st.tuples(_structured(), _soup(), _structured()).map("".join),
        st.text(st.sampled_from("ab(),:[]\\|<>_ \nAB"), max_size=16),
    )


def tag_names() -> st.SearchStrategy[str]:
    """Candidate tag names: soup, Danbooru-like names and arbitrary text."""
    return st.one_of(
        _soup(),
        _danbooru_name(),
        st.text(max_size=12),
        st.lists(st.sampled_from([*ATOMS, *_NAME_WORDS]), min_size=1, max_size=6).map(" ".join),
    )


def weights() -> st.SearchStrategy[float]:
    """Finite weights: the usual ones, any float in a wide range, and huge ones."""
    return st.one_of(
        st.sampled_from([1.0, 1.1, 1 / 1.1, 1.21, 0.0, -0.0, -0.5, 2.0, 1.2345678]),
        st.floats(-100, 100),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def _try(make: Callable[[], Tag]) -> Tag | None:
    try:
        return make()
    except InvalidArgumentError:
        return None


@st.composite
def _tag(draw: st.DrawFn) -> Tag | None:
    if draw(st.booleans()):
        name, weight = draw(tag_names()), draw(weights())
        return _try(lambda: Tag(name, weight))
    pieces = draw(st.lists(st.tuples(tag_names(), weights()), min_size=1, max_size=4))
    return _try(lambda: Tag.from_parts(pieces))


def tags() -> st.SearchStrategy[Tag]:
    """Any tag the constructor accepts: plain (name, weight) or built from weighted parts."""
    return _tag().filter(lambda tag: tag is not None)  # type: ignore[return-value]
