"""The web UI's JSON API (``/animagine/v1``) and its page, through FastAPI's test client.

Without a model the prompt tools work and generation answers 503; with the tiny model,
generation goes through the queue into the history, which survives reopening its file.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the app extra")

from fastapi.testclient import TestClient

import animagine.apps.serve
from animagine.apps.serve import History, ServeConfig, create_app
from animagine.core import VERSIONS, Prompt, get_version
from animagine.generation import OPTION_NAMES, SAMPLERS
from animagine.metadata import GenerationParameters, png_info

V1 = "/animagine/v1"
STATIC = Path(animagine.apps.serve.__file__).with_name("static")
SMALL = {"width": 64, "height": 64, "steps": 2}


@contextmanager
def client(generator: Any = None, **options: Any) -> Iterator[TestClient]:
    with TestClient(create_app(generator, **options)) as http:
        yield http


@pytest.fixture
def tools() -> Iterator[TestClient]:
    """A server without a model: the prompt tools only."""
    with client() as http:
        yield http


@pytest.fixture(scope="module")
def gen(tiny_pipeline: Any) -> Any:
    from animagine import Generator

    return Generator(tiny_pipeline, version="v4")


def parameters(prompt: str = "1girl, smile", **changes: Any) -> GenerationParameters:
    fields: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": "lowres",
        "steps": 2,
        "sampler": "Euler a",
        "guidance_scale": 5.0,
        "seed": 2**63 + 5,  # past what a JavaScript number holds exactly
        "width": 64,
        "height": 64,
        "model": "tiny",
        "version": "v4",
        **changes,
    }
    return GenerationParameters(**fields)


def png_with(params: GenerationParameters | None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    info = None if params is None else png_info(params)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def wait_for(http: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = http.get(f"{V1}/jobs/{job_id}").json()
        if state["state"] not in ("queued", "running"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.02)


# --- the page ---------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served(tools: TestClient) -> None:
    page = tools.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Nothing inline, nothing from elsewhere: the page works offline.
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    html = page.text
    assert 'src="static/app.js"' in html
    assert 'href="static/app.css"' in html
    assert "http://" not in html
    assert "https://" not in html
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        response = tools.get(f"/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert "https://" not in response.text
    assert tools.get("/static/../_web.py").status_code == 404
    # The page is not part of the API's description; the JSON routes are.
    paths = tools.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert f"{V1}/generate" in paths


def test_the_script_never_writes_html() -> None:
    script = (STATIC / "app.js").read_text("utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_the_static_files_ship_in_the_wheel() -> None:
    # hatchling packages every file under animagine/ (packages = ["animagine"]) unless
    # excluded; nothing excludes the static folder.
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads(Path(__file__).parents[1].joinpath("pyproject.toml").read_text("utf-8"))
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["animagine"]
    assert "exclude" not in wheel
    assert {p.name for p in STATIC.iterdir()} >= {"index.html", "app.js", "app.css"}


# --- info -------------------------------------------------------------------------------------


def test_info_without_a_model(tools: TestClient) -> None:
    info = tools.get(f"{V1}/info").json()
    v4 = get_version("v4")
    assert info["model"] is None
    assert info["can_generate"] is False
    assert "--model" in info["message"]
    assert info["version"] == {"name": "v4", "title": v4.title}
    assert [v["name"] for v in info["versions"]] == [v.name for v in VERSIONS]
    assert info["defaults"] == {
        "steps": v4.defaults.steps,
        "guidance_scale": v4.defaults.guidance_scale,
        "width": v4.defaults.width,
        "height": v4.defaults.height,
        "sampler": v4.defaults.sampler,
        "negative_prompt": v4.negative_prompt,
        "guidance_range": list(v4.defaults.guidance_range),
        "max_steps_recommended": v4.defaults.max_steps_recommended,
        "add_quality_tags": True,
        "num_images": 1,
    }
    assert set(info["samplers"]) <= set(SAMPLERS)
    assert "Euler a" in info["samplers"]
    assert [(a["width"], a["height"]) for a in info["aspects"]] == list(v4.resolutions)
    assert len(info["aspects"]) == 9
    assert info["limits"]["min_size"] == 64
    assert info["limits"]["max_size"] == 4096
    assert info["hires"]["scale"] == 1.5
    assert info["hires"]["strength"] == 0.55
    assert info["hires"]["upscaler"] in info["hires"]["upscalers"]
    assert info["presets"]["default_quality"] == "Standard v4.0"
    assert "Anim4gine" in info["presets"]["style"]
    assert info["wildcards"] is None
    assert info["history"] is False
    assert info["queue"]["size"] == 20


def test_info_follows_the_version_and_the_servers_files(tmp_path: Path) -> None:
    wildcards = tmp_path / "wildcards"
    wildcards.mkdir()
    (wildcards / "hair.txt").write_text("long hair\nshort hair\n", encoding="utf-8")
    (wildcards / "colour.txt").write_text("red\nblue\n", encoding="utf-8")
    presets = tmp_path / "presets.json"
    presets.write_text(
        json.dumps({"style": [{"name": "Mine", "prompt": "{prompt}, sketch"}]}), encoding="utf-8"
    )
    config = ServeConfig(wildcards=wildcards, presets=presets, queue_size=3)
    with client(version="v3.1", config=config, history=tmp_path / "h.sqlite3") as http:
        info = http.get(f"{V1}/info").json()
    assert info["version"]["name"] == "v3.1"
    assert info["defaults"]["guidance_scale"] == 7.0
    assert info["presets"]["default_quality"] == "Standard v3.1"
    assert "Mine" in info["presets"]["style"]
    assert "Heavy v3.1" in info["presets"]["quality"]
    assert info["wildcards"] == {"names": ["colour", "hair"], "error": None}
    assert info["queue"]["size"] == 3
    assert info["history"] is True


# --- prompt tools -----------------------------------------------------------------------------


def test_lint_reports_positions_and_fixes(tools: TestClient) -> None:
    text = "1girl,\nlonghair, smile"
    answer = tools.post(f"{V1}/lint", json={"text": text})
    assert answer.status_code == 200
    body = answer.json()
    assert body["version"] == "v4"
    alias = next(f for f in body["findings"] if f["code"] == "alias")
    assert alias["severity"] == "warning"
    assert (alias["line"], alias["column"]) == (2, 1)
    assert text[alias["start"] : alias["end"]] == alias["excerpt"] == "longhair"
    assert alias["fix"] == [
        {"start": alias["start"], "end": alias["end"], "replacement": "long hair"}
    ]
    assert [f["index"] for f in body["findings"]] == list(range(len(body["findings"])))
    # A syntax error is a finding, not a failure.
    broken = tools.post(f"{V1}/lint", json={"text": "smile, (1girl"}).json()["findings"]
    assert [f["code"] for f in broken] == ["syntax"]


def test_lint_follows_the_version_asked(tools: TestClient) -> None:
    text = "1girl, smile, very aesthetic"
    v4 = tools.post(f"{V1}/lint", json={"text": text, "version": "v4"}).json()["findings"]
    v31 = tools.post(f"{V1}/lint", json={"text": text, "version": "3.1"}).json()
    assert "wrong-version" in {f["code"] for f in v4}
    assert v31["version"] == "v3.1"
    assert "wrong-version" not in {f["code"] for f in v31["findings"]}


def test_fix_one_finding_or_all(tools: TestClient) -> None:
    text = "1girl, longhair, smile, smile"
    findings = tools.post(f"{V1}/lint", json={"text": text}).json()["findings"]
    alias = next(f for f in findings if f["code"] == "alias")
    one = tools.post(f"{V1}/fix", json={"text": text, "index": alias["index"]}).json()
    assert one["text"] == "1girl, long hair, smile, smile"
    assert "alias" not in {f["code"] for f in one["findings"]}
    every = tools.post(f"{V1}/fix", json={"text": text, "all": True}).json()
    assert every["text"] == "1girl, long hair, smile"
    assert (
        every["findings"]
        == tools.post(f"{V1}/lint", json={"text": every["text"]}).json()["findings"]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "1girl, smile"}, "either index"),
        ({"text": "1girl, longhair", "index": 0, "all": True}, "either index"),
        ({"text": "1girl, longhair", "index": 7}, "index must name a finding"),
        ({"text": "1girl", "index": 0}, "no findings"),
        ({"text": "smile, 1girl", "index": 0}, "has no fix"),
        ({"text": "1girl", "all": True, "version": "v9"}, "unknown Animagine XL version"),
    ],
)
def test_fix_refuses_bad_requests(tools: TestClient, body: dict[str, Any], message: str) -> None:
    answer = tools.post(f"{V1}/fix", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]


def test_canonical_and_convert(tools: TestClient) -> None:
    canonical = tools.post(f"{V1}/canonical", json={"text": "smile, 1girl, masterpiece"})
    assert canonical.json() == {"version": "v4", "text": "1girl, smile, masterpiece"}
    broken = tools.post(f"{V1}/canonical", json={"text": "smile, (1girl"})
    assert broken.status_code == 422
    assert "never closed" in broken.json()["detail"]
    converted = tools.post(
        f"{V1}/convert",
        json={"text": "1girl, smile, rating: general", "from": "v3", "to": "v4"},
    ).json()
    assert converted["from"] == "v3"
    assert converted["to"] == "v4"
    expected = Prompt.parse("1girl, smile, rating: general", version="v3").convert("v4")
    assert converted["text"] == str(expected)
    unknown = tools.post(f"{V1}/convert", json={"text": "1girl", "to": "v7"})
    assert unknown.status_code == 422


def test_requests_name_the_bad_field(tools: TestClient) -> None:
    extra = tools.post(f"{V1}/lint", json={"text": "1girl", "wildcards": "/etc"})
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "wildcards"]
    missing = tools.post(f"{V1}/lint", json={})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "text"]
    too_long = tools.post(f"{V1}/lint", json={"text": "a" * 100_001})
    assert too_long.status_code == 422
    assert "100,000" in too_long.json()["detail"]


def test_tag_search_shows_aliases_with_their_canonical_name(tools: TestClient) -> None:
    matches = tools.get(f"{V1}/tags", params={"q": "longh", "limit": 5}).json()["matches"]
    assert len(matches) == 5
    first = matches[0]
    assert first == {
        "name": "long hair",
        "category": "general",
        "post_count": first["post_count"],
        "alias": "longhair",
        "text": "long hair",
    }
    assert first["post_count"] > 1_000_000
    # A name with parentheses comes escaped, ready for the prompt.
    costume = tools.get(f"{V1}/tags", params={"q": "hoshimachi suisei (1st"}).json()["matches"]
    assert costume[0]["name"] == "hoshimachi suisei (1st costume)"
    assert costume[0]["text"] == "hoshimachi suisei \\(1st costume\\)"
    characters = tools.get(f"{V1}/tags", params={"q": "hoshi", "category": "character"}).json()
    assert {m["category"] for m in characters["matches"]} == {"character"}
    for bad in ({"q": "a", "limit": 0}, {"q": "a", "limit": 101}, {"q": "a", "category": "x"}):
        assert tools.get(f"{V1}/tags", params=bad).status_code == 422


# --- reading an image -------------------------------------------------------------------------


def test_read_image_round_trip(tools: TestClient) -> None:
    params = parameters("1girl, smile, masterpiece", hires=None)
    data = png_with(params)
    raw = tools.post(f"{V1}/read-image", content=data, headers={"Content-Type": "image/png"})
    assert raw.status_code == 200
    body = raw.json()
    assert GenerationParameters.from_json(body["parameters"]) == params
    assert json.loads(body["parameters_text"]) == body["parameters"]
    assert body["infotext"] == params.to_infotext()
    form = body["form"]
    assert form["seed"] == str(2**63 + 5)
    assert form["prompt"] == params.prompt
    assert form["negative_prompt"] == "lowres"
    assert (form["width"], form["height"], form["steps"]) == (64, 64, 2)
    assert form["add_quality_tags"] is False
    assert form["style"] is None
    assert form["quality"] is None
    assert form["hires"] is None
    # The same as base64 JSON, or a data: URL.
    encoded = base64.b64encode(data).decode()
    for image in (encoded, f"data:image/png;base64,{encoded}"):
        again = tools.post(f"{V1}/read-image", json={"image": image})
        assert again.status_code == 200
        assert again.json() == body


def test_read_image_loads_the_hires_settings(tools: TestClient) -> None:
    from animagine.metadata import HiresParameters

    hires = HiresParameters(scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)")
    form = tools.post(f"{V1}/read-image", content=png_with(parameters(hires=hires))).json()["form"]
    assert form["hires"] == hires.to_json()


@pytest.mark.parametrize(
    ("content", "json_body", "message"),
    [
        (b"", None, "empty"),
        (b"not an image", None, "not an image"),
        (None, {"image": "%%%"}, "base64"),
        (None, {"picture": "abc"}, '{"image": base64}'),
        (None, [1, 2], '{"image": base64}'),
    ],
)
def test_read_image_says_what_is_wrong(
    tools: TestClient, content: bytes | None, json_body: Any, message: str
) -> None:
    if content is not None:
        answer = tools.post(f"{V1}/read-image", content=content)
    else:
        answer = tools.post(f"{V1}/read-image", json=json_body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]


def test_read_image_without_parameters(tools: TestClient, tmp_path: Path) -> None:
    answer = tools.post(f"{V1}/read-image", content=png_with(None))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "no generation parameters" in detail
    assert "animagine-read-" not in detail  # the server's temporary file is not named


def test_read_image_respects_the_body_limit() -> None:
    with client(config=ServeConfig(max_body_bytes=1000)) as http:
        answer = http.post(f"{V1}/read-image", content=b"x" * 1001)
        assert answer.status_code == 413


# --- generation without a model ---------------------------------------------------------------


def test_without_a_model_generation_is_503(tools: TestClient) -> None:
    answer = tools.post(f"{V1}/generate", json={"prompt": "1girl", **SMALL})
    assert answer.status_code == 503
    assert "--model" in answer.json()["detail"]
    assert tools.get(f"{V1}/jobs/abc").status_code == 503
    assert tools.post(f"{V1}/jobs/abc/interrupt").status_code == 503
    assert tools.get(f"{V1}/history").status_code == 404


def test_the_generate_request_is_the_option_record(tools: TestClient) -> None:
    """Every option of GenerationOptions, by its Python name, but the server's own files."""
    schema = tools.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]
    assert set(schema["properties"]) == set(OPTION_NAMES) - {"presets", "wildcards"}
    assert schema["required"] == ["prompt"]
    for name in ("wildcards", "presets"):
        answer = tools.post(f"{V1}/generate", json={"prompt": "1girl", name: "/etc"})
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", name]


