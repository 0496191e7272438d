"""Normalise a folder of caption files into a model version's canonical tag order.

The layout is kohya sd-scripts': one ``.txt`` caption beside each training image, holding
comma-separated tags. Normalising a caption is ``str(Prompt.parse(text, version=...))``: the
tags are put in the version's training order, Danbooru underscores become spaces (``long_hair``
is ``long hair``; emoticons such as ``^_^`` keep theirs), brackets that are part of a name are
escaped (``hu tao \\(genshin impact\\)``) and a multi-line caption becomes one line. A caption's
trailing newline (``\\n`` or ``\\r\\n``) and UTF-8 byte order mark are kept as they were.

Files are rewritten in place, each one atomically with :func:`animagine.files.write_atomic`: the
new text goes to a temporary file in the same folder, which takes the old file's permission bits
and is then moved over it with :func:`os.replace`, so a reader sees the old caption or the new
one, never half of one. A file that does not parse is left untouched and reported. Nothing here
prints; the CLI does.

With ``jobs`` above 1 the work is shared by worker processes. On Linux each worker asks the
kernel to send it ``SIGTERM`` when the process that started it dies, so killing a run (even with
``SIGKILL``) leaves no workers behind; elsewhere the workers finish their current chunk and find
their queue gone.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Final, Literal

import attrs

from animagine.core import ModelVersion, Prompt, get_version
from animagine.errors import (
    InvalidArgumentError,
    MissingFileError,
    PromptSyntaxError,
    PromptTooLongError,
    WrongTypeError,
)
from animagine.files import write_atomic

__all__ = [
    "CaptionFailure",
    "CaptionReport",
    "find_captions",
    "normalise_caption",
    "normalise_captions",
]

_BOM: Final = "\ufeff"
# Chunks handed to one worker at a time: big enough that pickling and queueing cost little
# per caption, small enough that the workers finish together.
_MAX_CHUNK: Final = 256

Outcome = Literal["unchanged", "changed", "failed"]


@attrs.frozen
class CaptionFailure:
    """A caption file that was left untouched because it could not be read or parsed.

    Attributes:
        path: The file.
        kind: ``"syntax"`` (the caption is not a valid prompt) or ``"read"`` / ``"write"`` (an
            I/O or decoding error).
        message: What went wrong, for people.
        line: 1-based line of a syntax error, else None.
        column: 1-based column of a syntax error, else None.
    """

    path: Path
    kind: Literal["syntax", "read", "write"]
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is not None and self.column is not None:
            return f"{self.path}:{self.line}:{self.column}: {self.kind} {self.message}"
        return f"{self.path}: {self.kind} {self.message}"


@attrs.frozen
class CaptionReport:
    """What :func:`normalise_captions` did (or, with ``check``, would do).

    Attributes:
        changed: Files whose caption was (or would be) rewritten, in input order.
        unchanged: How many files were already canonical.
        failed: Files left untouched because they could not be read, parsed or written.
        checked: True when nothing was written (``check=True``).
    """

    changed: tuple[Path, ...]
    unchanged: int
    failed: tuple[CaptionFailure, ...]
    checked: bool

    @property
    def total(self) -> int:
        """How many files were looked at."""
        return len(self.changed) + self.unchanged + len(self.failed)

    @property
    def ok(self) -> bool:
        """No failures, and (with ``check``) nothing would change."""
        return not self.failed and not (self.checked and self.changed)


def normalise_caption(text: str, *, version: str | ModelVersion = "v4") -> str:
    """The canonical form of one caption's text for ``version``, keeping its line ending.

    Raises:
        PromptSyntaxError: the caption is not a valid prompt (positions refer to ``text``);
            :class:`~animagine.errors.PromptTooLongError` when it is longer than
            :data:`~animagine.core.MAX_PROMPT_CHARS`.
        WrongTypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise WrongTypeError(f"caption text must be a str, got {type(text).__name__}")
    bom = _BOM if text.startswith(_BOM) else ""
    body = text[len(bom) :]
    ending = ""
    if body.endswith("\r\n"):
        ending = "\r\n"
    elif body.endswith("\n"):
        ending = "\n"
    try:
        canonical = str(Prompt.parse(body, version=version))
    except PromptSyntaxError as error:
        if not bom or isinstance(error, PromptTooLongError):
            raise
        # Report the position in the file as written, BOM included.
        raise PromptSyntaxError(error.reason, text=text, offset=error.offset + 1) from error
    return f"{bom}{canonical}{ending}"


def find_captions(
    roots: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    extension: str = ".txt",
) -> list[Path]:
    """The caption files in ``roots`` (folders, or files taken as they are), sorted per root.

    Hidden files and folders (``.name``) are skipped, and with them the temporary files of an
    interrupted run.

    Raises:
        MissingFileError: a root does not exist (a ``FileNotFoundError``).
        InvalidArgumentError: ``extension`` does not look like ``.txt`` (a ``ValueError``).
        WrongTypeError: ``roots`` is not an iterable of paths, or ``extension`` not a str.
    """
    if not isinstance(extension, str):
        raise WrongTypeError(f"extension must be a str, got {type(extension).__name__}")
    if not extension.startswith(".") or len(extension) < 2 or any(c in extension for c in "/\\*?["):
        raise InvalidArgumentError(f"extension must look like '.txt', got {extension!r}")
    found: list[Path] = []
    for root in _paths("roots", roots):
        path = Path(root)
        if path.is_file():
            found.append(path)
            continue
        if not path.is_dir():
            raise MissingFileError.from_path(path)
        pattern = f"*{extension}"
        matches = path.rglob(pattern) if recursive else path.glob(pattern)
        found.extend(
            sorted(
                match
                for match in matches
                if not any(part.startswith(".") for part in match.relative_to(path).parts)
                and match.is_file()
            )
        )
    return found


