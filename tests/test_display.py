"""How prompts, lint findings and generation results show in a notebook (``_repr_html_``)."""

from __future__ import annotations

import base64
import io
import pickle
from typing import Any

import pytest
from html_parts import parsed

import animagine
from animagine import Diagnostic, Diagnostics, Edit, Prompt, lint
from animagine.core import MAX_PROMPT_CHARS

#: The slots a prompt can have, each with a tag that fills it.
ALL_SLOTS = {
    "subject": "1girl",
    "character": "arima kana",
    "series": "oshi no ko",
    "rating": "safe",
    "general": "smile",
    "year": "year 2023",
    "quality": "masterpiece",
    "break": "BREAK",
}


def chips(html: str) -> list[tuple[str, str, dict[str, str]]]:
    """(slot, text, attributes) of each tag chip of a prompt's HTML, in order."""
    out = []
    for attributes, text in parsed(html).spans:
        classes = attributes.get("class", "").split()
        if "animagine-tag" in classes:
            (slot,) = [c.removeprefix("animagine-slot-") for c in classes if "-slot-" in c]
            out.append((slot, text, attributes))
    return out


def style(attributes: dict[str, str], name: str) -> str:
    return next(
        part.partition(":")[2] for part in attributes["style"].split(";") if part.startswith(name)
    )


# -- Prompt --------------------------------------------------------------------------------------


def test_prompt_colours_every_slot() -> None:
    prompt = Prompt(
        version="v4",
        tags=list(ALL_SLOTS.values()),
        slots=list(ALL_SLOTS),  # type: ignore[arg-type]
    )
    found = chips(prompt._repr_html_())
    assert {slot: text for slot, text, _ in found} == ALL_SLOTS
    assert [slot for slot, _, _ in found] == list(prompt.slots)
    backgrounds = {slot: style(attributes, "background") for slot, _, attributes in found}
    borders = {slot: style(attributes, "border:") for slot, _, attributes in found}
    assert len(set(backgrounds.values())) == len(ALL_SLOTS)  # every slot its own colour
    assert len(set(borders.values())) == len(ALL_SLOTS)
    # Readable on light and dark themes: a see-through tint, the text in the theme's colour.
    for _, _, attributes in found:
        assert style(attributes, "background").startswith("rgba(")
        assert style(attributes, "color") == "inherit"


def test_prompt_tags_keep_their_order_and_show_weights() -> None:
    prompt = animagine.parse("smile, 1girl, (night:1.2), [arima kana], masterpiece")
    found = chips(prompt._repr_html_())
    assert [(slot, text) for slot, text, _ in found] == [
        ("subject", "1girl"),
        ("character", "arima kana:0.9091"),
        ("general", "smile"),
        ("general", "night:1.2"),
        ("quality", "masterpiece"),
    ]
    titles = [attributes["title"] for _, _, attributes in found]
    assert titles[1] == "character, weight 0.9091"
    assert titles[3] == "general, weight 1.2"
    assert titles[0] == "subject"


def test_prompt_inner_emphasis_shows_each_weight() -> None:
    prompt = animagine.parse("1girl, red (dress:1.3)")
    (_, (slot, text, attributes)) = chips(prompt._repr_html_())
    assert (slot, text) == ("general", "red dress:1.3")
    assert attributes["title"] == "general, weights 1, 1.3"


def test_prompt_legend_names_the_slots_it_has() -> None:
    html = animagine.parse("1girl, smile, masterpiece")._repr_html_()
    (legend,) = [a for t, a in parsed(html).starts if "animagine-legend" in a.get("class", "")]
    assert legend
    texts = [text for attributes, text in parsed(html).spans if "class" not in attributes]
    assert texts == ["subject", "general", "quality"]


def test_prompt_lists_its_lint_findings() -> None:
    prompt = Prompt.from_tags(["1girl", "saber", "smile", "safe", "explicit"])
    html = prompt._repr_html_()
    text = str(prompt)
    expected = lint(text, version=prompt.version)
    assert {d.code for d in expected} >= {"alias", "rating-conflict"}
    rows = [row for row in parsed(html).cells if row and row[0] != "line:column"]
    assert [row[2] for row in rows] == [d.code for d in expected]
    for row, diagnostic in zip(rows, expected, strict=True):
        line, column = diagnostic.position(text)
        assert row[0] == f"{line}:{column}"
        assert row[1] == diagnostic.severity
        assert row[3] == text[diagnostic.start : diagnostic.end]  # the tag it points at
        assert row[4] == diagnostic.message
    alias = rows[[d.code for d in expected].index("alias")]
    assert alias[3] == "saber"
    assert alias[5] == "saber \u2192 saber \\(fate\\)"


def test_prompt_for_v3_lints_for_v3() -> None:
    prompt = animagine.parse("1girl, masterpiece", version="v3")
    codes = [a["data-code"] for t, a in parsed(prompt._repr_html_()).starts if "data-code" in a]
    assert codes == [d.code for d in lint(str(prompt), version="v3")]
    assert "nsfw-risk" in codes
    assert "Animagine XL 3.0 prompt, 2 tags" in prompt._repr_html_()


