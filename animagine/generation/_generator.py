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

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.core import ModelVersion, Prompt, get_version
from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    ModelLoadError,
    UnsupportedPipelineError,
)
from animagine.extras import require
from animagine.generation._checks import bool_argument, number_argument
from animagine.generation._encoding import PromptEncoder
from animagine.generation._hires import upscaler_named
from animagine.generation._loading import (
    DEFAULT_MODEL,
    PICKLE_SUFFIXES,
    _check_pickle_option,
    _choose_vae,
    _dtype_keyword,
    _model_label,
    _resolve_device,
    _resolve_dtype,
    _version_for,
    bundled_config,
    check_folder,
    check_model_reference,
    check_safetensors,
    describe_load_error,
    is_hub_id,
    load_errors,
)
from animagine.generation._lora import (
    ADAPTER_NAME,
    LORA_SUFFIXES,
    Lora,
    check_weight_suffix,
    format_weight,
    lora_file_in,
    lora_hash,
)
from animagine.generation._modes import (
    MemoryMode,
    SpeedMode,
    apply_memory,
    apply_speed,
    check_combination,
    check_lora_allowed,
    check_speed,
    memory_mode,
    offload_device,
    speed_mode,
)
from animagine.generation._options import (
    GenerationOptions,
    GenerationPlan,
    check_names,
    plan_generation,
)
from animagine.generation._result import GenerationResult
from animagine.generation._samplers import make_scheduler, resolve_sampler
from animagine.metadata import GenerationParameters

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

__all__ = ["SDXL_COMPONENTS", "Generator"]

#: The components an SDXL pipeline must have for :class:`Generator` to wrap it.
SDXL_COMPONENTS: Final = (
    "tokenizer",
    "tokenizer_2",
    "text_encoder",
    "text_encoder_2",
    "unet",
    "vae",
)


