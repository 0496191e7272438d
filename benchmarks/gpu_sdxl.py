"""GPU benchmark: the real SDXL architecture with random weights, seconds per image and peak memory.

Run from the repository root on a CUDA machine::

    python benchmarks/gpu_sdxl.py --mode both --dtype bf16      # writes benchmarks/results/gpu.md
    python benchmarks/gpu_sdxl.py --mode fast --compile-mode max-autotune-no-cudagraphs
    python benchmarks/gpu_sdxl.py --smoke                       # CPU, tiny pipeline: proves it runs

What is measured. A ``StableDiffusionXLPipeline`` built from the SDXL base 1.0 component configs
animagine ships (``animagine.generation.bundled_config()``, that is ``animagine/_data/sdxl/``;
UNet 2,567,463,684 parameters, VAE 83,653,863, CLIP ViT-L text encoder 123,060,480, OpenCLIP bigG
text encoder 694,659,840: the published model's figures, checked on every run) with random,
seeded weights, built directly on the GPU in bf16 or fp16. Euler a, 832x1216, 28 steps, batch 1,
CFG 5 (so the UNet runs at batch 2), no watermark. The speed of a network does not depend on its
weights, so the figures are those of SDXL-based checkpoints such as Animagine XL; the images are
noise.

One image is one wall-clock interval, ``torch.cuda.synchronize()`` on both sides, covering what an
application does for it: parsing the prompt with animagine (``Prompt.parse``), encoding it and the
negative prompt with animagine's ``PromptEncoder`` (A1111 weighting; cache off, so both text
encoders run every time), the 28 denoising steps, the VAE decode and the conversion to a PIL image.
Seconds per image is the median of ``--runs`` such intervals after ``--warmup`` untimed ones. CUDA
events recorded at each step (no extra synchronisation) split it into UNet step time (median of
steps 2..28, the UNet at batch 2 plus the scheduler) and decode (last step to the PIL image).
Peak memory is ``torch.cuda.max_memory_allocated()`` (and ``max_memory_reserved()``) over the
timed runs of a mode, weights included.

Modes. ``default``: the pipeline as diffusers builds it; its attention processor is already
``AttnProcessor2_0`` (``scaled_dot_product_attention``). ``fast`` (opt-in) adds diffusers' SDXL
"accelerate inference" recipe: Inductor flags ``conv_1x1_as_mm``, ``coordinate_descent_tuning``,
``coordinate_descent_check_all_directions`` on and ``epilogue_fusion`` off; fused QKV projections
(``pipe.fuse_qkv_projections()``, which installs ``FusedAttnProcessor2_0``, still SDPA); UNet and
VAE in ``channels_last``; ``torch.compile(unet, mode=..., fullgraph=True)`` and the same for
``vae.decode``. ``both`` runs default, then fast, in one process (fast changes the pipeline).

Tokenizers. The Hub is not used. When the repository has SDXL's CLIP BPE tokenizers
(``animagine/_data/sdxl/tokenizer`` and ``tokenizer_2``, the real 49,408-token vocabulary) they are
used; otherwise both are the byte-level CLIP tokenizers of ``animagine.testing`` (one token per
character; ``tokenizer_2`` pads with ``!`` as SDXL's does). The report names the one used. The
prompt and negative prompt fit in one 77-token chunk with either, as a typical Animagine prompt
does with the real tokenizer, so the text encoders and the UNet's cross-attention see exactly the
shapes of the real model: (2, 77, 2048) context, (2, 1280) pooled. Tokenising ~70 characters
takes well under a millisecond of the figures.

fp16 and the VAE: the SDXL VAE config has ``force_upcast: true``, so in fp16 the pipeline decodes in
float32, as it does with the real model. ``--no-vae-upcast`` decodes in fp16 (what the
``madebyollin/sdxl-vae-fp16-fix`` VAE allows). bf16 never upcasts.

``--smoke`` runs the same code on the CPU with ``animagine.testing.make_tiny_pipeline()`` (64x64,
2 steps, 1 warm-up, 1 run, both modes, ``torch.compile`` mode ``default``): a check that the script
works, not a benchmark. The real configs are still built (on the ``meta`` device) and checked.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402  (after sys.path, like the other benchmarks)
from _machine import cpu_model, git_state  # noqa: E402


def _bundled_config() -> Path:
    """The SDXL base 1.0 component configs this build of animagine ships."""
    from animagine.generation import bundled_config

    folder = bundled_config()
    if folder is None:
        raise SystemExit("this build of animagine ships no SDXL config (bundled_config() is None)")
    return folder


CONFIG_DIR = _bundled_config()
RESULTS = ROOT / "benchmarks" / "results" / "gpu.md"

WIDTH, HEIGHT, STEPS, GUIDANCE = 832, 1216, 28, 5.0
SMOKE_SIZE, SMOKE_STEPS = 64, 2
TARGET_S = 1.2  # fast mode on an H100
FLOOR_S = 0.46  # the compute floor for this workload on an H100
TARGET_SOURCE = "issue #3 (Generator)"
DEFAULT_TARGET_S = 2.2  # default mode on an H100 / H200 (issue #9)
PEAK_TARGET_GB = 10.0  # peak memory (issue #9)

# Each fits in one 77-token chunk with the byte-level tokenizers (checked at run time).
PROMPT = "1girl, solo, (smile:1.1), outdoors, cherry blossoms, masterpiece"
NEGATIVE = "lowres, bad anatomy, bad hands, text, error, worst quality, blurry"

#: Parameter counts of SDXL base 1.0's components, as published; the configs must reproduce them.
EXPECTED_PARAMETERS = {
    "unet": 2_567_463_684,
    "vae": 83_653_863,
    "text_encoder": 123_060_480,
    "text_encoder_2": 694_659_840,
}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
GIB = 1024**3


# --- building the pipeline -------------------------------------------------------------------


def _config(name: str) -> dict[str, Any]:
    folder = CONFIG_DIR / name
    path = folder / ("scheduler_config.json" if name == "scheduler" else "config.json")
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _components(device: torch.device | str, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    """UNet, VAE and the two text encoders from the configs, built on ``device`` in ``dtype``.

    Modules are created there directly (default device and dtype), each after seeding torch, so
    no float32 copy is made on the CPU and the same seed gives the same weights.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    builders: dict[str, Callable[[], Any]] = {
        "unet": lambda: UNet2DConditionModel.from_config(_config("unet")),
        "vae": lambda: AutoencoderKL.from_config(_config("vae")),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig.from_dict(_config("text_encoder"))),
        "text_encoder_2": lambda: CLIPTextModelWithProjection(
            CLIPTextConfig.from_dict(_config("text_encoder_2"))
        ),
    }
    built: dict[str, Any] = {}
    with torch.device(device), _default_dtype(dtype):
        for offset, (name, build) in enumerate(builders.items()):
            torch.manual_seed(seed + offset)
            module = build().eval().requires_grad_(False)
            # transformers reads the configs' `torch_dtype` (float16) for some submodules; the
            # run's dtype wins. A no-op for modules already in it.
            if device != "meta" and any(p.dtype != dtype for p in module.parameters()):
                module = module.to(dtype)
            built[name] = module
    return built


