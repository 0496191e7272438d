"""`animagine.Generator` end to end on the tiny random SDXL (64x64, 2 steps, CPU).

Tests that only check what would be sent to the pipeline replace
``StableDiffusionXLPipeline.__call__`` with a spy (``spy`` fixture), so they can use real default
sizes (832x1216) for free.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import animagine
from animagine import AnimagineError, Prompt, PromptSyntaxError, UnknownVersionError, get_version
from animagine.errors import ModelLoadError
from animagine.metadata import HiresParameters

pytestmark = [
    pytest.mark.generate,
]

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2, "progress": False}
#: SMALL's options without the run switch: what Generator.check takes.
OPTIONS: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}


def pixels(image: Any) -> Any:
    import numpy as np

    return np.asarray(image).astype(np.int16)


@pytest.fixture(scope="module")
def gen(tiny_pipeline: Any) -> Any:
    from animagine.generation import Generator

    return Generator(tiny_pipeline, version="v4")


@pytest.fixture(scope="module")
def gen_v3(tiny_pipeline: Any) -> Any:
    from animagine.generation import Generator

    return Generator(tiny_pipeline, version="v3")


class Spy:
    """Stands in for ``StableDiffusionXLPipeline.__call__``: records, returns grey images."""

    def __init__(self, *, nan: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.nan = nan

    def __call__(self, pipeline: Any, **kwargs: Any) -> Any:
        import numpy as np

        self.calls.append({**kwargs, "scheduler": pipeline.scheduler})
        count = kwargs["prompt_embeds"].shape[0]
        images = np.full((count, kwargs["height"], kwargs["width"], 3), 0.5, dtype=np.float32)
        if self.nan:
            images[0] = np.nan
        return SimpleNamespace(images=images)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Spy:
        from diffusers import StableDiffusionXLPipeline

        def call(pipeline: Any, **kwargs: Any) -> Any:
            return self(pipeline, **kwargs)

        monkeypatch.setattr(StableDiffusionXLPipeline, "__call__", call)
        return self


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy().install(monkeypatch)


@pytest.fixture
def no_model_work(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> Iterator[Spy]:
    """Fails the test if the prompt encoder runs; yields the pipeline spy."""
    from animagine.generation import PromptEncoder

    def encode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the prompt was encoded before validation finished")

    monkeypatch.setattr(PromptEncoder, "encode", encode)
    yield spy
    assert spy.calls == [], "the pipeline ran"


# --- the lazy public names -----------------------------------------------------------------------


def test_importing_the_generator_module_stays_light() -> None:
    """The module (and its error classes) import without torch; loading imports it on use."""
    code = (
        "import sys, animagine.generation as g; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'PIL', 'numpy') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_generator_resolves_lazily() -> None:
    import animagine.generation

    assert animagine.Generator is animagine.generation.Generator
    assert animagine.GenerationResult is animagine.generation.GenerationResult
    assert animagine.GenerationOptions is animagine.generation.GenerationOptions
    assert animagine.PromptEncoder is animagine.generation.PromptEncoder
    assert animagine.Generator.__module__ == "animagine"


# --- wrapping and loading ------------------------------------------------------------------------


def test_wrap_a_pipeline(gen: Any, tiny_pipeline: Any) -> None:
    import torch

    assert gen.pipeline is tiny_pipeline
    assert gen.version == get_version("v4")
    assert gen.dtype == torch.float32
    assert gen.device == torch.device("cpu")
    assert gen.to("cpu") is gen
    assert "4.0" in repr(gen)


@pytest.mark.parametrize("missing", ["text_encoder_2", "tokenizer_2", "unet"])
def test_wrap_rejects_non_sdxl(tiny_pipeline: Any, missing: str) -> None:
    from animagine.errors import UnsupportedPipelineError
    from animagine.generation import Generator

    parts = {name: getattr(tiny_pipeline, name) for name in tiny_pipeline.components}
    parts[missing] = None
    fake = SimpleNamespace(**parts, __call__=None)
    with pytest.raises(UnsupportedPipelineError, match=missing) as info:
        Generator(fake, version="v4")
    assert isinstance(info.value, (AnimagineError, TypeError))


def test_wrap_unknown_version(tiny_pipeline: Any) -> None:
    from animagine.generation import Generator

    with pytest.raises(UnknownVersionError):
        Generator(tiny_pipeline, version="v9")


def test_from_pretrained_needs_a_version_for_a_folder_named_otherwise(
    tiny_model_paths: Any,
) -> None:
    from animagine.generation import Generator

    with pytest.raises(UnknownVersionError, match="version="):
        Generator.from_pretrained(tiny_model_paths.folder)


def test_from_pretrained_folder(tiny_model_paths: Any, gen: Any) -> None:
    from diffusers import EulerAncestralDiscreteScheduler

    from animagine.generation import Generator

    loaded = Generator.from_pretrained(tiny_model_paths.folder, version="v4")
    assert loaded.model == "tiny-sdxl"
    assert isinstance(loaded.pipeline.scheduler, EulerAncestralDiscreteScheduler)
    assert loaded.pipeline.watermark is None
    result = loaded("1girl, smile", seed=3, **SMALL)
    assert result.parameters[0].model == "tiny-sdxl"
    # Same weights as the in-memory tiny pipeline: same pixels.
    assert (pixels(result.image) == pixels(gen("1girl, smile", seed=3, **SMALL).image)).all()


def test_from_pretrained_infers_the_version_from_the_folder_name(
    tiny_model_paths: Any, tmp_path: Path
) -> None:
    from animagine.generation import Generator

    folder = tmp_path / "animagine-xl-3.1"
    folder.symlink_to(tiny_model_paths.folder, target_is_directory=True)
    loaded = Generator.from_pretrained(folder)
    assert loaded.version == get_version("v3.1")
    assert loaded.model == "animagine-xl-3.1"
    assert loaded("1girl", seed=1, **SMALL).parameters[0].prompt == (
        "1girl, masterpiece, best quality, very aesthetic, absurdres"
    )


def test_from_pretrained_options(monkeypatch: pytest.MonkeyPatch, tiny_model_paths: Any) -> None:
    """safetensors only, no watermarker, the dtype under the name this diffusers wants."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from animagine.generation import Generator
    from animagine.testing import make_tiny_pipeline

    seen: dict[str, Any] = {}

    def fake(model: Any, **kwargs: Any) -> Any:
        seen.update(kwargs, model=model)
        return make_tiny_pipeline(0)

    monkeypatch.setattr(StableDiffusionXLPipeline, "from_pretrained", fake)
    Generator.from_pretrained(tiny_model_paths.folder, version="v4", dtype="bfloat16", variant="x")
    assert seen["use_safetensors"] is True
    assert seen["add_watermarker"] is False
    assert seen["variant"] == "x"
    assert seen["dtype"] is torch.bfloat16  # diffusers >= 0.40 names it dtype