# --- generation with the tiny model -----------------------------------------------------------


@pytest.mark.generate
def test_generate_poll_and_fetch_the_image(gen: Any, tmp_path: Path) -> None:
    from animagine import read_parameters

    with client(gen, history=History(tmp_path / "h.sqlite3")) as http:
        info = http.get(f"{V1}/info").json()
        assert info["can_generate"] is True
        assert info["model"] == gen.model
        queued = http.post(
            f"{V1}/generate",
            json={"prompt": "smile, 1girl", "seed": "12", "num_images": 2, **SMALL},
        )
        assert queued.status_code == 200, queued.text
        job = queued.json()
        assert job["count"] == 2
        assert job["seeds"] == ["12", "13"]
        assert job["position"] in (0, 1)
        assert job["url"] == f"{V1}/jobs/{job['id']}"
        done = wait_for(http, job["id"])
        assert done["state"] == "done"
        assert done["position"] is None
        assert done["error"] is None
        progress = done["progress"]
        assert progress["steps_done"] == progress["steps_total"] > 0
        assert progress["fraction"] == 1.0
        assert progress["images"] == [1.0, 1.0]
        assert [image["seed"] for image in done["images"]] == ["12", "13"]
        first = done["images"][0]
        assert first["url"] == f"{V1}/jobs/{job['id']}/images/0.png"
        assert first["history_id"] is not None
        assert first["parameters"]["prompt"].startswith("1girl, smile")
        assert first["form"]["seed"] == "12"
        png = http.get(first["url"])
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        path = tmp_path / "image.png"
        path.write_bytes(png.content)
        assert read_parameters(path).to_json() == first["parameters"]
        assert http.get(f"{V1}/jobs/{job['id']}/images/2.png").status_code == 404
        assert http.get(f"{V1}/jobs/nope").status_code == 404
        # The same image read back through the API gives the form that makes it again.
        read = http.post(f"{V1}/read-image", content=png.content).json()
        assert read["form"] == first["form"]
        again = http.post(f"{V1}/generate", json=read["form"]).json()
        assert again["seeds"] == ["12"]
        remade = wait_for(http, again["id"])
        assert remade["images"][0]["parameters"] == first["parameters"]


