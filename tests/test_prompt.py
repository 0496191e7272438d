"""Prompt: parsing, classification, canonical rendering, conversion, serialisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import prompt_texts

import animagine
from animagine import (
    BREAK,
    AnimagineError,
    Prompt,
    PromptOrderError,
    PromptSyntaxError,
    Tag,
    TagDatabase,
    UnknownVersionError,
)
from animagine.core import MAX_PROMPT_CHARS
from animagine.errors import InvalidArgumentError, PromptTooLongError, WrongTypeError

CARDS = json.loads((Path(__file__).parent / "data" / "prompts" / "cards.json").read_text("utf-8"))


def names(tags: Any) -> list[str] | str | None:
    if tags is None or isinstance(tags, Tag):
        return None if tags is None else tags.name
    return [tag.name for tag in tags]


@pytest.mark.parametrize("card", CARDS, ids=[c["card"] for c in CARDS])
def test_model_card_examples(card: dict[str, Any]) -> None:
    prompt = Prompt.parse(card["text"], version=card["version"], strict=False)
    assert str(prompt) == card["canonical"]
    for field in ("subjects", "characters", "series", "rating", "year", "quality"):
        assert names(getattr(prompt, field)) == card[field], field
    # The canonical form is strict-clean and a fixed point.
    again = Prompt.parse(str(prompt), version=card["version"], strict=True)
    assert again == prompt


def test_any_order_is_put_in_training_order_v4() -> None:
    text = "masterpiece, smile, year 2023, safe, oshi no ko, arima kana, 1girl, high score"
    prompt = Prompt.parse(text)
    # Characters and series keep the order they were written in (they may interleave).
    assert str(prompt) == (
        "1girl, oshi no ko, arima kana, safe, smile, year 2023, masterpiece, high score"
    )


def test_quality_placement_per_version() -> None:
    text = "1girl, smile, masterpiece, best quality"
    # 3.0's card text prepends them and its examples append them: both are in order.
    assert str(Prompt.parse(text, version="v3")) == text
    assert str(Prompt.parse("1girl, masterpiece, arima kana", version="v3")) == (
        "1girl, arima kana, masterpiece"
    )
    assert str(Prompt.parse(text, version="v3.1")) == "1girl, smile, masterpiece, best quality"
    assert str(Prompt.parse(text, version="v4")) == "1girl, smile, masterpiece, best quality"


def test_special_tags_are_version_specific() -> None:
    v31 = Prompt.parse("1girl, newest, very aesthetic, sensitive", version="v3.1")
    assert names(v31.year) == "newest"
    assert names(v31.quality) == ["very aesthetic"]
    assert names(v31.rating) == "sensitive"
    v3 = Prompt.parse("1girl, late, rating: sensitive, high quality", version="v3")
    assert (names(v3.year), names(v3.rating), names(v3.quality)) == (
        "late", "rating: sensitive", ["high quality"],
    )  # fmt: skip
    v4 = Prompt.parse("1girl, year 2005, year 2025, year 2026")
    assert names(v4.year) == "year 2005"
    assert names(v4.years) == ["year 2005", "year 2025"]  # a second year stays a year
    assert names(v4.general) == ["year 2026"]  # out of 4.0's range: not a year tag


def test_foreign_special_tags_go_to_their_slot() -> None:
    prompt = Prompt.parse("rating: general, 1girl, very aesthetic, newest", version="v4")
    assert names(prompt.rating) == "rating: general"
    assert names(prompt.quality) == ["very aesthetic"]
    assert names(prompt.year) == "newest"
    with pytest.raises(PromptOrderError) as caught:
        Prompt.parse("1girl, rating: general", version="v4", strict=True)
    assert caught.value.code == "wrong-version"
    assert caught.value.column == 8


def test_rating_companions_are_not_conflicts() -> None:
    v3 = Prompt.parse("1girl, rating: questionable, nsfw", version="v3", strict=True)
    assert names(v3.rating) == "rating: questionable"
    assert names(v3.general) == ["nsfw"]
    v31 = Prompt.parse("1girl, explicit, nsfw", version="v3.1", strict=True)
    assert names(v31.rating) == "explicit"
    assert names(v31.general) == ["nsfw"]
    swapped = Prompt.parse("1girl, nsfw, explicit", version="v3.1")
    assert names(swapped.rating) == "explicit"


def test_conflicting_ratings_keep_the_first_and_lose_nothing() -> None:
    prompt = Prompt.parse("1girl, safe, explicit, smile")
    assert names(prompt.rating) == "safe"
    assert names(prompt.ratings) == ["safe", "explicit"]
    assert names(prompt.general) == ["smile"]
    assert str(prompt) == "1girl, safe, explicit, smile"
    with pytest.raises(PromptOrderError, match="second rating 'explicit'") as caught:
        Prompt.parse("1girl, safe, explicit, smile", strict=True)
    assert caught.value.code == "rating-conflict"


def test_strict_order_errors_point_at_the_tag() -> None:
    with pytest.raises(PromptOrderError) as caught:
        Prompt.parse("smile, 1girl", strict=True)
    error = caught.value
    assert error.code == "order"
    assert (error.line, error.column) == (1, 1)
    assert "general tag 'smile' goes after subject tags in Animagine XL 4.0" in str(error)
    assert isinstance(error, PromptSyntaxError)
    with pytest.raises(PromptOrderError, match="'masterpiece' goes after subject tags"):
        Prompt.parse("masterpiece, 1girl", version="v4", strict=True)
    # 3.x takes quality tags first, or among everything else after the identity.
    Prompt.parse("masterpiece, 1girl, smile", version="v3.1", strict=True)
    Prompt.parse("1girl, smile, masterpiece", version="v3", strict=True)
    Prompt.parse("1girl, masterpiece, smile", version="v3", strict=True)
    with pytest.raises(PromptOrderError, match="'masterpiece' goes first or among general"):
        Prompt.parse("1girl, masterpiece, arima kana", version="v3", strict=True)


def test_position_fallback_without_a_database() -> None:
    empty = TagDatabase.empty()
    prompt = Prompt.parse("1girl, my oc, my world, safe, smile", database=empty)
    assert names(prompt.characters) == ["my oc"]
    assert names(prompt.series) == ["my world"]
    qualified = Prompt.parse("1girl, a \\(b\\), c \\(b\\), b, sensitive, smile", database=empty)
    assert names(qualified.characters) == ["a (b)", "c (b)"]
    assert names(qualified.series) == ["b"]
    # No rating: no way to tell where identity ends, so everything is general.
    assert names(Prompt.parse("1girl, my oc, smile", database=empty).characters) == []


def test_user_database_plugs_in() -> None:
    mine = TagDatabase.default() | TagDatabase.from_names(characters=["my oc"])
    assert names(Prompt.parse("1girl, my oc, smile", database=mine).characters) == ["my oc"]


def test_break_is_kept_and_rendered_back() -> None:
    text = "1girl, arima kana, safe, smile BREAK outdoors, night, masterpiece"
    prompt = Prompt.parse(text)
    assert prompt.general == (Tag("smile"), Tag("outdoors"), Tag("night"))
    assert prompt.tags[3:5] == (Tag("smile"), BREAK)
    assert prompt.slots[3:5] == ("general", "break")
    assert str(prompt) == text
    assert Prompt.parse(str(prompt)) == prompt
    leading = Prompt.parse("BREAK 1girl, safe BREAK smile")
    assert leading.tags == (BREAK, Tag("1girl"), Tag("safe"), BREAK, Tag("smile"))
    assert str(leading) == "BREAK 1girl, safe BREAK smile"
    # A BREAK travels with the tag after it, whose chunk it opens.
    moved = Prompt.parse("smile BREAK night, 1girl")
    assert str(moved) == "1girl, smile BREAK night"
    assert str(Prompt.parse("safe BREAK smile, arima kana")) == "arima kana, safe BREAK smile"
    assert str(Prompt.parse("smile, safe BREAK")) == "safe, smile BREAK"


def test_weights_and_escapes_round_trip() -> None:
    text = "1girl, (hoshimachi suisei \\(1st costume\\):1.2), [blush], ((smile)), (a, b:0.8)"
    prompt = Prompt.parse(text)
    assert str(prompt) == (
        "1girl, (hoshimachi suisei \\(1st costume\\):1.2), (blush:0.9091), (smile:1.21), "
        "(a:0.8), (b:0.8)"
    )
    assert Prompt.parse(str(prompt)) == prompt


def test_unescaped_qualifier_renders_escaped() -> None:
    prompt = Prompt.parse("1girl, firefly (honkai: star rail), safe")
    assert str(prompt) == "1girl, firefly \\(honkai: star rail\\), safe"


def test_constructing_from_strings() -> None:
    prompt = Prompt(
        subjects=["1girl"], characters=["arima_kana"], series=["oshi no ko"], rating="safe",
        general=["smile", Tag("night", 1.2)], quality=["masterpiece"],
    )  # fmt: skip
    assert str(prompt) == "1girl, arima kana, oshi no ko, safe, smile, (night:1.2), masterpiece"
    assert prompt.version == animagine.get_version("4.0")
    assert Prompt.parse(str(prompt)) == prompt


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"subjects": "1girl"}, TypeError, "write \\['1girl'\\]"),
        ({"general": [1]}, TypeError, "Tag name must be a str"),
        ({"general": ["a, b"]}, ValueError, "must not contain ','"),
        ({"general": [""]}, ValueError, "must not be empty"),
        ({"rating": "BREAK"}, ValueError, "BREAK cannot be a rating"),
        ({"version": "v9"}, UnknownVersionError, "unknown Animagine XL version 'v9'"),
        ({"year": 2024}, TypeError, "Tag name must be a str"),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Prompt(**kwargs)


def test_prompts_are_immutable() -> None:
    prompt = Prompt(subjects=["1girl"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        prompt.subjects = ()  # type: ignore[misc]
    changed = attrs.evolve(prompt, general=["smile"])
    assert str(changed) == "1girl, smile"
    assert str(prompt) == "1girl"


def test_with_quality_tags_adds_missing_recommended_tags() -> None:
    prompt = Prompt.parse("1girl, smile, masterpiece")
    assert str(prompt.with_quality_tags()) == (
        "1girl, smile, masterpiece, high score, great score, absurdres"
    )
    v3 = Prompt.parse("1girl", version="v3").with_quality_tags()
    assert str(v3) == "masterpiece, best quality, 1girl"


def test_convert_between_versions() -> None:
    v4 = Prompt.parse(
        "1girl, arima kana, oshi no ko, sensitive, smile, year 2020, masterpiece, high score, "
        "great score, absurdres"
    )
    # 3.0 takes the quality tags first or among everything else: they stay at the end.
    assert str(v4.convert("v3")) == (
        "1girl, arima kana, oshi no ko, rating: sensitive, smile, late, masterpiece, "
        "best quality, high quality, absurdres"
    )
    assert str(v4.convert("v3.1")) == (
        "1girl, arima kana, oshi no ko, sensitive, smile, recent, masterpiece, best quality, "
        "great quality, absurdres"
    )
    back = animagine.convert(
        "1girl, rating: explicit, nsfw, newest, masterpiece, best quality, medium quality",
        source="v3", to="v4",
    )  # fmt: skip
    assert back == "1girl, explicit, year 2023, masterpiece, best quality, good score"


@pytest.mark.parametrize(
    ("text", "source", "target", "expected"),
    [
        ("1girl, rating: questionable, nsfw", "v3", "v4", "1girl, nsfw"),
        ("1girl, rating: explicit, nsfw, smile", "v3", "v4", "1girl, explicit, smile"),
        ("1girl, explicit, nsfw", "v3.1", "v4", "1girl, explicit"),
        ("1girl, explicit, smile", "v4", "v3", "1girl, rating: explicit, nsfw, smile"),
        ("1girl, explicit, smile", "v4", "v3.1", "1girl, explicit, nsfw, smile"),
        ("1girl, safe, masterpiece, high score, great score", "v4", "v4",
         "1girl, safe, masterpiece, high score, great score"),
        ("1girl, newest, great quality", "v3.1", "v3.1", "1girl, newest, great quality"),
    ],
)  # fmt: skip
def test_rating_companions_travel_and_own_tags_stay(
    text: str, source: str, target: str, expected: str
) -> None:
    converted = animagine.convert(text, source=source, to=target)
    assert converted == expected
    assert animagine.lint(converted, version=target) == []


def test_convert_keeps_what_has_no_equivalent_and_lint_reports_it() -> None:
    converted = animagine.convert(
        "1girl, very aesthetic, (displeasing:0.8)", source="v3.1", to="v4"
    )
    assert converted == "1girl, very aesthetic, (displeasing:0.8)"
    codes = [d.code for d in animagine.lint(converted, version="v4")]
    assert codes.count("wrong-version") == 2


def test_convert_keeps_weights() -> None:
    prompt = Prompt.parse("1girl, (safe:1.2), (masterpiece:1.3)").convert("v3")
    assert prompt.rating == Tag("rating: general", 1.2)
    assert prompt.quality == (Tag("masterpiece", 1.3),)


def test_json_round_trip() -> None:
    prompt = Prompt.parse(
        "1girl, arima kana, oshi no ko, safe, (smile:1.2), year 2024, masterpiece"
    )
    data = json.loads(json.dumps(prompt.to_json()))
    assert data["characters"] == ["arima kana"]
    assert data["tags"][4] == {"slot": "general", "name": "smile", "weight": 1.2,
                               "text": "(smile:1.2)"}  # fmt: skip
    assert Prompt.from_json(data) == prompt
    with pytest.raises(ValueError, match="not a serialised Prompt"):
        Prompt.from_json({"subjects": []})


def test_parse_rejects_non_str() -> None:
    with pytest.raises(WrongTypeError, match="prompt must be a str"):
        Prompt.parse(None)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="version must be a str"):
        Prompt.parse("1girl", version=4)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="database must be a TagDatabase"):
        Prompt.parse("1girl", database={"arima kana": "character"})  # type: ignore[arg-type]


def test_parse_size_limit() -> None:
    at_limit = ("smile, " * MAX_PROMPT_CHARS)[:MAX_PROMPT_CHARS]
    assert Prompt.parse(at_limit).general == (Tag("smile"),) * (MAX_PROMPT_CHARS // 7 + 1)
    with pytest.raises(PromptTooLongError, match="the limit is 100,000"):
        Prompt.parse(at_limit + "x")
    with pytest.raises(PromptTooLongError):
        animagine.convert(at_limit + "x", to="v3")


def test_with_quality_tags_wants_a_list() -> None:
    prompt = Prompt.parse("1girl")
    with pytest.raises(WrongTypeError, match="write \\['masterpiece'\\]"):
        prompt.with_quality_tags("masterpiece")
    assert prompt.with_quality_tags(["masterpiece"]).quality == (Tag("masterpiece"),)


@pytest.mark.parametrize(
    "data",
    [{}, {"subjects": []}, {"version": "v4", "rating": "safe"}, {"version": "v4", "general": [1]}],
)
def test_from_json_rejects_other_data(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="not a serialised Prompt"):
        Prompt.from_json(data)


# -- properties --------------------------------------------------------------------------------

GENERAL = [
    "smile", "long hair", "looking at viewer", "blue eyes", "outdoors", "night", "v", "solo",
    "upper body", "school uniform", "holding sword", ":d", "^_^", "a\\b", "star (symbol)",
    "hair ornament", "from side", "cherry blossoms",
]  # fmt: skip
CHARACTERS = ["arima kana", "hatsune miku", "firefly (honkai: star rail)", "hoshimachi suisei"]
SERIES = ["oshi no ko", "vocaloid", "honkai: star rail", "hololive"]
weights = st.sampled_from([1.0, 1.0, 1.0, 1.1, 1.21, 0.9091, 0.5, 1.5, 2.0])


def tag_lists(pool: list[str], max_size: int) -> st.SearchStrategy[list[Tag]]:
    return st.lists(st.builds(Tag, st.sampled_from(pool), weights), max_size=max_size)


@st.composite
def prompts(draw: st.DrawFn) -> Prompt:
    version = animagine.get_version(draw(st.sampled_from(["v3", "v3.1", "v4"])))
    quality_pool = list(version.quality + version.score + version.aesthetic + version.meta)
    ratings = [r.tag for r in version.ratings]
    years = (
        [p.tag for p in version.periods]
        if version.year_range is None
        else [f"year {y}" for y in range(2005, 2026)]
    )
    general = draw(tag_lists(GENERAL, 8))
    if len(general) >= 2 and draw(st.booleans()):
        # Inside a slot: a BREAK on a slot's edge renders the same wherever it is stored, and
        # is read back at the end of the slot before it (test_break_is_kept_and_rendered_back).
        general.insert(draw(st.integers(1, len(general) - 1)), BREAK)
    return Prompt(
        version=version,
        subjects=draw(tag_lists(["1girl", "2girls", "1boy", "1other", "multiple girls"], 2)),
        characters=draw(tag_lists(CHARACTERS, 2)),
        series=draw(tag_lists(SERIES, 2)),
        rating=draw(st.none() | st.builds(Tag, st.sampled_from(ratings), weights)),
        general=general,
        year=draw(st.none() | st.builds(Tag, st.sampled_from(years), weights)),
        quality=draw(tag_lists(quality_pool, 4)),
    )


@settings(max_examples=400, deadline=None)
@given(prompts())
def test_round_trip_law(prompt: Prompt) -> None:
    assert Prompt.parse(str(prompt), version=prompt.version) == prompt


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["v3", "v3.1", "v4"]), st.booleans())
def test_arbitrary_text_raises_only_animagine_errors(text: str, version: str, strict: bool) -> None:
    try:
        prompt = Prompt.parse(text, version=version, strict=strict)
    except AnimagineError:
        return
    # Whatever parses renders to text that parses to the same prompt.
    assert Prompt.parse(str(prompt), version=version) == prompt


# -- the order: as little movement as the version's grammar allows -----------------------------


def test_two_periods_in_the_official_negative_prompt_keep_their_order() -> None:
    # The 3.1 negative prompt names two periods, `oldest, early`; they are not swapped.
    text = animagine.get_version("v3.1").negative_prompt
    prompt = Prompt.parse(text, version="v3.1")
    assert names(prompt.years) == ["oldest", "early"]
    assert "displeasing, oldest, early, chromatic aberration" in str(prompt)
    assert Prompt.parse(str(prompt), version="v3.1") == prompt


def test_characters_and_series_stay_interleaved_as_written() -> None:
    text = "1girl, arima kana, oshi no ko, hatsune miku, vocaloid, safe, smile"
    prompt = Prompt.parse(text)
    assert str(prompt) == text
    assert names(prompt.characters) == ["arima kana", "hatsune miku"]
    assert names(prompt.series) == ["oshi no ko", "vocaloid"]
    # Only what the order needs moves: the series after the general tag comes forward.
    moved = Prompt.parse("1girl, arima kana, smile, oshi no ko")
    assert str(moved) == "1girl, arima kana, oshi no ko, smile"


def test_focus_tags_stay_with_the_subject_tags() -> None:
    for focus in ("male focus", "female focus", "other focus", "solo focus"):
        text = f"1boy, {focus}, smile, masterpiece"
        prompt = Prompt.parse(text)
        assert str(prompt) == text
        assert names(prompt.subjects) == ["1boy", focus]
    assert str(Prompt.parse("1boy, smile, male focus")) == "1boy, male focus, smile"


def test_several_years_and_ratings_keep_their_source_order() -> None:
    # Rendering them in another order would swap which one reads back as the first.
    for text, version in [
        ("1girl, newest, mid", "v3"),
        ("1girl, mid, newest", "v3"),
        ("1girl, smile, year 2020, year 2015", "v4"),
        ("1girl, explicit, safe, smile", "v4"),
        ("1girl, oldest, early, smile", "v3.1"),
    ]:
        prompt = Prompt.parse(text, version=version)
        assert str(prompt) == text
        assert Prompt.parse(str(prompt), version=version) == prompt


def test_from_tags_reads_names_literally() -> None:
    prompt = Prompt.from_tags(
        ["smile", "jeanne_d'arc_alter_(avenger)_(fate)", "1girl", "(smile:1.2)"]
    )
    assert prompt.tags == (
        Tag("1girl"), Tag("jeanne d'arc alter (avenger) (fate)"), Tag("smile"), Tag("(smile:1.2)"),
    )  # fmt: skip
    assert prompt.characters == (Tag("jeanne d'arc alter (avenger) (fate)"),)
    assert prompt.slots[0] == "subject"
    with pytest.raises(WrongTypeError):
        Prompt.from_tags("1girl, smile")


def test_tags_and_slots_build_a_prompt_in_order() -> None:
    prompt = Prompt(tags=["smile", "1girl"], slots=["general", "subject"])
    assert prompt.tags == (Tag("1girl"), Tag("smile"))
    assert prompt.slots == ("subject", "general")
    with pytest.raises(InvalidArgumentError, match="differ in length"):
        Prompt(tags=["smile"], slots=[])
    with pytest.raises(InvalidArgumentError, match="unknown slot 'nope'"):
        Prompt(tags=["smile"], slots=["nope"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="BREAK goes with the slot 'break'"):
        Prompt(tags=[BREAK], slots=["general"])
    with pytest.raises(InvalidArgumentError, match="together"):
        Prompt(tags=["smile"])
    with pytest.raises(InvalidArgumentError, match="rating= or ratings="):
        Prompt(rating="safe", ratings=["safe"])


def test_evolve_replaces_one_slot_where_it_stood() -> None:
    prompt = Prompt.parse("1girl, arima kana, oshi no ko, safe, smile, night, masterpiece")
    changed = attrs.evolve(prompt, general=["frown"], rating="explicit")
    assert str(changed) == "1girl, arima kana, oshi no ko, explicit, frown, masterpiece"
    assert str(attrs.evolve(prompt, rating=None)) == (
        "1girl, arima kana, oshi no ko, smile, night, masterpiece"
    )
    assert attrs.evolve(prompt) == prompt


# -- the round-trip law on text nobody here wrote nicely ----------------------------------------

_VOCABULARY = sorted(
    {
        key
        for version in animagine.VERSIONS
        for key in (
            *version.special_tags,
            *(c for r in version.ratings for c in r.companions),
            *(p.tag for p in version.periods),
        )
    }
    | {"year 2004", "year 2015", "year 2025", "year 2026"}
    | {"1girl", "2girls", "1boy", "6+boys", "1other", "multiple girls", "male focus", "solo focus"}
    | {"arima kana", "hatsune miku", "hoshimachi suisei \\(1st costume\\)", "saber"}
    | {"oshi no ko", "vocaloid", "hololive", "honkai: star rail", "honkai \\(series\\)"}
    | {"smile", "long hair", "sole_female", "longhair", "absurdes", "qwxzv"}
)


@st.composite
def special_prompts(draw: st.DrawFn) -> str:
    """Prompts that stress ordering: every version's special tags, repeated, among any text."""
    items = draw(
        st.lists(
            st.one_of(
                st.sampled_from(_VOCABULARY),
                st.sampled_from(_VOCABULARY).map(lambda t: f"({t}:1.2)"),
                st.sampled_from(_VOCABULARY).map(lambda t: f"[{t}]"),
                prompt_texts(),
            ),
            max_size=12,
        )
    )
    separators = st.sampled_from([", ", ",", "\n", " BREAK ", ", "])
    out: list[str] = []
    for item in items:
        if out:
            out.append(draw(separators))
        out.append(item)
    return "".join(out)


@settings(max_examples=600, deadline=None)
@given(st.one_of(prompt_texts(), special_prompts()), st.sampled_from(["v3", "v3.1", "v4"]))
def test_round_trip_law_on_the_grammar_alphabet(text: str, version: str) -> None:
    """``Prompt.parse(str(p), version=p.version) == p`` for whatever parses."""
    try:
        prompt = Prompt.parse(text, version=version)
    except AnimagineError:
        return
    rendered = str(prompt)
    again = Prompt.parse(rendered, version=version)
    assert again == prompt, (text, rendered)
    assert str(again) == rendered
    assert Prompt.from_json(json.loads(json.dumps(prompt.to_json()))) == prompt


@settings(max_examples=300, deadline=None)
@given(st.one_of(prompt_texts(), special_prompts()), st.sampled_from(["v3", "v3.1", "v4"]))
def test_canonical_text_is_strict_clean(text: str, version: str) -> None:
    """What ``str()`` writes is in the version's order: strict parsing accepts its order."""
    try:
        prompt = Prompt.parse(text, version=version)
    except AnimagineError:
        return
    found = [d.code for d in animagine.lint(str(prompt), version=version)]
    assert "order" not in found