def test_from_pretrained_dtype_for_real(tiny_model_paths: Any) -> None:
    import torch

    from animagine.generation import Generator

    loaded = Generator.from_pretrained(tiny_model_paths.folder, version="v4", dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("dtype", "error"),
    [("int8", ValueError), ("float64", ValueError), (16, TypeError)],
)
def test_from_pretrained_bad_dtype(tiny_model_paths: Any, dtype: Any, error: type) -> None:
    from animagine.generation import Generator

    with pytest.raises(error, match="dtype") as info:
        Generator.from_pretrained(tiny_model_paths.folder, version="v4", dtype=dtype)
    assert isinstance(info.value, AnimagineError)


def test_from_pretrained_refuses_pickle_weights(tmp_path: Path) -> None:
    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    folder = tmp_path / "animagine-xl-4.0"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        Generator.from_pretrained(folder)
    with pytest.raises(AnimagineError, match="use_safetensors"):
        Generator.from_pretrained(folder, use_safetensors=False)


def test_from_pretrained_bad_paths(tmp_path: Path, tiny_model_paths: Any) -> None:
    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    with pytest.raises(ModelLoadError, match="from_single_file"):
        Generator.from_pretrained(tiny_model_paths.single_file, version="v4")
    with pytest.raises(ModelLoadError, match="no such folder or file"):
        Generator.from_pretrained(tmp_path / "missing" / "animagine-xl-4.0")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"model_index\.json"):
        Generator.from_pretrained(tmp_path / "empty", version="v4")


def test_from_single_file(tiny_model_paths: Any, gen: Any) -> None:
    from animagine.generation import Generator

    loaded = Generator.from_single_file(
        tiny_model_paths.single_file, version="v4", config=tiny_model_paths.folder
    )
    assert loaded.model == "tiny-sdxl"
    image = loaded("1girl", seed=9, **SMALL).image
    assert (pixels(image) == pixels(gen("1girl", seed=9, **SMALL).image)).all()


def test_from_single_file_version_from_the_file_name(tiny_model_paths: Any, tmp_path: Path) -> None:
    from animagine.generation import Generator

    file = tmp_path / "animagine-xl-3.1.safetensors"
    file.symlink_to(tiny_model_paths.single_file)
    loaded = Generator.from_single_file(file, config=tiny_model_paths.folder)
    assert loaded.version == get_version("v3.1")
    assert loaded.model == "animagine-xl-3.1"
    with pytest.raises(UnknownVersionError, match="version="):
        Generator.from_single_file(tiny_model_paths.single_file, config=tiny_model_paths.folder)


def test_from_single_file_errors(tmp_path: Path, tiny_model_paths: Any) -> None:
    from animagine.generation import Generator

    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="allow_pickle=True"):
        Generator.from_single_file(checkpoint, version="v4", config=tiny_model_paths.folder)
    with pytest.raises(ModelLoadError, match="safetensors"):
        Generator.from_single_file(tmp_path / "model.gguf", version="v4")
    with pytest.raises(ModelLoadError, match="no such checkpoint"):
        Generator.from_single_file(tmp_path / "missing.safetensors", version="v4")
    with pytest.raises(ModelLoadError, match=r"model_index\.json"):
        Generator.from_single_file(tiny_model_paths.single_file, version="v4", config=tmp_path)


# --- float16 VAE safety --------------------------------------------------------------------------


def test_float16_loading_gets_a_safe_vae(
    monkeypatch: pytest.MonkeyPatch, tiny_model_paths: Any
) -> None:
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline

    from animagine.generation import Generator
    from animagine.testing import make_tiny_pipeline

    seen: dict[str, Any] = {}
    fix_vae = object()
    fetched: list[str] = []

    def fetch_vae(hub_id: str, **kwargs: Any) -> Any:
        fetched.append(hub_id)
        return fix_vae

    def fake(model: Any, **kwargs: Any) -> Any:
        seen.clear()
        seen.update(kwargs)
        pipe: Any = make_tiny_pipeline(0)
        pipe.vae.register_to_config(force_upcast=False)
        return pipe

    monkeypatch.setattr(StableDiffusionXLPipeline, "from_pretrained", fake)
    monkeypatch.setattr(AutoencoderKL, "from_pretrained", fetch_vae)
    v3 = Generator.from_pretrained(tiny_model_paths.folder, version="v3", dtype="fp16")
    assert seen["vae"] is fix_vae
    assert fetched == ["madebyollin/sdxl-vae-fp16-fix"]
    assert seen["dtype"] is torch.float16
    assert v3.pipeline.vae.config.force_upcast is False
    v4 = Generator.from_pretrained(tiny_model_paths.folder, version="v4", dtype="fp16")
    assert "vae" not in seen
    assert v4.pipeline.vae.config.force_upcast is True
    kept = Generator.from_pretrained(tiny_model_paths.folder, version="v3", dtype="fp16", vae=None)
    assert "vae" not in seen  # vae=None keeps the bundled VAE, not "no VAE"
    assert kept.pipeline.vae.config.force_upcast is True
    for dtype in ("float32", "bfloat16"):
        Generator.from_pretrained(tiny_model_paths.folder, version="v3", dtype=dtype)
        assert "vae" not in seen  # only float16 overflows
    assert len(fetched) == 1


