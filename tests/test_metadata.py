"""Generation parameters: A1111 infotext, our JSON, the official demo's JSON, PNG files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from animagine.errors import AnimagineError, MetadataError
from animagine.metadata import (
    GenerationParameters,
    HiresParameters,
    png_info,
    read_parameters,
    write_png,
)

# Pillow comes with the generate extra; the text and JSON tests run without it.
HAS_PILLOW = importlib.util.find_spec("PIL") is not None
needs_pillow = pytest.mark.skipif(not HAS_PILLOW, reason="needs Pillow (the generate extra)")
if TYPE_CHECKING or HAS_PILLOW:
    from PIL import Image, PngImagePlugin

DATA = Path(__file__).parent / "data" / "metadata"
BASE = "Steps: 2, Sampler: a, CFG scale: 7, Seed: 1, Size: 8x8"


def fixture_text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def make(**changes: Any) -> GenerationParameters:
    fields: dict[str, Any] = {
        "prompt": "1girl, hatsune miku, vocaloid, solo, masterpiece, high score, absurdres",
        "negative_prompt": "lowres, bad anatomy, bad hands, text, error",
        "steps": 28,
        "sampler": "Euler a",
        "guidance_scale": 5.0,
        "seed": 123456789,
        "width": 832,
        "height": 1216,
        "model": "cagliostrolab/animagine-xl-4.0",
        "version": "v4",
    }
    fields.update(changes)
    return GenerationParameters(**fields)


FULL = make(
    model_hash="6327eca98b",
    clip_skip=2,
    hires=HiresParameters(scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)", steps=10),
    structured_prompt={"tags": [{"name": "1girl", "weight": 1.0}], "rating": None},
    extra={"Lora hashes": "add_detail: 7c6bad76eb54, x: 1", "ENSD": "31337"},
)


def small_image(mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (8, 8), "white" if mode == "RGB" else 0)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("steps", 0, ValueError),
        ("steps", -3, ValueError),
        ("steps", 28.0, TypeError),
        ("steps", True, TypeError),
        ("seed", -1, ValueError),
        ("seed", 2**64, ValueError),
        ("seed", 1.5, TypeError),
        ("seed", "123", TypeError),
        ("width", 0, ValueError),
        ("height", "1216", TypeError),
        ("guidance_scale", 0, ValueError),
        ("guidance_scale", float("nan"), ValueError),
        ("guidance_scale", "5", TypeError),
        ("guidance_scale", False, TypeError),
        ("prompt", None, TypeError),
        ("negative_prompt", b"x", TypeError),
        ("sampler", "", ValueError),
        ("model", None, TypeError),
        ("version", "", ValueError),
        ("version", 4, TypeError),
        ("model_hash", 123, TypeError),
        ("clip_skip", 0, ValueError),
        ("clip_skip", "2", TypeError),
        ("hires", {"scale": 1.5}, TypeError),
        ("structured_prompt", ["1girl"], TypeError),
        ("structured_prompt", {"w": float("inf")}, TypeError),
        ("structured_prompt", {"t": object()}, TypeError),
        ("extra", {"Key": 1}, TypeError),
        ("extra", "Key: value", TypeError),
        ("extra", {"a": "x"}, ValueError),  # one character: readers need two
        ("extra", {"Bad:key": "x"}, ValueError),
        ("extra", {"Steps": "30"}, ValueError),  # has its own field
        ("extra", {"Animagine version": "v3"}, ValueError),
    ],
)
def test_bad_values_name_the_field(field: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=field):
        make(**{field: value})


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("scale", 0.5, ValueError),
        ("scale", "2", TypeError),
        ("strength", 1.5, ValueError),
        ("strength", -0.1, ValueError),
        ("upscaler", "", ValueError),
        ("steps", 0, ValueError),
    ],
)
def test_bad_hires_values_name_the_field(field: str, value: Any, error: type[Exception]) -> None:
    fields: dict[str, Any] = {"scale": 1.5, "strength": 0.5, "upscaler": "Latent"}
    fields[field] = value
    with pytest.raises(error, match=field):
        HiresParameters(**fields)


def test_hires_keys_are_reserved_only_with_hires() -> None:
    assert make(extra={"Denoising strength": "0.4"}).extra["Denoising strength"] == "0.4"
    with pytest.raises(ValueError, match="Denoising strength"):
        make(
            extra={"Denoising strength": "0.4"},
            hires=HiresParameters(scale=2, strength=0.5, upscaler="Latent"),
        )


def test_numbers_are_normalised_not_guessed() -> None:
    class NumpyLikeInt:
        def __index__(self) -> int:
            return 7

    params = make(guidance_scale=5, seed=NumpyLikeInt())
    assert params.guidance_scale == 5.0
    assert isinstance(params.guidance_scale, float)
    assert params.seed == 7
    assert type(params.seed) is int


def test_immutable_hashable_picklable() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        FULL.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        FULL.extra["ENSD"] = "1"  # type: ignore[index]
    assert hash(FULL) == hash(attrs.evolve(FULL))
    assert pickle.loads(pickle.dumps(FULL)) == FULL
    assert attrs.evolve(FULL, seed=1) != FULL


def test_extra_keeps_order_and_accepts_pairs() -> None:
    params = make(extra=[("Zeta", "1"), ("Alpha", "2")])
    assert list(params.extra) == ["Zeta", "Alpha"]
    assert params.extra == {"Alpha": "2", "Zeta": "1"}
    assert params.to_infotext().endswith("Zeta: 1, Alpha: 2, Animagine version: v4")


def test_structured_prompt_is_a_detached_json_copy() -> None:
    source: dict[str, Any] = {"tags": ("1girl", "solo")}
    params = make(structured_prompt=source)
    source["tags"] = ()
    assert params.structured_prompt == {"tags": ["1girl", "solo"]}


def test_errors_are_animagine_and_value_errors() -> None:
    assert issubclass(MetadataError, AnimagineError)
    assert issubclass(MetadataError, ValueError)


# --- A1111 infotext ----------------------------------------------------------------------------


def test_infotext_layout() -> None:
    text = FULL.to_infotext()
    assert text.split("\n") == [
        FULL.prompt,
        "Negative prompt: " + FULL.negative_prompt,
        "Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 123456789, Size: 832x1216, "
        "Model hash: 6327eca98b, Model: cagliostrolab/animagine-xl-4.0, Clip skip: 4, "
        "Denoising strength: 0.55, Hires upscale: 1.5, Hires steps: 10, "
        'Hires upscaler: Latent (nearest-exact), Lora hashes: "add_detail: 7c6bad76eb54, x: 1", '
        "ENSD: 31337, Animagine version: v4",
    ]


@pytest.mark.parametrize(("written", "read"), [("1", None), ("2", None), ("3", 1), ("12", 10)])
def test_infotext_clip_skip_is_a1111s_count(written: str, read: int | None) -> None:
    line = "1girl\nSteps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 64x64, Clip skip: "
    line += written
    params = GenerationParameters.from_infotext(line)
    assert params.clip_skip == read
    if read is not None:
        assert f"Clip skip: {written}" in params.to_infotext()


def test_split_infotext_strict_and_not() -> None:
    from animagine.metadata import split_infotext

    text = "1girl,\nsmile\nNegative prompt: lowres\nbad\nSteps: 2, Seed: 5, Size: 64x64"
    parts = split_infotext(text)
    assert (parts.prompt, parts.negative_prompt) == ("1girl,\nsmile", "lowres\nbad")
    assert parts.values == {"Steps": "2", "Seed": "5", "Size": "64x64"}
    loose = "1girl\nNegative prompt: lowres\njust text"
    with pytest.raises(MetadataError, match="no A1111 parameters line"):
        split_infotext(loose)
    parts = split_infotext(loose, strict=False)  # as A1111 reads it: all prompt, no values
    assert (parts.prompt, parts.negative_prompt, parts.values) == (
        "1girl",
        "lowres\njust text",
        {},
    )


def test_infotext_without_negative_prompt_has_no_negative_line() -> None:
    text = make(negative_prompt="").to_infotext()
    assert "Negative prompt" not in text
    assert GenerationParameters.from_infotext(text).negative_prompt == ""


def test_infotext_round_trip_drops_only_structured_prompt() -> None:
    back = GenerationParameters.from_infotext(FULL.to_infotext())
    assert back == attrs.evolve(FULL, structured_prompt=None)


TRICKY_TEXTS = [
    "1girl, firefly \\(honkai: star rail\\), honkai \\(series\\)",
    "(masterpiece:1.2), [lowres], {braces}, <lora:add_detail:0.5>",
    'quote "inside", and \\"escaped\\" and \\\\ backslashes',
    '"starts and ends with quotes"',
    "line one\nline two\n\nline four after a blank line",
    "1girl,\nBREAK\nsolo",
    "初音ミク, 東方Project, émoji 🎨, ümlaut",
    "  leading and trailing spaces  ",
    "Steps: 1, Sampler: x, CFG scale: 2, Seed: 3, Size: 4x4",
    '{"prompt": "looks like JSON", "seed": 1}',
    "tab\tand carriage\rreturn",
    "",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_infotext_round_trips_tricky_prompts(text: str) -> None:
    params = make(prompt=text, negative_prompt=text[::-1], model=text or "x")
    assert GenerationParameters.from_infotext(params.to_infotext()) == params


@pytest.mark.parametrize(
    "value",
    [
        "a, b",
        "key: value",
        "multi\nline",
        '"quoted"',
        " padded ",
        "",
        "{not json, at all}",
        '{"bare": "json", "object": 1}',
        "{x}y",
        "ctrl\x01char",
        "ünïcödé, with comma",
    ],
)
def test_extra_values_round_trip(value: str) -> None:
    params = make(extra={"Some key": value, "Other": "plain"})
    back = GenerationParameters.from_infotext(params.to_infotext())
    assert back.extra == {"Some key": value, "Other": "plain"}


def test_values_needing_it_are_json_quoted() -> None:
    line = make(model="my model, v2: final", extra={"Note": "a\nb"}).to_infotext().split("\n")[-1]
    assert 'Model: "my model, v2: final"' in line
    assert 'Note: "a\\nb"' in line
    assert "Sampler: Euler a," in line  # plain values stay bare


def test_json_object_values_stay_bare_like_civitai_hashes() -> None:
    hashes = '{"vae": "235745af8d", "model": "6327eca98b"}'
    line = make(extra={"Hashes": hashes}).to_infotext().split("\n")[-1]
    assert f"Hashes: {hashes}," in line


def test_a1111_fixture_plain() -> None:
    params = GenerationParameters.from_infotext(fixture_text("a1111_v1_8_animagine31.txt"))
    assert params.prompt.startswith("1girl, hatsune miku, vocaloid, rating: general")
    assert params.prompt.endswith("very aesthetic, absurdres")
    assert params.negative_prompt.startswith("nsfw, lowres, (bad), text")
    assert params.negative_prompt.endswith("scan, [abstract]")
    assert (params.steps, params.sampler, params.guidance_scale) == (28, "Euler a", 7.0)
    assert (params.seed, params.width, params.height) == (1234567890, 832, 1216)
    # A1111's "Clip skip: 2" is SDXL's default layer (the penultimate): no skip.
    assert (params.model, params.model_hash, params.clip_skip) == (
        "animagine-xl-3.1",
        "e3c47aedb0",
        None,
    )
    assert params.version == "v3.1"  # from the model name
    assert params.hires is None
    assert dict(params.extra) == {
        "VAE hash": "235745af8d",
        "VAE": "sdxl_vae.safetensors",
        "Version": "v1.8.0",
    }


def test_a1111_fixture_hires_schedule_type_and_quoted_values() -> None:
    params = GenerationParameters.from_infotext(fixture_text("a1111_v1_10_hires_schedule.txt"))
    assert params.prompt == (
        "1girl, frieren, sousou no frieren, elf, white hair, twintails,\nBREAK\n"
        "outdoors, field, flowers, year 2023, masterpiece, high score, great score, absurdres"
    )
    assert params.negative_prompt == (
        "lowres, bad anatomy, bad hands, text, error, missing finger, extra digits, fewer "
        "digits, cropped,\nworst quality, low quality, low score, bad score, average score, "
        "signature, watermark, username, blurry"
    )
    assert params.sampler == "DPM++ 2M Karras"
    assert params.guidance_scale == 5.5
    assert params.seed == 3141592653
    assert params.version == "v4"
    assert params.hires == HiresParameters(
        scale=1.5, strength=0.35, upscaler="R-ESRGAN 4x+ Anime6B", steps=12
    )
    assert dict(params.extra) == {
        "Schedule type": "Karras",
        "Lora hashes": "add_detail: 7c6bad76eb54, frieren_xl: 0123abcd4567",
        "Emphasis": "Original",
        "Version": "v1.10.1",
        "Hashes": '{"vae": "235745af8d", "lora:add_detail": "7c6bad76eb54", "model": "6327eca98b"}',
    }
    # Nothing lost: reading our own rendering gives the same record.
    assert GenerationParameters.from_infotext(params.to_infotext()) == params


def test_a1111_fixture_old_without_negative_or_model() -> None:
    params = GenerationParameters.from_infotext(fixture_text("a1111_old_no_negative.txt"))
    assert params.prompt == "masterpiece, best quality, 1girl, solo, (cat ears:1.2), [smile]"
    assert params.negative_prompt == ""
    assert params.sampler == "DPM++ 2M Karras"
    assert (params.model, params.model_hash, params.version) == ("", "1449e5b0", None)
    assert dict(params.extra) == {"ENSD": "31337"}
    assert "Model:" not in params.to_infotext()


def test_a1111_fixture_img2img_keeps_denoising_in_extra() -> None:
    params = GenerationParameters.from_infotext(fixture_text("a1111_img2img.txt"))
    assert params.hires is None
    assert params.version == "v3"
    assert dict(params.extra) == {
        "Denoising strength": "0.45",
        "Mask blur": "4",
        "Version": "v1.7.0",
    }


def test_a1111_fixture_dynamic_prompts() -> None:
    params = GenerationParameters.from_infotext(fixture_text("a1111_dynamic_prompts.txt"))
    assert params.prompt == '{1girl|1boy}, hakurei reimu, touhou, shrine, "sparkles", cowboy shot'
    assert params.model == "animagine-xl-3.1, merged"
    assert params.template == (
        '{1girl|1boy}, hakurei reimu, touhou,\nshrine, "sparkles", cowboy shot'
    )
    assert params.extra["Negative Template"] == "lowres, bad anatomy"


def test_missing_required_key_is_named() -> None:
    with pytest.raises(MetadataError, match="missing key 'Seed'"):
        GenerationParameters.from_infotext(fixture_text("a1111_missing_seed.txt"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Steps: many, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 8x8", "'Steps' is not an"),
        ("Steps: 2, Sampler: Euler a, CFG scale: high, Seed: 1, Size: 8x8", "'CFG scale' is not a"),
        ("Steps: 2, Sampler: Euler a, CFG scale: inf, Seed: 1, Size: 8x8", "'CFG scale' is not a"),
        ("Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 8 by 8", "'Size'"),
        ("Steps: 0, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 8x8", "steps must be"),
        ("Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: -5, Size: 8x8", "seed must be"),
        (
            "Steps: 2, Sampler: a, CFG scale: 7, Seed: 1, Size: 8x8, Hires upscale: 0.5, "
            "Denoising strength: 0.5, Hires upscaler: Latent",
            "hires",
        ),
    ],
)
def test_bad_parameter_values_raise_metadata_error(line: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        GenerationParameters.from_infotext(f"1girl\n{line}")


@pytest.mark.parametrize("text", ["", "1girl, solo", "1girl\nNegative prompt: x\nSteps: 28"])
def test_text_without_parameters_line(text: str) -> None:
    with pytest.raises(MetadataError, match="no A1111 parameters line"):
        GenerationParameters.from_infotext(text)


def test_hires_needs_its_three_keys_otherwise_extra() -> None:
    text = f"x\n{BASE}, Hires upscale: 2, Hires steps: 5"
    params = GenerationParameters.from_infotext(text)
    assert params.hires is None
    assert dict(params.extra) == {"Hires upscale": "2", "Hires steps": "5"}


def test_hires_steps_zero_means_same_as_first_pass() -> None:
    text = (
        "x\nSteps: 2, Sampler: a, CFG scale: 7, Seed: 1, Size: 8x8, Denoising strength: 0.5, "
        "Hires upscale: 2, Hires steps: 0, Hires upscaler: Latent"
    )
    hires = GenerationParameters.from_infotext(text).hires
    assert hires == HiresParameters(scale=2.0, strength=0.5, upscaler="Latent", steps=None)


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("animagine-xl-3.0", "v3"),
        ("animagineXL-3.1", "v3.1"),
        ("animagineXLV31_v31", None),  # Civitai file name: no dot, no guess
        ("Animagine XL 3.1", "v3.1"),
        ("cagliostrolab/animagine-xl-4.0", "v4"),
        ("animagine-xl-4.0-opt.safetensors", "v4"),
        ("animagine_xl_3_1", "v3.1"),
        ("Animagine XL 2.0", None),
        ("ponyDiffusionV6XL", None),
        ("", None),
    ],
)
def test_version_from_model_name(model: str, version: str | None) -> None:
    text = f"x\n{BASE}, Model: {model}"
    assert GenerationParameters.from_infotext(text).version == version


def test_explicit_version_key_wins() -> None:
    text = f"x\n{BASE}, Model: animagine-xl-3.1, Animagine version: v4"
    assert GenerationParameters.from_infotext(text).version == "v4"


def test_schedule_type_other_than_karras_stays_separate() -> None:
    params = GenerationParameters.from_infotext(f"x\n{BASE}, Schedule type: Automatic")
    assert params.sampler == "a"
    assert params.extra["Schedule type"] == "Automatic"


def test_trailing_newline_and_later_negative_prompt_lines() -> None:
    text = f"a\nNegative prompt: b\nNegative prompt: c\n{BASE}\n\n"
    params = GenerationParameters.from_infotext(text)
    assert (params.prompt, params.negative_prompt) == ("a", "b\nNegative prompt: c")


def test_from_infotext_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        GenerationParameters.from_infotext(b"bytes")  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------------

# Prompts are any text, except a line starting "Negative prompt:", which every infotext reader
# takes for the start of the negative prompt.
prompts = st.text(st.characters(exclude_characters="\x00")).filter(
    lambda text: not any(line.startswith("Negative prompt:") for line in text.split("\n"))
)
extra_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9 _\-/]{0,15}[A-Za-z0-9]", fullmatch=True).filter(
    lambda key: (
        key
        not in {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Clip skip"}
        | {"Animagine version", "Negative prompt", "Prompt", "Schedule type"}
    )
)
names = st.text(st.characters(exclude_characters="\x00"), min_size=1)
parameters = st.builds(
    GenerationParameters,
    prompt=prompts,
    negative_prompt=prompts,
    steps=st.integers(1, 500),
    sampler=names,
    guidance_scale=st.floats(0.01, 50, allow_nan=False),
    seed=st.integers(0, 2**64 - 1),
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
    model=st.text(st.characters(exclude_characters="\x00")),
    version=st.none() | st.sampled_from(["v3", "v3.1", "v4"]),
    model_hash=st.none() | st.text(st.characters(exclude_characters="\x00")),
    clip_skip=st.none() | st.integers(1, 12),
    hires=st.none()
    | st.builds(
        HiresParameters,
        scale=st.floats(1, 4),
        strength=st.floats(0, 1),
        upscaler=names,
        steps=st.none() | st.integers(1, 100),
    ),
    extra=st.dictionaries(
        extra_keys.filter(
            lambda key: (
                key not in {"Denoising strength", "Hires upscale", "Hires steps", "Hires upscaler"}
            )
        ),
        st.text(st.characters(exclude_characters="\x00")),
        max_size=4,
    ),
)


@given(parameters)
def test_property_infotext_round_trip(params: GenerationParameters) -> None:
    if params.version is None:
        # An Animagine-looking model name would give a version back; keep the property exact.
        params = attrs.evolve(params, model="m")
    # A "Schedule type" of Karras would join the sampler; the strategy never writes one.
    assert GenerationParameters.from_infotext(params.to_infotext()) == params


@given(parameters, st.none() | st.dictionaries(st.text(), st.integers() | st.text()))
def test_property_json_round_trip(params: GenerationParameters, structured: Any) -> None:
    params = attrs.evolve(params, structured_prompt=structured)
    data = json.loads(json.dumps(params.to_json()))
    assert GenerationParameters.from_json(data) == params


parameter_lines = st.lists(
    st.tuples(
        st.sampled_from(["Steps", "Sampler", "CFG scale", "Seed", "Size", "Clip skip", "Model"])
        | st.sampled_from(["Hires upscale", "Hires steps", "Hires upscaler", "Denoising strength"])
        | st.sampled_from(["Schedule type", "Animagine version", "x", "Prompt"])
        | extra_keys,
        st.sampled_from(["28", "0", "-1", "7.5", "nan", "832x1216", "0x8", "Karras", ""])
        | st.text(max_size=12),
    ),
    min_size=3,
    max_size=12,
).map(lambda pairs: ", ".join(f"{key}: {value}" for key, value in pairs))


@given(st.text() | st.tuples(st.text(), parameter_lines).map("\n".join))
def test_property_from_infotext_raises_only_metadata_error(text: str) -> None:
    with contextlib.suppress(MetadataError):
        GenerationParameters.from_infotext(text)


# --- our JSON ------------------------------------------------------------------------------------


def test_json_form() -> None:
    data = FULL.to_json()
    assert data == {
        "format": "animagine-parameters/1",
        "prompt": FULL.prompt,
        "negative_prompt": FULL.negative_prompt,
        "steps": 28,
        "sampler": "Euler a",
        "guidance_scale": 5.0,
        "seed": 123456789,
        "width": 832,
        "height": 1216,
        "model": "cagliostrolab/animagine-xl-4.0",
        "version": "v4",
        "model_hash": "6327eca98b",
        "clip_skip": 2,
        "hires": {
            "scale": 1.5,
            "strength": 0.55,
            "upscaler": "Latent (nearest-exact)",
            "steps": 10,
        },
        "structured_prompt": {"tags": [{"name": "1girl", "weight": 1.0}], "rating": None},
        "extra": {"Lora hashes": "add_detail: 7c6bad76eb54, x: 1", "ENSD": "31337"},
    }
    json.dumps(data)  # plain JSON types only
    assert GenerationParameters.from_json(data) == FULL


def test_from_json_defaults_optional_keys() -> None:
    optional = (
        "format",
        "version",
        "model_hash",
        "clip_skip",
        "hires",
        "structured_prompt",
        "extra",
    )
    data = {key: value for key, value in make().to_json().items() if key not in optional}
    assert GenerationParameters.from_json(data) == make(version=None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "animagine-parameters/2"}, "unsupported format"),
        ({"cfg": 7}, "unknown key"),
        ({"steps": "28"}, "steps must be an int"),
        ({"steps": 28.0}, "steps must be an int"),
        ({"seed": True}, "seed must be an int"),
        ({"prompt": None}, "prompt must be a str"),
        ({"hires": {"scale": 2}}, "hires is missing 'strength'"),
        ({"hires": {"scale": 2, "strength": 0.5, "upscaler": "L", "x": 1}}, "unknown hires key"),
        ({"hires": [2, 0.5]}, "hires must be an object"),
        ({"extra": ["a"]}, "extra must be an object"),
        ({"extra": {"Key": 1}}, "extra must map str to str"),
        ({"structured_prompt": "1girl"}, "structured_prompt must be a dict"),
    ],
)
def test_from_json_errors(change: dict[str, Any], message: str) -> None:
    data = {**make().to_json(), **change}
    with pytest.raises(MetadataError, match=message):
        GenerationParameters.from_json(data)


def test_from_json_missing_key_and_non_object() -> None:
    data = make().to_json()
    del data["seed"]
    with pytest.raises(MetadataError, match="missing key 'seed'"):
        GenerationParameters.from_json(data)
    with pytest.raises(MetadataError, match="expected a JSON object"):
        GenerationParameters.from_json([1, 2])  # type: ignore[arg-type]


# --- reproduction ------------------------------------------------------------------------------


def test_to_call_kwargs() -> None:
    assert FULL.to_call_kwargs() == {
        "prompt": FULL.prompt,
        "negative_prompt": FULL.negative_prompt,
        "steps": 28,
        "guidance_scale": 5.0,
        "sampler": "Euler a",
        "seed": 123456789,
        "width": 832,
        "height": 1216,
        "clip_skip": 2,
        "hires": FULL.hires,
        "add_quality_tags": False,
    }
    assert "clip_skip" not in make().to_call_kwargs()
    assert "hires" not in make().to_call_kwargs()


# --- PNG files ---------------------------------------------------------------------------------


@needs_pillow
def test_write_png_round_trip(tmp_path: Path) -> None:
    path = write_png(small_image(), tmp_path / "out.png", FULL)
    assert path == tmp_path / "out.png"
    assert read_parameters(path) == FULL
    assert read_parameters(str(path)) == FULL
    with Image.open(path) as image:
        assert image.size == (8, 8)
        assert image.info["parameters"] == FULL.to_infotext()
        assert json.loads(image.info["animagine"]) == FULL.to_json()
        assert read_parameters(image) == FULL


@needs_pillow
def test_read_parameters_from_bytes(tmp_path: Path) -> None:
    """An upload's bytes read as the file does: same answer, same errors, no file written."""
    path = write_png(small_image(), tmp_path / "out.png", FULL)
    assert read_parameters(path.read_bytes()) == FULL
    plain = tmp_path / "plain.png"
    small_image().save(plain)
    with pytest.raises(MetadataError, match="no generation parameters found in the image"):
        read_parameters(plain.read_bytes())
    with pytest.raises(MetadataError, match="the image is not an image Pillow can read"):
        read_parameters(b"not an image")
    with pytest.raises(MetadataError, match="empty"):
        read_parameters(b"")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "plain.png"]


