"""Serve the app with uvicorn until Ctrl-C (or SIGTERM), printing its address once it listens."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from animagine.extras import require

__all__ = ["run_server", "url_of"]


def url_of(host: str, port: int) -> str:
    """``http://host:port/``, with an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def _quiet_server_class(uvicorn: Any) -> Any:
    """uvicorn's server, except that a Ctrl-C or SIGTERM it has handled (a graceful shutdown)
    is not raised again afterwards: that re-raise lands in the app's shutdown as a traceback."""

    class QuietServer(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {number: signal.signal(number, self.handle_exit) for number in handled}
            try:
                yield
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)

    return QuietServer


def run_server(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    log_level: str = "warning",
    stream: IO[str] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until interrupted; shut down cleanly.

    Once the socket listens, one line with the address is written to ``stream`` (default
    stdout) and ``on_ready`` is called with the URL. ``port=0`` takes a free port (the line says
    which). Ctrl-C or SIGTERM stops accepting, lets running requests finish, runs the app's
    shutdown (the worker stops, the history closes) and returns.
    """
    uvicorn = require("uvicorn", what="animagine serve")
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", timeout_graceful_shutdown=10
    )
    server = _quiet_server_class(uvicorn)(config)
    out = sys.stdout if stream is None else stream

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.02)
        bound = port
        for listener in getattr(server, "servers", []):
            for sock in getattr(listener, "sockets", []) or []:
                bound = int(sock.getsockname()[1])
                break
        url = url_of(host, bound)
        print(
            f"animagine serve: {url} (web UI), {url}sdapi/v1 (A1111 API), {url}docs;"
            " Ctrl-C to stop",
            file=out,
            flush=True,
        )
        if on_ready is not None:
            on_ready(url)

    watcher = threading.Thread(target=announce, name="animagine-announce", daemon=True)
    watcher.start()
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C during the shutdown
        server.run()
    watcher.join(1)
    print("animagine serve: stopped", file=out, flush=True)