def test_nan_images_warn_and_come_back_black(gen: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    Spy(nan=True).install(monkeypatch)
    with pytest.warns(RuntimeWarning, match="float16"):
        result = gen("1girl", seed=1, num_images=2, **SMALL)
    assert pixels(result.images[0]).max() == 0
    assert pixels(result.images[1]).min() > 0


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_pixels_other_seed_other_pixels(gen: Any) -> None:
    first = gen("1girl, smile", seed=123, **SMALL)
    again = gen("1girl, smile", seed=123, **SMALL)
    other = gen("1girl, smile", seed=124, **SMALL)
    assert first.seeds == (123,)
    assert (pixels(first.image) == pixels(again.image)).all()
    assert (pixels(first.image) != pixels(other.image)).any()


def test_batch_seeds_count_up_and_match_single_images(gen: Any) -> None:
    batch = gen("1girl", seed=7, num_images=3, **SMALL)
    assert batch.seeds == (7, 8, 9)
    assert [p.seed for p in batch.parameters] == [7, 8, 9]
    assert len(batch.images) == 3
    single = gen("1girl", seed=8, **SMALL)
    assert abs(pixels(batch.images[1]) - pixels(single.image)).max() <= 1


def test_seed_none_is_drawn_recorded_and_reproduces(gen: Any) -> None:
    result = gen("1girl", **SMALL)
    (seed,) = result.seeds
    assert 0 <= seed < 2**32
    assert result.parameters[0].seed == seed
    again = gen("1girl", seed=seed, **SMALL)
    assert (pixels(result.image) == pixels(again.image)).all()


# --- defaults ------------------------------------------------------------------------------------


def test_v4_defaults(gen: Any, spy: Spy) -> None:
    from diffusers import EulerAncestralDiscreteScheduler

    version = get_version("v4")
    result = gen("smile, 1girl", seed=1)
    (call,) = spy.calls
    assert call["num_inference_steps"] == 28
    assert call["guidance_scale"] == 5.0
    assert (call["width"], call["height"]) == (832, 1216)
    assert isinstance(call["scheduler"], EulerAncestralDiscreteScheduler)
    assert call["num_images_per_prompt"] == 1
    assert len(call["generator"]) == 1
    params = result.parameters[0]
    assert params.prompt == "1girl, smile, masterpiece, high score, great score, absurdres"
    assert params.negative_prompt == version.negative_prompt
    assert (params.steps, params.guidance_scale, params.sampler) == (28, 5.0, "Euler a")
    assert (params.width, params.height) == (832, 1216)
    assert params.version == "v4"
    assert params.clip_skip is None
    assert params.structured_prompt == Prompt.parse(params.prompt, version="v4").to_json()
    assert result.image.size == (832, 1216)


def test_v3_defaults(gen_v3: Any, spy: Spy) -> None:
    result = gen_v3("1girl, smile", seed=1, **SMALL)
    params = result.parameters[0]
    assert spy.calls[0]["guidance_scale"] == 7.0
    assert params.guidance_scale == 7.0
    assert params.prompt == "masterpiece, best quality, 1girl, smile"  # 3.0 prepends
    assert params.negative_prompt == get_version("v3").negative_prompt
    assert params.version == "v3"


def test_quality_tags_not_added_twice_or_when_asked_not_to(gen: Any, spy: Spy) -> None:
    plain = gen("1girl, smile", add_quality_tags=False, seed=1, **SMALL)
    assert plain.parameters[0].prompt == "1girl, smile"
    present = gen("masterpiece, 1girl", seed=1, **SMALL)
    assert present.parameters[0].prompt.count("masterpiece") == 1


def test_explicit_negative_and_empty_negative(gen: Any, spy: Spy) -> None:
    import torch

    empty = gen("1girl", negative_prompt="", seed=1, **SMALL)
    assert empty.parameters[0].negative_prompt == ""
    assert not spy.calls[0]["negative_prompt_embeds"].any()  # zeros: force_zeros_for_empty_prompt
    custom = gen("1girl", negative_prompt="lowres, (bad hands:1.2)", seed=1, **SMALL)
    assert custom.parameters[0].negative_prompt == "lowres, (bad hands:1.2)"
    assert not torch.equal(spy.calls[1]["negative_prompt_embeds"], spy.calls[0]["prompt_embeds"])


def test_explicit_settings_are_sent_and_recorded(gen: Any, spy: Spy) -> None:
    seen: list[int] = []

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.append(step)
        return kwargs

    result = gen(
        "1girl", guidance_scale=6, steps=20, sampler="euler", seed=5, width=1024, height=1024,
        clip_skip=1, callback_on_step_end=callback, progress=False,
    )  # fmt: skip
    call = spy.calls[0]
    assert call["guidance_scale"] == 6.0
    assert call["num_inference_steps"] == 20
    assert call["callback_on_step_end"] is callback
    params = result.parameters[0]
    assert (params.guidance_scale, params.steps, params.sampler) == (6.0, 20, "Euler")
    assert (params.width, params.height, params.clip_skip) == (1024, 1024, 1)


def test_callback_runs_each_step(gen: Any) -> None:
    seen: list[int] = []

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.append(step)
        return kwargs

    gen("1girl", seed=1, callback_on_step_end=callback, **SMALL)
    assert seen == [0, 1]


def test_prompt_object_and_long_weighted_prompt(gen: Any) -> None:
    prompt = Prompt.parse("1girl, (smile:1.3), [night]", version="v4")
    from_object = gen(prompt, seed=2, **SMALL)
    from_text = gen("1girl, (smile:1.3), [night]", seed=2, **SMALL)
    assert (pixels(from_object.image) == pixels(from_text.image)).all()
    long = ", ".join(f"tag number {i}" for i in range(30))  # ~400 tokens in the byte vocab
    result = gen(f"1girl, {long}, (red eyes:1.2)", seed=2, **SMALL)
    assert "tag number 29" in result.parameters[0].prompt


def test_clip_skip_changes_the_image(gen: Any) -> None:
    base = gen("1girl", seed=4, **SMALL)
    skipped = gen("1girl", seed=4, clip_skip=1, **SMALL)
    assert skipped.parameters[0].clip_skip == 1
    assert (pixels(base.image) != pixels(skipped.image)).any()
    zero = gen("1girl", seed=4, clip_skip=0, **SMALL)
    assert zero.parameters[0].clip_skip is None
    assert (pixels(base.image) == pixels(zero.image)).all()


# --- aspect --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "size"),
    [
        ("portrait", (832, 1216)),
        ("Landscape", (1216, 832)),
        ("square", (1024, 1024)),
        ("2:3", (832, 1216)),
        ("13:19", (832, 1216)),
        ("832x1216", (832, 1216)),
        (" 3:2 ", (1216, 832)),
        ("16:9", (1344, 768)),
        ("7:4", (1344, 768)),
        ("9:16", (768, 1344)),
        ("21:9", (1536, 640)),
        ("4:3", (1152, 896)),
        ("1:1", (1024, 1024)),
        ("640x1536", (640, 1536)),
    ],
)
def test_aspect(gen: Any, spy: Spy, aspect: str, size: tuple[int, int]) -> None:
    result = gen("1girl", aspect=aspect, seed=1, steps=1, progress=False)
    call = spy.calls[0]
    assert (call["width"], call["height"]) == size
    assert (result.parameters[0].width, result.parameters[0].height) == size


