"""The exception hierarchy.

Every error raised by animagine for bad input derives from :class:`AnimagineError` and also from
the builtin it resembles, so ``except ValueError`` (or ``except FileNotFoundError``...) keeps
working for callers who do not know us::

    AnimagineError
    ├── InvalidArgumentError (ValueError)     an argument whose value is not accepted
    │   └── GenerationArgumentError           a generation option or parameter out of range
    ├── WrongTypeError (TypeError)            an argument of the wrong type
    │   └── GenerationTypeError               a generation option or parameter of the wrong type
    ├── PromptSyntaxError (ValueError)        text that is not a valid prompt
    │   ├── PromptOrderError                  valid text that breaks a version's rules (strict mode)
    │   └── PromptTooLongError                text over the prompt size limit
    ├── UnknownVersionError (ValueError)      a model version name nobody knows
    ├── TagDatabaseError (ValueError)         a tag database file that cannot be read
    ├── MetadataError (ValueError)            image metadata that cannot be read as parameters
    ├── MissingFileError (FileNotFoundError)  an input file or folder that does not exist
    ├── NotAFileError (IsADirectoryError)     a folder given where a file is needed
    ├── MissingDependencyError (ImportError)  an optional package that is not installed
    ├── ModelLoadError (ValueError)           a model that cannot be loaded as asked
    ├── EncodingError (ValueError)            prompt tags that cannot be encoded
    ├── UnsupportedPipelineError (TypeError)  a pipeline that is not SDXL-shaped
    └── BatchInputError (ValueError)          a batch input file or lines that cannot be used

Two refusals are plain builtins on purpose, because nothing was wrong with the input: writing
where a file already exists without ``overwrite`` raises :class:`FileExistsError`, and other
operating-system failures (a full disk, a permission denied) raise :class:`OSError` as they come.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

__all__ = [
    "AnimagineError",
    "BatchInputError",
    "EncodingError",
    "GenerationArgumentError",
    "GenerationTypeError",
    "InvalidArgumentError",
    "MetadataError",
    "MissingDependencyError",
    "MissingFileError",
    "ModelLoadError",
    "NotAFileError",
    "PromptOrderError",
    "PromptSyntaxError",
    "PromptTooLongError",
    "TagDatabaseError",
    "UnknownVersionError",
    "UnsupportedPipelineError",
    "WrongTypeError",
]

# The context line of a syntax error shows at most this many characters around the problem.
_CONTEXT_WIDTH = 120


class AnimagineError(Exception):
    """Root of every error animagine raises on purpose."""


class InvalidArgumentError(AnimagineError, ValueError):
    """An argument of the right type whose value is not accepted.

    An empty tag name, a weight that is not finite, ``jobs=0``, a caption extension without its
    dot, a mapping that is not a serialised prompt...
    """


class WrongTypeError(AnimagineError, TypeError):
    """An argument of the wrong type: a number where a prompt string is expected, say."""


class PromptSyntaxError(AnimagineError, ValueError):
    """A prompt that cannot be read.

    Attributes:
        text: The whole prompt that was being read.
        offset: 0-based character offset of the problem in ``text``.
        line: 1-based line of the problem.
        column: 1-based column of the problem.
        context: The offending line with a caret under the problem; a line longer than 120
            characters is cut to the 120 around the problem, with ``...`` where it was cut.
        reason: The message without the position and the context.
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
        self.context = _context(source_line, self.column - 1)
        self.reason = message
        super().__init__(f"{message} at line {self.line}, column {self.column}\n{self.context}")

    def __reduce__(self) -> tuple[object, ...]:
        # The keyword-only constructor cannot be called with ``args``: rebuild from the state, so
        # the error crosses process boundaries (a worker of a process pool, say).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[PromptSyntaxError], args: tuple[object, ...], state: dict[str, object]
) -> PromptSyntaxError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def _context(line: str, index: int) -> str:
    """``line`` with a caret under ``line[index]``, cut to a window when the line is long."""
    if len(line) <= _CONTEXT_WIDTH:
        return f"{line}\n{' ' * index}^"
    start = max(0, min(index - _CONTEXT_WIDTH // 2, len(line) - _CONTEXT_WIDTH))
    end = start + _CONTEXT_WIDTH
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(line) else ""
    caret = " " * (len(prefix) + index - start)
    return f"{prefix}{line[start:end]}{suffix}\n{caret}^"


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


class PromptTooLongError(PromptSyntaxError):
    """A prompt text longer than the limit (:data:`animagine.core.MAX_PROMPT_CHARS`).

    Raised before anything is parsed; ``offset`` is the first character past the limit.

    Attributes:
        length: The length of the text, in characters.
        limit: The limit it broke.
    """

    def __init__(self, *, text: str, limit: int) -> None:
        self.length = len(text)
        self.limit = limit
        super().__init__(
            f"prompt is {len(text):,} characters long; the limit is {limit:,}",
            text=text,
            offset=limit,
        )


class UnknownVersionError(AnimagineError, ValueError):
    """A model version name or hub id that animagine does not know."""


class TagDatabaseError(AnimagineError, ValueError):
    """A tag database file that is missing or malformed."""


class MetadataError(AnimagineError, ValueError):
    """Image metadata or a parameters text that cannot be read as generation parameters."""


class GenerationArgumentError(InvalidArgumentError):
    """A generation or loading argument with a value that is not accepted.

    Also raised for a field of :class:`~animagine.metadata.GenerationParameters` or
    :class:`~animagine.metadata.HiresParameters` out of range (``steps=0``, ``strength=1.5``).
    """


class GenerationTypeError(WrongTypeError):
    """A generation or loading argument of the wrong type.

    Also raised for a field of :class:`~animagine.metadata.GenerationParameters` or
    :class:`~animagine.metadata.HiresParameters` of the wrong type (``seed="123"``).
    """


class MissingFileError(AnimagineError, FileNotFoundError):
    """An input file or folder that does not exist.

    An :class:`OSError` with ``errno`` ``ENOENT`` and ``filename`` set, like the
    :class:`FileNotFoundError` that opening it would raise.
    """

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> MissingFileError:
        """The error for ``path``."""
        return cls(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))


class NotAFileError(AnimagineError, IsADirectoryError):
    """A folder given where a file is needed (an image to read, a file to write).

    An :class:`OSError` with ``errno`` ``EISDIR`` and ``filename`` set.
    """

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> NotAFileError:
        """The error for the folder ``path``."""
        return cls(errno.EISDIR, "Is a folder, not a file", os.fspath(path))


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


class MissingDependencyError(AnimagineError, ImportError):
    """An optional package that an option needs is not installed.

    The message says what to install.
    """
