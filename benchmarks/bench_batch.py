"""Benchmark batch generation: items per second with 1 and 2 processes, and the scaling ratio.

Run from the repository root::

    python benchmarks/bench_batch.py            # writes benchmarks/results/batch.md
    python benchmarks/bench_batch.py --quick    # small run for CI; writes no file

Each configuration runs the real command (``python -m animagine batch``, under
``torchrun --standalone --nproc_per_node 2`` for two processes) on the tiny random SDXL of
``animagine.testing`` (64x64), into a fresh folder, and reads its ``--summary-json``. The rate is
items generated per second of the summary's ``work_seconds``: from the moment every process
has its model until the last one is done (start-up and model loading excluded; they are
reported separately as the whole command's wall time).

Configurations: one process on one thread (``OMP_NUM_THREADS=1``) and two processes on one
thread each; with ``--threads``, also one process on two threads. The scaling ratio is two
processes over one process on one thread: the figure that carries over to one process per GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, git_state, packages, write_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "batch.md"

#: What is asked of this benchmark, and by which issue: figures, no numeric target.
TARGET = (
    "No numeric target: issue #4 (Command line, dataset captions, and batch generation) asks for"
    " items per second with 1 and 2 processes on the tiny pipeline, and the scaling ratio."
)

CONFIGS = (
    ("1 process, 1 thread", 1, 1),
    ("2 processes, 1 thread each", 2, 1),
)
#: With --threads: one process using both cores through torch's threads, for comparison. On a
#: shared machine it can be 10x slower than one thread (see the thread trap in TESTING.md).
THREADS_CONFIG = ("1 process, 2 threads", 1, 2)


def run_one(
    work: Path, model: Path, prompts: Path, *, processes: int, threads: int, steps: int, tag: str
) -> dict[str, Any]:
    out = work / f"out-{tag}"
    summary_path = work / f"summary-{tag}.json"
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [
        *launcher, "-m", "animagine", "batch", str(prompts), "-o", str(out),
        "--model", str(model), "--version", "v4", "--width", "64", "--height", "64",
        "--steps", str(steps), "--no-progress", "--summary-json", str(summary_path),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tag} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    summary["wall"] = wall
    summary["load"] = load
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=None, help="prompts in the batch (64)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps per image (8)")
    parser.add_argument("--runs", type=int, default=None, help="runs per configuration (5)")
    parser.add_argument("--quick", action="store_true", help="small run for CI; writes no file")
    parser.add_argument(
        "--threads", action="store_true", help="also time one process on two threads"
    )
    parser.add_argument("--output", default=str(RESULTS), help="report file, or - to only print")
    args = parser.parse_args(argv)
    items = args.items or (8 if args.quick else 64)
    steps = args.steps or (2 if args.quick else 8)
    runs = args.runs or (1 if args.quick else 5)
    began = time.perf_counter()
    configs = (*CONFIGS, THREADS_CONFIG) if args.threads else CONFIGS

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as temp:
        work = Path(temp)
        from animagine.testing import save_tiny_model

        model = save_tiny_model(work / "model", seed=0).folder
        prompts = work / "prompts.txt"
        prompts.write_text("".join(f"1girl, solo, smile, number {n}\n" for n in range(items)))
        results: dict[str, list[dict[str, Any]]] = {}
        for run in range(runs):
            for label, processes, threads in configs:
                tag = f"{processes}p{threads}t-{run}"
                summary = run_one(
                    work, model, prompts, processes=processes, threads=threads, steps=steps, tag=tag
                )
                assert summary["done"] == items, summary
                assert summary["failed"] == 0, summary
                results.setdefault(label, []).append(summary)
                print(
                    f"{label}: {summary['items_per_second']:.2f} items/s"
                    f" (load {summary['load']:.1f}, work {summary['work_seconds']:.2f} s,"
                    f" command {summary['wall']:.1f} s)",
                    file=sys.stderr,
                )

    def rate(label: str) -> float:
        return max(s["items_per_second"] for s in results[label])

    def median_rate(label: str) -> float:
        return statistics.median(s["items_per_second"] for s in results[label])

    base = rate(CONFIGS[0][0])
    lines = [
        "# Batch benchmark",
        "",
        f"`python benchmarks/bench_batch.py{' --quick' if args.quick else ''}`"
        f" ({time.perf_counter() - began:.0f} s in all).",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores,"
        f" {len(os.sched_getaffinity(0))} available; no GPU used",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {packages('torch', 'diffusers', 'transformers', 'accelerate')}",
        f"- Code: {git_state()}",
        "",
        f"Workload: {items} prompts, one 64x64 image each, {steps} steps (Euler a, CFG), on the"
        " tiny random SDXL of `animagine.testing` (seed 0), float32 on the CPU. Each run is the"
        " real command into a fresh folder; two processes run under"
        " `torchrun --standalone --nproc_per_node 2`, which is what `accelerate launch` starts.",
        "",
        f"{runs} run(s) per configuration, the configurations interleaved. The rate is items"
        " per second of work (every process loaded, until the last finished); the best run is"
        " the figure (the machine is shared: other load only slows a run down), the median is"
        " shown beside it, with the 1-minute load average before the runs. The command time"
        " (median) adds interpreter start-up, imports and model loading.",
        "",
        "| Configuration | items/s (best) | median | vs 1 process, 1 thread | command s"
        " | load before |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, _, _ in configs:
        wall = statistics.median(s["wall"] for s in results[label])
        loads = "-".join(f"{s['load']:.1f}" for s in results[label])
        lines.append(
            f"| {label} | {rate(label):.2f} | {median_rate(label):.2f} |"
            f" {rate(label) / base:.2f}x | {wall:.1f} | {loads} |"
        )
    ratio = rate(CONFIGS[1][0]) / base
    lines += [
        "",
        f"**Scaling ratio, 2 processes / 1 process: {ratio:.2f}x** (ideal 2.00x on 2 free cores).",
        "",
        TARGET,
        "",
        "What carries over to GPUs: the batch splits items between processes with no"
        " communication until the end (one barrier and one gather), so the ratio is bounded by"
        " how independent the workers are. Here both processes share one machine's two cores,"
        " memory bandwidth and caches, and the tiny model's per-image overhead (prompt parsing,"
        " text encoding, PNG writing) is a large share of the work; on one GPU per process the"
        " workers share nothing but the file system.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    write_report(report, None if args.quick else args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