@contextlib.contextmanager
def _quiet_loading(progress: bool) -> Iterator[None]:
    """diffusers' and transformers' loading bars, off when ``progress`` is False."""
    if progress:
        yield
        return
    utils = require("diffusers.utils.logging")
    transformers_logging = require("transformers.utils.logging")
    utils.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        utils.enable_progress_bar()
        transformers_logging.enable_progress_bar()


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
        self,
        pipeline: Any,
        *,
        version: str | ModelVersion,
        model: str | None = None,
        prompt_cache_size: int = 32,
        memory: str | Sequence[str] = "device",
        compile: bool | str = False,  # diffusers' and torch's word for it
        device: torch.device | str | None = None,
    ) -> None:
        """Wrap an SDXL pipeline.

        Args:
            pipeline: A ``StableDiffusionXLPipeline`` (or any pipeline with its components).
                The memory and speed modes are applied to it in place.
            version: The Animagine XL version of the weights (:func:`animagine.get_version`).
            model: The model name recorded in image metadata; default: the pipeline's
                ``name_or_path`` (a folder or file by its name), or ``""``.
            prompt_cache_size: How many prompts' embeddings to keep (LRU; 0 turns the cache
                off). See :attr:`encoder`.
            memory: Where the weights live, through diffusers' own mechanisms: ``"device"``
                (default: every model on the device), ``"model-offload"`` (weights in CPU
                memory, each model moved to the accelerator while it runs) or
                ``"sequential-offload"`` (each layer moved while it runs: least memory,
                slowest), optionally joined with ``"vae-tiling"`` (large images decoded in
                tiles) and ``"vae-slicing"`` (several images decoded one at a time):
                ``"model-offload+vae-tiling"``. See the guide's "Memory and speed".
            compile: The speed mode: ``True`` (``torch.compile`` mode
                ``"max-autotune-no-cudagraphs"``) or a ``torch.compile`` mode name. Fuses the
                attention QKV projections, puts the UNet and VAE in ``channels_last`` and
                compiles the UNet and ``vae.decode``; the first call at each image size
                compiles (slow), later ones are fast. Not with an offload mode, nor with LoRAs.
            device: Where the models run: the pipeline is moved there, or, with an offload
                mode, it is the accelerator the models run on (default: the pipeline's device,
                or with offloading the machine's accelerator).

        Raises:
            UnsupportedPipelineError: not an SDXL pipeline (no second text encoder, ...).
            UnknownVersionError: an unknown version.
            GenerationArgumentError: an unknown memory or compile mode, modes that cannot be
                combined, or an offload mode without an accelerator (checked before anything
                is changed).
            MissingDependencyError: an offload mode without ``accelerate``.
        """
        missing = [name for name in SDXL_COMPONENTS if getattr(pipeline, name, None) is None]
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
        self._encoder = PromptEncoder(pipeline, cache_size=prompt_cache_size)
        self._lock = threading.Lock()
        self._img2img: tuple[tuple[Any, ...], Any] | None = None
        self._loras: dict[str, Lora] = {}
        self._memory, self._speed = self._apply_modes(pipeline, memory, compile, device)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        version: str | ModelVersion | None = None,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        progress: bool = True,
        memory: str | Sequence[str] = "device",
        compile: bool | str = False,  # diffusers' and torch's word for it
        **loading_options: Any,
    ) -> Generator:
        """Load a diffusers-format model: a hub id or a local folder.

        Args:
            model: Hub id (``"cagliostrolab/animagine-xl-3.1"``) or diffusers folder.
            version: The Animagine XL version; default: told from ``model``'s name (hub ids and
                folders named like them), else :class:`UnknownVersionError` asks for it.
            dtype: ``torch.float16``/``"float16"``, ``"bfloat16"`` or ``"float32"``
                (default: diffusers' default, float32).
            device: Where to move the pipeline (default: stay on the CPU); with an offload
                mode, the accelerator the models run on (default: the machine's).
            progress: Show diffusers' loading progress bars.
            memory: The memory mode (see :class:`Generator`), checked before loading.
            compile: The speed mode (see :class:`Generator`), checked before loading.
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
        modes = cls._check_modes(memory, compile, target)
        options = dict(loading_options)
        allow_pickle = _check_pickle_option(options)
        local = Path(model).expanduser()
        if local.is_file():
            raise ModelLoadError(
                f"{model!r} is a file: load single-file checkpoints with Generator.from_single_file"
            )
        check_model_reference(model, single_file=False)
        if local.is_dir():
            check_folder(local, allow_pickle=allow_pickle)
            model = str(local)
        diffusers = require("diffusers")
        failures = load_errors()
        try:
            upcast = _choose_vae(options, torch_dtype, resolved)
            if torch_dtype is not None:
                options[_dtype_keyword()] = torch_dtype
            if not allow_pickle:
                options["use_safetensors"] = True
            options["add_watermarker"] = False
            with _quiet_loading(progress):
                pipeline = diffusers.StableDiffusionXLPipeline.from_pretrained(model, **options)
        except failures as error:
            raise describe_load_error(repr(model), error) from error
        return cls._finish(pipeline, resolved, _model_label(model), target, upcast, modes=modes)

    @classmethod
    def from_single_file(
        cls,
        path: str | os.PathLike[str],
        *,
        version: str | ModelVersion | None = None,
        config: str | os.PathLike[str] | None = None,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        progress: bool = True,
        memory: str | Sequence[str] = "device",
        compile: bool | str = False,  # diffusers' and torch's word for it
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
            progress: As in :meth:`from_pretrained`.
            memory: As in :meth:`from_pretrained`.
            compile: As in :meth:`from_pretrained`.
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
        modes = cls._check_modes(memory, compile, target)
        options = dict(options)
        allow_pickle = _check_pickle_option(options)
        suffix = file.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            if not allow_pickle:
                raise ModelLoadError(
                    f"{text!r} is a pickle checkpoint, which can run code when loaded; convert it"
                    " to .safetensors, or pass allow_pickle=True if you trust it"
                )
        elif suffix != ".safetensors":
            raise ModelLoadError(f"{text!r} is not a .safetensors checkpoint")
        if not file.is_file():
            raise ModelLoadError(f"no such checkpoint file: {text!r}")
        if suffix == ".safetensors":
            check_safetensors(file)
        if config is None:
            bundled = bundled_config()
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
        diffusers = require("diffusers")
        failures = load_errors()
        try:
            upcast = _choose_vae(options, torch_dtype, resolved)
            options.setdefault("local_files_only", True)
            if torch_dtype is not None:
                options[_dtype_keyword()] = torch_dtype
            options["add_watermarker"] = False
            with _quiet_loading(progress):
                pipeline = diffusers.StableDiffusionXLPipeline.from_single_file(
                    str(file), config=str(config_path), **options
                )
        except failures as error:
            raise describe_load_error(repr(text), error) from error
        return cls._finish(pipeline, resolved, file.stem, target, upcast, modes=modes)

    @classmethod
    def _finish(
        cls,
        pipeline: Any,
        version: ModelVersion,
        model: str,
        device: torch.device | None,
        upcast_vae: bool,
        *,
        modes: tuple[MemoryMode, SpeedMode],
    ) -> Generator:
        if upcast_vae:
            # diffusers decodes in float32 when the VAE config says so (SDXL's VAE overflows
            # float16 and gives NaN, that is black images).
            pipeline.vae.register_to_config(force_upcast=True)
        memory, speed = modes
        generator = cls(
            pipeline,
            version=version,
            model=model,
            memory=memory.name,
            compile=speed.compile_mode or False,
            device=device,
        )
        default = resolve_sampler(version.defaults.sampler)
        pipeline.scheduler = make_scheduler(default, generator._scheduler_config)
        return generator

    # -- memory and speed modes ---------------------------------------------------------------

    @staticmethod
    def check_modes(
        *,
        memory: str | Sequence[str] = "device",
        compile: bool | str = False,  # diffusers' and torch's word for it
        device: torch.device | str | None = None,
    ) -> tuple[str, str | None]:
        """Check memory and speed modes without loading anything, as the loaders do first.

        Args:
            memory: As in :class:`Generator`.
            compile: As in :class:`Generator`.
            device: The device the generator would be given (None: the loaders' default; an
                offload mode then needs an accelerator on this machine).

        Returns:
            The canonical memory mode name and the ``torch.compile`` mode (None when off).

        Raises:
            GenerationArgumentError: an unknown mode, modes that cannot be combined, or an
                offload mode with no accelerator to run on.
            GenerationTypeError: a value of the wrong type.
            MissingDependencyError: an offload mode without ``accelerate``.
        """
        checked_memory, checked_speed = Generator._check_modes(
            memory, compile, _resolve_device(device)
        )
        return checked_memory.name, checked_speed.compile_mode

    @staticmethod
    def _check_modes(
        memory: object, compile: object, device: torch.device | None
    ) -> tuple[MemoryMode, SpeedMode]:
        """Check the modes and where they would run, before any model is loaded."""
        checked_memory = memory_mode(memory)
        checked_speed = speed_mode(compile)
        check_combination(checked_memory, checked_speed)
        offload_device(checked_memory, device)
        return checked_memory, checked_speed

    @staticmethod
    def _apply_modes(
        pipeline: Any, memory: object, compile: object, device: object
    ) -> tuple[MemoryMode, SpeedMode]:
        """Check every mode against the pipeline, then place it and apply them."""
        checked_memory = memory_mode(memory)
        checked_speed = speed_mode(compile)
        check_combination(checked_memory, checked_speed)
        target = _resolve_device(device)
        current = getattr(pipeline, "device", None) if checked_memory.offload else None
        accelerator = offload_device(checked_memory, target, current=current)
        check_speed(pipeline, checked_speed)
        if target is not None and not checked_memory.offload:
            pipeline.to(target)
        apply_memory(pipeline, checked_memory, accelerator)
        apply_speed(pipeline, checked_speed)
        return checked_memory, checked_speed

    @property
    def memory(self) -> str:
        """The memory mode, by its canonical name (``"device"``, ``"model-offload+vae-tiling"``)."""
        return self._memory.name

    @property
    def compile_mode(self) -> str | None:
        """The ``torch.compile`` mode of the speed mode, or None when it is off."""
        return self._speed.compile_mode

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
        if self._memory.offload:
            raise GenerationArgumentError(
                f"this generator offloads its models (memory={self._memory.name!r}): diffusers"
                " moves them; build another generator to change the device"
            )
        self._pipeline.to(target)
        return self

    @property
    def encoder(self) -> PromptEncoder:
        """The :class:`animagine.PromptEncoder` of this generator (its cache, its call count)."""
        return self._encoder

    @property
    def prompt_cache_size(self) -> int:
        """How many prompts' embeddings are cached; setting it empties the cache."""
        return self._encoder.cache_size

    @prompt_cache_size.setter
    def prompt_cache_size(self, size: int) -> None:
        with self._lock:
            self._encoder = PromptEncoder(self._pipeline, cache_size=size)

    def __repr__(self) -> str:
        return f"<Generator {self._version.title} model={self._model!r}>"

    # -- generating ---------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str | Prompt | GenerationOptions,
        *,
        callback_on_step_end: Callable[..., Any] | None = None,
        progress: bool = True,
        **options: Any,
    ) -> GenerationResult:
        """Generate images. Every option defaults to the model card's recommendation.

        The options are the fields of :class:`animagine.GenerationOptions` (the one list of
        them, shared with batch input and the command line): pass them as keywords, or pass a
        ``GenerationOptions`` as ``prompt``.

        Args:
            prompt: Prompt text (parsed for this generator's version, tags put in its training
                order) or a :class:`Prompt` of this version (a Prompt of another version is an
                error: convert it first with ``prompt.convert(gen.version)``), or a whole
                :class:`animagine.GenerationOptions`.
            **options: The other fields of :class:`animagine.GenerationOptions`
                (``negative_prompt``, ``width``, ``height``, ``aspect``, ``steps``,
                ``guidance_scale``, ``sampler``, ``seed``, ``num_images``, ``add_quality_tags``,
                ``clip_skip``, ``hires``, ``style``, ``quality``, ``presets``, ``variants``,
                ``wildcards``), documented there.
            callback_on_step_end: diffusers' step callback, passed through (to both passes
                with ``hires``; step numbers start again at 0 for the second; a template that
                draws different prompts runs once per distinct prompt, each run calling it).
            progress: Show diffusers' progress bar.

        Raises:
            GenerationArgumentError: a value out of range (the message names the argument).
            GenerationTypeError: an argument of the wrong type, or an unknown option.
            PromptSyntaxError: prompt or negative prompt text that does not parse.
            MissingDependencyError: a sampler whose extra dependency is missing.

        Every check (the upscaled size included) runs before any model work: see :meth:`check`.
        """
        plan = self.check(prompt, **options)
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise GenerationTypeError(
                f"callback_on_step_end must be callable, got {type(callback_on_step_end).__name__}"
            )
        bool_argument("progress", progress)
        made: dict[int, tuple[Image, GenerationParameters]] = {}
        # A template draws each image's prompt from its seed: one run per distinct prompt.
        for part in plan.by_prompt():
            scheduler = make_scheduler(resolve_sampler(part.sampler), self._scheduler_config)
            images, extra = self._run(part, scheduler, callback_on_step_end, progress)
            for seed, image in zip(part.seeds, images, strict=True):
                made[seed] = (image, self._parameters(part, seed, extra))
        return GenerationResult(
            images=tuple(made[seed][0] for seed in plan.seeds),
            seeds=plan.seeds,
            parameters=tuple(made[seed][1] for seed in plan.seeds),
        )

    def check(self, prompt: str | Prompt | GenerationOptions, **options: Any) -> GenerationPlan:
        """Check a call without generating: the :class:`animagine.GenerationPlan` it would run.

        Takes what :meth:`__call__` takes (the options, not the run switches). Applies the
        version's defaults; draws the seed when none is given (pass the plan's ``seeds[0]`` to
        generate the same images).

        Raises:
            GenerationArgumentError: a value out of range (the message names the option).
            GenerationTypeError: an option of the wrong type, or an unknown option.
            PromptSyntaxError: prompt or negative prompt text that does not parse.
            MissingDependencyError: a sampler whose extra dependency is missing.
        """
        if isinstance(prompt, GenerationOptions):
            if options:
                raise GenerationTypeError(
                    "pass either a GenerationOptions or keyword options, not both; use"
                    " attrs.evolve(options, ...) to change one"
                )
            checked = prompt
        else:
            check_names(tuple(options))
            checked = GenerationOptions(prompt=prompt, **options)
        return plan_generation(checked, self._version, clip_skip_layers=self._clip_skip_layers())

    def _clip_skip_layers(self) -> int:
        return min(
            int(self._pipeline.text_encoder.config.num_hidden_layers),
            int(self._pipeline.text_encoder_2.config.num_hidden_layers),
        )

    def _run(
        self,
        plan: GenerationPlan,
        scheduler: Any,
        callback: Callable[..., Any] | None,
        progress: bool,
    ) -> tuple[tuple[Image, ...], dict[str, str]]:
        torch = require("torch")
        numpy = require("numpy")
        pil = require("PIL.Image")
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
                        output = self._hires_pass(plan, output.images, common, progress)
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
        plan: GenerationPlan,
        latents: torch.Tensor,
        common: Mapping[str, Any],
        progress: bool,
    ) -> Any:
        """The demo's hires fix: upscale the latents, then img2img them at ``strength``."""
        assert plan.hires is not None
        assert plan.hires_size is not None
        functional = require("torch.nn.functional")
        upscaler = upscaler_named(plan.hires.upscaler)
        factor = int(getattr(self._pipeline, "vae_scale_factor", 8))
        size = (plan.hires_size[1] // factor, plan.hires_size[0] // factor)
        if upscaler.antialias:
            upscaled = functional.interpolate(
                latents, size=size, mode=upscaler.mode, antialias=True
            )
        else:
            upscaled = functional.interpolate(latents, size=size, mode=upscaler.mode)
        img2img = self.img2img_pipeline
        # A scheduler of its own: the first pass's may hold state (multistep solvers).
        img2img.scheduler = make_scheduler(resolve_sampler(plan.sampler), self._scheduler_config)
        img2img.set_progress_bar_config(disable=not progress)
        return img2img(
            **common,
            image=upscaled,
            strength=plan.hires.strength,
            num_inference_steps=plan.hires_steps,
            output_type="np",
        )

    @property
    def img2img_pipeline(self) -> Any:
        """The ``StableDiffusionXLImg2ImgPipeline`` the hires fix runs on: this pipeline's own
        modules (no copies).

        Built with diffusers' ``from_pipe``, once, and again only when a component of the
        pipeline was replaced.
        """
        pipeline = self._pipeline
        components = tuple(getattr(pipeline, name, None) for name in SDXL_COMPONENTS)
        if self._img2img is not None and all(
            new is old for new, old in zip(components, self._img2img[0], strict=True)
        ):
            return self._img2img[1]
        diffusers = require("diffusers")
        img2img = diffusers.StableDiffusionXLImg2ImgPipeline.from_pipe(pipeline)
        self._img2img = (components, img2img)
        return img2img

    def _parameters(
        self, plan: GenerationPlan, seed: int, extra: Mapping[str, str]
    ) -> GenerationParameters:
        return GenerationParameters(
            prompt=str(plan.prompt),
            negative_prompt=plan.negative_prompt,
            steps=plan.steps,
            sampler=plan.sampler,
            guidance_scale=plan.guidance_scale,
            seed=seed,
            width=plan.width,
            height=plan.height,
            model=self._model,
            version=self._version.name,
            clip_skip=plan.clip_skip,
            hires=plan.hires,
            structured_prompt=plan.prompt.to_json(),
            extra=extra,
            template=plan.template,
            style=plan.style,
            quality=plan.quality,
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
        check_lora_allowed(self._speed)
        scale = number_argument("weight", weight)
        if adapter_name is not None:
            if not isinstance(adapter_name, str):
                raise GenerationTypeError(
                    f"adapter_name must be a str, got {type(adapter_name).__name__}"
                )
            if not ADAPTER_NAME.fullmatch(adapter_name):
                raise GenerationArgumentError(
                    f"adapter_name must be letters, digits, '_' and '-', got {adapter_name!r}"
                )
        options = dict(options)
        allow_pickle = _check_pickle_option(options)
        require("peft")  # diffusers loads LoRAs through peft
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
            check_weight_suffix(path.name, allow_pickle, "LoRA file")
            source, weight_name, local = str(path.parent), path.name, path
            # diffusers' own file name says nothing: name the LoRA after its folder then.
            generic = path.stem == "pytorch_lora_weights"
            default_name = Path(os.path.abspath(path)).parent.name if generic else path.stem
        elif path.is_dir():
            folder = path / str(options.get("subfolder") or "")
            if weight_name is None:
                weight_name = lora_file_in(folder, allow_pickle)
            else:
                check_weight_suffix(weight_name, allow_pickle, "weight_name")
            local = folder / weight_name
            if not local.is_file():
                raise ModelLoadError(f"no such LoRA file: {os.fspath(local)!r}")
            source = str(path)
            default_name = path.name
        elif path.suffix.lower() in LORA_SUFFIXES or not is_hub_id(text):
            raise ModelLoadError(f"no such LoRA file or folder: {text!r}")
        else:
            if weight_name is not None:
                check_weight_suffix(weight_name, allow_pickle, "weight_name")
            source = text
            default_name = text.rsplit("/", 1)[-1]
        if weight_name is not None:
            options["weight_name"] = weight_name
            options["use_safetensors"] = weight_name.lower().endswith(".safetensors")
        elif not allow_pickle:
            options["use_safetensors"] = True
        file_hash = None if local is None else lora_hash(local)
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
            self._loras[name] = Lora(name, scale, file_hash)
            self._apply_lora_weights()
        return name

    def _load_adapter(self, source: str, name: str, label: str, options: dict[str, Any]) -> None:
        pipeline = self._pipeline
        safetensors = require("safetensors")
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
        checked = {name: number_argument(f"weights[{name!r}]", w) for name, w in weights.items()}
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
            f"{lora.name}: {format_weight(lora.weight)}" for lora in self._loras.values()
        )
        return extra
