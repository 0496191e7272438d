"""The server's core: the history database, the one generation queue, the guards and the
``serve`` command (the A1111 routes and the web UI have their own test modules)."""

from __future__ import annotations

import base64
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the app extra")

from fastapi import Request  # a module-level name: FastAPI resolves the route's annotations

from animagine.apps.serve import (
    History,
    HistoryError,
    QueueFullError,
    ServeConfig,
    Worker,
    create_app,
    parse_api_auth,
    tag_keys,
)
from animagine.errors import AnimagineError, InvalidArgumentError, WrongTypeError
from animagine.metadata import GenerationParameters

SMALL = {"width": 64, "height": 64, "steps": 2}


def parameters(prompt: str, seed: int = 1) -> GenerationParameters:
    return GenerationParameters(
        prompt=prompt,
        negative_prompt="lowres",
        steps=2,
        sampler="Euler a",
        guidance_scale=5.0,
        seed=seed,
        width=64,
        height=64,
        model="tiny",
        version="v4",
    )


def png_bytes(colour: int = 0) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (colour, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- history ----------------------------------------------------------------------------------


def test_tag_keys_read_prompts_as_tags() -> None:
    assert tag_keys("1girl, Long_Hair, (smile:1.2), long hair") == ["1girl", "long hair", "smile"]
    # A stray bracket is no reason to fail a search: split at commas instead.
    assert tag_keys("smile, (unclosed") == ["smile", "(unclosed"]
    assert tag_keys("  ") == []


def test_history_search_by_tag_favourites_and_pages(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        first = history.add(png_bytes(1), parameters("1girl, smile, long hair", seed=1))
        second = history.add(png_bytes(2), parameters("1boy, smile", seed=2))
        third = history.add(png_bytes(3), parameters("1girl, night", seed=3))
        assert first < second < third
        assert len(history) == 3
        assert [e.id for e in history.search()] == [third, second, first]
        assert [e.id for e in history.search("smile")] == [second, first]
        assert [e.id for e in history.search("1girl, SMILE")] == [first]
        assert [e.id for e in history.search("Long_Hair")] == [first]
        assert history.search("cat") == []
        assert history.set_favourite(second)
        assert [e.id for e in history.search(favourites=True)] == [second]
        assert [e.id for e in history.search("smile", favourites=True)] == [second]
        assert [e.id for e in history.search(limit=1)] == [third]
        assert [e.id for e in history.search(before=third, limit=1)] == [second]
        assert not history.set_favourite(999)
        entry = history.get(first)
        assert entry is not None
        assert entry.parameters.seed == 1
        assert entry.to_json()["infotext"].startswith("1girl, smile, long hair")
        assert history.png(first) == png_bytes(1)
        assert history.delete(first)
        assert history.get(first) is None
        assert history.search("long hair") == []  # its tags went with it
        with pytest.raises(InvalidArgumentError):
            history.search(limit=0)
        with pytest.raises(InvalidArgumentError):
            history.add(b"not a png", parameters("x"))


def test_history_survives_a_restart_and_keeps_huge_seeds(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "h.sqlite3"
    with History(path) as history:
        image_id = history.add(png_bytes(), parameters("1girl", seed=2**64 - 1))
        history.set_favourite(image_id)
    with History(path) as again:
        (entry,) = again.search("1girl")
        assert entry.id == image_id
        assert entry.favourite
        assert entry.parameters.seed == 2**64 - 1  # beyond SQLite's integers: kept exactly


def test_history_refuses_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="not a history database"):
        History(junk)
    newer = tmp_path / "newer.sqlite3"
    connection = sqlite3.connect(newer)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(HistoryError, match="newer animagine"):
        History(newer)
    assert isinstance(HistoryError("x"), AnimagineError)


def test_history_is_safe_across_threads(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        errors: list[BaseException] = []

        def add(worker: int) -> None:
            try:
                for n in range(20):
                    history.add(png_bytes(), parameters(f"tag{worker}, common", seed=n))
                    history.search("common", limit=5)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=add, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(history) == 80
        assert len(history.search("common", limit=500)) == 80


# --- the queue --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen(tiny_pipeline: Any) -> Any:
    from animagine import Generator

    return Generator(tiny_pipeline, version="v4")


def options(prompt: str = "1girl, smile", **extra: Any) -> Any:
    from animagine import GenerationOptions

    return GenerationOptions(prompt=prompt, **{**SMALL, **extra})


@pytest.mark.generate
def test_worker_runs_jobs_in_order_and_records_them(gen: Any) -> None:
    from PIL import Image

    from animagine import read_parameters

    history = History(":memory:")
    worker = Worker(gen, history=history, start=False)
    first = worker.submit([options(seed=5, num_images=2)])
    second = worker.submit([options("1boy", seed=9), options("1boy", seed=10)], record=False)
    assert (first.state, second.state) == ("queued", "queued")
    assert (worker.position(first), worker.position(second)) == (1, 2)
    assert worker.run_next() is first
    assert first.state == "done"
    assert worker.position(first) is None
    assert worker.position(second) == 1
    assert first.seeds == (5, 6)
    assert first.steps_done == first.steps_total == 2
    assert first.image_progress() == [1.0, 1.0]
    assert second.image_progress() == [0.0, 0.0]
    second.steps_done = 3  # the first run (2 steps) done, the second half way
    assert second.image_progress() == [1.0, 0.5]
    second.steps_done = 0
    images = [Image.open(io.BytesIO(data)) for data in first.images]
    assert [read_parameters(image).seed for image in images] == [5, 6]
    assert first.history_ids == [1, 2]
    worker.run_next()
    assert second.state == "done"
    assert second.seeds == (9, 10)
    assert second.history_ids == []  # not recorded
    assert len(history) == 2
    assert worker.job(first.id) is first


@pytest.mark.generate
def test_a_job_can_be_awaited_without_a_thread(gen: Any) -> None:
    import asyncio

    worker = Worker(gen, start=False)
    job = worker.submit([options(seed=3)])
    calls: list[str] = []
    job.add_done_callback(lambda: calls.append("early"))

    async def main() -> str:
        waiting = asyncio.ensure_future(job.finished_async())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        runner = threading.Thread(target=worker.run_next)  # another thread finishes it
        runner.start()
        await asyncio.wait_for(waiting, 60)
        runner.join()
        return job.state

    assert asyncio.run(main()) == "done"
    assert calls == ["early"]
    job.add_done_callback(lambda: calls.append("late"))  # already over: called at once
    assert calls == ["early", "late"]


@pytest.mark.generate
def test_a_drawn_seed_is_fixed_when_queued(gen: Any) -> None:
    worker = Worker(gen, start=False)
    job = worker.submit([options()])
    (seed,) = job.seeds
    assert job.plans[0].options.seed == seed
    worker.run_next()
    assert job.parameters[0].seed == seed


@pytest.mark.generate
def test_bad_jobs_are_refused_before_queueing(gen: Any) -> None:
    from animagine import GenerationArgumentError

    worker = Worker(gen, start=False, queue_size=1)
    with pytest.raises(GenerationArgumentError, match="width"):
        worker.submit([options(width=63)])
    assert worker.waiting == 0
    worker.submit([options()])
    with pytest.raises(QueueFullError, match="full"):
        worker.submit([options()])


@pytest.mark.generate
def test_interrupt_stops_the_running_job_and_cancels_a_queued_one(gen: Any) -> None:
    worker = Worker(gen, start=False)
    running = worker.submit([options(steps=6), options(steps=6)])
    queued = worker.submit([options()])
    assert worker.interrupt(queued.id)
    assert queued.state == "cancelled"
    assert queued.wait(0)

    seen: list[int] = []
    original = worker.generator.__call__

    def spy(*args: Any, callback_on_step_end: Any = None, **kwargs: Any) -> Any:
        def step(pipe: Any, index: int, timestep: Any, data: Any) -> Any:
            seen.append(index)
            if index == 1:
                worker.interrupt()
            return callback_on_step_end(pipe, index, timestep, data)

        return original(*args, callback_on_step_end=step, **kwargs)

    worker.generator = type("Spy", (), {"__call__": staticmethod(spy), "check": gen.check})()
    worker.run_next()
    assert running.state == "interrupted"
    assert seen == [0, 1]  # diffusers stopped after the step that asked
    assert len(running.images) == 1  # the first run kept what it had; the second never ran
    assert not worker.interrupt()  # nothing is running now


@pytest.mark.generate
def test_skip_ends_the_current_run_only(gen: Any) -> None:
    worker = Worker(gen, start=False)
    job = worker.submit([options(steps=6, seed=1), options(steps=6, seed=2)])
    seen: list[tuple[int, int]] = []
    original = worker.generator.__call__

    def spy(*args: Any, callback_on_step_end: Any = None, **kwargs: Any) -> Any:
        def step(pipe: Any, index: int, timestep: Any, data: Any) -> Any:
            seen.append((job.run, index))
            if (job.run, index) == (0, 1):
                assert worker.skip()
            return callback_on_step_end(pipe, index, timestep, data)

        return original(*args, callback_on_step_end=step, **kwargs)

    worker.generator = type("Spy", (), {"__call__": staticmethod(spy), "check": gen.check})()
    worker.run_next()
    assert seen == [(0, 0), (0, 1)] + [(1, index) for index in range(6)]
    assert job.state == "done"
    assert job.seeds == (1, 2)
    assert len(job.images) == 2  # the skipped run kept its image
    assert not worker.skip()  # nothing runs now


@pytest.mark.generate
def test_a_failing_job_reports_its_error(gen: Any) -> None:
    worker = Worker(gen, start=False)
    job = worker.submit([options()])

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory")

    worker.generator = type("Broken", (), {"__call__": staticmethod(broken)})()
    worker.run_next()
    assert job.state == "failed"
    assert job.error == "RuntimeError: out of memory"
    assert job.wait(0)


@pytest.mark.generate
def test_the_worker_thread_serves_and_closes(gen: Any) -> None:
    worker = Worker(gen)
    jobs = [worker.submit([options(seed=n)]) for n in range(3)]
    for job in jobs:
        assert job.wait(60)
    assert [job.state for job in jobs] == ["done"] * 3
    assert worker.completed == 3
    worker.close()
    with pytest.raises(QueueFullError, match="shutting down"):
        worker.submit([options()])


@pytest.mark.generate
def test_one_thread_per_generator_shares_the_queue(gen: Any) -> None:
    both_running = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def spy(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                started.append(name)
                if len(started) == 2:
                    both_running.set()
            # Each waits until both generators are busy: only two threads get here together.
            assert both_running.wait(30), "the second generator never started"
            return gen(*args, **kwargs)

        return type(name, (), {"__call__": staticmethod(call), "check": gen.check})()

    worker = Worker([spy("first"), spy("second")], start=True)
    jobs = [worker.submit([options(seed=n)]) for n in range(2)]
    for job in jobs:
        assert job.wait(60)
    assert sorted(started) == ["first", "second"]
    assert [job.state for job in jobs] == ["done", "done"]
    worker.close()


# --- the app and its guards -----------------------------------------------------------------


def client(**config: Any) -> Any:
    from fastapi.testclient import TestClient

    app = create_app(config=ServeConfig(**config))

    @app.post("/test-echo")
    async def echo(request: Request) -> int:
        return len(await request.body())

    return TestClient(app)


def test_parse_api_auth() -> None:
    assert parse_api_auth("me:secret") == (("me", "secret"),)
    assert parse_api_auth("a:b:c, d:e") == (("a", "b:c"), ("d", "e"))
    for bad in ("me", ":x", "me:", "a:b,,"):
        with pytest.raises(InvalidArgumentError, match="user:password"):
            parse_api_auth(bad)
    with pytest.raises(WrongTypeError):
        ServeConfig(api_auth=[("a",)])
    with pytest.raises(InvalidArgumentError):
        ServeConfig(queue_size=0)


def test_basic_auth_guards_everything() -> None:
    with client(api_auth="me:secret,you:other") as http:
        for path in ("/openapi.json", "/sdapi/v1/samplers", "/"):
            refused = http.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
        assert http.get("/openapi.json", auth=("me", "secret")).status_code == 200
        assert http.get("/openapi.json", auth=("you", "other")).status_code == 200
        assert http.get("/openapi.json", auth=("me", "other")).status_code == 401
        garbage = {"Authorization": "Basic %%%"}
        assert http.get("/openapi.json", headers=garbage).status_code == 401


def test_request_bodies_are_limited() -> None:
    with client(max_body_bytes=1000) as http:
        assert http.post("/test-echo", content=b"x" * 1000).json() == 1000
        declared = http.post("/test-echo", content=b"x" * 1001)
        assert declared.status_code == 413
        assert "1000 bytes" in declared.json()["detail"]

        def chunks() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b"y" * 300

        streamed = http.post("/test-echo", content=chunks())
        assert streamed.status_code == 413
        assert http.get("/openapi.json").status_code == 200


def test_cors_only_when_asked() -> None:
    origin = {"Origin": "https://example.org"}
    with client() as http:
        assert (
            "access-control-allow-origin" not in http.get("/openapi.json", headers=origin).headers
        )
    with client(cors_allow_origins="https://example.org") as http:
        allowed = http.get("/openapi.json", headers=origin).headers
        assert allowed["access-control-allow-origin"] == "https://example.org"
        other = http.get("/openapi.json", headers={"Origin": "https://evil.example"}).headers
        assert "access-control-allow-origin" not in other


@pytest.mark.generate
def test_create_app_checks_the_version(gen: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="disagrees"):
        create_app(gen, version="v3")
    app = create_app(gen, version="v4")
    assert app.state.service.version.name == gen.version.name
    app.state.service.close()


def test_openapi_describes_the_server() -> None:
    with client() as http:
        spec = http.get("/openapi.json").json()
        assert spec["info"]["title"] == "animagine"
        docs = http.get("/docs")
        assert docs.status_code == 200
        assert "/openapi.json" in docs.text


# --- the command ------------------------------------------------------------------------------


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "animagine", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("animagine serve: http"):
            return process, line.split()[2]
        if not line and process.poll() is not None:
            break
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"the server did not start: {line!r} {err}")


def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _stop(process: subprocess.Popen[str], stop: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(stop)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover - reported below
        process.kill()
        raise
    return process.returncode, err


def test_serve_without_a_model_serves_the_prompt_tools(tmp_path: Path) -> None:
    process, url = _start("--history", str(tmp_path / "h.sqlite3"), "--api-auth", "me:pw")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert _get(url + "openapi.json")[0] == 401
        status, body = _get(url + "openapi.json", auth=("me", "pw"))
        assert status == 200
        assert b"/sdapi/v1" in body
    finally:
        code, err = _stop(process)
    assert code == 0, err
    assert "Traceback" not in err
    assert "generation needs --model" in err
    assert (tmp_path / "h.sqlite3").exists()


@pytest.mark.generate
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_with_the_tiny_model_stops_cleanly(
    tiny_model_paths: Any, tmp_path: Path, stop: signal.Signals
) -> None:
    import json

    process, url = _start(
        "--model", str(tiny_model_paths.folder), "--version", "v4",
        "--history", str(tmp_path / "h.sqlite3"),
    )  # fmt: skip
    try:
        status, body = _get(url + "sdapi/v1/sd-models")
        assert status == 200
        assert b"tiny-sdxl" in body
        request = urllib.request.Request(
            url + "sdapi/v1/txt2img",
            data=json.dumps(
                {"prompt": "1girl", "width": 64, "height": 64, "steps": 2, "save_images": True}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert len(json.loads(response.read())["images"]) == 1
    finally:
        code, err = _stop(process, stop)
    assert code == 0, err
    assert "Traceback" not in err
    assert "ERROR" not in err
    with History(tmp_path / "h.sqlite3") as history:  # closed cleanly, and it kept the image
        assert len(history) == 1


def _taken_port() -> Any:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


def test_serve_refuses_a_taken_port_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    from animagine.apps.cli import main

    with _taken_port() as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--no-history"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.generate
def test_serve_checks_the_model_flags_first(capsys: pytest.CaptureFixture[str]) -> None:
    from animagine.apps.cli import main

    with _taken_port() as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", "/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "/no/such/model" in err  # the model flags are checked first (no load), then the port
    assert "cannot listen" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "70000"], "--port must be from 0 to 65535"),
        (["--api-auth", "nopassword"], "user:password"),
        (["--history", "x.sqlite3", "--no-history"], "exclude each other"),
        (["--wildcards", "/no/such/folder"], "no such file"),
        (["--queue-size", "0"], "queue_size must be a positive integer"),
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
        (["--presets", __file__], "presets"),
    ],
)
def test_serve_bad_flags_are_one_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from animagine.apps.cli import main

    assert main(["serve", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