@pytest.mark.generate
def test_generate_refuses_bad_options_with_their_name(gen: Any) -> None:
    bad = [
        ({"width": 65, "height": 64}, "width"),
        ({"width": 32, "height": 64}, "width"),
        ({"steps": 0}, "steps"),
        ({"guidance_scale": 100}, "guidance_scale"),
        ({"sampler": "Euler z"}, "sampler"),
        ({"aspect": "5:1"}, "aspect"),
        ({"hires": {"scale": 9}}, "hires"),
        ({"hires": {"scale": 1.5, "bogus": 1}}, "bogus"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"seed": -1}, "seed"),
        ({"steps": True}, "steps"),
        ({"steps": "2"}, "steps"),
        ({"add_quality_tags": "yes"}, "add_quality_tags"),
        ({"num_images": 0}, "num_images"),
        ({"style": "No such style"}, "No such style"),
        ({"variants": "sometimes"}, "variants"),
        ({"prompt": "smile, (1girl"}, "never closed"),
    ]
    with client(gen) as http:
        for change, name in bad:
            answer = http.post(f"{V1}/generate", json={"prompt": "1girl", **SMALL, **change})
            assert answer.status_code == 422, change
            assert name in json.dumps(answer.json()["detail"]), (change, answer.json())
        assert http.get(f"{V1}/info").json()["queue"]["waiting"] == 0