def test_aspect_agreeing_with_width_is_fine(gen: Any, spy: Spy) -> None:
    gen("1girl", aspect="landscape", width=1216, seed=1, steps=1, progress=False)
    assert (spy.calls[0]["width"], spy.calls[0]["height"]) == (1216, 832)


# --- validation: typed errors naming the argument, before any model work -------------------------

BAD_CALLS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"width": 100}, ValueError, r"width must be a multiple of 8, got 100 \(nearest: 96 or 104\)"),
    ({"width": 56}, ValueError, "width must be between 64 and 4096"),
    ({"height": 4104}, ValueError, "height must be between"),
    ({"height": "64"}, TypeError, "height must be an int"),
    ({"width": 64.0}, TypeError, "width must be an int"),
    ({"steps": 0}, ValueError, "steps must be between 1 and 200"),
    ({"steps": 201}, ValueError, "steps"),
    ({"steps": 2.5}, TypeError, "steps must be an int"),
    ({"guidance_scale": 0}, ValueError, "guidance_scale"),
    ({"guidance_scale": -1.0}, ValueError, "guidance_scale"),
    ({"guidance_scale": math.nan}, ValueError, "guidance_scale"),
    ({"guidance_scale": math.inf}, ValueError, "guidance_scale"),
    ({"guidance_scale": 30.5}, ValueError, "guidance_scale"),
    ({"guidance_scale": "5"}, TypeError, "guidance_scale must be a number"),
    ({"sampler": "Euler b"}, ValueError, r"unknown sampler 'Euler b'.*'Euler a'"),
    ({"sampler": 1}, TypeError, "sampler must be a str"),
    ({"seed": -1}, ValueError, "seed must be between 0"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"seed": True}, TypeError, "seed must be an int"),
    ({"seed": "1"}, TypeError, "seed must be an int"),
    ({"seed": 2**64 - 1, "num_images": 2}, ValueError, "seed=.*num_images=2"),
    ({"num_images": 0}, ValueError, "num_images must be between 1 and 64"),
    ({"num_images": 65}, ValueError, "num_images"),
    ({"add_quality_tags": "no"}, TypeError, "add_quality_tags must be a bool"),
    ({"clip_skip": -1}, ValueError, "clip_skip"),
    ({"clip_skip": 5}, ValueError, "clip_skip must be between 0 and 4"),
    ({"clip_skip": 1.0}, TypeError, "clip_skip"),
    ({"negative_prompt": 3}, TypeError, "negative_prompt must be a str"),
    ({"negative_prompt": "(lowres"}, PromptSyntaxError, "line 1"),
    ({"prompt": 3}, TypeError, "prompt must be a str or animagine.Prompt"),
    ({"prompt": "1girl, (smile"}, PromptSyntaxError, "line 1"),
    ({"prompt": Prompt.parse("1girl", version="v3")}, ValueError, r"prompt.convert\('v4'\)"),
    ({"aspect": "5:4"}, ValueError, r"aspect='5:4'.*13:19.*2:3"),
    ({"aspect": "1000x1000"}, ValueError, "aspect='1000x1000'"),
    ({"aspect": "wide"}, ValueError, "portrait"),
    ({"aspect": 1.5}, TypeError, "aspect must be a str"),
    ({"aspect": "portrait", "width": 1216}, ValueError, "aspect='portrait'.*conflicts"),
    ({"aspect": "square", "height": 832}, ValueError, "conflicts"),
    ({"callback_on_step_end": 3}, TypeError, "callback_on_step_end must be callable"),
    ({"progress": "yes"}, TypeError, "progress must be a bool"),
    ({"hires": 0.5}, ValueError, r"hires\.scale must be between 1 and 4, got 0.5"),
    ({"hires": 4.5}, ValueError, "must be between 1 and 4"),
    ({"hires": math.nan}, ValueError, "hires"),
    ({"hires": True}, TypeError, "hires must be a HiresParameters, a number"),
    ({"hires": "1.5"}, TypeError, "hires must be a HiresParameters, a number"),
    ({"hires": {"scale": 1.5, "denoise": 0.3}}, ValueError, "unknown hires key.*'denoise'"),
    ({"hires": {"strength": 0.3}}, ValueError, "hires needs a 'scale'"),
    ({"stpes": 20}, TypeError, "unknown option 'stpes'; did you mean 'steps'"),
    (
        {"hires": HiresParameters(scale=5, strength=0.5, upscaler="Latent")},
        ValueError,
        "hires.scale must be between 1 and 4, got 5.0",
    ),
    (
        {"hires": HiresParameters(scale=1.5, strength=0, upscaler="Latent")},
        ValueError,
        "hires.strength must be above 0",
    ),
    (
        {"hires": HiresParameters(scale=1.5, strength=0.5, upscaler="Latent", steps=201)},
        ValueError,
        "hires.steps must be between 1 and 200",
    ),
    (
        {"hires": HiresParameters(scale=1.5, strength=0.4, upscaler="Latent"), "steps": 2},
        ValueError,
        r"hires.strength=0.4 with 2 hires steps denoises for int\(2 \* 0.4\) = 0 steps",
    ),
    (
        {"hires": HiresParameters(scale=1.5, strength=0.5, upscaler="R-ESRGAN 4x+ Anime6B")},
        ValueError,
        r"unknown hires.upscaler 'R-ESRGAN 4x\+ Anime6B'.*'Latent \(nearest-exact\)'",
    ),
    ({"hires": 1.5, "width": 4096, "height": 64}, ValueError, "makes 4096x64 into 6144x96"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), BAD_CALLS, ids=[repr(c[0])[:40] for c in BAD_CALLS]
)
def test_bad_arguments_raise_before_any_model_work(
    gen: Any, no_model_work: Spy, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    call = {"prompt": "1girl", "seed": 1, **kwargs}
    prompt = call.pop("prompt")
    with pytest.raises(error, match=message) as info:
        gen(prompt, **call)
    assert isinstance(info.value, AnimagineError)


# --- samplers ------------------------------------------------------------------------------------

SAMPLER_CLASSES = [
    ("Euler a", "EulerAncestralDiscreteScheduler", {}),
    ("euler A", "EulerAncestralDiscreteScheduler", {}),
    ("Euler", "EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    ("Heun", "HeunDiscreteScheduler", {"use_karras_sigmas": False}),
    ("DPM2", "KDPM2DiscreteScheduler", {"use_karras_sigmas": False}),
    ("DPM2 Karras", "KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    ("DPM2 a", "KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": False}),
    ("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
    ("DPM++ 2M", "DPMSolverMultistepScheduler",
     {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"}),
    ("dpm++ 2m  karras", "DPMSolverMultistepScheduler",
     {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}),
    ("DPM++ 2M SDE", "DPMSolverMultistepScheduler",
     {"use_karras_sigmas": False, "algorithm_type": "sde-dpmsolver++"}),
    ("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler",
     {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"}),
    ("DDIM", "DDIMScheduler", {}),
    ("UniPC", "UniPCMultistepScheduler", {"use_karras_sigmas": False}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "cls", "config"), SAMPLER_CLASSES)
def test_sampler_names_map_to_schedulers(
    gen: Any, spy: Spy, name: str, cls: str, config: dict[str, Any]
) -> None:
    before = gen.pipeline.scheduler
    result = gen("1girl", sampler=name, seed=1, **SMALL)
    scheduler = spy.calls[0]["scheduler"]
    assert type(scheduler).__name__ == cls
    for key, value in config.items():
        assert scheduler.config[key] == value, key
    # The model's own schedule settings are kept.
    assert scheduler.config.beta_schedule == "scaled_linear"
    assert gen.pipeline.scheduler is before  # put back after the call
    assert result.parameters[0].sampler.lower() == " ".join(name.split()).lower()


@pytest.mark.parametrize(
    ("name", "module"),
    [("LMS", "scipy"), ("DPM++ SDE", "torchsde"), ("DPM++ SDE Karras", "torchsde")],
)
def test_samplers_with_extra_dependencies(
    gen: Any, no_model_work: Spy, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    """Without the sampler's package: one clear error, before any model work."""
    from animagine.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    with pytest.raises(MissingDependencyError, match=f"pip install {module}") as info:
        gen("1girl", sampler=name, **SMALL)
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingDependencyError):
        animagine.GenerationOptions(prompt="1girl", sampler=name)


def test_every_available_sampler_runs(gen: Any) -> None:
    import numpy as np

    from animagine.generation import SAMPLERS

    for name in SAMPLERS:
        image = pixels(gen("1girl", sampler=name, seed=1, **SMALL).image)
        assert image.shape == (64, 64, 3), name
        assert np.ptp(image) > 0, name


# --- saving --------------------------------------------------------------------------------------


def test_save_to_a_directory_never_overwrites(gen: Any, tmp_path: Path) -> None:
    result = gen("1girl", seed=10, num_images=2, **SMALL)
    first = result.save(tmp_path)
    assert [p.name for p in first] == ["10-1.png", "11-2.png"]
    second = result.save(tmp_path)
    assert [p.name for p in second] == ["10-1_2.png", "11-2_2.png"]
    created = result.save(tmp_path / "new" / "folder")
    assert [p.name for p in created] == ["10-1.png", "11-2.png"]
    assert created[0].parent == tmp_path / "new" / "folder"


def test_save_to_a_file(gen: Any, tmp_path: Path) -> None:
    from PIL import Image

    one = gen("1girl", seed=10, **SMALL)
    (path,) = one.save(tmp_path / "out.png")
    assert path == tmp_path / "out.png"
    with Image.open(path) as image:
        assert (pixels(image.convert("RGB")) == pixels(one.image)).all()
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        one.save(path)
    assert path.read_bytes() == before
    many = gen("1girl", seed=10, num_images=2, **SMALL)
    assert [p.name for p in many.save(tmp_path / "batch.png")] == ["batch-1.png", "batch-2.png"]
    (tmp_path / "clash-2.png").write_bytes(b"")
    with pytest.raises(FileExistsError):
        many.save(tmp_path / "clash.png")
    assert not (tmp_path / "clash-1.png").exists()  # nothing written
    with pytest.raises(ValueError, match=r"\.png"):
        one.save(tmp_path / "out.jpg")


def test_saved_metadata_reproduces_the_image(gen: Any, tmp_path: Path) -> None:
    from animagine import read_parameters

    result = gen("smile, 1girl, (red eyes:1.2)", negative_prompt="lowres, [blurry]", seed=77,
                 guidance_scale=6.5, sampler="DPM++ 2M Karras", clip_skip=1, **SMALL)  # fmt: skip
    (path,) = result.save(tmp_path)
    params = read_parameters(path)
    assert params == result.parameters[0]
    again = gen(**params.to_call_kwargs(), progress=False)
    assert again.parameters[0].prompt == params.prompt
    assert (pixels(again.image) == pixels(result.image)).all()


def test_save_creates_the_parent_of_a_file(gen: Any, tmp_path: Path) -> None:
    result = gen("1girl", seed=1, **SMALL)
    (path,) = result.save(tmp_path / "a" / "b" / "c.png")
    assert path.is_file()


def test_numpy_numbers_are_accepted(gen: Any, spy: Spy) -> None:
    import numpy as np

    result = gen(
        "1girl", seed=np.uint32(5), steps=np.int64(3), guidance_scale=np.float32(4.5),
        width=np.int32(64), height=64, progress=False,
    )  # fmt: skip
    params = result.parameters[0]
    assert (params.seed, params.steps, params.guidance_scale, params.width) == (5, 3, 4.5, 64)
    assert type(params.seed) is int


@pytest.mark.gpu
def test_float16_on_cuda_gives_finite_images(tiny_model_paths: Any) -> None:
    import warnings

    from animagine.generation import Generator

    loaded = Generator.from_pretrained(
        tiny_model_paths.folder, version="v4", dtype="float16", device="cuda"
    )
    assert loaded.pipeline.vae.config.force_upcast is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the NaN warning
        first = loaded("1girl", seed=1, num_images=2, **SMALL)
    again = loaded("1girl", seed=1, num_images=2, **SMALL)
    assert (pixels(first.images[1]) == pixels(again.images[1])).all()


def test_result_is_frozen(gen: Any) -> None:
    import attrs

    result = gen("1girl", seed=1, **SMALL)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.seeds = (2,)


def test_copy_of_folder_with_allow_pickle_still_loads(
    tiny_model_paths: Any, tmp_path: Path
) -> None:
    """allow_pickle only lifts the safetensors requirement; safetensors folders still load."""
    from animagine.generation import Generator

    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_paths.folder, folder)
    loaded = Generator.from_pretrained(folder, version="v4", allow_pickle=True)
    assert loaded.model == "copy"


# --- hires fix -----------------------------------------------------------------------------------


def test_hires_size_metadata_and_determinism(gen: Any) -> None:
    result = gen("1girl", seed=3, hires=1.5, **SMALL)
    assert result.image.size == (96, 96)
    params = result.parameters[0]
    assert (params.width, params.height) == (64, 64)  # A1111's Size is the first pass
    assert params.hires == HiresParameters(
        scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)", steps=None
    )
    assert "Denoising strength: 0.55, Hires upscale: 1.5" in params.to_infotext()
    again = gen("1girl", seed=3, hires=1.5, **SMALL)
    assert (pixels(again.image) == pixels(result.image)).all()
    other = gen("1girl", seed=4, hires=1.5, **SMALL)
    assert (pixels(other.image) != pixels(result.image)).any()
    batch = gen("1girl", seed=2, num_images=2, hires=1.5, **SMALL)
    assert abs(pixels(batch.images[1]) - pixels(result.image)).max() <= 1  # batch numerics
    plain = gen("1girl", seed=3, **SMALL)
    assert plain.parameters[0].hires is None


def test_hires_parameters_and_size_rounding(gen: Any) -> None:
    hires = HiresParameters(scale=1.3, strength=0.7, upscaler="latent (bicubic  ANTIALIASED)",
                            steps=3)  # fmt: skip
    result = gen("1girl", seed=1, hires=hires, width=64, height=80, steps=2, progress=False)
    # round(64 * 1.3) = 83 -> 80; round(80 * 1.3) = 104.
    assert result.image.size == (80, 104)
    assert result.parameters[0].hires == HiresParameters(
        scale=1.3, strength=0.7, upscaler="Latent (bicubic antialiased)", steps=3
    )


def test_hires_partial_object_takes_the_demos_defaults(gen: Any) -> None:
    """A JSONL-style ``{"scale": 1.5}`` is ``hires=1.5``: the demo's strength and upscaler."""
    plan = gen.check("1girl", seed=1, hires={"scale": 1.5}, **OPTIONS)
    assert plan.hires == HiresParameters(
        scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)", steps=None
    )
    assert plan.hires == gen.check("1girl", seed=1, hires=1.5, **OPTIONS).hires
    assert plan.hires_size == (96, 96)
    steps = gen.check("1girl", seed=1, hires={"scale": 2, "steps": 4}, **OPTIONS)
    assert steps.hires_steps == 4
    assert steps.hires is not None
    assert steps.hires.strength == 0.55


def test_every_hires_upscaler_runs(gen: Any) -> None:
    from animagine.generation import HIRES_UPSCALERS

    images = {}
    for name in HIRES_UPSCALERS:
        hires = HiresParameters(scale=2, strength=0.5, upscaler=name)
        result = gen("1girl", seed=1, hires=hires, **SMALL)
        assert result.image.size == (128, 128), name
        images[name] = pixels(result.image)
    assert (images["Latent"] == images["Latent (bilinear)"]).all()
    assert (images["Latent"] != images["Latent (nearest-exact)"]).any()


def test_hires_is_the_demos_procedure(gen: Any, tiny_pipeline: Any) -> None:
    """Latents upscaled nearest-exact, then diffusers' SDXL img2img at the strength."""
    import numpy as np
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLImg2ImgPipeline

    from animagine.generation import PromptEncoder

    result = gen("1girl", seed=5, hires=1.5, negative_prompt="", add_quality_tags=False, **SMALL)
    tags = Prompt.parse("1girl", version="v4").tags
    embeddings = PromptEncoder(tiny_pipeline).encode(tags, ()).as_kwargs()
    config = tiny_pipeline.scheduler.config
    generator = torch.Generator().manual_seed(5)
    before = tiny_pipeline.scheduler
    tiny_pipeline.scheduler = EulerAncestralDiscreteScheduler.from_config(config)
    try:
        latents = tiny_pipeline(
            **embeddings,
            width=64,
            height=64,
            num_inference_steps=2,
            guidance_scale=5.0,
            generator=[generator],
            output_type="latent",
        ).images
    finally:
        tiny_pipeline.scheduler = before
    upscaled = torch.nn.functional.interpolate(latents, size=(12, 12), mode="nearest-exact")
    components = {
        **tiny_pipeline.components,
        "scheduler": EulerAncestralDiscreteScheduler.from_config(config),
    }
    img2img = StableDiffusionXLImg2ImgPipeline(**components, add_watermarker=False)
    img2img.set_progress_bar_config(disable=True)
    images = img2img(
        **embeddings,
        image=upscaled,
        strength=0.55,
        num_inference_steps=2,
        guidance_scale=5.0,
        generator=[generator],
        output_type="np",
    ).images
    expected = (np.clip(images[0], 0, 1) * 255).round().astype(np.int16)
    assert (pixels(result.image) == expected).all()


def test_hires_shares_the_weights(gen: Any, tiny_pipeline: Any) -> None:
    gen("1girl", seed=1, hires=1.5, **SMALL)
    img2img = gen.img2img_pipeline
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        assert getattr(img2img, name) is getattr(tiny_pipeline, name), name
    ours = {id(p) for p in tiny_pipeline.unet.parameters()}
    assert {id(p) for p in img2img.unet.parameters()} == ours
    assert img2img.unet.conv_in.weight.data_ptr() == tiny_pipeline.unet.conv_in.weight.data_ptr()
    before = gen.pipeline.scheduler
    gen("1girl", seed=1, hires=1.5, **SMALL)
    assert gen.img2img_pipeline is img2img  # built once
    assert gen.pipeline.scheduler is before


def test_hires_img2img_follows_replaced_components(tmp_path: Path) -> None:
    from animagine.generation import Generator
    from animagine.testing import make_tiny_pipeline

    pipe = make_tiny_pipeline(seed=0)
    local = Generator(pipe, version="v4")
    first = local.img2img_pipeline
    pipe.vae = make_tiny_pipeline(seed=1).vae
    second = local.img2img_pipeline
    assert second is not first
    assert second.vae is pipe.vae


def test_hires_callback_runs_in_both_passes(gen: Any) -> None:
    steps: list[int] = []

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        steps.append(step)
        return kwargs

    hires = HiresParameters(scale=1.5, strength=0.5, upscaler="Latent", steps=4)
    gen("1girl", seed=1, hires=hires, callback_on_step_end=callback, **SMALL)
    assert steps == [0, 1, 0, 1]  # 2 steps, then int(4 * 0.5) = 2


def test_hires_metadata_round_trip_reproduces_the_image(gen: Any, tmp_path: Path) -> None:
    from animagine import read_parameters

    hires = HiresParameters(scale=1.5, strength=0.6, upscaler="Latent (nearest-exact)", steps=3)
    result = gen("1girl, smile", seed=9, sampler="DPM++ 2M Karras", hires=hires, **SMALL)
    (path,) = result.save(tmp_path)
    params = read_parameters(path)
    assert params == result.parameters[0]
    kwargs = params.to_call_kwargs()
    assert kwargs["hires"] == params.hires
    again = gen(**kwargs, progress=False)
    assert again.parameters[0] == params
    assert (pixels(again.image) == pixels(result.image)).all()


# --- LoRA ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Any) -> Path:
    """A seeded random LoRA for the tiny UNet and text encoder 1 (B matrices not zero)."""
    import copy

    import torch
    from diffusers import StableDiffusionXLPipeline

    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    torch.manual_seed(0)
    unet = copy.deepcopy(tiny_pipeline.unet)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))  # fmt: skip
    text_encoder = inject_adapter_in_model(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                   target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]),
        copy.deepcopy(tiny_pipeline.text_encoder),
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("lora")
    StableDiffusionXLPipeline.save_lora_weights(
        folder,
        unet_lora_layers=get_peft_model_state_dict(unet),
        text_encoder_lora_layers=get_peft_model_state_dict(text_encoder),
        weight_name="style.safetensors",
    )
    return folder / "style.safetensors"


@pytest.fixture(scope="module")
def _lora_generator(_torch_setup: None) -> Any:
    from animagine.generation import Generator
    from animagine.testing import make_tiny_pipeline

    # Its own pipeline: LoRAs change the modules in place.
    return Generator(make_tiny_pipeline(seed=0), version="v4")


@pytest.fixture
def lora_gen(_lora_generator: Any) -> Iterator[Any]:
    yield _lora_generator
    _lora_generator.unload_loras()


def addnet_hash(path: Path) -> str:
    import hashlib

    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header :]).hexdigest()[:12]


