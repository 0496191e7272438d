"""The server: one ASGI app with the web UI at ``/``, its JSON API at ``/animagine/v1`` and
A1111's API at ``/sdapi/v1``, behind the same guards.

:func:`create_app` builds it around a :class:`Service`: the generator (or none: the prompt tools
still work), the one :class:`~animagine.apps.serve._jobs.Worker` every generation request goes
through, and the history. The guards, outermost first:

- HTTP basic authentication on every path when ``api_auth`` is given (as A1111's
  ``--api-auth user:pass``), compared in constant time;
- a size limit on request bodies (``413``), checked on ``Content-Length`` and again on the bytes
  as they arrive;
- CORS headers only for the origins ``cors_allow_origins`` names (none by default).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine._version import __version__
from animagine.apps.serve._history import History
from animagine.apps.serve._jobs import DEFAULT_QUEUE_SIZE, QueueFullError, Worker
from animagine.core import ModelVersion, get_version
from animagine.errors import AnimagineError, InvalidArgumentError, MetadataError, WrongTypeError
from animagine.extras import require

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from animagine.generation import Generator

__all__ = [
    "DEFAULT_MAX_BODY",
    "ServeConfig",
    "Service",
    "create_app",
    "decode_image",
    "parse_api_auth",
]

#: The largest request body accepted by default: 32 MiB (a 2048x2048 PNG in base64 fits).
DEFAULT_MAX_BODY: Final = 32 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_api_auth(text: str) -> tuple[tuple[str, str], ...]:
    """``"user:pass"`` or ``"user1:pass1,user2:pass2"`` (A1111's ``--api-auth``) as pairs.

    Raises:
        InvalidArgumentError: an entry without ``:``, or with an empty user or password.
    """
    pairs = []
    for entry in text.split(","):
        user, colon, password = entry.strip().partition(":")
        if not colon or not user or not password:
            raise InvalidArgumentError(
                "--api-auth takes user:password, several separated by commas"
            )
        pairs.append((user, password))
    return tuple(pairs)


def _auth_pairs(value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        return parse_api_auth(value)
    if not isinstance(value, (tuple, list)):
        raise WrongTypeError("api_auth must be 'user:password' or (user, password) pairs")
    pairs = []
    for pair in value:
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(part, str) and part for part in pair)
        ):
            raise WrongTypeError("api_auth must be 'user:password' or (user, password) pairs")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _origins(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
        raise WrongTypeError("cors_allow_origins must be origins ('https://example.org')")
    return tuple(origin.strip() for origin in value)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{attribute.name} must be a positive integer, got {value!r}")


def _optional_path(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise WrongTypeError(f"expected a path, got {type(value).__name__}")
    return os.fspath(value)


@attrs.frozen(kw_only=True)
class ServeConfig:
    """How the server behaves: its guards, its queue and the files it may read.

    Attributes:
        api_auth: ``(user, password)`` pairs (or ``"user:pass,..."``): HTTP basic
            authentication on the UI and the API. Empty: none.
        cors_allow_origins: Origins allowed to call the API from a browser; none by default.
        max_body_bytes: The largest request body, in bytes.
        queue_size: The most generation jobs waiting; more get ``503``.
        wildcards: The server's folder of wildcard files (``__name__``); requests never name
            files themselves.
        presets: The server's file of extra presets (JSON, TOML or A1111's ``styles.csv``).
    """

    api_auth: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_auth_pairs)
    cors_allow_origins: tuple[str, ...] = attrs.field(default=(), converter=_origins)
    max_body_bytes: int = attrs.field(default=DEFAULT_MAX_BODY, validator=_positive)
    queue_size: int = attrs.field(default=DEFAULT_QUEUE_SIZE, validator=_positive)
    wildcards: str | None = attrs.field(default=None, converter=_optional_path)
    presets: str | None = attrs.field(default=None, converter=_optional_path)


@attrs.define(eq=False)
class Service:
    """What the routes share: the version, the generator's worker, the history, the config.

    Attributes:
        version: The model version the prompt tools and the generator use.
        config: The server's configuration.
        worker: The generation worker, or None when the server has no model.
        history: The history of generations, or None when it is off.
        model: The model's name as loaded (``--model``), or None.
    """

    version: ModelVersion
    config: ServeConfig
    worker: Worker | None = None
    history: History | None = None
    model: str | None = None

    @property
    def generator(self) -> Generator | None:
        """The generator, or None."""
        return None if self.worker is None else self.worker.generator

    def require_worker(self) -> Worker:
        """The worker; an :class:`AnimagineError` saying ``--model`` is needed when none."""
        if self.worker is None:
            raise NoModelError(
                "this server has no model: start it with 'animagine serve --model ...' to"
                " generate images"
            )
        return self.worker

    def close(self) -> None:
        """Stop the worker and close the history."""
        if self.worker is not None:
            self.worker.close()
        if self.history is not None:
            self.history.close()


class NoModelError(AnimagineError, RuntimeError):
    """A generation request to a server started without a model (the API answers 503)."""


def create_app(
    generator: Generator | Sequence[Generator] | None = None,
    *,
    version: str | ModelVersion | None = None,
    history: History | str | os.PathLike[str] | None = None,
    config: ServeConfig | None = None,
    model: str | None = None,
) -> FastAPI:
    """The ASGI app of ``animagine serve``: web UI, its JSON API and A1111's API.

    Args:
        generator: The generator that serves generation requests, or several (the same model on
            several devices: one worker thread each, one queue); None serves the prompt tools
            only (generation requests get ``503``).
        version: The model version of the prompt tools; default the generator's, else 4.0.
        history: A :class:`History`, or the path of its database; None keeps no history.
        config: Guards, queue size and the server's own files (:class:`ServeConfig`).
        model: The model's name to show (default: the generator's).

    Raises:
        MissingDependencyError: the ``app`` extra (FastAPI) is not installed.
        InvalidArgumentError: ``version`` disagrees with the generator's.
    """
    fastapi = require("fastapi", what="animagine serve")
    config = ServeConfig() if config is None else config
    if not isinstance(config, ServeConfig):
        raise WrongTypeError(f"config must be a ServeConfig, got {type(config).__name__}")
    generators = [] if generator is None else _generators(generator)
    resolved = _version(generators, version)
    store = history if isinstance(history, History) or history is None else History(history)
    worker = None
    if generators:
        worker = Worker(generators, history=store, queue_size=config.queue_size)
    service = Service(
        version=resolved,
        config=config,
        worker=worker,
        history=store,
        model=model if model is not None or not generators else generators[0].model,
    )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        service.close()

    app = fastapi.FastAPI(
        title="animagine",
        version=__version__,
        description="Prompt tools and image generation for the Animagine XL models, with an"
        " A1111-compatible API under /sdapi/v1.",
        lifespan=lifespan,
    )
    app.state.service = service
    _install_handlers(app)

    from animagine.apps.serve._a1111 import a1111_router  # noqa: PLC0415
    from animagine.apps.serve._web import web_router, web_static  # noqa: PLC0415

    app.include_router(a1111_router(service))
    app.include_router(web_router(service))
    web_static(app, service)

    if config.cors_allow_origins:
        from starlette.middleware.cors import CORSMiddleware  # noqa: PLC0415

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_allow_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=bool(config.api_auth),
        )
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    if config.api_auth:
        app.add_middleware(BasicAuth, users=config.api_auth)
    built: FastAPI = app
    return built


def _generators(value: Generator | Sequence[Generator]) -> list[Generator]:
    generators = list(value) if isinstance(value, Sequence) else [value]
    if not generators:
        raise InvalidArgumentError("generator: an empty list; pass None to serve no model")
    if len({each.version.name for each in generators}) > 1:
        raise InvalidArgumentError("the generators are of different model versions")
    return generators


def _version(generators: list[Generator], version: str | ModelVersion | None) -> ModelVersion:
    if not generators:
        return get_version("v4" if version is None else version)
    first = generators[0]
    if version is not None and get_version(version) != first.version:
        raise InvalidArgumentError(
            f"version {get_version(version).name!r} disagrees with the generator's"
            f" ({first.version.name!r})"
        )
    return first.version


def _install_handlers(app: FastAPI) -> None:
    from fastapi.responses import JSONResponse  # noqa: PLC0415

    async def queue_full(request: Any, error: Exception) -> Any:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    async def no_model(request: Any, error: Exception) -> Any:
        return JSONResponse({"detail": str(error)}, status_code=503)

    async def bad_input(request: Any, error: Exception) -> Any:
        return JSONResponse({"detail": str(error)}, status_code=422)

    app.add_exception_handler(QueueFullError, queue_full)
    app.add_exception_handler(NoModelError, no_model)
    app.add_exception_handler(AnimagineError, bad_input)


# --- guards (plain ASGI middleware) ---------------------------------------------------------


async def _respond(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BasicAuth:
    """HTTP basic authentication on every request (``401`` with a challenge otherwise)."""

    def __init__(self, app: ASGIApp, users: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self._users = [(user.encode(), password.encode()) for user, password in users]

    def _allowed(self, header: bytes | None) -> bool:
        if header is None or header[:6].lower() != b"basic ":
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Every pair is compared, whatever matches first: the time taken does not tell which.
        found = False
        for known_user, known_password in self._users:
            same_user = secrets.compare_digest(user, known_user)
            same_password = secrets.compare_digest(password, known_password)
            found |= same_user and same_password
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization")
        if self._allowed(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _respond(
            send,
            401,
            b'{"detail":"authentication required"}',
            [(b"www-authenticate", b'Basic realm="animagine", charset="UTF-8"')],
        )


def _too_large(limit: int) -> Exception:
    # An HTTPException: FastAPI passes it through while it reads a body (any other error there
    # becomes a 400), and the app's exception middleware turns it into the 413 response.
    from starlette.exceptions import HTTPException  # noqa: PLC0415

    return HTTPException(status_code=413, detail=f"request body over {limit} bytes")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with ``413``, before and while reading them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0 or size > self.limit:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _too_large(self.limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception as error:
            if started or getattr(error, "status_code", None) != 413:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail":"request body over {self.limit} bytes"}}'.encode()
        await _respond(send, 413, body, [(b"connection", b"close")])


def decode_image(text: str) -> bytes:
    """The bytes of an image sent as base64 or as a ``data:...;base64,`` URL (white space
    ignored); never a URL to fetch.

    Raises:
        MetadataError: not base64, a ``data:`` URL that is not base64, or no bytes at all.
    """
    payload = text.strip()
    if payload.startswith("data:"):
        header, comma, payload = payload.partition(",")
        if not comma or not header.endswith(";base64"):
            raise MetadataError("a data: URL must be base64 (data:...;base64,)")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MetadataError("image must be base64 (or a data: URL)") from None
    if not data:
        raise MetadataError("image is empty")
    return data


def static_folder() -> Path:
    """The folder of the web UI's files (package data)."""
    return Path(__file__).with_name("static")
