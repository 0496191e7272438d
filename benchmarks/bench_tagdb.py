"""Benchmark the shipped tag database: loading, memory, lookups, search and suggestions.

Run from the repository root::

    python benchmarks/bench_tagdb.py            # writes benchmarks/results/tagdb.md
    python benchmarks/bench_tagdb.py --runs 9 --output -   # print instead
    python benchmarks/bench_tagdb.py --root ../other-checkout --output -   # measure another tree

Measured:

* loading, in fresh processes: the first lookup of the default database (which reads the file
  and unpacks what it needs) and then ``load()`` (which unpacks the rest), with their time and
  resident memory (VmRSS delta; tracemalloc peak in separate runs);
* the whole process ``python -c "import animagine; animagine.parse(...)"``, and the share of it
  spent in the tag database;
* ``kind()`` and friends, lookups per second;
* ``search()`` over a fixed, seeded set of realistic prefixes (1 to 6 characters of real tag
  names, popular ones and aliases), p50 and p99 per query, once each and best of 5 per query
  (the machine is shared: a single timing of a sub-millisecond call can include a scheduler
  time slice);
* ``suggest()`` per call over seeded one-edit typos of real tags;
* the first-call cost of the search and suggestion indexes, in fresh processes.

Targets (issue #2, Foundation and prompt core; search and suggest from the tag-database issue):
first lookup < 150 ms and < 60 MB; ``import animagine`` plus a first parse < 150 ms for the
whole process; ``search`` p99 <= 1 ms; ``suggest`` <= about 1 ms per call. The benchmark uses the
public API only.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import cpu_model, git_state, package_version, write_report  # noqa: E402

RESULTS = HERE / "results" / "tagdb.md"
LOAD_TARGET_MS = 150.0
MEMORY_TARGET_MB = 60.0
PROCESS_TARGET_MS = 150.0
SEARCH_P99_TARGET_MS = 1.0
SUGGEST_TARGET_MS = 1.0
MB = 1_000_000
PROMPT = "1girl, arima kana, oshi no ko, smile"

# Runs in a fresh interpreter. Prints one JSON object.
CHILD = r"""
import json, sys, time, tracemalloc

sys.path.insert(0, sys.argv[1])
mode = sys.argv[2]


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
result = {"import_s": imported - started, "heavy_modules": heavy}
if mode == "tracemalloc":
    tracemalloc.start()
rss_before = status("VmRSS")
hwm_before = status("VmHWM")
t0 = time.perf_counter()
db.kind("arima kana")
t1 = time.perf_counter()
result.update(
    load_s=t1 - t0,
    rss_delta=status("VmRSS") - rss_before,
    peak_rss_delta=max(0, status("VmHWM") - max(hwm_before, rss_before)),
)
if mode == "tracemalloc":
    result["traced_current"], result["traced_peak"] = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
t0 = time.perf_counter()
db.load()
t1 = time.perf_counter()
result.update(full_s=t1 - t0, full_rss_delta=status("VmRSS") - rss_before)
if mode == "tracemalloc":
    result["full_traced_current"], result["full_traced_peak"] = tracemalloc.get_traced_memory()
if mode == "indexes":
    for label, call in (
        ("search_first_s", lambda: db.search("long h")),
        ("search_second_letter_s", lambda: db.search("sa")),
        ("search_category_first_s", lambda: db.search("long h", category="general")),
        ("search_all_letters_s", lambda: db.search("")),
        ("suggest_first_s", lambda: db.suggest("long hiar")),
        ("suggest_other_length_s", lambda: db.suggest("hatsune mikku")),
    ):
        t0 = time.perf_counter()
        call()
        result[label] = time.perf_counter() - t0
    result["indexes_rss_delta"] = status("VmRSS") - rss_before
print(json.dumps(result))
"""

# The table's share of a first parse: the lookups a parse of PROMPT makes, then the parse.
SHARE = r"""
import json, sys, time

sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import animagine
t1 = time.perf_counter()
db = animagine.TagDatabase.default()
for tag in sys.argv[2].split(", "):
    db.kind(tag)
t2 = time.perf_counter()
animagine.parse(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "table_s": t2 - t1, "parse_s": t3 - t2}))
"""


# Bytecode allowed, as an installed package has it (PYTHONDONTWRITEBYTECODE would make every
# fresh process compile animagine from source); the first child of a run writes it.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child(root: Path, code: str, *args: str) -> dict[str, Any]:
    """Run one fresh interpreter and return what it measured."""
    completed = subprocess.run(
        [sys.executable, "-c", code, str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env=_ENV,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def whole_process(root: Path) -> float:
    """Wall seconds of ``python -c "import animagine; animagine.parse(PROMPT)"``."""
    code = f"import sys; sys.path.insert(0, {str(root)!r}); import animagine; "
    code += f"animagine.parse({PROMPT!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)  # writes the bytecode
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_ENV)
    return time.perf_counter() - start


def rate(function: Callable[[str], object], names: Sequence[str], repeat: int = 5) -> float:
    """Best-of-``repeat`` calls per second of ``function`` over ``names``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for name in names:
            function(name)
        best = min(best, time.perf_counter() - start)
    return len(names) / best


