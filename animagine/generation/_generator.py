"""`Generator`: text to image with an Animagine XL model, with the model card's settings.

A thin layer over diffusers' ``StableDiffusionXLPipeline``::

    gen = Generator.from_pretrained("cagliostrolab/animagine-xl-4.0", dtype="float16")
    result = gen("1girl, arima kana, oshi no ko, smile", seed=42)
    result.save("out/")            # PNGs with A1111 infotext and our JSON in their metadata

What it adds to the pipeline:

* **Defaults from the version** (:class:`animagine.ModelVersion`): CFG, steps, sampler (Euler a),
  832x1216, the card's negative prompt and its recommended quality tags, placed where the version
  wants them (appended for 4.0 and 3.1, prepended for 3.0).
* **Prompts as tags**: text is parsed for the generator's version (:meth:`animagine.Prompt.parse`,
  tags in the training order) and encoded offline with A1111's long-prompt and weighting semantics
  (:class:`animagine.PromptEncoder`): no 77-token truncation, no community pipeline
  download. The exact text sent is recorded.
* **Reproducible seeds**: image ``i`` uses seed ``seed + i`` through its own CPU
  ``torch.Generator``, so a seed gives the same image on any device and in any batch position
  (up to the numerics of batching on the device); ``seed=None`` draws one and records it.
* **Validation before any model work**: every argument is checked first; errors name the argument
  and its value and derive from :class:`animagine.AnimagineError` and ``ValueError`` or
  ``TypeError``.
* **Safe loading**: safetensors only unless ``allow_pickle=True``; offline single-file loading
  with a local config; no watermarker; the fp16-fix VAE for 3.x in float16, and the VAE decoded
  in float32 whenever a VAE that is not known to be fp16-safe runs in float16 (no NaN / black
  images).

* **Hires fix** as in the official demo (``hires=1.5`` or a :class:`HiresParameters`): the
  first pass's latents are upscaled (``Latent (nearest-exact)`` by default) and denoised again by
  an img2img pipeline built from the same components (no weights copied), with the same prompt
  embeddings and seeds.
* **LoRA** through diffusers (:meth:`Generator.load_lora`, :meth:`Generator.set_lora_weights`,
  :meth:`Generator.unload_loras`): safetensors only unless ``allow_pickle=True``; the prompt
  cache is emptied whenever the LoRAs change; each image records its LoRAs (``Lora hashes`` and
  ``Lora weights`` in its A1111 infotext).

Not implemented: img2img / inpainting from a user's image, non-latent hires upscalers
(ESRGAN...), ``DPM++ 2S a``.
"""

from __future__ import annotations

import errno
import hashlib
import math
import numbers
import operator
import os
import re
import secrets
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.core._grammar import parse_tags
from animagine.core._prompt import Prompt
from animagine.core._tag import Tag
from animagine.core._vocab import ModelVersion, get_version
from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    ModelLoadError,
    UnknownVersionError,
)
from animagine.generation._encoding import PromptEncoder, UnsupportedPipelineError
from animagine.metadata._records import GenerationParameters, HiresParameters, write_png

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

__all__ = [
    "HIRES_UPSCALERS",
    "MAX_HIRES_SCALE",
    "MAX_SIZE",
    "MIN_SIZE",
    "SAMPLERS",
    "GenerationArgumentError",
    "GenerationResult",
    "Generator",
    "ModelLoadError",
]


#: Smallest and largest image side accepted, in pixels (multiples of 8). Animagine was trained on
#: the buckets of :attr:`ModelVersion.resolutions`; sizes far from them give poor images.
MIN_SIZE: Final = 64
MAX_SIZE: Final = 4096
MAX_STEPS: Final = 200
MAX_GUIDANCE: Final = 30.0
MAX_IMAGES: Final = 64
_MAX_SEED: Final = 2**64 - 1
_DEFAULT_MODEL: Final = "cagliostrolab/animagine-xl-4.0"
_PICKLE_SUFFIXES: Final = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl"})
_SDXL_COMPONENTS: Final = (
    "tokenizer",
    "tokenizer_2",
    "text_encoder",
    "text_encoder_2",
    "unet",
    "vae",
)
#: What a ``StableDiffusionXLImg2ImgPipeline`` is built from, besides its scheduler.
_IMG2IMG_COMPONENTS: Final = (
    *_SDXL_COMPONENTS,
    "image_encoder",
    "feature_extractor",
)


# --- samplers -------------------------------------------------------------------------------------


@attrs.frozen
class _Sampler:
    name: str
    scheduler: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    karras: bool = False
    requires: str | None = None


#: A1111 sampler names and the diffusers scheduler each one maps to (diffusers' own table, in
#: its "Schedulers" documentation). Names are matched ignoring case.
_SAMPLER_TABLE: Final = (
    _Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
    _Sampler("Euler", "EulerDiscreteScheduler"),
    _Sampler("Heun", "HeunDiscreteScheduler"),
    _Sampler("LMS", "LMSDiscreteScheduler", requires="scipy"),
    _Sampler("DPM2", "KDPM2DiscreteScheduler"),
    _Sampler("DPM2 Karras", "KDPM2DiscreteScheduler", karras=True),
    _Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    _Sampler("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", karras=True),
    _Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    _Sampler(
        "DPM++ 2M Karras",
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++"},
        karras=True,
    ),
    _Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    _Sampler(
        "DPM++ 2M SDE Karras",
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        karras=True,
    ),
    _Sampler("DPM++ SDE", "DPMSolverSDEScheduler", requires="torchsde"),
    _Sampler("DPM++ SDE Karras", "DPMSolverSDEScheduler", karras=True, requires="torchsde"),
    _Sampler("DDIM", "DDIMScheduler"),
    _Sampler("UniPC", "UniPCMultistepScheduler"),
)  # fmt: skip
_SAMPLERS_BY_KEY: Final = {sampler.name.lower(): sampler for sampler in _SAMPLER_TABLE}
#: The A1111 sampler names :meth:`Generator.__call__` accepts (``LMS`` needs scipy, ``DPM++ SDE``
#: and ``DPM++ SDE Karras`` need torchsde).
SAMPLERS: Final = tuple(sampler.name for sampler in _SAMPLER_TABLE)
_SIGMA_SCHEDULES: Final = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def _resolve_sampler(name: object) -> _Sampler:
    if not isinstance(name, str):
        raise GenerationTypeError(f"sampler must be a str, got {type(name).__name__}: {name!r}")
    sampler = _SAMPLERS_BY_KEY.get(" ".join(name.split()).lower())
    if sampler is None:
        raise GenerationArgumentError(
            f"unknown sampler {name!r}; known samplers are {', '.join(map(repr, SAMPLERS))}"
        )
    if sampler.requires is not None:
        import importlib.util  # noqa: PLC0415

        if importlib.util.find_spec(sampler.requires) is None:
            raise ImportError(
                f"sampler {sampler.name!r} needs {sampler.requires}: pip install {sampler.requires}"
            )
    return sampler


def _make_scheduler(sampler: _Sampler, base_config: Mapping[str, Any]) -> Any:
    """A new scheduler for ``sampler`` from the model's scheduler config (betas, spacing...)."""
    import inspect  # noqa: PLC0415

    diffusers = _import("diffusers")
    cls = getattr(diffusers, sampler.scheduler)
    accepted = inspect.signature(cls.__init__).parameters
    options = dict(sampler.options)
    # Explicit sigma schedule: a model shipped with a Karras scheduler must not turn "Euler"
    # into "Euler Karras" through its config.
    for schedule in _SIGMA_SCHEDULES:
        if schedule in accepted:
            options[schedule] = sampler.karras and schedule == "use_karras_sigmas"
    return cls.from_config(dict(base_config), **options)


