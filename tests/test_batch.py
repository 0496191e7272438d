"""Batch generation: input files, outputs and manifest, resume after a real kill, 2 processes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from animagine.apps.batch import (
    MANIFEST,
    BadLine,
    BatchInputError,
    BatchInterrupted,
    BatchItem,
    add_batch_arguments,
    derive_seed,
    main_batch,
    output_names,
    read_batch,
    run_batch,
)
from animagine.generation import OPTION_NAMES, GenerationOptions

if TYPE_CHECKING:
    from animagine.generation import Generator
    from animagine.testing import TinyModelPaths


DATA = Path(__file__).parent / "data" / "batch"
SMALL = {"width": 64, "height": 64, "steps": 1, "negative_prompt": "", "add_quality_tags": False}


# --- input --------------------------------------------------------------------------------------


def test_read_text_skips_blank_and_comment_lines() -> None:
    items, bad = read_batch(DATA / "prompts.txt")
    assert bad == ()
    assert [(item.line, item.options["prompt"]) for item in items] == [
        (2, "1girl, arima kana, oshi no ko, smile"),
        (4, "1boy, solo, looking at viewer"),
        (5, "1girl, (red hair:1.2), night sky"),
    ]


def test_read_jsonl_reports_bad_lines_by_number() -> None:
    items, bad = read_batch(DATA / "prompts.jsonl")
    assert [item.line for item in items] == [1, 2, 10]
    assert dict(items[0].options) == {
        "prompt": "1girl, smile", "seed": 7, "width": 64, "height": 64, "steps": 2,
    }  # fmt: skip
    assert items[1].options["guidance_scale"] == 6.0
    assert items[1].num_images == 2
    assert "negative_prompt" not in items[2].options  # null: the default applies
    assert items[2].options["add_quality_tags"] is False
    assert [line.line for line in bad] == [3, 5, 6, 7, 8, 9]
    messages = {line.line: line.message for line in bad}
    assert messages[3].startswith("not JSON")
    assert "JSON object" in messages[5]
    assert "steps must be an int" in messages[6]
    assert "unknown option 'cfg'" in messages[7]
    assert messages[8] == "no prompt"
    assert "seed" in messages[9]


def test_read_csv_converts_cells_and_numbers_records_by_first_line() -> None:
    items, bad = read_batch(DATA / "prompts.csv")
    assert [item.line for item in items] == [2, 3, 8]
    assert dict(items[0].options) == {
        "prompt": "1girl, smile", "seed": 11, "steps": 2, "add_quality_tags": True,
        "guidance_scale": 5.5,
    }  # fmt: skip
    assert dict(items[1].options) == {"prompt": "1girl,\nmultiline", "add_quality_tags": False}
    assert items[2].options["seed"] == 13
    assert bad == (
        BadLine(5, "seed must be an integer, got 'twelve'"),
        BadLine(6, "3 fields, the header has 5"),
    )


def test_strict_lists_every_bad_line() -> None:
    with pytest.raises(BatchInputError) as info:
        read_batch(DATA / "prompts.jsonl", strict=True)
    assert [line.line for line in info.value.errors] == [3, 5, 6, 7, 8, 9]
    assert "line 7: unknown option 'cfg'" in str(info.value)


def test_defaults_fill_what_a_line_does_not_set(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"prompt": "a", "steps": 5}\n{"prompt": "b", "aspect": "square"}\n{"prompt": "c"}\n'
    )
    items, _ = read_batch(source, defaults={"steps": 2, "width": 64, "height": 72, "seed": None})
    assert dict(items[0].options) == {"prompt": "a", "steps": 5, "width": 64, "height": 72}
    # a line that sets its size takes no size from the defaults (no aspect/width conflict)
    assert dict(items[1].options) == {"prompt": "b", "aspect": "square", "steps": 2}
    assert dict(items[2].options) == {"prompt": "c", "steps": 2, "width": 64, "height": 72}
    with pytest.raises(BatchInputError, match="bad default"):
        read_batch(source, defaults={"cfg": 5})


def test_format_option_and_errors(tmp_path: Path) -> None:
    source = tmp_path / "prompts.list"
    source.write_text('{"prompt": "a"}\n')
    items, _ = read_batch(source)  # unknown suffix: text
    assert items[0].options["prompt"] == '{"prompt": "a"}'
    items, _ = read_batch(source, format="jsonl")
    assert items[0].options["prompt"] == "a"
    with pytest.raises(BatchInputError, match="format"):
        read_batch(source, format="xml")  # type: ignore[arg-type]
    source.write_bytes(b"\xff\xfe bad")
    with pytest.raises(BatchInputError, match="UTF-8"):
        read_batch(source)
    with pytest.raises(FileNotFoundError):
        read_batch(tmp_path / "missing.txt")


def test_output_names_and_seeds() -> None:
    assert output_names(BatchItem(7, {"prompt": "a"})) == ("000007.png",)
    assert output_names(BatchItem(7, {"prompt": "a", "num_images": 2})) == (
        "000007-1.png",
        "000007-2.png",
    )
    assert derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2) != derive_seed(1, 2)
    assert 0 <= derive_seed(5, 10) < 2**32
    with pytest.raises(TypeError, match="unknown option 'cfg'"):
        BatchItem(1, {"prompt": "a", "cfg": 3})


@pytest.mark.generate
def test_strict_cli_stops_before_loading_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_paths: TinyModelPaths
) -> None:
    out = tmp_path / "out"
    args = _parse([str(DATA / "prompts.jsonl"), "-o", str(out), "--strict"])
    args.model = str(tmp_path / "no-such-model")  # the flags are checked first
    assert main_batch(args) == 2
    assert capsys.readouterr().err.startswith("animagine batch: error: ")
    args.model, args.model_version = str(tiny_model_paths.folder), "v4"
    assert main_batch(args) == 2  # bad lines, --strict: nothing loaded, nothing made
    err = capsys.readouterr().err
    assert "prompts.jsonl:7: unknown option 'cfg'" in err
    assert "nothing done" in err
    assert not out.exists()


def test_import_stays_light() -> None:
    code = (
        "import sys, animagine.apps.batch;"
        " print(sorted({'torch', 'diffusers', 'accelerate', 'PIL'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# --- generating in this process -----------------------------------------------------------------


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    return add_batch_arguments(argparse.ArgumentParser()).parse_args(argv)


@pytest.fixture
def tiny_generator(tiny_pipeline: Any) -> Generator:
    from animagine.generation import Generator

    return Generator(tiny_pipeline, version="v4", model="tiny")


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def _pngs(out: Path) -> list[str]:
    return sorted(name for name in os.listdir(out) if name.endswith(".png"))


def _leftovers(out: Path) -> list[str]:
    return sorted(name for name in os.listdir(out) if name.startswith(".") or "rank" in name)


@pytest.mark.generate
def test_run_batch_writes_images_and_manifest(tiny_generator: Generator, tmp_path: Path) -> None:
    from animagine.metadata import read_parameters

    items = [
        BatchItem(3, {"prompt": "1girl, smile", **SMALL, "seed": 42}),
        BatchItem(1, {"prompt": "1boy", **SMALL, "num_images": 2}),
    ]
    summary = run_batch(tiny_generator, items, tmp_path, seed=9, progress=False)
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (2, 2, 0, 0)
    assert summary.images == 3
    assert summary.manifest == tmp_path / MANIFEST
    assert _pngs(tmp_path) == ["000001-1.png", "000001-2.png", "000003.png"]
    assert _leftovers(tmp_path) == []
    rows = _manifest(tmp_path)
    assert [(row["line"], row["image"], row["file"]) for row in rows] == [
        (1, 1, "000001-1.png"),
        (1, 2, "000001-2.png"),
        (3, 1, "000003.png"),
    ]
    first = derive_seed(9, 1)
    assert [row["seed"] for row in rows] == [first, first + 1, 42]
    assert rows[0]["input"] == {"prompt": "1boy", **SMALL, "num_images": 2, "seed": first}
    for row in rows:
        assert row["parameters"] == read_parameters(tmp_path / row["file"]).to_json()
    assert rows[2]["parameters"]["prompt"] == "1girl, smile"
    assert summary.describe().startswith("batch: 2 items: 2 done, 0 skipped, 0 failed in ")


@pytest.mark.generate
def test_rerun_skips_never_overwrites_and_rebuilds_the_manifest(
    tiny_generator: Generator, tmp_path: Path
) -> None:
    items = [BatchItem(n, {"prompt": f"1girl, {n}", **SMALL}) for n in (1, 2, 3)]
    run_batch(tiny_generator, items, tmp_path, progress=False)
    rows = _manifest(tmp_path)
    (tmp_path / MANIFEST).unlink()
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in _pngs(tmp_path)}
    (tmp_path / "000002.png").unlink()
    (tmp_path / "000003.png").write_bytes(b"not a png")  # someone else's file

    summary = run_batch(tiny_generator, items, tmp_path, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 1)
    assert summary.failures[0].line == 3
    assert "000003.png exists but is not a complete PNG" in summary.failures[0].message
    assert (tmp_path / "000003.png").read_bytes() == b"not a png"
    assert (tmp_path / "000001.png").stat().st_mtime_ns == before["000001.png"]
    assert _manifest(tmp_path) == rows[:2]  # same seeds, same images, same rows

    summary = run_batch(tiny_generator, items, tmp_path, overwrite=True, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, 0)
    assert _manifest(tmp_path) == rows
    assert _leftovers(tmp_path) == []


@pytest.mark.generate
def test_hires_as_a_number_or_an_object(tiny_generator: Generator, tmp_path: Path) -> None:
    from PIL import Image

    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"prompt": "1girl", "hires": 1.5}\n'
        '{"prompt": "1boy", "hires": {"scale": 2, "strength": 0.5, "upscaler": "Latent"}}\n'
        '{"prompt": "1boy", "hires": {"scale": 2, "denoise": 0.5}}\n'
        '{"prompt": "1girl", "hires": {"scale": 1.5}}\n'
    )
    items, bad = read_batch(source, defaults={**SMALL, "steps": 2})  # 1 hires step at 0.5
    assert bad == (
        BadLine(3, "unknown hires key(s) 'denoise'; hires takes scale, strength, upscaler, steps"),
    )
    summary = run_batch(tiny_generator, items, tmp_path / "out", progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    rows = _manifest(tmp_path / "out")
    # A partial object takes the demo's defaults, as a bare number does.
    assert rows[2]["parameters"]["hires"] == rows[0]["parameters"]["hires"]
    assert rows[1]["input"]["hires"] == {"scale": 2, "strength": 0.5, "upscaler": "Latent"}
    assert rows[1]["parameters"]["hires"]["upscaler"] == "Latent"
    with Image.open(tmp_path / "out" / "000001.png") as image:
        assert image.size == (96, 96)


@pytest.mark.generate
def test_invalid_options_fail_by_line_or_stop_strict(
    tiny_generator: Generator, tmp_path: Path
) -> None:
    items = [
        BatchItem(1, {"prompt": "1girl", **SMALL}),
        BatchItem(2, {"prompt": "1girl", **SMALL, "width": 68}),
        BatchItem(3, {"prompt": "1girl, (smile", **SMALL}),
        BatchItem(4, {"prompt": "1girl", **SMALL, "sampler": "Nope"}),
    ]
    with pytest.raises(BatchInputError) as info:
        run_batch(tiny_generator, items, tmp_path / "strict", strict=True, progress=False)
    assert [line.line for line in info.value.errors] == [2, 3, 4]
    assert info.value.errors[0].message.startswith("width must be a multiple of 8, got 68")
    assert info.value.errors[1].message.startswith("'(' is never closed")
    assert "unknown sampler 'Nope'" in info.value.errors[2].message
    assert _pngs(tmp_path / "strict") == []

    summary = run_batch(tiny_generator, items, tmp_path / "lenient", progress=False)
    assert (summary.done, summary.failed) == (1, 3)
    assert [failure.line for failure in summary.failures] == [2, 3, 4]
    assert _pngs(tmp_path / "lenient") == ["000001.png"]
    with pytest.raises(BatchInputError, match="same line"):
        run_batch(tiny_generator, items[:1] * 2, tmp_path, progress=False)


@pytest.mark.generate
def test_keyboard_interrupt_leaves_finished_items_and_no_temp_files(
    tiny_pipeline: Any, tmp_path: Path
) -> None:
    from animagine.generation import Generator

    class StopsAtThirdCall(Generator):
        calls = 0

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            StopsAtThirdCall.calls += 1
            if StopsAtThirdCall.calls == 3:
                raise KeyboardInterrupt
            return super().__call__(*args, **kwargs)

    items = [BatchItem(n, {"prompt": "1girl", **SMALL}) for n in range(1, 6)]
    with pytest.raises(BatchInterrupted) as info:
        run_batch(
            lambda device: StopsAtThirdCall(tiny_pipeline, version="v4"),
            items,
            tmp_path,
            progress=False,
        )
    summary = info.value.summary
    assert (summary.interrupted, summary.done, summary.remaining) == (True, 2, 3)
    assert summary.describe().startswith("interrupted: 5 items: 2 done")
    assert _pngs(tmp_path) == ["000001.png", "000002.png"]
    assert [row["line"] for row in _manifest(tmp_path)] == [1, 2]
    assert _leftovers(tmp_path) == []


@pytest.mark.generate
def test_cli_with_a_single_file_checkpoint(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "prompts.csv"
    source.write_text('prompt,steps\n"1girl, smile",1\n"1boy",70000\n')
    out = tmp_path / "out"
    argv = [str(source), "-o", str(out), "--model", str(tiny_model_paths.single_file)]
    argv += ["--config", str(tiny_model_paths.folder), "--version", "v4"]
    argv += ["--width", "64", "--height", "64", "--no-progress", "--no-quality-tags"]
    assert main_batch(_parse(argv)) == 1  # line 3 is bad, line 2 is made
    captured = capsys.readouterr()
    assert "batch: 1 items: 1 done, 0 skipped, 0 failed" in captured.out
    assert "prompts.csv:3: steps must be between 1 and 200, got 70000" in captured.err
    assert [row["file"] for row in _manifest(out)] == ["000002.png"]
    assert _manifest(out)[0]["parameters"]["model"] == "tiny-sdxl"


# --- real processes -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _command(
    launcher: Sequence[str], source: Path, out: Path, model: Path, steps: int
) -> list[str]:
    return [
        *launcher,
        "-m",
        "animagine",
        "batch",
        str(source),
        "-o",
        str(out),
        "--model",
        str(model),
        "--version",
        "v4",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        str(steps),
        "--negative-prompt",
        "",
        "--no-progress",
        "--summary-json",
        str(out.parent / f"summary-{out.name}.json"),
    ]


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    source = tmp_path / "prompts.txt"
    source.write_text("".join(f"1girl, number {n}\n" for n in range(1, 9)))
    return source


def _wait_for_pngs(process: subprocess.Popen[bytes], out: Path, count: int) -> None:
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        if out.is_dir() and len(_pngs(out)) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"the batch ended (status {process.returncode}) before {count} image(s)")
        time.sleep(0.02)
    pytest.fail("no image in 100 s")


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    # A session of its own: the kill takes the launcher and all its workers, as a crash would.
    # Output to a file: a full pipe nobody reads would block the batch.
    with open(log, "wb") as file:
        return subprocess.Popen(
            command,
            env=_env(),
            stdout=file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and all its descendants (torchrun starts its workers in new sessions)."""
    import psutil  # accelerate's dependency

    try:
        family = [*psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(family, timeout=30)


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            _kill_tree(process)


def _check_complete(out: Path, lines: int) -> None:
    from PIL import Image

    from animagine.metadata import read_parameters

    names = [f"{n:06d}.png" for n in range(1, lines + 1)]
    assert _pngs(out) == names  # exactly one image per line
    assert _leftovers(out) == []  # no temporary file, no shard
    rows = _manifest(out)
    assert [row["file"] for row in rows] == names
    for row in rows:
        with Image.open(out / row["file"]) as image:
            image.verify()
        parameters = read_parameters(out / row["file"])
        assert parameters.to_json() == row["parameters"]
        assert parameters.seed == row["seed"] == derive_seed(0, row["line"])


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out.parent / f"summary-{out.name}.json").read_text())
    return data