def per_call(function: Callable[[str], object], inputs: Sequence[str]) -> tuple[list[float], ...]:
    """Seconds per call for each input: timed once (wall and this thread's CPU time), and best
    of 5 (wall). CPU time leaves out the time slices other processes took meanwhile."""
    once: list[float] = []
    once_cpu: list[float] = []
    best: list[float] = []
    for text in inputs:
        times = []
        for _ in range(5):
            cpu = time.thread_time()
            start = time.perf_counter()
            function(text)
            times.append(time.perf_counter() - start)
            if len(times) == 1:
                once_cpu.append(time.thread_time() - cpu)
        once.append(times[0])
        best.append(min(times))
    return once, once_cpu, best


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def file_aliases(path: Path) -> list[str]:
    """The aliases of a data file (entries whose value is ``>tag``), from its text."""
    found = []
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")[1:]:
        parts = line.split("\t")
        found.extend(
            key for key, value in zip(parts[0::2], parts[1::2], strict=False) if value[:1] == ">"
        )
    return found


def prefixes(rng: random.Random, popular: list[str], every: list[str], aliases: list[str], n: int):
    """``n`` seeded prefixes of 1 to 6 characters: of popular tags (40%), of any tag (40%), of
    aliases (20%), with underscores for spaces now and then, as users type them."""
    found = []
    for _ in range(n):
        pick = rng.random()
        source = popular if pick < 0.4 else every if pick < 0.8 else aliases
        name = rng.choice(source)
        text = name[: rng.randint(1, 6)]
        found.append(text.replace(" ", "_") if rng.random() < 0.2 else text)
    return found


