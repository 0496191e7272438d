"""Optional dependencies: import one on use, or say what to install.

``import animagine`` needs only ``attrs`` and ``lark``; generation needs the ``generate`` extra
(torch, diffusers, transformers...), reading image metadata needs Pillow. Every module that needs
one of them imports it through :func:`require`, inside the function that uses it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(module: str, *, what: str = "animagine's generation", extra: str = "generate") -> Any:
    """Import ``module`` (untyped), or raise ``ImportError`` saying what to ``pip install``.

    Args:
        module: The module to import (``"torch"``, ``"diffusers"``, ``"PIL.Image"``...).
        what: The feature that needs it, for the message.
        extra: The animagine extra that provides it.

    Raises:
        ImportError: ``module`` (or one of its own dependencies) is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name or module
        raise ImportError(
            f"{what} needs {missing}, which is not installed: pip install 'animagine[{extra}]'"
        ) from error
