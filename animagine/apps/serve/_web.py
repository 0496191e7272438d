"""The web UI: its JSON API under ``/animagine/v1`` and the page at ``/``.

The page (``static/index.html``, ``app.js``, ``app.css``: plain HTML, CSS and JavaScript, no
build step, nothing fetched from elsewhere) calls these routes:

- ``GET /info``: the version, the model, what the form offers and its defaults;
- the prompt tools, which work without a model: ``POST /lint``, ``/fix``, ``/canonical``,
  ``/convert``, ``GET /tags`` (autocomplete) and ``POST /read-image`` (an image's parameters);
- generation, through the server's one queue: ``POST /generate``, ``GET /jobs/{id}`` (queue
  position, progress per image, results), ``POST /jobs/{id}/interrupt`` and the images;
- the history: ``GET /history`` (search by tag, favourites, pages), an image's PNG, its
  favourite mark, ``DELETE``.

Requests are pydantic models that forbid unknown fields; their values are checked by the
library's own checks (:class:`~animagine.generation.GenerationOptions`, :func:`lint`...), whose
messages name the field, and answered ``422``. No request names a file: the wildcards folder and
the presets file are the server's (:class:`~animagine.apps.serve.ServeConfig`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from animagine._version import __version__
from animagine.apps.serve._app import decode_image, static_folder
from animagine.core import (
    VERSIONS,
    Diagnostic,
    ModelVersion,
    Prompt,
    Tag,
    TagDatabase,
    WildcardFolder,
    apply_fixes,
    convert,
    get_version,
    lint,
    presets_for,
)
from animagine.errors import AnimagineError, InvalidArgumentError, MetadataError
from animagine.generation import (
    DEMO_HIRES_STRENGTH,
    DEMO_HIRES_UPSCALER,
    HIRES_UPSCALERS,
    SAMPLERS,
    GenerationOptions,
    option_spec,
    resolve_sampler,
)
from animagine.limits import (
    MAX_GUIDANCE,
    MAX_HIRES_SCALE,
    MAX_IMAGES,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
)
from animagine.metadata import GenerationParameters, read_parameters

if TYPE_CHECKING:
    from fastapi import FastAPI

    from animagine.apps.serve._app import Service
    from animagine.apps.serve._history import History, HistoryEntry
    from animagine.apps.serve._jobs import Job, Worker

__all__ = ["PREFIX", "web_router", "web_static"]

#: Where the web UI's JSON API lives.
PREFIX: Final = "/animagine/v1"
#: The official demos' hires-fix factor (``upscale_by``) and its slider's top.
DEMO_HIRES_SCALE: Final = 1.5
#: The most autocomplete matches one request returns.
MAX_TAG_MATCHES: Final = 100
#: Entries per history page when the client does not say.
HISTORY_PAGE: Final = 24
#: The page's own files may load from this server only: no inline scripts, nothing remote.
_PAGE_POLICY: Final = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


# --- requests ---------------------------------------------------------------------------------


def _blank_is_unset(value: object) -> object:
    """A query parameter given empty (``?before=``) is one not given."""
    return None if value == "" else value


#: Query parameters where ``?name=`` means "not given".
OptionalInt = Annotated[int | None, BeforeValidator(_blank_is_unset)]
OptionalBool = Annotated[bool | None, BeforeValidator(_blank_is_unset)]


class _Request(BaseModel):
    # Strict: JSON's own types only (no `true` read as 1 step); the library checks the values.
    model_config = ConfigDict(extra="forbid", strict=True)


class LintRequest(_Request):
    """A prompt and the version to check it for (default: the server's)."""

    text: str
    version: str | None = None


class FixRequest(_Request):
    """Apply one finding's fix (``index``, as ``/lint`` numbers them) or every fix (``all``)."""

    text: str
    version: str | None = None
    index: int | None = None
    all: bool = False


class ConvertRequest(_Request):
    """Rewrite a prompt written for ``from`` for version ``to``."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    text: str
    source: str | None = Field(default=None, alias="from")
    to: str


class ReadImageRequest(_Request):
    """An image as base64 (a ``data:`` URL works too)."""

    image: str


class HiresRequest(_Request):
    """The hires fix's settings; those left out are the official demo's."""

    scale: float
    strength: float | None = None
    upscaler: str | None = None
    steps: int | None = None


class GenerateRequest(_Request):
    """The options of :class:`animagine.GenerationOptions` by their Python names, but the files
    (``presets``, ``wildcards``), which are the server's. Unset options take the version's
    defaults; the library checks every value. ``seed`` may be a string of digits: JavaScript
    numbers cannot hold every seed."""

    prompt: str
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    aspect: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    sampler: str | None = None
    seed: int | str | None = None
    num_images: int | None = None
    add_quality_tags: bool | None = None
    clip_skip: int | None = None
    hires: float | HiresRequest | None = None
    style: str | None = None
    quality: str | None = None
    variants: str | None = None


class FavouriteRequest(_Request):
    """Mark an image as a favourite, or not."""

    favourite: bool = True


# --- helpers ----------------------------------------------------------------------------------


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=what)


def _version(service: Service, name: str | None) -> ModelVersion:
    return service.version if name is None else get_version(name)


def _url(request: Request, path: str) -> str:
    """``path`` under the app's root path (``uvicorn --root-path`` behind a proxy)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}{PREFIX}{path}"


def finding_json(index: int, diagnostic: Diagnostic, text: str) -> dict[str, Any]:
    """One lint finding as JSON; ``start``/``end`` count code points (Python's offsets)."""
    line, column = diagnostic.position(text)
    return {
        "index": index,
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "start": diagnostic.start,
        "end": diagnostic.end,
        "line": line,
        "column": column,
        "excerpt": text[diagnostic.start : diagnostic.end],
        "fix": [
            {"start": edit.start, "end": edit.end, "replacement": edit.replacement}
            for edit in diagnostic.fix
        ],
    }


def _findings(text: str, version: ModelVersion) -> list[dict[str, Any]]:
    return [finding_json(i, d, text) for i, d in enumerate(lint(text, version=version))]


def form_values(parameters: GenerationParameters) -> dict[str, Any]:
    """The ``/generate`` request that makes the image again (:meth:`to_call_kwargs`, in JSON).

    The recorded prompts already hold the presets' texts and the quality tags: no preset, no
    quality tags. The seed is a string (JavaScript numbers lose seeds past 2**53).
    """
    kwargs = parameters.to_call_kwargs()
    hires = kwargs.pop("hires", None)
    values: dict[str, Any] = {**kwargs, "seed": str(parameters.seed)}
    values["hires"] = None if hires is None else hires.to_json()
    values["style"] = None
    values["quality"] = None
    return values


def parameters_json(parameters: GenerationParameters) -> dict[str, Any]:
    """An image's parameters for the page: ours (``parameters``), the same as indented text
    (``parameters_text``, exact where JavaScript would round a large seed), A1111's infotext,
    and the form values that make it again."""
    data = parameters.to_json()
    return {
        "parameters": data,
        "parameters_text": json.dumps(data, indent=2, ensure_ascii=False),
        "infotext": parameters.to_infotext(),
        "form": form_values(parameters),
    }


def read_image_bytes(data: bytes) -> GenerationParameters:
    """The parameters in an image's bytes, read as :func:`animagine.read_parameters` reads a
    file (chunk by chunk, within its limits, without decoding the pixels).

    Raises:
        MetadataError: no image, not an image, or no parameters in it.
    """
    if not data:
        raise MetadataError("no image: the request body is empty")
    return read_parameters(data)


def _options(service: Service, body: GenerateRequest) -> GenerationOptions:
    values: dict[str, Any] = body.model_dump(exclude_none=True)
    if isinstance(body.seed, str):
        values["seed"] = option_spec("seed").parse(body.seed)
    if isinstance(body.hires, HiresRequest):
        values["hires"] = body.hires.model_dump(exclude_none=True)
    if service.config.presets is not None:
        values["presets"] = service.config.presets
    if service.config.wildcards is not None:
        values["wildcards"] = service.config.wildcards
    return GenerationOptions.from_mapping(values)


def job_json(request: Request, worker: Worker, job: Job) -> dict[str, Any]:
    """A job as the page polls it: state, queue position, progress, the images so far."""
    eta = job.eta()
    images = []
    for number, (parameters, _) in enumerate(zip(job.parameters, job.images, strict=False)):
        entry: dict[str, Any] = {
            "index": number,
            "url": _url(request, f"/jobs/{job.id}/images/{number}.png"),
            "seed": str(parameters.seed),
            "history_id": job.history_ids[number] if number < len(job.history_ids) else None,
            **parameters_json(parameters),
        }
        images.append(entry)
    return {
        "id": job.id,
        "state": job.state,
        "position": worker.position(job),
        "count": job.count,
        "seeds": [str(seed) for seed in job.seeds],
        "progress": {
            "steps_done": min(job.steps_done, job.steps_total),
            "steps_total": job.steps_total,
            "fraction": job.progress,
            "eta": None if eta is None else round(eta, 2),
            "images": job.image_progress(),
        },
        "images": images,
        "error": job.error,
    }


def _entry_json(request: Request, entry: HistoryEntry) -> dict[str, Any]:
    parameters = entry.parameters
    return {
        "id": entry.id,
        "created": entry.created,
        "favourite": entry.favourite,
        "url": _url(request, f"/history/{entry.id}.png"),
        "seed": str(parameters.seed),
        **parameters_json(parameters),
    }


def _presets(service: Service) -> dict[str, Any]:
    """The style and quality preset names of the server's version, its presets file included."""
    error = None
    try:
        table = presets_for(service.version, file=service.config.presets)
    except AnimagineError as failure:
        error = str(failure)
        table = presets_for(service.version)
    return {
        "style": [preset.name for preset in table.style],
        "quality": [preset.name for preset in table.quality],
        "default_style": table.default_style,
        "default_quality": table.default_quality,
        "error": error,
    }


def _wildcards(service: Service) -> dict[str, Any] | None:
    if service.config.wildcards is None:
        return None
    try:
        return {"names": list(WildcardFolder(service.config.wildcards).names), "error": None}
    except AnimagineError as error:
        return {"names": [], "error": str(error)}


def _available_samplers() -> list[str]:
    names = []
    for name in SAMPLERS:
        try:
            resolve_sampler(name)
        except AnimagineError:  # its extra dependency is not installed
            continue
        names.append(name)
    return names


def info_json(service: Service) -> dict[str, Any]:
    """What ``GET /info`` answers."""
    version = service.version
    defaults = version.defaults
    worker = service.worker
    can_generate = worker is not None
    return {
        "animagine": __version__,
        "version": {"name": version.name, "title": version.title},
        "versions": [{"name": v.name, "title": v.title} for v in VERSIONS],
        "model": service.model,
        "can_generate": can_generate,
        "message": None
        if can_generate
        else "Generation needs a model: start the server with 'animagine serve --model ...'."
        " The prompt tools work without one.",
        "defaults": {
            "steps": defaults.steps,
            "guidance_scale": defaults.guidance_scale,
            "width": defaults.width,
            "height": defaults.height,
            "sampler": defaults.sampler,
            "negative_prompt": version.negative_prompt,
            "guidance_range": list(defaults.guidance_range),
            "max_steps_recommended": defaults.max_steps_recommended,
            "add_quality_tags": True,
            "num_images": 1,
        },
        "limits": {
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
            "size_step": 8,
            "max_steps": MAX_STEPS,
            "max_guidance": MAX_GUIDANCE,
            "max_seed": str(MAX_SEED),
            "max_images": MAX_IMAGES,
            "max_hires_scale": MAX_HIRES_SCALE,
        },
        "samplers": _available_samplers(),
        "aspects": [
            {"label": f"{width} x {height}", "width": width, "height": height}
            for width, height in version.resolutions
        ],
        "hires": {
            "upscalers": list(HIRES_UPSCALERS),
            "upscaler": DEMO_HIRES_UPSCALER,
            "scale": DEMO_HIRES_SCALE,
            "strength": DEMO_HIRES_STRENGTH,
        },
        "presets": _presets(service),
        "wildcards": _wildcards(service),
        "queue": {
            "size": service.config.queue_size,
            "waiting": 0 if worker is None else worker.waiting,
            "running": worker is not None and worker.current is not None,
        },
        "history": service.history is not None,
    }


def _history(service: Service) -> History:
    if service.history is None:
        raise _not_found("this server keeps no history (--no-history)")
    return service.history


def _job(service: Service, job_id: str) -> tuple[Worker, Job]:
    worker = service.require_worker()
    job = worker.job(job_id)
    if job is None:
        raise _not_found(f"no job {job_id!r} (finished jobs are kept for a while only)")
    return worker, job


def _png(data: bytes, name: str) -> Response:
    return Response(
        content=data,
        media_type="image/png",
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


# --- routes -----------------------------------------------------------------------------------


def web_router(service: Service) -> APIRouter:
    """The ``/animagine/v1`` routes, around ``service``."""
    router = APIRouter(prefix=PREFIX, tags=["web UI"])

    @router.get("/info")
    def info() -> dict[str, Any]:
        """The version, the model (or null), what the form offers and its defaults."""
        return info_json(service)

    # -- prompt tools (no model needed) --------------------------------------------------------

    @router.post("/lint")
    def lint_prompt(body: LintRequest) -> dict[str, Any]:
        """The findings of :func:`animagine.lint`, with positions and fixes."""
        version = _version(service, body.version)
        return {"version": version.name, "findings": _findings(body.text, version)}

    @router.post("/fix")
    def fix_prompt(body: FixRequest) -> dict[str, Any]:
        """The text with one finding's fix (``index``) or every fix (``all``) applied."""
        version = _version(service, body.version)
        if body.all == (body.index is not None):
            raise InvalidArgumentError("pass either index (one finding) or all=true")
        found = lint(body.text, version=version)
        if body.all:
            chosen = list(found)
        else:
            assert body.index is not None
            if not 0 <= body.index < len(found):
                raise InvalidArgumentError(
                    f"index must name a finding (0 to {len(found) - 1}), got {body.index}"
                    if found
                    else f"index {body.index}: the text has no findings"
                )
            chosen = [found[body.index]]
            if not chosen[0].fix:
                raise InvalidArgumentError(
                    f"index {body.index}: finding {chosen[0].code!r} has no fix"
                )
        text = apply_fixes(body.text, chosen)
        return {"version": version.name, "text": text, "findings": _findings(text, version)}

    @router.post("/canonical")
    def canonical(body: LintRequest) -> dict[str, Any]:
        """The prompt in the version's canonical order and spelling."""
        version = _version(service, body.version)
        text = str(Prompt.parse(body.text, version=version))
        return {"version": version.name, "text": text}

    @router.post("/convert")
    def convert_prompt(body: ConvertRequest) -> dict[str, Any]:
        """The prompt rewritten for another version."""
        source = _version(service, body.source)
        target = get_version(body.to)
        text = convert(body.text, to=target, source=source)
        return {"from": source.name, "to": target.name, "text": text}

    @router.get("/tags")
    def tags(
        q: str = "",
        limit: int = Query(default=10, ge=1, le=MAX_TAG_MATCHES),
        category: Literal["general", "artist", "series", "character", "meta"] | None = None,
    ) -> dict[str, Any]:
        """Tags that start with ``q`` (name or alias), most used first."""
        matches = TagDatabase.default().search(q, limit=limit, category=category)
        return {
            "matches": [
                {
                    "name": match.name,
                    "category": match.category,
                    "post_count": match.post_count,
                    "alias": match.alias,
                    "text": str(Tag(match.name)),
                }
                for match in matches
            ]
        }

    @router.post(
        "/read-image",
        openapi_extra={
            "requestBody": {
                "description": 'The image\'s bytes, or JSON {"image": base64}.',
                "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": ReadImageRequest.model_json_schema()},
                },
            }
        },
    )
    async def read_image(request: Request) -> dict[str, Any]:
        """The generation parameters an image carries, and the form values to load."""
        body = await request.body()
        if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            try:
                data: object = json.loads(body)
            except (ValueError, RecursionError):
                raise MetadataError("the JSON body does not read") from None
            if not isinstance(data, Mapping):
                raise MetadataError('send {"image": base64} or the image bytes')
            image = data.get("image")
            if not isinstance(image, str):
                raise MetadataError('send {"image": base64} or the image bytes')
            body = decode_image(image)
        parameters = await run_in_threadpool(read_image_bytes, body)
        return parameters_json(parameters)

    # -- generation (one queue) ----------------------------------------------------------------

    @router.post("/generate")
    def generate(body: GenerateRequest, request: Request) -> dict[str, Any]:
        """Check a request and queue it: its job id and place in the queue."""
        worker = service.require_worker()
        job = worker.submit([_options(service, body)])
        return {
            "id": job.id,
            "url": _url(request, f"/jobs/{job.id}"),
            "position": worker.position(job),
            "count": job.count,
            "seeds": [str(seed) for seed in job.seeds],
        }

    @router.get("/jobs/{job_id}")
    def job_state(job_id: str, request: Request) -> dict[str, Any]:
        """A job's state, queue position, progress and images."""
        worker, job = _job(service, job_id)
        return job_json(request, worker, job)

    @router.post("/jobs/{job_id}/interrupt")
    def interrupt(job_id: str) -> dict[str, Any]:
        """Stop a job: the running one at its next step (keeping what it made), a queued one
        at once."""
        worker, job = _job(service, job_id)
        return {"id": job.id, "interrupted": worker.interrupt(job.id)}

    @router.get("/jobs/{job_id}/images/{number:int}.png", response_class=Response)
    def job_image(job_id: str, number: int) -> Response:
        """An image of a job: the PNG with its parameters in the metadata."""
        _, job = _job(service, job_id)
        if not 0 <= number < len(job.images):
            raise _not_found(f"job {job_id} has no image {number} (yet)")
        return _png(job.images[number], f"animagine-{job.parameters[number].seed}.png")

    # -- history -------------------------------------------------------------------------------

    @router.get("/history")
    def history(
        request: Request,
        q: str = "",
        favourites: OptionalBool = None,
        before: OptionalInt = None,
        limit: OptionalInt = None,
    ) -> dict[str, Any]:
        """The newest images first: those with every tag of ``q`` (``favourites``: only
        those); ``before`` an id pages on, ``limit`` (default 24) per page."""
        store = _history(service)
        favourites = bool(favourites)
        limit = HISTORY_PAGE if limit is None else limit
        entries = store.search(q, favourites=favourites, before=before, limit=limit)
        more = bool(entries) and bool(
            store.search(q, favourites=favourites, before=entries[-1].id, limit=1)
        )
        return {
            "entries": [_entry_json(request, entry) for entry in entries],
            "next_before": entries[-1].id if more else None,
            "total": len(store),
        }

    @router.get("/history/{image_id:int}.png", response_class=Response)
    def history_image(image_id: int) -> Response:
        """An image of the history, with its metadata."""
        data = _history(service).png(image_id)
        if data is None:
            raise _not_found(f"no image {image_id} in the history")
        return _png(data, f"animagine-{image_id}.png")

    @router.get("/history/{image_id:int}")
    def history_entry(image_id: int, request: Request) -> dict[str, Any]:
        """One entry of the history."""
        entry = _history(service).get(image_id)
        if entry is None:
            raise _not_found(f"no image {image_id} in the history")
        return _entry_json(request, entry)

    @router.post("/history/{image_id:int}/favourite")
    def favourite(image_id: int, body: FavouriteRequest) -> dict[str, Any]:
        """Mark an image as a favourite (or not)."""
        if not _history(service).set_favourite(image_id, body.favourite):
            raise _not_found(f"no image {image_id} in the history")
        return {"id": image_id, "favourite": body.favourite}

    @router.delete("/history/{image_id:int}")
    def delete(image_id: int) -> dict[str, Any]:
        """Remove an image from the history."""
        if not _history(service).delete(image_id):
            raise _not_found(f"no image {image_id} in the history")
        return {"id": image_id, "deleted": True}

    return router


def web_static(app: FastAPI, service: Service) -> None:
    """Serve the page at ``/`` and its files under ``/static``."""
    from starlette.staticfiles import StaticFiles  # noqa: PLC0415

    folder = static_folder()
    page = folder / "index.html"

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            page,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _PAGE_POLICY},
        )

    app.mount("/static", StaticFiles(directory=folder), name="static")
