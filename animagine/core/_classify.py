"""Deciding what each tag of a prompt is, for one model version.

The grammar knows nothing of special tags; this module sorts parsed tags into the slots of the
version's training order (subject, character, series, rating, general, year, quality) using the
version's vocabulary and a tag database, and records what lint and strict parsing need: tags of
another version, second ratings and years.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal

from animagine.core._order import FOCUS_TAGS
from animagine.core._tag import Tag
from animagine.core._tagdb import DatabaseMemo
from animagine.core._vocab import VERSIONS, ModelVersion, RatingTag, is_subject

if TYPE_CHECKING:
    from animagine.core._grammar import ParsedTag
    from animagine.core._tagdb import TagDatabase

__all__ = ["Classified", "Slot", "classify", "convert_special"]

Slot = Literal["subject", "character", "series", "rating", "general", "year", "quality", "break"]


class Foreign:
    """A special tag of another version: which slot it means, and its name there."""

    __slots__ = ("slot", "source")

    def __init__(self, slot: Slot, source: ModelVersion) -> None:
        self.slot = slot
        self.source = source


@functools.cache
def foreign_tags(version: ModelVersion) -> Mapping[str, Foreign]:
    """Special tags of other versions that are not special in ``version``."""
    own = version.special_tags | {c for r in version.ratings for c in r.companions}
    table: dict[str, Foreign] = {}
    for other in VERSIONS:
        if other == version:
            continue
        for key in other.special_tags - own:
            if key in table:
                continue
            if other.is_quality(key):
                slot: Slot = "quality"
            elif other.rating(key) is not None:
                slot = "rating"
            else:
                slot = "year"
            table[key] = Foreign(slot, other)
    return table


def foreign_year(version: ModelVersion, key: str) -> ModelVersion | None:
    """The other version whose year tag ``key`` is (``year 2020`` in a 3.x prompt), or None."""
    for other in VERSIONS:
        if other != version and other.year_range is not None and other.year_of(key) is not None:
            return other
    return None


def rating_entry(version: ModelVersion, key: str) -> RatingTag | None:
    """The rating meaning of ``key`` in ``version``, or in the version it belongs to."""
    entry = version.rating(key)
    if entry is None:
        foreign = foreign_tags(version).get(key)
        if foreign is not None and foreign.slot == "rating":
            entry = foreign.source.rating(key)
    return entry


class Classified:
    """The result of classifying a parsed prompt: one slot per item, plus findings for lint."""

    __slots__ = ("conflicts", "duplicate_ratings", "foreign", "items", "slots", "year_conflicts")

    def __init__(self, items: Sequence[ParsedTag]) -> None:
        self.items = items
        self.slots: list[Slot] = []
        self.foreign: dict[int, Foreign] = {}
        self.conflicts: list[int] = []  # second ratings of another level
        self.duplicate_ratings: list[int] = []  # same level spelled again
        self.year_conflicts: list[int] = []


# What a tag is regardless of its neighbours, per (database, version): classifying a prompt is
# then one dict look-up per tag. Databases and versions are immutable, so entries never go stale.
_Static = tuple[Slot, "RatingTag | None", "Foreign | None"]
_TABLES: Final = DatabaseMemo[_Static](200_000)


def _static(key: str, version: ModelVersion, database: TagDatabase) -> _Static:
    if is_subject(key) or key in FOCUS_TAGS:
        return ("subject", None, None)
    if version.is_quality(key):
        return ("quality", None, None)
    foreign = foreign_tags(version)
    entry = rating_entry(version, key)
    if entry is not None:
        return ("rating", entry, foreign.get(key))
    other = foreign.get(key)
    if other is None and key.startswith("year ") and not version.is_year(key):
        source = foreign_year(version, key)
        if source is not None:
            other = Foreign("year", source)
    if other is not None:
        return (other.slot, None, other)
    if version.is_year(key):
        return ("year", None, None)
    kind = database.kind(key)
    if kind is None:
        # A Danbooru alias is what its tag is (`sole female` is `1girl`); special tags of a
        # version are never looked up as aliases, so a version's vocabulary always wins.
        target = database.alias_target(key)
        if target is not None and target != key:
            return _static(target, version, database)
    return (kind or "general", None, None)


def classify(
    items: Sequence[ParsedTag], version: ModelVersion, database: TagDatabase
) -> Classified:
    """Assign a slot to every parsed tag (see the module docstring)."""
    result = Classified(items)
    slots = result.slots
    table = _TABLES.table(database, version.name)
    rating_index = -1
    rating_tag: RatingTag | None = None
    year_index = -1
    for index, item in enumerate(items):
        name = item[0].name
        if name == "BREAK":
            slots.append("break")
            continue
        key = name.lower()
        info = table.get(key)
        if info is None:
            info = table[key] = _static(key, version, database)
        slot, entry, other = info
        if other is not None:
            result.foreign[index] = other
        if entry is not None:  # a rating
            if rating_tag is None:
                rating_tag, rating_index = entry, index
            elif entry.tag in rating_tag.companions:
                slot = "general"
            elif rating_tag.tag in entry.companions:
                slots[rating_index] = "general"
                rating_tag, rating_index = entry, index
            else:
                # A second rating stays a rating, where it was written; lint reports it.
                (result.duplicate_ratings if entry.level == rating_tag.level
                 else result.conflicts).append(index)  # fmt: skip
        elif slot == "year":
            if year_index < 0:
                year_index = index
            else:
                result.year_conflicts.append(index)
        slots.append(slot)
    if len(database) == 0:
        _identity_by_position(result)
    return result


def _identity_by_position(result: Classified) -> None:
    """Without a database: what sits between the subject tags and the rating is identity.

    In that block, a tag ending in ``(series)`` or naming another block tag's qualifier is a
    series; otherwise, with two or more tags and no series found, the last one is the series
    (the card's ``1girl, character, series, rating`` template); the rest are characters.
    """
    slots = result.slots
    index = 0
    count = len(slots)
    while index < count and slots[index] in ("quality", "break"):
        index += 1
    if index >= count or slots[index] != "subject":
        return
    while index < count and slots[index] in ("subject", "break"):
        index += 1
    block: list[int] = []
    while index < count and slots[index] == "general" and index not in result.conflicts:
        block.append(index)
        index += 1
    if not block or index >= count or slots[index] != "rating":
        return
    names = [result.items[i].tag.name.lower() for i in block]
    qualifiers = {n[n.rindex("(") + 1 : -1] for n in names if n.endswith(")") and "(" in n}
    series = [
        i for i, n in zip(block, names, strict=True) if n.endswith("(series)") or n in qualifiers
    ]
    if not series and len(block) >= 2:
        series = [block[-1]]
    for i in block:
        slots[i] = "series" if i in series else "character"


# -- conversion of one special tag between versions ------------------------------------------


def convert_special(tag: Tag, slot: str, source: ModelVersion, target: ModelVersion) -> Tag:
    """Map one rating, year or quality tag of ``source`` to ``target``; unknown ones unchanged."""
    key = tag.name.lower()
    if key in target.special_tags or target.year_of(key) is not None:
        return tag  # already the target's own tag
    name: str | None = None
    if slot == "rating":
        entry = rating_entry(source, key)
        name = target.rating_tag(entry.level) if entry is not None else None
    elif slot == "year":
        number = _year_number(source, key)
        name = target.year_tag(number) if number is not None else None
    elif slot == "quality":
        tier = _tier(source, key)
        name = target.quality_tiers[tier] if tier is not None else None
    if name is None or name == key:
        return tag
    return Tag(name, tag.weight)


def _year_number(version: ModelVersion, key: str) -> int | None:
    number = version.year_of(key)
    if number is None:
        other = foreign_tags(version).get(key)
        source = other.source if other is not None else foreign_year(version, key)
        if source is not None:
            number = source.year_of(key)
    return number


def _tier(version: ModelVersion, key: str) -> int | None:
    """The conversion tier of a quality/score tag, looking in ``version`` first, then others."""
    for candidate in (version, *VERSIONS):
        if key in candidate.quality_tiers:
            return candidate.quality_tiers.index(key)
        if key in candidate.score:
            # 4.0 scores, best first: high=best, great, good, average, bad=low, low=worst.
            return candidate.score.index(key) + 1
    return None
