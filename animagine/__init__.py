"""animagine: prompts and generation for the Animagine XL anime models.

The prompt core (this namespace minus :class:`Generator`) needs only ``attrs`` and ``lark``.
Generation needs the ``generate`` extra and is imported on first use of :class:`Generator`.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from animagine._version import __version__
from animagine.core import (
    BREAK,
    VERSIONS,
    Diagnostic,
    Diagnostics,
    Edit,
    GenerationDefaults,
    ModelVersion,
    Prompt,
    Tag,
    TagDatabase,
    TagMatch,
    apply_fixes,
    convert,
    get_version,
    lint,
    parse,
)
from animagine.errors import (
    AnimagineError,
    BatchInputError,
    EncodingError,
    GenerationArgumentError,
    GenerationTypeError,
    InvalidArgumentError,
    MetadataError,
    MissingDependencyError,
    MissingFileError,
    ModelLoadError,
    NotAFileError,
    PromptOrderError,
    PromptSyntaxError,
    PromptTooLongError,
    TagDatabaseError,
    UnknownVersionError,
    UnsupportedPipelineError,
    WrongTypeError,
)

if TYPE_CHECKING:  # the generation and metadata layers are imported lazily, see __getattr__
    from animagine.generation import (
        GenerationOptions,
        GenerationPlan,
        GenerationResult,
        Generator,
        PromptEncoder,
    )
    from animagine.metadata import GenerationParameters, HiresParameters, read_parameters

__all__ = [
    "BREAK",
    "VERSIONS",
    "AnimagineError",
    "BatchInputError",
    "Diagnostic",
    "Diagnostics",
    "Edit",
    "EncodingError",
    "GenerationArgumentError",
    "GenerationDefaults",
    "GenerationOptions",
    "GenerationParameters",
    "GenerationPlan",
    "GenerationResult",
    "GenerationTypeError",
    "Generator",
    "HiresParameters",
    "InvalidArgumentError",
    "MetadataError",
    "MissingDependencyError",
    "MissingFileError",
    "ModelLoadError",
    "ModelVersion",
    "NotAFileError",
    "Prompt",
    "PromptEncoder",
    "PromptOrderError",
    "PromptSyntaxError",
    "PromptTooLongError",
    "Tag",
    "TagDatabase",
    "TagDatabaseError",
    "TagMatch",
    "UnknownVersionError",
    "UnsupportedPipelineError",
    "WrongTypeError",
    "__version__",
    "apply_fixes",
    "convert",
    "get_version",
    "lint",
    "parse",
    "read_parameters",
]

_LAZY = {
    "Generator": "animagine.generation",
    "GenerationOptions": "animagine.generation",
    "GenerationPlan": "animagine.generation",
    "GenerationResult": "animagine.generation",
    "PromptEncoder": "animagine.generation",
    "GenerationParameters": "animagine.metadata",
    "HiresParameters": "animagine.metadata",
    "read_parameters": "animagine.metadata",
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


for _name in __all__:  # the eager public objects report the package, as the lazy ones do
    _value = globals().get(_name)
    if isinstance(_value, (type, types.FunctionType)):
        _value.__module__ = __name__
del _name, _value
