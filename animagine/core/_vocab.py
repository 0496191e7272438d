"""Model versions and their vocabularies, as data.

Everything that differs between Animagine XL releases lives in the :data:`VERSIONS` table below:
special tags, the order the model was trained on, recommended quality tags, the default negative
prompt, generation defaults and resolutions. Adding a version means adding one entry.
Sources: the Animagine XL 3.0, 3.1 and 4.0 model cards and the official demo apps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from animagine.errors import InvalidArgumentError, UnknownVersionError, WrongTypeError

__all__ = [
    "RATING_LEVELS",
    "VERSIONS",
    "WEIGHT_FILE_SUFFIXES",
    "GenerationDefaults",
    "ModelVersion",
    "Period",
    "RatingTag",
    "get_version",
]

RatingLevel = Literal["general", "sensitive", "questionable", "explicit"]
#: Danbooru's four rating levels, mildest first.
RATING_LEVELS: Final[tuple[RatingLevel, ...]] = ("general", "sensitive", "questionable", "explicit")
QualityPlacement = Literal["start", "end"]

#: The bucket resolutions every Animagine XL version was trained on, as (width, height).
RESOLUTIONS: Final = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)

_SUBJECT: Final = re.compile(r"(?:[1-5]|6\+)(?:girl|boy|other)s?|multiple (?:girls|boys|others)")


def is_subject(key: str) -> bool:
    """Whether a lower-case tag is a subject-count tag: ``1girl`` .. ``multiple others``."""
    if not _SUBJECT.fullmatch(key):
        return False
    # `1girl` but not `1girls`, `2girls` but not `2girl`.
    return key.startswith("multiple") or key.endswith("s") != key.startswith("1")


@attrs.frozen
class Period:
    """A period tag (v3.x ``newest``/``oldest``...) and the years it covers."""

    tag: str
    first: int
    last: int

    @property
    def middle(self) -> int:
        """The year conversion maps this period to: the middle year, rounding up."""
        return (self.first + self.last + 1) // 2


@attrs.frozen
class RatingTag:
    """A rating tag and its Danbooru level.

    ``companions`` are tags the model card writes together with this rating (3.0's
    ``rating: questionable, nsfw``, 3.1's ``explicit, nsfw``): they are not a second rating.
    """

    tag: str
    level: RatingLevel
    companions: tuple[str, ...] = ()


@attrs.frozen
class GenerationDefaults:
    """The settings a model card recommends."""

    guidance_scale: float
    steps: int
    sampler: str = "Euler a"
    width: int = 832
    height: int = 1216
    guidance_range: tuple[float, float] = (5.0, 7.0)
    max_steps_recommended: int = 30
    vae: str | None = None
    """A VAE to load instead of the bundled one in float16 (hub id), or None."""


@attrs.frozen(eq=False)
class ModelVersion:
    """One Animagine XL release and everything about prompting it.

    Compare versions with ``==`` (by name). Get one with :func:`get_version`.
    """

    name: str
    title: str
    hub_ids: tuple[str, ...]
    aliases: tuple[str, ...]
    quality: tuple[str, ...]
    """Quality tags, best first."""
    score: tuple[str, ...]
    """Score tags (4.0), best first."""
    aesthetic: tuple[str, ...]
    """Aesthetic tags (3.1), best first."""
    meta: tuple[str, ...]
    """Resolution meta tags rendered with the quality block (``absurdres``...)."""
    ratings: tuple[RatingTag, ...]
    periods: tuple[Period, ...]
    """Period tags (3.x); empty when the version uses ``year N`` tags."""
    year_range: tuple[int, int] | None
    """First and last ``year N`` tag (4.0), or None."""
    recommended_quality: tuple[str, ...]
    quality_placement: QualityPlacement
    """Where canonical rendering puts the quality block."""
    quality_anywhere_at_ends: bool
    """True when the card allows the quality block at the start or the end (3.x)."""
    rating_in_order: bool
    """True when the card's order has a rating slot after the series (4.0)."""
    negative_prompt: str
    defaults: GenerationDefaults
    resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS
    single_files: tuple[str, ...] = ()
    """Checkpoint files published in the hub repository."""
    order_text: str = ""
    """The card's tag-order template, for messages."""
    _quality_set: frozenset[str] = attrs.field(init=False, repr=False)
    _rating_map: Mapping[str, RatingTag] = attrs.field(init=False, repr=False)
    _period_map: Mapping[str, Period] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self, "_quality_set", frozenset(self.quality + self.score + self.aesthetic + self.meta)
        )
        object.__setattr__(self, "_rating_map", {r.tag: r for r in self.ratings})
        object.__setattr__(self, "_period_map", {p.tag: p for p in self.periods})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ModelVersion):
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    # -- vocabulary look-ups (keys are lower-case tag names) --

    def is_quality(self, key: str) -> bool:
        """Quality, score, aesthetic or meta tag of this version."""
        return key in self._quality_set

    def rating(self, key: str) -> RatingTag | None:
        """This version's rating entry for a tag, or None."""
        return self._rating_map.get(key)

    def is_year(self, key: str) -> bool:
        """Period tag (3.x) or ``year N`` in range (4.0)."""
        if self.year_range is None:
            return key in self._period_map
        return self.year_of(key) is not None

    def year_of(self, key: str) -> int | None:
        """The year a year/period tag stands for (a period's middle year), or None."""
        period = self._period_map.get(key)
        if period is not None:
            return period.middle
        if self.year_range is not None and key.startswith("year "):
            digits = key[5:]
            if len(digits) == 4 and digits.isdigit():
                year = int(digits)
                first, last = self.year_range
                if first <= year <= last:
                    return year
        return None

    def year_tag(self, year: int) -> str:
        """This version's tag for a year: ``year 2023``, or the period covering it (nearest)."""
        if self.year_range is not None:
            first, last = self.year_range
            return f"year {min(max(year, first), last)}"
        for period in self.periods:
            if period.first <= year <= period.last:
                return period.tag
        newest = max(self.periods, key=lambda p: p.last)
        oldest = min(self.periods, key=lambda p: p.first)
        return newest.tag if year > newest.last else oldest.tag

    def rating_tag(self, level: RatingLevel) -> str:
        """This version's (first) tag for a rating level.

        Raises:
            InvalidArgumentError: ``level`` is not one of :data:`RATING_LEVELS`.
        """
        if level not in RATING_LEVELS:
            raise InvalidArgumentError(
                f"rating level must be one of {', '.join(RATING_LEVELS)}, got {level!r}"
            )
        for entry in self.ratings:
            if entry.level == level:
                return entry.tag
        raise AssertionError(f"{self.name} has no {level} rating")  # every version has all four

    @property
    def quality_tiers(self) -> tuple[str, ...]:
        """Quality tags by tier for conversion, 7 tiers (masterpiece .. worst)."""
        return _TIERS[self.name]

    @property
    def special_tags(self) -> frozenset[str]:
        """Every special tag of this version (quality, score, aesthetic, meta, rating, period)."""
        return self._quality_set | self._rating_map.keys() | self._period_map.keys()


