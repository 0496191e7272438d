"""`lint`: what is wrong with a prompt for a model version, with positions and fixes.

Every code is documented in docs/lint.md; keep the two in step.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Final, Literal

import attrs

from animagine.core._classify import Classified, Slot, classify, convert_special
from animagine.core._grammar import check_text, parse_tags
from animagine.core._tag import Tag, escape_name, format_weight
from animagine.core._tagdb import TagDatabase, database_or_default
from animagine.core._vocab import ModelVersion, get_version
from animagine.errors import InvalidArgumentError, PromptSyntaxError, WrongTypeError

__all__ = ["CODES", "Diagnostic", "apply_fixes", "lint"]

Severity = Literal["error", "warning"]

#: Every diagnostic code and its severity.
CODES: Final[dict[str, Severity]] = {
    "syntax": "error",
    "rating-conflict": "error",
    "order": "warning",
    "wrong-version": "warning",
    "unescaped-parens": "warning",
    "duplicate": "warning",
    "suspicious-weight": "warning",
    "nsfw-risk": "warning",
    "year-conflict": "warning",
}

_SLOT_WORDS: Final[dict[Slot, str]] = {
    "subject": "subject tag",
    "character": "character",
    "series": "series",
    "rating": "rating",
    "general": "general tag",
    "year": "year tag",
    "quality": "quality tag",
    "break": "BREAK",
}


@attrs.frozen
class Diagnostic:
    """One finding of :func:`lint`.

    Attributes:
        code: What kind of problem (see :data:`CODES` and docs/lint.md).
        severity: ``"error"`` or ``"warning"``.
        message: A sentence for people.
        start: Character offset in the linted text where the problem starts.
        end: Offset just past it.
        fix: Replacement text for ``text[start:end]``, or None when there is no mechanical fix.
    """

    code: str
    severity: Severity
    message: str
    start: int
    end: int
    fix: str | None = None

    def position(self, text: str) -> tuple[int, int]:
        """1-based (line, column) of ``start`` in ``text``."""
        line = text.count("\n", 0, self.start) + 1
        column = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, column


def _diagnostic(
    code: str, message: str, start: int, end: int, fix: str | None = None
) -> Diagnostic:
    return Diagnostic(code, CODES[code], message, start, end, fix)


def _rank(version: ModelVersion, slot: Slot) -> int:
    if slot in ("subject", "character", "series"):
        return ("subject", "character", "series").index(slot)
    if slot == "rating" and version.rating_in_order:
        return 3
    return 4


def order_violations(text: str, found: Classified, version: ModelVersion) -> list[Diagnostic]:
    """Diagnostics that make strict parsing fail: order, wrong-version, rating-conflict."""
    out: list[Diagnostic] = []
    items = found.items
    positions = [i for i, slot in enumerate(found.slots) if slot != "break"]
    slots = found.slots
    # The quality block may sit at the end (4.0, 3.1), or the start (3.x).
    head = 0
    if version.quality_anywhere_at_ends:
        while head < len(positions) and slots[positions[head]] == "quality":
            head += 1
    tail = len(positions)
    while tail > head and slots[positions[tail - 1]] == "quality":
        tail -= 1
    where = "at the start or the end" if version.quality_anywhere_at_ends else "last"
    best = -1
    best_index = -1
    for index in positions[head:tail]:
        slot = slots[index]
        item = items[index]
        if slot == "quality":
            out.append(
                _diagnostic(
                    "order",
                    f"quality tag {item.tag.name!r} in the middle of the prompt; "
                    f"{version.title} expects the quality tags {where}",
                    item.start,
                    item.end,
                )
            )
            continue
        rank = _rank(version, slot)
        if rank < best:
            before = items[best_index]
            out.append(
                _diagnostic(
                    "order",
                    f"{_SLOT_WORDS[slot]} {item.tag.name!r} comes after "
                    f"{_SLOT_WORDS[slots[best_index]]} {before.tag.name!r}; {version.title} "
                    f"was trained on the order: {version.order_text}",
                    item.start,
                    item.end,
                )
            )
        elif rank > best:
            best, best_index = rank, index
    for index, other in found.foreign.items():
        item = items[index]
        fix = _foreign_fix(item.tag, other.slot, other.source, version)
        hint = f"; use {fix!r}" if fix is not None else f"; {version.title} has no equivalent"
        out.append(
            _diagnostic(
                "wrong-version",
                f"{item.tag.name!r} is an {other.source.title} {other.slot} tag{hint}",
                item.start,
                item.end,
                fix,
            )
        )
    rating = _rating_name(found) if found.conflicts else ""
    for index in found.conflicts:
        item = items[index]
        out.append(
            _diagnostic(
                "rating-conflict",
                f"second rating {item.tag.name!r} conflicts with {rating!r}; keep one",
                item.start,
                item.end,
            )
        )
    out.sort(key=lambda d: d.start)
    return out


class _Lines:
    """1-based (line, column) of offsets in one text; line starts are found once, on first use."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts: list[int] | None = None

    def position(self, offset: int) -> tuple[int, int]:
        starts = self._starts
        if starts is None:
            text = self._text
            starts = [0]
            found = text.find("\n")
            while found != -1:
                starts.append(found + 1)
                found = text.find("\n", found + 1)
            self._starts = starts
        line = bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1