@pytest.mark.generate
def test_presets_and_hires_reach_the_generator(gen: Any) -> None:
    with client(gen) as http:
        queued = http.post(
            f"{V1}/generate",
            json={
                "prompt": "1girl, smile",
                "style": "Pixel art",
                "quality": "Standard v4.0",
                "add_quality_tags": True,
                "hires": {"scale": 1.5, "strength": 0.5},
                "seed": 3,
                **SMALL,
            },
        ).json()
        done = wait_for(http, queued["id"])
        assert done["state"] == "done", done
        # 2 steps, then the hires pass's int(2 * 0.5) = 1: the progress counts what runs.
        assert done["progress"]["steps_done"] == done["progress"]["steps_total"] == 3
        recorded = done["images"][0]["parameters"]
        assert recorded["style"] == "Pixel art"
        assert recorded["quality"] == "Standard v4.0"
        assert "pixel art" in recorded["prompt"]
        assert recorded["hires"]["scale"] == 1.5
        assert recorded["hires"]["strength"] == 0.5
        assert done["images"][0]["form"]["hires"]["scale"] == 1.5


@pytest.mark.generate
def test_wildcards_come_from_the_servers_folder(gen: Any, tmp_path: Path) -> None:
    folder = tmp_path / "wildcards"
    folder.mkdir()
    (folder / "hair.txt").write_text("long hair\n", encoding="utf-8")
    with client(gen, config=ServeConfig(wildcards=folder)) as http:
        queued = http.post(
            f"{V1}/generate", json={"prompt": "1girl, __hair__", "variants": "demo", **SMALL}
        ).json()
        done = wait_for(http, queued["id"])
        recorded = done["images"][0]["parameters"]
        assert "long hair" in recorded["prompt"]
        assert recorded["template"] == "1girl, __hair__"
        unknown = http.post(f"{V1}/generate", json={"prompt": "1girl, __eyes__", **SMALL})
        assert unknown.status_code == 422
        assert "eyes" in unknown.json()["detail"]