@pytest.mark.generate
@pytest.mark.crash
def test_resume_after_sigint_and_sigkill(
    tiny_model_paths: TinyModelPaths,
    prompt_file: Path,
    tmp_path: Path,
    reaper: list[subprocess.Popen[bytes]],
) -> None:
    out = tmp_path / "out"
    command = _command([sys.executable], prompt_file, out, tiny_model_paths.folder, steps=25)

    log = tmp_path / "log.txt"
    process = _start(command, log)
    reaper.append(process)
    _wait_for_pngs(process, out, 1)
    process.send_signal(signal.SIGINT)  # Ctrl-C: clean stop, summary, 130
    process.wait(timeout=60)
    assert process.returncode == 130, log.read_text()[-3000:]
    assert "interrupted: 8 items:" in log.read_text()
    assert _leftovers(out) == []
    assert _summary(out)["interrupted"] is True
    stopped_at = len(_pngs(out))
    assert 1 <= stopped_at < 8
    assert [row["line"] for row in _manifest(out)] == list(range(1, stopped_at + 1))

    process = _start(command, log)
    reaper.append(process)
    _wait_for_pngs(process, out, stopped_at + 1)
    _kill_tree(process)  # a crash: nothing cleaned up
    killed_at = len(_pngs(out))
    assert stopped_at < killed_at < 8

    finish = subprocess.run(command, env=_env(), capture_output=True, timeout=120, check=False)
    assert finish.returncode == 0, finish.stderr.decode()
    summary = _summary(out)
    assert summary["skipped"] == killed_at
    assert summary["done"] == 8 - killed_at
    assert summary["failed"] == 0
    assert "batch: 8 items:" in finish.stdout.decode()
    _check_complete(out, 8)


