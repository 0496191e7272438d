"""Reliability under hostile but ordinary input: prompt files, images, folders, kills.

The corpus is made here, by hand (PNG chunks with ``struct`` and ``zlib``), so the suite needs
nothing downloaded. ``benchmarks/soak_reliability.py`` runs the same checks with many more kills.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from animagine.apps.batch import (
    LOCK_NAME,
    MANIFEST,
    BatchInputError,
    BatchItem,
    add_batch_arguments,
    main_batch,
    read_batch,
    run_batch,
)
from animagine.errors import AnimagineError, MetadataError

if TYPE_CHECKING:
    from animagine.generation import Generator
    from animagine.testing import TinyModelPaths


SMALL = {"width": 64, "height": 64, "steps": 1, "negative_prompt": "", "add_quality_tags": False}


# --- hostile prompt files ----------------------------------------------------------------------

GOOD = '{"prompt": "1girl, smile"}'
# (line, what the report must say); each is one physical line between good ones.
HOSTILE_JSONL: list[tuple[str, str]] = [
    ('{"prompt": "a", "seed": ' + "9" * 5000 + "}", "not usable JSON"),
    ('{"prompt": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"prompt": "a", "num_images": 1000000000}', "num_images"),
    ('{"prompt": "a", "num_images": ' + "9" * 4000 + "}", "num_images"),
    ('{"prompt": "a", "steps": 1e999}', "steps"),
    ('{"prompt": "a", "guidance_scale": NaN}', "guidance_scale"),
    ('{"prompt": "a", "guidance_scale": -Infinity}', "guidance_scale"),
    ('{"prompt": "a", "steps": true}', "steps"),
    ('{"prompt": "a", "seed": -1}', "seed"),
    ('{"prompt": "a", "width": 65}', "width"),
    ('{"prompt": "a", "cfg": 5}', "unknown option 'cfg'"),
    ('{"prompt": ["a"]}', "prompt"),
    ('{"prompt": null}', "prompt"),
    ("[1, 2, 3]", "JSON object"),
    ('"just a string"', "JSON object"),
    ("{", "not JSON"),
    ('{"prompt": "' + "a, " * 40_000 + '"}', "limit is"),
    ('{"prompt": "a\\u0000b", "hires": {"scale": 1e308}}', "hires"),
    ('{"prompt": "a", "hires": {"scale": 2, "steps": ' + "9" * 100 + "}}", "hires"),
    ('{"prompt": "a", "hires": [1, 2]}', "hires"),
]


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_hostile_jsonl_line_is_one_bad_line_at_its_physical_number(
    tmp_path: Path, newline: str
) -> None:
    lines = [GOOD]
    for line, _ in HOSTILE_JSONL:
        lines += [line, GOOD.replace("smile", "smile,\u2028night")]  # U+2028 splits nothing
    source = write_lines(tmp_path / "in.jsonl", lines, newline)
    tracemalloc.start()
    try:
        items, bad = read_batch(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item.line for item in items] == list(range(1, len(lines) + 1, 2))
    assert [line.line for line in bad] == list(range(2, len(lines) + 1, 2))
    for (line, wanted), report in zip(HOSTILE_JSONL, bad, strict=True):
        assert wanted in report.message, (line[:60], report)
        assert len(report.message) < 400  # a report, not the line echoed back
    # Memory follows the file, not what a rejected line asked for (a billion images).
    assert peak < 40 * 2**20


def test_hostile_csv_and_text_lines(tmp_path: Path) -> None:
    csv_lines = [
        "prompt,seed,num_images",
        '"1girl, smile",1,',
        '"a",1,1000000000',
        '"a",' + "9" * 5000 + ",",
        '"unclosed, 3,',  # swallows the rest as one record: reported at its first line
    ]
    items, bad = read_batch(write_lines(tmp_path / "in.csv", csv_lines))
    assert [item.line for item in items] == [2]
    assert [line.line for line in bad] == [3, 4, 5]
    text = tmp_path / "in.txt"
    text.write_bytes(
        b"\xef\xbb\xbf1girl\r\n\x00\x01 weird\n" + b"a, " * 40_000 + b"\n#c\n\n1boy\xc2\x85x\n"
    )
    items, bad = read_batch(text)
    assert [item.line for item in items] == [1, 2, 6]
    assert [line.line for line in bad] == [3]


def test_a_billion_images_is_refused_by_the_item_itself() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="num_images must be an int from 1 to 64") as info:
        BatchItem(1, {"prompt": "a", "num_images": 1_000_000_000})
    assert isinstance(info.value, AnimagineError)
    with pytest.raises(ValueError, match="a huge int"):
        BatchItem(1, {"prompt": "a", "num_images": 10**4000})
    assert time.monotonic() - started < 1


# --- hostile images -----------------------------------------------------------------------------


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(
    width: int = 4, height: int = 4, *, before: bytes = b"", after: bytes = b"", end: bool = True
) -> bytes:
    """A PNG made by hand: RGB, the declared size, a tiny image data chunk, extra chunks."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\0" + b"\0" * 3 * min(width, 4)) * min(height, 4)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + before
    data += chunk(b"IDAT", zlib.compress(rows)) + after
    return data + (chunk(b"IEND", b"") if end else b"")


