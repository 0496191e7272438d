"""Load test of ``animagine serve``: concurrent A1111 clients against direct ``Generator`` calls.

The tiny random SDXL model of ``animagine.testing`` is saved to a temporary folder, then:

* **Server.** ``animagine serve --model FOLDER --version v4 --no-history`` runs in its own
  process, pinned to CPU 0. ``--clients`` threads of this process (pinned to the other CPU)
  each send ``--requests`` ``POST /sdapi/v1/txt2img`` requests, one at a time, over HTTP on
  127.0.0.1: the same prompt, 64x64, 2 steps, Euler a, CFG 7, and a seed of their own
  (``client * 100000 + n``). Every answer is checked: status 200, exactly one image, a PNG of
  the asked size whose infotext and ``info`` carry the asked seed; over the whole run every
  seed must come back exactly once (nothing lost, nothing answered twice).
* **Direct.** The same number of calls of ``Generator.from_pretrained(FOLDER)(...)`` with the
  same options, one after another, in a fresh process pinned to CPU 0.

Throughput is images per second over the whole run; latency is each request's wall time as the
client saw it (queueing included: with 8 clients the queue is never empty). The server's
overhead is its wall time for all requests over the direct calls' wall time, minus one; the
target is at most 5%.

Run from the repository root::

    python benchmarks/bench_serve.py           # 8 clients x 50 requests, writes results/serve.md
    python benchmarks/bench_serve.py --quick   # 2 clients x 3 requests, writes nothing

Needs the ``app`` extra (FastAPI, uvicorn) and the ``generate`` extra.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import base64
import io
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, git_state, packages, write_report

PROMPT = "1girl, solo, smile, long hair, looking at viewer, outdoors"
SIZE = 64
STEPS = 2
CFG = 7.0
SAMPLER = "Euler a"
TARGET = 0.05

DIRECT = """
import json, os, sys, time
os.sched_setaffinity(0, {{{cpu}}})
import torch
torch.set_num_threads(1)
from animagine import Generator
gen = Generator.from_pretrained({folder!r}, version="v4", progress=False)
kwargs = dict(negative_prompt="", width={size}, height={size}, steps={steps},
              guidance_scale={cfg}, sampler={sampler!r}, add_quality_tags=False, progress=False)
for seed in range(3):
    gen({prompt!r}, seed=10**9 + seed, **kwargs)
times = []
start = time.perf_counter()
for seed in range({count}):
    began = time.perf_counter()
    gen({prompt!r}, seed=seed, **kwargs)
    times.append(time.perf_counter() - began)
