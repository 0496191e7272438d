"""``animagine serve``: the web UI and the A1111-compatible HTTP API, on one queue.

- :func:`create_app`: the ASGI app (FastAPI) around a :class:`~animagine.Generator` (or none:
  the prompt tools only), configured by :class:`ServeConfig`;
- :func:`run_server`: serve it with uvicorn until Ctrl-C;
- :class:`Worker` and :class:`Job`: the one generation queue and its jobs;
- :class:`History`: every generation in an SQLite file, searchable by tag, with favourites.

Needs the ``app`` extra (``pip install "animagine[app]"``), imported on first use.
"""

from __future__ import annotations

from animagine.apps.serve._app import (
    DEFAULT_MAX_BODY,
    NoModelError,
    ServeConfig,
    Service,
    create_app,
    parse_api_auth,
)
from animagine.apps.serve._history import (
    History,
    HistoryEntry,
    HistoryError,
    default_history_path,
    tag_keys,
)
from animagine.apps.serve._jobs import DEFAULT_QUEUE_SIZE, Job, QueueFullError, Worker, encode_png
from animagine.apps.serve._server import run_server

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_QUEUE_SIZE",
    "History",
    "HistoryEntry",
    "HistoryError",
    "Job",
    "NoModelError",
    "QueueFullError",
    "ServeConfig",
    "Service",
    "Worker",
    "create_app",
    "default_history_path",
    "encode_png",
    "parse_api_auth",
    "run_server",
    "tag_keys",
]
