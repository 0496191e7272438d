"""Atomic file writes: a reader sees the old file or the new one, never part of one.

:func:`write_atomic` writes bytes or text, :func:`atomic_open` gives a file object to write into
(``image.save(file)``). Both write a temporary file in the target's folder, flush it and
``fsync`` it, move it into place with one rename, then ``fsync`` the folder, so the new file is
whole on disk before its name points at it and the name is on disk when they return.

Two ways to put the file in place:

- **replace** (the default): an existing file is replaced with :func:`os.replace`, and the new
  file keeps the old one's permission bits (a caption a user made private stays private). A
  symlink is followed: its target is replaced and the link kept. A new file gets the permissions
  of the umask, as :func:`open` gives them.
- **exclusive** (``exclusive=True``): an existing file is never replaced, even one created by
  someone else while ours was being written. The finished file is hard-linked to its name, which
  fails if the name exists; on file systems without hard links (FAT, some network shares) the
  name is first claimed by creating it exclusively and the finished file then moved over that
  empty placeholder, so for a moment the name holds an empty file. A refusal is a plain
  :class:`FileExistsError`.

Temporary names are ``.{name}.animagine-{12 hex digits}.tmp``: hidden, beside the target, and
recognisable by :func:`is_temporary`, so a cleanup after a crash (``kill -9`` mid-write) removes
only ours. A failed write removes its temporary file before the error propagates.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from animagine.errors import InvalidArgumentError, MissingFileError, NotAFileError, WrongTypeError

__all__ = [
    "TEMPORARY_PATTERN",
    "atomic_open",
    "is_temporary",
    "path_text",
    "temporary_name",
    "write_atomic",
]

#: What the name of a temporary file of this module matches (:func:`is_temporary`).
TEMPORARY_PATTERN: Final = re.compile(r"\..+\.animagine-[0-9a-f]{12}\.tmp")
# Keep temporary names under the usual 255-byte limit whatever the target's name.
_NAME_PART: Final = 120
_MODES: Final = frozenset({"wb", "w", "wt"})


def is_temporary(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` (a file name or a path) is a temporary file of this module.

    A leftover of a killed process; safe to delete when no write is in progress in its folder.
    """
    return TEMPORARY_PATTERN.fullmatch(Path(name).name) is not None


