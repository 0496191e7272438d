"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is served by ``tests/serving.py::live_server`` with the tiny model. Chromium is never
downloaded: the tests use the system's (``/usr/bin/chromium``, or ``ANIMAGINE_CHROMIUM``). Where it
or Playwright is missing the tests skip, saying why, except in CI (the ``CI`` variable set),
where that is a failure.

``ANIMAGINE_SCREENSHOT=1`` also saves a screenshot of the page to ``docs/images/app.png``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the app extra")

from serving import live_server

from animagine.apps.serve import History, create_app

pytestmark = [
    pytest.mark.generate,
]

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
CHROMIUM = os.environ.get("ANIMAGINE_CHROMIUM", "/usr/bin/chromium")
#: How Chromium is started, in one place: headless, and quiet on a network that reaches nothing
#: (without the background-networking switches it keeps trying to reach Google's services).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SCREENSHOT = Path(__file__).parents[1] / "docs" / "images" / "app.png"
TIMEOUT_MS = 60_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium under Playwright, with :data:`CHROMIUM_ARGS`."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("needs playwright (the test-app dependency group)")
    if shutil.which(CHROMIUM) is None:
        _unavailable(f"needs Chromium at {CHROMIUM} (apt install chromium)")
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def model_server(tiny_pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from animagine import Generator

    history = History(tmp_path_factory.mktemp("history") / "h.sqlite3")
    app = create_app(Generator(tiny_pipeline, version="v4"), history=history, model="tiny-sdxl")
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors


def open_page(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='true']")


def by_id(page: Any, testid: str) -> Any:
    return page.get_by_test_id(testid)


def test_without_a_model_the_prompt_tools_work(page: Any, tmp_path: Path) -> None:
    from PIL import Image
    from playwright.sync_api import expect

    from animagine.apps.serve import ServeConfig
    from animagine.metadata import GenerationParameters, png_info

    wildcards = tmp_path / "wildcards"
    wildcards.mkdir()
    (wildcards / "hair.txt").write_text("long hair\n", encoding="utf-8")
    with live_server(create_app(None, config=ServeConfig(wildcards=wildcards))) as url:
        open_page(page, url)
        expect(by_id(page, "no-model")).to_contain_text("--model")
        expect(by_id(page, "generate")).to_be_disabled()
        expect(by_id(page, "generate-note")).to_contain_text("--model")
        expect(by_id(page, "history-panel")).to_contain_text("no history")
        prompt = by_id(page, "prompt")
        prompt.fill("smile, 1girl")
        prompt.press("End")
        expect(page.locator("[data-testid=finding][data-code=order]")).to_have_count(1)
        by_id(page, "canonical").click()
        expect(prompt).to_have_value("1girl, smile")
        expect(by_id(page, "lint-status")).to_have_text("No findings.")
        # The server's wildcards are listed; a click inserts one.
        prompt.press("End")
        by_id(page, "wildcard").filter(has_text="__hair__").click()
        expect(prompt).to_have_value("1girl, smile, __hair__")
        # Reading an image's parameters needs no model either.
        parameters = GenerationParameters(
            prompt="1girl, solo, night",
            negative_prompt="",
            steps=30,
            sampler="DPM++ 2M Karras",
            guidance_scale=6.5,
            seed=2**63 + 1,
            width=1216,
            height=832,
            model="animagine-xl-3.1",
            version="v3.1",
        )
        path = tmp_path / "other.png"
        Image.new("RGB", (8, 8)).save(path, pnginfo=png_info(parameters))
        by_id(page, "image-file").set_input_files(str(path))
        expect(by_id(page, "drop-status")).to_contain_text("Loaded the parameters of other.png")
        expect(prompt).to_have_value("1girl, solo, night")
        expect(by_id(page, "seed")).to_have_value(str(2**63 + 1))
        expect(by_id(page, "aspect")).to_have_value("1216x832")
        expect(by_id(page, "custom-size")).to_be_hidden()
        expect(by_id(page, "sampler")).to_have_value("DPM++ 2M Karras")
        expect(by_id(page, "cfg")).to_have_value("6.5")
        expect(by_id(page, "no-negative")).to_be_checked()
        expect(by_id(page, "negative-prompt")).to_be_disabled()
        expect(by_id(page, "version")).to_have_value("v3.1")
        expect(by_id(page, "version-note")).to_contain_text("generation uses Animagine XL 4.0")


def test_lint_fix_and_autocomplete(page: Any, model_server: str) -> None:
    from playwright.sync_api import expect

    open_page(page, model_server)
    prompt = by_id(page, "prompt")
    prompt.click()
    # Typed key by key, as a person would: lint runs once the typing pauses.
    prompt.press_sequentially("smile, 1girl, longhair", delay=5)
    alias = page.locator("[data-testid=finding][data-code=alias]")
    expect(alias).to_have_count(1)
    expect(alias).to_contain_text("long hair")
    expect(page.locator("[data-testid=finding][data-code=order]")).to_have_count(1)
    expect(by_id(page, "fix-all")).to_be_enabled()
    # One click applies that finding's fix.
    alias.get_by_test_id("fix").click()
    expect(prompt).to_have_value("smile, 1girl, long hair")
    expect(alias).to_have_count(0)
    by_id(page, "canonical").click()
    expect(prompt).to_have_value("1girl, smile, long hair")

    # Autocomplete for the tag being typed; an alias shows its canonical name.
    by_id(page, "autocomplete").wait_for(state="hidden")
    prompt.press("End")
    prompt.press_sequentially(", blue_ey", delay=5)
    suggestions = page.locator("[data-testid=suggestion]")
    expect(suggestions.first).to_have_attribute("data-name", "blue eyes")
    prompt.press("Enter")
    expect(prompt).to_have_value("1girl, smile, long hair, blue eyes, ")
    expect(by_id(page, "autocomplete")).to_be_hidden()
    prompt.press_sequentially("longh", delay=5)
    expect(suggestions.first).to_contain_text("longhair → long hair")
    # Arrows move through the list; Tab accepts the one chosen.
    names = [suggestions.nth(i).get_attribute("data-name") for i in range(suggestions.count())]
    prompt.press("ArrowDown")
    prompt.press("ArrowUp")
    prompt.press("Tab")
    assert names[0] == "long hair"
    expect(prompt).to_have_value("1girl, smile, long hair, blue eyes, long hair, ")
    # A name with parentheses is inserted escaped.
    prompt.press_sequentially("hoshimachi suisei (1st", delay=5)
    expect(suggestions.first).to_have_attribute("data-name", "hoshimachi suisei (1st costume)")
    suggestions.first.click()
    expect(prompt).to_have_value(re.compile(r"hoshimachi suisei \\\(1st costume\\\), $"))
    expect(page.locator("[data-testid=finding][data-code=syntax]")).to_have_count(0)


def test_generate_history_and_drop_an_image(page: Any, model_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    open_page(page, model_server)
    expect(by_id(page, "generate")).to_be_enabled()
    expect(by_id(page, "model-line")).to_contain_text("tiny-sdxl")
    # The form starts at the version's defaults.
    expect(by_id(page, "steps")).to_have_value("28")
    expect(by_id(page, "aspect")).to_have_value("832x1216")
    expect(by_id(page, "custom-size")).to_be_hidden()
    expect(by_id(page, "aspect").locator("option")).to_have_count(10)

    by_id(page, "prompt").fill("1girl, smile, longhair, looking at viewer")
    by_id(page, "negative-prompt").fill("lowres, bad anatomy")
    by_id(page, "aspect").select_option("custom")
    expect(by_id(page, "custom-size")).to_be_visible()
    # The custom size goes down to the library's 64 (the tiny model's size), a multiple of 8.
    assert by_id(page, "width").get_attribute("min") == "64"
    by_id(page, "width").fill("70")
    by_id(page, "width").press("Tab")
    expect(by_id(page, "width")).to_have_value("64")
    by_id(page, "height").fill("64")
    by_id(page, "steps").fill("2")
    by_id(page, "randomize").uncheck()
    by_id(page, "seed").fill("42")
    by_id(page, "style").select_option("Anim4gine")
    expect(page.locator("[data-testid=finding][data-code=alias]")).to_have_count(1)
    by_id(page, "generate").click()

    job = page.locator("[data-testid=job]").first
    expect(job).to_have_attribute("data-state", "done")
    expect(job.get_by_test_id("queue-position")).to_contain_text("Done")
    bars = job.get_by_test_id("image-progress")
    expect(bars).to_have_count(1)
    assert bars.first.evaluate("bar => bar.value") == 1
    expect(by_id(page, "gallery-image")).to_have_count(1)
    expect(by_id(page, "selected-image")).to_be_visible()
    params = by_id(page, "params-json")
    expect(params).to_contain_text('"seed": 42')
    expect(params).to_contain_text('"style": "Anim4gine"')
    expect(params).to_contain_text('"negative_prompt": "lowres, bad anatomy"')
    expect(by_id(page, "infotext")).to_contain_text("Seed: 42", use_inner_text=False)
    recorded = params.text_content()
    assert recorded is not None
    if os.environ.get("ANIMAGINE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOT))

    # Reload: the image is in the history, searchable by tag, with a favourite toggle.
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    entries = page.locator("[data-testid=history-entry]")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("seed 42")
    by_id(page, "history-search").fill("smile, 1GIRL")
    expect(by_id(page, "history-page")).to_contain_text("1 in all")
    expect(entries).to_have_count(1)
    by_id(page, "history-search").fill("1boy")
    expect(entries).to_have_count(0)
    expect(by_id(page, "history-list")).to_contain_text("Nothing matches")
    by_id(page, "history-search").fill("")
    expect(entries).to_have_count(1)
    star = entries.first.get_by_test_id("favourite")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    by_id(page, "history-favourites").check()
    expect(entries).to_have_count(1)
    expect(entries.first.get_by_test_id("favourite")).to_have_attribute("aria-pressed", "true")

    # Drop the image back (the file picker, then a real drop): the same parameters, in the form.
    image_url = entries.first.locator("img").get_attribute("src")
    assert image_url is not None
    png = page.request.get(model_server + image_url).body()
    saved = tmp_path / "dropped.png"
    saved.write_bytes(png)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    by_id(page, "image-file").set_input_files(str(saved))
    expect(by_id(page, "drop-status")).to_contain_text("Loaded the parameters of dropped.png")
    check_loaded(page, recorded)

    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    page.evaluate(
        """async (data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            const target = document.querySelector("[data-testid=gallery]");
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(
                    new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer })
                );
            }
        }""",
        base64.b64encode(png).decode(),
    )
    expect(by_id(page, "drop-status")).to_contain_text("Loaded the parameters of dropped.png")
    check_loaded(page, recorded)


def check_loaded(page: Any, recorded: str) -> None:
    """The form holds what made the image; the image's own parameters are shown."""
    import json

    from playwright.sync_api import expect

    parameters = json.loads(recorded)
    expect(by_id(page, "prompt")).to_have_value(parameters["prompt"])
    expect(by_id(page, "negative-prompt")).to_have_value(parameters["negative_prompt"])
    expect(by_id(page, "randomize")).not_to_be_checked()
    expect(by_id(page, "seed")).to_have_value("42")
    expect(by_id(page, "aspect")).to_have_value("custom")
    expect(by_id(page, "width")).to_have_value("64")
    expect(by_id(page, "height")).to_have_value("64")
    expect(by_id(page, "steps")).to_have_value("2")
    expect(by_id(page, "cfg")).to_have_value("5")
    expect(by_id(page, "sampler")).to_have_value("Euler a")
    # The recorded prompt holds the style's tags already: no preset, no quality tags again.
    expect(by_id(page, "style")).to_have_value("(None)")
    expect(by_id(page, "quality")).to_have_value("")
    expect(by_id(page, "add-quality-tags")).not_to_be_checked()
    expect(by_id(page, "hires")).not_to_be_checked()
    expect(by_id(page, "params-json")).to_have_text(recorded)