def _rating_name(found: Classified) -> str:
    """The name of the prompt's rating (the one a second rating conflicts with or repeats)."""
    return next(found.items[i].tag.name for i, s in enumerate(found.slots) if s == "rating")


def _foreign_fix(tag: Tag, slot: Slot, source: ModelVersion, version: ModelVersion) -> str | None:
    converted = convert_special(tag, slot, source, version)
    if converted.name.lower() == tag.name.lower():
        return None
    return escape_name(converted.name)


def _removal_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span to delete to drop a bare tag with its separator, or None if it is bracketed."""
    left = start
    while left > 0 and text[left - 1] in " \t":
        left -= 1
    right = end
    while right < len(text) and text[right] in " \t":
        right += 1
    if left > 0 and text[left - 1] == ",":
        return left - 1, end
    if left == 0 and right < len(text) and text[right] == ",":
        right += 1
        while right < len(text) and text[right] in " \t":
            right += 1
        return start, right
    if (left == 0 or text[left - 1] == "\n") and (right == len(text) or text[right] == "\n"):
        return left, right
    return None


def lint(
    text: str,
    *,
    version: str | ModelVersion = "v4",
    database: TagDatabase | None = None,
) -> list[Diagnostic]:
    """Check prompt text for a model version.

    Returns diagnostics sorted by position. Codes: ``syntax``, ``order``, ``wrong-version``,
    ``unescaped-parens``, ``duplicate``, ``rating-conflict``, ``suspicious-weight``,
    ``nsfw-risk``, ``year-conflict`` (docs/lint.md explains each). A text that cannot be parsed
    gives one ``syntax`` diagnostic instead of raising.

    ``text`` may be at most :data:`~animagine.core.MAX_PROMPT_CHARS` (100,000) characters; lint
    takes time linear in its length.

    Raises:
        WrongTypeError: ``text`` is not a str, or ``database`` not a TagDatabase (a
            ``TypeError``).
        UnknownVersionError: unknown ``version``.
        PromptTooLongError: ``text`` is longer than :data:`~animagine.core.MAX_PROMPT_CHARS`
            (raised, not reported: a text that size is not a prompt to fix).
    """
    resolved = get_version(version)
    check_text(text)
    database = database_or_default(database)
    try:
        items = parse_tags(text)
    except PromptSyntaxError as error:
        return [_diagnostic("syntax", error.reason, error.offset, error.offset)]
    found = classify(items, resolved, database)
    out = order_violations(text, found, resolved)
    seen: dict[str, int] = {}
    seen_twice: set[str] = set()
    lines = _Lines(text)
    for index, item in enumerate(items):
        tag = item.tag
        if tag.is_break:
            continue
        if item.qualifier is not None:
            out.append(
                _diagnostic(
                    "unescaped-parens",
                    f"{text[item.start : item.end]!r}: unescaped brackets are read as emphasis by "
                    "A1111-style tools; escape them",
                    item.start,
                    item.end,
                    escape_name(tag.name),
                )
            )
        if not 0.0 <= tag.weight <= 2.0:
            out.append(
                _diagnostic(
                    "suspicious-weight",
                    f"weight {format_weight(tag.weight)} on {tag.name!r} is outside 0..2; if the "
                    "brackets are part of a tag name, escape them as \\( \\)",
                    item.start,
                    item.end,
                )
            )
        key = tag.name.lower()
        if key in seen:
            seen_twice.add(key)
            span = _removal_span(text, item.start, item.end) if tag.weight == 1.0 else None
            first = items[seen[key]]
            line, column = lines.position(first.start)
            out.append(
                _diagnostic(
                    "duplicate",
                    f"{tag.name!r} already appears at line {line}, column {column}",
                    span[0] if span else item.start,
                    span[1] if span else item.end,
                    "" if span else None,
                )
            )
        else:
            seen[key] = index
    rating = _rating_name(found) if found.duplicate_ratings else ""
    for index in found.duplicate_ratings:
        item = items[index]
        if item.tag.name.lower() in seen_twice:
            continue  # already reported as a plain duplicate
        out.append(
            _diagnostic(
                "duplicate",
                f"{item.tag.name!r} repeats the rating {rating!r}",
                item.start,
                item.end,
            )
        )
    for index in found.year_conflicts:
        item = items[index]
        out.append(
            _diagnostic(
                "year-conflict",
                f"second year tag {item.tag.name!r}; the model knows one period per image",
                item.start,
                item.end,
            )
        )
    if resolved.name == "v3" and "rating" not in found.slots:
        risky = [
            items[i]
            for i, slot in enumerate(found.slots)
            if slot == "quality" and items[i].tag.name.lower() in ("masterpiece", "best quality")
        ]
        if risky:
            out.append(
                _diagnostic(
                    "nsfw-risk",
                    f"{risky[0].tag.name!r} without a rating: the {resolved.title} card warns "
                    "these "
                    "tags pull toward NSFW; add 'rating: general' (and 'nsfw, rating: sensitive' "
                    "to the negative prompt)",
                    risky[0].start,
                    risky[0].end,
                )
            )
    out.sort(key=lambda d: (d.start, d.code))
    return out


def apply_fixes(text: str, diagnostics: Iterable[Diagnostic]) -> str:
    """Apply every diagnostic's ``fix`` to ``text``; a fix overlapping an earlier one is skipped.

    Raises:
        WrongTypeError: ``text`` is not a str, or ``diagnostics`` holds something other than
            :class:`Diagnostic` (a ``TypeError``).
        InvalidArgumentError: a diagnostic with a fix spans outside ``text`` (it was made for
            another text; a ``ValueError``).
    """
    if not isinstance(text, str):
        raise WrongTypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(diagnostics, (str, Diagnostic)):
        raise WrongTypeError(
            f"diagnostics must be an iterable of Diagnostic, got a {type(diagnostics).__name__}"
        )
    try:
        given = list(diagnostics)
    except TypeError:
        raise WrongTypeError(
            f"diagnostics must be an iterable of Diagnostic, got {type(diagnostics).__name__}"
        ) from None
    fixes: list[Diagnostic] = []
    for diagnostic in given:
        if not isinstance(diagnostic, Diagnostic):
            raise WrongTypeError(
                f"diagnostics must hold Diagnostic objects, got {type(diagnostic).__name__}"
            )
        if diagnostic.fix is None:
            continue
        if not (
            isinstance(diagnostic.start, int)
            and isinstance(diagnostic.end, int)
            and isinstance(diagnostic.fix, str)
            and 0 <= diagnostic.start <= diagnostic.end <= len(text)
        ):
            raise InvalidArgumentError(
                f"diagnostic {diagnostic.code!r} at {diagnostic.start!r}..{diagnostic.end!r} with"
                f" fix {diagnostic.fix!r} does not fit a text of {len(text)} characters; was it"
                " made for another text?"
            )
        fixes.append(diagnostic)
    result: list[str] = []
    cursor = 0
    for diagnostic in sorted(fixes, key=lambda d: (d.start, d.end)):
        if diagnostic.start < cursor:
            continue
        result.append(text[cursor : diagnostic.start])
        result.append(diagnostic.fix or "")
        cursor = diagnostic.end
    result.append(text[cursor:])
    return "".join(result)
