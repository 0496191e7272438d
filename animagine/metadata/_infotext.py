"""A1111's ``parameters`` text, the "infotext" WebUI, Civitai, sd-parsers and most viewers read::

    {prompt}
    Negative prompt: {negative prompt}
    Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 123, Size: 832x1216, Model: ..., ...

Only the text format lives here: splitting a text into its prompt, negative prompt and
``key: value`` pairs (:func:`split`), writing them back (:func:`join`), and how values are
quoted. What each key means is the records' business (``_records.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final, NamedTuple

from animagine.errors import MetadataError

__all__ = [
    "VERSION_KEY",
    "Infotext",
    "format_number",
    "is_key",
    "join",
    "pairs",
    "quote",
    "repair_latin1",
    "split",
]

#: Infotext key for :attr:`GenerationParameters.version` (A1111 ignores keys it does not know).
VERSION_KEY: Final = "Animagine version"

NEGATIVE_PREFIX: Final = "Negative prompt:"
# One `key: value` of an A1111 parameters line, as A1111's own reader (`re_param` in
# modules/infotext_utils.py) finds them: a key, then a JSON-quoted value or anything up to the
# next comma. One addition: an unquoted `{...}` JSON object, which Civitai-style
# `Hashes: {"model": ...}` values are written as and which would otherwise be cut at their first
# comma. A1111's single expression backtracks quadratically on a long line without `:` (each
# start position rescans the words after it), so the key is found by `pairs` instead, scanning
# back from each `:`; `_VALUE` is the rest of A1111's expression and matches in linear time.
_VALUE: Final = re.compile(r'\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}(?=\s*(?:,|$))|[^,]*)(?:,|$)')
_KEY_RUN: Final = re.compile(r"[\w \-/]*")
_WORD_CHAR: Final = re.compile(r"\w")
# A key we can write so that the reader above finds it again: two characters at least, no
# trailing space (readers strip it).
_KEY: Final = re.compile(r"\w[\w \-/]*[\w\-/]")
# The parameters line needs this many pairs to count as one.
_MIN_PAIRS: Final = 3


class Infotext(NamedTuple):
    """An infotext taken apart: the two prompts and the values of the parameters line.

    ``values`` keeps the line's order, unquoted; a key written twice keeps its last value.
    """

    prompt: str
    negative_prompt: str
    values: dict[str, str]


def is_key(key: str) -> bool:
    """Whether ``key`` can be written as an infotext key and read back as the same key."""
    return _KEY.fullmatch(key) is not None


def split(text: str, *, strict: bool = True) -> Infotext:
    """Take an infotext apart.

    The last line is the parameters line (it needs 3 ``key: value`` pairs at least); the lines
    before it are the prompt up to a line starting ``Negative prompt:``, and the negative prompt
    after it. Without ``strict``, a text whose last line is no parameters line is all prompt
    and negative prompt, with no values (as A1111's own reader takes it).

    Raises:
        MetadataError: with ``strict``, the last line is not a parameters line.
    """
    lines = text.rstrip().split("\n")
    found = pairs(lines[-1])
    body = lines[:-1]
    if len(found) < _MIN_PAIRS:
        if strict:
            raise MetadataError(
                "no A1111 parameters line: the last line must hold 'key: value' pairs such as"
                f" 'Steps: 28, Sampler: Euler a, ...', got {lines[-1][:80]!r}"
            )
        found, body = [], lines
    prompt_lines: list[str] = []
    negative_lines: list[str] | None = None
    for line in body:
        if negative_lines is not None:
            negative_lines.append(line)
        elif line.startswith(NEGATIVE_PREFIX):
            rest = line[len(NEGATIVE_PREFIX) :]
            negative_lines = [rest[1:] if rest.startswith(" ") else rest]
        else:
            prompt_lines.append(line)
    values = {key: unquote(raw) for key, raw in found}
    return Infotext(
        "\n".join(prompt_lines),
        "" if negative_lines is None else "\n".join(negative_lines),
        values,
    )


def pairs(line: str) -> list[tuple[str, str]]:
    """The ``key: value`` pairs of a parameters line, as A1111's reader finds them, in order.

    Keys are stripped; a quoted value is returned with its quotes (see :func:`unquote`), any
    other value without the white space around it. Linear in the length of ``line``: a key is
    the run of key characters (letters, digits, ``_``, `` ``, ``-``, ``/``) before a ``:``,
    from its first letter or digit, two characters at least.
    """
    result: list[tuple[str, str]] = []
    position, size = 0, len(line)
    while position < size:
        colon = line.find(":", position)
        if colon < 0:
            break
        # The run of key characters before the colon, read backwards (segments between one
        # search position and the next colon never overlap: linear overall).
        run = _KEY_RUN.match(line[colon - 1 : position - 1 if position else None : -1])
        start = colon - (run.end() if run else 0)
        word = _WORD_CHAR.search(line, start, colon)
        start = colon if word is None else word.start()
        if colon - start < 2:
            position = colon + 1
            continue
        value = _VALUE.match(line, colon + 1)
        assert value is not None  # `[^,]*` always matches
        raw = value.group(1)
        result.append((line[start:colon].strip(), raw if raw.startswith('"') else raw.strip()))
        position = max(value.end(), colon + 1)
    return result


def repair_latin1(text: str) -> str:
    """``text`` read as UTF-8 when it is UTF-8 bytes decoded as Latin-1, else ``text``.

    PNG ``tEXt`` chunks are Latin-1 by the standard, but many tools write UTF-8 bytes into
    them; Pillow then hands back mojibake (``åˆéŸ³`` for ``初音``). Readers such as A1111's
    decode such chunks as UTF-8 when the bytes are valid UTF-8, and so does this.
    """
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def join(prompt: str, negative_prompt: str, pairs: Iterable[tuple[str, str]]) -> str:
    """The infotext of two prompts and the parameters line's pairs (values quoted as needed).

    An empty negative prompt writes no ``Negative prompt:`` line.
    """
    text = prompt
    if negative_prompt:
        text += f"\n{NEGATIVE_PREFIX} {negative_prompt}"
    return text + "\n" + ", ".join(f"{key}: {quote(value)}" for key, value in pairs)


def format_number(value: float) -> str:
    """``5.0`` as ``5``, ``4.5`` as ``4.5``: A1111's look, and exact (shortest repr)."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _is_bare_json_object(value: str) -> bool:
    inner = value[1:-1]
    if not (value.startswith("{") and value.endswith("}")) or any(c in inner for c in "{}\n\r"):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def quote(value: str) -> str:
    """A1111's quoting: JSON-quote a value holding ``,``, ``:`` or a newline.

    Also quoted, so that they read back unchanged: values starting with ``"``, with leading or
    trailing white space, or with control characters. A ``{...}`` JSON object is written bare,
    as Civitai writes ``Hashes``.
    """
    if _is_bare_json_object(value):
        return value
    if (
        any(char in value for char in ",:\n")
        or value.startswith('"')
        or value != value.strip()
        or any(ord(char) < 32 for char in value)
    ):
        return json.dumps(value, ensure_ascii=False)
    return value


def unquote(value: str) -> str:
    """The value :func:`quote` wrote: a JSON string is decoded, anything else kept as it is."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            result = json.loads(value)
        except ValueError:
            return value
        if isinstance(result, str):
            return result
    return value
