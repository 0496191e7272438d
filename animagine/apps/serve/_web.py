"""The web UI's JSON API (``/animagine/v1``) and its page: placeholder, being written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from animagine.apps.serve._app import Service

__all__ = ["web_router", "web_static"]


def web_router(service: Service) -> Any:
    """The ``/animagine/v1`` routes."""
    from fastapi import APIRouter  # noqa: PLC0415

    return APIRouter(prefix="/animagine/v1", tags=["web UI"])


def web_static(app: Any, service: Service) -> None:
    """Serve the page at ``/``."""