def test_lora_changes_the_image_and_is_recorded(lora_gen: Any, lora_file: Path) -> None:
    base = pixels(lora_gen("1girl", seed=1, **SMALL).image)
    base_hires = pixels(lora_gen("1girl", seed=1, hires=1.5, **SMALL).image)
    assert lora_gen.load_lora(lora_file) == "style"
    assert lora_gen.loras == {"style": 1.0}
    result = lora_gen("1girl", seed=1, **SMALL)
    assert (pixels(result.image) != base).any()
    extra = result.parameters[0].extra
    assert extra["Lora hashes"] == f"style: {addnet_hash(lora_file)}"
    assert extra["Lora weights"] == "style: 1"
    assert 'Lora hashes: "style: ' in result.parameters[0].to_infotext()
    hires = pixels(lora_gen("1girl", seed=1, hires=1.5, **SMALL).image)
    assert (hires != base_hires).any()  # the second pass uses it too


def test_lora_weight_zero_and_unload_restore_the_image(lora_gen: Any, lora_file: Path) -> None:
    base = pixels(lora_gen("1girl", seed=1, **SMALL).image)
    state = {k: v.clone() for k, v in lora_gen.pipeline.unet.state_dict().items()}
    lora_gen.load_lora(lora_file, weight=0)
    zero = lora_gen("1girl", seed=1, **SMALL)
    assert (pixels(zero.image) == base).all()
    assert zero.parameters[0].extra["Lora weights"] == "style: 0"
    lora_gen.set_lora_weights({"style": 1})
    full = pixels(lora_gen("1girl", seed=1, **SMALL).image)
    lora_gen.set_lora_weights({"style": 0.5})
    half = lora_gen("1girl", seed=1, **SMALL)
    assert (pixels(half.image) != full).any()
    assert (pixels(half.image) != base).any()
    assert half.parameters[0].extra["Lora weights"] == "style: 0.5"
    lora_gen.unload_loras()
    assert lora_gen.loras == {}
    after = lora_gen("1girl", seed=1, **SMALL)
    assert (pixels(after.image) == base).all()
    assert "Lora weights" not in after.parameters[0].extra
    restored = lora_gen.pipeline.unet.state_dict()
    assert restored.keys() == state.keys()
    assert all((restored[k] == v).all() for k, v in state.items())