@pytest.mark.generate
def test_queue_position_interrupt_and_cancel(gen: Any) -> None:
    with client(gen) as http:
        slow = http.post(f"{V1}/generate", json={"prompt": "1girl", **SMALL, "steps": 150}).json()
        waiting = http.post(f"{V1}/generate", json={"prompt": "1boy", **SMALL}).json()
        assert waiting["position"] >= 1
        assert http.get(f"{V1}/jobs/{waiting['id']}").json()["position"] >= 1
        cancelled = http.post(f"{V1}/jobs/{waiting['id']}/interrupt").json()
        assert cancelled == {"id": waiting["id"], "interrupted": True}
        assert http.get(f"{V1}/jobs/{waiting['id']}").json()["state"] == "cancelled"
        assert http.post(f"{V1}/jobs/{slow['id']}/interrupt").json()["interrupted"] is True
        stopped = wait_for(http, slow["id"])
        assert stopped["state"] == "interrupted"
        assert stopped["progress"]["steps_done"] < stopped["progress"]["steps_total"]
        assert http.post(f"{V1}/jobs/nope/interrupt").status_code == 404


# --- the history ------------------------------------------------------------------------------


def make_images(http: TestClient, *prompts: str) -> list[int]:
    ids = []
    for prompt in prompts:
        queued = http.post(f"{V1}/generate", json={"prompt": prompt, **SMALL}).json()
        done = wait_for(http, queued["id"])
        assert done["state"] == "done", done
        ids.extend(image["history_id"] for image in done["images"])
    return ids


