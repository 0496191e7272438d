"""Benchmark the shipped tag database: load time, memory, lookups per second.

Run from the repository root::

    python benchmarks/bench_tagdb.py            # writes benchmarks/results/tagdb.md
    python benchmarks/bench_tagdb.py --runs 9 --output -   # print instead

Load time and memory are measured in fresh subprocesses (the default database is loaded on its
first lookup, so each child imports animagine, then times that first lookup). Targets: under
150 ms and under 60 MB of added memory (tracemalloc peak and RSS delta).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "tagdb.md"
LOAD_TARGET_MS = 150.0
MEMORY_TARGET_MB = 60.0
MB = 1_000_000

# Runs in a fresh interpreter. Prints one JSON object.
CHILD = r"""
import json, sys, time, tracemalloc

sys.path.insert(0, sys.argv[1])
trace = sys.argv[2] == "tracemalloc"


def status(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


started = time.perf_counter()
from animagine.core import TagDatabase
imported = time.perf_counter()
db = TagDatabase.default()
assert not db.loaded, "default() must not read the file"
heavy = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
if trace:
    tracemalloc.start()
rss_before = status("VmRSS")
hwm_before = status("VmHWM")
t0 = time.perf_counter()
db.kind("arima kana")
t1 = time.perf_counter()
result = {
    "import_s": imported - started,
    "load_s": t1 - t0,
    "rss_delta": status("VmRSS") - rss_before,
    "peak_rss_delta": max(0, status("VmHWM") - max(hwm_before, rss_before)),
    "heavy_modules": heavy,
}
if trace:
    result["traced_current"], result["traced_peak"] = tracemalloc.get_traced_memory()
print(json.dumps(result))
"""


def child(mode: str) -> dict[str, Any]:
    """Run one fresh interpreter and return what it measured."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def rate(function: Callable[[str], object], names: Sequence[str], repeat: int = 5) -> float:
    """Best-of-``repeat`` calls per second of ``function`` over ``names``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for name in names:
            function(name)
        best = min(best, time.perf_counter() - start)
    return len(names) / best


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> str:
    logical = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    return f"{usable} usable ({logical} logical)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per measurement")
    parser.add_argument("--lookups", type=int, default=100_000, help="names per lookup batch")
    parser.add_argument("--output", default=str(RESULTS), help="markdown file, or - for stdout")
    args = parser.parse_args(argv)

    from animagine.core import DEFAULT_TAGDB_FILE, TagDatabase

    child("plain")  # warm the OS file cache and bytecode caches; not counted
    timings = [child("plain") for _ in range(args.runs)]
    traced = [child("tracemalloc") for _ in range(args.runs)]
    load_ms = statistics.median(run["load_s"] for run in timings) * 1000
    load_all = ", ".join(f"{run['load_s'] * 1000:.0f}" for run in timings)
    import_ms = statistics.median(run["import_s"] for run in timings) * 1000
    rss_mb = statistics.median(run["rss_delta"] for run in timings) / MB
    peak_rss_mb = statistics.median(run["peak_rss_delta"] for run in timings) / MB
    traced_peak_mb = statistics.median(run["traced_peak"] for run in traced) / MB
    traced_now_mb = statistics.median(run["traced_current"] for run in traced) / MB
    heavy = sorted({module for run in timings for module in run["heavy_modules"]})

    # Lookup speed, in this process, on the loaded database.
    db = TagDatabase.default().load()
    rng = random.Random(1234)
    with_qualifier: list[str] = []
    plain: list[str] = []
    for name in db.names():
        (with_qualifier if name.endswith(")") else plain).append(name)
    known = rng.sample(plain + with_qualifier, args.lookups)
    underscored = [name.replace(" ", "_").title() for name in known]
    misses = [f"{name} zz" for name in known]
    characters = [rng.choice(with_qualifier) for _ in range(args.lookups)]
    mixed = [*known[: args.lookups // 2], *misses[: args.lookups // 2]]
    union = db | TagDatabase.from_names(characters=["my oc"], series=["my series"])
    rates = {
        "`kind()`, known names as stored": rate(db.kind, known),
        "`kind()`, `Title_Case_With_Underscores`": rate(db.kind, underscored),
        "`kind()`, unknown names": rate(db.kind, misses),
        "`name in db`, half known": rate(db.__contains__, mixed),
        "`series_of()`, qualified characters": rate(db.series_of, characters),
        "`kind()` on `default() \\| from_names(...)`, half known": rate(union.kind, mixed),
    }

    def verdict(value: float, target: float) -> str:
        return "pass" if value < target else "**FAIL**"

    memory = max(traced_peak_mb, rss_mb, peak_rss_mb)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Tag database benchmark",
        "",
        "Produced by `python benchmarks/bench_tagdb.py`; do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu_model()}, {cores()} cores",
        f"- Python: {platform.python_implementation()} {platform.python_version()}"
        f" ({platform.system()} {platform.machine()})",
        f"- Date: {now}",
        f"- Data file: `animagine/_data/{DEFAULT_TAGDB_FILE.name}`,"
        f" {DEFAULT_TAGDB_FILE.stat().st_size:,} bytes, {len(db):,} names",
        "",
        f"## Loading the default database (first lookup, median of {args.runs} fresh processes)",
        "",
        "| measure | value | target | |",
        "|---|---:|---:|---|",
        f"| load time | {load_ms:.1f} ms | < {LOAD_TARGET_MS:.0f} ms |"
        f" {verdict(load_ms, LOAD_TARGET_MS)} |",
        f"| tracemalloc peak during load | {traced_peak_mb:.1f} MB | < {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(traced_peak_mb, MEMORY_TARGET_MB)} |",
        f"| tracemalloc retained after load | {traced_now_mb:.1f} MB | | |",
        f"| RSS delta (VmRSS after - before) | {rss_mb:.1f} MB | < {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(rss_mb, MEMORY_TARGET_MB)} |",
        f"| peak RSS delta (VmHWM) | {peak_rss_mb:.1f} MB | < {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(peak_rss_mb, MEMORY_TARGET_MB)} |",
        "",
        f"Load times of the {args.runs} runs: {load_all} ms. For context, not part of the target:"
        f" `from animagine.core import TagDatabase` (which imports the `animagine` package)"
        f" took {import_ms:.0f} ms, and `TagDatabase.default()` read nothing."
        f" Heavy modules imported: {', '.join(heavy) or 'none'}.",
        "",
        f"## Lookups per second (loaded database, best of 5 passes over {args.lookups:,} names)",
        "",
        "| lookup | per second |",
        "|---|---:|",
        *(f"| {label} | {value:,.0f} |" for label, value in rates.items()),
        "",
    ]
    text = "\n".join(lines)
    if args.output == "-":
        print(text)
    else:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(text)
        print(f"wrote {output}")
    return 0 if load_ms < LOAD_TARGET_MS and memory < MEMORY_TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