def text(key: str, value: bytes) -> bytes:
    return chunk(b"tEXt", key.encode() + b"\0" + value)


def ztxt(key: str, value: bytes) -> bytes:
    return chunk(b"zTXt", key.encode() + b"\0\0" + zlib.compress(value, 9))


def itxt(key: str, value: bytes) -> bytes:
    return chunk(b"iTXt", key.encode() + b"\0\1\0\0\0" + zlib.compress(value, 9))


BOMB_TEXT = b"a" * 300_000_000  # compresses to about 300 KB
NESTED = b"[" * 200_000 + b"]" * 200_000


def hostile_images() -> dict[str, bytes]:
    """Files that must give a MetadataError quickly and in little memory, never anything else."""
    bomb = zlib.compress(BOMB_TEXT, 9)
    return {
        "bomb-70000x70000": png(70_000, 70_000),  # 69 bytes
        "bomb-text-after-data": png(70_000, 70_000, after=text("parameters", b"x")),
        "large-9000x9000": png(9000, 9000, after=text("comment", b"x")),
        "ztxt-bomb": png(before=ztxt("parameters", BOMB_TEXT)),
        "itxt-bomb": png(before=itxt("animagine", BOMB_TEXT)),
        "ztxt-bomb-after-data": png(after=ztxt("metadata", BOMB_TEXT)),
        "ztxt-bomb-other-key": png(before=chunk(b"zTXt", b"comment\0\0" + bomb)),
        "text-60MB": png(before=text("parameters", b"a, " * 20_000_000)),
        "json-nesting-animagine": png(before=text("animagine", NESTED)),
        "json-nesting-demo": png(before=text("metadata", b'{"prompt": ' + NESTED + b"}")),
        "json-nesting-parameters": png(before=text("parameters", b'{"a": ' + NESTED + b"}")),
        "json-huge-int": png(before=text("animagine", b'{"seed": ' + b"9" * 5000 + b"}")),
        "json-not-object": png(before=text("animagine", b"[1, 2]")),
        "truncated-in-header": png()[:20],
        "truncated-in-data": png(64, 64)[:-20],
        "truncated-in-text": png(before=text("parameters", b"x" * 1000))[:120],
        "no-end": png(end=False),
        "bad-crc-text": png(before=text("parameters", b"Steps: 1")[:-1] + b"\0"),
        "bad-zlib-text": png(before=chunk(b"zTXt", b"parameters\0\0not zlib")),
        "bad-utf8-itxt": png(before=chunk(b"iTXt", b"parameters\0\0\0\0\0\xff\xfe")),
        "chunk-length-2GB": b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 2**31) + b"IHDR" + b"\0" * 13,
        "no-header-chunk": b"\x89PNG\r\n\x1a\n" + chunk(b"IEND", b""),
        "zero-size": png(0, 4),
        "many-chunks": png(before=chunk(b"tIME", b"\0" * 7) * 200_000),
        "signature-only": b"\x89PNG\r\n\x1a\n",
        "empty": b"",
        "not-an-image": b"hello\n",
        "jpeg-header-only": b"\xff\xd8\xff\xe0\0\x10JFIF\0",
    }


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, data in hostile_images().items():
        (folder / f"{name}.png").write_bytes(data)
    return folder


