"""A1111's HTTP API (``/sdapi/v1``) on the server's one queue, for the clients that speak it.

Routes: ``POST /txt2img``, ``GET /samplers``, ``/schedulers``, ``/sd-models``, ``/options`` (and
``POST /options``, which changes nothing), ``/prompt-styles``, ``/progress``, ``/scripts``,
``POST /png-info``, ``/interrupt`` and ``/skip``.

A ``txt2img`` request is translated into :class:`~animagine.generation.GenerationOptions`, one
per ``n_iter`` run, and goes through the server's one :class:`~animagine.apps.serve.Worker`
like every other generation. The translation is faithful to what A1111 does with the same
request, or it refuses:

- each field is checked alone by the library's own checks, so a bad value is a ``422`` whose
  ``loc`` names the A1111 field (``["body", "cfg_scale"]``); the request as a whole is then
  checked for what only fields together decide (the hires size, the hires steps, the seed range);
- a field this server cannot honour and that would change the image (``restore_faces``,
  ``tiling``, ``subseed_strength``, ``hr_resize_x``...) is refused with ``422`` when it asks for
  something; one that changes nothing in the image (``do_not_save_grid``, ``sampler_index`` next
  to ``sampler_name``, unknown extra fields...) is accepted and named in the
  ``X-Animagine-Ignored`` response header;
- the prompt is used as sent: no quality tags are added and an empty negative prompt stays
  empty (A1111 adds nothing either); ``styles`` name the version's style and quality presets.

The page ``docs/guide/api.md`` has the table of every field. No request names a file: the
checkpoint a client names is compared with the loaded model's name, never opened.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import urllib.parse
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from animagine._version import __version__
from animagine.apps.serve._app import decode_image
from animagine.apps.serve._jobs import QueueFullError
from animagine.core import PresetTable, presets_for
from animagine.errors import AnimagineError, MetadataError
from animagine.extras import require
from animagine.generation import SAMPLERS, GenerationOptions, resolve_sampler
from animagine.limits import MAX_IMAGES, MAX_SEED
from animagine.metadata import GenerationParameters, read_parameters, split_infotext

if TYPE_CHECKING:
    from animagine.apps.serve._app import Service
    from animagine.apps.serve._jobs import Job, Worker
    from animagine.generation import Generator

__all__ = [
    "IGNORED_HEADER",
    "MAX_PNG_INFO_PIXELS",
    "PREFIX",
    "PNGInfoRequest",
    "PNGInfoResponse",
    "Txt2ImgRequest",
    "Txt2ImgResponse",
    "a1111_router",
]

#: Where A1111's API lives.
PREFIX: Final = "/sdapi/v1"
#: The response header that names the request fields the server accepted without using them.
IGNORED_HEADER: Final = "X-Animagine-Ignored"
#: The most pixels an image sent to ``/png-info`` may declare (as the library's image readers).
MAX_PNG_INFO_PIXELS: Final = 8192 * 8192
#: A1111's denoising strength of the hires pass when the request leaves it out.
A1111_HIRES_STRENGTH: Final = 0.75
#: A1111's hires upscale factor when the request leaves it out.
A1111_HIRES_SCALE: Final = 2.0
#: A1111's default latent upscaler (``latent_upscale_default_mode``).
A1111_HIRES_UPSCALER: Final = "Latent"
#: The most names the ignored-fields header lists.
_MAX_IGNORED_NAMES: Final = 32
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

#: A1111's other names for the samplers (``k_euler_a``...), accepted in ``sampler_name``.
_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "Euler a": ("k_euler_a", "k_euler_ancestral"),
    "Euler": ("k_euler",),
    "Heun": ("k_heun",),
    "LMS": ("k_lms",),
    "DPM2": ("k_dpm_2",),
    "DPM2 Karras": ("k_dpm_2_ka",),
    "DPM2 a": ("k_dpm_2_a",),
    "DPM2 a Karras": ("k_dpm_2_a_ka",),
    "DPM++ 2M": ("k_dpmpp_2m",),
    "DPM++ 2M Karras": ("k_dpmpp_2m_ka",),
    "DPM++ 2M SDE": ("k_dpmpp_2m_sde",),
    "DPM++ 2M SDE Karras": ("k_dpmpp_2m_sde_ka",),
    "DPM++ SDE": ("k_dpmpp_sde",),
    "DPM++ SDE Karras": ("k_dpmpp_sde_ka",),
    "DDIM": ("ddim",),
    "UniPC": ("unipc",),
}
_BY_ALIAS: Final = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
#: Samplers that add noise at each step: A1111's ``eta`` and ``s_noise`` apply (1 here).
_NOISY: Final = frozenset(
    {
        "Euler a",
        "DPM2 a",
        "DPM2 a Karras",
        "DPM++ SDE",
        "DPM++ SDE Karras",
        "DPM++ 2M SDE",
        "DPM++ 2M SDE Karras",
    }
)
#: Samplers that A1111's ``s_churn`` applies to (0 here).
_CHURNING: Final = frozenset({"Euler", "Heun", "DPM2", "DPM2 Karras"})
#: A1111's neutral words for "as the first pass" in the hires fields.
_SAME: Final = frozenset({"", "use same sampler", "use same scheduler", "use same checkpoint"})
#: Fields this server never reads and that change nothing in the image (named in the header).
_UNUSED: Final = (
    "do_not_save_samples",
    "do_not_save_grid",
    "override_settings_restore_afterwards",
    "disable_extra_networks",
    "comments",
    "force_task_id",
)
#: ``override_settings`` keys the server reads.
_CLIP_KEY: Final = "CLIP_stop_at_last_layers"
_CHECKPOINT_KEY: Final = "sd_model_checkpoint"
#: Our option names in the library's messages, and the A1111 field each one comes from.
_RENAMES: Final = (
    ("guidance_scale", "cfg_scale"),
    ("num_images", "batch_size"),
    ("hires.scale", "hr_scale"),
    ("hires.strength", "denoising_strength"),
    ("hires.upscaler", "hr_upscaler"),
    ("hires.steps", "hr_second_pass_steps"),
)


# --- request and response bodies ----------------------------------------------------------------


class Txt2ImgRequest(BaseModel):
    """A1111's ``txt2img`` request. Fields left out take the model version's recommendation
    (size, steps, CFG scale, sampler), not A1111's SD 1.5 defaults; unknown fields are accepted
    and named in the ``X-Animagine-Ignored`` header."""

    model_config = ConfigDict(extra="allow")

    prompt: str | None = Field(default=None, description="The prompt, used as sent.")
    negative_prompt: str | None = Field(
        default=None, description="The negative prompt, used as sent (empty: none)."
    )
    styles: list[str] | None = Field(
        default=None,
        description="Names of the version's presets (GET /prompt-styles): one style, one quality.",
    )
    seed: int | None = Field(default=-1, description="The first image's seed; -1 for random.")
    subseed: int | None = Field(default=-1, description="Reported only: variations are refused.")
    subseed_strength: float | None = Field(default=0, description="Above 0 is refused.")
    seed_resize_from_h: int | None = Field(default=-1, description="Above 0 is refused.")
    seed_resize_from_w: int | None = Field(default=-1, description="Above 0 is refused.")
    sampler_name: str | None = Field(
        default=None, description="An A1111 sampler name or alias (GET /samplers)."
    )
    scheduler: str | None = Field(
        default=None,
        description="Automatic (the sampler's own schedule, as A1111 1.9+), Uniform or Karras.",
    )
    batch_size: int | None = Field(default=1, description="Images per run.")
    n_iter: int | None = Field(
        default=1, description="Runs; run k starts at seed + k * batch_size."
    )
    steps: int | None = Field(default=None, description="Sampling steps (default: the version's).")
    cfg_scale: float | None = Field(default=None, description="CFG (default: the version's).")
    width: int | None = Field(default=None, description="A multiple of 8 (default: the version's).")
    height: int | None = Field(
        default=None, description="A multiple of 8 (default: the version's)."
    )
    restore_faces: bool | None = Field(default=None, description="True is refused.")
    tiling: bool | None = Field(default=None, description="True is refused.")
    do_not_save_samples: bool | None = Field(default=False, description="Ignored.")
    do_not_save_grid: bool | None = Field(default=False, description="Ignored.")
    eta: float | None = Field(default=None, description="Only the value the sampler runs with.")
    denoising_strength: float | None = Field(
        default=None, description="The hires pass's strength (default 0.75)."
    )
    s_min_uncond: float | None = Field(default=None, description="Above 0 is refused.")
    s_churn: float | None = Field(default=None, description="Above 0 is refused where it applies.")
    s_tmax: float | None = Field(default=None, description="Without s_churn, no effect.")
    s_tmin: float | None = Field(default=None, description="Without s_churn, no effect.")
    s_noise: float | None = Field(default=None, description="Only 1 where it applies.")
    override_settings: dict[str, Any] | None = Field(
        default=None,
        description="CLIP_stop_at_last_layers and sd_model_checkpoint are read; other keys are"
        " ignored.",
    )
    override_settings_restore_afterwards: bool | None = Field(default=True, description="Ignored.")
    refiner_checkpoint: str | None = Field(default=None, description="A refiner is refused.")
    refiner_switch_at: float | None = Field(default=None, description="Without a refiner, none.")
    disable_extra_networks: bool | None = Field(default=False, description="Ignored.")
    firstpass_image: str | None = Field(default=None, description="An image is refused.")
    comments: dict[str, Any] | None = Field(default=None, description="Ignored.")
    enable_hr: bool | None = Field(default=False, description="The hires fix.")
    firstphase_width: int | None = Field(default=0, description="0 only (ignored).")
    firstphase_height: int | None = Field(default=0, description="0 only (ignored).")
    hr_scale: float | None = Field(default=None, description="Upscale factor (default 2).")
    hr_upscaler: str | None = Field(default=None, description="A latent upscaler (default Latent).")
    hr_second_pass_steps: int | None = Field(
        default=0, description="Hires steps; 0: the first pass's."
    )
    hr_resize_x: int | None = Field(default=0, description="Non-zero is refused.")
    hr_resize_y: int | None = Field(default=0, description="Non-zero is refused.")
    hr_checkpoint_name: str | None = Field(default=None, description="Only the loaded model.")
    hr_sampler_name: str | None = Field(default=None, description="Only the first pass's.")
    hr_scheduler: str | None = Field(default=None, description="Only the first pass's.")
    hr_prompt: str | None = Field(default="", description="Only empty or the prompt.")
    hr_negative_prompt: str | None = Field(
        default="", description="Only empty or the negative prompt."
    )
    force_task_id: str | None = Field(default=None, description="Ignored.")
    sampler_index: str | None = Field(
        default=None, description="Used when sampler_name is not given, else ignored."
    )
    script_name: str | None = Field(default=None, description="A script is refused.")
    script_args: list[Any] | None = Field(default=None, description="Ignored without a script.")
    send_images: bool | None = Field(default=True, description="Return the images.")
    save_images: bool | None = Field(
        default=False, description="Keep the images in the server's history."
    )
    alwayson_scripts: dict[str, Any] | None = Field(
        default=None, description="Scripts are refused."
    )
    infotext: str | None = Field(default=None, description="Refused: send the fields instead.")


class Txt2ImgResponse(BaseModel):
    """The images (base64 PNGs with their infotext), the request, and ``info`` (JSON text)."""

    images: list[str]
    parameters: dict[str, Any]
    info: str


class SamplerItem(BaseModel):
    """A sampler; ``options.scheduler`` is ``karras`` for the Karras ones."""

    name: str
    aliases: list[str]
    options: dict[str, str]


class SchedulerItem(BaseModel):
    """A sigma schedule (A1111 1.9 and later send it apart from the sampler)."""

    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float = -1
    need_inner_model: bool = False


class SDModelItem(BaseModel):
    """The loaded model, as A1111 lists checkpoints."""

    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str
    config: str | None = None


class PromptStyleItem(BaseModel):
    """A preset in A1111's style form: ``{prompt}`` stands for the user's text."""

    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class ProgressState(BaseModel):
    """What the worker is doing (A1111's ``state``)."""

    skipped: bool
    interrupted: bool
    job: str
    job_count: int
    job_timestamp: str
    job_no: int
    sampling_step: int
    sampling_steps: int


class ProgressResponse(BaseModel):
    """The running job's progress, from 0 to 1, and its estimated seconds left."""

    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None = None
    textinfo: str | None = None


class ScriptsResponse(BaseModel):
    """The scripts this server runs: none."""

    txt2img: list[str]
    img2img: list[str]


class PNGInfoRequest(BaseModel):
    """An image as base64 (a ``data:`` URL works too)."""

    image: str


class PNGInfoResponse(BaseModel):
    """The image's infotext, its other text chunks, and the infotext's values by key."""

    info: str
    items: dict[str, Any]
    parameters: dict[str, Any]


# --- errors -------------------------------------------------------------------------------------


def _error(loc: Sequence[str], message: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": message, "type": "value_error"}


def _invalid(errors: list[dict[str, Any]]) -> RequestValidationError:
    """FastAPI's own 422 (``{"detail": [{"loc", "msg", "type"}, ...]}``)."""
    return RequestValidationError(errors)


def _renamed(message: str) -> str:
    """The library's message with our option's name replaced by the A1111 field's."""
    for ours, theirs in _RENAMES:
        if ours in message:
            return message.replace(ours, theirs, 1)
    return message


class _Checks:
    """Errors found so far, each attributed to an A1111 field."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def add(self, loc: str | Sequence[str], message: str) -> None:
        self.errors.append(_error((loc,) if isinstance(loc, str) else loc, message))

    def option(self, loc: str | Sequence[str], **values: Any) -> bool:
        """Check option values alone, as :class:`GenerationOptions` does; False when bad."""
        values.setdefault("prompt", "x")
        try:
            GenerationOptions(**values)
        except AnimagineError as error:
            self.add(loc, _renamed(str(error)))
            return False
        return True

    def plan(self, generator: Generator, loc: str | Sequence[str], **values: Any) -> bool:
        """Check option values with the generator (what depends on the model)."""
        values.setdefault("prompt", "x")
        try:
            generator.check(GenerationOptions(**values))
        except AnimagineError as error:
            self.add(loc, _renamed(str(error)))
            return False
        return True

    def raise_any(self) -> None:
        if self.errors:
            raise _invalid(self.errors)


# --- the translation of a txt2img request -------------------------------------------------------


class _Translation:
    """A checked ``txt2img`` request: its runs and what the response reports."""

    def __init__(self) -> None:
        self.runs: list[GenerationOptions] = []
        self.ignored: list[str] = []
        self.clip_stop = 1
        self.batch_size = 1


def _is_set(value: object) -> bool:
    """Whether an optional A1111 value asks for something (not None, empty, 0 or False)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip()) and value.strip().lower() != "none"
    if isinstance(value, (int, float)):
        return value > 0
    if isinstance(value, (list, dict)):
        return bool(value)
    return True


def _sampler(checks: _Checks, field: str, name: str) -> str | None:
    """Our sampler name for an A1111 sampler name or alias; None (and an error) when unknown."""
    wanted = _BY_ALIAS.get(name.strip().lower(), name)
    try:
        return resolve_sampler(wanted).name
    except AnimagineError as error:
        checks.add(field, f"{field}: {error}")
        return None


def _schedule(checks: _Checks, field: str, scheduler: str | None, sampler: str) -> str | None:
    """The sampler that ``sampler`` with A1111's separate ``scheduler`` is, or None (an error).

    ``automatic`` (and nothing) is the sampler's own schedule in A1111 1.9 and later (Karras
    for ``DPM++ 2M``...; see :data:`_AUTOMATIC`); ``uniform`` is its plain schedule; ``karras``
    its Karras variant.
    """
    key = (scheduler or "").strip().lower()
    karras = sampler.endswith(" Karras")
    if key in ("", "automatic"):
        default = None if karras else _AUTOMATIC.get(sampler)
        if default is None:
            return sampler
        if f"{sampler} {default}" in SAMPLERS:
            return resolve_sampler(f"{sampler} {default}").name
        checks.add(
            field,
            f"A1111 runs {sampler!r} with the {default} schedule when the scheduler is"
            " automatic, which this server does not have: pass scheduler 'Uniform' or 'Karras'",
        )
        return None
    if key == "uniform":
        if karras:
            checks.add(field, f"scheduler {scheduler!r} contradicts sampler {sampler!r}")
            return None
        return sampler
    if key == "karras":
        if karras:
            return sampler
        combined = f"{sampler} Karras"
        if combined in SAMPLERS:
            return resolve_sampler(combined).name
        with_karras = ", ".join(repr(name[: -len(" Karras")]) for name in _karras_samplers())
        checks.add(
            field,
            f"scheduler {scheduler!r} with sampler {sampler!r}: there is no {combined!r};"
            f" the samplers with a Karras schedule are {with_karras}",
        )
        return None
    checks.add(
        field,
        f"scheduler {scheduler!r} is not available; this server has 'Automatic' (the sampler's"
        " own schedule, as in A1111), 'Uniform' and 'Karras'",
    )
    return None


# A1111 1.9 and later: the schedule a sampler runs with when the scheduler is "Automatic" (or
# not sent), from its sampler table; the samplers not named here run the uniform schedule.
_AUTOMATIC: Final = {
    "DPM++ 2M": "Karras",
    "DPM++ SDE": "Karras",
    "DPM++ 2M SDE": "Exponential",
    "DPM2": "Karras",
    "DPM2 a": "Karras",
}


def _karras_samplers() -> list[str]:
    return [name for name in SAMPLERS if name.endswith(" Karras")]


def _clip_skip(checks: _Checks, value: object) -> tuple[int, int | None]:
    """A1111's ``CLIP_stop_at_last_layers`` as (that number, our ``clip_skip``).

    A1111 takes the text encoder's N-th hidden state from the end (1 is the last layer). SDXL
    models use the penultimate one (N = 2) whatever N is in A1111 (unless its
    ``sdxl_clip_l_skip`` setting is on), in ComfyUI and in diffusers; our ``clip_skip`` counts
    the layers skipped beyond it. So 1 and 2 are the default, and N >= 3 is ``clip_skip = N - 2``.
    """
    loc = ("override_settings", _CLIP_KEY)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        checks.add(loc, f"{_CLIP_KEY} must be an integer of 1 or more, got {value!r}")
        return 1, None
    return value, (value - 2 if value > 2 else None)


def _names(service: Service) -> tuple[str, ...]:
    """The names a client may give the loaded model (A1111's title, model name, file name)."""
    title = _model_title(service)
    return (title, _model_name(title))


def _model_title(service: Service) -> str:
    """The loaded model as clients see it: a hub id as given, a local file or folder by its
    name (never the server's path), or the version's title when the model has no name."""
    model = service.model
    if not model:
        return service.version.title
    path = Path(model).expanduser()
    try:
        local = path.exists()
    except (OSError, ValueError):
        local = False
    return path.name or model if local else model


def _model_name(title: str) -> str:
    """A1111's ``model_name``: the file's name without its suffix (a hub id's last part)."""
    name = title.rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and suffix.lower() in ("safetensors", "ckpt", "pt", "bin") else name


def _checkpoint_matches(service: Service, value: str) -> bool:
    """Whether ``value`` names the loaded model: as A1111 lists it, with or without its hash."""
    text = re.sub(r"\s*\[[0-9a-fA-F]{8,64}\]$", "", value.strip())
    return text in _names(service) or value.strip() in _names(service)


def _styles(
    checks: _Checks, table: PresetTable, names: Sequence[str]
) -> tuple[str | None, str | None]:
    """The style and quality presets that A1111 ``styles`` name: at most one of each."""
    style: str | None = None
    quality: str | None = None
    for name in names:
        kind, preset = _preset_kind(table, name)
        if kind is None or preset is None:
            known = ", ".join(repr(p.name) for p in _listed_presets(table))
            checks.add("styles", f"unknown style {name!r}; the styles are {known}")
        elif kind == "style":
            if style is not None:
                checks.add("styles", f"styles name two style presets: {style!r} and {preset!r}")
            style = preset
        else:
            if quality is not None:
                checks.add("styles", f"styles name two quality presets: {quality!r} and {preset!r}")
            quality = preset
    return style, quality


def _preset_kind(table: PresetTable, name: object) -> tuple[str | None, str | None]:
    """``("style", name)`` or ``("quality", name)`` for a preset name; a style wins a tie."""
    if not isinstance(name, str) or not name.strip():
        return None, None
    try:
        return "style", table.style_preset(name).name
    except AnimagineError:
        pass
    try:
        return "quality", table.quality_preset(name).name
    except AnimagineError:
        return None, None


def _listed_presets(table: PresetTable) -> list[Any]:
    styles = list(table.style)
    names = {preset.name for preset in styles}
    return styles + [preset for preset in table.quality if preset.name not in names]


def _preset_table(service: Service) -> PresetTable:
    try:
        return presets_for(service.version, file=service.config.presets)
    except AnimagineError as error:
        raise HTTPException(status_code=500, detail=f"the server's presets: {error}") from None


def _refusals(
    checks: _Checks,
    body: Txt2ImgRequest,
    sampler: str | None,
    size: tuple[int | None, int | None],
) -> None:
    """The fields that would change the image in a way this server cannot: 422 when set."""
    simple = (
        ("restore_faces", "face restoration is not available on this server"),
        ("tiling", "tiling is not available on this server"),
        ("subseed_strength", "variation seeds (subseed_strength above 0) are not available"),
        ("s_min_uncond", "s_min_uncond (skipping the negative prompt) is not available"),
        ("refiner_checkpoint", "a refiner is not available on this server"),
        ("firstpass_image", "a given first-pass image is not available on this server"),
        ("script_name", "scripts are not available on this server"),
        ("alwayson_scripts", "scripts (alwayson_scripts) are not available on this server"),
        ("infotext", "infotext in a request is not read here: send the fields themselves"),
    )
    for field, message in simple:
        if _is_set(getattr(body, field)):
            checks.add(field, message)
    for field, side in (("seed_resize_from_w", size[0]), ("seed_resize_from_h", size[1])):
        value = getattr(body, field)
        if value is not None and value > 0 and value != side:
            checks.add(field, f"{field}: resizing the seed's noise is not available")
    for field in ("firstphase_width", "firstphase_height"):
        value = getattr(body, field)
        if value:
            checks.add(
                field,
                f"{field} (A1111's old hires form) is not available: send width, height and"
                " hr_scale",
            )
    if sampler is None:
        return
    _sampler_settings(checks, body, sampler)


def _sampler_settings(checks: _Checks, body: Txt2ImgRequest, sampler: str) -> None:
    """``eta``, ``s_noise`` and ``s_churn`` where the sampler uses them: only our values."""
    eta = body.eta
    if eta is not None:
        expected = 1.0 if sampler in _NOISY else (0.0 if sampler == "DDIM" else None)
        if expected is not None and eta != expected:
            checks.add(
                "eta",
                f"eta must be {expected:g} (or left out) with {sampler!r}: the sampler runs with"
                f" eta {expected:g} here, got {eta:g}",
            )
    if body.s_noise is not None and sampler in _NOISY and body.s_noise != 1:
        checks.add("s_noise", f"s_noise must be 1 (or left out) with {sampler!r}")
    if body.s_churn is not None and sampler in _CHURNING and body.s_churn != 0:
        checks.add("s_churn", f"s_churn must be 0 (or left out) with {sampler!r}")


def _hires_refusals(checks: _Checks, body: Txt2ImgRequest, service: Service) -> None:
    """The hires fields that would make the second pass differ from the first: refused."""
    for field in ("hr_resize_x", "hr_resize_y"):
        if getattr(body, field):
            checks.add(field, f"{field}: a target size is not available; send hr_scale instead")
    checkpoint = body.hr_checkpoint_name
    if (
        checkpoint is not None
        and checkpoint.strip().lower() not in _SAME
        and not _checkpoint_matches(service, checkpoint)
    ):
        checks.add("hr_checkpoint_name", "the hires pass runs on the loaded model only")
    prompt, negative = body.prompt or "", body.negative_prompt or ""
    if body.hr_prompt and body.hr_prompt != prompt:
        checks.add("hr_prompt", "the hires pass uses the prompt: leave hr_prompt empty")
    if body.hr_negative_prompt and body.hr_negative_prompt != negative:
        checks.add(
            "hr_negative_prompt",
            "the hires pass uses the negative prompt: leave hr_negative_prompt empty",
        )


def _hires_sampler(
    checks: _Checks, body: Txt2ImgRequest, sampler: str, scheduler: str | None
) -> None:
    """``hr_sampler_name``/``hr_scheduler``: only the first pass's sampler and schedule."""
    name = body.hr_sampler_name
    schedule = body.hr_scheduler
    name_set = name is not None and name.strip().lower() not in _SAME
    schedule_set = schedule is not None and schedule.strip().lower() not in _SAME
    if not name_set and not schedule_set:
        return
    field = "hr_sampler_name" if name_set else "hr_scheduler"
    base = name if name_set else (body.sampler_name or body.sampler_index)
    local = _Checks()
    resolved = _sampler(local, field, base) if base else sampler
    if resolved is not None:
        resolved = _schedule(local, field, schedule if schedule_set else scheduler, resolved)
    if local.errors or resolved != sampler:
        checks.add(
            field,
            f"the hires pass runs with the first pass's sampler ({sampler!r}) here; leave"
            f" {field} out",
        )


def _translate(service: Service, worker: Worker, body: Txt2ImgRequest) -> _Translation:
    """The request as checked runs, or a 422 naming each bad field."""
    generator = worker.generator
    result = _Translation()
    checks = _Checks()
    fields = body.model_fields_set

    # Fields that change nothing: named in the header.
    result.ignored.extend(name for name in _UNUSED if name in fields)
    for name in ("firstphase_width", "firstphase_height"):
        if name in fields and not getattr(body, name):
            result.ignored.append(name)
    if "script_args" in fields and not _is_set(body.script_name):
        result.ignored.append("script_args")
    if body.sampler_name and "sampler_index" in fields:
        result.ignored.append("sampler_index")
    result.ignored.extend(str(name) for name in (body.model_extra or {}))

    # Each field alone.
    prompt = body.prompt or ""
    negative = body.negative_prompt or ""
    checks.option("prompt", prompt=prompt)
    checks.option("negative_prompt", negative_prompt=negative)
    values: dict[str, Any] = {}
    for field, option in (
        ("width", "width"),
        ("height", "height"),
        ("steps", "steps"),
        ("cfg_scale", "guidance_scale"),
    ):
        value = getattr(body, field)
        if value is not None and checks.option(field, **{option: value}):
            values[option] = value
    batch_size = 1 if body.batch_size is None else body.batch_size
    n_iter = 1 if body.n_iter is None else body.n_iter
    checks.option("batch_size", num_images=batch_size)
    if not 1 <= n_iter <= MAX_IMAGES:
        checks.add("n_iter", f"n_iter must be between 1 and {MAX_IMAGES}, got {n_iter}")
    elif 1 <= batch_size <= MAX_IMAGES and batch_size * n_iter > MAX_IMAGES:
        checks.add(
            "n_iter",
            f"batch_size * n_iter is {batch_size * n_iter} images; one request makes at most"
            f" {MAX_IMAGES}",
        )
    seed = -1 if body.seed is None else body.seed
    if seed != -1:
        checks.option("seed", seed=seed)

    sampler_field = "sampler_name" if body.sampler_name else "sampler_index"
    given = body.sampler_name or body.sampler_index
    sampler = (
        _sampler(checks, sampler_field, given)
        if given
        else resolve_sampler(generator.version.defaults.sampler).name
    )
    if sampler is not None:
        sampler = _schedule(checks, "scheduler", body.scheduler, sampler)
    if sampler is not None:
        values["sampler"] = sampler

    overrides = body.override_settings or {}
    clip_skip = None
    for key, value in overrides.items():
        if key == _CLIP_KEY:
            result.clip_stop, clip_skip = _clip_skip(checks, value)
        elif key == _CHECKPOINT_KEY:
            if not isinstance(value, str) or not _checkpoint_matches(service, value):
                checks.add(
                    ("override_settings", key),
                    f"{key} {value!r} is not the loaded model; this server has"
                    f" {_model_title(service)!r} only",
                )
        else:
            result.ignored.append(f"override_settings.{key}")

    hires: dict[str, Any] | None = None
    if body.enable_hr:
        scale = A1111_HIRES_SCALE if body.hr_scale is None else body.hr_scale
        strength = (
            A1111_HIRES_STRENGTH if body.denoising_strength is None else body.denoising_strength
        )
        upscaler = body.hr_upscaler or A1111_HIRES_UPSCALER
        steps = body.hr_second_pass_steps or None
        hires = {"scale": scale, "strength": strength, "upscaler": upscaler, "steps": steps}
        good = checks.option("hr_scale", hires={"scale": scale})
        good &= checks.option("denoising_strength", hires={"scale": 1, "strength": strength})
        good &= checks.option("hr_upscaler", hires={"scale": 1, "upscaler": upscaler})
        if steps is not None:
            good &= checks.option("hr_second_pass_steps", hires={"scale": 1, "steps": steps})
        if not good:
            hires = None
        _hires_refusals(checks, body, service)
        if sampler is not None:
            _hires_sampler(checks, body, sampler, body.scheduler)

    style = quality = None
    if body.styles:
        style, quality = _styles(checks, _preset_table(service), body.styles)

    _refusals(checks, body, sampler, (values.get("width"), values.get("height")))
    checks.raise_any()

    # What only several fields (or the model) decide.
    presets: dict[str, Any] = {"style": style, "quality": quality}
    if style is not None or quality is not None:
        presets["presets"] = service.config.presets
    quality_tags = quality is not None  # a quality preset's own text; never the library's tags
    checks.plan(
        generator,
        "prompt",
        prompt=prompt,
        negative_prompt="",
        add_quality_tags=quality_tags,
        **presets,
    )
    checks.plan(generator, "negative_prompt", negative_prompt=negative, add_quality_tags=False)
    if clip_skip is not None:
        try:
            generator.check(GenerationOptions(prompt="x", clip_skip=clip_skip))
        except AnimagineError as error:
            checks.add(
                ("override_settings", _CLIP_KEY),
                f"{_CLIP_KEY}={result.clip_stop} skips more layers than this model has"
                f" (as clip_skip={clip_skip}: {error})",
            )
    hires_parameters = None
    if hires is not None:
        hires_parameters = GenerationOptions.from_mapping({"prompt": "x", "hires": hires}).hires
        first = {key: values[key] for key in ("width", "height", "steps") if key in values}
        second = hires["steps"] or values.get("steps") or generator.version.defaults.steps
        field = "denoising_strength" if int(second * hires["strength"]) < 1 else "hr_scale"
        checks.plan(generator, field, hires=hires_parameters, **first)
    count = batch_size * n_iter
    if seed != -1 and seed + count - 1 > MAX_SEED:
        checks.add("seed", f"seed={seed} with {count} images runs past 2**64 - 1")
    checks.raise_any()

    if seed == -1:  # the library draws it; the runs follow on from it as A1111's all_seeds do
        seed = generator.check(GenerationOptions(prompt="x")).seeds[0]
    result.batch_size = batch_size
    for run in range(n_iter):
        result.runs.append(
            GenerationOptions(
                prompt=prompt,
                negative_prompt=negative,
                seed=seed + run * batch_size,
                num_images=batch_size,
                add_quality_tags=quality_tags,
                clip_skip=clip_skip,
                hires=hires_parameters,
                **values,
                **presets,
            )
        )
    return result


def _header(names: Iterable[str]) -> str:
    """The ignored names as one header value: safe characters only, and not too many."""
    shown: list[str] = []
    for name in dict.fromkeys(names):
        if len(shown) == _MAX_IGNORED_NAMES:
            shown.append("...")
            break
        safe = name if _SAFE_NAME.fullmatch(name) else urllib.parse.quote(name[:64], safe="")
        shown.append(safe)
    return ", ".join(shown)


def _info(job: Job, body: Txt2ImgRequest, translation: _Translation, service: Service) -> str:
    """A1111's ``info``: a JSON text about the images, from their recorded parameters."""
    made: list[GenerationParameters] = list(job.parameters)
    seeds = [p.seed for p in made] or list(job.seeds)
    first = made[0] if made else None
    subseed = body.subseed if body.subseed is not None and body.subseed >= 0 else seeds[0]
    infotexts = [p.to_infotext() for p in made]
    extra: dict[str, Any] = {}
    if infotexts:
        extra = {
            key: value
            for key, value in split_infotext(infotexts[0]).values.items()
            if key not in _MAIN_KEYS
        }
    started = job.started if job.started is not None else job.created
    info = {
        "prompt": first.prompt if first else body.prompt or "",
        "all_prompts": [p.prompt for p in made],
        "negative_prompt": first.negative_prompt if first else body.negative_prompt or "",
        "all_negative_prompts": [p.negative_prompt for p in made],
        "seed": seeds[0],
        "all_seeds": seeds,
        "subseed": subseed,
        "all_subseeds": [subseed + index for index in range(len(seeds))],
        "subseed_strength": 0,
        "width": first.width if first else None,
        "height": first.height if first else None,
        "sampler_name": first.sampler if first else None,
        "cfg_scale": first.guidance_scale if first else None,
        "steps": first.steps if first else None,
        "batch_size": translation.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": (first.model if first else "") or _model_name(_model_title(service)),
        "sd_model_hash": first.model_hash if first else None,
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": first.hires.strength if first and first.hires else None,
        "extra_generation_params": extra,
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": list(body.styles or []),
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
        "clip_skip": translation.clip_stop,
        "is_using_inpainting_conditioning": False,
        "version": f"animagine {__version__}",
    }
    return json.dumps(info, ensure_ascii=False)


_MAIN_KEYS: Final = frozenset(
    {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Clip skip"}
)


# --- png-info ------------------------------------------------------------------------------------


def _decode_image(text: str) -> bytes:
    """The bytes of a base64 image or ``data:`` URL; a 422 naming ``image`` otherwise."""
    try:
        return decode_image(text)
    except MetadataError as error:
        raise _invalid([_error(("image",), str(error))]) from None


def png_info(data: bytes) -> PNGInfoResponse:
    """What A1111's ``/png-info`` gives for an image's bytes.

    ``info`` is the image's ``parameters`` text (A1111's infotext), or the infotext of the
    parameters the library reads from its other metadata (our JSON chunk, the official demo's
    JSON, Exif), or ``""``. ``items`` are its other text chunks; ``parameters`` the infotext's
    values by key, with ``Prompt`` and ``Negative prompt`` (a size such as ``Size: 64x64`` as
    ``Size-1`` and ``Size-2``, as A1111 gives them).

    Raises:
        RequestValidationError: not an image, or one larger than :data:`MAX_PNG_INFO_PIXELS`.
    """
    pil = require("PIL.Image", what="png-info")
    bad = (OSError, SyntaxError, ValueError, EOFError, pil.DecompressionBombError)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pil.DecompressionBombWarning)
        try:
            image = pil.open(io.BytesIO(data))
        except (*bad, pil.DecompressionBombWarning):
            raise _invalid([_error(("image",), "image is not an image file")]) from None
        with image:
            width, height = image.size
            if width * height > MAX_PNG_INFO_PIXELS:
                raise _invalid(
                    [
                        _error(
                            ("image",),
                            f"image is {width}x{height}: more than {MAX_PNG_INFO_PIXELS:,} pixels",
                        )
                    ]
                )
            chunks = {
                key: value
                for key, value in image.info.items()
                if isinstance(key, str) and isinstance(value, str)
            }
            info = chunks.pop("parameters", "")
            if not info:
                try:
                    info = read_parameters(image).to_infotext()
                except (MetadataError, *bad):
                    info = ""
    return PNGInfoResponse(info=info, items=chunks, parameters=_a1111_parameters(info))


def _a1111_parameters(text: str) -> dict[str, Any]:
    """A1111's ``parse_generation_parameters`` without its defaults: the infotext by key."""
    if not text.strip():
        return {}
    parts = split_infotext(text.strip(), strict=False)
    # A1111 strips the first line of the negative prompt (the library keeps all but the one
    # space after the colon, so that its own infotext reads back exactly).
    first, newline, rest = parts.negative_prompt.partition("\n")
    result: dict[str, Any] = {
        "Prompt": parts.prompt,
        "Negative prompt": first.strip() + newline + rest,
    }
    for key, value in parts.values.items():
        size = re.fullmatch(r"(\d+)x(\d+)", value.strip())
        if size is not None:
            result[f"{key}-1"] = size.group(1)
            result[f"{key}-2"] = size.group(2)
        else:
            result[key] = value
    return result


# --- the routes ------------------------------------------------------------------------------


def _progress(worker: Worker | None) -> ProgressResponse:
    job = None if worker is None else worker.current
    waiting = 0 if worker is None else worker.waiting
    textinfo = f"{waiting} waiting" if waiting else None
    if job is None:
        state = ProgressState(
            skipped=False,
            interrupted=False,
            job="",
            job_count=0,
            job_timestamp="0",
            job_no=0,
            sampling_step=0,
            sampling_steps=0,
        )
        return ProgressResponse(progress=0.0, eta_relative=0.0, state=state, textinfo=textinfo)
    started = job.started if job.started is not None else job.created
    state = ProgressState(
        skipped=False,
        interrupted=job.interrupt_requested,
        job="txt2img",
        job_count=len(job.plans),
        job_timestamp=time.strftime("%Y%m%d%H%M%S", time.localtime(started)),
        job_no=job.run,
        sampling_step=job.steps_done,
        sampling_steps=job.steps_total,
    )
    return ProgressResponse(
        progress=job.progress, eta_relative=job.eta() or 0.0, state=state, textinfo=textinfo
    )


def _finished(job: Job) -> None:
    """Raise for a job that made nothing to return: 500 when it failed, 503 when cancelled."""
    if job.state == "failed":
        raise HTTPException(status_code=500, detail=job.error or "the generation failed")
    if job.state == "cancelled":
        raise HTTPException(status_code=503, detail="the job was cancelled (server shutdown)")


_GENERATION_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    422: {"description": "A field the server refuses, or a bad value (loc names the field)"},
    500: {"description": "The generation failed"},
    503: {"description": "No model loaded, or the queue is full (Retry-After)"},
}


