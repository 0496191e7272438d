"""Memory and speed modes of `animagine.Generator` (``memory=``, ``compile=``) and their flags.

Each test that applies a mode builds its own tiny pipeline (the modes change it in place). The
speed mode's compilation runs with ``torch.compile``'s ``eager`` backend (a spy stands in for
``torch.compile``): Dynamo still traces the UNet and ``vae.decode`` whole (``fullgraph=True``),
but no Inductor code is generated, which on this CPU takes minutes. What Inductor itself
computes is covered by the GPU test (``-m gpu``) and the GPU benchmark. The offload modes need
an accelerator: on a CPU machine the tests check the refusal, and the wiring with CUDA reported
as present (the hooks are placed; nothing runs on the device).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    MissingDependencyError,
)
from animagine.testing import TinyModelPaths

pytestmark = [
    pytest.mark.generate,
]

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2, "progress": False, "seed": 3}
INDUCTOR_FLAGS = {
    "conv_1x1_as_mm": True,
    "coordinate_descent_tuning": True,
    "coordinate_descent_check_all_directions": True,
    "epilogue_fusion": False,
}


def fresh_pipeline() -> Any:
    from animagine.testing import make_tiny_pipeline

    return make_tiny_pipeline(seed=0)


def pixels(result: Any) -> Any:
    import numpy as np

    return np.stack([np.asarray(image).astype(np.int16) for image in result.images])


def no_accelerator() -> bool:
    try:
        import torch
    except ImportError:  # the core-only test session: these tests are deselected there
        return True

    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return not (
        torch.cuda.is_available()
        or (xpu is not None and xpu.is_available())
        or (mps is not None and mps.is_available())
    )


class CompileSpy:
    """Stands in for ``torch.compile``: records the arguments, compiles with ``eager``."""

    def __init__(self) -> None:
        import torch

        self.real = torch.compile
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.real(
            model, backend="eager", fullgraph=kwargs["fullgraph"], dynamic=kwargs["dynamic"]
        )


@pytest.fixture
def compile_spy(monkeypatch: pytest.MonkeyPatch, _torch_setup: None) -> CompileSpy:
    import torch

    spy = CompileSpy()
    monkeypatch.setattr(torch, "compile", spy)
    return spy


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA reported present with one device (nothing may run on it)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


# --- memory ----------------------------------------------------------------------------------


def test_default_mode_changes_nothing(tiny_pipeline: Any) -> None:
    from animagine import Generator

    gen = Generator(tiny_pipeline, version="v4")
    assert (gen.memory, gen.compile_mode) == ("device", None)
    assert not getattr(tiny_pipeline.vae, "use_tiling", False)
    assert not hasattr(tiny_pipeline.unet, "_hf_hook")


@pytest.mark.parametrize(
    ("value", "name", "tiling", "slicing"),
    [
        ("device", "device", False, False),
        ("vae-tiling", "vae-tiling", True, False),
        ("VAE-Slicing + vae-tiling", "vae-tiling+vae-slicing", True, True),
        (("device", "vae-slicing"), "vae-slicing", False, True),
    ],
)
@pytest.mark.usefixtures("_torch_setup")
def test_vae_modes_use_diffusers_tiling_and_slicing(
    value: Any, name: str, tiling: bool, slicing: bool
) -> None:
    from animagine import Generator

    pipe = fresh_pipeline()
    gen = Generator(pipe, version="v4", memory=value)
    assert gen.memory == name
    assert (pipe.vae.use_tiling, pipe.vae.use_slicing) == (tiling, slicing)


def test_vae_tiling_and_slicing_generate(tiny_pipeline: Any) -> None:
    """Tiling at a size above the tiny VAE's tile (32 px); slicing over two images."""
    from animagine import Generator

    plain = Generator(tiny_pipeline, version="v4")
    reference = pixels(plain("1girl", num_images=2, **SMALL))
    gen = Generator(fresh_pipeline(), version="v4", memory="vae-slicing")
    # The same maths, one image at a time: batched float32 kernels round a little differently.
    assert abs(pixels(gen("1girl", num_images=2, **SMALL)) - reference).max() <= 1
    tiled = Generator(fresh_pipeline(), version="v4", memory="vae-tiling")
    images = pixels(tiled("1girl", num_images=2, **SMALL))
    assert images.shape == reference.shape  # blended tiles: close to, not equal to, the whole


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("fast", GenerationArgumentError, "unknown mode 'fast'; modes: device, model-offload"),
        ("", GenerationArgumentError, "unknown mode"),
        ("model-offload+sequential-offload", GenerationArgumentError, "choose one of device"),
        ("vae-tiling+vae-tiling", GenerationArgumentError, "names a mode twice"),
        (3, GenerationTypeError, "memory must be a str"),
        (None, GenerationTypeError, "memory must be a str"),
    ],
)
def test_bad_memory_values_are_typed_errors(
    tiny_pipeline: Any, value: Any, error: type[Exception], message: str
) -> None:
    from animagine import Generator

    with pytest.raises(error, match=message):
        Generator(tiny_pipeline, version="v4", memory=value)
    with pytest.raises(error, match=message):
        Generator.check_modes(memory=value)