@needs_pillow
def test_png_chunk_types(tmp_path: Path) -> None:
    latin = write_png(small_image(), tmp_path / "latin.png", make())
    assert chunk_types(latin) >= {b"tEXt"}
    assert b"iTXt" not in chunk_types(latin)
    # Non-Latin-1 infotext goes to iTXt as A1111 does; our JSON stays ASCII tEXt.
    unicode = write_png(small_image(), tmp_path / "unicode.png", make(prompt="初音ミク"))
    chunks = text_chunks(unicode)
    assert chunks[b"parameters"][0] == b"iTXt"
    assert chunks[b"animagine"][0] == b"tEXt"
    assert read_parameters(unicode).prompt == "初音ミク"


@needs_pillow
def test_png_info_for_callers_who_save(tmp_path: Path) -> None:
    info = png_info(FULL)
    assert isinstance(info, PngImagePlugin.PngInfo)
    small_image().save(tmp_path / "own.png", pnginfo=info)
    assert read_parameters(tmp_path / "own.png") == FULL
    with pytest.raises(TypeError, match="GenerationParameters"):
        png_info({"prompt": "x"})  # type: ignore[arg-type]


@needs_pillow
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_write_png_modes(tmp_path: Path, mode: str) -> None:
    path = write_png(small_image(mode), tmp_path / f"{mode}.png", make())
    with Image.open(path) as image:
        assert image.mode == mode


