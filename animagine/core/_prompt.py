"""`Prompt`: a parsed, classified, immutable prompt for one Animagine XL version."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from animagine.core._classify import Classified, classify, convert_special, rating_entry
from animagine.core._grammar import parse_tags
from animagine.core._lint import order_violations
from animagine.core._tag import BREAK_NAME, Tag
from animagine.core._tagdb import TagDatabase, database_or_default
from animagine.core._vocab import ModelVersion, get_version
from animagine.errors import InvalidArgumentError, PromptOrderError, WrongTypeError

__all__ = ["Prompt", "convert", "parse"]

_TUPLE_FIELDS: Final = ("subjects", "characters", "series", "general", "quality")
_SLOT_FIELD: Final = {
    "subject": "subjects",
    "character": "characters",
    "series": "series",
    "general": "general",
    "quality": "quality",
}


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
    return tuple(item if isinstance(item, Tag) else Tag(item) for item in items)


def _to_optional_tag(value: Any) -> Tag | None:
    tag = value if value is None or isinstance(value, Tag) else Tag(value)
    if tag is not None and tag.is_break:
        raise InvalidArgumentError("BREAK cannot be a rating or a year")
    return tag


def _to_version(value: Any) -> ModelVersion:
    return get_version(value)


def _join(tags: Iterable[Tag]) -> str:
    """Render tags A1111-style: ``, `` between tags, bare spaces around ``BREAK``."""
    parts: list[str] = []
    after_break = True
    for tag in tags:
        if tag.name == BREAK_NAME:
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


@attrs.frozen(kw_only=True, repr=False)
class Prompt:
    """A prompt for one Animagine XL version, split into the slots of its training order.

    Build one by parsing text (:meth:`parse`) or from tag names::

        Prompt(subjects=["1girl"], characters=["arima kana"], series=["oshi no ko"],
               rating="safe", general=["smile", "night"])

    ``str(prompt)`` is the canonical prompt for the version: for 4.0 ``subjects, characters,
    series, rating, general, year, quality``; 3.1 the same; 3.0 puts the quality block first. Fields
    are tuples of :class:`Tag` (strings are converted); change one with :func:`attrs.evolve`.
    ``BREAK`` may appear inside the tuple fields.
    """

    version: ModelVersion = attrs.field(default=_to_version("v4"), converter=_to_version)
    subjects: tuple[Tag, ...] = attrs.field(default=(), converter=_to_tags)
    characters: tuple[Tag, ...] = attrs.field(default=(), converter=_to_tags)
    series: tuple[Tag, ...] = attrs.field(default=(), converter=_to_tags)
    rating: Tag | None = attrs.field(default=None, converter=_to_optional_tag)
    general: tuple[Tag, ...] = attrs.field(default=(), converter=_to_tags)
    year: Tag | None = attrs.field(default=None, converter=_to_optional_tag)
    quality: tuple[Tag, ...] = attrs.field(default=(), converter=_to_tags)

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
            strict: Raise :class:`PromptOrderError` if the text breaks the version's tag order,
                uses another version's special tags, or names two different ratings.
            database: Which tags are characters and series. Default: the database shipped with
                animagine; ``TagDatabase.empty()`` classifies identity tags by position.

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
    def _from_classified(cls, found: Classified, version: ModelVersion) -> Prompt:
        buckets: dict[str, list[Tag]] = {name: [] for name in _TUPLE_FIELDS}
        rating: Tag | None = None
        year: Tag | None = None
        pending_breaks: list[Tag] = []
        previous_bucket: str | None = None
        for item, slot in zip(found.items, found.slots, strict=True):
            tag = item.tag
            if slot == "break":
                if previous_bucket is not None:
                    buckets[previous_bucket].append(tag)
                else:
                    pending_breaks.append(tag)
                continue
            if slot == "rating":
                rating, previous_bucket = tag, None
            elif slot == "year":
                year, previous_bucket = tag, None
            else:
                previous_bucket = _SLOT_FIELD[slot]
                bucket = buckets[previous_bucket]
                if pending_breaks:
                    bucket.extend(pending_breaks)
                    pending_breaks.clear()
                bucket.append(tag)
        buckets["general"].extend(pending_breaks)
        prompt = object.__new__(cls)
        setter = object.__setattr__
        setter(prompt, "version", version)
        for name in _TUPLE_FIELDS:
            setter(prompt, name, tuple(buckets[name]))
        setter(prompt, "rating", rating)
        setter(prompt, "year", year)
        return prompt

    # -- writing ---------------------------------------------------------------------------

    @property
    def tags(self) -> tuple[Tag, ...]:
        """Every tag (and ``BREAK``) in the version's canonical order."""
        identity = (
            *self.subjects,
            *self.characters,
            *self.series,
            *((self.rating,) if self.rating is not None else ()),
            *self.general,
            *((self.year,) if self.year is not None else ()),
        )
        if self.version.quality_placement == "start":
            return (*self.quality, *identity)
        return (*identity, *self.quality)

    def __str__(self) -> str:
        return _join(self.tags)

    def __repr__(self) -> str:
        return f"Prompt.parse({str(self)!r}, version={self.version.name!r})"

    def __iter__(self) -> Iterator[Tag]:
        return iter(self.tags)

    def __len__(self) -> int:
        return len(self.tags)

    # -- changing --------------------------------------------------------------------------

    def with_quality_tags(self, tags: Iterable[str | Tag] | None = None) -> Prompt:
        """Add quality tags (default: the version's recommended ones) that are not there yet."""
        wanted = self.version.recommended_quality if tags is None else _to_tags(tags)
        present = {tag.name.lower() for tag in self.tags}
        extra = [t if isinstance(t, Tag) else Tag(t) for t in wanted]
        added = tuple(t for t in extra if t.name.lower() not in present)
        if not added:
            return self
        return attrs.evolve(self, quality=self.quality + added)

    def convert(self, version: str | ModelVersion) -> Prompt:
        """The same prompt for another model version.

        Ratings map by Danbooru level (4.0 ``safe`` ↔ 3.0 ``rating: general`` ↔ 3.1 ``safe``);
        years map through the year they stand for (a 3.x period's middle year, a 4.0 year to the
        3.x period covering it, or the nearest); quality, score and aesthetic tags map through
        seven tiers (masterpiece, best, great/high, good/medium, normal/average, low, worst).
        A tag with no equivalent in the target (3.1's aesthetic tags) is kept as written, and
        :func:`lint` reports it as ``wrong-version``; two tags that map to the same target tag are
        kept once. Weights are kept.
        """
        target = get_version(version)
        source = self.version
        rating = self.rating and convert_special(self.rating, "rating", source, target)
        year = self.year and convert_special(self.year, "year", source, target)
        quality: list[Tag] = []
        seen: set[str] = set()
        for tag in self.quality:
            mapped = convert_special(tag, "quality", source, target)
            key = mapped.name.lower()
            if key in seen and not mapped.is_break:
                continue
            seen.add(key)
            quality.append(mapped)
        general = self.general
        if self.rating is not None and rating is not None:
            general = _move_companions(self.rating, rating, source, target, general)
        return attrs.evolve(
            self, version=target, rating=rating, year=year, quality=quality, general=general
        )

    # -- serialising -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the version and each slot as ``[name, weight]`` pairs."""

        def pairs(tags: Sequence[Tag]) -> list[list[Any]]:
            return [[tag.name, tag.weight] for tag in tags]

        return {
            "version": self.version.name,
            **{name: pairs(getattr(self, name)) for name in _TUPLE_FIELDS},
            "rating": pairs([self.rating])[0] if self.rating is not None else None,
            "year": pairs([self.year])[0] if self.year is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prompt:
        """Rebuild a prompt written by :meth:`to_json`.

        Raises:
            InvalidArgumentError: the data is not a prompt written by :meth:`to_json` (a
                ``ValueError``).
            UnknownVersionError: its version is not known.
        """
        try:
            fields: dict[str, Any] = {"version": data["version"]}
            for name in _TUPLE_FIELDS:
                fields[name] = [Tag(name_, weight) for name_, weight in data.get(name, ())]
            for name in ("rating", "year"):
                value = data.get(name)
                fields[name] = None if value is None else Tag(value[0], value[1])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise InvalidArgumentError(f"not a serialised Prompt: {error}") from error
        return cls(**fields)


def _move_companions(
    old: Tag, new: Tag, source: ModelVersion, target: ModelVersion, general: tuple[Tag, ...]
) -> tuple[Tag, ...]:
    """Companion tags travel with their rating (3.0 ``rating: explicit, nsfw``).

    The source rating's companions are taken out of the general tags and the target rating's
    are put first among them, so ``rating: questionable, nsfw`` becomes 4.0 ``nsfw`` (not
    ``nsfw, nsfw``) and 4.0 ``explicit`` becomes 3.0 ``rating: explicit, nsfw``.
    """
    old_entry = rating_entry(source, old.name.lower())
    new_entry = target.rating(new.name.lower())
    dropped = set(old_entry.companions) if old_entry is not None else set()
    added = new_entry.companions if new_entry is not None else ()
    if not dropped and not added:
        return general
    kept = tuple(tag for tag in general if tag.is_break or tag.name.lower() not in dropped)
    present = {tag.name.lower() for tag in kept}
    return tuple(Tag(name) for name in added if name not in present) + kept


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
