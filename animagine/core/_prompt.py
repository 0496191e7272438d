"""`Prompt`: a parsed, classified, immutable prompt for one Animagine XL version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from animagine.core._classify import Classified, Slot, classify, convert_special, rating_entry
from animagine.core._display import prompt_html
from animagine.core._grammar import MAX_PROMPT_CHARS, ParsedTag, parse_tags, render_tags
from animagine.core._lint import lint, order_violations
from animagine.core._order import order_rules, terminal_of
from animagine.core._tag import Tag
from animagine.core._tagdb import TagDatabase, database_or_default
from animagine.core._vocab import ModelVersion, get_version
from animagine.errors import (
    AnimagineError,
    InvalidArgumentError,
    PromptOrderError,
    UnknownVersionError,
    WrongTypeError,
)

__all__ = ["Prompt", "convert", "parse"]

_SLOTS: Final[tuple[Slot, ...]] = (
    "subject", "character", "series", "rating", "general", "year", "quality", "break",
)  # fmt: skip
# The slot keyword arguments of Prompt(...) and the slot each one fills.
_SLOT_ARGUMENTS: Final[dict[str, Slot]] = {
    "subjects": "subject",
    "characters": "character",
    "series": "series",
    "ratings": "rating",
    "general": "general",
    "years": "year",
    "quality": "quality",
}


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


def _to_tags(value: Any) -> tuple[Tag, ...]:
    if isinstance(value, (str, Tag)):
        raise WrongTypeError(
            f"expected a sequence of tags, got a single {type(value).__name__} {value!r} "
            f"(write [{value!r}])"
        )
    try:
        items = list(value)
    except TypeError:
        raise WrongTypeError(f"expected a sequence of tags, got {type(value).__name__}") from None
    return tuple(item if isinstance(item, Tag) else _named(item) for item in items)


_NAMED: dict[str, Tag] = {}
_NAMED_LIMIT: Final = 65536


def _named(name: Any) -> Tag:
    """``Tag(name)``, remembered: caption folders and tag lists repeat the same names."""
    if not isinstance(name, str):
        return Tag(name)
    tag = _NAMED.get(name)
    if tag is None:
        tag = Tag(name)
        if len(_NAMED) >= _NAMED_LIMIT:
            _NAMED.clear()
        _NAMED[name] = tag
    return tag


def _to_optional_tag(value: Any) -> tuple[Tag, ...]:
    return () if value is None else (value if isinstance(value, Tag) else Tag(value),)


def _check_entries(tags: Any, slots: Any) -> tuple[list[Tag], list[Slot]]:
    tag_list = list(_to_tags(tags))
    if isinstance(slots, str):
        raise WrongTypeError(f"slots must be a sequence of slot names, got the str {slots!r}")
    try:
        slot_list = list(slots)
    except TypeError:
        raise WrongTypeError(
            f"slots must be a sequence of slot names, got {type(slots).__name__}"
        ) from None
    if len(slot_list) != len(tag_list):
        raise InvalidArgumentError(
            f"tags and slots differ in length ({len(tag_list)} tags, {len(slot_list)} slots)"
        )
    for tag, slot in zip(tag_list, slot_list, strict=True):
        if slot not in _SLOTS:
            known = ", ".join(repr(s) for s in _SLOTS)
            raise InvalidArgumentError(f"unknown slot {slot!r}; slots are {known}")
        if (slot == "break") != tag.is_break:
            raise InvalidArgumentError(
                "BREAK goes with the slot 'break', and only BREAK does "
                f"(got {tag.name!r} in {slot!r})"
            )
    return tag_list, slot_list


@attrs.frozen(init=False, repr=False)
class Prompt:
    """A prompt for one Animagine XL version: its tags, what each one is, in the version's order.

    Build one by parsing text (:meth:`parse`), from a list of tags (:meth:`from_tags`), or from
    tag names per slot::

        Prompt(subjects=["1girl"], characters=["arima kana"], series=["oshi no ko"],
               rating="safe", general=["smile", "night"])

    ``tags`` holds every tag (and ``BREAK``) in order and ``slots`` what each one is
    (``"subject"``, ``"character"``, ``"series"``, ``"rating"``, ``"general"``, ``"year"``,
    ``"quality"``, or ``"break"``). The order is always the version's order (its grammar in
    ``animagine/core/grammar/order/``), reached by moving as few tags as it needs: tags of one
    kind keep the order they were given in, characters and series stay interleaved as written,
    focus tags (``male focus``) stay with the subject tags, and 3.x quality tags stay at the end
    they were written at. ``str(prompt)`` is the prompt text, and reading it back gives an equal
    prompt.

    The slot properties (``subjects``, ``characters``, ``series``, ``ratings``, ``general``,
    ``years``, ``quality``) are views of ``tags``; ``rating`` and ``year`` are the first rating
    and year tag, or None. Several ratings or years are kept as written (lint reports them).
    Change a prompt with :func:`attrs.evolve`: ``attrs.evolve(p, general=[...])`` replaces the
    general tags where they stood, ``rating=`` / ``year=`` replace every rating / year.

    Raises:
        WrongTypeError: a field of the wrong type (a ``TypeError``).
        InvalidArgumentError: a bad tag, slot, or ``rating`` together with ``ratings`` (a
            ``ValueError``).
        UnknownVersionError: unknown ``version``.
    """

    version: ModelVersion
    tags: tuple[Tag, ...]
    slots: tuple[Slot, ...]

    def __init__(
        self,
        *,
        version: str | ModelVersion = "v4",
        tags: Iterable[str | Tag] | None = None,
        slots: Iterable[Slot] | None = None,
        subjects: Any = _UNSET,
        characters: Any = _UNSET,
        series: Any = _UNSET,
        rating: Any = _UNSET,
        ratings: Any = _UNSET,
        general: Any = _UNSET,
        year: Any = _UNSET,
        years: Any = _UNSET,
        quality: Any = _UNSET,
    ) -> None:
        resolved = get_version(version)
        if (tags is None) != (slots is None):
            raise InvalidArgumentError("give tags and slots together, or neither")
        entries_tags, entries_slots = ([], []) if tags is None else _check_entries(tags, slots)
        given: dict[str, Any] = {
            "subjects": subjects, "characters": characters, "series": series,
            "ratings": ratings, "general": general, "years": years, "quality": quality,
        }  # fmt: skip
        for single, plural in (("rating", "ratings"), ("year", "years")):
            value = rating if single == "rating" else year
            if value is _UNSET:
                continue
            if given[plural] is not _UNSET:
                raise InvalidArgumentError(f"give {single}= or {plural}=, not both")
            given[plural] = _to_optional_tag(value)
        for argument, value in given.items():
            if value is _UNSET:
                continue
            slot = _SLOT_ARGUMENTS[argument]
            new = _to_tags(value)
            if slot in ("rating", "year") and any(tag.is_break for tag in new):
                raise InvalidArgumentError(f"BREAK cannot be a {slot}")
            new_slots: list[Slot] = ["break" if tag.is_break else slot for tag in new]
            kept = [i for i, s in enumerate(entries_slots) if s != slot]
            where = next((i for i, s in enumerate(entries_slots) if s == slot), None)
            if where is None:
                at_start = slot == "quality" and resolved.quality_placement == "start"
                where = 0 if at_start else len(entries_slots)
            before = sum(1 for i in kept if i < where)
            entries_tags = [entries_tags[i] for i in kept]
            entries_slots = [entries_slots[i] for i in kept]
            entries_tags[before:before] = new
            entries_slots[before:before] = new_slots
        self._set(resolved, entries_tags, entries_slots)

    def _set(self, version: ModelVersion, tags: Sequence[Tag], slots: Sequence[Slot]) -> None:
        """Store ``tags`` in ``version``'s order (see the class docstring)."""
        rules = order_rules(version)
        terminals = [
            terminal_of(slot, tag.key if slot == "subject" else "")
            for tag, slot in zip(tags, slots, strict=True)
        ]
        order = rules.canonical_order(terminals)
        self.__attrs_init__(version, tuple(tags[i] for i in order), tuple(slots[i] for i in order))

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        version: str | ModelVersion = "v4",
        strict: bool = False,
        database: TagDatabase | None = None,
    ) -> Prompt:
        """Read prompt text, in any order, for a model version.

        Args:
            text: Comma-separated tags with optional A1111 emphasis (``(tag:1.2)``, ``[tag]``),
                Danbooru escapes (``\\(``) and ``BREAK``; at most
                :data:`~animagine.core.MAX_PROMPT_CHARS` (100,000) characters. Reading takes
                time linear in its length.
            version: The model version the prompt is for (:func:`get_version` names).
            strict: Raise :class:`PromptOrderError` if the text breaks the version's tag order
                (its order grammar), uses another version's special tags, or names two
                different ratings.
            database: What tags are (characters, series, aliases). Default: the database
                shipped with animagine; ``TagDatabase.empty()`` classifies identity tags by
                position.

        Raises:
            WrongTypeError: ``text`` is not a str, ``version`` not a str or ModelVersion, or
                ``database`` not a TagDatabase (a ``TypeError``).
            UnknownVersionError: unknown ``version``.
            PromptTooLongError: ``text`` is longer than :data:`~animagine.core.MAX_PROMPT_CHARS`.
            PromptSyntaxError: the text is not a valid prompt.
            PromptOrderError: ``strict`` and the text breaks the version's rules.
        """
        resolved = get_version(version)
        found = classify(parse_tags(text), resolved, database_or_default(database))
        if strict:
            for violation in order_violations(text, found, resolved):
                raise PromptOrderError(
                    violation.message, text=text, offset=violation.start, code=violation.code
                )
        return cls._from_classified(found, resolved)

    @classmethod
    def from_tags(
        cls,
        tags: Iterable[str | Tag],
        *,
        version: str | ModelVersion = "v4",
        database: TagDatabase | None = None,
    ) -> Prompt:
        """Classify a list of tags, given in any order, and put them in the version's order.

        No prompt syntax is read: each string is one tag name as :class:`Tag` takes it
        (``"jeanne_d'arc_alter_(avenger)_(fate)"`` is one tag, brackets and all).

        Raises:
            WrongTypeError: ``tags`` is a single str, or holds something other than str and
                Tag (a ``TypeError``).
            InvalidArgumentError: a name :class:`Tag` refuses (a ``ValueError``).
            UnknownVersionError: unknown ``version``.
        """
        resolved = get_version(version)
        items = [ParsedTag(tag, 0, 0) for tag in _to_tags(tags)]
        return cls._from_classified(
            classify(items, resolved, database_or_default(database)), resolved
        )

    @classmethod
    def _from_classified(cls, found: Classified, version: ModelVersion) -> Prompt:
        prompt = object.__new__(cls)
        prompt._set(version, [item.tag for item in found.items], found.slots)
        return prompt

    # -- slot views ------------------------------------------------------------------------

    def _of(self, slot: Slot) -> tuple[Tag, ...]:
        return tuple(tag for tag, s in zip(self.tags, self.slots, strict=True) if s == slot)

    @property
    def subjects(self) -> tuple[Tag, ...]:
        """Subject tags (``1girl``, ``2boys``...) and focus tags (``male focus``...)."""
        return self._of("subject")

    @property
    def characters(self) -> tuple[Tag, ...]:
        """Character tags."""
        return self._of("character")

    @property
    def series(self) -> tuple[Tag, ...]:
        """Series (copyright) tags."""
        return self._of("series")

    @property
    def ratings(self) -> tuple[Tag, ...]:
        """Rating tags, as written (more than one is a lint finding)."""
        return self._of("rating")

    @property
    def rating(self) -> Tag | None:
        """The first rating tag, or None."""
        return next((t for t, s in zip(self.tags, self.slots, strict=True) if s == "rating"), None)

    @property
    def general(self) -> tuple[Tag, ...]:
        """General tags (everything not special, character or series)."""
        return self._of("general")

    @property
    def years(self) -> tuple[Tag, ...]:
        """Year (4.0) or period (3.x) tags, as written."""
        return self._of("year")

    @property
    def year(self) -> Tag | None:
        """The first year tag, or None."""
        return next((t for t, s in zip(self.tags, self.slots, strict=True) if s == "year"), None)

    @property
    def quality(self) -> tuple[Tag, ...]:
        """Quality, score, aesthetic and resolution tags."""
        return self._of("quality")

    # -- writing ---------------------------------------------------------------------------

    def __str__(self) -> str:
        return render_tags(self.tags)

    def __repr__(self) -> str:
        return f"Prompt.parse({str(self)!r}, version={self.version.name!r})"

    def __iter__(self) -> Iterator[Tag]:
        return iter(self.tags)

    def __len__(self) -> int:
        return len(self.tags)

    def _repr_html_(self) -> str:
        """For notebooks: the tags coloured by slot, weights shown, and :func:`lint`'s findings."""
        text = str(self)
        findings = lint(text, version=self.version) if len(text) <= MAX_PROMPT_CHARS else None
        return prompt_html(self.version, self.tags, self.slots, text, findings)

    # -- changing --------------------------------------------------------------------------

    def with_quality_tags(self, tags: Iterable[str | Tag] | None = None) -> Prompt:
        """Add quality tags (default: the version's recommended ones) that are not there yet."""
        wanted = self.version.recommended_quality if tags is None else _to_tags(tags)
        present = {tag.key for tag in self.tags}
        extra = [t if isinstance(t, Tag) else Tag(t) for t in wanted]
        added = tuple(t for t in extra if t.key not in present)
        if not added:
            return self
        return attrs.evolve(self, quality=self.quality + added)

    def resolve_aliases(self, database: TagDatabase | None = None) -> Prompt:
        """The same prompt with every Danbooru alias replaced by the tag it stands for.

        ``saber`` becomes the character tag Danbooru renamed it to; weights, slots and order are
        kept. Tags that are not aliases are left as they are.
        """
        db = database_or_default(database)
        tags = list(self.tags)
        changed = False
        for index, tag in enumerate(tags):
            if tag.is_break or tag.parts:
                continue
            target = db.alias_target(tag.name)
            if target is not None and target != tag.key:
                tags[index] = Tag(target, tag.weight)
                changed = True
        if not changed:
            return self
        prompt = object.__new__(type(self))
        prompt._set(self.version, tags, self.slots)
        return prompt

    def convert(self, version: str | ModelVersion) -> Prompt:
        """The same prompt for another model version.

        Ratings map by Danbooru level (4.0 ``safe`` ↔ 3.0 ``rating: general`` ↔ 3.1 ``safe``);
        years map through the year they stand for (a 3.x period's middle year, a 4.0 year to the
        3.x period covering it, or the nearest); quality, score and aesthetic tags map through
        seven tiers (masterpiece, best, great/high, good/medium, normal/average, low, worst).
        A tag with no equivalent in the target (3.1's aesthetic tags) is kept as written, and
        :func:`lint` reports it as ``wrong-version``; two tags that map to the same target tag are
        kept once. Weights are kept, and so is the order of everything the target's order
        allows.
        """
        target = get_version(version)
        source = self.version
        tags: list[Tag] = []
        slots: list[Slot] = []
        seen: set[str] = set()
        dropped: set[str] = set()  # the source ratings' companions
        added: dict[int, tuple[str, ...]] = {}  # index of a rating -> its target companions
        for tag, slot in zip(self.tags, self.slots, strict=True):
            mapped = tag
            if slot in ("rating", "year", "quality"):
                mapped = convert_special(tag, slot, source, target)
            if slot == "quality":
                if mapped.key in seen:
                    continue
                seen.add(mapped.key)
            if slot == "rating":
                old = rating_entry(source, tag.key)
                new = target.rating(mapped.key)
                dropped.update(old.companions if old is not None else ())
                added[len(tags)] = new.companions if new is not None else ()
            tags.append(mapped)
            slots.append(slot)
        prompt = object.__new__(type(self))
        prompt._set(target, *_move_companions(tags, slots, dropped, added))
        return prompt

    # -- serialising -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the version, and every tag in order.

        Each tag is ``{"slot", "name", "weight", "text"}``: ``text`` is the tag as prompt text
        (``str(tag)``, which keeps inner emphasis), the part :meth:`from_json` reads back. The
        slot lists (``subjects``, ``characters``, ``series``, ``ratings``, ``general``,
        ``years``, ``quality``) repeat the names by slot, for readers that want them grouped.
        """
        order = [
            {"slot": slot, "name": tag.name, "weight": tag.weight, "text": str(tag)}
            for tag, slot in zip(self.tags, self.slots, strict=True)
        ]
        grouped = {
            argument: [tag.name for tag in self._of(slot)]
            for argument, slot in _SLOT_ARGUMENTS.items()
        }
        return {"version": self.version.name, "tags": order, **grouped}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prompt:
        """Rebuild a prompt written by :meth:`to_json` (from each tag's ``slot`` and ``text``).

        Raises:
            InvalidArgumentError: the data is not a prompt written by :meth:`to_json` (a
                ``ValueError``).
            UnknownVersionError: its version is not known.
        """
        try:
            version = get_version(data["version"])
            tags: list[Tag] = []
            slots: list[Any] = []
            for entry in data["tags"]:
                text = entry["text"]
                parsed = parse_tags(text)
                if len(parsed) != 1:
                    raise ValueError(f"{text!r} is not one tag")
                tags.append(parsed[0].tag)
                slots.append(entry["slot"])
        except UnknownVersionError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AnimagineError) as error:
            raise InvalidArgumentError(f"not a serialised Prompt: {error}") from error
        return cls(version=version, tags=tags, slots=slots)


def _move_companions(
    tags: list[Tag], slots: list[Slot], dropped: set[str], added: Mapping[int, tuple[str, ...]]
) -> tuple[list[Tag], list[Slot]]:
    """Companion tags travel with their rating (3.0 ``rating: explicit, nsfw``).

    The source ratings' companions (``dropped``) are taken out of the general tags, and a target
    rating's companions (``added``, by the rating's index) go right after it, so
    ``rating: questionable, nsfw`` becomes 4.0 ``nsfw`` (not ``nsfw, nsfw``) and 4.0 ``explicit``
    becomes 3.0 ``rating: explicit, nsfw``.
    """
    if not dropped and not any(added.values()):
        return tags, slots
    keep = [not (s == "general" and t.key in dropped) for t, s in zip(tags, slots, strict=True)]
    present = {tag.key for tag, kept in zip(tags, keep, strict=True) if kept}
    out_tags: list[Tag] = []
    out_slots: list[Slot] = []
    for index, (tag, slot) in enumerate(zip(tags, slots, strict=True)):
        if keep[index]:
            out_tags.append(tag)
            out_slots.append(slot)
        for name in added.get(index, ()):
            if name not in present:
                present.add(name)
                out_tags.append(Tag(name))
                out_slots.append("general")
    return out_tags, out_slots


def parse(
    text: str,
    *,
    version: str | ModelVersion = "v4",
    strict: bool = False,
    database: TagDatabase | None = None,
) -> Prompt:
    """Shorthand for :meth:`Prompt.parse`."""
    return Prompt.parse(text, version=version, strict=strict, database=database)


def convert(text: str, *, to: str | ModelVersion, source: str | ModelVersion = "v4") -> str:
    """Rewrite prompt text for another model version (see :meth:`Prompt.convert`).

    Args:
        text: The prompt, written for ``source``.
        to: The target version.
        source: The version ``text`` was written for.

    Returns:
        The canonical prompt for ``to``.

    Raises:
        PromptSyntaxError: ``text`` is not a valid prompt (:class:`PromptTooLongError` when it
            is longer than :data:`~animagine.core.MAX_PROMPT_CHARS`).
        UnknownVersionError: unknown ``to`` or ``source``.
        WrongTypeError: an argument of the wrong type.
    """
    return str(Prompt.parse(text, version=source).convert(to))