def temporary_name(target: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``target``: ``.{name}.animagine-{random}.tmp``."""
    path = Path(target)
    return path.with_name(f".{path.name[:_NAME_PART]}.animagine-{secrets.token_hex(6)}.tmp")


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | bytearray | memoryview | str,
    *,
    exclusive: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path: The file to write.
        data: Bytes (or a bytearray or memoryview), or text written in ``encoding`` exactly as
            given: no newline translation, so ``"\\r\\n"`` stays ``"\\r\\n"`` and ``"\\n"``
            stays ``"\\n"`` on every platform.
        exclusive: Never replace an existing file.
        encoding: The encoding of text ``data``.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (the link, when ``path`` is a symlink).

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists (or appeared while writing).
        MissingFileError: the folder of ``path`` does not exist.
        NotAFileError: ``path`` is a folder.
        WrongTypeError: ``data`` is neither bytes nor str, or ``path`` is not a path.
        OSError: the write itself failed (a full disk, no permission); nothing is left behind.
    """
    if isinstance(data, str):
        with atomic_open(path, "w", exclusive=exclusive, encoding=encoding, newline="") as file:
            file.write(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        with atomic_open(path, "wb", exclusive=exclusive) as file:
            file.write(data)
    else:
        raise WrongTypeError(f"data must be bytes or str, got {type(data).__name__}")
    return Path(path)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    exclusive: bool = False,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """A file object whose content lands at ``path`` atomically when the block ends.

    Write into the file inside the ``with`` block; when the block ends without an error the file
    is flushed, synced and moved into place (see the module docstring). When the block raises,
    the temporary file is removed, ``path`` is left as it was, and the error propagates::

        with atomic_open("out.png", exclusive=True) as file:
            image.save(file, format="PNG")

    Args:
        path: The file to write.
        mode: ``"wb"`` (bytes), or ``"w"`` / ``"wt"`` (text).
        exclusive: Never replace an existing file.
        encoding: For text modes, as :func:`open` takes it (default UTF-8).
        newline: For text modes, as :func:`open` takes it: ``None`` translates ``"\\n"`` to
            :data:`os.linesep`, ``""`` writes newlines as given.

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists, checked before the block runs and
            again when the file is put in place.
        MissingFileError: the folder of ``path`` does not exist.
        NotAFileError: ``path`` is a folder.
        InvalidArgumentError: ``mode`` is not a write mode this supports.
        WrongTypeError: ``path`` is not a path.
    """
    if not isinstance(mode, str) or mode not in _MODES:
        raise InvalidArgumentError(f"mode must be one of 'wb', 'w' or 'wt', got {mode!r}")
    target = _target(path, follow=not exclusive)
    if os.path.isdir(target):
        raise NotAFileError.from_path(target)
    if exclusive and os.path.lexists(target):
        raise _exists(target)
    keep_mode: int | None = None
    if not exclusive:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            keep_mode = stat.S_IMODE(os.stat(target).st_mode)
    if "b" not in mode:
        encoding = _check_text_options(encoding, newline)
    temp, descriptor = _create_temp(target)
    try:
        # open() closes the descriptor itself if it fails; the options were checked above.
        if "b" in mode:
            file: IO[Any] = open(descriptor, "wb")  # noqa: SIM115 (closed below)
        else:
            file = open(descriptor, "w", encoding=encoding, newline=newline)  # noqa: SIM115
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if keep_mode is not None:
            os.chmod(temp, keep_mode)
        if exclusive:
            _link_new(temp, target)
        else:
            os.replace(temp, target)
    finally:
        if os.path.lexists(temp):
            with contextlib.suppress(OSError):
                os.unlink(temp)
    _fsync_folder(target.parent)


def path_text(path: object, argument: str = "path") -> str:
    """A path argument as a str: a ``str`` or an ``os.PathLike`` of ``str``.

    Raises:
        WrongTypeError: anything else (bytes paths included), naming ``argument``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise WrongTypeError(f"{argument} must be a str or os.PathLike, got {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str):
        raise WrongTypeError(f"{argument} must be a str or os.PathLike[str], got {name!r}")
    return name


def _target(path: str | os.PathLike[str], *, follow: bool) -> Path:
    name = path_text(path)
    target = Path(name)
    if "\0" in name or target.name in ("", ".", ".."):
        raise InvalidArgumentError(f"not a file name: {name!r}")
    if follow and target.is_symlink():
        target = Path(os.path.realpath(target))
    return target


def _check_text_options(encoding: str | None, newline: str | None) -> str:
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise InvalidArgumentError(
            f"newline must be None, '', '\\n', '\\r' or '\\r\\n', got {newline!r}"
        )
    if encoding is None:
        return "utf-8"
    if not isinstance(encoding, str):
        raise WrongTypeError(f"encoding must be a str, got {type(encoding).__name__}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidArgumentError(f"unknown encoding {encoding!r}") from None
    return encoding


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", str(path))


def _create_temp(target: Path) -> tuple[Path, int]:
    """A new empty file beside ``target`` (umask permissions) and its open descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = temporary_name(target)
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise MissingFileError.from_path(target.parent) from None
        except NotADirectoryError:
            raise MissingFileError.from_path(target.parent) from None
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", str(target.parent))


def _link_new(temp: Path, target: Path) -> None:
    """Put ``temp`` at ``target`` only if ``target`` does not exist, atomically."""
    try:
        os.link(temp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        # No hard links here: claim the name exclusively, then move the finished file over our
        # own empty placeholder.
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise _exists(target) from None
        os.close(descriptor)
        try:
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. Best effort: some systems cannot sync a folder (Windows)."""
    if sys.platform == "win32":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
