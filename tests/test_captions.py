"""Caption folders: normalising in place, atomically, in parallel, and the `captions` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from animagine import PromptSyntaxError, UnknownVersionError
from animagine.apps.captions import (
    CaptionFailure,
    CaptionReport,
    find_captions,
    normalise_caption,
    normalise_captions,
    write_atomic,
)
from animagine.apps.cli import main
from animagine.core import MAX_PROMPT_CHARS
from animagine.errors import (
    InvalidArgumentError,
    MissingFileError,
    PromptTooLongError,
    WrongTypeError,
)
from animagine.files import is_temporary

MESSY = "masterpiece, long_hair, 1girl, hatsune_miku, smile\n"
CLEAN = "1girl, hatsune miku, long hair, smile, masterpiece\n"
BROKEN = "1girl,\nsmile, (long hair\n"


def write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    if mode is not None:
        path.chmod(mode)
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "10_miku"
    write(root / "001.txt", MESSY, 0o640)
    write(root / "002.txt", CLEAN)
    write(root / "003.txt", BROKEN)
    write(root / "004.txt", "smile, 1girl")  # no trailing newline
    write(root / "005.txt", "smile, 1girl\r\n")
    write(root / "001.png", "not a caption")
    write(root / "sub" / "006.txt", MESSY)
    write(root / ".cache" / "007.txt", MESSY)
    return root


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --- one caption ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MESSY, CLEAN),
        ("smile, 1girl", "1girl, smile"),
        ("smile, 1girl\r\n", "1girl, smile\r\n"),
        ("\ufeffsmile, 1girl\n", "\ufeff1girl, smile\n"),
        ("smile,\n1girl\n", "1girl, smile\n"),
        ("", ""),
        ("\n", "\n"),
        ("hu_tao_(genshin_impact), 1girl, ^_^", "1girl, hu tao \\(genshin impact\\), ^_^"),
    ],
)
def test_normalise_caption(text: str, expected: str) -> None:
    assert normalise_caption(text) == expected
    assert normalise_caption(expected) == expected  # idempotent


def test_normalise_caption_versions() -> None:
    text = "1girl, masterpiece, smile"
    assert normalise_caption(text, version="v3") == "masterpiece, 1girl, smile"
    assert normalise_caption(text, version="v4") == "1girl, smile, masterpiece"


def test_normalise_caption_syntax_error_position_counts_the_bom() -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        normalise_caption("\ufeff1girl, (smile")
    assert (caught.value.line, caught.value.column) == (1, 9)


# --- finding files --------------------------------------------------------------------------


def test_find_captions(dataset: Path) -> None:
    names = [str(p.relative_to(dataset)) for p in find_captions([dataset])]
    assert names == ["001.txt", "002.txt", "003.txt", "004.txt", "005.txt"]
    names = [str(p.relative_to(dataset)) for p in find_captions([dataset], recursive=True)]
    assert names[-1] == os.path.join("sub", "006.txt")
    assert len(names) == 6  # not the hidden .cache folder
    assert find_captions([dataset / "002.txt"]) == [dataset / "002.txt"]
    assert find_captions([dataset], extension=".png") == [dataset / "001.png"]


def test_find_captions_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as missing:
        find_captions([tmp_path / "missing"])
    assert isinstance(missing.value, FileNotFoundError)
    assert missing.value.filename == str(tmp_path / "missing")
    for extension in ("txt", ".", "*.txt", "./x"):
        with pytest.raises(InvalidArgumentError, match="extension"):
            find_captions([tmp_path], extension=extension)
    with pytest.raises(WrongTypeError, match="extension"):
        find_captions([tmp_path], extension=1)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="single path"):
        find_captions(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="int"):
        find_captions([tmp_path, 3])  # type: ignore[list-item]


# --- normalising files ----------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_normalise_in_place(dataset: Path, jobs: int) -> None:
    paths = find_captions([dataset], recursive=True)
    before = files(dataset)
    report = normalise_captions(paths, jobs=jobs)
    assert isinstance(report, CaptionReport)
    assert [p.name for p in report.changed] == ["001.txt", "004.txt", "005.txt", "006.txt"]
    assert report.unchanged == 1
    assert report.failed == (
        CaptionFailure(
            dataset / "003.txt",
            "syntax",
            "'(' is never closed (escape it as '\\(' if it is part of a tag)",
            2,
            8,
        ),
    )
    assert str(report.failed[0]).startswith(f"{dataset / '003.txt'}:2:8: syntax '(' is never")
    assert (report.total, report.ok, report.checked) == (6, False, False)
    assert (dataset / "001.txt").read_text(encoding="utf-8") == CLEAN
    assert (dataset / "001.txt").stat().st_mode & 0o777 == 0o640  # mode kept
    assert (dataset / "003.txt").read_bytes() == BROKEN.encode()  # untouched
    assert (dataset / "004.txt").read_bytes() == b"1girl, smile"
    assert (dataset / "005.txt").read_bytes() == b"1girl, smile\r\n"
    assert (dataset / ".cache" / "007.txt").read_text(encoding="utf-8") == MESSY
    assert files(dataset) == before  # no temporary files left
    again = normalise_captions(paths, jobs=jobs)
    assert (again.changed, again.unchanged) == ((), 5)


@pytest.mark.parametrize("jobs", [1, 2])
def test_check_writes_nothing(dataset: Path, jobs: int) -> None:
    paths = find_captions([dataset])
    before = {p: p.read_bytes() for p in paths}
    report = normalise_captions(paths, check=True, jobs=jobs)
    assert [p.name for p in report.changed] == ["001.txt", "004.txt", "005.txt"]
    assert report.checked
    assert not report.ok
    assert {p: p.read_bytes() for p in paths} == before


def test_many_files_in_parallel_keep_input_order(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{i:04}.txt", f"tag{i}, smile, 1girl\n") for i in range(300)]
    report = normalise_captions(paths, jobs=2)
    assert list(report.changed) == paths
    assert all(p.read_text(encoding="utf-8").startswith("1girl, ") for p in paths)


def test_unreadable_and_undecodable(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9, 1girl")
    missing = tmp_path / "missing.txt"
    report = normalise_captions([latin1, missing])
    assert [(f.path, f.kind) for f in report.failed] == [(latin1, "read"), (missing, "read")]
    assert "not UTF-8" in report.failed[0].message
    assert str(report.failed[1]) == f"{missing}: read no such file or directory"
    assert latin1.read_bytes() == b"caf\xe9, 1girl"


def test_symlink_target_is_rewritten(tmp_path: Path) -> None:
    target = write(tmp_path / "real" / "a.txt", "smile, 1girl")
    link = tmp_path / "a.txt"
    link.symlink_to(target)
    normalise_captions([link])
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "1girl, smile"


def test_write_atomic_failure_leaves_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.txt", "old")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.txt", "smile, 1girl")

    def fail(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    report = normalise_captions([path])
    assert [(f.kind, f.message) for f in report.failed] == [("write", "permission denied")]
    assert report.changed == ()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UnknownVersionError):
        normalise_captions([], version="v9")
    for jobs in (0, -1):
        with pytest.raises(InvalidArgumentError, match="jobs must be a positive int"):
            normalise_captions([], jobs=jobs)
    for wrong in (True, 1.5, "2"):
        with pytest.raises(WrongTypeError, match="jobs must be a positive int"):
            normalise_captions([], jobs=wrong)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="paths"):
        normalise_captions(42)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="caption text must be a str"):
        normalise_caption(b"1girl")  # type: ignore[arg-type]


def test_too_long_caption_is_a_syntax_failure(tmp_path: Path) -> None:
    body = "a, " * (MAX_PROMPT_CHARS // 3 + 1)
    path = write(tmp_path / "long.txt", "\ufeff" + body)
    with pytest.raises(PromptTooLongError):
        normalise_caption(path.read_text(encoding="utf-8"))
    report = normalise_captions([path])
    assert [(f.kind, f.message.split(";")[0]) for f in report.failed] == [
        ("syntax", f"prompt is {len(body):,} characters long")
    ]


def test_temporary_files_are_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite killed half-way leaves a hidden temporary file that batch cleanup can spot."""
    path = write(tmp_path / "a.txt", "smile, 1girl")
    seen: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: str) -> None:
        seen.append(os.path.basename(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    normalise_captions([path])
    assert len(seen) == 1
    assert seen[0].startswith(".a.txt.")
    assert is_temporary(seen[0])
    assert not is_temporary("a.txt")
    assert find_captions([tmp_path]) == [path]  # hidden: never taken for a caption


# --- the command ----------------------------------------------------------------------------


def test_command_check(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    status = main(["captions", "--check", str(dataset)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out.splitlines() == [str(dataset / n) for n in ("001.txt", "004.txt", "005.txt")]
    assert err.splitlines() == [
        f"{dataset / '003.txt'}:2:8: syntax '(' is never closed (escape it as '\\(' if it is "
        "part of a tag)",
        "5 caption files for v4: 3 would be normalised, 1 unchanged, 1 failed (left untouched)",
    ]
    assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before


def test_command_rewrites_with_jobs(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["captions", "--jobs", "2", "--recursive", "--version", "v3", str(dataset)])
    out, err = capsys.readouterr()
    assert status == 1  # 003.txt does not parse
    assert len(out.splitlines()) == 5  # 002.txt too: 3.0 puts the quality tags first
    assert err.splitlines()[-1] == (
        "6 caption files for v3: 5 normalised, 0 unchanged, 1 failed (left untouched)"
    )
    assert (dataset / "sub" / "006.txt").read_text(encoding="utf-8") == (
        "masterpiece, 1girl, hatsune miku, long hair, smile\n"
    )
    (dataset / "003.txt").unlink()
    assert main(["captions", "--check", "-r", "--version", "v3", str(dataset)]) == 0


def test_command_clean_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.txt", CLEAN)
    assert main(["captions", "--check", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "1 caption files for v4: 0 would be normalised, 1 unchanged\n"


def test_command_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["captions", str(tmp_path)]) == 0
    assert capsys.readouterr().err == f"no *.txt caption files in {tmp_path}\n"


def test_command_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["captions", str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"animagine captions: error: {tmp_path / 'missing'}: No such file or directory\n"


def test_command_bad_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["captions", "--extension", "txt", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("animagine captions: error: extension must look")


# --- crash safety -----------------------------------------------------------------------------

_CHILDREN_OF = "/proc/{pid}/task/{pid}/children"


def _children(pid: int) -> set[int]:
    try:
        with open(_CHILDREN_OF.format(pid=pid), encoding="ascii") as file:
            return {int(part) for part in file.read().split()}
    except OSError:
        return set()


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead worker nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            state = file.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.crash
@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not os.path.exists(_CHILDREN_OF.format(pid=os.getpid())),
    reason="needs Linux and /proc/PID/task/TID/children",
)
def test_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of a `jobs=2` run's parent process: its workers are gone within seconds."""
    # Enough work that the workers are busy for far longer than the test waits for them.
    # About 10 ms of parsing per file on one core: some 15 s for the two workers.
    caption = ", ".join(f"tag {i}" for i in range(2000)) + ", 1girl\n"
    for index in range(1500):
        (tmp_path / f"{index:04}.txt").write_text(caption, encoding="utf-8")
    script = textwrap.dedent(
        f"""
        from animagine.apps.captions import find_captions, normalise_captions
        normalise_captions(find_captions([{str(tmp_path)!r}]), jobs=2, check=True)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            assert parent.poll() is None, "the run ended before its workers could be seen"
            workers = {pid for pid in _children(parent.pid) if _running(pid)}
            time.sleep(0.05)
        assert len(workers) == 2, f"expected 2 workers, found {workers}"
        time.sleep(1.0)  # let them start on their chunks
        assert all(_running(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(pid) for pid in workers):
            time.sleep(0.05)
        left = [pid for pid in workers if _running(pid)]
        assert left == [], f"workers {left} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