def test_lora_changes_empty_the_prompt_cache(lora_gen: Any, lora_file: Path) -> None:
    encoder = lora_gen.encoder
    tags = Prompt.parse("1girl", version="v4").tags
    lora_gen("1girl", seed=1, **SMALL)
    calls = encoder.encoder_calls
    lora_gen("1girl", seed=1, **SMALL)
    assert encoder.encoder_calls == calls  # cached
    plain = encoder.encode(tags).prompt_embeds
    lora_gen.load_lora(lora_file)
    lora_gen("1girl", seed=1, **SMALL)
    assert encoder.encoder_calls > calls
    assert not encoder.encode(tags).prompt_embeds.equal(plain)  # text encoder LoRA applies
    for change in (lambda: lora_gen.set_lora_weights({"style": 0.5}), lora_gen.unload_loras):
        calls = encoder.encoder_calls
        change()
        lora_gen("1girl", seed=1, **SMALL)
        assert encoder.encoder_calls > calls
    assert encoder.encode(tags).prompt_embeds.equal(plain)


def test_several_loras_and_names(lora_gen: Any, lora_file: Path) -> None:
    assert lora_gen.load_lora(lora_file) == "style"
    assert lora_gen.load_lora(lora_file, weight=0.25) == "style_2"
    assert lora_gen.load_lora(lora_file.parent, adapter_name="my-lora") == "my-lora"
    assert lora_gen.loras == {"style": 1.0, "style_2": 0.25, "my-lora": 1.0}
    with pytest.raises(ValueError, match="adapter_name='style' is already loaded"):
        lora_gen.load_lora(lora_file, adapter_name="style")
    with pytest.raises(ValueError, match=r"LoRA\(s\) 'nope' not loaded; loaded: 'style'"):
        lora_gen.set_lora_weights({"style": 0.1, "nope": 1})
    assert lora_gen.loras["style"] == 1.0  # nothing changed
    with pytest.raises(ValueError, match="not loaded"):
        lora_gen.unload_loras("nope")
    lora_gen.unload_loras("style_2")
    assert lora_gen.loras == {"style": 1.0, "my-lora": 1.0}
    assert lora_gen.pipeline.get_list_adapters()["unet"] == ["style", "my-lora"]
    result = lora_gen("1girl", seed=1, **SMALL)
    assert result.parameters[0].extra["Lora weights"] == "style: 1, my-lora: 1"