@needs_pillow
def test_sd_parsers_reads_our_png(tmp_path: Path) -> None:
    """An independent reader (sd-parsers, from PyPI) recovers the A1111 fields."""
    sd_parsers = pytest.importorskip("sd_parsers")

    params = make(
        prompt="1girl, firefly \\(honkai: star rail\\), solo,\nBREAK\nstarry sky, masterpiece",
        negative_prompt="lowres, bad anatomy, (worst quality:1.2)",
        sampler="DPM++ 2M Karras",
        guidance_scale=6.5,
        seed=3141592653,
        model="animagine-xl-4.0",
        model_hash="6327eca98b",
        clip_skip=2,
    )
    path = write_png(small_image(), tmp_path / "sd.png", params)
    info = sd_parsers.ParserManager().parse(path)
    assert info is not None
    assert info.generator.name == "AUTOMATIC1111"
    assert [str(prompt) for prompt in info.prompts] == [params.prompt]
    assert [str(prompt) for prompt in info.negative_prompts] == [params.negative_prompt]
    (sampler,) = info.samplers
    assert sampler.name == "DPM++ 2M Karras"
    assert sampler.parameters["seed"] == "3141592653"
    assert sampler.parameters["steps"] == "28"
    assert float(sampler.parameters["cfg_scale"]) == 6.5
    assert sampler.model is not None
    assert (sampler.model.name, sampler.model.hash) == ("animagine-xl-4.0", "6327eca98b")
    assert info.metadata["Size"] == "832x1216"
    assert info.metadata["Animagine version"] == "v4"


