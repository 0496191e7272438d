"""One record of generation options: the CLI flags, batch keys and call options are its fields."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import animagine
from animagine.apps.batch import read_batch
from animagine.apps.cli import COMMANDS, build_parser
from animagine.errors import AnimagineError, GenerationArgumentError, GenerationTypeError
from animagine.generation import (
    OPTION_NAMES,
    GenerationOptions,
    option_spec,
    plan_generation,
)
from animagine.metadata import GenerationParameters, HiresParameters

GENERATION_GROUP = "generation options"

#: A valid value of every option, as JSON would hold it.
EVERY_OPTION: dict[str, Any] = {
    "prompt": "1girl, smile",
    "negative_prompt": "lowres",
    "width": 832,
    "height": 1216,
    "aspect": "portrait",
    "steps": 20,
    "guidance_scale": 6.5,
    "sampler": "DPM++ 2M Karras",
    "seed": 7,
    "num_images": 2,
    "add_quality_tags": False,
    "clip_skip": 1,
    "hires": {"scale": 1.5},
    "style": "Anim4gine",
    "quality": "Standard v4.0",
    "presets": "my-presets.toml",
    "variants": "demo",
    "wildcards": "wildcards",
}


def _generation_flags(command: str) -> dict[str, argparse.Action]:
    parser = build_parser(COMMANDS, command).subcommands[command]
    groups = [g for g in parser._action_groups if (g.title or "").startswith(GENERATION_GROUP)]
    assert len(groups) == 1, [g.title for g in parser._action_groups]
    return {action.dest: action for action in groups[0]._group_actions}


def test_the_record_lists_every_option() -> None:
    assert set(EVERY_OPTION) == set(OPTION_NAMES)
    assert tuple(field.name for field in attrs.fields(GenerationOptions)) == OPTION_NAMES


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_cli_flags_are_the_fields(command: str) -> None:
    """Every field but the prompt (the command's argument or the input lines) is one flag."""
    flags = _generation_flags(command)
    assert {*flags, "prompt"} == set(OPTION_NAMES)
    for name, action in flags.items():
        assert option_spec(name).flag(name) in action.option_strings
        assert action.help == option_spec(name).help


def test_generate_and_batch_share_flags_with_the_same_meaning() -> None:
    generate, batch = _generation_flags("generate"), _generation_flags("batch")
    for name in generate:
        assert generate[name].option_strings == batch[name].option_strings, name
        assert type(generate[name]) is type(batch[name]), name
    argv = [
        "--steps", "12", "--cfg", "4.5", "-n", "3", "--no-quality-tags", "--hires", "1.5",
        "--aspect", "16:9", "--sampler", "Euler", "--clip-skip", "2", "--seed", "5",
        "--negative-prompt", "bad", "--width", "64", "--height", "64",
    ]  # fmt: skip
    parsed = build_parser(COMMANDS, "generate").parse_args(["generate", "x", "-o", "a.png", *argv])
    parsed_batch = build_parser(COMMANDS, "batch").parse_args(["batch", "in.txt", "-o", "o", *argv])
    for name in generate:
        assert getattr(parsed, name) == getattr(parsed_batch, name), name
    assert parsed.add_quality_tags is False
    assert parsed.num_images == 3
    assert parsed.guidance_scale == 4.5


def test_batch_keys_are_the_fields(tmp_path: Path) -> None:
    """A JSONL line may set every option, and nothing else."""
    source = tmp_path / "in.jsonl"
    lines = [EVERY_OPTION, {**EVERY_OPTION, "cfg_scale": 5}]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    items, bad = read_batch(source)
    assert [item.line for item in items] == [1]
    assert set(items[0].options) == set(OPTION_NAMES)
    assert "unknown option 'cfg_scale'" in bad[0].message
    assert isinstance(items[0].generation_options(), GenerationOptions)


def test_csv_header_takes_every_field_as_text(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    values = {**EVERY_OPTION, "hires": "1.5", "add_quality_tags": "no"}
    source.write_text(
        ",".join(values) + "\n" + ",".join(f'"{value}"' for value in values.values()) + "\n",
        encoding="utf-8",
    )
    items, bad = read_batch(source)
    assert bad == ()
    options = items[0].generation_options()
    assert options.steps == 20
    assert options.guidance_scale == 6.5
    assert options.add_quality_tags is False
    assert options.hires == HiresParameters(
        scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)", steps=None
    )


def test_an_unknown_option_is_refused_by_every_front_end(tmp_path: Path) -> None:
    with pytest.raises(GenerationTypeError, match="did you mean 'steps'"):
        GenerationOptions.from_mapping({"prompt": "x", "stpes": 3})
    with pytest.raises(TypeError):
        GenerationOptions(prompt="x", stpes=3)  # type: ignore[call-arg]
    with pytest.raises(SystemExit):
        build_parser(COMMANDS, "generate").parse_args(
            ["generate", "x", "-o", "a.png", "--stpes", "3"]
        )


def test_reproducing_from_metadata_goes_through_the_record() -> None:
    parameters = GenerationParameters(
        prompt="1girl, smile, masterpiece",
        negative_prompt="lowres",
        steps=20,
        sampler="Euler",
        guidance_scale=6.0,
        seed=123,
        width=832,
        height=1216,
        model="animagine-xl-4.0",
        version="v4",
        clip_skip=1,
        hires=HiresParameters(scale=1.5, strength=0.5, upscaler="Latent", steps=None),
    )
    assert set(parameters.to_call_kwargs()) <= set(OPTION_NAMES)
    options = GenerationOptions.from_parameters(parameters)
    plan = plan_generation(options, animagine.get_version("v4"))
    assert str(plan.prompt) == parameters.prompt  # no quality tags added twice
    assert (plan.width, plan.height, plan.steps) == (832, 1216, 20)
    assert plan.seeds == (123,)
    assert plan.sampler == "Euler"
    assert plan.hires == parameters.hires
    assert plan.clip_skip == 1


def test_changed_lists_what_was_set() -> None:
    options = GenerationOptions(prompt="x", steps=3, hires=2)
    assert options.changed() == {
        "prompt": "x",
        "steps": 3,
        "hires": {
            "scale": 2.0,
            "strength": 0.55,
            "upscaler": "Latent (nearest-exact)",
            "steps": None,
        },
    }
    assert GenerationOptions.from_mapping(options.changed()) == options


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(OPTION_NAMES), _JSON, max_size=6), st.booleans())
def test_any_values_give_the_record_or_an_animagine_error(data: dict[str, Any], text: bool) -> None:
    """Whatever a JSON line or CSV row holds, the record is made or refused with our errors."""
    failure: AnimagineError | None = None
    try:
        options = GenerationOptions.from_mapping({"prompt": "1girl", **data}, text=text)
        plan_generation(options, animagine.get_version("v4"))
    except AnimagineError as error:
        failure = error
    if failure is not None:  # also the builtin it resembles
        assert isinstance(failure, (ValueError, TypeError, ImportError))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("steps", "28", 28),
        ("guidance_scale", "5", 5.0),
        ("add_quality_tags", "off", False),
        ("add_quality_tags", "YES", True),
        ("hires", "2", 2.0),
        ("seed", "18446744073709551615", 2**64 - 1),
    ],
)
def test_text_forms(name: str, text: str, expected: object) -> None:
    assert option_spec(name).parse(text) == expected


@pytest.mark.parametrize(
    ("name", "text"), [("steps", "many"), ("guidance_scale", "nan"), ("add_quality_tags", "maybe")]
)
def test_bad_text_forms(name: str, text: str) -> None:
    with pytest.raises(GenerationArgumentError, match=name):
        option_spec(name).parse(text)
