"""The exception hierarchy.

Every error raised by animagine for bad input derives from :class:`AnimagineError` and also from the
builtin it resembles, so ``except ValueError`` keeps working for callers who do not know us::

    AnimagineError
    ├── PromptSyntaxError (ValueError)     text that is not a valid prompt
    │   └── PromptOrderError               valid text that breaks a version's rules (strict mode)
    ├── UnknownVersionError (ValueError)   a model version name nobody knows
    ├── TagDatabaseError (ValueError)      a tag database file that cannot be read
    ├── MetadataError (ValueError)         image metadata that cannot be read as parameters
    ├── GenerationArgumentError (ValueError)  a generation option out of range
    ├── GenerationTypeError (TypeError)    a generation option of the wrong type
    ├── ModelLoadError (ValueError)        a model that cannot be loaded as asked
    ├── EncodingError (ValueError)         prompt tags that cannot be encoded
    ├── UnsupportedPipelineError (TypeError)  a pipeline that is not SDXL-shaped
    └── BatchInputError (ValueError)      a batch input file or lines that cannot be used
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AnimagineError",
    "BatchInputError",
    "EncodingError",
    "GenerationArgumentError",
    "GenerationTypeError",
    "MetadataError",
    "ModelLoadError",
    "PromptOrderError",
    "PromptSyntaxError",
    "TagDatabaseError",
    "UnknownVersionError",
    "UnsupportedPipelineError",
]


class AnimagineError(Exception):
    """Root of every error animagine raises on purpose."""


class PromptSyntaxError(AnimagineError, ValueError):
    """A prompt that cannot be read.

    Attributes:
        text: The whole prompt that was being read.
        offset: 0-based character offset of the problem in ``text``.
        line: 1-based line of the problem.
        column: 1-based column of the problem.
        context: The offending line with a caret under the problem.
    """

    def __init__(self, message: str, *, text: str, offset: int) -> None:
        offset = max(0, min(offset, len(text)))
        self.text = text
        self.offset = offset
        self.line = text.count("\n", 0, offset) + 1
        line_start = text.rfind("\n", 0, offset) + 1
        self.column = offset - line_start + 1
        line_end = text.find("\n", offset)
        source_line = text[line_start : len(text) if line_end == -1 else line_end]
        self.context = f"{source_line}\n{' ' * (self.column - 1)}^"
        self.reason = message
        super().__init__(f"{message} at line {self.line}, column {self.column}\n{self.context}")


class PromptOrderError(PromptSyntaxError):
    """A prompt that is valid text but breaks its model version's rules.

    Raised by strict parsing for a tag out of the version's training order, a special tag that
    belongs to another version, or two different ratings.

    Attributes:
        code: The lint code of the broken rule (``"order"``, ``"wrong-version"``,
            ``"rating-conflict"``).
    """

    def __init__(self, message: str, *, text: str, offset: int, code: str) -> None:
        self.code = code
        super().__init__(message, text=text, offset=offset)


class UnknownVersionError(AnimagineError, ValueError):
    """A model version name or hub id that animagine does not know."""


class TagDatabaseError(AnimagineError, ValueError):
    """A tag database file that is missing or malformed."""


class MetadataError(AnimagineError, ValueError):
    """Image metadata or a parameters text that cannot be read as generation parameters."""


class GenerationArgumentError(AnimagineError, ValueError):
    """A generation or loading argument with a value that is not accepted."""


class GenerationTypeError(AnimagineError, TypeError):
    """A generation or loading argument of the wrong type."""


class ModelLoadError(AnimagineError, ValueError):
    """A model that cannot be loaded as asked: pickle weights, a missing config, no such file."""


class EncodingError(AnimagineError, ValueError):
    """Arguments that cannot be encoded: not a sequence of tags, a bad ``clip_skip``, ..."""


class UnsupportedPipelineError(AnimagineError, TypeError):
    """A pipeline without SDXL's two tokenizers and two text encoders."""


class BatchInputError(AnimagineError, ValueError):
    """A batch input with bad lines, in strict mode; or an input file that cannot be read.

    Attributes:
        errors: The bad lines (:class:`animagine.apps.batch.BadLine`), in line order.
    """

    def __init__(self, message: str, errors: Sequence[object] = ()) -> None:
        self.errors = tuple(errors)
        details = "".join(f"\n  {error}" for error in self.errors)
        super().__init__(message + details)