def check_configs() -> dict[str, int]:
    """Build the real components on the meta device (no memory) and check their sizes."""
    components = _components("meta", torch.float32, seed=0)
    counts = {
        name: sum(p.numel() for p in module.parameters()) for name, module in components.items()
    }
    wrong = {n: c for n, c in counts.items() if c != EXPECTED_PARAMETERS[n]}
    if wrong:
        raise SystemExit(f"animagine/_data/sdxl does not give SDXL's parameter counts: {wrong}")
    return counts


def _scheduler() -> Any:
    """Euler a (Animagine's recommended sampler) with SDXL base's noise schedule."""
    from diffusers import EulerAncestralDiscreteScheduler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EulerAncestralDiscreteScheduler.from_config(_config("scheduler"))


SHIPPED_TOKENIZERS = CONFIG_DIR


def _tokenizers() -> tuple[Any, Any, str]:
    """SDXL's CLIP BPE tokenizers if the repository ships them, else byte-level ones."""
    from transformers import CLIPTokenizer

    from animagine.testing import make_tiny_pipeline

    folders = [SHIPPED_TOKENIZERS / name for name in ("tokenizer", "tokenizer_2")]
    if all((folder / "vocab.json").is_file() for folder in folders):
        try:
            first, second = (
                CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
                for folder in folders
            )
        except (OSError, ValueError) as exc:
            print(f"could not load {SHIPPED_TOKENIZERS}: {exc}; using byte-level tokenizers")
        else:
            return first, second, f"CLIP BPE, {len(first):,} tokens (animagine/_data/sdxl)"
    tiny = make_tiny_pipeline()  # its tokenizers only; the models are a few MB, built on the CPU
    return (
        tiny.tokenizer,
        tiny.tokenizer_2,
        "byte-level CLIP (animagine.testing; the real vocabulary is not in this checkout)",
    )