def test_prompt_without_findings_says_so() -> None:
    html = animagine.parse("1girl, arima kana, oshi no ko, safe, smile")._repr_html_()
    assert "No lint findings." in html
    assert "<table" not in html


def test_empty_prompt() -> None:
    html = Prompt()._repr_html_()
    assert "0 tags" in html
    assert "(no tags)" in html
    assert chips(html) == []


def test_prompt_too_long_to_lint() -> None:
    prompt = Prompt(general=[f"tag number {n}" for n in range(MAX_PROMPT_CHARS // 14 + 1)])
    assert len(str(prompt)) > MAX_PROMPT_CHARS
    html = prompt._repr_html_()
    assert "Too long to lint." in html
    assert len(chips(html)) == len(prompt.tags)


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert('x')</script>",
        '"><img src=x onerror=alert(1)>',
        "a & b <b>bold</b>",
    ],
)
def test_prompt_escapes_tag_names(name: str) -> None:
    prompt = Prompt.from_tags(["1girl", name])
    html = prompt._repr_html_()
    tags = {tag for tag, _ in parsed(html).starts}
    assert tags <= {"div", "span", "u", "table", "thead", "tbody", "tr", "th", "td", "code"}
    # The name reads back, unchanged, as the text of its chip.
    assert [(slot, text) for slot, text, _ in chips(html)] == [
        ("subject", "1girl"),
        ("general", name),
    ]
    assert "<script>" not in html
    assert all("onerror" not in attributes for _, attributes in parsed(html).starts)


def test_script_in_a_tag_is_inert() -> None:
    prompt = Prompt.from_tags(["1girl", "<script>alert(1)</script>"])
    html = prompt._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert ("general", "<script>alert(1)</script>") in [(s, t) for s, t, _ in chips(html)]


# -- Diagnostics ---------------------------------------------------------------------------------


def test_lint_returns_diagnostics_that_are_a_list() -> None:
    text = "masterpiece, 1girl, smile, smile"
    found = lint(text)
    assert type(found) is Diagnostics
    assert isinstance(found, list)
    assert found.text == text
    plain = list(found)
    assert found == plain
    assert plain == found
    assert [d.code for d in found] == ["order", "duplicate"]
    assert repr(found) == repr(plain)  # prints as the list it always was
    assert lint("1girl, smile") == []
    assert isinstance(found[:1], list)
    assert animagine.apply_fixes(text, found) == "masterpiece, 1girl, smile"


def test_diagnostics_pickle_with_their_text() -> None:
    found = lint("1girl, smile, smile")
    again = pickle.loads(pickle.dumps(found))
    assert again == found
    assert again.text == found.text
    assert type(again) is Diagnostics


def test_syntax_error_is_a_diagnostics_too() -> None:
    found = lint("1girl, (smile")
    assert type(found) is Diagnostics
    assert [d.code for d in found] == ["syntax"]
    (header, row) = parsed(found._repr_html_()).cells
    assert header == ["line:column", "severity", "code", "tag", "message", "fix"]
    assert row[:3] == ["1:8", "error", "syntax"]


def test_diagnostics_table_rows() -> None:
    text = "1girl, saber,\nsmile, smile"
    found = lint(text)
    table = parsed(found._repr_html_())
    assert table.starts[0][0] == "table"
    header, *rows = table.cells
    assert header == ["line:column", "severity", "code", "tag", "message", "fix"]
    assert rows == [
        [
            "1:8",
            "warning",
            "alias",
            "saber",
            "'saber' is Danbooru's old name for 'saber (fate)', the tag the model knows",
            "saber \u2192 saber \\(fate\\)",
        ],
        [
            "2:8",
            "warning",
            "duplicate",
            "smile",
            "'smile' already appears at line 2, column 1",
            "delete , smile",
        ],
    ]
    codes = [a["data-code"] for t, a in table.starts if t == "tr" and "data-code" in a]
    assert codes == ["alias", "duplicate"]


def test_empty_diagnostics() -> None:
    html = lint("1girl, smile")._repr_html_()
    assert "No lint findings." in html
    assert "<table" not in html


def test_diagnostics_without_text_show_offsets() -> None:
    diagnostic = Diagnostic("duplicate", "warning", "again", 7, 12, (Edit(5, 12, ""),))
    found = Diagnostics([diagnostic])
    assert found.text is None
    assert found == [diagnostic]
    header, row = parsed(found._repr_html_()).cells
    assert header == ["span", "severity", "code", "message", "fix"]
    assert row == ["7-12", "warning", "duplicate", "again", "5-12 \u2192 "]


def test_one_diagnostic_is_one_row() -> None:
    (diagnostic,) = lint("1girl, saber")
    header, row = parsed(diagnostic._repr_html_()).cells
    assert header == ["span", "severity", "code", "message", "fix"]
    assert row[:4] == ["7-12", "warning", "alias", diagnostic.message]
    assert row[4] == "7-12 \u2192 saber \\(fate\\)"


def test_fix_kinds_as_text() -> None:
    text = "1girl, smile"
    made = Diagnostics(
        [
            Diagnostic("order", "warning", "m", 0, 5, (Edit(0, 5, "2girls"),)),
            Diagnostic("order", "warning", "m", 0, 5, (Edit(5, 5, ", solo"),)),
            Diagnostic("order", "warning", "m", 0, 5, (Edit(5, 12, ""), Edit(0, 0, "x, "))),
            Diagnostic("order", "warning", "m", 0, 5),
        ],
        text=text,
    )
    fixes = [row[5] for row in parsed(made._repr_html_()).cells[1:]]
    assert fixes == ["1girl \u2192 2girls", "insert , solo", "delete , smile; insert x, ", ""]


def test_findings_escape_user_text() -> None:
    text = "1girl, <img src=x onerror=alert>, <img src=x onerror=alert>"
    found = lint(text)
    assert {d.code for d in found} == {"unknown-tag", "duplicate"}
    html = found._repr_html_()
    assert all(tag in {"table", "thead", "tbody", "tr", "th", "td", "span", "code"} for tag, _ in
               parsed(html).starts)  # fmt: skip
    assert "<img" not in html
    tags = [row[3] for row in parsed(html).cells[1:]]
    assert tags == ["<img src=x onerror=alert>"] * len(found)
    assert "<img" not in Diagnostic("x", "info", "<img src=x>", 0, 1)._repr_html_()


# -- GenerationResult ----------------------------------------------------------------------------


def _parameters(seed: int, **changes: Any) -> Any:
    return animagine.GenerationParameters(
        **{
            "prompt": "1girl, smile",
            "negative_prompt": "<script>alert(1)</script>",
            "steps": 2,
            "sampler": "Euler a",
            "guidance_scale": 5.0,
            "seed": seed,
            "width": 64,
            "height": 64,
            "model": "tiny",
            "version": "v4",
            **changes,
        }
    )


def _decode_png(data: bytes) -> Any:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_result_grid_shrinks_large_images() -> None:
    pil = pytest.importorskip("PIL.Image")
    big = pil.new("RGB", (1024, 1536), (200, 30, 60))
    result = animagine.GenerationResult(
        images=(big, big),
        seeds=(7, 8),
        parameters=(_parameters(7, width=1024, height=1536), _parameters(8)),
    )
    html = result._repr_html_()
    images = [a for t, a in parsed(html).starts if t == "img"]
    assert [image["width"] for image in images] == ["256", "256"]
    embedded = _decode_png(
        base64.b64decode(images[0]["src"].removeprefix("data:image/png;base64,"))
    )
    assert embedded.size == (512, 768)  # twice the shown width, for sharp HiDPI screens
    assert embedded.getpixel((10, 10)) == (200, 30, 60)
    assert "(1024x1536)" in html
    # Alone, an image shows wider; the PNG repr is the full image.
    alone = animagine.GenerationResult(images=(big,), seeds=(7,), parameters=(_parameters(7),))
    (image,) = [a for t, a in parsed(alone._repr_html_()).starts if t == "img"]
    assert image["width"] == "512"
    png = alone._repr_png_()
    assert png is not None
    assert _decode_png(png).size == (1024, 1536)


def test_result_with_no_images_has_no_png() -> None:
    pytest.importorskip("PIL")
    empty = animagine.GenerationResult(images=(), seeds=(), parameters=())
    assert empty._repr_png_() is None
    assert "<img" not in empty._repr_html_()


@pytest.fixture(scope="module")
def result(tiny_pipeline: Any) -> Any:
    from animagine.generation import Generator

    generator = Generator(tiny_pipeline, version="v4")
    return generator(
        "1girl, smile",
        negative_prompt="<script>alert(1)</script>",
        width=64,
        height=64,
        steps=2,
        seed=3,
        num_images=2,
        progress=False,
    )


@pytest.mark.generate
def test_result_html_is_a_grid_with_seeds_and_parameters(result: Any) -> None:
    html = result._repr_html_()
    document = parsed(html)
    images = [a for t, a in document.starts if t == "img"]
    assert len(images) == 2
    assert [image["alt"] for image in images] == ["seed 3", "seed 4"]
    for image, original in zip(images, result.images, strict=True):
        assert image["width"] == "64"  # never scaled up
        data = base64.b64decode(image["src"].removeprefix("data:image/png;base64,"))
        assert _decode_png(data).tobytes() == original.tobytes()
    for parameters in result.parameters:
        assert f"<b>seed {parameters.seed}</b>" in html
        infotext = parameters.to_infotext()
        assert "<script>" in infotext
        assert infotext.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html
    assert "<script>" not in html
    assert not [t for t, _ in document.starts if t == "script"]


@pytest.mark.generate
def test_result_png_is_the_first_image_with_its_parameters(result: Any) -> None:
    data = result._repr_png_()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = _decode_png(data)
    assert image.size == result.image.size
    assert image.convert("RGB").tobytes() == result.image.tobytes()
    assert animagine.read_parameters(image) == result.parameters[0]