@needs_pillow
def test_no_overwrite_keeps_original_bytes(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"out\.png"):
        write_png(small_image(), path, make())
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.png"]


@needs_pillow
def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    write_png(small_image(), path, make(seed=5), overwrite=True)
    assert read_parameters(path).seed == 5
    assert os.listdir(tmp_path) == ["out.png"]


@needs_pillow
def test_file_created_while_encoding_is_not_clobbered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.png"
    real_save = Image.Image.save

    def save_then_race(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        real_save(self, fp, *args, **kwargs)
        path.write_bytes(b"someone else")  # appears after the up-front check

    monkeypatch.setattr(Image.Image, "save", save_then_race)
    with pytest.raises(FileExistsError):
        write_png(small_image(), path, make())
    assert path.read_bytes() == b"someone else"
    assert os.listdir(tmp_path) == ["out.png"]


@needs_pillow
def test_failed_encode_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_png(small_image(), tmp_path / "out.png", make())
    assert os.listdir(tmp_path) == []


@needs_pillow
def test_without_hard_links_still_no_clobber(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: Any, target: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = write_png(small_image(), tmp_path / "out.png", make())
    assert read_parameters(path) == make()
    with pytest.raises(FileExistsError):
        write_png(small_image(), path, make(seed=9))
    assert read_parameters(path) == make()
    assert os.listdir(tmp_path) == ["out.png"]


@needs_pillow
def test_written_file_permissions_follow_umask(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    try:
        path = write_png(small_image(), tmp_path / "out.png", make())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@needs_pillow
def test_write_png_rejects_non_images(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"PIL\.Image\.Image"):
        write_png(b"pixels", tmp_path / "out.png", make())  # type: ignore[arg-type]


# --- reading other tools' images -----------------------------------------------------------------


def save_png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    small_image().save(path, pnginfo=info)
    return path


@needs_pillow
@pytest.mark.parametrize(
    "name",
    [
        "a1111_v1_8_animagine31.txt",
        "a1111_v1_10_hires_schedule.txt",
        "a1111_old_no_negative.txt",
        "a1111_img2img.txt",
        "a1111_dynamic_prompts.txt",
    ],
)
def test_read_a1111_png(tmp_path: Path, name: str) -> None:
    text = fixture_text(name)
    path = save_png(tmp_path / "a1111.png", {"parameters": text})
    assert read_parameters(path) == GenerationParameters.from_infotext(text)


@needs_pillow
def test_our_chunk_is_preferred(tmp_path: Path) -> None:
    path = save_png(
        tmp_path / "both.png",
        {"parameters": make(seed=1).to_infotext(), "animagine": json.dumps(make(seed=2).to_json())},
    )
    assert read_parameters(path).seed == 2


@needs_pillow
def test_demo_3_1() -> None:
    params = read_demo("demo_3_1.json")
    assert params.prompt == (
        "1girl, frieren, sousou no frieren, elf, white hair, masterpiece, best quality, "
        "very aesthetic, absurdres"
    )
    assert params.negative_prompt.startswith("nsfw, lowres, (bad), text")
    assert (params.width, params.height) == (896, 1152)
    assert (params.steps, params.guidance_scale, params.seed) == (28, 7.0, 1178286131)
    assert params.sampler == "Euler a"
    assert (params.model, params.model_hash, params.version) == (
        "Animagine XL 3.1",
        "e3c47aedb0",
        "v3.1",
    )
    assert params.hires is None
    assert dict(params.extra) == {
        "sdxl_style": "(None)",
        "add_quality_tags": "true",
        "quality_tags": "Standard v3.1",
    }
    assert params.to_call_kwargs()["add_quality_tags"] is False


@needs_pillow
def test_demo_3_1_with_upscaler_has_no_model() -> None:
    params = read_demo("demo_3_1_upscaler.json")
    assert params.prompt.startswith("1girl, hatsune miku, vocaloid, 初音ミク")
    assert params.guidance_scale == 7.5
    assert params.sampler == "DPM++ 2M Karras"
    assert (params.width, params.height) == (896, 1152)  # the first pass, as A1111's Size
    assert params.hires == HiresParameters(
        scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)"
    )
    assert (params.model, params.model_hash, params.version) == ("", None, None)
    assert params.extra["sdxl_style"] == "Anime"


@needs_pillow
def test_demo_3_0() -> None:
    params = read_demo("demo_3_0_cagliostro_webui.json")
    assert params.negative_prompt.endswith("artist name, ")  # the 3.0 preset's own trailing ", "
    assert params.prompt.endswith("masterpiece, best quality")
    assert (params.model, params.version) == ("", None)
    assert dict(params.extra) == {
        "sdxl_style": "(None)",
        "add_quality_tags": "true",
        "quality_tags": "Standard",
    }
    # Infotext keeps the trailing white space of the negative prompt.
    assert GenerationParameters.from_infotext(params.to_infotext()) == params


@needs_pillow
def test_demo_4_0_json_in_parameters_chunk(tmp_path: Path) -> None:
    text = fixture_text("demo_4_0_opt.json")
    path = save_png(tmp_path / "demo4.png", {"parameters": text})
    params = read_parameters(path)
    assert params.prompt.endswith("masterpiece, high score, great score, absurdres")
    assert (params.width, params.height, params.guidance_scale) == (832, 1216, 5.0)
    assert (params.model, params.model_hash, params.version) == (
        "Animagine XL 4.0 Opt",
        "6327eca98b",
        "v4",
    )
    assert dict(params.extra) == {"style_preset": "(None)"}


def read_demo(name: str) -> GenerationParameters:
    """Read a demo fixture the way the demo stores it: JSON in a tEXt `metadata` chunk."""
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("metadata", fixture_text(name))
    small_image().save(buffer, format="PNG", pnginfo=info)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return read_parameters(image)


@needs_pillow
def test_demo_json_floats_from_gradio_sliders(tmp_path: Path) -> None:
    data = json.loads(fixture_text("demo_3_1.json"))
    data.update(num_inference_steps=28.0, seed=5.0)
    path = save_png(tmp_path / "d.png", {"metadata": json.dumps(data)})
    params = read_parameters(path)
    assert (params.steps, params.seed) == (28, 5)


@needs_pillow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resolution": "huge"}, "resolution"),
        ({"num_inference_steps": 28.5}, "num_inference_steps"),
        ({"seed": "1"}, "seed"),
        ({"Model": 3}, "Model"),
        ({"use_upscaler": True}, "use_upscaler"),
        ({"use_upscaler": {"upscale_by": 1.5}}, "upscaler_strength"),
    ],
)
def test_bad_demo_json(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    data = {**json.loads(fixture_text("demo_3_1.json")), **change}
    path = save_png(tmp_path / "d.png", {"metadata": json.dumps(data)})
    with pytest.raises(MetadataError, match=message):
        read_parameters(path)


@needs_pillow
def test_other_json_in_metadata_chunk_is_named(tmp_path: Path) -> None:
    path = save_png(tmp_path / "d.png", {"metadata": json.dumps({"tags": ["a"]})})
    with pytest.raises(MetadataError, match=r"'metadata' chunk .* missing key 'prompt'"):
        read_parameters(path)


@needs_pillow
def test_infotext_prompt_starting_with_brace_is_not_json(tmp_path: Path) -> None:
    params = make(prompt='{"a": 1}, {red|blue} hair')
    path = save_png(tmp_path / "p.png", {"parameters": params.to_infotext()})
    assert read_parameters(path) == params


@needs_pillow
def test_text_chunk_after_image_data(tmp_path: Path) -> None:
    """Some tools append their chunks after IDAT; Pillow shows those only in `.text`."""
    buffer = io.BytesIO()
    small_image().save(buffer, format="PNG")
    data = buffer.getvalue()
    body = b"parameters\x00" + make().to_infotext().encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end = data.rindex(b"IEND") - 4
    path = tmp_path / "late.png"
    path.write_bytes(data[:end] + chunk + data[end:])
    assert read_parameters(path) == make()


@needs_pillow
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_jpeg_user_comment(tmp_path: Path, encoding: str) -> None:
    params = make(prompt="1girl, 初音ミク, solo")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + params.to_infotext().encode(encoding)
    path = tmp_path / "a1111.jpg"
    small_image().save(path, format="JPEG", exif=exif.tobytes())
    assert read_parameters(path) == params


@needs_pillow
def test_webp_ascii_user_comment(tmp_path: Path) -> None:
    params = make()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + params.to_infotext().encode("ascii")
    path = tmp_path / "a1111.webp"
    small_image().save(path, format="WEBP", exif=exif.tobytes())
    assert read_parameters(path) == params


@needs_pillow
def test_no_parameters_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    small_image().save(path)
    with pytest.raises(MetadataError, match=r"no generation parameters found in .*plain\.png"):
        read_parameters(path)
    with pytest.raises(MetadataError, match="no generation parameters found in <image>"):
        read_parameters(small_image())


@needs_pillow
def test_unreadable_chunks_raise_metadata_error(tmp_path: Path) -> None:
    path = save_png(tmp_path / "bad.png", {"animagine": "{not json"})
    with pytest.raises(MetadataError, match=r"'animagine' chunk of .*bad\.png is not valid JSON"):
        read_parameters(path)
    path = save_png(tmp_path / "bad2.png", {"animagine": json.dumps({"prompt": "x"})})
    with pytest.raises(MetadataError, match="missing key"):
        read_parameters(path)
    path = save_png(tmp_path / "bad3.png", {"parameters": "just a prompt"})
    with pytest.raises(MetadataError, match=r"'parameters' chunk of .*no A1111 parameters line"):
        read_parameters(path)


@needs_pillow
def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(MetadataError, match="not an image"):
        read_parameters(path)
    with pytest.raises(FileNotFoundError):
        read_parameters(tmp_path / "missing.png")
    with pytest.raises(TypeError, match="source must be"):
        read_parameters(42)  # type: ignore[arg-type]


def test_import_does_not_load_pillow() -> None:
    code = (
        "import sys, animagine.metadata\n"
        "heavy = {'PIL', 'torch', 'diffusers', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- helpers -----------------------------------------------------------------------------------


def png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()[8:]
    chunks = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        chunks.append((data[4:8], data[8 : 8 + length]))
        data = data[12 + length :]
    return chunks


def chunk_types(path: Path) -> set[bytes]:
    return {kind for kind, _ in png_chunks(path)}


def text_chunks(path: Path) -> dict[bytes, tuple[bytes, bytes]]:
    return {
        body.split(b"\x00", 1)[0]: (kind, body)
        for kind, body in png_chunks(path)
        if kind in (b"tEXt", b"iTXt")
    }


def test_missing_pillow_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        read_parameters("image.png")
