"""Captions under hostile but ordinary datasets: only the folder's regular files are rewritten.

Symlinks (in and out of the folder), read-only files, FIFOs and sockets, leftovers of a killed
run, and a run killed with SIGKILL at random points and resumed.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import children, running

from animagine.apps.captions import (
    CaptionSkip,
    find_captions,
    normalise_caption,
    normalise_captions,
)
from animagine.apps.cli import main
from animagine.errors import WrongTypeError

MESSY = "smile, long_hair, 1girl\n"
CLEAN = "1girl, smile, long hair\n"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symlinks, modes and FIFOs")


def write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    if mode is not None:
        path.chmod(mode)
    return path


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    """What must not change about a file left alone: its bytes, mtime and mode."""
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns, stat.S_IMODE(info.st_mode)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset folder and, beside it, a folder of files that are none of its business."""
    dataset = tmp_path / "dataset"
    outside = tmp_path / "outside"
    write(dataset / "a.txt", MESSY)
    write(outside / "settings.conf", MESSY)
    write(outside / "b.txt", MESSY)
    # Old mtimes, so that any rewrite would show even on a coarse clock.
    for path in (outside / "settings.conf", outside / "b.txt"):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return dataset, outside


# --- symlinks --------------------------------------------------------------------------------


@posix_only
def test_symlink_inside_is_skipped_by_default_and_followed_with_the_flag(
    layout: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, _ = layout
    target = write(dataset / "sub" / "real.txt", MESSY)
    link = dataset / "link.txt"
    link.symlink_to(Path("sub") / "real.txt")
    assert main(["captions", str(dataset)]) == 0  # skipping is not a failure
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(dataset / "a.txt")]
    assert f"{link}: skipped symlink to sub/real.txt, not followed" in err.splitlines()
    assert err.splitlines()[-1] == (
        "2 caption files for v4: 1 normalised, 0 unchanged, 1 skipped (left alone)"
    )
    assert read(target) == MESSY
    assert link.is_symlink()

    assert main(["captions", "--follow-symlinks", str(dataset)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [str(link)]
    assert link.is_symlink()  # the link stays a link; its target is rewritten
    assert read(target) == CLEAN
    assert main(["captions", "--check", "--follow-symlinks", str(dataset)]) == 0
    capsys.readouterr()


@posix_only
@pytest.mark.parametrize("follow", [False, True])
def test_symlink_pointing_outside_is_never_followed(
    layout: tuple[Path, Path], capsys: pytest.CaptureFixture[str], follow: bool
) -> None:
    dataset, outside = layout
    conf = outside / "settings.conf"
    before = {p: fingerprint(p) for p in outside.iterdir()}
    (dataset / "evil.txt").symlink_to(conf)  # absolute
    (dataset / "relative.txt").symlink_to(Path("..") / "outside" / "b.txt")
    (dataset / "hop.txt").symlink_to("relative.txt")  # a chain that ends outside
    (dataset / "device.txt").symlink_to(os.devnull)
    flags = ["--follow-symlinks"] if follow else []
    assert main(["captions", "-r", *flags, str(dataset)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(dataset / "a.txt")]
    skipped = [line for line in err.splitlines() if ": skipped " in line]
    assert len(skipped) == 4
    if follow:
        assert f"{dataset / 'evil.txt'}: skipped symlink to {conf}, outside {dataset}" in skipped
        assert all(", outside " in line for line in skipped)
    assert {p: fingerprint(p) for p in outside.iterdir()} == before


@posix_only
def test_outside_reasons_in_the_report(layout: tuple[Path, Path]) -> None:
    dataset, outside = layout
    (dataset / "evil.txt").symlink_to(outside / "settings.conf")
    (dataset / "linked").symlink_to(outside)  # a symlinked folder
    (outside / ".b.txt.animagine-0123456789ab.tmp").write_bytes(b"")  # not this run's to remove
    before = {p: fingerprint(p) for p in outside.iterdir()}
    # A recursive listing does not enter the symlinked folder...
    assert [p.name for p in find_captions([dataset], recursive=True)] == ["a.txt", "evil.txt"]
    # ...and a path through it, given by hand, is outside the folder too.
    paths = [dataset / "evil.txt", dataset / "linked" / "b.txt", dataset / "a.txt"]
    report = normalise_captions(paths, folders=[dataset], follow_symlinks=True)
    assert [(s.path, s.reason) for s in report.skipped] == [
        (dataset / "evil.txt", "outside"),
        (dataset / "linked" / "b.txt", "outside"),
    ]
    assert report.skipped[1].message.startswith(f"{outside / 'b.txt'} (through a symlinked")
    assert report.changed == (dataset / "a.txt",)
    assert (report.ok, report.total) == (True, 3)
    assert {p: fingerprint(p) for p in outside.iterdir()} == before


@posix_only
def test_a_file_belongs_to_its_own_folder_by_default(layout: tuple[Path, Path]) -> None:
    dataset, outside = layout
    link = dataset / "up.txt"
    link.symlink_to(outside / "b.txt")
    before = fingerprint(outside / "b.txt")
    # Without folders, a symlink may only point into its own folder.
    report = normalise_captions([link], follow_symlinks=True)
    assert [s.reason for s in report.skipped] == ["outside"]
    # A caption named on the command line belongs to the folder it is in.
    assert main(["captions", "--follow-symlinks", str(link)]) == 0
    assert fingerprint(outside / "b.txt") == before
    # A folder named through a symlink is the folder it points to: its captions are inside.
    named = dataset.parent / "named"
    named.symlink_to(outside)
    report = normalise_captions(
        find_captions([named]), folders=[named], follow_symlinks=True, check=True
    )
    assert [p.name for p in report.changed] == ["b.txt"]


def test_bad_arguments() -> None:
    with pytest.raises(WrongTypeError, match="follow_symlinks must be a bool"):
        normalise_captions([], follow_symlinks=1)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="folders"):
        normalise_captions([], folders="dataset")


# --- read-only and special files -------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("check", [False, True])
def test_read_only_file_is_reported_and_untouched(tmp_path: Path, check: bool) -> None:
    locked = write(tmp_path / "locked.txt", MESSY, mode=0o444)
    other = write(tmp_path / "other.txt", MESSY)
    before = fingerprint(locked)
    report = normalise_captions([locked, other], check=check)
    assert report.skipped == (CaptionSkip(locked, "read-only", "read-only file"),)
    assert str(report.skipped[0]) == f"{locked}: skipped read-only file"
    assert report.changed == (other,)
    assert report.ok is not check
    assert fingerprint(locked) == before


@posix_only
def test_a_file_this_user_may_not_write_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with a write bit that is not this user's (0644 of someone else)."""
    path = write(tmp_path / "theirs.txt", MESSY)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    report = normalise_captions([path])
    assert [s.reason for s in report.skipped] == ["read-only"]
    assert read(path) == MESSY


@posix_only
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_socket_are_skipped_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "a.txt", MESSY)
    os.mkfifo(tmp_path / "fifo.txt")
    (tmp_path / "inside.txt").symlink_to("fifo.txt")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "socket.txt"))
        # In a subprocess: opening the FIFO would block this test forever.
        command = [sys.executable, "-m", "animagine", "captions", "--follow-symlinks"]
        result = subprocess.run(
            [*command, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "a.txt")]
    assert sorted(line for line in result.stderr.splitlines() if ": skipped " in line) == [
        f"{tmp_path / 'fifo.txt'}: skipped a FIFO, not a regular file",
        f"{tmp_path / 'inside.txt'}: skipped a FIFO, not a regular file",
        f"{tmp_path / 'socket.txt'}: skipped a socket, not a regular file",
    ]
    assert stat.S_ISFIFO((tmp_path / "fifo.txt").lstat().st_mode)
    assert read(tmp_path / "a.txt") == CLEAN
    capsys.readouterr()