_V3_NEGATIVE: Final = (
    "nsfw, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, "
    "fewer digits, "
    "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
    "username, blurry, artist name"
)
_V31_NEGATIVE: Final = (
    "nsfw, lowres, (bad), text, error, fewer, extra, missing, worst quality, jpeg artifacts, "
    "low quality, watermark, unfinished, displeasing, oldest, early, chromatic aberration, "
    "signature, extra digits, artistic error, username, scan, [abstract]"
)
_V4_NEGATIVE: Final = (
    "lowres, bad anatomy, bad hands, text, error, missing finger, extra digits, fewer digits, "
    "cropped, worst quality, low quality, low score, bad score, average score, signature, "
    "watermark, username, blurry"
)
_META: Final = ("absurdres", "highres", "lowres")

# Seven conversion tiers, best to worst. A slot is the version's tag for that tier.
_TIERS: Final[Mapping[str, tuple[str, ...]]] = {
    "v3": (
        "masterpiece", "best quality", "high quality", "medium quality", "normal quality",
        "low quality", "worst quality",
    ),
    "v3.1": (
        "masterpiece", "best quality", "great quality", "good quality", "normal quality",
        "low quality", "worst quality",
    ),
    "v4": (
        "masterpiece", "best quality", "great score", "good score", "average score",
        "low quality", "worst quality",
    ),
}  # fmt: skip