@pytest.mark.parametrize("name", sorted(hostile_images()))
def test_a_hostile_image_gives_a_metadata_error_quickly(hostile_folder: Path, name: str) -> None:
    pytest.importorskip("PIL")
    from animagine.metadata import read_parameters

    path = hostile_folder / f"{name}.png"
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(MetadataError) as info:
            read_parameters(path)
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(info.value, ValueError)
    assert seconds < 5
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from animagine.metadata import read_parameters

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(MetadataError, match="not a regular file"):
        read_parameters(tmp_path / "pipe.png")


def test_hostile_images_are_one_line_each_in_info(hostile_folder: Path) -> None:
    pytest.importorskip("PIL")
    files = sorted(str(path) for path in hostile_folder.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "animagine", "info", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == len(files)
    assert all(line.startswith("animagine info: error: ") for line in errors)


def test_our_own_images_still_read_with_a_long_prompt(tmp_path: Path) -> None:
    """The limits leave room for a prompt at the documented size limit."""
    pytest.importorskip("PIL")
    from PIL import Image

    from animagine.core import MAX_PROMPT_CHARS, Prompt
    from animagine.metadata import GenerationParameters, read_parameters, write_png

    prompt = ", ".join(f"(tag {n}:1.2)" for n in range(20_000))[: MAX_PROMPT_CHARS - 20]
    prompt = prompt.rsplit(",", 1)[0]
    parsed = Prompt.parse(prompt, version="v4")
    parameters = GenerationParameters(
        prompt=str(parsed), negative_prompt="", steps=1, sampler="Euler a",
        guidance_scale=5.0, seed=1, width=64, height=64, model="m", version="v4",
        structured_prompt=parsed.to_json(),
    )  # fmt: skip
    path = write_png(Image.new("RGB", (8, 8)), tmp_path / "long.png", parameters)
    assert read_parameters(path) == parameters


# --- batch: ownership, resume, lock, environment ---------------------------------------------


@pytest.fixture
def tiny_generator(tiny_pipeline: Any) -> Generator:
    from animagine.generation import Generator

    return Generator(tiny_pipeline, version="v4", model="tiny")


def _items(*prompts: str, **options: Any) -> list[BatchItem]:
    return [
        BatchItem(n, {"prompt": prompt, **SMALL, **options})
        for n, prompt in enumerate(prompts, start=1)
    ]


def manifest_rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


LOOK_ALIKES = {
    ".holiday.png.backup.tmp": b"a user's backup",
    ".manifest.jsonl.notes.tmp": b"a user's notes",
    ".000001.png.tmp": b"an old-style name",
    ".000001.png.0123456789ab.tmp": b"an old-style name",
    ".000001.png.animagine-0123456789AB.tmp": b"upper-case digits: not ours",
    "000001.png.animagine-0123456789ab.tmp": b"not hidden: not ours",
    "manifest.rank-notes.jsonl": b"not a shard",
    "manifest.rank01.jsonl": b"not a shard either",
    "notes.png": b"not a batch output",
}


@pytest.mark.generate
def test_batch_removes_only_its_own_leftovers(tiny_generator: Generator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, data in LOOK_ALIKES.items():
        (out / name).write_bytes(data)
    # What a SIGKILL leaves: a zero-byte temporary file, and a stopped run's lock file.
    (out / ".000002.png.animagine-0123456789ab.tmp").write_bytes(b"")
    (out / ".manifest.jsonl.animagine-abcdef012345.tmp").write_bytes(b'{"line"')
    (out / LOCK_NAME).write_text('{"pid": 999999999, "host": "gone"}')
    summary = run_batch(tiny_generator, _items("1girl", "1boy"), out, progress=False)
    assert (summary.done, summary.failed) == (2, 0)
    left = _snapshot(out)
    assert {name: left[name] for name in LOOK_ALIKES} == LOOK_ALIKES
    assert sorted(set(left) - set(LOOK_ALIKES)) == ["000001.png", "000002.png", MANIFEST]


@pytest.mark.generate
def test_resume_stops_when_a_line_changed(tiny_generator: Generator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(tiny_generator, _items("1girl", "1boy", "1other"), out, progress=False)
    before = _snapshot(out)

    changed = _items("1girl", "1boy, smile", "1other")
    with pytest.raises(BatchInputError) as info:
        run_batch(tiny_generator, changed, out, progress=False)
    assert [line.line for line in info.value.errors] == [2]
    assert "000002.png was made from something else: prompt was '1boy'" in str(info.value)
    assert "--overwrite" in str(info.value)
    assert _snapshot(out) == before  # nothing done

    # The same without any manifest: the images' own metadata tells.
    (out / MANIFEST).unlink()
    with pytest.raises(BatchInputError, match="1 line"):
        run_batch(tiny_generator, changed, out, progress=False)
    # Another option (steps), another seed base, another model: each is a difference.
    for retry in (
        lambda: run_batch(tiny_generator, _items("1girl", "1boy", steps=2), out, progress=False),
        lambda: run_batch(tiny_generator, _items("1girl"), out, seed=5, progress=False),
    ):
        with pytest.raises(BatchInputError, match="line"):
            retry()
    from animagine.generation import Generator

    other = Generator(tiny_generator.pipeline, version="v4", model="another")
    with pytest.raises(BatchInputError, match="model was 'tiny'"):
        run_batch(other, _items("1girl"), out, progress=False)

    summary = run_batch(tiny_generator, changed, out, overwrite=True, progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    rows = manifest_rows(out)
    assert rows[1]["input"]["prompt"] == "1boy, smile"
    assert rows[1]["parameters"]["prompt"] == "1boy, smile"
    summary = run_batch(tiny_generator, changed, out, progress=False)  # same lines: all skipped
    assert (summary.skipped, summary.done) == (3, 0)


@pytest.mark.generate
def test_resume_recognises_every_option_it_made(tiny_generator: Generator, tmp_path: Path) -> None:
    """Hires, clip skip, several images, defaults: the same lines are skipped, not refused."""
    items = [
        BatchItem(1, {"prompt": "1girl", **SMALL, "steps": 2, "hires": {"scale": 1.5}}),
        BatchItem(2, {"prompt": "1boy, (smile:1.2)", **SMALL, "num_images": 2, "clip_skip": 1}),
        BatchItem(3, {"prompt": "1other", "width": 64, "height": 64, "steps": 1}),
    ]
    out = tmp_path / "out"
    assert run_batch(tiny_generator, items, out, progress=False).done == 3
    rows = manifest_rows(out)
    (out / MANIFEST).unlink()
    (out / "000002-2.png").unlink()  # a run stopped between the images of one line
    summary = run_batch(tiny_generator, items, out, progress=False)
    assert (summary.skipped, summary.done, summary.failed, summary.images) == (2, 1, 0, 1)
    assert manifest_rows(out) == rows


@pytest.mark.generate
def test_resume_of_a_template_line_compares_each_images_own_draw(
    tiny_generator: Generator, tmp_path: Path
) -> None:
    """A line with variants draws each image's prompt from its seed; a rerun skips them all."""
    line = {"prompt": "1girl, {red|blue|green|black} hair", "variants": "random", "num_images": 3}
    items = [BatchItem(1, {**line, **SMALL})]
    out = tmp_path / "out"
    assert run_batch(tiny_generator, items, out, progress=False).images == 3
    prompts = {row["parameters"]["prompt"] for row in manifest_rows(out)}
    (out / MANIFEST).unlink()  # only the images' own metadata can tell now
    summary = run_batch(tiny_generator, items, out, progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (1, 0, 0)
    assert {row["parameters"]["prompt"] for row in manifest_rows(out)} == prompts


@pytest.mark.generate
def test_a_hostile_file_at_an_output_name_fails_its_line_only(
    tiny_generator: Generator, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    images = hostile_images()
    planted = {
        "000002.png": images["bomb-70000x70000"],
        "000003.png": images["ztxt-bomb"],
        "000004.png": images["json-nesting-animagine"],
        "000005.png": images["truncated-in-data"],
    }
    for name, data in planted.items():
        (out / name).write_bytes(data)
    (out / MANIFEST).write_bytes(b'{"file": "000002.png", "line": ' + b"[" * 100_000 + b"\n")
    bad = [2, 3, 4, 5]
    if hasattr(os, "mkfifo"):  # reading it would wait for a writer forever
        os.mkfifo(out / "000007.png")
        bad.append(7)
    summary = run_batch(tiny_generator, _items(*["1girl"] * 7), out, progress=False)
    assert (summary.done, summary.failed) == (7 - len(bad), len(bad))
    assert [failure.line for failure in summary.failures] == bad
    assert all("exists but is not a complete PNG" in f.message for f in summary.failures)
    assert {name: (out / name).read_bytes() for name in planted} == planted  # left alone
    made = [f"{n:06d}.png" for n in range(1, 8) if n not in bad]
    assert [row["file"] for row in manifest_rows(out)] == made


@pytest.mark.generate
def test_a_second_batch_on_the_folder_refuses_with_the_pid(
    tiny_pipeline: Any, tmp_path: Path
) -> None:
    from animagine.generation import Generator

    out = tmp_path / "out"
    refused: list[BaseException] = []

    def build(device: Any) -> Generator:
        # The first batch holds the lock now: a second one on the same folder must refuse.
        try:
            run_batch(Generator(tiny_pipeline, version="v4"), _items("1boy"), out, progress=False)
        except BlockingIOError as error:
            refused.append(error)
        return Generator(tiny_pipeline, version="v4")

    summary = run_batch(build, _items("1girl"), out, progress=False)
    assert summary.done == 1
    assert len(refused) == 1
    assert f"another batch (pid {os.getpid()} on " in str(refused[0])
    assert refused[0].filename == str(out / LOCK_NAME)
    assert not (out / LOCK_NAME).exists()  # released at the end
    assert sorted(os.listdir(out)) == ["000001.png", MANIFEST]  # the second made nothing


@pytest.mark.generate
def test_a_full_disk_stops_the_batch_at_once(
    tiny_pipeline: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import animagine.apps.batch
    from animagine.generation import Generator

    calls = 0

    class Counting(Generator):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return super().__call__(*args, **kwargs)

    real = animagine.apps.batch.write_png

    def writer(image: Any, path: Any, parameters: Any, **options: Any) -> Any:
        if Path(path).name == "000003.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(image, path, parameters, **options)

    monkeypatch.setattr(animagine.apps.batch, "write_png", writer)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="stopped after 2 new image") as info:
        run_batch(
            Counting(tiny_pipeline, version="v4"), _items(*["1girl"] * 8), out, progress=False
        )
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(out / "000003.png")
    assert "stopped after 2 new image(s)" in str(info.value)
    assert calls == 3  # nothing generated after the first failed write
    assert [row["file"] for row in manifest_rows(out)] == ["000001.png", "000002.png"]
    assert sorted(os.listdir(out)) == ["000001.png", "000002.png", MANIFEST]


def test_the_output_folder_and_free_space_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    source = write_lines(tmp_path / "in.txt", ["1girl"])

    def run(out: Path) -> str:
        args = add_batch_arguments(argparse.ArgumentParser()).parse_args(
            [str(source), "-o", str(out)]
        )
        args.model = str(tmp_path / "no-such-model")  # never reached: the folder comes first
        assert main_batch(args) == 2
        return capsys.readouterr().err

    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in run(tmp_path / "file")
    assert "is not a folder" in run(tmp_path / "file" / "out")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=2**20))
    err = run(tmp_path / "out")
    assert err.startswith("animagine batch: error: output ")
    assert "only 1 MiB free" in err
    assert not (tmp_path / "out").exists()


# --- kills at random points --------------------------------------------------------------------


def batch_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def batch_command(source: Path, out: Path, model: Path, *, steps: int = 8) -> list[str]:
    return [
        sys.executable, "-m", "animagine", "batch", str(source), "-o", str(out),
        "--model", str(model), "--version", "v4", "--width", "64", "--height", "64",
        "--steps", str(steps), "--negative-prompt", "", "--no-progress",
    ]  # fmt: skip


def check_folder(out: Path, expected: int | None = None) -> list[str]:
    """Every image in ``out`` complete and in the manifest once; returns the image names."""
    from PIL import Image

    from animagine.metadata import read_parameters

    images = sorted(
        name for name in os.listdir(out) if re.fullmatch(r"[0-9]{6}(-[0-9]+)?\.png", name)
    )
    for name in images:
        with Image.open(out / name) as image:
            image.verify()
        read_parameters(out / name)
    if expected is not None:
        assert images == [f"{n:06d}.png" for n in range(1, expected + 1)]
        rows = manifest_rows(out)
        assert [row["file"] for row in rows] == images
        for row in rows:
            assert read_parameters(out / row["file"]).to_json() == row["parameters"]
        assert sorted(set(os.listdir(out)) - set(images)) == [MANIFEST]
    return images


def kill_and_resume(
    source: Path,
    out: Path,
    model: Path,
    *,
    kills: int,
    lines: int | None,
    rng: random.Random,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[int, int]:
    """Start the batch, SIGKILL it at a random moment, ``kills`` times; then let it finish.

    Half the kills come at any moment from the start (importing, loading the model), half at a
    random moment once the batch holds its folder (checking, generating, writing, merging).
    After every kill, the images there must all be complete (a kill never leaves a torn or
    half-named file); at the end, with ``lines``, exactly one image per line and the manifest
    listing them. Returns the kills that landed on a running batch, and how many of those came
    once it held its folder.
    """
    command = batch_command(source, out, model)
    landed = working = 0
    for number in range(kills):
        process = subprocess.Popen(
            command,
            env=batch_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        started = time.monotonic()
        holding = number % 2 == 1
        if holding:  # wait until it holds the folder (or ends)
            while not (out / LOCK_NAME).exists() and process.poll() is None:
                if time.monotonic() - started > 120:
                    break
                time.sleep(0.01)
        delay = rng.uniform(0.0, 4.0) if holding else rng.uniform(0.5, 10.0)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            landed += 1
            working += holding
        if out.is_dir():
            made = check_folder(out)
            log(f"killed after {time.monotonic() - started:.1f} s: {len(made)} image(s)")
    finish = subprocess.run(command, env=batch_env(), capture_output=True, timeout=300, check=False)
    assert finish.returncode == 0, finish.stderr.decode()[-3000:]
    check_folder(out, lines)
    return landed, working


@pytest.mark.generate
@pytest.mark.crash
def test_killed_at_random_points_and_resumed(
    tiny_model_paths: TinyModelPaths, tmp_path: Path
) -> None:
    lines = 12
    source = write_lines(tmp_path / "in.txt", [f"1girl, number {n}" for n in range(1, lines + 1)])
    out = tmp_path / "out"
    landed, _ = kill_and_resume(
        source, out, tiny_model_paths.folder, kills=3, lines=lines, rng=random.Random(11)
    )
    assert landed >= 1


@pytest.mark.generate
@pytest.mark.crash
def test_two_batch_processes_on_one_folder(
    tiny_model_paths: TinyModelPaths, tmp_path: Path
) -> None:
    """The second refuses with the holder's pid; once the holder is killed, its lock is void."""
    source = write_lines(tmp_path / "in.txt", [f"1girl, number {n}" for n in range(1, 9)])
    out = tmp_path / "out"
    command = batch_command(source, out, tiny_model_paths.folder, steps=200)  # slow: a minute
    first = subprocess.Popen(
        command, env=batch_env(), stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists():
            assert first.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(
            command, env=batch_env(), capture_output=True, timeout=120, check=False
        )
        assert second.returncode == 2
        message = second.stderr.decode()
        assert f"another batch (pid {first.pid} on " in message, message
        assert first.poll() is None  # the refusal came while the first was running
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # it dies holding the lock
        first.wait()
    assert (out / LOCK_NAME).exists()
    quick = [*batch_command(source, out, tiny_model_paths.folder, steps=1), "--overwrite"]
    finish = subprocess.run(quick, env=batch_env(), capture_output=True, timeout=300, check=False)
    assert finish.returncode == 0, finish.stderr.decode()[-3000:]
    check_folder(out, 8)