print(json.dumps({{"wall": time.perf_counter() - start, "times": times}}))
"""


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


def start_server(folder: Path, cpu: int, queue: int) -> tuple[subprocess.Popen[str], str]:
    pin(cpu)  # the server inherits this process's CPU; the caller pins itself elsewhere after
    command = [
        sys.executable, "-m", "animagine", "serve", "--model", str(folder), "--version", "v4",
        "--no-history", "--port", "0", "--queue-size", str(queue),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("animagine serve: http"):
            return process, line.split()[2].rstrip("/")
    raise SystemExit(f"the server did not start: {process.stderr.read() if process.stderr else ''}")


def txt2img(url: str, seed: int) -> dict[str, Any]:
    body = {
        "prompt": PROMPT,
        "negative_prompt": "",
        "seed": seed,
        "width": SIZE,
        "height": SIZE,
        "steps": STEPS,
        "cfg_scale": CFG,
        "sampler_name": SAMPLER,
        "batch_size": 1,
        "n_iter": 1,
    }
    request = urllib.request.Request(
        url + "/sdapi/v1/txt2img",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return {"status": response.status, "body": json.loads(response.read())}


def check_answer(answer: dict[str, Any], seed: int) -> str | None:
    """What is wrong with an answer, or None."""
    from PIL import Image

    from animagine import read_parameters

    if answer["status"] != 200:
        return f"status {answer['status']}"
    body = answer["body"]
    if len(body.get("images", [])) != 1:
        return f"{len(body.get('images', []))} images"
    info = json.loads(body["info"])
    if info.get("all_seeds") != [seed]:
        return f"info seeds {info.get('all_seeds')} for {seed}"
    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0])))
    if image.format != "PNG" or image.size != (SIZE, SIZE):
        return f"image {image.format} {image.size}"
    image.load()
    if read_parameters(image).seed != seed:
        return "the PNG's parameters carry another seed"
    return None


def run_clients(url: str, clients: int, requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    problems: list[str] = []
    answered: list[int] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for n in range(requests):
            seed = number * 100_000 + n
            began = time.perf_counter()
            try:
                answer = txt2img(url, seed)
                problem = check_answer(answer, seed)
            except Exception as error:  # every failure is counted
                problem = f"{type(error).__name__}: {error}"
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                answered.append(seed)
                if problem is not None:
                    problems.append(f"seed {seed}: {problem}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    expected = {c * 100_000 + n for c in range(clients) for n in range(requests)}
    return {
        "wall": wall,
        "latencies": latencies,
        "problems": problems,
        "lost": len(expected - set(answered)),
        "duplicated": len(answered) - len(set(answered)),
    }


def direct_calls(folder: Path, cpu: int, count: int) -> dict[str, Any]:
    code = DIRECT.format(
        cpu=cpu, folder=str(folder), size=SIZE, steps=STEPS, cfg=CFG, sampler=SAMPLER,
        prompt=PROMPT, count=count,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=3600
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 clients x 3 requests, no report")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--output", default="benchmarks/results/serve.md")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.requests = 2, 3
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_cpu, client_cpu = cpus[0], cpus[-1]
    total = args.clients * args.requests
    began = time.perf_counter()
    from animagine.testing import save_tiny_model

    with tempfile.TemporaryDirectory() as scratch:
        folder = save_tiny_model(Path(scratch), seed=0, single_file=False).folder
        process, url = start_server(folder, server_cpu, queue=max(20, args.clients))
        try:
            pin(client_cpu)
            for seed in range(3):  # warm-up: the first calls build schedulers and caches
                txt2img(url, 10**9 + seed)
            served = run_clients(url, args.clients, args.requests)
        finally:
            process.terminate()
            process.wait(60)
        direct = direct_calls(folder, server_cpu, total)

    overhead = served["wall"] / direct["wall"] - 1
    ok = not served["problems"] and served["lost"] == 0 and served["duplicated"] == 0
    lines = [
        "# Server load test",
        "",
        f"`python benchmarks/bench_serve.py` ({time.perf_counter() - began:.0f} s in all).",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}; the server (and the direct calls) pinned to CPU {server_cpu},"
        f" the clients to CPU {client_cpu}; `OMP_NUM_THREADS=1`",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {packages('animagine', 'fastapi', 'uvicorn', 'torch', 'diffusers')}",
        f"- Code: {git_state()}",
        "",
        f"Work: {args.clients} concurrent clients x {args.requests} `POST /sdapi/v1/txt2img`"
        f" each ({total} requests), over HTTP on 127.0.0.1, against `animagine serve` with the"
        f" tiny random SDXL model of `animagine.testing`: {SIZE}x{SIZE}, {STEPS} steps, {SAMPLER},"
        f" CFG {CFG}, one image per request, a seed of its own per request. The direct baseline"
        f" makes the same {total} calls of `Generator(...)` one after another in one process.",
        "",
        "## Correctness",
        "",
        "| Check | result |",
        "|---|---:|",
        f"| requests answered | {len(served['latencies'])} of {total} |",
        f"| lost (a seed never answered) | {served['lost']} |",
        f"| duplicated (a seed answered twice) | {served['duplicated']} |",
        f"| bad answers (status, image count, PNG, size, seed in info and in the PNG) |"
        f" {len(served['problems'])} |",
        "",
        "## Speed",
        "",
        "| | wall s | images/s | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|",
        f"| server ({args.clients} clients) | {served['wall']:.2f} |"
        f" {total / served['wall']:.2f} | {percentile(served['latencies'], 0.5) * 1000:.0f} |"
        f" {percentile(served['latencies'], 0.95) * 1000:.0f} |",
        f"| direct `Generator` calls | {direct['wall']:.2f} | {total / direct['wall']:.2f} |"
        f" {percentile(direct['times'], 0.5) * 1000:.0f} |"
        f" {percentile(direct['times'], 0.95) * 1000:.0f} |",
        "",
        f"Server latencies include the wait in the queue ({args.clients} clients share one"
        " worker); direct latencies are one call each.",
        "",
        "## Target",
        "",
        "| Target | measured | |",
        "|---|---:|---|",
        f"| server overhead against direct `Generator` calls <= 5% | {overhead:+.1%} |"
        f" **{'met' if overhead <= TARGET else 'missed'}** |",
        f"| every request answered once, none lost or duplicated, images valid |"
        f" {'yes' if ok else 'no'} | **{'met' if ok else 'missed'}** |",
        "",
    ]
    if served["problems"]:
        lines += ["Problems (first 10):", "", *(f"- {p}" for p in served["problems"][:10]), ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        write_report(text, args.output)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