def test_lora_pickle_needs_allow_pickle(lora_gen: Any, lora_file: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    pickled = tmp_path / "old.bin"
    torch.save(load_file(lora_file), pickled)
    with pytest.raises(ModelLoadError, match=r"pickle file.*allow_pickle=True"):
        lora_gen.load_lora(pickled)
    only_pickle = tmp_path / "folder"
    only_pickle.mkdir()
    shutil.copy(pickled, only_pickle / "pytorch_lora_weights.bin")
    with pytest.raises(ModelLoadError, match=r"no \.safetensors LoRA weights.*allow_pickle"):
        lora_gen.load_lora(only_pickle)
    with pytest.raises(ModelLoadError, match="pickle"):
        lora_gen.load_lora(lora_file.parent, weight_name="old.bin")
    assert lora_gen.loras == {}
    assert lora_gen.load_lora(pickled, allow_pickle=True) == "old"
    assert lora_gen.load_lora(only_pickle, allow_pickle=True) == "folder"


LORA_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"lora": "missing.safetensors"}, ModelLoadError, "no such LoRA file or folder"),
    ({"lora": "./nowhere/lora"}, ModelLoadError, "no such LoRA"),
    ({"lora": 3}, TypeError, "lora must be a str or path"),
    ({"weight": math.nan}, ValueError, "weight must be a finite number"),
    ({"weight": "1"}, TypeError, "weight must be a number"),
    ({"adapter_name": "a.b"}, ValueError, "adapter_name must be letters"),
    ({"adapter_name": 1}, TypeError, "adapter_name must be a str"),
    ({"use_safetensors": False}, ValueError, "use_safetensors is set by animagine"),
    ({"weight_name": "x.safetensors"}, ValueError, "weight_name='x.safetensors' is for folders"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), LORA_ERRORS, ids=[repr(c[0])[:40] for c in LORA_ERRORS]
)
def test_lora_argument_errors(
    lora_gen: Any, lora_file: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    call = {"lora": lora_file, **kwargs}
    with pytest.raises(error, match=message) as info:
        lora_gen.load_lora(**call)
    assert isinstance(info.value, AnimagineError)
    assert lora_gen.loras == {}


def test_lora_file_errors(lora_gen: Any, lora_file: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"not a \.safetensors file"):
        lora_gen.load_lora(text)
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.safetensors", "b.safetensors"):
        shutil.copy(lora_file, two / name)
    with pytest.raises(ModelLoadError, match=r"several weights files.*weight_name="):
        lora_gen.load_lora(two)
    assert lora_gen.load_lora(two, weight_name="b.safetensors") == "two"
    lora_gen.unload_loras()
    with pytest.raises(ModelLoadError, match="no such LoRA file"):
        lora_gen.load_lora(two, weight_name="c.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(ModelLoadError, match="cannot load LoRA"):
        lora_gen.load_lora(broken)
    import torch

    unrelated = tmp_path / "unrelated.safetensors"
    save_file({"lora_unet_nothing_here.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_nothing_here.lora_up.weight": torch.zeros(8, 4)}, unrelated)  # fmt: skip
    with pytest.raises(ModelLoadError, match=r"cannot load LoRA .*unrelated.*not found"):
        lora_gen.load_lora(unrelated)
    no_lora = tmp_path / "no_lora.safetensors"
    save_file({"weight": torch.zeros(2)}, no_lora)
    with pytest.raises(ModelLoadError, match="no_lora"):
        lora_gen.load_lora(no_lora)
    assert lora_gen.loras == {}
    assert not any(lora_gen.pipeline.get_list_adapters().values())


def test_load_lora_without_peft_says_what_to_install(
    lora_gen: Any, lora_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft raises ImportError
    with pytest.raises(ImportError, match="peft"):
        lora_gen.load_lora(lora_file)
    assert lora_gen.loras == {}


# --- loading errors ------------------------------------------------------------------------------


def test_corrupt_or_truncated_single_file_is_a_model_load_error(
    tmp_path: Path, tiny_model_paths: Any
) -> None:
    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    garbage = tmp_path / "animagine-xl-4.0.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match=r"not a readable \.safetensors file") as info:
        Generator.from_single_file(garbage, config=tiny_model_paths.folder)
    assert str(garbage) in str(info.value)
    assert tiny_model_paths.single_file is not None
    data = tiny_model_paths.single_file.read_bytes()
    truncated = tmp_path / "animagine-xl-4.0-cut.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        Generator.from_single_file(truncated, version="v4", config=tiny_model_paths.folder)


def test_mismatched_weights_are_a_model_load_error(tmp_path: Path, tiny_model_paths: Any) -> None:
    """A readable safetensors file that is not an SDXL checkpoint: diffusers' error, wrapped."""
    import torch
    from safetensors.torch import save_file

    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    other = tmp_path / "animagine-xl-4.0.safetensors"
    save_file({"something.else": torch.zeros(3)}, str(other))
    with pytest.raises(ModelLoadError, match="cannot load") as info:
        Generator.from_single_file(other, config=tiny_model_paths.folder)
    assert "\n" not in str(info.value)


def test_folder_with_custom_code_is_refused(tmp_path: Path, tiny_model_paths: Any) -> None:
    import shutil

    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    folder = tmp_path / "animagine-xl-4.0"
    shutil.copytree(tiny_model_paths.folder, folder)
    index = json.loads((folder / "model_index.json").read_text("utf-8"))
    index["unet"] = ["my_unet_module", "MyUNet"]
    (folder / "model_index.json").write_text(json.dumps(index), "utf-8")
    with pytest.raises(ModelLoadError, match="custom code"):
        Generator.from_pretrained(folder)


def test_hub_id_not_cached_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from animagine.errors import ModelLoadError
    from animagine.generation import Generator

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="could not be fetched offline"):
        Generator.from_pretrained("someone/animagine-xl-4.0-not-cached", version="v4")
    with pytest.raises(ModelLoadError, match="not a hub repository id"):
        Generator.from_pretrained("no such//folder/animagine-xl-4.0", version="v4")