def build_sdxl(device: torch.device, dtype: torch.dtype, seed: int) -> tuple[Any, str]:
    from diffusers import StableDiffusionXLPipeline

    tokenizer, tokenizer_2, tokenizers = _tokenizers()
    parts = _components(device, dtype, seed)
    pipe = StableDiffusionXLPipeline(
        **parts,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=_scheduler(),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe, tokenizers


def build_tiny(device: torch.device, dtype: torch.dtype, seed: int) -> tuple[Any, str]:
    from diffusers.utils import logging as diffusers_logging

    from animagine.testing import make_tiny_pipeline

    pipe = make_tiny_pipeline(seed=seed)
    pipe.scheduler = _scheduler()  # the same Euler a config as the real run
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32: []"
    try:
        return pipe.to(device=device, dtype=dtype), "byte-level CLIP (animagine.testing)"
    finally:
        diffusers_logging.set_verbosity(verbosity)


# --- fast mode ---------------------------------------------------------------------------------


def make_fast(pipe: Any, compile_mode: str) -> None:
    """The Generator's speed mode (``compile=``), applied to ``pipe`` in place.

    ``Generator(pipe, compile=mode)`` fuses the QKV projections, puts the UNet and VAE in
    channels_last and compiles the UNet and ``vae.decode`` (``fullgraph=True``, ``dynamic=False``)
    with diffusers' SDXL Inductor options; the benchmark then times the same pipeline.
    """
    from animagine.generation import Generator

    # diffusers' upsampling checks the torch version through an lru_cache; Dynamo traces through it.
    warnings.filterwarnings("ignore", "Dynamo detected a call to a `functools.lru_cache`")
    Generator(pipe, version="v4", compile=compile_mode)


def apply_memory(pipe: Any, memory: str, device: torch.device) -> None:
    """The Generator's memory mode (``memory=``), applied to ``pipe`` in place."""
    from animagine.generation import Generator

    Generator(pipe, version="v4", memory=memory, device=device)


def attention_processors(pipe: Any) -> str:
    unet = getattr(pipe.unet, "_orig_mod", pipe.unet)
    names = {type(p).__name__ for p in unet.attn_processors.values()}
    return ", ".join(sorted(names))


# --- timing ------------------------------------------------------------------------------------


class Clock:
    """Time marks: CUDA events on a GPU (no synchronisation to record one), else perf_counter."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        if self.cuda:
            return float(start.elapsed_time(end)) / 1000.0
        return float(end - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Generation:
    """One image as an application makes it: parse, encode (animagine), denoise, decode, PIL."""

    def __init__(
        self, pipe: Any, *, width: int, height: int, steps: int, seed: int, device: torch.device
    ) -> None:
        from animagine.generation import PromptEncoder

        self.pipe = pipe
        self.width, self.height, self.steps, self.seed = width, height, steps, seed
        self.encoder = PromptEncoder(pipe, cache_size=0)  # encode every time: no cache hits
        self.device = device  # where the models run (with offloading, not where they are kept)
        self.clock = Clock(self.device)
        check = self.encoder.encode(_tags(PROMPT), _tags(NEGATIVE))
        if check.chunks != 1:
            raise SystemExit(f"the benchmark prompt takes {check.chunks} chunks; it must take 1")

    def __call__(self) -> dict[str, float]:
        """Generate one image; return its timings in seconds."""
        marks: list[Any] = []

        def on_step_end(_pipe: Any, _step: int, _t: Any, _kwargs: dict[str, Any]) -> dict[str, Any]:
            marks.append(self.clock.mark())
            return {}

        synchronize(self.device)
        start_wall = time.perf_counter()
        start = self.clock.mark()
        embeddings = self.encoder.encode(_tags(PROMPT), _tags(NEGATIVE))
        encoded = self.clock.mark()
        generator = torch.Generator(self.device).manual_seed(self.seed)
        with warnings.catch_warnings():
            # Random weights can give non-finite pixels; the cast to uint8 then warns.
            warnings.simplefilter("ignore", RuntimeWarning)
            output = self.pipe(
                **embeddings.as_kwargs(),
                width=self.width,
                height=self.height,
                num_inference_steps=self.steps,
                guidance_scale=GUIDANCE,
                generator=generator,
                output_type="pil",
                callback_on_step_end=on_step_end,
            )
        end = self.clock.mark()
        synchronize(self.device)
        wall = time.perf_counter() - start_wall
        assert output.images[0].size == (self.width, self.height)
        steps = [self.clock.seconds(a, b) for a, b in itertools.pairwise(marks)]
        return {
            "total": wall,
            "encode": self.clock.seconds(start, encoded),
            "step": statistics.median(steps) if steps else float("nan"),
            "decode": self.clock.seconds(marks[-1], end),
        }


def _tags(text: str) -> Any:
    from animagine import Prompt

    return Prompt.parse(text).tags


def _compiled_graphs() -> int:
    """Graphs Dynamo has compiled so far in this process (0 before any torch.compile)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def measure(
    generation: Generation, *, mode: str, warmup: int, runs: int, log: Callable[[str], None]
) -> dict[str, Any]:
    device = generation.device
    first: list[float] = []
    for index in range(warmup):
        seconds = generation()["total"]
        first.append(seconds)
        log(f"  {mode}: warm-up {index + 1}/{warmup}: {seconds:.3f} s")
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    graphs_before = _compiled_graphs()
    timings: list[dict[str, float]] = []
    for index in range(runs):
        timings.append(generation())
        log(f"  {mode}: run {index + 1}/{runs}: {timings[-1]['total']:.3f} s")
    recompiled = _compiled_graphs() - graphs_before
    if recompiled:
        log(f"  {mode}: WARNING: {recompiled} graph(s) compiled during the timed runs")
    totals = [t["total"] for t in timings]
    result: dict[str, Any] = {
        "mode": mode,
        "seconds": statistics.median(totals),
        "min": min(totals),
        "max": max(totals),
        "encode": statistics.median(t["encode"] for t in timings),
        "step": statistics.median(t["step"] for t in timings),
        "decode": statistics.median(t["decode"] for t in timings),
        "first_call": first[0] if first else float("nan"),
        "warmup": first,
        "runs": totals,
        "attention": attention_processors(generation.pipe),
        "recompiled": recompiled,
    }
    if device.type == "cuda":
        result["peak_allocated"] = torch.cuda.max_memory_allocated(device) / GIB
        result["peak_reserved"] = torch.cuda.max_memory_reserved(device) / GIB
    return result


# --- report ------------------------------------------------------------------------------------


def _versions() -> str:
    import diffusers
    import transformers

    import animagine

    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"diffusers {diffusers.__version__}, "
        f"transformers {transformers.__version__}, animagine {animagine.__version__}, "
        f"Python {platform.python_version()}"
    )