@pytest.mark.generate
@pytest.mark.crash
def test_two_processes_each_item_once_with_kill_and_resume(
    tiny_model_paths: TinyModelPaths,
    prompt_file: Path,
    tmp_path: Path,
    reaper: list[subprocess.Popen[bytes]],
) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    out = tmp_path / "out"
    command = _command(torchrun, prompt_file, out, tiny_model_paths.folder, steps=25)
    log = tmp_path / "log.txt"
    process = _start(command, log)
    reaper.append(process)
    _wait_for_pngs(process, out, 1)
    _kill_tree(process)  # a crash of the launcher and both workers
    killed_at = len(_pngs(out))
    assert killed_at < 8
    assert not (out / MANIFEST).exists()  # no process got to the merge

    finish = subprocess.run(command, env=_env(), capture_output=True, timeout=120, check=False)
    assert finish.returncode == 0, finish.stderr.decode()[-3000:]
    assert "on 2 processes" in finish.stdout.decode()
    summary = _summary(out)
    # A second write of an item would fail (images are never overwritten), so done + skipped
    # == 8 with no failure means every item was made exactly once.
    assert summary["processes"] == 2
    assert (summary["skipped"], summary["done"], summary["failed"]) == (
        killed_at,
        8 - killed_at,
        0,
    )
    assert summary["images"] == 8 - killed_at
    _check_complete(out, 8)  # the same seeds as one process would use