def _submit(service: Service, worker: Worker, body: Txt2ImgRequest) -> tuple[Job, _Translation]:
    translation = _translate(service, worker, body)
    try:
        job = worker.submit(translation.runs, record=bool(body.save_images))
    except QueueFullError:
        raise
    except AnimagineError as error:
        raise _invalid([_error((), str(error))]) from None
    return job, translation


def a1111_router(service: Service) -> APIRouter:
    """The ``/sdapi/v1`` routes, on ``service``'s worker."""
    router = APIRouter(prefix=PREFIX, tags=["A1111"])

    @router.post("/txt2img", response_model=Txt2ImgResponse, responses=_GENERATION_ERRORS)
    async def txt2img(body: Txt2ImgRequest, response: Response) -> Txt2ImgResponse:
        """Generate images as A1111 does: one job on the server's queue, waited for.

        The checks run in the thread pool (a long prompt takes a while to read); the wait for
        the job holds no thread, so any number of queued requests leave the pool to the others.
        """
        worker = service.require_worker()
        job, translation = await run_in_threadpool(_submit, service, worker, body)
        await job.finished_async()
        _finished(job)
        if translation.ignored:
            response.headers[IGNORED_HEADER] = _header(translation.ignored)
        send = body.send_images is None or body.send_images
        images = [base64.b64encode(data).decode("ascii") for data in job.images] if send else []
        return Txt2ImgResponse(
            images=images,
            parameters=body.model_dump(),
            info=_info(job, body, translation, service),
        )

    @router.get("/samplers", response_model=list[SamplerItem])
    def samplers() -> list[SamplerItem]:
        """The samplers this server has (those whose extra package is installed)."""
        items = []
        for name in SAMPLERS:
            try:
                sampler = resolve_sampler(name)
            except AnimagineError:
                continue
            options = {"scheduler": "karras"} if sampler.karras else {}
            items.append(
                SamplerItem(name=name, aliases=list(_ALIASES.get(name, ())), options=options)
            )
        return items

    @router.get("/schedulers", response_model=list[SchedulerItem])
    def schedulers() -> list[SchedulerItem]:
        """The sigma schedules ``scheduler`` takes."""
        return [
            SchedulerItem(name="automatic", label="Automatic"),
            SchedulerItem(name="uniform", label="Uniform", need_inner_model=True),
            SchedulerItem(name="karras", label="Karras", default_rho=7.0),
        ]

    @router.get("/sd-models", response_model=list[SDModelItem])
    def sd_models() -> list[SDModelItem]:
        """The loaded model (none without one): its name only, never a path of the server."""
        if service.generator is None:
            return []
        title = _model_title(service)
        return [SDModelItem(title=title, model_name=_model_name(title), filename=title)]

    @router.get("/options")
    def get_options() -> dict[str, Any]:
        """A few of A1111's settings, as this server has them (they cannot be changed)."""
        return {
            _CHECKPOINT_KEY: None if service.generator is None else _model_title(service),
            "sd_checkpoint_hash": None,
            _CLIP_KEY: 1,
            "sdxl_clip_l_skip": False,
            "samples_format": "png",
            "eta_ancestral": 1.0,
            "eta_ddim": 0.0,
            "s_churn": 0.0,
            "s_tmin": 0.0,
            "s_noise": 1.0,
            "sd_vae": "Automatic",
            "return_grid": False,
            "latent_upscale_default_mode": A1111_HIRES_UPSCALER,
        }

    @router.post("/options", responses={422: {"description": "Another checkpoint"}})
    def set_options(body: dict[str, Any], response: Response) -> None:
        """Changes nothing: ``sd_model_checkpoint`` may name the loaded model (else 422); other
        keys are named in the ``X-Animagine-Ignored`` header."""
        ignored = []
        for key, value in body.items():
            if key == _CHECKPOINT_KEY:
                service.require_worker()
                if not isinstance(value, str) or not _checkpoint_matches(service, value):
                    raise _invalid(
                        [
                            _error(
                                (key,),
                                f"{key} {value!r} is not the loaded model; this server has"
                                f" {_model_title(service)!r} only",
                            )
                        ]
                    )
            else:
                ignored.append(key)
        if ignored:
            response.headers[IGNORED_HEADER] = _header(ignored)

    @router.get("/prompt-styles", response_model=list[PromptStyleItem])
    def prompt_styles() -> list[PromptStyleItem]:
        """The version's style presets, then its quality presets, in A1111's style form."""
        table = _preset_table(service)
        items = []
        for preset in _listed_presets(table):
            negative = preset.negative_prompt
            if negative and "{prompt}" not in negative:
                # The preset's negative comes first, the user's after it.
                negative = (
                    f"{negative}{{prompt}}" if table.concatenate else f"{negative}, {{prompt}}"
                )
            items.append(
                PromptStyleItem(name=preset.name, prompt=preset.prompt, negative_prompt=negative)
            )
        return items

    @router.get("/progress", response_model=ProgressResponse)
    async def progress(skip_current_image: bool = False) -> ProgressResponse:
        """The running job's progress (``current_image`` is always null).

        This route and the two that stop jobs run on the event loop, not in the thread pool
        that waiting ``txt2img`` requests hold: they answer however many requests wait."""
        return _progress(service.worker)

    @router.get("/scripts", response_model=ScriptsResponse)
    def scripts() -> ScriptsResponse:
        """No scripts: ``script_name`` and ``alwayson_scripts`` are refused."""
        return ScriptsResponse(txt2img=[], img2img=[])

    @router.post("/png-info", response_model=PNGInfoResponse)
    def png_info_route(body: PNGInfoRequest) -> PNGInfoResponse:
        """An image's infotext and text chunks (base64, or a ``data:`` URL; never a URL)."""
        return png_info(_decode_image(body.image))

    @router.post("/interrupt")
    async def interrupt() -> dict[str, Any]:
        """Stop the running job at its next step; it returns what it made."""
        if service.worker is not None:
            service.worker.interrupt()
        return {}

    @router.post("/skip")
    async def skip() -> dict[str, Any]:
        """Skip the running job's current run (its images so far are kept) and go on with its
        next one, as A1111 does."""
        if service.worker is not None:
            service.worker.skip()
        return {}

    return router
