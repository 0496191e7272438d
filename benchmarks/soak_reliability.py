"""Soak test: batches killed with SIGKILL many times, and the whole hostile corpus, with figures.

Run from the repository root::

    python benchmarks/soak_reliability.py                  # about 5 minutes; writes the report
    python benchmarks/soak_reliability.py --minutes 30     # longer
    python benchmarks/soak_reliability.py --quick          # one round; writes no file

What it does, round after round until the time is up (each round with its own random seed):

1. the hostile prompt files of ``tests/test_reliability.py`` (every hostile JSONL line between
   good ones, with ``\\n``, ``\\r\\n`` and ``\\r`` line breaks; hostile CSV and text files) are
   read: every hostile line must be a bad line at its physical number, every good line an item;
2. the hostile image corpus is read with ``read_parameters``: each file must give a
   ``MetadataError``, within 5 s;
3. a batch of prompts, into a folder with planted look-alike temporary files, is started with
   the real command and killed with SIGKILL at random moments (importing, loading the model,
   generating, writing, merging; half the kills once the batch holds its folder); after every
   kill the images there must all be complete; then the same command must finish the batch:
   exactly one image per line, the manifest matching the images, every look-alike untouched.

The report (``benchmarks/results/reliability.md``) gives kills survived, lines tried, errors
typed and files lost; the last must be 0, and the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from _machine import cpu_model, git_state, packages, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "reliability.md"
sys.path.insert(0, str(ROOT / "tests"))  # the corpus and checks of the test suite, not a copy

from test_reliability import (  # noqa: E402
    GOOD,
    HOSTILE_JSONL,
    LOOK_ALIKES,
    check_folder,
    hostile_images,
    kill_and_resume,
    write_lines,
)

from animagine.apps.batch import read_batch  # noqa: E402
from animagine.errors import MetadataError  # noqa: E402

TARGET = (
    "Issue #11 (nothing lost, nothing foreign touched): files lost must be 0; every hostile"
    " input must give a typed error (a bad line, a MetadataError), never a traceback."
)


class Figures:
    def __init__(self) -> None:
        self.rounds = 0
        self.kills = 0
        self.kills_landed = 0
        self.kills_working = 0
        self.lines_tried = 0
        self.bad_lines_reported = 0
        self.images_tried = 0
        self.errors_typed = 0
        self.untyped: list[str] = []
        self.files_lost = 0
        self.foreign_touched = 0
        self.batch_lines = 0
        self.slowest_image = 0.0


def hostile_lines(figures: Figures, work: Path) -> None:
    lines = [GOOD]
    for line, _ in HOSTILE_JSONL:
        lines += [line, GOOD]
    for newline in ("\n", "\r\n", "\r"):
        source = write_lines(work / "hostile.jsonl", lines, newline)
        try:
            items, bad = read_batch(source)
        except Exception:  # counted: must never happen
            figures.untyped.append(f"jsonl: {traceback.format_exc(limit=1)}")
            continue
        figures.lines_tried += len(lines)
        figures.bad_lines_reported += len(bad)
        wanted_bad = list(range(2, len(lines) + 1, 2))
        if [line.line for line in bad] != wanted_bad or len(items) != len(lines) - len(bad):
            figures.untyped.append(f"jsonl ({newline!r}): wrong lines reported")
        else:
            figures.errors_typed += len(bad)
    csv_lines = ["prompt,seed,num_images", '"a",1,', '"a",1,1000000000', '"a",' + "9" * 5000 + ","]
    source = write_lines(work / "hostile.csv", csv_lines)
    items, bad = read_batch(source)
    figures.lines_tried += len(csv_lines) - 1
    figures.bad_lines_reported += len(bad)
    figures.errors_typed += len(bad)
    if [line.line for line in bad] != [3, 4]:
        figures.untyped.append("csv: wrong lines reported")


def hostile_files(figures: Figures, work: Path) -> None:
    from animagine.metadata import read_parameters

    for name, data in hostile_images().items():
        path = work / f"{name}.png"
        path.write_bytes(data)
        figures.images_tried += 1
        started = time.monotonic()
        try:
            read_parameters(path)
        except MetadataError:
            figures.errors_typed += 1
        except Exception as error:  # counted: must never happen
            figures.untyped.append(f"{name}: {type(error).__name__}: {error}")
        else:
            figures.untyped.append(f"{name}: read as parameters")
        figures.slowest_image = max(figures.slowest_image, time.monotonic() - started)
        path.unlink()


def killed_batch(figures: Figures, work: Path, model: Path, rng: random.Random, kills: int) -> None:
    lines = rng.randint(6, 16)
    source = write_lines(work / "prompts.txt", [f"1girl, number {n}" for n in range(lines)])
    out = work / f"out-{figures.rounds}"
    out.mkdir()
    for name, data in LOOK_ALIKES.items():
        (out / name).write_bytes(data)
    figures.batch_lines += lines
    # A failed final run is counted below, by what it lost.
    with contextlib.suppress(AssertionError):
        landed, working = kill_and_resume(
            source, out, model, kills=kills, lines=None, rng=rng, log=lambda message: None
        )
        figures.kills_landed += landed
        figures.kills_working += working
    figures.kills += kills
    expected = [f"{n:06d}.png" for n in range(1, lines + 1)]
    try:
        made = check_folder(out)
    except Exception:  # a torn image
        made = []
    figures.files_lost += len(set(expected) - set(made))
    figures.foreign_touched += sum(
        not (out / name).is_file() or (out / name).read_bytes() != data
        for name, data in LOOK_ALIKES.items()
    )
    # The manifest must list exactly the images, each as its metadata says.
    for name in LOOK_ALIKES:
        (out / name).unlink(missing_ok=True)
    try:
        check_folder(out, lines)
    except AssertionError as error:
        figures.untyped.append(f"round {figures.rounds}: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long (default: 5)")
    parser.add_argument("--kills", type=int, default=4, help="kills per batch (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quick", action="store_true", help="one round; write no file")
    parser.add_argument("--output", default=str(RESULTS), help="report file ('-': none)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = random.Random(args.seed)
    figures = Figures()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as temp:
        work = Path(temp)
        from animagine.testing import save_tiny_model

        model = save_tiny_model(work / "model", seed=0).folder
        while True:
            figures.rounds += 1
            hostile_lines(figures, work)
            hostile_files(figures, work)
            killed_batch(figures, work, model, rng, args.kills)
            elapsed = time.monotonic() - began
            print(
                f"round {figures.rounds}: {figures.kills_landed} kills landed,"
                f" {figures.files_lost} files lost, {len(figures.untyped)} untyped,"
                f" {elapsed:.0f} s",
                file=sys.stderr,
            )
            if args.quick or elapsed > args.minutes * 60:
                break
    seconds = time.monotonic() - began
    report = render(figures, seconds, args)
    print(report)
    if not args.quick:
        write_report(report, args.output)
    failed = figures.files_lost or figures.untyped or figures.foreign_touched
    return 1 if failed else 0


def render(figures: Figures, seconds: float, args: argparse.Namespace) -> str:
    lines = [
        "# Reliability soak",
        "",
        f"`python benchmarks/soak_reliability.py --minutes {args.minutes:g} --kills {args.kills}"
        f" --seed {args.seed}` ({seconds:.0f} s in all).",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores; no GPU used",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {packages('torch', 'diffusers', 'transformers', 'accelerate', 'pillow')}",
        f"- Code: {git_state()}",
        "",
        f"Target: {TARGET}",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| Rounds | {figures.rounds} |",
        f"| Kills sent (SIGKILL) | {figures.kills} |",
        f"| Kills survived (landed on a running batch, then resumed) | {figures.kills_landed} |",
        f"| ... of which once the batch held its folder | {figures.kills_working} |",
        f"| Batch lines made through the kills | {figures.batch_lines} |",
        f"| Hostile prompt-file lines tried | {figures.lines_tried} |",
        f"| Hostile images tried | {figures.images_tried} |",
        f"| Errors typed (bad lines at their number, MetadataError) | {figures.errors_typed} |",
        f"| Untyped errors or wrong reports | {len(figures.untyped)} |",
        f"| Slowest hostile image | {figures.slowest_image:.2f} s |",
        f"| Look-alike user files touched | {figures.foreign_touched} |",
        f"| **Files lost or torn** | **{figures.files_lost}** |",
        "",
        "Each round: the hostile JSONL corpus with three kinds of line break and a hostile CSV;",
        "the hostile image corpus (decompression bombs, zTXt/iTXt bombs, a 60 MB text chunk,",
        "JSON nesting, truncated files, bad CRCs...); then a batch of 6 to 16 prompts on the",
        "tiny random SDXL, into a folder holding look-alike temporary files, started with the",
        "real command and killed with SIGKILL the given number of times, then run to the end:",
        "half the kills at a random 0.5 to 10 s from the start (importing, loading the model),",
        "half at a random 0 to 4 s once the batch holds its folder (checking, generating,",
        "writing, merging). After",
        "every kill each image present must be complete; at the end there must be exactly one",
        "image per line, the manifest must list exactly those images as their metadata says,",
        "and the look-alikes must be untouched.",
    ]
    if figures.untyped:
        lines += ["", "## Problems", "", *(f"- {problem}" for problem in figures.untyped[:50])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