def test_a_prompt_over_the_limit_is_one_bad_line_reported_at_once(tmp_path: Path) -> None:
    """A 10 MB line is refused by its length before any parsing, with its line number."""
    from animagine.core import MAX_PROMPT_CHARS

    source = tmp_path / "in.txt"
    source.write_text("1girl, smile\n" + "a, " * 3_500_000 + "\n1boy\n", encoding="utf-8")
    items, bad = read_batch(source)
    assert [item.line for item in items] == [1, 3]
    assert [line.line for line in bad] == [2]
    assert f"the limit is {MAX_PROMPT_CHARS:,}" in bad[0].message


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)
_LINE = st.one_of(
    st.text(max_size=60),
    st.dictionaries(st.sampled_from([*OPTION_NAMES, "cfg", ""]), _JSON_VALUES, max_size=5).map(
        json.dumps
    ),
    st.just('{"prompt": "1girl", "seed": ' + "9" * 5000 + "}"),
    st.just('{"prompt": "1girl", "x": ' + "[" * 5000 + "]" * 5000 + "}"),
)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(_LINE, max_size=6), kind=st.sampled_from(["txt", "jsonl", "csv"]))
def test_any_input_file_gives_items_bad_lines_or_a_batch_input_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], kind: str
) -> None:
    """Whatever a prompt file holds, reading it never raises anything but BatchInputError."""
    source = tmp_path_factory.mktemp("in") / f"in.{kind}"
    source.write_text("\n".join(lines), encoding="utf-8")
    try:
        items, bad = read_batch(source)
    except BatchInputError:
        return
    numbers = [item.line for item in items] + [line.line for line in bad]
    assert len(numbers) == len(set(numbers))  # a line is an item or a bad line, not both
    for item in items:
        assert isinstance(item.generation_options(), GenerationOptions)


