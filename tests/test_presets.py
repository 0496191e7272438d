"""Quality and style presets: the demos' texts and assembly, user presets, options, metadata."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import animagine
from animagine import GenerationArgumentError, MissingFileError, get_version
from animagine.apps.cli import COMMANDS, build_parser, main
from animagine.core import Preset, PresetTable, presets_for
from animagine.generation import GenerationOptions, plan_generation
from animagine.metadata import GenerationParameters

VERSIONS = ("v3", "v3.1", "v4")

# --- the demos' assembly, written out as the demos' app.py do it (FACTS: "Official demos") ---


def _fill(template: str, prompt: str) -> str:
    return template.format(prompt=prompt) if prompt.strip() else prompt


def demo_3_1(prompt: str, negative: str, quality: Preset, style: Preset) -> tuple[str, str]:
    """3.1: quality, then style; negative = style, quality, user (non-empty parts, ", ")."""
    positive = _fill(style.prompt, _fill(quality.prompt, prompt))
    parts = [style.negative_prompt, quality.negative_prompt, negative]
    return positive, ", ".join(part for part in parts if part)


def demo_3_0(prompt: str, negative: str, quality: Preset, style: Preset) -> tuple[str, str]:
    """3.0: quality, then style; the negatives are concatenated as they are."""
    positive = _fill(style.prompt, _fill(quality.prompt, prompt))
    return positive, style.negative_prompt + quality.negative_prompt + negative


def demo_4_0(prompt: str, negative: str, add_quality: bool, style: Preset) -> tuple[str, str]:
    """4.0: the style, then ", masterpiece, high score, great score, absurdres" if asked."""
    positive = _fill(style.prompt, prompt)
    if add_quality and positive.strip():
        positive += ", masterpiece, high score, great score, absurdres"
    return positive, ", ".join(part for part in (style.negative_prompt, negative) if part)


def _every(version: str) -> list[tuple[str, str]]:
    table = presets_for(version)
    return [(q.name, s.name) for q in table.quality for s in table.style]


@pytest.mark.parametrize("prompt", ["1girl, arima kana, oshi no ko, smile", ""])
@pytest.mark.parametrize(("quality", "style"), _every("v3.1"))
def test_every_3_1_preset_pair_is_the_demos_assembly(prompt: str, quality: str, style: str) -> None:
    table = presets_for("v3.1")
    expected = demo_3_1(
        prompt, "bad hands", table.quality_preset(quality), table.style_preset(style)
    )
    assert table.apply(prompt, "bad hands", style=style, quality=quality) == expected


@pytest.mark.parametrize("prompt", ["1girl, frieren, sousou no frieren", ""])
@pytest.mark.parametrize(("quality", "style"), _every("v3"))
def test_every_3_0_preset_pair_is_the_demos_assembly(prompt: str, quality: str, style: str) -> None:
    table = presets_for("v3")
    expected = demo_3_0(prompt, "user", table.quality_preset(quality), table.style_preset(style))
    assert table.apply(prompt, "user", style=style, quality=quality) == expected


@pytest.mark.parametrize("prompt", ["1girl, hatsune miku", ""])
@pytest.mark.parametrize("add_quality", [True, False])
@pytest.mark.parametrize("style", [preset.name for preset in presets_for("v4").style])
def test_every_4_0_style_is_the_demos_assembly(prompt: str, add_quality: bool, style: str) -> None:
    table = presets_for("v4")
    negative = get_version("v4").negative_prompt
    expected = demo_4_0(prompt, negative, add_quality, table.style_preset(style))
    got = table.apply(
        prompt, negative, style=style, quality="Standard v4.0", quality_tags=add_quality
    )
    assert got == expected


def test_the_texts_are_the_demos() -> None:
    v3, v31, v4 = (presets_for(name) for name in VERSIONS)
    assert [p.name for p in v31.quality] == [
        "(None)", "Standard v3.0", "Standard v3.1", "Light v3.1", "Heavy v3.1",
    ]  # fmt: skip
    assert [p.name for p in v3.quality] == ["(None)", "Standard", "Light", "Heavy"]
    assert len(v31.style) == len(v3.style) == 10  # (None) and nine
    assert len(v4.style) == 14  # (None) and thirteen
    assert (v31.default_quality, v3.default_quality, v4.default_quality) == (
        "Standard v3.1", "Standard", "Standard v4.0",
    )  # fmt: skip
    assert {v31.default_style, v3.default_style, v4.default_style} == {"(None)"}
    standard = v31.quality_preset("Standard v3.1")
    assert standard.prompt == "{prompt}, masterpiece, best quality, very aesthetic, absurdres"
    assert standard.negative_prompt == get_version("v3.1").negative_prompt
    assert v31.quality_preset("Standard v3.0").negative_prompt == get_version("v3").negative_prompt
    assert v3.quality_preset("Standard").negative_prompt == get_version("v3").negative_prompt + ", "
    assert v3.quality_preset("Heavy").prompt.endswith(", intricate details, earrings")
    assert "very aesthetic" not in v3.quality_preset("Light").prompt
    assert "very displeasing" not in v3.quality_preset("Heavy").negative_prompt
    for table in (v3, v31):
        anime = table.style_preset("Anime")
        assert anime.prompt == (
            "{prompt}, anime artwork, anime style, key visual, vibrant, studio anime, highly"
            " detailed"
        )
    assert all(p.negative_prompt.endswith(", ") for p in v3.quality)
    assert v4.style_preset("Anim4gine").prompt == (
        "{prompt}, depth of field, faux traditional media, painterly, impressionism,"
        " photo background"
    )
    assert all(p.negative_prompt == "" for p in v4.style)


def test_unknown_preset_lists_the_versions_names() -> None:
    with pytest.raises(GenerationArgumentError) as caught:
        presets_for("v4").style_preset("Cinematic")
    message = str(caught.value)
    assert "unknown style preset 'Cinematic' for v4" in message
    assert "'Anim4gine'" in message
    assert "'Neonpunk'" in message
    with pytest.raises(GenerationArgumentError, match=r"'Standard v3\.1'"):
        presets_for("v3.1").quality_preset("Standard v5.0")
    assert presets_for("v4").style_preset("anim4gine").name == "Anim4gine"  # case is forgiven


def test_a_template_without_placeholder_is_appended_as_a1111_does() -> None:
    preset = Preset("watercolor", "watercolor (medium)", "photo")
    assert preset.apply("1girl") == "1girl, watercolor (medium)"
    assert preset.apply("") == ""


def test_braces_in_the_prompt_are_safe() -> None:
    assert presets_for("v4").apply("{a|b} }{", style="3D") == ("{a|b} }{, 3d", "")


# --- user presets ----------------------------------------------------------------------------


def test_json_presets_add_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    data = {
        "style": [{"name": "Ink", "prompt": "{prompt}, ink", "negative_prompt": "color"}],
        "v4": {"quality": [{"name": "Standard v4.0", "prompt": "{prompt}, masterpiece"}]},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    v4 = presets_for("v4", file=path)
    assert v4.apply("1girl", style="Ink", quality="Standard v4.0") == (
        "1girl, ink, masterpiece",
        "color",
    )
    assert [p.name for p in v4.quality] == ["(None)", "Standard v4.0"]
    v3 = presets_for("v3.1", file=path)
    assert v3.style_preset("Ink").prompt == "{prompt}, ink"
    assert v3.quality_preset("Standard v3.1") == presets_for("v3.1").quality_preset("Standard v3.1")


def test_toml_presets(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[[style]]\nname = "Soft"\nprompt = "{prompt}, soft lighting"\n\n'
        '[["v3.1".quality]]\nname = "Tiny"\nprompt = "{prompt}, masterpiece"\n'
        'negative_prompt = "lowres"\n',
        encoding="utf-8",
    )
    table = presets_for("v3.1", file=path)
    assert table.apply("1girl", "", style="Soft", quality="Tiny") == (
        "1girl, masterpiece, soft lighting",
        "lowres",
    )
    with pytest.raises(GenerationArgumentError, match="unknown quality preset 'Tiny'"):
        presets_for("v4", file=path).quality_preset("Tiny")


def test_a1111_styles_csv(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(
        "name,prompt,negative_prompt\n"
        '"Studio","{prompt}, studio lighting, bokeh","blurry, {prompt}"\n'
        "Plain,flat color,\n",
        encoding="utf-8",
    )
    table = presets_for("v4", file=path)
    assert table.apply("1girl", "lowres", style="Studio") == (
        "1girl, studio lighting, bokeh",
        "blurry, lowres",
    )
    assert table.apply("1girl", "lowres", style="Plain") == ("1girl, flat color", "lowres")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.json", "{", "not valid JSON"),
        ("a.json", '{"style": [{"prompt": "x"}]}', "has no name"),
        ("a.json", '{"style": [{"name": "x", "color": 1}]}', "unknown key"),
        ("a.json", '{"v9": {}}', "unknown key 'v9'"),
        ("a.json", '{"v4": {"order": "style, quality"}}', "quality and style presets only"),
        ("a.json", '{"style": [{"name": "x"}, {"name": "x"}]}', "names 'x' twice"),
        ("a.json", '{"style": [{"name": "x", "prompt": 3}]}', "prompt must be a str"),
        ("a.toml", "style = [", "not valid TOML"),
        ("a.csv", "title,text\nx,y\n", "needs a header"),
        ("a.yaml", "style: []", "must be .json, .toml"),
    ],
)
def test_bad_preset_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GenerationArgumentError, match=message):
        presets_for("v4", file=path)


def test_missing_preset_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        presets_for("v4", file=tmp_path / "nope.json")


def test_official_file_has_the_table_shape() -> None:
    for version in VERSIONS:
        table = presets_for(version)
        assert isinstance(table, PresetTable)
        assert set(table.to_json()) == {
            "order", "negative", "default_quality", "default_style", "quality", "style",
        }  # fmt: skip


# --- options and plans -------------------------------------------------------------------------


def test_plan_applies_the_presets_then_parses() -> None:
    options = GenerationOptions(prompt="1girl, smile", style="Anime", quality="Standard v3.1")
    plan = plan_generation(options, get_version("v3.1"))
    text, negative = presets_for("v3.1").apply(
        "1girl, smile", "", style="Anime", quality="Standard v3.1"
    )
    assert str(plan.prompt) == str(animagine.Prompt.parse(text, version="v3.1"))
    assert plan.negative_prompt == negative  # the preset's negative replaces the default
    assert (plan.style, plan.quality) == ("Anime", "Standard v3.1")


def test_quality_switch_off_keeps_the_negative_as_the_demo_does() -> None:
    options = GenerationOptions(
        prompt="1girl", quality="Heavy v3.1", add_quality_tags=False, negative_prompt="text"
    )
    plan = plan_generation(options, get_version("v3.1"))
    assert str(plan.prompt) == "1girl"
    assert plan.negative_prompt.startswith("nsfw, longbody")
    assert plan.negative_prompt.endswith(", very displeasing, text")


def test_v4_style_keeps_the_card_negative() -> None:
    plan = plan_generation(GenerationOptions(prompt="1girl", style="Toon"), get_version("v4"))
    assert plan.negative_prompt == get_version("v4").negative_prompt
    # No quality preset: the library's own quality tags, as without presets.
    assert str(plan.prompt).endswith("masterpiece, high score, great score, absurdres")
    assert "toon" in str(plan.prompt)  # "toon (style)", escaped as the tag it is


def test_unknown_preset_is_found_by_the_plan() -> None:
    options = GenerationOptions(prompt="1girl", style="Anim5gine")
    with pytest.raises(GenerationArgumentError, match=r"for v3\.1"):
        plan_generation(options, get_version("v3.1"))


def test_option_types_are_checked_when_made() -> None:
    with pytest.raises(animagine.GenerationTypeError):
        GenerationOptions(prompt="x", style=3)  # type: ignore[arg-type]
    with pytest.raises(GenerationArgumentError):
        GenerationOptions(prompt="x", quality=" ")
    with pytest.raises(animagine.GenerationTypeError):
        GenerationOptions(prompt="x", presets=1)  # type: ignore[arg-type]
    assert GenerationOptions(prompt="x", presets=Path("a.json")).presets == "a.json"


def test_presets_file_through_options(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"style": [{"name": "Ink", "prompt": "{prompt}, ink"}]}', encoding="utf-8")
    options = GenerationOptions.from_mapping(
        {"prompt": "1girl", "style": "Ink", "presets": str(path)}
    )
    plan = plan_generation(options, get_version("v4"))
    assert "ink" in str(plan.prompt)
    with pytest.raises(MissingFileError):
        plan_generation(
            GenerationOptions(prompt="1girl", presets=str(tmp_path / "no.json")),
            get_version("v4"),
        )


def test_metadata_records_and_reads_back_the_presets() -> None:
    params = GenerationParameters(
        prompt="1girl, anime artwork", negative_prompt="nsfw", steps=28, sampler="Euler a",
        guidance_scale=7.0, seed=1, width=832, height=1216, model="m", version="v3.1",
        style="Anime", quality="Standard v3.1",
    )  # fmt: skip
    text = params.to_infotext()
    assert "Style preset: Anime, Quality preset: Standard v3.1" in text
    assert GenerationParameters.from_infotext(text) == params
    data = params.to_json()
    assert (data["style"], data["quality"]) == ("Anime", "Standard v3.1")
    assert "template" not in data
    assert GenerationParameters.from_json(data) == params
    assert params.recipe() == {"style": "Anime", "quality": "Standard v3.1"}
    # Reproducing uses the final texts: the presets are not applied a second time.
    options = GenerationOptions.from_parameters(params)
    assert (options.style, options.quality) == (None, None)
    plan = plan_generation(options, get_version("v3.1"))
    assert str(plan.prompt) == params.prompt


# --- command line --------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser(COMMANDS, argv[0]).parse_args(list(argv))


def test_cli_flags(tmp_path: Path) -> None:
    args = _parse("generate", "x", "-o", "a.png", "--style", "Anim4gine", "--quality", "(None)")
    assert (args.style, args.quality) == ("Anim4gine", "(None)")
    args = _parse("batch", "in.txt", "-o", "o", "--style", "Toon", "--presets", "p.toml")
    assert (args.style, args.presets) == ("Toon", "p.toml")


def test_list_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--list-presets", "v4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("v4 (Animagine XL 4.0)")
    assert "Anim4gine" in out
    assert "Standard v4.0" in out
    assert "Standard v3.1" not in out
    assert main(["batch", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "v3 (Animagine XL 3.0)" in out
    assert "Heavy v3.1" in out
    assert main(["generate", "--list-presets", "v9"]) == 2
    assert "unknown Animagine XL version 'v9'" in capsys.readouterr().err


@pytest.mark.generate
def test_cli_unknown_preset_fails_before_loading(
    capsys: pytest.CaptureFixture[str], tiny_model_paths: Any, tmp_path: Path
) -> None:
    status = main(
        ["generate", "1girl", "-o", str(tmp_path / "a.png"), "--style", "Nope",
         "--version", "v4", "--model", str(tiny_model_paths.folder)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert "unknown style preset 'Nope' for v4" in err


# --- generation ----------------------------------------------------------------------------


@pytest.mark.generate
def test_generated_image_records_presets_and_reproduces(tiny_pipeline: Any) -> None:
    import numpy as np

    from animagine.generation import Generator

    gen = Generator(tiny_pipeline, version="v4")
    small: dict[str, Any] = {"width": 64, "height": 64, "steps": 1, "progress": False}
    result = gen("1girl, smile", style="Pixel art", quality="Standard v4.0", seed=3, **small)
    params = result.parameters[0]
    assert (params.style, params.quality) == ("Pixel art", "Standard v4.0")
    assert "pixel art" in params.prompt
    again = gen(GenerationOptions.from_parameters(params), progress=False)
    assert again.parameters[0].prompt == params.prompt
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[0]))


def test_another_demos_preset_by_its_unique_name() -> None:
    """The issue's own example: a 4.0 style with the 3.1 demo's quality preset."""
    from animagine.core import presets_for

    v4 = presets_for("v4")
    positive, negative = v4.apply("1girl, smile", style="Anim4gine", quality="Standard v3.1")
    v31 = presets_for("v3.1").quality_preset("Standard v3.1")
    anim4gine = v4.style_preset("Anim4gine")
    # 4.0's rule: the style first, then the quality preset's tags.
    assert positive == v31.apply(anim4gine.apply("1girl, smile"))
    assert negative == v31.negative_prompt
    assert presets_for("v3.1").style_preset("anim4gine") == anim4gine
    with pytest.raises(GenerationArgumentError, match="the quality presets are: '\\(None\\)'"):
        v4.quality_preset("no such preset")