def test_bad_values_are_refused_before_loading(
    tiny_model_paths: TinyModelPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diffusers

    from animagine import Generator

    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("loaded a model")

    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_pretrained", no_loading)
    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_single_file", no_loading)
    folder = tiny_model_paths.folder
    with pytest.raises(GenerationArgumentError, match="memory='turbo'"):
        Generator.from_pretrained(folder, version="v4", memory="turbo")
    with pytest.raises(GenerationArgumentError, match="compile='fastest'"):
        Generator.from_pretrained(folder, version="v4", compile="fastest")
    with pytest.raises(GenerationArgumentError, match="nothing to offload from"):
        Generator.from_pretrained(folder, version="v4", memory="model-offload", device="cpu")
    assert tiny_model_paths.single_file is not None
    with pytest.raises(GenerationArgumentError, match="cannot be combined"):
        Generator.from_single_file(
            tiny_model_paths.single_file,
            version="v4",
            config=folder,
            memory="model-offload",
            compile=True,
        )


@pytest.mark.skipif(not no_accelerator(), reason="this machine has an accelerator")
@pytest.mark.parametrize("mode", ["model-offload", "sequential-offload+vae-tiling"])
def test_offload_without_an_accelerator_is_refused(tiny_pipeline: Any, mode: str) -> None:
    from animagine import Generator

    with pytest.raises(GenerationArgumentError, match="this machine has no accelerator"):
        Generator(tiny_pipeline, version="v4", memory=mode)
    with pytest.raises(GenerationArgumentError, match="this machine has no accelerator"):
        Generator.check_modes(memory=mode)
    with pytest.raises(GenerationArgumentError, match="CUDA is not available"):
        Generator.check_modes(memory=mode, device="cuda")
    assert not hasattr(tiny_pipeline.unet, "_hf_hook")  # nothing was changed


def test_offload_without_accelerate_says_what_to_install(
    tiny_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from animagine import Generator

    monkeypatch.setitem(sys.modules, "accelerate", None)  # importing it now fails
    with pytest.raises(MissingDependencyError, match="pip install accelerate"):
        Generator(tiny_pipeline, version="v4", memory="model-offload")
    assert Generator.check_modes(memory="vae-tiling") == ("vae-tiling", None)


@pytest.mark.usefixtures("fake_cuda", "_torch_setup")
@pytest.mark.parametrize(
    ("mode", "method"),
    [
        ("model-offload", "enable_model_cpu_offload"),
        ("sequential-offload", "enable_sequential_cpu_offload"),
    ],
)
def test_offload_modes_are_diffusers_offloading(
    mode: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from animagine import Generator

    pipe = fresh_pipeline()
    calls: list[dict[str, Any]] = []
    original = getattr(type(pipe), method)
    # Model offload places its hooks without touching the device; sequential offload moves
    # buffers there at once, which a CPU-only torch cannot: only the call is checked then.
    through = mode == "model-offload"

    def spy(self: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(self, **kwargs) if through else None

    monkeypatch.setattr(type(pipe), method, spy)
    gen = Generator(pipe, version="v4", memory=f"{mode}+vae-tiling")
    assert gen.memory == f"{mode}+vae-tiling"
    assert calls == [{"device": torch.device("cuda", 0)}]
    if through:
        assert torch.device(pipe.unet._hf_hook.execution_device) == torch.device("cuda", 0)
    assert pipe.vae.use_tiling
    with pytest.raises(GenerationArgumentError, match="offloads its models"):
        gen.to("cpu")
    assert Generator.check_modes(memory=mode, device="cuda:0") == (mode, None)
    with pytest.raises(GenerationArgumentError, match="this machine has 1 CUDA device"):
        Generator.check_modes(memory=mode, device="cuda:3")


def test_generator_runs_under_diffusers_offload_hooks(tiny_pipeline: Any) -> None:
    """The prompt encoder follows the hooks' execution device: same images as without them."""
    from animagine import Generator

    reference = pixels(Generator(tiny_pipeline, version="v4")("1girl", **SMALL))
    pipe = fresh_pipeline()
    pipe.enable_model_cpu_offload(device="cpu")  # diffusers' own, with the CPU as "accelerator"
    assert (pixels(Generator(pipe, version="v4")("1girl", **SMALL)) == reference).all()


# --- speed -----------------------------------------------------------------------------------


def test_speed_mode_applies_the_recipe_and_keeps_the_images(
    tiny_pipeline: Any, compile_spy: CompileSpy
) -> None:
    import torch

    from animagine import Generator

    reference = pixels(Generator(tiny_pipeline, version="v4")("1girl, smile", **SMALL))
    pipe = fresh_pipeline()
    gen = Generator(pipe, version="v4", compile=True)
    assert gen.compile_mode == "max-autotune-no-cudagraphs"
    assert hasattr(pipe.unet, "_orig_mod")  # the compiled UNet is the pipeline's
    unet = pipe.unet._orig_mod
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    weight = unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert len(compile_spy.calls) == 2  # the UNet and vae.decode
    for call in compile_spy.calls:
        assert (call["fullgraph"], call["dynamic"]) == (True, False)
        assert call["options"] == {"max_autotune": True, **INDUCTOR_FLAGS}
    images = pixels(gen("1girl, smile", **SMALL))
    # float32: fused projections round differently; one level of 255 at most.
    assert abs(images - reference).max() <= 1
    # A second call at the same size reuses the compiled graphs.
    assert (pixels(gen("1girl, smile", **SMALL)) == images).all()


@pytest.mark.parametrize(
    ("mode", "options"),
    [("default", {}), ("reduce-overhead", {"triton.cudagraphs": True})],
)
def test_named_compile_modes(mode: str, options: dict[str, Any], compile_spy: CompileSpy) -> None:
    from animagine import Generator

    gen = Generator(fresh_pipeline(), version="v4", compile=mode.upper())
    assert gen.compile_mode == mode
    assert compile_spy.calls[0]["options"] == {**options, **INDUCTOR_FLAGS}


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("turbo", GenerationArgumentError, "compile='turbo' is not a torch.compile mode"),
        (1, GenerationTypeError, "compile must be a bool"),
        (None, GenerationTypeError, "compile must be a bool"),
    ],
)
def test_bad_compile_values_are_typed_errors(
    tiny_pipeline: Any, value: Any, error: type[Exception], message: str
) -> None:
    from animagine import Generator

    with pytest.raises(error, match=message):
        Generator(tiny_pipeline, version="v4", compile=value)


def test_compile_is_refused_with_offload_loras_or_twice(
    tiny_pipeline: Any, compile_spy: CompileSpy, tmp_path: Path
) -> None:
    from animagine import Generator

    with pytest.raises(GenerationArgumentError, match="cannot be combined"):
        Generator(tiny_pipeline, version="v4", memory="model-offload", compile=True)
    pipe = fresh_pipeline()
    gen = Generator(pipe, version="v4", compile="default")
    with pytest.raises(GenerationArgumentError, match="compiled already"):
        Generator(pipe, version="v4", compile="default")
    with pytest.raises(GenerationArgumentError, match="LoRAs cannot be loaded"):
        gen.load_lora(tmp_path / "style.safetensors")
    assert len(compile_spy.calls) == 2  # only the first generator compiled


def test_modes_through_from_pretrained(tiny_model_paths: TinyModelPaths) -> None:
    from animagine import Generator

    gen = Generator.from_pretrained(
        tiny_model_paths.folder, version="v4", memory="vae-tiling", device="cpu", progress=False
    )
    assert gen.memory == "vae-tiling"
    assert gen.pipeline.vae.use_tiling
    assert gen("1girl", **SMALL).images[0].size == (64, 64)


@pytest.mark.gpu
def test_speed_mode_with_inductor_on_cuda() -> None:
    """Real Inductor code on a GPU: same images as without the speed mode, within bf16 noise."""
    import torch

    from animagine import Generator

    reference = Generator(fresh_pipeline().to("cuda", torch.bfloat16), version="v4")
    fast = Generator(fresh_pipeline().to(torch.bfloat16), version="v4", compile=True, device="cuda")
    expected = pixels(reference("1girl", **SMALL))
    assert abs(pixels(fast("1girl", **SMALL)) - expected).max() <= 8


# --- command line ----------------------------------------------------------------------------


def test_cli_flags_reach_the_loader(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from animagine.apps.cli import main

    out = tmp_path / "a.png"
    argv = ["generate", "1girl", "-o", str(out), "--model", str(tiny_model_paths.folder)]
    small = ["--width", "64", "--height", "64", "--steps", "2", "--no-progress"]
    common = [*argv, "--version", "v4", "--device", "cpu", *small]
    assert main([*common, "--memory", "vae-tiling+vae-slicing"]) == 0
    assert capsys.readouterr().out.strip() == str(out)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--memory", "turbo"], "--memory 'turbo': unknown mode 'turbo'"),
        (["--compile", "fastest"], "--compile 'fastest' is not a torch.compile mode"),
        (["--memory", "model-offload", "--compile"], "cannot be combined"),
        (["--memory", "model-offload", "--device", "cpu"], "nothing to offload from"),
    ],
)
def test_cli_mode_errors_are_one_line_before_loading(
    tiny_model_paths: TinyModelPaths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    from animagine.apps.cli import main

    argv = ["generate", "1girl", "-o", str(tmp_path / "x.png"), "--version", "v4", "--model"]
    assert main([*argv, str(tiny_model_paths.folder), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("animagine generate: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_batch_takes_the_same_flags() -> None:
    import argparse

    from animagine.apps.cli import build_parser

    parser: argparse.ArgumentParser = build_parser(wanted="batch")
    args = parser.parse_args(["batch", "in.txt", "-o", "out", "--memory", "model-offload"])
    assert (args.memory, args.compile) == ("model-offload", False)
    args = parser.parse_args(["batch", "in.txt", "-o", "out", "--compile"])
    assert args.compile is True