def test_lines_are_split_only_at_line_breaks(tmp_path: Path) -> None:
    """U+2028 and U+0085 inside a JSON string do not split the line or shift the numbering."""
    source = tmp_path / "in.jsonl"
    rows = [{"prompt": "1girl,\u2028smile"}, {"prompt": "1boy\u0085night"}, {"prompt": "1other"}]
    source.write_text(
        "\r\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\r", encoding="utf-8"
    )
    items, bad = read_batch(source)
    assert bad == ()
    assert [item.line for item in items] == [1, 2, 3]
    assert items[0].options["prompt"] == "1girl,\u2028smile"
    assert output_names(items[2]) == ("000003.png",)
    text = tmp_path / "in.txt"
    text.write_text("a\u2028b\rc\n\nd", encoding="utf-8")
    assert [item.line for item in read_batch(text)[0]] == [1, 2, 4]


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_an_unusable_summary_path_is_found_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    summary = tmp_path / "nope" / "s.json" if where == "missing-folder" else tmp_path
    out = tmp_path / "out"
    args = _parse([str(DATA / "prompts.txt"), "-o", str(out), "--summary-json", str(summary)])
    args.model = str(tmp_path / "no-such-model")  # never reached
    assert main_batch(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("animagine batch: error: --summary-json")
    assert err.count("\n") == 1
    assert not out.exists()
