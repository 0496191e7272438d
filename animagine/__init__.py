"""animagine: prompts and generation for the Animagine XL anime models.

The prompt core (this namespace minus :class:`Generator`) needs only ``attrs`` and ``lark``.
Generation needs the ``generate`` extra and is imported on first use of :class:`Generator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from animagine._version import __version__
from animagine.core._lint import Diagnostic, apply_fixes, lint
from animagine.core._prompt import Prompt, convert, parse
from animagine.core._tag import BREAK, Tag
from animagine.core._tagdb import TagDatabase
from animagine.core._vocab import VERSIONS, GenerationDefaults, ModelVersion, get_version
from animagine.errors import (
    AnimagineError,
    EncodingError,
    GenerationArgumentError,
    GenerationTypeError,
    MetadataError,
    ModelLoadError,
    PromptOrderError,
    PromptSyntaxError,
    TagDatabaseError,
    UnknownVersionError,
    UnsupportedPipelineError,
)

if TYPE_CHECKING:  # the generation stack is imported lazily, see __getattr__
    from animagine.generation._generator import GenerationResult, Generator
    from animagine.metadata._records import GenerationParameters, HiresParameters, read_parameters

__all__ = [
    "BREAK",
    "VERSIONS",
    "AnimagineError",
    "Diagnostic",
    "EncodingError",
    "GenerationArgumentError",
    "GenerationDefaults",
    "GenerationParameters",
    "GenerationResult",
    "GenerationTypeError",
    "Generator",
    "HiresParameters",
    "MetadataError",
    "ModelLoadError",
    "ModelVersion",
    "Prompt",
    "PromptOrderError",
    "PromptSyntaxError",
    "Tag",
    "TagDatabase",
    "TagDatabaseError",
    "UnknownVersionError",
    "UnsupportedPipelineError",
    "__version__",
    "apply_fixes",
    "convert",
    "get_version",
    "lint",
    "parse",
    "read_parameters",
]

_LAZY = {
    "Generator": "animagine.generation._generator",
    "GenerationResult": "animagine.generation._generator",
    "GenerationParameters": "animagine.metadata._records",
    "HiresParameters": "animagine.metadata._records",
    "read_parameters": "animagine.metadata._records",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'animagine' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module_name), name)
    if getattr(value, "__module__", None) != __name__:
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


for _name in (
    "AnimagineError", "Diagnostic", "EncodingError", "GenerationArgumentError",
    "GenerationDefaults", "GenerationTypeError", "MetadataError", "ModelLoadError",
    "ModelVersion", "Prompt", "PromptOrderError", "PromptSyntaxError", "Tag", "TagDatabase",
    "TagDatabaseError", "UnknownVersionError", "UnsupportedPipelineError", "apply_fixes",
    "convert", "get_version", "lint", "parse",
):  # fmt: skip
    globals()[_name].__module__ = __name__
del _name