def normalise_captions(
    paths: Iterable[str | os.PathLike[str]],
    *,
    version: str | ModelVersion = "v4",
    check: bool = False,
    jobs: int = 1,
) -> CaptionReport:
    """Rewrite caption files into ``version``'s canonical order, in place.

    Args:
        paths: The caption files (see :func:`find_captions` to collect a folder's).
        version: The model version whose order to use.
        check: Write nothing; report which files would change.
        jobs: Worker processes. 1 works in this process; more use a
            :class:`~concurrent.futures.ProcessPoolExecutor` fed in chunks.

    Returns:
        A :class:`CaptionReport`; a file that cannot be read, parsed or written is in its
        ``failed`` list and left as it was.

    Raises:
        UnknownVersionError: unknown ``version``.
        InvalidArgumentError: ``jobs`` is below 1 (a ``ValueError``).
        WrongTypeError: ``jobs`` is not an int, or ``paths`` not an iterable of paths.
    """
    resolved = get_version(version)
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise WrongTypeError(f"jobs must be a positive int, got {type(jobs).__name__}: {jobs!r}")
    if jobs < 1:
        raise InvalidArgumentError(f"jobs must be a positive int, got {jobs!r}")
    files = [Path(p) for p in _paths("paths", paths)]
    work = functools.partial(_normalise_file, version=resolved.name, check=check)
    results: Iterable[tuple[Outcome, CaptionFailure | None]]
    if jobs == 1 or len(files) < 2:
        results = map(work, files)
        return _report(files, results, check)
    workers = min(jobs, len(files))
    chunk = max(1, min(_MAX_CHUNK, len(files) // (workers * 4)))
    _warm_up(resolved.name)  # a forked worker inherits the loaded tag database
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_start_worker,
        initargs=(resolved.name, os.getpid()),
    ) as pool:
        return _report(files, pool.map(work, files, chunksize=chunk), check)


def _paths(argument: str, paths: object) -> list[str | os.PathLike[str]]:
    """``paths`` as a list, when it is an iterable of str or path objects."""
    if isinstance(paths, (str, os.PathLike)):
        raise WrongTypeError(f"{argument} must be an iterable of paths, not a single path")
    try:
        items: list[object] = list(paths)  # type: ignore[call-overload]
    except TypeError:
        raise WrongTypeError(
            f"{argument} must be an iterable of paths, got {type(paths).__name__}"
        ) from None
    checked: list[str | os.PathLike[str]] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise WrongTypeError(
                f"{argument} must hold str or os.PathLike paths, got {type(item).__name__}"
            )
        checked.append(item)
    return checked


def _pool_context() -> BaseContext:
    """The start method for workers: the default, unless that would not make them our children.

    A worker's parent-death signal and its check of the parent's pid need the worker to be a
    child of this process, which ``forkserver`` workers are not; on Linux, use ``spawn`` then.
    """
    context = multiprocessing.get_context()
    if sys.platform.startswith("linux") and context.get_start_method() == "forkserver":
        return multiprocessing.get_context("spawn")
    return context


def _start_worker(version: str, parent: int) -> None:
    """Worker initializer: end with the parent process, then load what parsing needs."""
    _die_with_parent(parent)
    _warm_up(version)


_PR_SET_PDEATHSIG: Final = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel send ``SIGTERM`` to this process when ``parent`` dies.

    The signal is tied to the parent from now on, so a parent that died before the call is
    caught by comparing the current parent's pid with ``parent``. Elsewhere, or when ``prctl``
    is not available, this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _report(
    files: Sequence[Path],
    results: Iterable[tuple[Outcome, CaptionFailure | None]],
    check: bool,
) -> CaptionReport:
    changed: list[Path] = []
    failed: list[CaptionFailure] = []
    unchanged = 0
    for path, (outcome, failure) in zip(files, results, strict=True):
        if outcome == "changed":
            changed.append(path)
        elif failure is not None:
            failed.append(failure)
        else:
            unchanged += 1
    return CaptionReport(tuple(changed), unchanged, tuple(failed), check)


def _warm_up(version: str) -> None:
    """Load the tag database and the version tables before the first caption."""
    Prompt.parse("1girl, hatsune miku, smile", version=version)


def _normalise_file(
    path: Path, *, version: str, check: bool
) -> tuple[Outcome, CaptionFailure | None]:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        return "failed", CaptionFailure(path, "read", _reason(error))
    try:
        canonical = normalise_caption(text, version=version)
    except PromptSyntaxError as error:
        return "failed", CaptionFailure(path, "syntax", error.reason, error.line, error.column)
    if canonical == text:
        return "unchanged", None
    if not check:
        try:
            write_atomic(path, canonical)
        except OSError as error:
            return "failed", CaptionFailure(path, "write", _reason(error))
    return "changed", None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text ({error.reason} at byte {error.start})"
    return str(error)