# --- sizes ----------------------------------------------------------------------------------------


def _reduced(width: int, height: int) -> tuple[int, int]:
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


#: Conventional aspect-ratio labels and the trained bucket each one means (the labels UIs give
#: SDXL's buckets; 832x1216 is 13:19 exactly and "2:3" by convention).
_NOMINAL_RATIOS: Final = {
    (1, 1): (1024, 1024),
    (4, 3): (1152, 896),
    (3, 4): (896, 1152),
    (3, 2): (1216, 832),
    (2, 3): (832, 1216),
    (16, 9): (1344, 768),
    (9, 16): (768, 1344),
    (21, 9): (1536, 640),
    (9, 21): (640, 1536),
}
_NOMINAL_BY_RATIO: Final = {_reduced(*label): size for label, size in _NOMINAL_RATIOS.items()}
_RATIO: Final = re.compile(r"\s*(\d+)\s*([:x/])\s*(\d+)\s*")


def _aspect_size(aspect: object, version: ModelVersion) -> tuple[int, int]:
    """The bucket for an aspect name, ratio or ``WxH`` string (see :meth:`Generator.__call__`)."""
    if not isinstance(aspect, str):
        raise GenerationTypeError(f"aspect must be a str, got {type(aspect).__name__}: {aspect!r}")
    resolutions = version.resolutions
    portrait = (version.defaults.width, version.defaults.height)
    names = {
        "portrait": portrait,
        "landscape": (portrait[1], portrait[0]),
        "square": (1024, 1024),
    }
    key = aspect.strip().lower()
    if key in names:
        return names[key]
    match = _RATIO.fullmatch(key)
    if match is not None and int(match[1]) > 0 and int(match[3]) > 0:
        first, second = int(match[1]), int(match[3])
        if match[2] == "x":
            if (first, second) in resolutions:
                return first, second
        else:
            ratio = _reduced(first, second)
            for size in resolutions:
                if _reduced(*size) == ratio:
                    return size
            nominal = _NOMINAL_BY_RATIO.get(ratio)
            if nominal is not None and nominal in resolutions:
                return nominal
    exact = ", ".join(f"{w}:{h}" for w, h in (_reduced(*size) for size in resolutions))
    sizes = ", ".join(f"{w}x{h}" for w, h in resolutions)
    labels = ", ".join(
        f"{w}:{h}" for (w, h), size in _NOMINAL_RATIOS.items() if size in resolutions
    )
    raise GenerationArgumentError(
        f"aspect={aspect!r} is not one of {version.title}'s buckets; use 'portrait', 'landscape',"
        f" 'square', a bucket size ({sizes}), its exact ratio ({exact}) or a conventional label"
        f" ({labels}); for other sizes pass width= and height="
    )


# --- argument checks ------------------------------------------------------------------------------


