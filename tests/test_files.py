"""Atomic writes: content, no clobbering, nothing left behind, modes, newlines."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from animagine.errors import (
    AnimagineError,
    InvalidArgumentError,
    MissingFileError,
    NotAFileError,
    WrongTypeError,
)
from animagine.files import TEMPORARY_PATTERN, atomic_open, is_temporary, write_atomic

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def write_then(path: Path, then: BaseException | Path, *, exclusive: bool = False) -> None:
    """Write half a file with :func:`atomic_open`, then raise ``then`` or write to that path."""
    with atomic_open(path, exclusive=exclusive) as file:
        file.write(b"half of it")
        if isinstance(then, BaseException):
            raise then
        then.write_bytes(b"theirs")  # appears after the up-front check


# --- content ------------------------------------------------------------------------------------


def test_bytes_and_text(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    assert write_atomic(path, b"\x00\x01\xff") == path
    assert path.read_bytes() == b"\x00\x01\xff"
    assert write_atomic(str(path), "héllo") == path
    assert path.read_bytes() == "héllo".encode()
    write_atomic(path, "héllo", encoding="latin-1")
    assert path.read_bytes() == b"h\xe9llo"
    write_atomic(path, bytearray(b"xy"))
    assert path.read_bytes() == b"xy"
    assert names(tmp_path) == ["a.bin"]


def test_text_newlines_are_written_as_given(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    write_atomic(path, "one\r\ntwo\nthree\r")
    assert path.read_bytes() == b"one\r\ntwo\nthree\r"


def test_atomic_open_text_newline_translation(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    with atomic_open(path, "w", newline="\r\n") as file:
        file.write("one\ntwo\n")
    assert path.read_bytes() == b"one\r\ntwo\r\n"
    with atomic_open(path, "wt", newline="") as file:
        file.write("one\ntwo\r\n")
    assert path.read_bytes() == b"one\ntwo\r\n"
    with atomic_open(path, "w") as file:  # newline=None: os.linesep, as open() does
        file.write("a\n")
    assert path.read_bytes() == ("a" + os.linesep).encode()


def test_atomic_open_gives_a_file_object_for_savers(tmp_path: Path) -> None:
    path = tmp_path / "out.dat"
    with atomic_open(path) as file:
        file.write(b"part one, ")
        assert not path.exists()  # nothing at the name until the block ends
        file.write(b"part two")
    assert path.read_bytes() == b"part one, part two"


def test_replace_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old", encoding="utf-8")
    write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert names(tmp_path) == ["a.txt"]


# --- exclusive ----------------------------------------------------------------------------------


def test_exclusive_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError) as caught:
        write_atomic(path, b"new", exclusive=True)
    assert type(caught.value) is FileExistsError  # the plain builtin, as-is
    assert caught.value.filename == str(path)
    assert path.read_bytes() == b"precious"
    assert names(tmp_path) == ["a.txt"]


def test_exclusive_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        write_atomic(link, b"x", exclusive=True)
    assert not (tmp_path / "nowhere").exists()


def test_exclusive_refuses_a_file_created_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    with pytest.raises(FileExistsError):
        write_then(path, path, exclusive=True)
    assert path.read_bytes() == b"theirs"
    assert names(tmp_path) == ["a.txt"]


def test_exclusive_writes_a_new_file(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "a.txt", "new", exclusive=True)
    assert path.read_text(encoding="utf-8") == "new"
    assert names(tmp_path) == ["a.txt"]


def test_exclusive_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: Any, target: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = write_atomic(tmp_path / "a.txt", b"first", exclusive=True)
    assert path.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        write_atomic(path, b"second", exclusive=True)
    assert path.read_bytes() == b"first"
    assert names(tmp_path) == ["a.txt"]


def test_only_one_of_racing_exclusive_writers_wins(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def write(index: int) -> None:
        barrier.wait()
        try:
            write_atomic(path, f"writer {index}", exclusive=True)
        except FileExistsError:
            outcomes.append("refused")
        else:
            outcomes.append(f"writer {index}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1
    assert path.read_text(encoding="utf-8") == winners[0]
    assert names(tmp_path) == ["a.txt"]


# --- failures leave nothing behind ----------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("exclusive", [False, True])
def test_error_mid_write_leaves_no_temporary_file(tmp_path: Path, exclusive: bool) -> None:
    path = tmp_path / "a.txt"
    if not exclusive:
        path.write_bytes(b"old")
    with pytest.raises(Boom):
        write_then(path, Boom(), exclusive=exclusive)
    assert names(tmp_path) == ([] if exclusive else ["a.txt"])
    if not exclusive:
        assert path.read_bytes() == b"old"


def test_failed_rename_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"old")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert names(tmp_path) == ["a.txt"]


def test_keyboard_interrupt_mid_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        write_then(tmp_path / "a.txt", KeyboardInterrupt())
    assert names(tmp_path) == []


# --- permissions --------------------------------------------------------------------------------


@posix_only
def test_replacing_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert path.stat().st_mode & 0o777 == 0o640
    path.chmod(0o604)
    with atomic_open(path, "w") as file:
        file.write("newer")
    assert path.stat().st_mode & 0o777 == 0o604


@posix_only
def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "a.txt", b"x")
        other = write_atomic(tmp_path / "b.txt", b"x", exclusive=True)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    assert other.stat().st_mode & 0o777 == 0o640


def test_a_symlink_is_followed_when_replacing(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_bytes(b"old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert write_atomic(link, b"new") == link
    assert link.is_symlink()
    assert target.read_bytes() == b"new"


# --- temporary names ----------------------------------------------------------------------------


def test_temporary_names_are_recognisable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(source: Any, target: Any) -> None:
        seen.append(os.path.basename(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(tmp_path / "image.png", b"x")
    write_atomic(tmp_path / ("n" * 250), b"x")  # a long name still gives a valid temporary name
    assert len(seen) == 2
    assert seen[0].startswith(".image.png.animagine-")
    assert all(is_temporary(name) and len(name) < 255 for name in seen)
    assert is_temporary(tmp_path / seen[0])
    assert TEMPORARY_PATTERN.fullmatch(seen[1])


@pytest.mark.parametrize(
    "name",
    [
        "image.png",
        ".image.png",
        ".image.png.tmp",
        ".image.png.0123456789ab.tmp",  # the old, unmarked temporary names
        "image.png.animagine-0123456789ab.tmp",  # not hidden
        ".image.png.animagine-0123456789AB.tmp",
        ".image.png.animagine-0123456789ab",
        ".holiday.png.backup.tmp",  # user files the old cleanup removed
        ".manifest.jsonl.notes.tmp",
        ".animagine-0123456789ab.tmp",  # no name before the marker
        ".image.png.animagine-0123456789abc.tmp",
        ".image.png.animagine-0123456789ab.tmp.png",
    ],
)
def test_user_files_are_not_temporary(name: str) -> None:
    assert not is_temporary(name)


# --- bad arguments ------------------------------------------------------------------------------


def test_bad_arguments(tmp_path: Path) -> None:
    def check(error: type[AnimagineError], builtin: type[Exception], call: Any) -> None:
        with pytest.raises(error) as caught:
            call()
        assert isinstance(caught.value, builtin)
        assert isinstance(caught.value, AnimagineError)

    missing = tmp_path / "no" / "such" / "a.txt"
    check(MissingFileError, FileNotFoundError, lambda: write_atomic(missing, b"x"))
    check(MissingFileError, FileNotFoundError, lambda: write_atomic(missing, b"x", exclusive=True))
    check(NotAFileError, IsADirectoryError, lambda: write_atomic(tmp_path, b"x"))
    check(WrongTypeError, TypeError, lambda: write_atomic(tmp_path / "a", 3))  # type: ignore[arg-type]
    check(WrongTypeError, TypeError, lambda: write_atomic(3, b"x"))  # type: ignore[arg-type]
    check(WrongTypeError, TypeError, lambda: write_atomic(b"a.txt", b"x"))  # type: ignore[arg-type]
    check(InvalidArgumentError, ValueError, lambda: write_atomic("", b"x"))
    check(InvalidArgumentError, ValueError, lambda: write_atomic(tmp_path / "a\0b", b"x"))
    check(
        InvalidArgumentError, ValueError, lambda: write_atomic(tmp_path / "a", "x", encoding="nope")
    )
    check(InvalidArgumentError, ValueError, lambda: atomic_open(tmp_path / "a", "ab").__enter__())
    check(
        InvalidArgumentError,
        ValueError,
        lambda: atomic_open(tmp_path / "a", "w", newline="x").__enter__(),
    )
    (tmp_path / "file").write_bytes(b"")
    check(MissingFileError, FileNotFoundError, lambda: write_atomic(tmp_path / "file" / "a", b"x"))
    assert names(tmp_path) == ["file"]
