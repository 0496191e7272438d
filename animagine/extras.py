"""Optional dependencies: import one on use, or say what to install.

``import animagine`` needs only ``attrs`` and ``lark``; generation needs the ``generate`` extra
(torch, diffusers, transformers...), reading image metadata needs Pillow. Every module that needs
one of them imports it through :func:`require`, inside the function that uses it.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from animagine.errors import MissingDependencyError

__all__ = ["require"]

#: Import names whose package on PyPI has another name.
_DISTRIBUTIONS: Final = {"PIL": "pillow", "huggingface_hub": "huggingface-hub", "yaml": "pyyaml"}


def require(module: str, *, what: str = "animagine's generation", extra: str = "generate") -> Any:
    """Import ``module`` (untyped), or raise ``ImportError`` saying what to ``pip install``.

    Args:
        module: The module to import (``"torch"``, ``"diffusers"``, ``"PIL.Image"``...).
        what: The feature that needs it, for the message.
        extra: The animagine extra that provides it.

    Raises:
        MissingDependencyError: ``module`` (or one of its own dependencies) is missing; also an
            ``ImportError``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = (error.name or module).split(".")[0]
        package = _DISTRIBUTIONS.get(top, top)
        raise MissingDependencyError(
            f"{what} needs {package}, which is not installed: pip install {package}"
            f" (or pip install 'animagine[{extra}]')"
        ) from error
