"""`lint`: what is wrong with a prompt for a model version, with positions and fixes.

Every code is documented in docs/lint.md; keep the two in step.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Iterable
from typing import Final, Literal

import attrs

from animagine.core._classify import Classified, classify, convert_special
from animagine.core._display import diagnostic_html, diagnostics_html
from animagine.core._grammar import ParsedTag, check_text, parse_tags
from animagine.core._order import ORDER_TERMINALS, OrderRules, order_rules, terminal_of
from animagine.core._tag import Tag, format_weight
from animagine.core._tagdb import DatabaseMemo, TagDatabase, database_or_default
from animagine.core._vocab import VERSIONS, ModelVersion, get_version
from animagine.errors import InvalidArgumentError, PromptSyntaxError, WrongTypeError

__all__ = ["CODES", "Diagnostic", "Diagnostics", "Edit", "apply_fixes", "lint"]

Severity = Literal["error", "warning", "info"]

#: Every diagnostic code and its severity.
CODES: Final[dict[str, Severity]] = {
    "syntax": "error",
    "rating-conflict": "error",
    "order": "warning",
    "wrong-version": "warning",
    "alias": "warning",
    "unescaped-parens": "warning",
    "probable-weight": "warning",
    "duplicate": "warning",
    "suspicious-weight": "warning",
    "nsfw-risk": "warning",
    "year-conflict": "warning",
    "unknown-tag": "info",
}

_SLOT_WORDS: Final[dict[str, tuple[str, str]]] = {
    "SUBJECT": ("subject tag", "subject tags"),
    "FOCUS": ("focus tag", "subject tags"),
    "CHARACTER": ("character", "characters"),
    "SERIES": ("series", "series"),
    "RATING": ("rating", "the rating"),
    "GENERAL": ("general tag", "general tags"),
    "YEAR": ("year tag", "general tags"),
    "QUALITY": ("quality tag", "quality tags"),
}
# A text after a colon that was probably meant as a weight: digits with a typo (`l.2`, `1,2`).
_NUMBERLIKE: Final = re.compile(r"\s*[\d.,lIoO]*\d[\d.,lIoO]*\s*")


# Tags some version's vocabulary knows (quality, rating, companion, period tags): never unknown.
_SPECIAL_ANYWHERE: Final = frozenset(
    key
    for version in VERSIONS
    for key in (
        *version.special_tags,
        *(companion for rating in version.ratings for companion in rating.companions),
    )
)


@attrs.frozen
class Edit:
    """One change to a text: replace ``text[start:end]`` with ``replacement``."""

    start: int
    end: int
    replacement: str


@attrs.frozen
class Diagnostic:
    """One finding of :func:`lint`.

    Attributes:
        code: What kind of problem (see :data:`CODES` and docs/lint.md).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        message: A short sentence for people.
        start: Character offset in the linted text of the offending tag or bracket.
        end: Offset just past it: the span is at least one character wide, except for a
            ``syntax`` error at the very end of the text.
        fix: The edits that repair it, applied together by :func:`apply_fixes`; empty when there
            is no mechanical fix. A fix may touch more than the span (removing a duplicate
            removes its comma too).
    """

    code: str
    severity: Severity
    message: str
    start: int
    end: int
    fix: tuple[Edit, ...] = ()

    def position(self, text: str) -> tuple[int, int]:
        """1-based (line, column) of ``start`` in ``text``."""
        line = text.count("\n", 0, self.start) + 1
        column = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, column

    def _repr_html_(self) -> str:
        """The finding as a one-row table, for notebooks."""
        return diagnostic_html(self)


class Diagnostics(list[Diagnostic]):
    """What :func:`lint` returns: a list of :class:`Diagnostic` that knows the linted text.

    It is a plain ``list`` in every other way (and equal to a list of the same findings); in a
    notebook it shows as a table: line:column, severity, code, the tag, message and fix.

    Attributes:
        text: The linted text, which gives the findings' lines and columns; None when the
            findings were gathered without it (then places show as character offsets).
    """

    def __init__(self, diagnostics: Iterable[Diagnostic] = (), *, text: str | None = None) -> None:
        super().__init__(diagnostics)
        self.text = text

    def _repr_html_(self) -> str:
        """The findings as a table, for notebooks."""
        return diagnostics_html(self, self.text)


def _diagnostic(
    code: str, message: str, start: int, end: int, fix: tuple[Edit, ...] = ()
) -> Diagnostic:
    return Diagnostic(code, CODES[code], message, start, end, fix)


def _terminal(found: Classified, index: int) -> str | None:
    return terminal_of(found.slots[index], found.items[index].tag.key)


def order_violations(text: str, found: Classified, version: ModelVersion) -> list[Diagnostic]:
    """Diagnostics that make strict parsing fail: order, wrong-version, rating-conflict.

    ``order``: the fewest tags whose removal leaves a sentence of the version's order grammar,
    one finding each, saying where the tag belongs.
    """
    out: list[Diagnostic] = []
    items = found.items
    rules = order_rules(version)
    # Second ratings are reported as conflicts or duplicates, not again as out of order.
    skipped = {*found.conflicts, *found.duplicate_ratings}
    positions = [i for i in range(len(items)) if found.slots[i] != "break" and i not in skipped]
    terminals = [_terminal(found, i) or "" for i in positions]
    misplaced = rules.out_of_place(terminals)
    if misplaced:
        removed = set(misplaced)
        # Where each kind was last kept, before each misplaced tag and overall: messages name a
        # neighbour without scanning the prompt once per finding.
        last_kept: dict[str, int] = {}
        before: dict[int, dict[str, int]] = {}
        for k, terminal in enumerate(terminals):
            if k in removed:
                before[k] = dict(last_kept)
            else:
                last_kept[terminal] = k
        for k in misplaced:
            item = items[positions[k]]
            message = _order_message(
                rules, terminals[k], before[k], last_kept, k, name=item.tag.name, version=version
            )
            out.append(_diagnostic("order", message, item.start, item.end))
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
                (Edit(item.start, item.end, fix),) if fix is not None else (),
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


def _order_message(
    rules: OrderRules,
    terminal: str,
    kept_before: dict[str, int],
    kept_last: dict[str, int],
    index: int,
    *,
    name: str,
    version: ModelVersion,
) -> str:
    """``rating 'safe' goes before general tags in Animagine XL 4.0``, and the like.

    ``kept_before`` is where each kind was last kept before the tag, ``kept_last`` overall.
    """
    word = _SLOT_WORDS[terminal][0]
    if terminal in rules.edges:
        home = rules.home(terminal)
        at_home = [t for t in ORDER_TERMINALS if rules.ranks.get(t) == home]
        among = "GENERAL" if "GENERAL" in at_home else next(iter(at_home), None)
        where = f"among {_SLOT_WORDS[among][1]}" if among is not None else "last"
        return f"{word} {name!r} goes first or {where} in {version.title}"
    # The nearest kept tag before it that must come after it...
    after = rules.after(terminal)
    later = [(k, t) for t, k in kept_before.items() if t in after]
    if later:
        other = max(later)[1]
        return f"{word} {name!r} goes before {_SLOT_WORDS[other][1]} in {version.title}"
    # ...or the last kept tag after it that must come before it.
    rank = rules.ranks.get(terminal, 0)
    earlier = [
        (k, t) for t, k in kept_last.items() if k > index and rules.ranks.get(t, rank) < rank
    ]
    if earlier:
        other = max(earlier)[1]
        return f"{word} {name!r} goes after {_SLOT_WORDS[other][1]} in {version.title}"
    return f"{word} {name!r} is out of {version.title}'s order"


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


def _foreign_fix(tag: Tag, slot: str, source: ModelVersion, version: ModelVersion) -> str | None:
    converted = convert_special(tag, slot, source, version)
    if converted.name.lower() == tag.name.lower():
        return None
    return _tag_text(converted.name)


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
) -> Diagnostics:
    """Check prompt text for a model version.

    Returns diagnostics sorted by position, as a :class:`Diagnostics` (a ``list`` that shows as
    a table in a notebook). Codes (docs/lint.md explains each): ``syntax``,
    ``rating-conflict``, ``order``, ``wrong-version``, ``alias``, ``unescaped-parens``,
    ``probable-weight``, ``duplicate``, ``suspicious-weight``, ``nsfw-risk``, ``year-conflict``,
    ``unknown-tag``. A text that cannot be parsed gives one ``syntax`` diagnostic instead of
    raising.

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
        end = min(error.offset + 1, len(text))
        return Diagnostics([_diagnostic("syntax", error.reason, error.offset, end)], text=text)
    found = classify(items, resolved, database)
    out = order_violations(text, found, resolved)
    knows_general = _knows_general(database)
    seen: dict[str, int] = {}
    seen_twice: set[str] = set()
    lines = _Lines(text)
    for index, item in enumerate(items):
        tag = item.tag
        if tag.is_break:
            continue
        slot = found.slots[index]
        if item.qualifier is not None:
            out.append(
                _diagnostic(
                    "unescaped-parens",
                    f"{text[item.start : item.end]!r}: unescaped brackets are read as emphasis by "
                    "A1111-style tools; escape them",
                    item.start,
                    item.end,
                    (Edit(item.start, item.end, _tag_text(tag.name)),),
                )
            )
        weight = next(
            (w for w in _weights(tag) if not 0.0 <= w <= 2.0),
            None,
        )
        if weight is not None:
            out.append(
                _diagnostic(
                    "suspicious-weight",
                    f"weight {format_weight(weight)} on {tag.name!r} is outside 0..2; if the "
                    "brackets are part of a tag name, escape them as \\( \\)",
                    item.start,
                    item.end,
                )
            )
        key = tag.key
        if key in seen:
            seen_twice.add(key)
            span = _removal_span(text, item.start, item.end) if tag.weight == 1.0 else None
            first = items[seen[key]]
            line, column = lines.position(first.start)
            out.append(
                _diagnostic(
                    "duplicate",
                    f"{tag.name!r} already appears at line {line}, column {column}",
                    item.start,
                    item.end,
                    (Edit(span[0], span[1], ""),) if span else (),
                )
            )
        else:
            seen[key] = index
        if slot in ("subject", "general", "character", "series") and not tag.parts:
            out.extend(
                _vocabulary_findings(
                    item, database, knows_general=knows_general and slot == "general"
                )
            )
    rating = _rating_name(found) if found.duplicate_ratings else ""
    for index in found.duplicate_ratings:
        item = items[index]
        if item.tag.key in seen_twice:
            continue  # already reported as a plain duplicate
        out.append(
            _diagnostic(
                "duplicate",
                f"{item.tag.name!r} repeats the rating {rating!r}",
                item.start,
                item.end,
            )
        )
    if found.year_conflicts:
        first_year = next(items[i].tag.name for i, s in enumerate(found.slots) if s == "year")
        for index in found.year_conflicts:
            item = items[index]
            out.append(
                _diagnostic(
                    "year-conflict",
                    f"second year tag {item.tag.name!r} after {first_year!r}; the model knows "
                    "one period per image",
                    item.start,
                    item.end,
                )
            )
    if resolved.name == "v3" and "rating" not in found.slots:
        risky = [
            items[i]
            for i, slot in enumerate(found.slots)
            if slot == "quality" and items[i].tag.key in ("masterpiece", "best quality")
        ]
        if risky:
            out.append(
                _diagnostic(
                    "nsfw-risk",
                    f"{risky[0].tag.name!r} without a rating: the {resolved.title} card warns "
                    "these tags pull toward NSFW; add 'rating: general' (and 'nsfw, rating: "
                    "sensitive' to the negative prompt)",
                    risky[0].start,
                    risky[0].end,
                )
            )
    out.sort(key=lambda d: (d.start, d.code))
    return Diagnostics(out, text=text)


