"""A1111's HTTP API (``/sdapi/v1``) on the server's one queue: placeholder, being written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from animagine.apps.serve._app import Service

__all__ = ["a1111_router"]


def a1111_router(service: Service) -> Any:
    """The ``/sdapi/v1`` routes."""
    from fastapi import APIRouter  # noqa: PLC0415

    return APIRouter(prefix="/sdapi/v1", tags=["A1111"])
