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

__all__ = ["VERSION_KEY", "Infotext", "format_number", "is_key", "join", "quote", "split"]

#: Infotext key for :attr:`GenerationParameters.version` (A1111 ignores keys it does not know).
VERSION_KEY: Final = "Animagine version"

NEGATIVE_PREFIX: Final = "Negative prompt:"
# One `key: value` of an A1111 parameters line, as A1111's own reader (`re_param` in
# modules/infotext_utils.py) finds them: a JSON-quoted value, or anything up to the next comma.
# One addition: an unquoted `{...}` JSON object, which Civitai-style `Hashes: {"model": ...}`
# values are written as and which would otherwise be cut at their first comma.
_PARAM: Final = re.compile(
    r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}(?=\s*(?:,|$))|[^,]*)(?:,|$)'
)
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


def split(text: str) -> Infotext:
    """Take an infotext apart.

    The last line is the parameters line (it needs 3 ``key: value`` pairs at least); the lines
    before it are the prompt up to a line starting ``Negative prompt:``, and the negative prompt
    after it.

    Raises:
        MetadataError: the last line is not a parameters line.
    """
    lines = text.rstrip().split("\n")
    pairs = _PARAM.findall(lines[-1])
    if len(pairs) < _MIN_PAIRS:
        raise MetadataError(
            "no A1111 parameters line: the last line must hold 'key: value' pairs such as"
            f" 'Steps: 28, Sampler: Euler a, ...', got {lines[-1][:80]!r}"
        )
    prompt_lines: list[str] = []
    negative_lines: list[str] | None = None
    for line in lines[:-1]:
        if negative_lines is not None:
            negative_lines.append(line)
        elif line.startswith(NEGATIVE_PREFIX):
            rest = line[len(NEGATIVE_PREFIX) :]
            negative_lines = [rest[1:] if rest.startswith(" ") else rest]
        else:
            prompt_lines.append(line)
    values = {key.strip(): unquote(raw) for key, raw in pairs}
    return Infotext(
        "\n".join(prompt_lines),
        "" if negative_lines is None else "\n".join(negative_lines),
        values,
    )


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