def _weights(tag: Tag) -> list[float]:
    """Every weight a tag carries: its own, or those of its parts (inner emphasis)."""
    return [weight for _, weight in tag.parts] if tag.parts else [tag.weight]


def _knows_general(database: TagDatabase) -> bool:
    """Whether ``database`` lists general tags, so that a tag it does not know is news.

    A database of characters and series only (``TagDatabase.from_names``) knows no general
    tags, and reporting every general tag as unknown would be noise.
    """
    return database.category("solo") == "general"


def _vocabulary_findings(
    item: ParsedTag, database: TagDatabase, *, knows_general: bool
) -> list[Diagnostic]:
    """``alias``, ``probable-weight`` and ``unknown-tag`` for one non-special tag."""
    tag = item.tag
    target, known = _facts(database, tag.key)
    if target is not None:
        return [
            _diagnostic(
                "alias",
                f"{tag.name!r} is Danbooru's old name for {target!r}, the tag the model knows",
                item.start,
                item.end,
                (Edit(item.start, item.end, _tag_text(target)),),
            )
        ]
    if known:
        return []
    if tag.weight != 1.0 and ":" in tag.name:
        head, _, tail = tag.name.rpartition(":")
        if head.strip() and (head.strip() in database or _NUMBERLIKE.fullmatch(tail)):
            return [
                _diagnostic(
                    "probable-weight",
                    f"{tag.name!r} is read as a tag (A1111 reads a weight only when a number "
                    f"follows the colon); did you mean a weight on {head.strip()!r}?",
                    item.start,
                    item.end,
                )
            ]
    if not knows_general:
        return []
    suggestion = _suggestion(database, tag.key)
    if suggestion is None:
        return [
            _diagnostic("unknown-tag", f"{tag.name!r} is not a Danbooru tag", item.start, item.end)
        ]
    return [
        _diagnostic(
            "unknown-tag",
            f"{tag.name!r} is not a Danbooru tag; did you mean {suggestion!r}?",
            item.start,
            item.end,
            (Edit(item.start, item.end, _tag_text(suggestion)),),
        )
    ]