VERSIONS: Final[tuple[ModelVersion, ...]] = (
    ModelVersion(
        name="v3",
        title="Animagine XL 3.0",
        hub_ids=("cagliostrolab/animagine-xl-3.0", "Linaqruf/animagine-xl-3.0"),
        aliases=("3", "3.0", "v3.0", "xl3", "animagine-xl-3.0"),
        quality=_TIERS["v3"],
        score=(),
        aesthetic=(),
        meta=_META,
        ratings=(
            RatingTag("rating: general", "general"),
            RatingTag("rating: sensitive", "sensitive"),
            RatingTag("rating: questionable", "questionable", ("nsfw",)),
            RatingTag("rating: explicit", "explicit", ("nsfw",)),
        ),
        periods=(
            Period("newest", 2022, 2023),
            Period("late", 2019, 2021),
            Period("mid", 2015, 2018),
            Period("early", 2011, 2014),
            Period("oldest", 2005, 2010),
        ),
        year_range=None,
        recommended_quality=("masterpiece", "best quality"),
        quality_placement="start",
        quality_anywhere_at_ends=True,
        rating_in_order=False,
        negative_prompt=_V3_NEGATIVE,
        defaults=GenerationDefaults(
            guidance_scale=7.0, steps=28, vae="madebyollin/sdxl-vae-fp16-fix"
        ),
        single_files=("animagine-xl-3.0.safetensors",),
        order_text="1girl/1boy, character, series, everything else",
    ),
    ModelVersion(
        name="v3.1",
        title="Animagine XL 3.1",
        hub_ids=("cagliostrolab/animagine-xl-3.1",),
        aliases=("3.1", "v3.1", "xl3.1", "animagine-xl-3.1"),
        quality=_TIERS["v3.1"],
        score=(),
        aesthetic=("very aesthetic", "aesthetic", "displeasing", "very displeasing"),
        meta=_META,
        ratings=(
            RatingTag("safe", "general"),
            RatingTag("general", "general"),
            RatingTag("sensitive", "sensitive"),
            RatingTag("nsfw", "questionable"),
            RatingTag("explicit", "explicit", ("nsfw",)),
        ),
        periods=(
            Period("newest", 2021, 2024),
            Period("recent", 2018, 2020),
            Period("mid", 2015, 2017),
            Period("early", 2011, 2014),
            Period("oldest", 2005, 2010),
        ),
        year_range=None,
        recommended_quality=("masterpiece", "best quality", "very aesthetic", "absurdres"),
        # The 3.1 card says "prepend" but its own examples and the official demo append; we
        # follow what the demo sends to the model (see docs/guide/v3.1.md).
        quality_placement="end",
        quality_anywhere_at_ends=True,
        rating_in_order=False,
        negative_prompt=_V31_NEGATIVE,
        defaults=GenerationDefaults(
            guidance_scale=7.0, steps=28, vae="madebyollin/sdxl-vae-fp16-fix"
        ),
        single_files=("animagine-xl-3.1.safetensors",),
        order_text="1girl/1boy, character, series, everything else",
    ),
    ModelVersion(
        name="v4",
        title="Animagine XL 4.0",
        hub_ids=(
            "cagliostrolab/animagine-xl-4.0",
            "cagliostrolab/animagine-xl-4.0-zero",
        ),
        aliases=(
            "4", "4.0", "v4.0", "4.0-opt", "4.0-zero", "v4-opt", "v4-zero", "opt", "zero",
            "anim4gine", "animagine-xl-4.0", "animagine-xl-4.0-opt", "animagine-xl-4.0-zero",
        ),
        quality=("masterpiece", "best quality", "low quality", "worst quality"),
        score=(
            "high score", "great score", "good score", "average score", "bad score", "low score",
        ),
        aesthetic=(),
        meta=_META,
        ratings=(
            RatingTag("safe", "general"),
            RatingTag("sensitive", "sensitive"),
            RatingTag("nsfw", "questionable"),
            RatingTag("explicit", "explicit"),
        ),
        periods=(),
        year_range=(2005, 2025),
        recommended_quality=("masterpiece", "high score", "great score", "absurdres"),
        quality_placement="end",
        quality_anywhere_at_ends=False,
        rating_in_order=True,
        negative_prompt=_V4_NEGATIVE,
        defaults=GenerationDefaults(
            guidance_scale=5.0, steps=28, guidance_range=(4.0, 7.0), max_steps_recommended=28
        ),
        single_files=("animagine-xl-4.0.safetensors", "animagine-xl-4.0-opt.safetensors"),
        order_text=(
            "1girl/1boy/1other, character, series, rating, everything else, quality tags last"
        ),
    ),
)  # fmt: skip


def _index() -> dict[str, ModelVersion]:
    table: dict[str, ModelVersion] = {}
    for version in VERSIONS:
        for key in (version.name, version.title, *version.aliases, *version.hub_ids,
                    *version.single_files):  # fmt: skip
            table[key.lower()] = version
    return table


_BY_NAME: Final = _index()

#: Suffixes of model weight files: a checkpoint named like a version names that version
#: (``animagine-xl-4.0-opt.ckpt``). Pickle formats included; whether they may be loaded is the
#: loaders' business.
WEIGHT_FILE_SUFFIXES: Final = frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".pkl"})


def get_version(name: str | ModelVersion) -> ModelVersion:
    """Look up a model version by name, alias, hub id or checkpoint file name.

    ``"v3"`` / ``"3.0"`` (Animagine XL 3.0), ``"v3.1"``, ``"v4"`` / ``"4.0"`` (4.0, and its Opt and
    Zero variants), hub ids such as ``"cagliostrolab/animagine-xl-4.0"``, or file names such as
    ``"animagine-xl-4.0-opt.safetensors"`` (any weight-file suffix: ``.ckpt`` too). Case does
    not matter.

    Raises:
        WrongTypeError: ``name`` is not a str or ModelVersion (a ``TypeError``).
        UnknownVersionError: nobody knows that name.
    """
    if isinstance(name, ModelVersion):
        return name
    if not isinstance(name, str):
        raise WrongTypeError(f"version must be a str or ModelVersion, got {type(name).__name__}")
    key = name.strip().lower()
    found = _BY_NAME.get(key)
    if found is None:
        # Paths and hub-id-like names: look at the last component.
        tail = key.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        found = _BY_NAME.get(tail)
        stem, dot, suffix = tail.rpartition(".")
        if found is None and dot and dot + suffix in WEIGHT_FILE_SUFFIXES:
            found = _BY_NAME.get(stem)
    if found is None:
        known = ", ".join(repr(v.name) for v in VERSIONS)
        raise UnknownVersionError(
            f"unknown Animagine XL version {name!r}; known versions are {known} "
            "(aliases such as '4.0' and hub ids work too)"
        )
    return found
