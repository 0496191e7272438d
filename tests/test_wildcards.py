"""Prompt templates: variants and wildcards in the dynamic-prompts syntax, seeded from the image."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from animagine import (
    AnimagineError,
    GenerationArgumentError,
    MissingFileError,
    PromptSyntaxError,
    get_version,
)
from animagine.apps.cli import main
from animagine.core import Template, WildcardFolder, expand
from animagine.generation import GenerationOptions, plan_generation
from animagine.metadata import GenerationParameters


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "color.txt").write_text("# colours\nred\n\nblue\n  green  \n", encoding="utf-8")
    (tmp_path / "hair").mkdir()
    (tmp_path / "hair" / "style.txt").write_text("long hair\nshort hair\n", encoding="utf-8")
    (tmp_path / "hair" / "length.txt").write_text("very long hair\n", encoding="utf-8")
    (tmp_path / "outfit.txt").write_text("{__color__|white} dress\n__color__ kimono\n", "utf-8")
    (tmp_path / "places.json").write_text(
        json.dumps({"indoor": ["classroom", "library"], "outdoor": {"city": ["street"]}}),
        encoding="utf-8",
    )
    (tmp_path / "moods.json").write_text(json.dumps(["smile", "blush"]), encoding="utf-8")
    return tmp_path


def draws(template: str, count: int = 200, **options: Any) -> collections.Counter[str]:
    return collections.Counter(expand(template, seed=seed, **options) for seed in range(count))


# --- semantics -------------------------------------------------------------------------------


def test_variant_draws_each_option() -> None:
    seen = draws("a {red|green|blue} b")
    assert set(seen) == {"a red b", "a green b", "a blue b"}


def test_same_seed_same_text() -> None:
    template = "{a|b|c}, {2$$d|e|f|g}, {1-3$$h|i|j}"
    assert [expand(template, seed=7) for _ in range(3)] == [expand(template, seed=7)] * 3


def test_weights() -> None:
    seen = draws("{0::never|1::always}")
    assert seen == {"always": 200}
    skewed = draws("{9::x|1::y}", count=500)
    assert skewed["x"] > 3 * skewed["y"] > 0
    assert draws("{0.5::x|2::y}", count=50).keys() <= {"x", "y"}


def test_several_without_replacement_and_separator() -> None:
    for text in draws("{2$$a|b|c}"):
        first, second = text.split(", ")
        assert first != second
    for text in draws("{2$$ and $$a|b|c}"):
        assert " and " in text
    assert set(draws("{5$$a|b}")) == {"a, b", "b, a"}  # more than there are: all of them


def test_ranges() -> None:
    sizes = {len(text.split(",")) for text in draws("{1-3$$a|b|c|d}")}
    assert sizes == {1, 2, 3}
    assert {len(text.split(",")) for text in draws("{-2$$a|b|c}")} == {1, 2}
    assert {len(text.split(",")) for text in draws("{2-$$a|b|c}")} == {2, 3}


def test_nesting_and_escapes() -> None:
    assert set(draws("{a|{b|c}}")) == {"a", "b", "c"}
    assert expand(r"\{not|a variant\}, star \(sky\)", seed=0) == r"{not|a variant}, star \(sky\)"
    assert expand("a | b $$ c", seed=0) == "a | b $$ c"  # plain text at the top level
    assert expand("{~a}", seed=0) == "a"
    assert expand("{a|}", seed=1) in {"a", ""}


def test_wildcards(folder: Path) -> None:
    assert set(draws("__color__", wildcards=folder)) == {"red", "blue", "green"}
    assert set(draws("__hair/style__", wildcards=folder)) == {"long hair", "short hair"}
    assert set(draws("__hair/*__", wildcards=folder)) == {
        "long hair", "short hair", "very long hair",
    }  # fmt: skip
    assert set(draws("__indoor__", wildcards=folder)) == {"classroom", "library"}
    assert set(draws("__outdoor/city__", wildcards=folder)) == {"street"}
    assert set(draws("__moods__", wildcards=folder)) == {"smile", "blush"}
    nested = set(draws("__outfit__", wildcards=folder))
    assert "white dress" in nested
    assert "red kimono" in nested
    assert all("{" not in text and "__" not in text for text in nested)
    two = set(draws("{2$$__color__}", wildcards=folder))
    assert all(len(set(text.split(", "))) == 2 for text in two)


def test_yaml_wildcards(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "animals.yaml").write_text("pets:\n  - cat\n  - dog\n", encoding="utf-8")
    assert set(draws("__pets__", wildcards=tmp_path)) == {"cat", "dog"}


def test_demo_mode_draws_one_line_per_name(folder: Path) -> None:
    template = "__color__ hair, __color__ eyes"
    for text in draws(template, wildcards=folder, mode="demo"):
        hair, eyes = text.split(", ")
        assert hair.split()[0] == eyes.split()[0]
    mixed = [
        text
        for text in draws(template, wildcards=folder)
        if text.split(", ")[0].split()[0] != text.split(", ")[1].split()[0]
    ]
    assert mixed  # the dynamic-prompts rule draws each occurrence


def test_folder_changes_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("one\n", encoding="utf-8")
    assert expand("__x__", seed=0, wildcards=tmp_path) == "one"
    path.write_text("two words\n", encoding="utf-8")
    assert expand("__x__", seed=0, wildcards=tmp_path) == "two words"


def test_template_properties(folder: Path) -> None:
    template = Template.parse("a, {b|__color__}, __hair/style__, __color__")
    assert template.wildcard_names == ("color", "hair/style")
    assert template.is_dynamic
    assert not Template.parse("1girl, (smile:1.2)").is_dynamic
    assert WildcardFolder(folder).names[:2] == ("color", "hair/length")


# --- errors, with positions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message", "column"),
    [
        ("1girl, {red|blue", "'{' is never closed", 8),
        ("1girl, red}", "'}' closes no '{'", 11),
        ("{a|x::b}", "the weight 'x' is not a number", 4),
        ("{a|-1::b}", "must be a finite number, 0 or more", 4),
        ("{@a|b}", "'@' sampler prefix is not supported", 2),
        ("{!a|b}", "'!' sampler prefix", 2),
        ("a ${x=b}", "variables", 3),
        ("{3-1$$a|b}", "runs backwards", 2),
        ("smile, __color__", "needs a wildcard folder", 8),
    ],
)
def test_bad_templates(template: str, message: str, column: int) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        Template.parse(template).check()
    assert message in caught.value.reason
    assert caught.value.column == column
    assert caught.value.text == template


def test_missing_wildcard_file_is_positioned(folder: Path) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        expand("1girl, __colour__", seed=0, wildcards=folder)
    assert "no wildcard file for __colour__" in str(caught.value)
    assert caught.value.column == 8
    with pytest.raises(PromptSyntaxError, match="no wildcard matches"):
        expand("__nothing/*__", seed=0, wildcards=folder)


def test_bad_line_in_a_wildcard_file(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("ok\n{unclosed\n", encoding="utf-8")
    with pytest.raises(PromptSyntaxError, match="in a line of __bad__") as caught:
        expand("__bad__", seed=0, wildcards=tmp_path)
    assert caught.value.text == "{unclosed"


def test_wildcard_cycles(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("__b__\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("x, __a__\n", encoding="utf-8")
    with pytest.raises(PromptSyntaxError, match="cycle: __a__ -> __b__ -> __a__"):
        expand("__a__", seed=0, wildcards=tmp_path)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        WildcardFolder(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x", encoding="utf-8")
    with pytest.raises(GenerationArgumentError, match="must be a folder"):
        WildcardFolder(tmp_path / "f.txt")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(GenerationArgumentError, match="not valid JSON"):
        expand("__f__", seed=0, wildcards=tmp_path)
    with pytest.raises(GenerationArgumentError, match="wildcard mode"):
        expand("x", seed=0, mode="sometimes")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab{}|$:_~\\12-, ", max_size=40), st.integers(0, 2**64 - 1))
def test_any_text_reads_or_fails_cleanly(text: str, seed: int) -> None:
    try:
        template = Template.parse(text)
    except PromptSyntaxError as error:
        offset = error.offset
        assert 0 <= offset <= len(text)
        return
    try:
        result = template.expand(seed)
    except AnimagineError:
        assert template.wildcard_names  # only a wildcard without a folder fails here
        return
    assert isinstance(result, str)
    if not template.is_dynamic:
        assert result == text.replace("\\{", "{").replace("\\}", "}").replace("\\|", "|")


# --- options, plans and metadata -------------------------------------------------------------


def test_each_image_draws_from_its_seed(folder: Path) -> None:
    options = GenerationOptions(
        prompt="1girl, {smile|frown|crying}, __color__ dress",
        wildcards=str(folder),
        seed=10,
        num_images=6,
        add_quality_tags=False,
    )
    plan = plan_generation(options, get_version("v4"))
    assert plan.template == options.prompt
    for seed, prompt in zip(plan.seeds, plan.prompts, strict=True):
        alone = plan_generation(
            GenerationOptions(
                prompt=options.prompt, wildcards=str(folder), seed=seed, add_quality_tags=False
            ),
            get_version("v4"),
        )
        assert alone.prompts == (prompt,)
        assert str(prompt) == expand(options.prompt, seed=seed, wildcards=folder)
    parts = plan.by_prompt()
    assert sorted(seed for part in parts for seed in part.seeds) == list(plan.seeds)
    assert all(len(set(part.prompts)) == 1 for part in parts)


def test_variants_without_a_folder_and_plain_prompts() -> None:
    plan = plan_generation(
        GenerationOptions(prompt="{cat|dog} ears", variants="random", seed=1), get_version("v4")
    )
    assert str(plan.prompt).startswith(("cat ears", "dog ears"))
    plan = plan_generation(
        GenerationOptions(prompt="1girl", variants="demo", seed=1), get_version("v4")
    )
    assert plan.template is None  # nothing to draw: no template recorded
    assert plan_generation(GenerationOptions(prompt="{a|b}"), get_version("v4")).template is None


def test_template_errors_are_found_before_model_work(folder: Path) -> None:
    with pytest.raises(PromptSyntaxError, match="never closed"):
        plan_generation(
            GenerationOptions(prompt="1girl, {a|b", variants="random"), get_version("v4")
        )
    with pytest.raises(PromptSyntaxError, match="no wildcard file"):
        plan_generation(
            GenerationOptions(prompt="__nope__", wildcards=str(folder)), get_version("v4")
        )
    with pytest.raises(MissingFileError):
        plan_generation(
            GenerationOptions(prompt="x", wildcards=str(folder / "nope")), get_version("v4")
        )
    with pytest.raises(GenerationArgumentError, match="variants must be one of"):
        GenerationOptions(prompt="x", variants="always")
    prompt = plan_generation(GenerationOptions(prompt="1girl"), get_version("v4")).prompt
    with pytest.raises(GenerationArgumentError, match="need the prompt as text"):
        plan_generation(GenerationOptions(prompt=prompt, variants="random"), get_version("v4"))


def test_template_goes_into_metadata_and_back() -> None:
    params = GenerationParameters(
        prompt="1girl, red dress", negative_prompt="", steps=28, sampler="Euler a",
        guidance_scale=5.0, seed=3, width=832, height=1216, model="m", version="v4",
        template="1girl, {red|blue} dress",
    )  # fmt: skip
    text = params.to_infotext()
    assert 'Template: "1girl, {red|blue} dress"' in text
    assert GenerationParameters.from_infotext(text) == params
    assert GenerationParameters.from_json(params.to_json()) == params
    assert GenerationOptions.from_parameters(params).variants is None  # the drawn text reproduces


def test_batch_lines_take_templates(tmp_path: Path, folder: Path) -> None:
    from animagine.apps.batch import read_batch

    source = tmp_path / "in.jsonl"
    line = {"prompt": "__color__ hair", "wildcards": str(folder), "variants": "demo", "seed": 2}
    source.write_text(json.dumps(line) + "\n", encoding="utf-8")
    items, bad = read_batch(source)
    assert bad == ()
    options = items[0].generation_options()
    assert (options.wildcards, options.variants) == (str(folder), "demo")


# --- the expand command ----------------------------------------------------------------------


def test_expand_command(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    status = main(["expand", "{a|b|c}, __color__", "-n", "4", "--seed", "5",
                   "--wildcards", str(folder)])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out == [expand("{a|b|c}, __color__", seed=s, wildcards=folder) for s in range(5, 9)]
    assert main(["expand", "x {a|b}", "--json", "--seed", "0", "-n", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["seed"] for item in data] == [0, 1]


def test_expand_command_errors(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    assert main(["expand", "1girl, {a|b"]) == 2
    err = capsys.readouterr().err
    assert "'{' is never closed at line 1, column 8" in err
    assert "       ^" in err
    assert main(["expand", "__nope__", "--wildcards", str(folder)]) == 2
    assert "no wildcard file for __nope__" in capsys.readouterr().err
    assert main(["expand", "x", "--wildcards", str(folder / "missing")]) == 2
    assert "No such file" in capsys.readouterr().err


# --- generation ----------------------------------------------------------------------------


@pytest.mark.generate
def test_generation_draws_per_image_and_reproduces(tiny_pipeline: Any, folder: Path) -> None:
    import numpy as np

    from animagine.generation import Generator

    gen = Generator(tiny_pipeline, version="v4")
    small: dict[str, Any] = {"width": 64, "height": 64, "steps": 1, "progress": False}
    template = "1girl, {smile|frown}, __color__ dress"
    result = gen(template, wildcards=str(folder), seed=20, num_images=3, **small)
    assert result.seeds == (20, 21, 22)
    for seed, params in zip(result.seeds, result.parameters, strict=True):
        assert params.template == template
        assert params.prompt.startswith(expand(template, seed=seed, wildcards=folder))
    second = result.parameters[1]
    again = gen(GenerationOptions.from_parameters(second), progress=False)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[1]))
