"""A1111's HTTP API of ``animagine serve`` (``/sdapi/v1``) on the tiny random SDXL.

Most checks speak to the app in process (``TestClient``); the ``webuiapi`` client from PyPI,
unchanged, drives a real server on a socket for the calls A1111 users make.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the app extra")

from fastapi.testclient import TestClient
from serving import live_server

from animagine.apps.serve import History, ServeConfig, Worker, create_app
from animagine.generation import GenerationOptions

pytestmark = [
    pytest.mark.generate,
]

URL = "/sdapi/v1"
SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}
IGNORED = "X-Animagine-Ignored"


@pytest.fixture(scope="module")
def gen(tiny_pipeline: Any) -> Any:
    from animagine.generation import Generator

    return Generator(tiny_pipeline, version="v4")


@pytest.fixture
def client(gen: Any) -> Iterator[TestClient]:
    with TestClient(create_app(gen, history=History(":memory:"))) as test_client:
        yield test_client


def txt2img(client: TestClient, **fields: Any) -> Any:
    return client.post(f"{URL}/txt2img", json={**SMALL, **fields})


def info_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    info: dict[str, Any] = json.loads(response.json()["info"])
    return info


def png(data: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(data)))


def pixels(image: Any) -> Any:
    import numpy as np

    return np.asarray(image.convert("RGB")).astype(np.int16)


def errors(response: Any) -> list[tuple[str, ...]]:
    assert response.status_code == 422, response.text
    return [tuple(error["loc"]) for error in response.json()["detail"]]


class Gated:
    """A generator whose calls wait for :attr:`gate` (or fail with :attr:`failure`)."""

    def __init__(self, generator: Any, failure: Exception | None = None) -> None:
        self._generator = generator
        self.gate = threading.Event()
        self.failure = failure

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.failure is not None:
            raise self.failure
        assert self.gate.wait(30)
        return self._generator(*args, **kwargs)


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- txt2img ----------------------------------------------------------------------------------


def test_txt2img_returns_pngs_that_carry_their_infotext(client: TestClient) -> None:
    response = txt2img(client, prompt="1girl, smile", seed=100, batch_size=2, n_iter=2)
    info = info_of(response)
    body = response.json()
    assert info["all_seeds"] == [100, 101, 102, 103]  # run k starts at seed + k * batch_size
    assert info["seed"] == 100
    assert info["batch_size"] == 2
    assert len(body["images"]) == 4
    for data, infotext, seed in zip(
        body["images"], info["infotexts"], info["all_seeds"], strict=True
    ):
        image = png(data)
        assert image.size == (64, 64)
        assert image.info["parameters"] == infotext
        assert json.loads(image.info["animagine"])["seed"] == seed
        assert f"Seed: {seed}," in infotext
    # The prompt as sent: no quality tags added, and an empty negative prompt stays empty.
    assert info["all_prompts"] == ["1girl, smile"] * 4
    assert info["negative_prompt"] == ""
    assert (info["width"], info["height"], info["steps"]) == (64, 64, 2)
    assert info["sampler_name"] == "Euler a"  # the version's when the request names none
    assert info["cfg_scale"] == 5.0
    assert info["clip_skip"] == 1
    assert len(info["job_timestamp"]) == 14
    assert body["parameters"]["prompt"] == "1girl, smile"
    assert body["parameters"]["n_iter"] == 2
    assert IGNORED not in response.headers


def test_txt2img_seed_minus_one_draws_one_and_the_runs_follow_on(client: TestClient) -> None:
    info = info_of(txt2img(client, prompt="1girl", seed=-1, n_iter=2))
    first = info["all_seeds"][0]
    assert info["all_seeds"] == [first, first + 1]
    for seed, infotext in zip(info["all_seeds"], info["infotexts"], strict=True):
        assert f"Seed: {seed}," in infotext
    again = info_of(txt2img(client, prompt="1girl", seed=-1))
    assert again["seed"] != first  # drawn anew (two equal 32-bit draws: a 1 in 2**32 chance)


def test_txt2img_negative_prompt_and_sampler_as_sent(client: TestClient) -> None:
    info = info_of(
        txt2img(
            client,
            prompt="1girl",
            negative_prompt="lowres, bad hands",
            sampler_name="DPM++ 2M",
            scheduler="Karras",
            cfg_scale=6.5,
            seed=1,
        )
    )
    assert info["negative_prompt"] == "lowres, bad hands"
    assert info["sampler_name"] == "DPM++ 2M Karras"
    assert "Sampler: DPM++ 2M Karras" in info["infotexts"][0]
    assert "CFG scale: 6.5" in info["infotexts"][0]


@pytest.mark.parametrize(
    ("fields", "sampler"),
    [
        ({"sampler_name": "k_euler"}, "Euler"),
        ({"sampler_name": "DPM++ 2M Karras", "scheduler": "automatic"}, "DPM++ 2M Karras"),
        ({"sampler_name": "DPM++ 2M", "scheduler": "Uniform"}, "DPM++ 2M"),
        # A1111 1.9+: "automatic" (or no scheduler) is the sampler's own schedule.
        ({"sampler_name": "DPM++ 2M"}, "DPM++ 2M Karras"),
        ({"sampler_name": "DPM++ 2M", "scheduler": "automatic"}, "DPM++ 2M Karras"),
        ({"sampler_name": "DPM2 a", "scheduler": "Automatic"}, "DPM2 a Karras"),
        ({"sampler_name": "Euler a", "scheduler": "automatic"}, "Euler a"),
        ({"sampler_name": "DPM++ 2M SDE", "scheduler": "Uniform"}, "DPM++ 2M SDE"),
        ({"sampler_index": "Euler"}, "Euler"),  # A1111's old field, when sampler_name is absent
        ({"sampler_name": "Euler", "sampler_index": "Euler a"}, "Euler"),
    ],
)
def test_txt2img_sampler_and_scheduler(
    client: TestClient, fields: dict[str, Any], sampler: str
) -> None:
    assert info_of(txt2img(client, prompt="1girl", seed=1, **fields))["sampler_name"] == sampler


def test_txt2img_automatic_schedule_we_lack_is_refused(client: TestClient) -> None:
    refused = txt2img(client, prompt="1girl", sampler_name="DPM++ 2M SDE", scheduler="automatic")
    assert refused.status_code == 422
    assert errors(refused) == [("body", "scheduler")]
    assert "Exponential" in refused.json()["detail"][0]["msg"]


def test_txt2img_hires_fix(client: TestClient) -> None:
    response = txt2img(
        client,
        prompt="1girl",
        seed=3,
        enable_hr=True,
        hr_scale=1.5,
        denoising_strength=0.5,
        hr_upscaler="Latent",
        hr_second_pass_steps=4,
        hr_prompt="",
        hr_sampler_name="Use same sampler",
    )
    info = info_of(response)
    assert png(response.json()["images"][0]).size == (96, 96)
    assert (info["width"], info["height"]) == (64, 64)  # A1111 reports the first pass's size
    assert info["denoising_strength"] == 0.5
    infotext = info["infotexts"][0]
    for part in ("Denoising strength: 0.5", "Hires upscale: 1.5", "Hires steps: 4"):
        assert part in infotext
    assert "Hires upscaler: Latent," in infotext
    assert info["extra_generation_params"]["Hires upscale"] == "1.5"
    # Without enable_hr the hires fields change nothing, as in A1111.
    plain = txt2img(client, prompt="1girl", seed=3, hr_scale=1.5, hr_resize_x=999)
    assert png(plain.json()["images"][0]).size == (64, 64)


def test_txt2img_styles_are_the_versions_presets(client: TestClient) -> None:
    info = info_of(txt2img(client, prompt="1girl", seed=1, styles=["Anim4gine", "Standard v4.0"]))
    prompt = info["prompt"]
    assert "depth of field" in prompt  # Anim4gine
    assert "masterpiece" in prompt  # the quality preset
    assert info["styles"] == ["Anim4gine", "Standard v4.0"]
    assert "Style preset: Anim4gine" in info["infotexts"][0]


def test_txt2img_clip_stop_at_last_layers(client: TestClient) -> None:
    plain = txt2img(client, prompt="1girl", seed=9)
    two = txt2img(client, prompt="1girl", seed=9, override_settings={"CLIP_stop_at_last_layers": 2})
    # 1 and 2 are SDXL's default (the penultimate layer): the same image.
    assert (pixels(png(plain.json()["images"][0])) == pixels(png(two.json()["images"][0]))).all()
    assert "Clip skip" not in info_of(two)["infotexts"][0]
    assert info_of(two)["clip_skip"] == 2
    three = txt2img(
        client, prompt="1girl", seed=9, override_settings={"CLIP_stop_at_last_layers": 3}
    )
    assert info_of(three)["clip_skip"] == 3
    assert "Clip skip: 3" in info_of(three)["infotexts"][0]  # A1111's count: as asked
    assert (pixels(png(plain.json()["images"][0])) != pixels(png(three.json()["images"][0]))).any()
    for value in (7, "2", 0):  # the tiny model has 5 layers
        bad = txt2img(client, prompt="1girl", override_settings={"CLIP_stop_at_last_layers": value})
        assert errors(bad) == [("body", "override_settings", "CLIP_stop_at_last_layers")]


def test_txt2img_checkpoint_is_compared_by_name(gen: Any) -> None:
    app = create_app(gen, model="animagine-xl-4.0.safetensors")
    with TestClient(app) as client:
        for name in (
            "animagine-xl-4.0.safetensors",
            "animagine-xl-4.0",
            "animagine-xl-4.0 [abc1234567]",
        ):
            ok = txt2img(client, prompt="1girl", override_settings={"sd_model_checkpoint": name})
            assert ok.status_code == 200, name
        bad = txt2img(
            client, prompt="1girl", override_settings={"sd_model_checkpoint": "/etc/passwd"}
        )
        assert errors(bad) == [("body", "override_settings", "sd_model_checkpoint")]
        assert client.get(f"{URL}/sd-models").json()[0]["model_name"] == "animagine-xl-4.0"
        options = client.post(f"{URL}/options", json={"sd_model_checkpoint": "animagine-xl-4.0"})
        assert options.status_code == 200
        other = client.post(f"{URL}/options", json={"sd_model_checkpoint": "other"})
        assert errors(other) == [("body", "sd_model_checkpoint")]
        ignored = client.post(f"{URL}/options", json={"samples_format": "jpg"})
        assert ignored.headers[IGNORED] == "samples_format"


def test_sd_models_never_shows_the_servers_path(gen: Any, tmp_path: Path) -> None:
    weights = tmp_path / "private" / "animagine-xl-3.1.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"")
    with TestClient(create_app(gen, model=str(weights))) as client:
        [model] = client.get(f"{URL}/sd-models").json()
        assert model["title"] == model["filename"] == "animagine-xl-3.1.safetensors"
        assert model["model_name"] == "animagine-xl-3.1"
        assert str(tmp_path) not in client.get(f"{URL}/options").text
        by_path = {"sd_model_checkpoint": str(weights)}
        assert txt2img(client, prompt="1girl", override_settings=by_path).status_code == 422


def test_txt2img_send_and_save_images(gen: Any) -> None:
    history = History(":memory:")
    with TestClient(create_app(gen, history=history)) as client:
        quiet = txt2img(client, prompt="1girl", seed=5, send_images=False)
        assert quiet.json()["images"] == []
        assert info_of(quiet)["all_seeds"] == [5]
        assert len(history) == 0  # save_images is false by default, as in A1111
        saved = txt2img(client, prompt="1girl", seed=6, batch_size=2, save_images=True)
        assert len(saved.json()["images"]) == 2
        assert len(history) == 2


# --- what the server refuses, ignores and checks ------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"restore_faces": True}, "restore_faces"),
        ({"tiling": True}, "tiling"),
        ({"subseed_strength": 0.3}, "subseed_strength"),
        ({"seed_resize_from_w": 128}, "seed_resize_from_w"),
        ({"seed_resize_from_h": 128}, "seed_resize_from_h"),
        ({"s_min_uncond": 0.5}, "s_min_uncond"),
        ({"refiner_checkpoint": "refiner.safetensors"}, "refiner_checkpoint"),
        ({"firstpass_image": "aGVsbG8="}, "firstpass_image"),
        ({"script_name": "x/y/z plot"}, "script_name"),
        ({"alwayson_scripts": {"ControlNet": {"args": []}}}, "alwayson_scripts"),
        ({"infotext": "1girl\nSteps: 2, Seed: 1, Size: 64x64"}, "infotext"),
        ({"firstphase_width": 64}, "firstphase_width"),
        ({"eta": 0.5}, "eta"),  # Euler a runs with eta 1
        ({"sampler_name": "DDIM", "eta": 1.0}, "eta"),  # DDIM with eta 0
        ({"s_noise": 0.9}, "s_noise"),
        ({"sampler_name": "Euler", "s_churn": 1.0}, "s_churn"),
        ({"sampler_name": "Euler a", "scheduler": "Karras"}, "scheduler"),
        ({"sampler_name": "DPM++ 2M", "scheduler": "Exponential"}, "scheduler"),
        ({"sampler_name": "DPM++ 2M Karras", "scheduler": "Uniform"}, "scheduler"),
        ({"sampler_name": "Euler z"}, "sampler_name"),
        ({"styles": ["No such style"]}, "styles"),
        ({"styles": ["Anim4gine", "Toon"]}, "styles"),
        ({"enable_hr": True, "hr_upscaler": "R-ESRGAN 4x+"}, "hr_upscaler"),
        ({"enable_hr": True, "hr_resize_x": 128}, "hr_resize_x"),
        ({"enable_hr": True, "hr_prompt": "1boy"}, "hr_prompt"),
        ({"enable_hr": True, "hr_negative_prompt": "lowres"}, "hr_negative_prompt"),
        ({"enable_hr": True, "hr_sampler_name": "DDIM"}, "hr_sampler_name"),
        ({"enable_hr": True, "hr_scheduler": "Karras"}, "hr_scheduler"),
        ({"enable_hr": True, "hr_checkpoint_name": "other.safetensors"}, "hr_checkpoint_name"),
    ],
)
def test_txt2img_refuses_what_would_change_the_image(
    client: TestClient, fields: dict[str, Any], loc: str
) -> None:
    assert errors(txt2img(client, prompt="1girl", **fields)) == [("body", loc)]


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"cfg_scale": 0}, "cfg_scale"),
        ({"cfg_scale": 31}, "cfg_scale"),
        ({"width": 63}, "width"),
        ({"height": 8192}, "height"),
        ({"steps": 0}, "steps"),
        ({"seed": -2}, "seed"),
        ({"seed": 2**64 - 1, "batch_size": 2}, "seed"),
        ({"batch_size": 65}, "batch_size"),
        ({"n_iter": 0}, "n_iter"),
        ({"batch_size": 8, "n_iter": 9}, "n_iter"),
        ({"prompt": "1girl, <lora:style:0.8>"}, "prompt"),
        ({"prompt": "1girl, (smile"}, "prompt"),
        ({"negative_prompt": "lowres, (bad"}, "negative_prompt"),
        ({"enable_hr": True, "hr_scale": 5}, "hr_scale"),
        ({"enable_hr": True, "hr_scale": 1.5, "width": 4000, "height": 64}, "hr_scale"),
        ({"enable_hr": True, "denoising_strength": 0}, "denoising_strength"),
        ({"enable_hr": True, "denoising_strength": 0.1}, "denoising_strength"),  # 0 steps
        ({"enable_hr": True, "hr_second_pass_steps": -1}, "hr_second_pass_steps"),
    ],
)
def test_txt2img_checks_each_field(client: TestClient, fields: dict[str, Any], loc: str) -> None:
    response = txt2img(client, **{"prompt": "1girl", **fields})
    assert errors(response) == [("body", loc)]
    assert response.json()["detail"][0]["type"] == "value_error"


def test_txt2img_messages_name_the_a1111_field(client: TestClient) -> None:
    detail = txt2img(client, prompt="1girl", cfg_scale=0, batch_size=99).json()["detail"]
    messages = {error["loc"][-1]: error["msg"] for error in detail}
    assert messages["cfg_scale"].startswith("cfg_scale must be above 0")
    assert messages["batch_size"].startswith("batch_size must be between 1 and 64")


def test_txt2img_type_errors_are_fastapis_own(client: TestClient) -> None:
    response = txt2img(client, prompt="1girl", steps="many", enable_hr={"on": 1})
    assert sorted(errors(response)) == [("body", "enable_hr"), ("body", "steps")]
    assert response.json()["detail"][0]["type"] != "value_error"


def test_txt2img_names_what_it_ignores_in_a_header(client: TestClient) -> None:
    response = txt2img(
        client,
        prompt="1girl",
        seed=1,
        sampler_name="Euler a",
        sampler_index="Euler a",
        do_not_save_samples=True,
        do_not_save_grid=True,
        override_settings_restore_afterwards=False,
        firstphase_width=0,
        script_args=[1, 2],
        my_extension_option=True,
        override_settings={"eta_noise_seed_delta": 31337},
        # Refusable fields at the values that ask for nothing: accepted and not named.
        restore_faces=False,
        tiling=False,
        subseed=-1,
        subseed_strength=0,
        eta=1.0,
        s_churn=0,
        alwayson_scripts={},
    )
    assert response.status_code == 200, response.text
    names = response.headers[IGNORED].split(", ")
    assert sorted(names) == sorted(
        [
            "do_not_save_samples",
            "do_not_save_grid",
            "override_settings_restore_afterwards",
            "firstphase_width",
            "script_args",
            "sampler_index",
            "my_extension_option",
            "override_settings.eta_noise_seed_delta",
        ]
    )
    assert response.json()["parameters"]["my_extension_option"] is True


def test_ignored_header_is_safe_for_any_field_name(client: TestClient) -> None:
    response = txt2img(client, prompt="1girl", **{"caf\u00e9\r\nX-Evil: 1": 1})
    assert response.status_code == 200
    assert response.headers[IGNORED] == "caf%C3%A9%0D%0AX-Evil%3A%201"
    assert "X-Evil" not in response.headers


def test_txt2img_without_a_model_is_503() -> None:
    with TestClient(create_app(None)) as client:
        response = txt2img(client, prompt="1girl")
        assert response.status_code == 503
        assert "--model" in response.json()["detail"]
        assert client.get(f"{URL}/sd-models").json() == []
        assert client.get(f"{URL}/options").json()["sd_model_checkpoint"] is None
        assert client.post(f"{URL}/interrupt").json() == {}
        assert client.get(f"{URL}/progress").json()["progress"] == 0


def test_txt2img_with_a_full_queue_is_503(gen: Any) -> None:
    app = create_app(gen)
    with TestClient(app) as client:
        service = app.state.service
        own = service.worker
        stopped = Worker(gen, queue_size=1, start=False)
        service.worker = stopped
        own.close()
        stopped.submit([GenerationOptions(prompt="1girl", **SMALL)])  # fills the queue
        response = txt2img(client, prompt="1girl")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "queue is full" in response.json()["detail"]
        progress = client.get(f"{URL}/progress").json()
        assert progress["textinfo"] == "1 waiting"


def test_a_failed_job_is_500(gen: Any) -> None:
    with TestClient(create_app(Gated(gen, failure=RuntimeError("out of memory")))) as client:
        response = txt2img(client, prompt="1girl")
        assert response.status_code == 500
        assert response.json()["detail"] == "RuntimeError: out of memory"


def test_interrupt_returns_what_the_job_made(gen: Any) -> None:
    gated = Gated(gen)
    app = create_app(gated)
    with TestClient(app) as client:
        worker = app.state.service.worker
        answer: dict[str, Any] = {}
        request = threading.Thread(
            target=lambda: answer.update(
                response=txt2img(client, prompt="1girl", seed=11, n_iter=2)
            )
        )
        request.start()
        wait_until(lambda: worker.current is not None)
        state = client.get(f"{URL}/progress").json()["state"]
        assert (state["job"], state["job_count"], state["interrupted"]) == ("txt2img", 2, False)
        assert client.post(f"{URL}/interrupt").json() == {}
        assert client.get(f"{URL}/progress").json()["state"]["interrupted"] is True
        gated.gate.set()
        request.join(30)
        info = info_of(answer["response"])
        assert info["all_seeds"] == [11]  # the first run, stopped early; the second never ran
        assert len(answer["response"].json()["images"]) == 1


def test_request_bodies_are_size_limited(gen: Any) -> None:
    with TestClient(create_app(gen, config=ServeConfig(max_body_bytes=2048))) as client:
        response = txt2img(client, prompt="1girl, " * 1000)
        assert response.status_code == 413


def test_api_auth_protects_the_a1111_routes(gen: Any) -> None:
    with TestClient(create_app(gen, config=ServeConfig(api_auth="user:secret"))) as client:
        assert client.get(f"{URL}/samplers").status_code == 401
        assert client.get(f"{URL}/samplers", auth=("user", "secret")).status_code == 200


# --- the other routes -------------------------------------------------------------------------


def test_samplers_schedulers_and_styles(client: TestClient) -> None:
    samplers = {item["name"]: item for item in client.get(f"{URL}/samplers").json()}
    assert {"Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM"} <= set(samplers)
    assert samplers["DPM++ 2M Karras"]["options"] == {"scheduler": "karras"}
    assert "k_euler_a" in samplers["Euler a"]["aliases"]
    schedulers = [item["name"] for item in client.get(f"{URL}/schedulers").json()]
    assert schedulers == ["automatic", "uniform", "karras"]
    styles = {item["name"]: item for item in client.get(f"{URL}/prompt-styles").json()}
    assert styles["Anim4gine"]["prompt"].startswith("{prompt}, depth of field")
    assert styles["Anim4gine"]["negative_prompt"] == ""
    assert styles["Standard v4.0"]["prompt"].endswith("absurdres")
    assert client.get(f"{URL}/scripts").json() == {"txt2img": [], "img2img": []}


@pytest.mark.parametrize(("version", "joiner"), [("v3.1", ", "), ("v3", "")])
def test_prompt_styles_in_a1111_form(version: str, joiner: str) -> None:
    from animagine.core import presets_for

    with TestClient(create_app(None, version=version)) as client:
        items = client.get(f"{URL}/prompt-styles").json()
    names = [item["name"] for item in items]
    assert names.count("(None)") == 1  # a style and a quality preset: the style is listed
    styles = {item["name"]: item for item in items}
    # The preset's negative comes before the user's ("{prompt}"): joined with ", " as the 3.1
    # demo does, or concatenated as the 3.0 demo does (its texts end with ", ").
    own = presets_for(version).style_preset("Anime").negative_prompt
    assert own.startswith("nsfw, photo")
    assert styles["Anime"]["negative_prompt"] == f"{own}{joiner}{{prompt}}"
    assert styles["Anime"]["prompt"].startswith("{prompt}, anime artwork")


def test_txt2img_style_negative_goes_before_the_users(tiny_pipeline: Any) -> None:
    from animagine.generation import Generator

    gen_v31 = Generator(tiny_pipeline, version="v3.1")
    with TestClient(create_app(gen_v31)) as client:
        info = info_of(
            txt2img(client, prompt="1girl", negative_prompt="lowres", seed=1, styles=["anime"])
        )
    assert info["negative_prompt"] == (
        "nsfw, photo, deformed, black and white, realism, disfigured, low contrast, lowres"
    )
    assert info["prompt"].startswith("1girl, anime artwork")


def test_png_info_of_a_generated_image(client: TestClient) -> None:
    image = txt2img(client, prompt="1girl, smile", seed=21).json()["images"][0]
    infotext = png(image).info["parameters"]
    for sent in (image, "data:image/png;base64," + image):
        answer = client.post(f"{URL}/png-info", json={"image": sent}).json()
        assert answer["info"] == infotext
        assert answer["parameters"]["Prompt"] == "1girl, smile"
        assert answer["parameters"]["Seed"] == "21"
        assert (answer["parameters"]["Size-1"], answer["parameters"]["Size-2"]) == ("64", "64")
        assert json.loads(answer["items"]["animagine"])["seed"] == 21


def test_png_info_reads_our_json_when_the_infotext_is_gone(client: TestClient) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    image = png(txt2img(client, prompt="1girl", seed=4).json()["images"][0])
    chunks = PngInfo()
    chunks.add_text("animagine", image.info["animagine"])
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunks)
    answer = client.post(
        f"{URL}/png-info", json={"image": base64.b64encode(buffer.getvalue()).decode()}
    ).json()
    assert answer["info"] == image.info["parameters"]


def test_png_info_of_an_image_without_parameters(client: TestClient) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    answer = client.post(f"{URL}/png-info", json={"image": data}).json()
    assert answer == {"info": "", "items": {}, "parameters": {}}


@pytest.mark.parametrize(
    "image",
    [
        "not base64!",
        base64.b64encode(b"hello, not an image").decode(),
        "http://127.0.0.1:1/image.png",  # never fetched
        "data:image/png,raw",
        "",
    ],
)
def test_png_info_refuses_what_is_not_an_image(client: TestClient, image: str) -> None:
    assert errors(client.post(f"{URL}/png-info", json={"image": image})) == [("body", "image")]


def test_png_info_refuses_huge_images(client: TestClient) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    response = client.post(f"{URL}/png-info", json={"image": base64.b64encode(bomb).decode()})
    assert errors(response) == [("body", "image")]


def test_openapi_describes_the_a1111_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/sdapi/v1/txt2img", "/sdapi/v1/png-info", "/sdapi/v1/progress"} <= set(schema["paths"])
    request = schema["components"]["schemas"]["Txt2ImgRequest"]["properties"]
    assert {"prompt", "cfg_scale", "enable_hr", "override_settings"} <= set(request)
    assert "Txt2ImgResponse" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200


# --- the webuiapi client, unchanged, against a real server --------------------------------------


def test_webuiapi_client(gen: Any) -> None:
    import webuiapi

    app = create_app(gen, history=History(":memory:"), model="animagine-xl-4.0")
    with live_server(app) as url:
        api = webuiapi.WebUIApi(baseurl=url + "/sdapi/v1")
        first = api.txt2img(prompt="1girl, smile", seed=42, cfg_scale=5, **SMALL)
        assert first.image.size == (64, 64)
        assert first.info["all_seeds"] == [42]
        assert first.image.info["parameters"] == first.info["infotexts"][0]
        again = api.txt2img(prompt="1girl, smile", seed=42, cfg_scale=5, **SMALL)
        assert (pixels(first.image) == pixels(again.image)).all()
        other = api.txt2img(prompt="1girl, smile", seed=43, cfg_scale=5, **SMALL)
        assert (pixels(first.image) != pixels(other.image)).any()

        hires = api.txt2img(
            prompt="1girl",
            seed=42,
            enable_hr=True,
            hr_scale=1.5,
            denoising_strength=0.5,
            hr_upscaler=webuiapi.HiResUpscaler.Latent,
            **SMALL,
        )
        assert hires.image.size == (96, 96)
        assert "Hires upscale: 1.5" in hires.image.info["parameters"]

        assert "DPM++ 2M Karras" in api.util_get_sampler_names()
        read = api.png_info(first.image)
        assert read.info == first.image.info["parameters"]
        assert read.json["parameters"]["Seed"] == "42"

        assert api.get_sd_models()[0]["title"] == "animagine-xl-4.0"
        assert api.util_get_current_model() == "animagine-xl-4.0"
        assert api.get_options()["samples_format"] == "png"
        progress = api.get_progress()
        assert progress["progress"] == 0
        assert progress["state"]["job_count"] == 0
        assert "Anim4gine" in [style["name"] for style in api.get_prompt_styles()]
        assert api.interrupt() == {}
        assert api.skip() == {}


METADATA = Path(__file__).parent / "data" / "metadata"
INFOTEXTS = sorted(METADATA.glob("a1111_*.txt"))


@pytest.mark.parametrize("fixture", INFOTEXTS, ids=[path.stem for path in INFOTEXTS])
def test_png_info_gives_back_a1111_infotexts_exactly(client: TestClient, fixture: Path) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from animagine import MetadataError
    from animagine.metadata import GenerationParameters

    text = fixture.read_text("utf-8")
    chunks = PngInfo()
    chunks.add_text("parameters", text)  # as A1111 writes it (iTXt when not Latin-1)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunks)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    answer = client.post(f"{URL}/png-info", json={"image": "data:image/png;base64," + encoded})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["info"] == text
    try:
        expected = GenerationParameters.from_infotext(text)
    except MetadataError:  # invalid on purpose: png-info still gives the text back
        return
    values = body["parameters"]
    assert values["Prompt"] == expected.prompt
    assert values.get("Negative prompt", "") == expected.negative_prompt
    assert int(values["Steps"]) == expected.steps
    assert int(values["Seed"]) == expected.seed
    assert (int(values["Size-1"]), int(values["Size-2"])) == (expected.width, expected.height)