def typos(rng: random.Random, popular: list[str], n: int) -> list[str]:
    """``n`` seeded one-edit typos (swap, deletion, insertion, replacement) of popular tags."""
    found = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(n):
        name = rng.choice(popular)
        at = rng.randrange(len(name))
        kind = rng.randrange(4)
        if kind == 0 and at + 1 < len(name):
            name = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
        elif kind == 1 and len(name) > 3:
            name = name[:at] + name[at + 1 :]
        elif kind == 2:
            name = name[:at] + rng.choice(letters) + name[at:]
        else:
            name = name[:at] + rng.choice(letters) + name[at + 1 :]
        found.append(name)
    return found


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per measurement")
    parser.add_argument("--lookups", type=int, default=100_000, help="names per lookup batch")
    parser.add_argument("--queries", type=int, default=2000, help="search prefixes")
    parser.add_argument("--typos", type=int, default=500, help="suggest inputs")
    parser.add_argument("--root", type=Path, default=HERE.parent, help="checkout to measure")
    parser.add_argument("--output", default=str(RESULTS), help="markdown file, or - for stdout")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    sys.path.insert(0, str(root))
    load_before = load_average()

    from animagine.core import DEFAULT_TAGDB_FILE, TagDatabase

    child(root, CHILD, "plain")  # warm the OS file cache and bytecode caches; not counted
    timings = [child(root, CHILD, "plain") for _ in range(args.runs)]
    traced = [child(root, CHILD, "tracemalloc") for _ in range(args.runs)]
    indexes = [child(root, CHILD, "indexes") for _ in range(max(3, args.runs // 2))]
    processes = [whole_process(root) for _ in range(args.runs)]
    shares = [child(root, SHARE, PROMPT) for _ in range(args.runs)]

    def ms(runs: list[dict[str, Any]], field: str, pick: Callable[..., float]) -> float:
        return float(pick(run[field] for run in runs)) * 1000

    def mb(runs: list[dict[str, Any]], field: str) -> float:
        return statistics.median(run[field] for run in runs) / MB

    load_best, load_median = ms(timings, "load_s", min), ms(timings, "load_s", statistics.median)
    full_best, full_median = ms(timings, "full_s", min), ms(timings, "full_s", statistics.median)
    load_all = ", ".join(f"{run['load_s'] * 1000:.0f}" for run in timings)
    import_ms = ms(timings, "import_s", statistics.median)
    rss_mb, peak_rss_mb = mb(timings, "rss_delta"), mb(timings, "peak_rss_delta")
    full_rss_mb = mb(timings, "full_rss_delta")
    traced_peak_mb, traced_now_mb = mb(traced, "traced_peak"), mb(traced, "traced_current")
    full_traced_peak_mb = mb(traced, "full_traced_peak")
    full_traced_now_mb = mb(traced, "full_traced_current")
    heavy = sorted({module for run in timings for module in run["heavy_modules"]})
    process_best = min(processes) * 1000
    process_median = statistics.median(processes) * 1000
    share_best = min(shares, key=lambda run: run["import_s"] + run["table_s"] + run["parse_s"])

    # Lookup speed, in this process, on the loaded database.
    db = TagDatabase.default().load()
    rng = random.Random(1234)
    with_qualifier: list[str] = []
    plain: list[str] = []
    for name in db.names():
        (with_qualifier if name.endswith(")") else plain).append(name)
    every = plain + with_qualifier
    known = rng.sample(every, args.lookups)
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

    # Search and suggest, on warm indexes (their first-call costs are measured above).
    popular = sorted(name for name in every if (db.post_count(name) or 0) >= 1000)
    aliases = file_aliases(DEFAULT_TAGDB_FILE)
    queries = prefixes(random.Random(1234), popular, every, aliases, args.queries)
    db.search("")  # builds the search index of every first character
    searches: dict[str, tuple[list[float], ...]] = {}
    searches["all categories"] = per_call(db.search, queries)
    for category in ("general", "character"):
        db.search("", category=category)  # type: ignore[arg-type]
        searches[f"`category={category!r}`"] = per_call(
            lambda text, c=category: db.search(text, category=c),  # type: ignore[misc]
            queries,
        )
    mistakes = typos(random.Random(1234), popular, args.typos)
    for text in mistakes:
        db.suggest(text)  # hashes every word length the inputs need
    suggest_once, suggest_cpu, suggest_best = per_call(db.suggest, mistakes)
    found = sum(db.suggest(text) is not None for text in mistakes)
    load_after = load_average()

    def verdict(value: float, target: float) -> str:
        return "met" if value <= target else "**missed**"

    s_once50, s_once99 = (percentile(suggest_once, share) * 1000 for share in (0.5, 0.99))
    s_cpu99 = percentile(suggest_cpu, 0.99) * 1000
    s_best50, s_best99 = (percentile(suggest_best, share) * 1000 for share in (0.5, 0.99))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Tag database benchmark",
        "",
        "Produced by `python benchmarks/bench_tagdb.py`; do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable"
        f" ({os.cpu_count()} logical) cores",
        f"- Load average (1, 5, 15 min): {load_before} at the start, {load_after} at the end"
        " (the machine is shared; figures are best-of and medians over runs)",
        f"- Python: {platform.python_implementation()} {platform.python_version()}"
        f" ({platform.system()} {platform.machine()}); attrs {package_version('attrs')}",
        f"- Code: {git_state()}",
        f"- Date: {now}",
        f"- Data file: `animagine/_data/{DEFAULT_TAGDB_FILE.name}`,"
        f" {DEFAULT_TAGDB_FILE.stat().st_size:,} bytes, {len(db):,} names,"
        f" {len(aliases):,} aliases",
        "",
        "Targets: issue #2 (Foundation and prompt core) for loading and the whole process; the"
        " tag-database issue for search and suggest.",
        "",
        f"## Loading the default database ({args.runs} fresh processes)",
        "",
        "| measure | best | median | target | |",
        "|---|---:|---:|---:|---|",
        f"| first lookup (reads the file, unpacks one chunk) | {load_best:.1f} ms"
        f" | {load_median:.1f} ms | <= {LOAD_TARGET_MS:.0f} ms |"
        f" {verdict(load_median, LOAD_TARGET_MS)} |",
        f"| RSS delta after the first lookup | | {rss_mb:.1f} MB"
        f" | <= {MEMORY_TARGET_MB:.0f} MB | {verdict(rss_mb, MEMORY_TARGET_MB)} |",
        f"| peak RSS delta (VmHWM) | | {peak_rss_mb:.1f} MB | <= {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(peak_rss_mb, MEMORY_TARGET_MB)} |",
        f"| tracemalloc peak / retained, first lookup | | {traced_peak_mb:.1f} /"
        f" {traced_now_mb:.1f} MB | <= {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(traced_peak_mb, MEMORY_TARGET_MB)} |",
        f"| then `load()` (unpacks every chunk) | {full_best:.1f} ms | {full_median:.1f} ms"
        f" | <= {LOAD_TARGET_MS:.0f} ms (first lookup + `load()`) |"
        f" {verdict(load_median + full_median, LOAD_TARGET_MS)} |",
        f"| RSS delta after `load()` | | {full_rss_mb:.1f} MB | <= {MEMORY_TARGET_MB:.0f} MB |"
        f" {verdict(full_rss_mb, MEMORY_TARGET_MB)} |",
        f"| tracemalloc peak / retained after `load()` | | {full_traced_peak_mb:.1f} /"
        f" {full_traced_now_mb:.1f} MB | | |",
        "",
        f"First-lookup times of the {args.runs} runs: {load_all} ms. For context:"
        f" `from animagine.core import TagDatabase` (which imports the `animagine` package)"
        f" took {import_ms:.0f} ms (median), and `TagDatabase.default()` read nothing."
        f" Heavy modules imported: {', '.join(heavy) or 'none'}.",
        "",
        "## Whole process: `import animagine` and a first `parse`",
        "",
        f'`python -c "import animagine; animagine.parse({PROMPT!r})"`, wall time including'
        f" interpreter start-up, {args.runs} runs: best {process_best:.0f} ms, median"
        f" {process_median:.0f} ms (target <= {PROCESS_TARGET_MS:.0f} ms:"
        f" {verdict(process_best, PROCESS_TARGET_MS)}). Inside the fastest of {args.runs}"
        f" instrumented runs: `import animagine` {share_best['import_s'] * 1000:.1f} ms, the"
        f" tag database's lookups of the prompt's tags (its load included)"
        f" {share_best['table_s'] * 1000:.1f} ms, the rest of the parse"
        f" {share_best['parse_s'] * 1000:.1f} ms.",
        "",
        f"## Lookups per second (loaded database, best of 5 passes over {args.lookups:,} names)",
        "",
        "| lookup | per second |",
        "|---|---:|",
        *(f"| {label} | {value:,.0f} |" for label, value in rates.items()),
        "",
        f"## `search()`: {args.queries:,} seeded prefixes, `limit=10`, warm index",
        "",
        "Prefixes of 1 to 6 characters: of tags with 1,000 posts or more (40%), of any tag (40%)"
        " and of aliases (20%), a fifth of them typed with underscores. Each query is timed 5"
        " times; *once* is its first timing, *best* the least of the 5; *CPU time* is the"
        " first timing's thread CPU time, without the time slices other processes took.",
        "",
        "| queries | p50 once | p99 once | p99 once, CPU time | p50 best | p99 best | max best"
        " | target (p99) | |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *(
            f"| {label} | {percentile(once, 0.5) * 1000:.3f} ms"
            f" | {percentile(once, 0.99) * 1000:.3f} ms | {percentile(cpu, 0.99) * 1000:.3f} ms"
            f" | {percentile(best, 0.5) * 1000:.3f} ms"
            f" | {percentile(best, 0.99) * 1000:.3f} ms | {max(best) * 1000:.3f} ms"
            f" | <= {SEARCH_P99_TARGET_MS:.0f} ms"
            f" | {verdict(percentile(best, 0.99) * 1000, SEARCH_P99_TARGET_MS)} (best),"
            f" {verdict(percentile(once, 0.99) * 1000, SEARCH_P99_TARGET_MS)} (once) |"
            for label, (once, cpu, best) in searches.items()
        ),
        "",
        f"## `suggest()`: {args.typos} seeded one-edit typos of tags with 1,000 posts or more",
        "",
        f"{found} of them got a suggestion. Per call: p50 {s_once50:.3f} ms, p99"
        f" {s_once99:.3f} ms once (CPU time p99 {s_cpu99:.3f} ms); p50 {s_best50:.3f} ms,"
        f" p99 {s_best99:.3f} ms best of 5"
        f" (target about {SUGGEST_TARGET_MS:.0f} ms per call:"
        f" {verdict(s_best50, SUGGEST_TARGET_MS)} at p50, {verdict(s_best99, SUGGEST_TARGET_MS)}"
        " at p99).",
        "",
        f"## First-call costs of the indexes ({len(indexes)} fresh processes, after `load()`)",
        "",
        "| call | best | median |",
        "|---|---:|---:|",
        *(
            f"| {label} | {ms(indexes, field, min):.0f} ms"
            f" | {ms(indexes, field, statistics.median):.0f} ms |"
            for label, field in (
                ("first `search('long h')` (index of `l`)", "search_first_s"),
                ("then `search('sa')` (index of `s`)", "search_second_letter_s"),
                ("then `search('long h', category='general')`", "search_category_first_s"),
                ("then `search('')` (every other first character)", "search_all_letters_s"),
                ("first `suggest('long hiar')` (candidates, 4 word lengths)", "suggest_first_s"),
                ("then `suggest('hatsune mikku')` (lengths 12 to 14)", "suggest_other_length_s"),
            )
        ),
        "",
        "RSS delta after the first lookup, `load()` and these calls:"
        f" {mb(indexes, 'indexes_rss_delta'):.1f} MB (median).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    write_report(text, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