def _int_argument(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise GenerationTypeError(f"{name} must be an int, got bool: {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # numpy ints too
    except TypeError:
        raise GenerationTypeError(
            f"{name} must be an int, got {type(value).__name__}: {value!r}"
        ) from None
    if not low <= number <= high:
        raise GenerationArgumentError(f"{name} must be between {low} and {high}, got {number!r}")
    return int(number)


def _size_argument(name: str, value: object) -> int:
    number = _int_argument(name, value, MIN_SIZE, MAX_SIZE)
    if number % 8:
        raise GenerationArgumentError(
            f"{name} must be a multiple of 8, got {number} (nearest: {number // 8 * 8} or"
            f" {number // 8 * 8 + 8})"
        )
    return number


def _guidance_argument(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationTypeError(
            f"guidance_scale must be a number, got {type(value).__name__}: {value!r}"
        )
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= MAX_GUIDANCE:
        raise GenerationArgumentError(
            f"guidance_scale must be above 0 and at most {MAX_GUIDANCE:g}, got {value!r}"
        )
    return number


def _bool_argument(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise GenerationTypeError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
    return value


def _number_argument(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationTypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise GenerationArgumentError(f"{name} must be a finite number, got {value!r}")
    return number


# --- hires fix ------------------------------------------------------------------------------------

#: Largest hires-fix upscale factor accepted.
MAX_HIRES_SCALE: Final = 4.0
#: The official demo's hires-fix settings: ``upscale_by=1.5``, ``upscaler_strength=0.55``,
#: latents upscaled with ``nearest-exact``.
_DEMO_HIRES_STRENGTH: Final = 0.55
_DEMO_HIRES_UPSCALER: Final = "Latent (nearest-exact)"


@attrs.frozen
class _Upscaler:
    name: str
    mode: str
    antialias: bool = False


#: A1111's latent upscalers (``latent_upscale_modes``) and the ``torch.nn.functional.interpolate``
#: mode of each; ``Latent (bilinear)`` is how the demo's JSON (``upscale_method``) reads back.
_UPSCALER_TABLE: Final = (
    _Upscaler("Latent", "bilinear"),
    _Upscaler("Latent (antialiased)", "bilinear", antialias=True),
    _Upscaler("Latent (bicubic)", "bicubic"),
    _Upscaler("Latent (bicubic antialiased)", "bicubic", antialias=True),
    _Upscaler("Latent (nearest)", "nearest"),
    _Upscaler("Latent (nearest-exact)", "nearest-exact"),
    _Upscaler("Latent (bilinear)", "bilinear"),
)
_UPSCALERS_BY_KEY: Final = {upscaler.name.lower(): upscaler for upscaler in _UPSCALER_TABLE}
#: The hires-fix upscaler names :meth:`Generator.__call__` accepts (latent upscalers only).
HIRES_UPSCALERS: Final = tuple(upscaler.name for upscaler in _UPSCALER_TABLE)


@attrs.frozen
class _HiresPlan:
    """A validated hires fix: what is recorded, and how to run it."""

    parameters: HiresParameters
    upscaler: _Upscaler
    steps: int
    width: int
    height: int


def _hires_size(side: int, scale: float) -> int:
    """``round(side * scale)`` down to a multiple of 8."""
    return math.floor(side * scale + 0.5) // 8 * 8


def _hires_argument(value: object, width: int, height: int, steps: int) -> _HiresPlan | None:
    """Check ``hires=`` against the first pass's size and steps (see :meth:`Generator.__call__`)."""
    if value is None:
        return None
    if isinstance(value, HiresParameters):
        scale: object = value.scale
        strength: object = value.strength
        upscaler_name: object = value.upscaler
        hires_steps: object = value.steps
        scale_name = "hires.scale"
    elif isinstance(value, numbers.Real):
        scale, strength = value, _DEMO_HIRES_STRENGTH
        upscaler_name, hires_steps = _DEMO_HIRES_UPSCALER, None
        scale_name = "hires (the scale)"
    else:
        raise GenerationTypeError(
            "hires must be a HiresParameters, a number (the upscale factor) or None, got"
            f" {type(value).__name__}: {value!r}"
        )
    scale_ = _number_argument(scale_name, scale)
    if not 1 <= scale_ <= MAX_HIRES_SCALE:
        raise GenerationArgumentError(
            f"{scale_name} must be between 1 and {MAX_HIRES_SCALE:g}, got {scale!r}"
        )
    strength_ = _number_argument("hires.strength", strength)
    if not 0 < strength_ <= 1:
        raise GenerationArgumentError(
            f"hires.strength must be above 0 and at most 1, got {strength!r}"
        )
    steps_ = (
        steps if hires_steps is None else _int_argument("hires.steps", hires_steps, 1, MAX_STEPS)
    )
    if int(steps_ * strength_) < 1:
        raise GenerationArgumentError(
            f"hires.strength={strength_:g} with {steps_} hires steps denoises for"
            f" int({steps_} * {strength_:g}) = 0 steps; raise the strength or hires.steps"
        )
    if not isinstance(upscaler_name, str):
        raise GenerationTypeError(
            f"hires.upscaler must be a str, got {type(upscaler_name).__name__}: {upscaler_name!r}"
        )
    upscaler = _UPSCALERS_BY_KEY.get(" ".join(upscaler_name.split()).lower())
    if upscaler is None:
        raise GenerationArgumentError(
            f"unknown hires.upscaler {upscaler_name!r}; the latent upscalers are"
            f" {', '.join(map(repr, HIRES_UPSCALERS))}"
        )
    target = (_hires_size(width, scale_), _hires_size(height, scale_))
    if max(target) > MAX_SIZE:
        raise GenerationArgumentError(
            f"hires scale {scale_:g} makes {width}x{height} into {target[0]}x{target[1]}; sides"
            f" must be at most {MAX_SIZE}"
        )
    recorded = HiresParameters(
        scale=scale_,
        strength=strength_,
        upscaler=upscaler.name,
        steps=None if hires_steps is None else steps_,
    )
    return _HiresPlan(recorded, upscaler, steps_, *target)


# --- LoRA -----------------------------------------------------------------------------------------

_ADAPTER_NAME: Final = re.compile(r"[\w\-]+")
_LORA_SUFFIXES: Final = _PICKLE_SUFFIXES | {".safetensors"}


@attrs.frozen
class _Lora:
    name: str
    weight: float
    hash: str | None


def _format_weight(weight: float) -> str:
    return str(int(weight)) if weight.is_integer() else repr(weight)


def _lora_hash(path: Path) -> str:
    """A1111's LoRA short hash (``Lora hashes``): the first 12 hex digits of the sha256 of a
    safetensors file's tensor data (the "addnet" hash, header skipped), or of a whole pickle file.
    """
    digest = hashlib.sha256()
    with path.open("rb") as file:
        if path.suffix.lower() == ".safetensors":
            header = file.read(8)
            file.seek(8 + int.from_bytes(header, "little"))
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _check_weight_suffix(name: str, allow_pickle: bool, what: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(
                f"{what} {name!r} is a pickle file, which can run code when loaded; convert it to"
                " .safetensors, or pass allow_pickle=True if you trust it"
            )
    elif suffix != ".safetensors":
        raise ModelLoadError(f"{what} {name!r} is not a .safetensors file")


def _lora_file_in(folder: Path, allow_pickle: bool) -> str:
    """The one LoRA weights file in ``folder`` (safetensors first)."""
    files = sorted(path.name for path in folder.iterdir() if path.is_file())
    for suffixes in ({".safetensors"}, _PICKLE_SUFFIXES if allow_pickle else set()):
        found = [name for name in files if Path(name).suffix.lower() in suffixes]
        if len(found) == 1:
            return found[0]
        if found:
            raise ModelLoadError(
                f"{os.fspath(folder)!r} holds several weights files ({', '.join(found)}); pass"
                " weight_name= to choose one"
            )
    pickles = [name for name in files if Path(name).suffix.lower() in _PICKLE_SUFFIXES]
    hint = (
        f"; its pickle weights ({', '.join(pickles)}) can run code when loaded: pass"
        " allow_pickle=True if you trust them"
        if pickles
        else ""
    )
    raise ModelLoadError(f"{os.fspath(folder)!r} has no .safetensors LoRA weights{hint}")


def _import(name: str) -> Any:
    """Import a module of the generate extra, untyped, with an install hint when missing."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"animagine.Generator needs the generate extra ({name} is missing): "
            "pip install 'animagine[generate]'"
        ) from error


_DTYPE_NAMES: Final = {
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}  # fmt: skip


def _resolve_dtype(dtype: object) -> torch.dtype | None:
    if dtype is None:
        return None
    torch_module = _import("torch")
    if isinstance(dtype, torch_module.dtype):
        name = str(dtype).removeprefix("torch.")
    elif isinstance(dtype, str):
        name = _DTYPE_NAMES.get(dtype.strip().lower().removeprefix("torch."), "")
    else:
        raise GenerationTypeError(
            f"dtype must be a torch.dtype or a str, got {type(dtype).__name__}: {dtype!r}"
        )
    if name not in ("float16", "bfloat16", "float32"):
        raise GenerationArgumentError(f"dtype must be float16, bfloat16 or float32, got {dtype!r}")
    result: torch.dtype = getattr(torch_module, name)
    return result


def _resolve_device(device: object) -> torch.device | None:
    if device is None:
        return None
    torch_module = _import("torch")
    if not isinstance(device, (str, torch_module.device)):
        raise GenerationTypeError(
            f"device must be a str or torch.device, got {type(device).__name__}: {device!r}"
        )
    try:
        result: torch.device = torch_module.device(device)
    except (RuntimeError, ValueError) as error:
        raise GenerationArgumentError(f"device={device!r} is not a torch device: {error}") from None
    return result


def _dtype_keyword() -> str:
    """diffusers >= 0.40 calls the loading dtype ``dtype``; before, ``torch_dtype``."""
    version = _import("diffusers").__version__
    numbers = re.match(r"(\d+)\.(\d+)", version)
    if numbers is not None and (int(numbers[1]), int(numbers[2])) < (0, 40):
        return "torch_dtype"
    return "dtype"


def _vae_plan(
    dtype: torch.dtype | None, version: ModelVersion, vae_given: bool, vae: object
) -> tuple[str | None, bool]:
    """How to get a VAE that decodes without NaN: ``(hub id of a VAE to load, force upcast)``.

    Only float16 overflows. Without a ``vae=`` option, versions whose card loads an fp16-fix VAE
    (3.0, 3.1) get it, and other versions' bundled VAE is decoded in float32. ``vae=None`` keeps
    the bundled VAE, decoded in float32; a VAE passed in is used as its config says.
    """
    torch = _import("torch")
    if dtype != torch.float16:
        return None, False
    if vae_given:
        return None, vae is None
    if version.defaults.vae is not None:
        return version.defaults.vae, False
    return None, True


def _model_label(model: str) -> str:
    """The model name recorded in images: a hub id as given, a local folder or file by name."""
    path = Path(model).expanduser()
    if path.exists():
        named = Path(os.path.abspath(path))  # a symlink keeps its own name
        return named.stem if named.is_file() else named.name
    return model


def _version_for(model: str, version: object, what: str) -> ModelVersion:
    if version is not None:
        if not isinstance(version, (str, ModelVersion)):
            raise GenerationTypeError(
                f"version must be a str or ModelVersion, got {type(version).__name__}: {version!r}"
            )
        return get_version(version)
    try:
        return get_version(model)
    except UnknownVersionError:
        raise UnknownVersionError(
            f"cannot tell the Animagine XL version from {what} {model!r}; pass version="
            " ('v3', 'v3.1' or 'v4')"
        ) from None


def _has_weights(folder: Path, suffixes: frozenset[str]) -> bool:
    return any(path.suffix.lower() in suffixes for path in folder.rglob("*") if path.is_file())


def _check_pickle_option(options: dict[str, Any]) -> bool:
    allow_pickle = _bool_argument("allow_pickle", options.pop("allow_pickle", False))
    if "use_safetensors" in options:
        raise GenerationArgumentError(
            "use_safetensors is set by animagine: safetensors only, unless allow_pickle=True"
        )
    return allow_pickle


# --- the result -----------------------------------------------------------------------------------


def _free_name(directory: Path, stem: str) -> Path:
    candidate = directory / f"{stem}.png"
    number = 2
    while os.path.lexists(candidate):
        candidate = directory / f"{stem}_{number}.png"
        number += 1
    return candidate


@attrs.frozen
class GenerationResult:
    """The images of one :class:`Generator` call and how each was made.

    Attributes:
        images: The images (PIL), one per seed.
        seeds: The seed of each image: ``seed, seed + 1, ...``.
        parameters: Per image, everything needed to make it again
            (``gen(**parameters[i].to_call_kwargs())``).
    """

    images: tuple[Image, ...]
    seeds: tuple[int, ...]
    parameters: tuple[GenerationParameters, ...]

    @property
    def image(self) -> Image:
        """The first image."""
        return self.images[0]

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Save the images as PNGs with their parameters in the metadata; never overwrite.

        ``path`` is a directory (an existing one, or a path without a suffix, created as
        needed): each image is named ``{seed}-{n}.png`` (``n`` counts from 1), with ``_2``,
        ``_3``... added when the name is taken. Or ``path`` is a ``.png`` file: one image is
        saved there; several are saved as ``{stem}-1.png``, ``{stem}-2.png``...

        The metadata is A1111's ``parameters`` text and animagine's JSON
        (:func:`animagine.read_parameters` reads either).

        Returns:
            The paths written, in image order.

        Raises:
            FileExistsError: a file path (or one of its numbered names) exists; nothing is written.
            GenerationArgumentError: a file path that does not end in ``.png``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise GenerationTypeError(f"path must be a str or path, got {type(path).__name__}")
        target = Path(path).expanduser()
        items = list(zip(self.images, self.parameters, strict=True))
        if target.is_dir() or (not target.exists() and not target.suffix):
            target.mkdir(parents=True, exist_ok=True)
            written: list[Path] = []
            for number, (image, parameters) in enumerate(items, start=1):
                while True:
                    candidate = _free_name(target, f"{parameters.seed}-{number}")
                    try:
                        written.append(write_png(image, candidate, parameters))
                        break
                    except FileExistsError:  # taken since we looked: try the next name
                        continue
            return written
        if target.suffix.lower() != ".png":
            raise GenerationArgumentError(
                f"path {str(path)!r} must be a directory or a .png file (images are saved as PNG)"
            )
        names = png_names(target, len(items))
        refuse_existing(names)
        target.parent.mkdir(parents=True, exist_ok=True)
        return [
            write_png(image, name, parameters)
            for name, (image, parameters) in zip(names, items, strict=True)
        ]


def png_names(target: Path, count: int) -> list[Path]:
    """The files :meth:`GenerationResult.save` writes for a ``.png`` path and ``count`` images."""
    if count == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{n}{target.suffix}") for n in range(1, count + 1)]


def refuse_existing(names: Iterable[Path]) -> None:
    """Raise :class:`FileExistsError` for the first of ``names`` that exists."""
    for name in names:
        if os.path.lexists(name):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", str(name))


# --- the generator --------------------------------------------------------------------------------


@attrs.frozen
class _Plan:
    """A validated call, before any model work."""

    prompt: Prompt
    negative: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: _Sampler
    seeds: tuple[int, ...]
    clip_skip: int | None
    negative_tags: tuple[Tag, ...]
    hires: _HiresPlan | None = None


class Generator:
    """Text to image with an Animagine XL model, using its model card's settings.

    Build one with :meth:`from_pretrained` (hub id or diffusers folder), :meth:`from_single_file`
    (an A1111/ComfyUI ``.safetensors`` checkpoint) or by wrapping a
    ``StableDiffusionXLPipeline`` you built (``Generator(pipe, version="v4")``; nothing is
    copied). Call it to generate (see :meth:`__call__`).

    A call sets the pipeline's scheduler to the sampler asked for and puts the previous one back
    afterwards; calls on one generator run one at a time. A wrapped pipeline is used as it is:
    in float16 its VAE's ``force_upcast`` config decides whether decoding runs in float32 (the
    loaders set it when the VAE is not known to be fp16-safe).

    The hires fix runs on a ``StableDiffusionXLImg2ImgPipeline`` built once from the pipeline's
    own components (rebuilt only when one of them is replaced). LoRAs loaded with
    :meth:`load_lora` live in those shared modules, so both passes use them.
    """

    def __init__(
        self, pipeline: Any, *, version: str | ModelVersion, model: str | None = None
    ) -> None:
        """Wrap an SDXL pipeline.

        Args:
            pipeline: A ``StableDiffusionXLPipeline`` (or any pipeline with its components).
            version: The Animagine XL version of the weights (:func:`animagine.get_version`).
            model: The model name recorded in image metadata; default: the pipeline's
                ``name_or_path`` (a folder or file by its name), or ``""``.

        Raises:
            UnsupportedPipelineError: not an SDXL pipeline (no second text encoder, ...).
            UnknownVersionError: an unknown version.
        """
        missing = [name for name in _SDXL_COMPONENTS if getattr(pipeline, name, None) is None]
        if missing or getattr(pipeline, "scheduler", None) is None or not callable(pipeline):
            what = ", ".join(missing) or "scheduler"
            raise UnsupportedPipelineError(
                "Generator needs an SDXL pipeline (StableDiffusionXLPipeline): "
                f"{type(pipeline).__name__} has no {what}"
            )
        if not isinstance(version, (str, ModelVersion)):
            raise GenerationTypeError(
                f"version must be a str or ModelVersion, got {type(version).__name__}: {version!r}"
            )
        if model is not None and not isinstance(model, str):
            raise GenerationTypeError(f"model must be a str, got {type(model).__name__}")
        self._version = get_version(version)
        self._pipeline = pipeline
        if model is None:
            name = getattr(pipeline, "name_or_path", None)
            model = _model_label(name) if isinstance(name, str) and name else ""
        self._model = model
        self._scheduler_config = dict(pipeline.scheduler.config)
        self._encoder = PromptEncoder(pipeline)
        self._lock = threading.Lock()
        self._img2img: tuple[tuple[Any, ...], Any] | None = None
        self._loras: dict[str, _Lora] = {}

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = _DEFAULT_MODEL,
        *,
        version: str | ModelVersion | None = None,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        **loading_options: Any,
    ) -> Generator:
        """Load a diffusers-format model: a hub id or a local folder.

        Args:
            model: Hub id (``"cagliostrolab/animagine-xl-3.1"``) or diffusers folder.
            version: The Animagine XL version; default: told from ``model``'s name (hub ids and
                folders named like them), else :class:`UnknownVersionError` asks for it.
            dtype: ``torch.float16``/``"float16"``, ``"bfloat16"`` or ``"float32"``
                (default: diffusers' default, float32).
            device: Where to move the pipeline (default: stay on the CPU).
            **loading_options: Passed to ``StableDiffusionXLPipeline.from_pretrained``
                (``variant=``, ``revision=``, ``local_files_only=``, ``vae=``...). Also
                ``allow_pickle=True`` to accept ``.bin`` weights (unsafe: pickle runs code).
                ``vae=None`` keeps the bundled VAE where a 3.x model in float16 would get the
                fp16-fix VAE (``madebyollin/sdxl-vae-fp16-fix``).

        Raises:
            UnknownVersionError: no version given and none in the name.
            ModelLoadError: a local path that is not a diffusers folder, or a folder with only
                pickle weights and no ``allow_pickle``.
        """
        if not isinstance(model, (str, os.PathLike)):
            raise GenerationTypeError(f"model must be a str or path, got {type(model).__name__}")
        model = os.fspath(model)
        resolved = _version_for(model, version, "model")
        torch_dtype = _resolve_dtype(dtype)
        target = _resolve_device(device)
        options = dict(loading_options)
        allow_pickle = _check_pickle_option(options)
        local = Path(model).expanduser()
        if local.is_file():
            raise ModelLoadError(
                f"{model!r} is a file: load single-file checkpoints with Generator.from_single_file"
            )
        if local.is_dir():
            if not (local / "model_index.json").is_file():
                raise ModelLoadError(f"{model!r} is not a diffusers folder (no model_index.json)")
            if not allow_pickle and not _has_weights(local, frozenset({".safetensors"})):
                raise ModelLoadError(
                    f"{model!r} has no .safetensors weights; pickle weights (.bin) can run code"
                    " when loaded: pass allow_pickle=True if you trust them"
                )
            model = str(local)
        elif (
            model.startswith((".", "/", "~"))
            or model.count("/") > 1
            or os.sep in model.replace("/", "")
        ):
            raise ModelLoadError(f"no such model folder: {model!r}")
        diffusers = _import("diffusers")
        upcast = _choose_vae(options, torch_dtype, resolved)
        if torch_dtype is not None:
            options[_dtype_keyword()] = torch_dtype
        if not allow_pickle:
            options["use_safetensors"] = True
        options["add_watermarker"] = False
        pipeline = diffusers.StableDiffusionXLPipeline.from_pretrained(model, **options)
        return cls._finish(pipeline, resolved, _model_label(model), target, upcast)

    @classmethod
    def from_single_file(
        cls,
        path: str | os.PathLike[str],
        *,
        version: str | ModelVersion | None = None,
        config: str | os.PathLike[str] | None = None,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        **options: Any,
    ) -> Generator:
        """Load an A1111 / ComfyUI single-file checkpoint (``.safetensors``), offline.

        Args:
            path: The checkpoint file.
            version: The Animagine XL version; default: told from the file name
                (``animagine-xl-4.0-opt.safetensors``), else :class:`UnknownVersionError`.
            config: A local diffusers-format SDXL folder giving the configs and tokenizers
                (the weights come from ``path``). Default: the SDXL config shipped with
                animagine, when this installation has one; otherwise it must be given.
            dtype: As in :meth:`from_pretrained`.
            device: As in :meth:`from_pretrained`.
            **options: Passed to ``StableDiffusionXLPipeline.from_single_file``
                (``local_files_only`` defaults to True). ``allow_pickle=True`` accepts
                ``.ckpt`` files (unsafe: pickle runs code); ``vae=`` as in :meth:`from_pretrained`.

        Raises:
            UnknownVersionError: no version given and none in the file name.
            ModelLoadError: no such file, a pickle checkpoint without ``allow_pickle``, or no
                ``config`` available.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise GenerationTypeError(f"path must be a str or path, got {type(path).__name__}")
        text = os.fspath(path)
        file = Path(text).expanduser()
        resolved = _version_for(file.name, version, "file name")
        torch_dtype = _resolve_dtype(dtype)
        target = _resolve_device(device)
        options = dict(options)
        allow_pickle = _check_pickle_option(options)
        suffix = file.suffix.lower()
        if suffix in _PICKLE_SUFFIXES:
            if not allow_pickle:
                raise ModelLoadError(
                    f"{text!r} is a pickle checkpoint, which can run code when loaded; convert it"
                    " to .safetensors, or pass allow_pickle=True if you trust it"
                )
        elif suffix != ".safetensors":
            raise ModelLoadError(f"{text!r} is not a .safetensors checkpoint")
        if not file.is_file():
            raise ModelLoadError(f"no such checkpoint file: {text!r}")
        if config is None:
            bundled = _bundled_config()
            if bundled is None:
                raise ModelLoadError(
                    "from_single_file needs config=: a local diffusers-format SDXL folder (for"
                    " example a downloaded cagliostrolab/animagine-xl-4.0 without its weights);"
                    " this animagine ships no SDXL config"
                )
            config_path = bundled
        else:
            if not isinstance(config, (str, os.PathLike)):
                raise GenerationTypeError(
                    f"config must be a str or path, got {type(config).__name__}"
                )
            config_path = Path(config).expanduser()
            if not (config_path / "model_index.json").is_file():
                raise ModelLoadError(
                    f"config={os.fspath(config)!r} is not a diffusers folder (no model_index.json)"
                )
        diffusers = _import("diffusers")
        upcast = _choose_vae(options, torch_dtype, resolved)
        options.setdefault("local_files_only", True)
        if torch_dtype is not None:
            options[_dtype_keyword()] = torch_dtype
        options["add_watermarker"] = False
        pipeline = diffusers.StableDiffusionXLPipeline.from_single_file(
            str(file), config=str(config_path), **options
        )
        return cls._finish(pipeline, resolved, file.stem, target, upcast)

    @classmethod
    def _finish(
        cls,
        pipeline: Any,
        version: ModelVersion,
        model: str,
        device: torch.device | None,
        upcast_vae: bool,
    ) -> Generator:
        if upcast_vae:
            # diffusers decodes in float32 when the VAE config says so (SDXL's VAE overflows
            # float16 and gives NaN, that is black images).
            pipeline.vae.register_to_config(force_upcast=True)
        generator = cls(pipeline, version=version, model=model)
        default = _resolve_sampler(version.defaults.sampler)
        pipeline.scheduler = _make_scheduler(default, generator._scheduler_config)
        if device is not None:
            generator.to(device)
        return generator

    # -- properties ---------------------------------------------------------------------------

    @property
    def pipeline(self) -> Any:
        """The wrapped ``StableDiffusionXLPipeline``."""
        return self._pipeline

    @property
    def version(self) -> ModelVersion:
        """The Animagine XL version of the weights."""
        return self._version

    @property
    def model(self) -> str:
        """The model name recorded in image metadata."""
        return self._model

    @property
    def dtype(self) -> torch.dtype:
        """The pipeline's dtype (its UNet's)."""
        dtype: torch.dtype = self._pipeline.dtype
        return dtype

    @property
    def device(self) -> torch.device:
        """The pipeline's device."""
        device: torch.device = self._pipeline.device
        return device

    def to(self, device: torch.device | str) -> Generator:
        """Move the pipeline to ``device``; returns this generator."""
        target = _resolve_device(device)
        if target is None:
            raise GenerationTypeError("device must be a str or torch.device, got None")
        self._pipeline.to(target)
        return self

    def __repr__(self) -> str:
        return f"<Generator {self._version.title} model={self._model!r}>"

    # -- generating ---------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str | Prompt,
        *,
        negative_prompt: str | None = None,
        width: int | None = None,
        height: int | None = None,
        aspect: str | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
        seed: int | None = None,
        num_images: int = 1,
        add_quality_tags: bool = True,
        clip_skip: int | None = None,
        hires: HiresParameters | float | None = None,
        callback_on_step_end: Callable[..., Any] | None = None,
        progress: bool = True,
    ) -> GenerationResult:
        """Generate images. Every option defaults to the model card's recommendation.

        Args:
            prompt: Prompt text (parsed for this generator's version, tags put in its training
                order) or a :class:`Prompt` of this version (a Prompt of another version is an
                error: convert it first with ``prompt.convert(gen.version)``).
            negative_prompt: Default: the version's (:attr:`ModelVersion.negative_prompt`);
                ``""`` for none. A1111 weighting syntax works.
            width: Image width, a multiple of 8 from 64 to 4096 (default 832).
            height: Image height, likewise (default 1216).
            aspect: A trained bucket instead of ``width``/``height``: ``"portrait"``
                (832x1216), ``"landscape"`` (1216x832), ``"square"`` (1024x1024), a bucket size
                (``"1344x768"``), its exact ratio (``"13:19"``, ``"7:4"``) or a conventional label
                (``"2:3"``, ``"3:2"``, ``"4:3"``, ``"3:4"``, ``"16:9"``, ``"9:16"``, ``"21:9"``,
                ``"9:21"``, ``"1:1"``). An error when ``width``/``height`` say otherwise.
            steps: Sampling steps, 1 to 200 (default 28).
            guidance_scale: CFG, above 0 and at most 30 (default: 5 for 4.0, 7 for 3.x).
            sampler: An A1111 sampler name (:data:`SAMPLERS`), any case (default ``"Euler a"``).
            seed: 0 to 2**64 - 1; image ``i`` uses ``seed + i``. Default: a random 32-bit seed,
                recorded in the result.
            num_images: 1 to 64.
            add_quality_tags: Add the version's recommended quality tags that the prompt lacks,
                where the version puts them.
            clip_skip: Text encoder layers to skip (diffusers' convention; 0 is None).
            hires: A second, img2img pass at a larger size, as the official demo does it: the
                first pass's latents are upscaled and denoised again at ``strength``, with the
                same prompt embeddings, guidance, sampler and seeds. A number is the upscale
                factor with the demo's other settings (``hires=1.5`` is
                ``HiresParameters(scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)")``).
                A :class:`animagine.HiresParameters` gives ``scale`` (1 to 4), ``strength``
                (above 0, at most 1), ``upscaler`` (:data:`HIRES_UPSCALERS`, latent upscalers
                only) and ``steps`` (1 to 200; ``None``: the first pass's). As in diffusers and
                A1111, the second pass runs ``int(steps * strength)`` steps, which must be at
                least 1. The images come out at ``round(side * scale)`` down to a multiple of 8;
                :attr:`GenerationResult.parameters` record the first pass's size and ``hires``
                (A1111's ``Size`` and ``Hires upscale``).
            callback_on_step_end: diffusers' step callback, passed through (to both passes
                with ``hires``; step numbers start again at 0 for the second).
            progress: Show diffusers' progress bar.

        Raises:
            GenerationArgumentError: a value out of range (the message names the argument).
            GenerationTypeError: an argument of the wrong type.
            PromptSyntaxError: prompt or negative prompt text that does not parse.
            ImportError: a sampler whose extra dependency is missing.

        With ``hires``, every check (the upscaled size included) runs before any model work.
        """
        plan = self._plan(
            prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            aspect=aspect,
            steps=steps,
            guidance_scale=guidance_scale,
            sampler=sampler,
            seed=seed,
            num_images=num_images,
            add_quality_tags=add_quality_tags,
            clip_skip=clip_skip,
            hires=hires,
        )
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise GenerationTypeError(
                f"callback_on_step_end must be callable, got {type(callback_on_step_end).__name__}"
            )
        _bool_argument("progress", progress)
        scheduler = _make_scheduler(plan.sampler, self._scheduler_config)
        images, extra = self._run(plan, scheduler, callback_on_step_end, progress)
        parameters = tuple(self._parameters(plan, seed, extra) for seed in plan.seeds)
        return GenerationResult(images=images, seeds=plan.seeds, parameters=parameters)

    def _plan(
        self,
        prompt: object,
        *,
        negative_prompt: object,
        width: object,
        height: object,
        aspect: object,
        steps: object,
        guidance_scale: object,
        sampler: object,
        seed: object,
        num_images: object,
        add_quality_tags: object,
        clip_skip: object,
        hires: object = None,
    ) -> _Plan:
        version = self._version
        defaults = version.defaults
        count = _int_argument("num_images", num_images, 1, MAX_IMAGES)
        steps_ = defaults.steps if steps is None else _int_argument("steps", steps, 1, MAX_STEPS)
        guidance = (
            defaults.guidance_scale
            if guidance_scale is None
            else _guidance_argument(guidance_scale)
        )
        sampler_ = _resolve_sampler(defaults.sampler if sampler is None else sampler)
        width_ = None if width is None else _size_argument("width", width)
        height_ = None if height is None else _size_argument("height", height)
        if aspect is not None:
            bucket = _aspect_size(aspect, version)
            if (width_ is not None and width_ != bucket[0]) or (
                height_ is not None and height_ != bucket[1]
            ):
                raise GenerationArgumentError(
                    f"aspect={aspect!r} means {bucket[0]}x{bucket[1]}, which conflicts with"
                    f" width={width!r}, height={height!r}; pass aspect or width/height"
                )
            width_, height_ = bucket
        width_ = defaults.width if width_ is None else width_
        height_ = defaults.height if height_ is None else height_
        hires_ = _hires_argument(hires, width_, height_, steps_)
        if seed is None:
            first = secrets.randbits(32)
        else:
            first = _int_argument("seed", seed, 0, _MAX_SEED)
            if first + count - 1 > _MAX_SEED:
                raise GenerationArgumentError(
                    f"seed={first} with num_images={count} runs past 2**64 - 1"
                )
        skip = self._clip_skip(clip_skip)
        add_quality = _bool_argument("add_quality_tags", add_quality_tags)
        if negative_prompt is None:
            negative = version.negative_prompt
        elif isinstance(negative_prompt, str):
            negative = negative_prompt
        else:
            raise GenerationTypeError(
                f"negative_prompt must be a str or None, got {type(negative_prompt).__name__}"
            )
        negative_tags = tuple(item.tag for item in parse_tags(negative))
        if isinstance(prompt, Prompt):
            if prompt.version != version:
                raise GenerationArgumentError(
                    f"prompt is a {prompt.version.title} Prompt but this generator runs"
                    f" {version.title}; convert it first: prompt.convert({version.name!r})"
                )
            parsed = prompt
        elif isinstance(prompt, str):
            parsed = Prompt.parse(prompt, version=version)
        else:
            raise GenerationTypeError(
                f"prompt must be a str or animagine.Prompt, got {type(prompt).__name__}"
            )
        if add_quality:
            parsed = parsed.with_quality_tags()
        return _Plan(
            prompt=parsed,
            negative=negative,
            width=width_,
            height=height_,
            steps=steps_,
            guidance_scale=guidance,
            sampler=sampler_,
            seeds=tuple(range(first, first + count)),
            clip_skip=skip,
            negative_tags=negative_tags,
            hires=hires_,
        )

    def _clip_skip(self, clip_skip: object) -> int | None:
        if clip_skip is None:
            return None
        layers = min(
            int(self._pipeline.text_encoder.config.num_hidden_layers),
            int(self._pipeline.text_encoder_2.config.num_hidden_layers),
        )
        value = _int_argument("clip_skip", clip_skip, 0, layers - 1)
        return value or None

    def _run(
        self,
        plan: _Plan,
        scheduler: Any,
        callback: Callable[..., Any] | None,
        progress: bool,
    ) -> tuple[tuple[Image, ...], dict[str, str]]:
        torch = _import("torch")
        numpy = _import("numpy")
        pil = _import("PIL.Image")
        with self._lock:
            embeddings = self._encoder.encode(
                plan.prompt.tags, plan.negative_tags, clip_skip=plan.clip_skip,
                num_images=len(plan.seeds),
            )  # fmt: skip
            extra = self._lora_extra()
            generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in plan.seeds]
            pipeline = self._pipeline
            previous = pipeline.scheduler
            pipeline.scheduler = scheduler
            pipeline.set_progress_bar_config(disable=not progress)
            common = {
                **embeddings.as_kwargs(),
                "guidance_scale": plan.guidance_scale,
                "num_images_per_prompt": 1,
                "generator": generators,
                "callback_on_step_end": callback,
            }
            try:
                with warnings.catch_warnings():
                    # diffusers >= 0.36 deprecates its own upcast_vae, which force_upcast calls.
                    warnings.filterwarnings("ignore", ".*upcast_vae.*deprecated", FutureWarning)
                    output = pipeline(
                        **common,
                        num_inference_steps=plan.steps,
                        width=plan.width,
                        height=plan.height,
                        output_type="np" if plan.hires is None else "latent",
                    )
                    if plan.hires is not None:
                        output = self._hires_pass(plan, plan.hires, output.images, common, progress)
            finally:
                pipeline.scheduler = previous
        array = numpy.asarray(output.images, dtype=numpy.float32)
        bad = [seed for seed, image in zip(plan.seeds, array, strict=True)
               if not numpy.isfinite(image).all()]  # fmt: skip
        if bad:
            warnings.warn(
                f"images with seeds {bad} hold NaN (black): the VAE overflowed in float16; use"
                " dtype='float32', or an fp16-safe VAE (vae=...)",
                RuntimeWarning,
                stacklevel=3,
            )
            array = numpy.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0)
        pixels = (numpy.clip(array, 0.0, 1.0) * 255).round().astype(numpy.uint8)
        return tuple(pil.fromarray(image) for image in pixels), extra

    def _hires_pass(
        self,
        plan: _Plan,
        hires: _HiresPlan,
        latents: torch.Tensor,
        common: Mapping[str, Any],
        progress: bool,
    ) -> Any:
        """The demo's hires fix: upscale the latents, then img2img them at ``strength``."""
        functional = _import("torch.nn.functional")
        factor = int(getattr(self._pipeline, "vae_scale_factor", 8))
        size = (hires.height // factor, hires.width // factor)
        if hires.upscaler.antialias:
            upscaled = functional.interpolate(
                latents, size=size, mode=hires.upscaler.mode, antialias=True
            )
        else:
            upscaled = functional.interpolate(latents, size=size, mode=hires.upscaler.mode)
        img2img = self._img2img_pipeline()
        # A scheduler of its own: the first pass's may hold state (multistep solvers).
        img2img.scheduler = _make_scheduler(plan.sampler, self._scheduler_config)
        img2img.set_progress_bar_config(disable=not progress)
        return img2img(
            **common,
            image=upscaled,
            strength=hires.parameters.strength,
            num_inference_steps=hires.steps,
            output_type="np",
        )

    def _img2img_pipeline(self) -> Any:
        """A ``StableDiffusionXLImg2ImgPipeline`` on the pipeline's own modules (no copies)."""
        pipeline = self._pipeline
        components = tuple(getattr(pipeline, name, None) for name in _IMG2IMG_COMPONENTS)
        if self._img2img is not None and all(
            new is old for new, old in zip(components, self._img2img[0], strict=True)
        ):
            return self._img2img[1]
        diffusers = _import("diffusers")
        config = getattr(pipeline, "config", None) or {}
        img2img = diffusers.StableDiffusionXLImg2ImgPipeline(
            **dict(zip(_IMG2IMG_COMPONENTS, components, strict=True)),
            scheduler=pipeline.scheduler,
            force_zeros_for_empty_prompt=bool(config.get("force_zeros_for_empty_prompt", True)),
            add_watermarker=False,
        )
        self._img2img = (components, img2img)
        return img2img

    def _parameters(self, plan: _Plan, seed: int, extra: Mapping[str, str]) -> GenerationParameters:
        return GenerationParameters(
            prompt=str(plan.prompt),
            negative_prompt=plan.negative,
            steps=plan.steps,
            sampler=plan.sampler.name,
            guidance_scale=plan.guidance_scale,
            seed=seed,
            width=plan.width,
            height=plan.height,
            model=self._model,
            version=self._version.name,
            clip_skip=plan.clip_skip,
            hires=None if plan.hires is None else plan.hires.parameters,
            structured_prompt=plan.prompt.to_json(),
            extra=extra,
        )

    # -- LoRA ---------------------------------------------------------------------------------

    @property
    def loras(self) -> dict[str, float]:
        """The LoRAs loaded with :meth:`load_lora` and their weights, in loading order (a copy)."""
        with self._lock:
            return {name: lora.weight for name, lora in self._loras.items()}

    def load_lora(
        self,
        lora: str | os.PathLike[str],
        *,
        weight: float = 1.0,
        adapter_name: str | None = None,
        **options: Any,
    ) -> str:
        """Load a LoRA into the UNet and text encoders (diffusers' ``load_lora_weights``).

        Several LoRAs can be loaded; each is a named diffusers adapter, active at its weight.
        Images made afterwards record them in their infotext: ``Lora hashes`` (A1111's
        ``name: hash``, for local files) and ``Lora weights`` (``name: weight``). The prompt
        embedding cache is emptied.

        Args:
            lora: A ``.safetensors`` file, a folder holding one LoRA weights file (or give
                ``weight_name=``), or a hub id.
            weight: The LoRA's scale (A1111's ``<lora:name:weight>``), a finite number; 0
                turns it off.
            adapter_name: The adapter's name (letters, digits, ``_`` and ``-``). Default: the
                file's name (or the folder's, or the repository's), made unique.
            **options: Passed to ``load_lora_weights`` (``weight_name=``, ``subfolder=``,
                ``revision=``, ``local_files_only=``...). Also ``allow_pickle=True`` to accept
                pickle weights (``.bin``, ``.ckpt``...; unsafe: pickle runs code).

        Returns:
            The adapter name, for :meth:`set_lora_weights` and :meth:`unload_loras`.

        Raises:
            ModelLoadError: no such file or folder, pickle weights without ``allow_pickle``, or
                weights diffusers cannot load into this model (nothing stays loaded).
            GenerationArgumentError: a name already in use, or a bad weight.
            ImportError: peft is not installed.
        """
        if not isinstance(lora, (str, os.PathLike)):
            raise GenerationTypeError(f"lora must be a str or path, got {type(lora).__name__}")
        scale = _number_argument("weight", weight)
        if adapter_name is not None:
            if not isinstance(adapter_name, str):
                raise GenerationTypeError(
                    f"adapter_name must be a str, got {type(adapter_name).__name__}"
                )
            if not _ADAPTER_NAME.fullmatch(adapter_name):
                raise GenerationArgumentError(
                    f"adapter_name must be letters, digits, '_' and '-', got {adapter_name!r}"
                )
        options = dict(options)
        allow_pickle = _check_pickle_option(options)
        _import("peft")  # diffusers loads LoRAs through peft
        text = os.fspath(lora)
        path = Path(text).expanduser()
        weight_name = options.pop("weight_name", None)
        if weight_name is not None and not isinstance(weight_name, str):
            raise GenerationTypeError(
                f"weight_name must be a str, got {type(weight_name).__name__}"
            )
        local: Path | None = None
        if path.is_file():
            if weight_name is not None:
                raise GenerationArgumentError(
                    f"weight_name={weight_name!r} is for folders and hub ids; {text!r} is a file"
                )
            _check_weight_suffix(path.name, allow_pickle, "LoRA file")
            source, weight_name, local = str(path.parent), path.name, path
            # diffusers' own file name says nothing: name the LoRA after its folder then.
            generic = path.stem == "pytorch_lora_weights"
            default_name = Path(os.path.abspath(path)).parent.name if generic else path.stem
        elif path.is_dir():
            folder = path / str(options.get("subfolder") or "")
            if weight_name is None:
                weight_name = _lora_file_in(folder, allow_pickle)
            else:
                _check_weight_suffix(weight_name, allow_pickle, "weight_name")
            local = folder / weight_name
            if not local.is_file():
                raise ModelLoadError(f"no such LoRA file: {os.fspath(local)!r}")
            source = str(path)
            default_name = path.name
        elif (
            path.suffix.lower() in _LORA_SUFFIXES
            or text.startswith((".", "/", "~"))
            or text.count("/") > 1
            or os.sep in text.replace("/", "")
        ):
            raise ModelLoadError(f"no such LoRA file or folder: {text!r}")
        else:
            if weight_name is not None:
                _check_weight_suffix(weight_name, allow_pickle, "weight_name")
            source = text
            default_name = text.rsplit("/", 1)[-1]
        if weight_name is not None:
            options["weight_name"] = weight_name
            options["use_safetensors"] = weight_name.lower().endswith(".safetensors")
        elif not allow_pickle:
            options["use_safetensors"] = True
        file_hash = None if local is None else _lora_hash(local)
        with self._lock:
            if adapter_name is None:
                base = re.sub(r"[^\w\-]", "_", default_name) or "lora"
                name, number = base, 2
                while name in self._loras:
                    name, number = f"{base}_{number}", number + 1
            elif adapter_name in self._loras:
                raise GenerationArgumentError(
                    f"adapter_name={adapter_name!r} is already loaded; unload it first or choose"
                    " another name"
                )
            else:
                name = adapter_name
            self._load_adapter(source, name, text, options)
            self._loras[name] = _Lora(name, scale, file_hash)
            self._apply_lora_weights()
        return name

    def _load_adapter(self, source: str, name: str, label: str, options: dict[str, Any]) -> None:
        pipeline = self._pipeline
        safetensors = _import("safetensors")
        self._encoder.clear_cache()
        try:
            with warnings.catch_warnings():
                # peft's note on a second adapter in one model: several LoRAs are the point.
                warnings.filterwarnings(
                    "ignore", "Already found a `peft_config` attribute", UserWarning
                )
                pipeline.load_lora_weights(source, adapter_name=name, **options)
        except (OSError, ValueError, KeyError, RuntimeError, safetensors.SafetensorError) as error:
            self._drop_adapter(name)
            raise ModelLoadError(f"cannot load LoRA {label!r}: {error}") from error
        if not any(name in names for names in pipeline.get_list_adapters().values()):
            raise ModelLoadError(
                f"LoRA {label!r} matches no layer of this model; is it an SDXL LoRA?"
            )

    def _drop_adapter(self, name: str) -> None:
        """Remove what a failed load left behind, if anything."""
        try:
            present = any(name in names for names in self._pipeline.get_list_adapters().values())
            if present:
                self._pipeline.delete_adapters(name)
        except (ValueError, KeyError, RuntimeError):  # pragma: no cover - best effort
            pass
        self._apply_lora_weights()

    def _apply_lora_weights(self) -> None:
        """Activate the loaded adapters at their weights; empty the prompt cache."""
        if self._loras:
            self._pipeline.set_adapters(
                list(self._loras), adapter_weights=[lora.weight for lora in self._loras.values()]
            )
        self._encoder.clear_cache()

    def set_lora_weights(self, weights: Mapping[str, float]) -> None:
        """Change the weights of loaded LoRAs (``{adapter name: weight}``); others keep theirs.

        Raises:
            GenerationArgumentError: a name that is not loaded, or a bad weight (nothing changes).
        """
        if not isinstance(weights, Mapping):
            raise GenerationTypeError(
                f"weights must be a mapping of adapter name to weight, got {type(weights).__name__}"
            )
        checked = {name: _number_argument(f"weights[{name!r}]", w) for name, w in weights.items()}
        with self._lock:
            self._check_loaded(checked)
            for name, weight in checked.items():
                self._loras[name] = attrs.evolve(self._loras[name], weight=weight)
            self._apply_lora_weights()

    def unload_loras(self, *names: str) -> None:
        """Unload the named LoRAs, or all of them (no names); the model's weights are restored.

        Raises:
            GenerationArgumentError: a name that is not loaded (nothing is unloaded).
        """
        with self._lock:
            self._check_loaded(names)
            if not names or set(names) >= set(self._loras):
                self._pipeline.unload_lora_weights()
                self._loras.clear()
            else:
                self._pipeline.delete_adapters(list(names))
                for name in names:
                    del self._loras[name]
            self._apply_lora_weights()

    def _check_loaded(self, names: Iterable[object]) -> None:
        unknown = [name for name in names if name not in self._loras]
        if unknown:
            loaded = ", ".join(map(repr, self._loras)) or "none"
            raise GenerationArgumentError(
                f"LoRA(s) {', '.join(map(repr, unknown))} not loaded; loaded: {loaded}"
            )

    def _lora_extra(self) -> dict[str, str]:
        """The infotext keys recording the active LoRAs (A1111's ``Lora hashes``)."""
        if not self._loras:
            return {}
        extra = {}
        hashes = [f"{lora.name}: {lora.hash}" for lora in self._loras.values() if lora.hash]
        if hashes:
            extra["Lora hashes"] = ", ".join(hashes)
        extra["Lora weights"] = ", ".join(
            f"{lora.name}: {_format_weight(lora.weight)}" for lora in self._loras.values()
        )
        return extra


def _choose_vae(
    options: dict[str, Any], torch_dtype: torch.dtype | None, version: ModelVersion
) -> bool:
    """Put the VAE to load into ``options`` (the caller's, or the version's fp16-fix one).

    Returns whether the bundled VAE must decode in float32. Runs before ``local_files_only``
    gets its default, so the fp16-fix VAE may come from the hub (or its cache).
    """
    vae_given = "vae" in options
    vae = options.pop("vae", None)
    vae_id, upcast = _vae_plan(torch_dtype, version, vae_given, vae)
    if vae is not None:
        options["vae"] = vae
    elif vae_id is not None:
        options["vae"] = _load_fix_vae(vae_id, torch_dtype, options)
    return upcast


def _load_fix_vae(hub_id: str, dtype: torch.dtype | None, options: Mapping[str, Any]) -> Any:
    """The fp16-fix VAE, with the loading options that make sense for one model."""
    diffusers = _import("diffusers")
    passed = {
        key: options[key]
        for key in ("cache_dir", "local_files_only", "token", "proxies")
        if key in options
    }
    if dtype is not None:
        passed[_dtype_keyword()] = dtype
    return diffusers.AutoencoderKL.from_pretrained(hub_id, use_safetensors=True, **passed)


def _bundled_config() -> Path | None:
    """The diffusers-format SDXL config in ``animagine/_data/sdxl``, if this build ships one."""
    folder = Path(__file__).parent.parent / "_data" / "sdxl"
    return folder if (folder / "model_index.json").is_file() else None
