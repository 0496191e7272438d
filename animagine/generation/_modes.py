"""Memory and speed modes of a :class:`Generator`: what they are, how they are checked and applied.

Both map onto diffusers' and PyTorch's own mechanisms; nothing here re-implements them.

Memory (``memory=``): one placement, optionally with VAE modes, joined by ``+``
(``"model-offload+vae-tiling"``):

* ``device``: every model on the generator's device (the default).
* ``model-offload``: ``pipeline.enable_model_cpu_offload()``: weights stay in CPU memory, and
  each whole model (text encoders, UNet, VAE) moves to the accelerator when it runs.
* ``sequential-offload``: ``pipeline.enable_sequential_cpu_offload()``: weights stay in CPU
  memory and each layer moves to the accelerator when it runs (least memory, slowest).
* ``vae-tiling``: ``vae.enable_tiling()``: large images are decoded in overlapping tiles.
* ``vae-slicing``: ``vae.enable_slicing()``: several images are decoded one at a time.

The offload modes need ``accelerate`` and an accelerator (CUDA, XPU, MPS): on a CPU there is
nothing to offload to, so they are refused before any model is loaded.

Speed (``compile=``): ``True`` or a ``torch.compile`` mode name. Applies fused QKV projections
(``pipeline.fuse_qkv_projections()``), ``channels_last`` for the UNet and VAE, and
``torch.compile(fullgraph=True, dynamic=False)`` of the UNet and of ``vae.decode``, with the
Inductor options of diffusers' SDXL recipe passed to those compilations only (no global
configuration is changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.errors import GenerationArgumentError, GenerationTypeError
from animagine.extras import require

if TYPE_CHECKING:
    import torch

__all__ = [
    "COMPILE_MODES",
    "DEFAULT_COMPILE_MODE",
    "INDUCTOR_OPTIONS",
    "MEMORY_MODES",
    "MemoryMode",
    "SpeedMode",
    "apply_memory",
    "apply_speed",
    "check_combination",
    "check_lora_allowed",
    "check_speed",
    "memory_mode",
    "offload_device",
    "speed_mode",
]

#: The placements (one per mode) and the VAE modes that may be added to any of them.
PLACEMENTS: Final = ("device", "model-offload", "sequential-offload")
VAE_MODES: Final = ("vae-tiling", "vae-slicing")
#: Every name ``memory=`` takes, joined with ``+``.
MEMORY_MODES: Final = (*PLACEMENTS, *VAE_MODES)

#: ``torch.compile`` modes ``compile=`` takes by name.
COMPILE_MODES: Final = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: What ``compile=True`` means: autotuned kernels, no CUDA graphs (which would record one graph,
#: and keep its memory, per image size).
DEFAULT_COMPILE_MODE: Final = "max-autotune-no-cudagraphs"
#: diffusers' SDXL recipe's Inductor settings, given to the two compilations only.
INDUCTOR_OPTIONS: Final = {
    "conv_1x1_as_mm": True,
    "coordinate_descent_tuning": True,
    "coordinate_descent_check_all_directions": True,
    "epilogue_fusion": False,
}


@attrs.frozen
class MemoryMode:
    """A checked ``memory=`` value: where the weights live, and how the VAE decodes."""

    placement: str = "device"
    vae_tiling: bool = False
    vae_slicing: bool = False

    @property
    def offload(self) -> bool:
        return self.placement != "device"

    @property
    def name(self) -> str:
        """The canonical name: ``device`` is left out when a VAE mode is added to it."""
        parts = [self.placement] if self.offload else []
        parts += [
            name
            for name, on in zip(VAE_MODES, (self.vae_tiling, self.vae_slicing), strict=True)
            if on
        ]
        return "+".join(parts) or "device"


@attrs.frozen
class SpeedMode:
    """A checked ``compile=`` value: the ``torch.compile`` mode, or None for no speed mode."""

    compile_mode: str | None = None

    @property
    def name(self) -> str | None:
        return self.compile_mode


def memory_mode(value: object) -> MemoryMode:
    """Check a ``memory=`` value: names from :data:`MEMORY_MODES` joined by ``+`` (or a sequence).

    Raises:
        GenerationTypeError: not a str or a sequence of str.
        GenerationArgumentError: an unknown name, two placements, or a name given twice.
    """
    if isinstance(value, MemoryMode):
        return value
    if isinstance(value, str):
        names = [part.strip().lower() for part in value.split("+")]
    elif isinstance(value, Sequence) and all(isinstance(part, str) for part in value):
        names = [part.strip().lower() for part in value]
    else:
        raise GenerationTypeError(
            f"memory must be a str such as 'model-offload+vae-tiling', got"
            f" {type(value).__name__}: {value!r}"
        )
    valid = ", ".join(MEMORY_MODES)
    unknown = [name for name in names if name not in MEMORY_MODES]
    if unknown or not names:
        raise GenerationArgumentError(
            f"memory={value!r}: unknown mode {', '.join(map(repr, unknown)) or repr('')};"
            f" modes: {valid} (a placement, plus VAE modes joined with '+')"
        )
    if len(set(names)) != len(names):
        raise GenerationArgumentError(f"memory={value!r} names a mode twice")
    placements = [name for name in names if name in PLACEMENTS]
    if len(placements) > 1:
        raise GenerationArgumentError(
            f"memory={value!r} names {len(placements)} placements ({', '.join(placements)});"
            f" choose one of {', '.join(PLACEMENTS)}"
        )
    return MemoryMode(
        placement=placements[0] if placements else "device",
        vae_tiling="vae-tiling" in names,
        vae_slicing="vae-slicing" in names,
    )


def speed_mode(value: object) -> SpeedMode:
    """Check a ``compile=`` value: a bool or a name from :data:`COMPILE_MODES`.

    Raises:
        GenerationTypeError: neither a bool nor a str.
        GenerationArgumentError: an unknown compile mode.
    """
    if isinstance(value, SpeedMode):
        return value
    if isinstance(value, bool):
        return SpeedMode(DEFAULT_COMPILE_MODE if value else None)
    if not isinstance(value, str):
        raise GenerationTypeError(
            f"compile must be a bool or a torch.compile mode name, got"
            f" {type(value).__name__}: {value!r}"
        )
    name = value.strip().lower()
    if name not in COMPILE_MODES:
        raise GenerationArgumentError(
            f"compile={value!r} is not a torch.compile mode; modes: {', '.join(COMPILE_MODES)}"
            f" (or True for {DEFAULT_COMPILE_MODE})"
        )
    return SpeedMode(name)


def check_combination(memory: MemoryMode, speed: SpeedMode) -> None:
    """Refuse modes that cannot work together.

    Raises:
        GenerationArgumentError: ``compile`` with an offload mode: the compiled graphs need the
            weights where they run, while offloading moves them in and out at every call.
    """
    if memory.offload and speed.compile_mode is not None:
        raise GenerationArgumentError(
            f"compile={speed.compile_mode!r} cannot be combined with memory={memory.name!r}:"
            " offloading moves the weights in and out of the accelerator at every call, which"
            " compiled graphs cannot follow; use memory='device' (VAE modes may be added)"
        )


def _accelerator(torch: Any) -> torch.device | None:
    """The default accelerator of this machine, as diffusers would choose it, or None."""
    found: torch.device | None = None
    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    if torch.cuda.is_available():
        found = torch.device("cuda", torch.cuda.current_device())
    elif xpu is not None and xpu.is_available():
        found = torch.device("xpu", 0)
    elif mps is not None and mps.is_available():
        found = torch.device("mps", 0)
    return found


def offload_device(
    memory: MemoryMode, device: torch.device | None, *, current: torch.device | None = None
) -> torch.device | None:
    """Where an offload mode runs the models; check it can, before any model is loaded.

    Args:
        memory: The checked memory mode.
        device: The device asked for (``device=``), or None.
        current: The device the pipeline is on already (a wrapped pipeline), used when no
            ``device`` is given and it is an accelerator.

    Returns:
        The accelerator for an offload mode; None for ``device`` placement.

    Raises:
        GenerationArgumentError: an offload mode with a CPU device, on a machine with no
            accelerator, or on an accelerator this machine does not have.
        MissingDependencyError: an offload mode without ``accelerate`` installed.
    """
    if not memory.offload:
        return None
    torch = require("torch")
    require("accelerate", what=f"memory={memory.name!r} (diffusers' CPU offloading)")
    if device is None and current is not None and current.type not in ("cpu", "meta"):
        device = current
    if device is None:
        found = _accelerator(torch)
        if found is None:
            raise GenerationArgumentError(
                f"memory={memory.name!r} runs each model on an accelerator and keeps the weights"
                " in CPU memory, but this machine has no accelerator (CUDA, XPU or MPS); use"
                " memory='device'"
            )
        return found
    if device.type in ("cpu", "meta"):
        raise GenerationArgumentError(
            f"memory={memory.name!r} offloads weights to the CPU from an accelerator; with"
            f" device={str(device)!r} there is nothing to offload from: use memory='device'"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GenerationArgumentError(
                f"memory={memory.name!r} with device={str(device)!r}: CUDA is not available on"
                " this machine"
            )
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise GenerationArgumentError(
                f"memory={memory.name!r} with device={str(device)!r}: this machine has"
                f" {torch.cuda.device_count()} CUDA device(s)"
            )
        device = torch.device("cuda", index)
    return device


def apply_memory(pipeline: Any, memory: MemoryMode, device: torch.device | None) -> None:
    """Apply a checked memory mode to ``pipeline`` (``device``: from :func:`offload_device`)."""
    if memory.placement == "model-offload":
        pipeline.enable_model_cpu_offload(device=device)
    elif memory.placement == "sequential-offload":
        pipeline.enable_sequential_cpu_offload(device=device)
    vae = pipeline.vae
    if memory.vae_tiling:
        vae.enable_tiling()
    if memory.vae_slicing:
        vae.enable_slicing()


def _has_adapters(pipeline: Any) -> bool:
    return any(
        getattr(getattr(pipeline, name, None), "peft_config", None)
        for name in ("unet", "text_encoder", "text_encoder_2")
    )


def check_speed(pipeline: Any, speed: SpeedMode) -> None:
    """Refuse a speed mode on a pipeline it cannot apply to, before changing anything.

    Raises:
        GenerationArgumentError: the pipeline's UNet is compiled already, or holds LoRA adapters
            (fused QKV projections would run without them).
    """
    if speed.compile_mode is None:
        return
    if hasattr(pipeline.unet, "_orig_mod"):
        raise GenerationArgumentError(
            f"compile={speed.compile_mode!r}: the pipeline's UNet is compiled already"
        )
    if _has_adapters(pipeline):
        raise GenerationArgumentError(
            f"compile={speed.compile_mode!r}: the pipeline holds LoRA adapters, which fused QKV"
            " projections would leave out; fuse them into the weights first"
            " (pipeline.fuse_lora(), then pipeline.unload_lora_weights())"
        )


def check_lora_allowed(speed: SpeedMode) -> None:
    """Refuse loading a LoRA into a compiled generator (its fused QKV projections ignore it).

    Raises:
        GenerationArgumentError: a speed mode is on.
    """
    if speed.compile_mode is not None:
        raise GenerationArgumentError(
            f"LoRAs cannot be loaded into a generator built with compile={speed.compile_mode!r}:"
            " its fused QKV projections and compiled UNet would not use them; build the"
            " generator without compile"
        )


def apply_speed(pipeline: Any, speed: SpeedMode) -> None:
    """Apply a checked speed mode: fused QKV, channels_last, compiled UNet and VAE decode.

    Compilation itself happens at the first call of each image size (see the guide).
    """
    if speed.compile_mode is None:
        return
    torch = require("torch")
    inductor = require("torch._inductor")
    logging = require("diffusers.utils.logging")
    verbosity = logging.get_verbosity()
    # diffusers logs a note on keeping float32 modules at every `.to()`, even one that only
    # changes the memory format; nothing is cast here.
    logging.set_verbosity_error()
    try:
        pipeline.fuse_qkv_projections()  # UNet and VAE: FusedAttnProcessor2_0 (still SDPA)
        pipeline.unet.to(memory_format=torch.channels_last)
        pipeline.vae.to(memory_format=torch.channels_last)
    finally:
        logging.set_verbosity(verbosity)
    # torch.compile takes a mode or options, not both: pass the mode's own options plus ours.
    options = {**inductor.list_mode_options(speed.compile_mode), **INDUCTOR_OPTIONS}
    pipeline.unet = torch.compile(pipeline.unet, fullgraph=True, dynamic=False, options=options)
    pipeline.vae.decode = torch.compile(
        pipeline.vae.decode, fullgraph=True, dynamic=False, options=options
    )