# --- what a killed run leaves ------------------------------------------------------------------

LEFTOVERS = (".a.txt.animagine-0123456789ab.tmp", ".b.txt.animagine-abcdef012345.tmp")
LOOK_ALIKES = {
    ".a.txt.backup.tmp": b"a user's backup",
    ".a.txt.animagine-0123456789AB.tmp": b"upper-case digits: not ours",
    "a.txt.animagine-0123456789ab.tmp": b"not hidden: not ours",
    ".image.png.animagine-0123456789ab.tmp": b"not a caption's: another writer's",
}


@posix_only
def test_a_run_removes_only_the_leftovers_of_its_captions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a.txt", "b.txt"):
        write(tmp_path / name, MESSY)
    for name in LEFTOVERS:
        (tmp_path / name).write_bytes(b"")  # what a SIGKILL between create and write leaves
    for name, data in LOOK_ALIKES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / ".a.txt.animagine-000000000000.tmp").symlink_to(tmp_path / "a.txt")
    assert [p.name for p in find_captions([tmp_path])] == ["a.txt", "b.txt"]

    assert main(["captions", "--check", str(tmp_path)]) == 1  # --check removes nothing
    assert all((tmp_path / name).exists() for name in LEFTOVERS)
    capsys.readouterr()

    assert main(["captions", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    for name in LEFTOVERS:
        assert f"{tmp_path / name}: removed, a temporary file left by an interrupted run" in err
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"a.txt", "b.txt", ".a.txt.animagine-000000000000.tmp", *LOOK_ALIKES}
    assert {name: (tmp_path / name).read_bytes() for name in LOOK_ALIKES} == LOOK_ALIKES


def _caption(index: int) -> str:
    """A messy caption; some with CRLF line breaks, a byte order mark or two lines."""
    text = f"masterpiece, long_hair, tag_{index}, 1girl, hatsune_miku, smile"
    if index % 7 == 0:
        text = "\ufeff" + text
    if index % 5 == 0:
        return text + "\r\nsmile, 1boy\r\n"
    return text + "\n"


@pytest.mark.crash
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL and /proc")
def test_killed_at_random_points_and_resumed(tmp_path: Path) -> None:
    """SIGKILL the CLI (also with -j 2) mid-run: every caption is old or new, never torn."""
    rng = random.Random(11)
    dataset = tmp_path / "dataset"
    original = {f"{i:04}.txt": _caption(i) for i in range(300)}
    for name, text in original.items():
        write(dataset / name, text)
    expected = {name: normalise_caption(text) for name, text in original.items()}
    assert all(expected[name] != text for name, text in original.items())

    def state() -> dict[str, str]:
        """Each caption's state; fails on a torn, missing or extra caption."""
        names = {p.name for p in dataset.iterdir() if not p.name.startswith(".")}
        assert names == set(original)
        seen: dict[str, str] = {}
        for name, old in original.items():
            text = read(dataset / name)
            assert text in (old, expected[name]), f"{name} is torn: {text!r}"
            seen[name] = "new" if text == expected[name] else "old"
        return seen

    command = [sys.executable, "-m", "animagine", "captions"]
    killed = 0
    for jobs in ("1", "2", "1"):
        remaining = list(state().values()).count("old")
        # Kill once some captions (at most half of what is left) have been rewritten.
        goal = len(original) - remaining + rng.randint(1, remaining // 2)
        run = subprocess.Popen(
            [*command, "-j", jobs, str(dataset)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        workers: set[int] = set()
        try:
            deadline = time.monotonic() + 120
            while run.poll() is None and time.monotonic() < deadline:
                workers |= children(run.pid)
                if list(state().values()).count("new") >= goal:
                    break
                time.sleep(rng.uniform(0, 0.01))
            workers |= children(run.pid)
            run.send_signal(signal.SIGKILL)
            killed += run.wait(timeout=30) == -signal.SIGKILL
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        deadline = time.monotonic() + 30  # the workers end with their parent
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if running(pid)], "workers outlived the run"
        state()
        # Leftover temporary files are hidden and never taken for captions.
        assert [p.name for p in find_captions([dataset])] == sorted(original)
    assert killed >= 1, "every run finished before it could be killed"

    resumed = subprocess.run(
        [*command, str(dataset)], capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert set(state().values()) == {"new"}
    assert sorted(p.name for p in dataset.iterdir()) == sorted(original)  # no leftovers
    again = subprocess.run(
        [*command, "--check", str(dataset)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (again.returncode, again.stdout) == (0, "")
