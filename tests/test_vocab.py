"""Model versions and their data."""

from __future__ import annotations

import pytest

from animagine import VERSIONS, UnknownVersionError, get_version


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("v3", "v3"), ("3.0", "v3"), ("Linaqruf/animagine-xl-3.0", "v3"),
        ("cagliostrolab/animagine-xl-3.1", "v3.1"), ("3.1", "v3.1"),
        ("v4", "v4"), ("4.0", "v4"), ("cagliostrolab/animagine-xl-4.0", "v4"),
        ("cagliostrolab/animagine-xl-4.0-zero", "v4"), ("V4-Opt", "v4"),
        ("/models/animagine-xl-4.0-opt.safetensors", "v4"), ("Animagine XL 3.1", "v3.1"),
    ],
)  # fmt: skip
def test_get_version(name: str, expected: str) -> None:
    assert get_version(name).name == expected


def test_unknown_version() -> None:
    with pytest.raises(UnknownVersionError, match=r"'v5'.*'v3', 'v3\.1', 'v4'"):
        get_version("v5")
    with pytest.raises(TypeError):
        get_version(4)  # type: ignore[arg-type]


def test_vocabularies_match_the_model_cards() -> None:
    v3, v31, v4 = (get_version(n) for n in ("v3", "v3.1", "v4"))
    assert v3.quality == (
        "masterpiece", "best quality", "high quality", "medium quality", "normal quality",
        "low quality", "worst quality",
    )  # fmt: skip
    assert v31.quality[2:4] == ("great quality", "good quality")
    assert v4.quality == ("masterpiece", "best quality", "low quality", "worst quality")
    assert v4.score == (
        "high score", "great score", "good score", "average score", "bad score", "low score",
    )  # fmt: skip
    assert v31.aesthetic == ("very aesthetic", "aesthetic", "displeasing", "very displeasing")
    assert [(p.tag, p.first, p.last) for p in v3.periods] == [
        ("newest", 2022, 2023), ("late", 2019, 2021), ("mid", 2015, 2018),
        ("early", 2011, 2014), ("oldest", 2005, 2010),
    ]  # fmt: skip
    assert [p.tag for p in v31.periods] == ["newest", "recent", "mid", "early", "oldest"]
    assert v4.year_range == (2005, 2025)
    assert [r.tag for r in v3.ratings] == [
        "rating: general", "rating: sensitive", "rating: questionable", "rating: explicit",
    ]  # fmt: skip
    assert [r.tag for r in v4.ratings] == ["safe", "sensitive", "nsfw", "explicit"]
    assert v3.recommended_quality == ("masterpiece", "best quality")
    assert v31.recommended_quality == ("masterpiece", "best quality", "very aesthetic", "absurdres")
    assert v4.recommended_quality == ("masterpiece", "high score", "great score", "absurdres")
    assert v4.negative_prompt.startswith(
        "lowres, bad anatomy, bad hands, text, error, missing finger,"
    )
    assert "[abstract]" in v31.negative_prompt
    assert v3.negative_prompt.endswith("blurry, artist name")
    assert (v3.defaults.guidance_scale, v4.defaults.guidance_scale) == (7.0, 5.0)
    assert all(v.defaults.steps == 28 and v.defaults.sampler == "Euler a" for v in VERSIONS)
    assert all((832, 1216) in v.resolutions and len(v.resolutions) == 9 for v in VERSIONS)
    assert v3.defaults.vae == "madebyollin/sdxl-vae-fp16-fix"
    assert v4.defaults.vae is None


def test_years() -> None:
    v3, v31, v4 = (get_version(n) for n in ("v3", "v3.1", "v4"))
    assert v4.year_of("year 2005") == 2005
    assert v4.year_of("year 2026") is None
    assert v3.year_of("mid") == 2017
    assert v31.year_tag(2024) == "newest"
    assert v3.year_tag(2025) == "newest"
    assert v3.year_tag(1999) == "oldest"
    assert v4.year_tag(1999) == "year 2005"


def test_versions_compare_by_name() -> None:
    assert get_version("4.0") == get_version("v4")
    assert get_version("v3") != get_version("v3.1")
    assert len({get_version("4.0"), get_version("v4")}) == 1


def test_checkpoint_files_of_any_weight_format_name_their_version() -> None:
    from animagine.core import WEIGHT_FILE_SUFFIXES

    for suffix in WEIGHT_FILE_SUFFIXES:
        assert get_version(f"models/Animagine-XL-4.0-Opt{suffix}").name == "v4"
        assert get_version(f"animagine-xl-3.1{suffix}").name == "v3.1"
    with pytest.raises(UnknownVersionError):
        get_version("animagine-xl-4.0.gguf")
    with pytest.raises(UnknownVersionError):
        get_version("x.ckpt")