@pytest.mark.generate
def test_history_survives_reopening_its_file(gen: Any, tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with client(gen, history=History(path)) as http:
        ids = make_images(http, "1girl, smile", "1boy, night")
        first = http.get(f"{V1}/history").json()
        assert [e["id"] for e in first["entries"]] == ids[::-1]
        png = http.get(first["entries"][0]["url"]).content
    # A new server on the same file: the old images are there.
    with client(gen, history=History(path)) as http:
        listed = http.get(f"{V1}/history").json()
        assert [e["id"] for e in listed["entries"]] == ids[::-1]
        assert listed["total"] == 2
        assert http.get(f"{V1}/history/{ids[-1]}.png").content == png
        entry = http.get(f"{V1}/history/{ids[0]}").json()
        assert entry["parameters"]["prompt"].startswith("1girl, smile")
    # And a server without a model still shows the history.
    with client(history=History(path)) as http:
        assert http.get(f"{V1}/history").json()["total"] == 2


@pytest.mark.generate
def test_history_search_favourites_pages_and_delete(gen: Any, tmp_path: Path) -> None:
    with client(gen, history=History(tmp_path / "h.sqlite3")) as http:
        girl, boy, girl_night = make_images(
            http, "1girl, smile", "1boy, smile", "1girl, night, smile"
        )
        search = http.get(f"{V1}/history", params={"q": "1girl"}).json()
        assert [e["id"] for e in search["entries"]] == [girl_night, girl]
        both = http.get(f"{V1}/history", params={"q": "1girl, Night"}).json()
        assert [e["id"] for e in both["entries"]] == [girl_night]
        # Favourites
        marked = http.post(f"{V1}/history/{boy}/favourite", json={"favourite": True})
        assert marked.json() == {"id": boy, "favourite": True}
        favourites = http.get(f"{V1}/history", params={"favourites": "true"}).json()
        assert [e["id"] for e in favourites["entries"]] == [boy]
        assert favourites["entries"][0]["favourite"] is True
        http.post(f"{V1}/history/{boy}/favourite", json={"favourite": False})
        assert http.get(f"{V1}/history", params={"favourites": "true"}).json()["entries"] == []
        assert http.post(f"{V1}/history/999/favourite", json={}).status_code == 404
        # Pages
        page = http.get(f"{V1}/history", params={"limit": 2}).json()
        assert [e["id"] for e in page["entries"]] == [girl_night, boy]
        assert page["next_before"] == boy
        rest = http.get(f"{V1}/history", params={"limit": 2, "before": boy}).json()
        assert [e["id"] for e in rest["entries"]] == [girl]
        assert rest["next_before"] is None
        exact = http.get(f"{V1}/history", params={"limit": 3}).json()
        assert exact["next_before"] is None
        assert http.get(f"{V1}/history", params={"limit": 0}).status_code == 422
        blank = http.get(f"{V1}/history?q=&favourites=&before=&limit=").json()  # all unset
        assert [e["id"] for e in blank["entries"]] == [girl_night, boy, girl]
        # Delete
        assert http.delete(f"{V1}/history/{boy}").json() == {"id": boy, "deleted": True}
        assert http.delete(f"{V1}/history/{boy}").status_code == 404
        assert http.get(f"{V1}/history/{boy}.png").status_code == 404
        assert http.get(f"{V1}/history").json()["total"] == 2


@pytest.mark.generate
def test_without_history_jobs_still_work(gen: Any) -> None:
    with client(gen) as http:
        queued = http.post(f"{V1}/generate", json={"prompt": "1girl", **SMALL}).json()
        done = wait_for(http, queued["id"])
        assert done["images"][0]["history_id"] is None
        assert http.get(f"{V1}/history").status_code == 404
        assert http.get(f"{V1}/history/1.png").status_code == 404


METADATA = Path(__file__).parent / "data" / "metadata"
FOREIGN = sorted([*METADATA.glob("a1111_*.txt"), *METADATA.glob("demo_*.json")])


@pytest.mark.parametrize("fixture", FOREIGN, ids=[path.stem for path in FOREIGN])
def test_read_image_of_other_tools(tools: TestClient, fixture: Path) -> None:
    """Images as A1111 and the official demos write them: the form gets what the library reads."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from animagine import MetadataError, read_parameters

    text = fixture.read_text("utf-8")
    chunks = PngInfo()
    # A1111 writes its infotext in `parameters`; the 3.x demos their JSON in `metadata`, the
    # 4.0-era demo its JSON in `parameters`.
    key = "metadata" if fixture.stem.startswith("demo_3") else "parameters"
    chunks.add_text(key, text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunks)
    answer = tools.post(f"{V1}/read-image", content=buffer.getvalue())
    buffer.seek(0)
    if fixture.stem == "a1111_missing_seed":  # invalid on purpose: a 422 with the reason
        with pytest.raises(MetadataError, match="Seed"):
            read_parameters(Image.open(buffer))
        assert answer.status_code == 422
        assert "Seed" in answer.text
        return
    expected = read_parameters(Image.open(buffer))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert GenerationParameters.from_json(body["parameters"]) == expected
    form = body["form"]
    assert form["prompt"] == expected.prompt
    assert form["seed"] == str(expected.seed)
    assert (form["width"], form["height"], form["steps"]) == (
        expected.width,
        expected.height,
        expected.steps,
    )