def _device_line(device: torch.device) -> str:
    if device.type != "cuda":
        return f"CPU ({cpu_model()}, {platform.machine()}, {os.cpu_count()} logical cores)"
    props = torch.cuda.get_device_properties(device)
    return (
        f"{torch.cuda.get_device_name(device)} ({props.total_memory / GIB:.0f} GiB, "
        f"compute capability {props.major}.{props.minor}, {props.multi_processor_count} SMs)"
    )


def report(
    results: list[dict[str, Any]],
    *,
    args: argparse.Namespace,
    device: torch.device,
    counts: dict[str, int],
    build_seconds: float,
    weights_gib: float | None,
    tokenizers: str,
) -> str:
    width, height, steps = args.width, args.height, args.steps
    standard = (width, height, steps) == (WIDTH, HEIGHT, STEPS) and device.type == "cuda"
    model = (
        "animagine.testing.make_tiny_pipeline()"
        if args.smoke
        else "SDXL base 1.0 architecture (animagine/_data/sdxl), random weights"
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.smoke:
        title = "CPU smoke run (tiny pipeline; NOT a benchmark)"
    elif not standard:
        title = "SDXL check run (not the standard workload; NOT the benchmark)"
    else:
        title = "SDXL on a GPU: seconds per image and peak memory"
    lines = [
        f"# {title}",
        "",
        "`" + " ".join(["python benchmarks/gpu_sdxl.py", *sys.argv[1:]]) + "`",
        "",
        f"- Date: {now}",
        f"- Device: {_device_line(device)}",
        f"- Host: {cpu_model()}, {os.cpu_count()} logical cores; {platform.platform()}"
        if device.type == "cuda"
        else f"- OS: {platform.platform()}",
        f"- Software: {_versions()}",
        f"- Code: {git_state()}",
        f"- Model: {model} in {args.dtype}; built in {build_seconds:.1f} s"
        + (f", {weights_gib:.2f} GiB of weights on the GPU" if weights_gib is not None else ""),
        f"- Target ({TARGET_SOURCE}): fast mode at most {TARGET_S} s per image on an H100, "
        f"{WIDTH}x{HEIGHT}, {STEPS} steps (compute floor about {FLOOR_S} s)"
        + ("" if standard else "; this run is not that workload, so it says nothing about it"),
        "- Parameters (real configs, checked): "
        + ", ".join(f"{name} {count:,}" for name, count in counts.items()),
        f"- Tokenizers: {tokenizers}",
        f"- Workload: Euler a, {width}x{height}, {steps} steps, batch 1, CFG {GUIDANCE} (UNet batch"
        f" 2), prompt parsed and encoded by animagine every image (cache off), PIL output",
        f"- Timing: median of {args.runs} images after {args.warmup} warm-up images; "
        "range is fastest-slowest",
        (
            f"- Fast mode: the Generator's speed mode, Generator(compile={args.compile_mode!r}):"
            " fused QKV, channels_last, torch.compile(fullgraph=True, dynamic=False) of the UNet"
            " and vae.decode with that mode's Inductor options plus conv_1x1_as_mm,"
            " coordinate_descent_tuning, coordinate_descent_check_all_directions,"
            " epilogue_fusion=False"
        )
        if any(r["mode"] == "fast" for r in results)
        else "- Default mode only: the pipeline as diffusers builds it (SDPA attention)",
        f"- Memory mode of the default-mode run: Generator(memory={args.memory!r})",
        "",
        "| mode | s / image | range | UNet step (ms) | decode (ms) | encode (ms) "
        "| peak alloc (GiB) | peak reserved (GiB) | first call (s) | attention |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        alloc = f"{r['peak_allocated']:.2f}" if "peak_allocated" in r else "n/a"
        reserved = f"{r['peak_reserved']:.2f}" if "peak_reserved" in r else "n/a"
        lines.append(
            f"| {r['mode']} | {r['seconds']:.3f} | {r['min']:.3f}-{r['max']:.3f} "
            f"| {r['step'] * 1000:.1f} | {r['decode'] * 1000:.1f} | {r['encode'] * 1000:.1f} "
            f"| {alloc} | {reserved} | {r['first_call']:.1f} | {r['attention']} |"
        )
    lines.append("")
    for r in results:
        if r["recompiled"]:
            lines.append(
                f"**{r['mode']} mode compiled {r['recompiled']} graph(s) during its timed runs**: "
                "its figures include compilation; raise --warmup."
            )
    by_mode = {r["mode"]: r for r in results}
    if "default" in by_mode and "fast" in by_mode:
        speedup = by_mode["default"]["seconds"] / by_mode["fast"]["seconds"]
        lines.append(f"Fast mode is {speedup:.2f}x the speed of default mode.")
    if "fast" in by_mode and standard:
        fast = by_mode["fast"]["seconds"]
        verdict = "meets" if fast <= TARGET_S else "misses"
        lines.append(
            f"Fast mode {verdict} the target of {TARGET_S} s / image on an H100 "
            f"({fast:.3f} s; {TARGET_SOURCE}; its compute floor is about {FLOOR_S} s). The "
            "target is set for an H100: compare other devices with care."
        )
    if standard:
        for r in results:
            if r["mode"] == "default" and args.memory == "device":
                verdict = "meets" if r["seconds"] <= DEFAULT_TARGET_S else "misses"
                lines.append(
                    f"Default mode {verdict} the target of {DEFAULT_TARGET_S} s / image on an"
                    f" H100 or H200 ({r['seconds']:.3f} s; issue #9)."
                )
            if "peak_allocated" in r:
                peak_gb = r["peak_allocated"] * GIB / 1e9
                verdict = "meets" if peak_gb <= PEAK_TARGET_GB else "misses"
                lines.append(
                    f"{r['mode'].capitalize()} mode's peak memory {verdict} the target of"
                    f" {PEAK_TARGET_GB:g} GB ({peak_gb:.2f} GB allocated; issue #9)."
                )
    lines += [
        "",
        "UNet step: median over steps 2..N of the time between consecutive step ends (UNet at "
        "batch 2 + Euler a step), from CUDA events (perf_counter on a CPU). Decode: last step "
        "end to PIL image (VAE decode, post-processing). Encode: prompt parse + both text "
        "encoders for prompt and negative. First call: the first warm-up image (includes "
        "torch.compile in fast mode).",
        "",
    ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("default", "fast", "both"), default="both")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="bf16")
    parser.add_argument("--warmup", type=int, default=None, help="untimed images per mode (3)")
    parser.add_argument("--runs", type=int, default=None, help="timed images per mode (10)")
    parser.add_argument(
        "--compile-mode",
        default=None,
        choices=("max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead", "default"),
        help="torch.compile mode in fast mode (max-autotune-no-cudagraphs, what the Generator's"
        " compile=True uses; default under --smoke)",
    )
    parser.add_argument("--no-vae-upcast", action="store_true", help="decode in fp16 in fp16 runs")
    parser.add_argument(
        "--memory",
        default="device",
        help="the Generator's memory mode for --mode default (model-offload, vae-tiling...)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device (cuda; cpu under --smoke); cpu runs are checks"
    )
    parser.add_argument("--width", type=int, default=None, help=f"image width ({WIDTH})")
    parser.add_argument("--height", type=int, default=None, help=f"image height ({HEIGHT})")
    parser.add_argument("--steps", type=int, default=None, help=f"denoising steps ({STEPS})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smoke",
        "--quick",
        action="store_true",
        help="CPU, tiny pipeline, 64x64, 2 steps; writes no file",
    )
    parser.add_argument(
        "--output", default=None, help=f"markdown file, '-' for none (default {RESULTS.name})"
    )
    args = parser.parse_args(argv)
    args.width = args.width or (SMOKE_SIZE if args.smoke else WIDTH)
    args.height = args.height or (SMOKE_SIZE if args.smoke else HEIGHT)
    args.steps = args.steps or (SMOKE_STEPS if args.smoke else STEPS)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    args.runs = args.runs if args.runs is not None else (1 if args.smoke else 10)
    args.compile_mode = args.compile_mode or (
        "default" if args.smoke else "max-autotune-no-cudagraphs"
    )
    if args.memory != "device" and args.mode != "default":
        parser.error("--memory is for --mode default (the speed mode keeps every model on the GPU)")
    output = args.output or ("-" if args.smoke else str(RESULTS))

    def log(message: str) -> None:
        print(message, flush=True)

    device = torch.device(args.device or ("cpu" if args.smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or pass --smoke for the CPU check")
    dtype = DTYPES[args.dtype]

    counts = check_configs()
    log("configs: " + ", ".join(f"{n} {c:,} parameters" for n, c in counts.items()) + " (ok)")
    log(f"device: {_device_line(device)}")
    log(f"software: {_versions()}")

    started = time.perf_counter()
    pipe, tokenizers = (build_tiny if args.smoke else build_sdxl)(device, dtype, args.seed)
    if args.no_vae_upcast:
        pipe.vae.register_to_config(force_upcast=False)
    synchronize(device)
    build_seconds = time.perf_counter() - started
    weights = torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None
    log(f"pipeline built in {build_seconds:.1f} s ({args.dtype}); tokenizers: {tokenizers}")

    if args.memory != "device":
        apply_memory(pipe, args.memory, device)
        log(f"memory mode {args.memory}")
    generation = Generation(
        pipe, width=args.width, height=args.height, steps=args.steps, seed=args.seed, device=device
    )
    modes = ("default", "fast") if args.mode == "both" else (args.mode,)
    results = []
    for mode in modes:
        if mode == "fast":
            make_fast(pipe, args.compile_mode)
        log(f"{mode} mode: {args.warmup} warm-up + {args.runs} timed images")
        results.append(measure(generation, mode=mode, warmup=args.warmup, runs=args.runs, log=log))
    text = report(
        results,
        args=args,
        device=device,
        counts=counts,
        build_seconds=build_seconds,
        weights_gib=weights,
        tokenizers=tokenizers,
    )
    print()
    print(text)
    if output != "-":
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
