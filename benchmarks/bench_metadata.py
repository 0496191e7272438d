"""Benchmark reading A1111 infotext: linear in the length of the text.

Run from the repository root::

    python benchmarks/bench_metadata.py            # writes benchmarks/results/metadata.md
    python benchmarks/bench_metadata.py --output -  # print instead

Three shapes at 1,000, 4,000 and 16,000 characters (and 100,000 for the worst case):

- a last line of words without ``:`` or ``,``, the shape on which A1111's single regular
  expression backtracks quadratically (each start position rescans the words after it);
- a valid infotext whose prompt is that long (2,000 tags and more);
- a valid infotext with a long parameters line (many ``key: value`` pairs).

Each figure is the best of several calls of :meth:`GenerationParameters.from_infotext`. For
comparison, the same text is read with A1111's expression alone (``re.findall``), which is what
the library did before; that column stops at 16,000 characters. Target (issue #9): 16,000
characters in milliseconds, and time growing linearly with size.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from _machine import cpu_model, git_state, packages, write_report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "metadata.md"
SIZES = (1_000, 4_000, 16_000, 100_000)
TARGET_MS = 10.0  # 16,000 characters "in milliseconds"
BASE = "Steps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1, Size: 832x1216"
# A1111's `re_param` with the library's `{...}` addition: what reading used before.
OLD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}(?=\s*(?:,|$))|[^,]*)(?:,|$)')


def no_pairs(size: int) -> str:
    return ("word " * (size // 5 + 1))[:size]


def long_prompt(size: int) -> str:
    tags: list[str] = []
    length = 0
    while length < size - len(BASE) - 1:
        tag = f"tag number {len(tags)}"
        tags.append(tag)
        length += len(tag) + 2
    return ", ".join(tags) + "\n" + BASE


def long_line(size: int) -> str:
    pairs = [BASE]
    while sum(map(len, pairs)) < size - 2:
        pairs.append(f"Key {len(pairs)}: value {len(pairs)}")
    return "1girl\n" + ", ".join(pairs)


SHAPES: dict[str, Callable[[int], str]] = {
    "a line of words without `:` or `,` (not infotext)": no_pairs,
    "a long prompt, then the parameters line": long_prompt,
    "a long parameters line": long_line,
}


def best_seconds(function: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def read(text: str) -> Callable[[], object]:
    from animagine import MetadataError
    from animagine.metadata import GenerationParameters

    def call() -> object:
        try:
            return GenerationParameters.from_infotext(text)
        except MetadataError:
            return None

    return call


def old_read(text: str) -> Callable[[], object]:
    last = text.rstrip().split("\n")[-1]
    return lambda: OLD.findall(last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=7, help="calls per figure (best is kept)")
    parser.add_argument("--output", default=str(RESULTS), help="markdown file, or - for stdout")
    args = parser.parse_args(argv)

    rows: list[str] = []
    verdicts: list[bool] = []
    for label, make in SHAPES.items():
        times: dict[int, float] = {}
        for size in SIZES:
            text = make(size)
            now = best_seconds(read(text), args.repeat)
            times[size] = now
            before = (
                f"{best_seconds(old_read(text), max(1, args.repeat // 3)) * 1000:,.2f} ms"
                if size <= 16_000
                else "(not run)"
            )
            rows.append(f"| {label} | {len(text):,} | {now * 1000:,.3f} ms | {before} |")
        ratio = times[16_000] / max(times[1_000], 1e-9)
        linear = times[16_000] * 1000 < TARGET_MS and ratio < 40
        verdicts.append(linear)
        mark = "pass" if linear else "FAIL"
        rows.append(f"| {label}: 16k / 1k | | {ratio:,.1f}x (linear: 16x) | {mark} |")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "pass" if all(verdicts) else "FAIL"
    report = f"""# Metadata reading benchmark

Produced by `python benchmarks/bench_metadata.py`; do not edit by hand.

## Machine

- CPU: {cpu_model()}
- Python: {sys.version.split()[0]}; {packages("attrs", "lark")}
- Source: {git_state()}
- Date: {when}

## Reading A1111 infotext (`GenerationParameters.from_infotext`, best of {args.repeat})

Target from issue #9 (What people use in the official demos): an infotext of 16,000 characters
read in milliseconds (< {TARGET_MS:g} ms here), time linear in the length. Verdict: {verdict}.

"Before" is A1111's single regular expression on the last line, as the library read it until
issue #9: quadratic on a line without `:` (100 KB took 44 s in `animagine info`).

| text | characters | now | before |
|---|---:|---:|---:|
{chr(10).join(rows)}
"""
    if args.output == "-":
        print(report)
    write_report(report, args.output)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