# What a database says about a tag name: lint asks about the same tags prompt after prompt.
_FACTS: Final = DatabaseMemo[tuple[str | None, bool]](65536)
_SUGGESTIONS: Final = DatabaseMemo[str | None](65536)


def _facts(database: TagDatabase, key: str) -> tuple[str | None, bool]:
    """``(alias target or None, known)`` for a tag's lookup key."""
    table = _FACTS.table(database)
    found = table.get(key)
    if found is None:
        target = database.alias_target(key)
        if target == key:
            target = None
        found = table[key] = (target, key in database or key in _SPECIAL_ANYWHERE)
    return found


def _suggestion(database: TagDatabase, key: str) -> str | None:
    """``database.suggest(key)``, remembered."""
    table = _SUGGESTIONS.table(database)
    if key not in table:
        table[key] = database.suggest(key)
    return table[key]


def _tag_text(name: str) -> str:
    """A tag name as prompt text (escaped as rendering escapes it)."""
    return str(Tag(name))


def apply_fixes(text: str, diagnostics: Iterable[Diagnostic]) -> str:
    """Apply every diagnostic's ``fix`` to ``text``.

    A diagnostic's edits are applied together or not at all: one that overlaps an edit already
    taken (diagnostics are taken in order of their first edit) is skipped, so the result never
    mixes two repairs of the same text. Running lint again on the result finds what is left.

    Raises:
        WrongTypeError: ``text`` is not a str, or ``diagnostics`` holds something other than
            :class:`Diagnostic` (a ``TypeError``).
        InvalidArgumentError: a fix with an edit outside ``text`` (it was made for another
            text; a ``ValueError``).
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
    fixes: list[list[Edit]] = []
    for diagnostic in given:
        if not isinstance(diagnostic, Diagnostic):
            raise WrongTypeError(
                f"diagnostics must hold Diagnostic objects, got {type(diagnostic).__name__}"
            )
        edits = sorted(_checked_edits(diagnostic, len(text)), key=lambda e: (e.start, e.end))
        if edits:
            fixes.append(edits)
    taken: list[Edit] = []
    for edits in sorted(fixes, key=lambda group: (group[0].start, group[0].end)):
        if any(_overlaps(edit, other) for edit in edits for other in taken):
            continue
        if any(_overlaps(a, b) for a, b in itertools.pairwise(edits)):
            continue
        taken.extend(edits)
    result: list[str] = []
    cursor = 0
    for edit in sorted(taken, key=lambda e: (e.start, e.end)):
        result.append(text[cursor : edit.start])
        result.append(edit.replacement)
        cursor = edit.end
    result.append(text[cursor:])
    return "".join(result)


def _overlaps(a: Edit, b: Edit) -> bool:
    """Whether two edits touch the same text (two insertions at one place count as touching)."""
    if a.start == a.end == b.start == b.end:
        return True
    return a.start < b.end and b.start < a.end


def _checked_edits(diagnostic: Diagnostic, size: int) -> list[Edit]:
    fix = diagnostic.fix
    if not isinstance(fix, tuple):
        raise InvalidArgumentError(
            f"diagnostic {diagnostic.code!r}: fix must be a tuple of Edit, got {type(fix).__name__}"
        )
    for edit in fix:
        if not (
            isinstance(edit, Edit)
            and isinstance(edit.start, int)
            and isinstance(edit.end, int)
            and isinstance(edit.replacement, str)
            and 0 <= edit.start <= edit.end <= size
        ):
            raise InvalidArgumentError(
                f"diagnostic {diagnostic.code!r}: edit {edit!r} does not fit a text of {size} "
                "characters; was it made for another text?"
            )
    return list(fix)
