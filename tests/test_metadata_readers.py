"""More metadata readers: every demo's JSON, SD.Next and Forge infotext, linear reading."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from animagine import MetadataError
from animagine.metadata import (
    DEMO_CHUNK,
    PARAMETERS_CHUNK,
    GenerationParameters,
    HiresParameters,
    from_demo_json,
    read_parameters,
    repair_latin1,
)
from animagine.metadata import infotext_pairs as pairs


def _has_pillow() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


needs_pillow = pytest.mark.skipif(not _has_pillow(), reason="needs Pillow")

BASE = "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 832x1216"

# The 3.1 space as it saves its `metadata` chunk (keys in its order; the model lowercase).
DEMO_3_1_SPACE: dict[str, Any] = {
    "prompt": "1girl, souryuu asuka langley, neon genesis evangelion, masterpiece, best quality,"
    " very aesthetic, absurdres, anime artwork, anime style, key visual, vibrant, studio anime,"
    " highly detailed",
    "negative_prompt": "nsfw, photo, deformed, black and white, realism, disfigured, low"
    " contrast, nsfw, lowres, (bad), text, error",
    "resolution": "896 x 1152",
    "guidance_scale": 7,
    "num_inference_steps": 28,
    "seed": 42,
    "sampler": "Euler a",
    "sdxl_style": "Anime",
    "add_quality_tags": True,
    "quality_tags": "Standard v3.1",
    "use_upscaler": None,
    "model": "Animagine XL 3.1",
}

# The 4.0 Space: JSON in the `parameters` chunk, with its style preset.
DEMO_4_0_SPACE: dict[str, Any] = {
    "prompt": "1girl, arima kana, oshi no ko, depth of field, faux traditional media, painterly,"
    " impressionism, photo background, masterpiece, high score, great score, absurdres",
    "negative_prompt": "lowres, bad anatomy",
    "resolution": "832 x 1216",
    "guidance_scale": 5,
    "num_inference_steps": 28,
    "style_preset": "Anim4gine",
    "seed": 7,
    "sampler": "Euler a",
    "Model": "Animagine XL 4.0",
    "Model hash": "1449e5b0b9",
    "use_upscaler": {
        "upscale_method": "nearest-exact",
        "upscaler_strength": 0.55,
        "upscale_by": 1.5,
        "new_resolution": "1248 x 1824",
    },
}


def test_3_1_space_lowercase_model() -> None:
    params = from_demo_json(DEMO_3_1_SPACE)
    assert (params.model, params.version) == ("Animagine XL 3.1", "v3.1")
    assert (params.style, params.quality) == ("Anime", "Standard v3.1")
    assert (params.width, params.height, params.guidance_scale) == (896, 1152, 7.0)
    assert "model" not in params.extra
    assert params.extra["sdxl_style"] == "Anime"  # kept as the demo wrote it


def test_4_0_space_parameters_json() -> None:
    params = from_demo_json(DEMO_4_0_SPACE)
    assert (params.model, params.model_hash, params.version) == (
        "Animagine XL 4.0",
        "1449e5b0b9",
        "v4",
    )
    assert params.style == "Anim4gine"
    assert params.quality is None
    assert params.hires == HiresParameters(
        scale=1.5, strength=0.55, upscaler="Latent (nearest-exact)"
    )
    assert GenerationParameters.from_infotext(params.to_infotext()) == params


@needs_pillow
@pytest.mark.parametrize(
    ("chunk", "data"), [(DEMO_CHUNK, DEMO_3_1_SPACE), (PARAMETERS_CHUNK, DEMO_4_0_SPACE)]
)
def test_demo_chunks_in_png(tmp_path: Path, chunk: str, data: dict[str, Any]) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(chunk, json.dumps(data))
    path = tmp_path / "demo.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    params = read_parameters(path)
    assert params.prompt == data["prompt"]
    assert params.style == data.get("sdxl_style", data.get("style_preset"))


# --- SD.Next and Forge infotext ----------------------------------------------------------------

FORGE = (
    "1girl, hatsune miku, vocaloid\n"
    "Negative prompt: lowres\n"
    "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5, Seed: 99,"
    " Size: 832x1216, Model hash: 6327eca98b, Model: animagine-xl-4.0-opt,"
    " Hires upscale: 1.5, Hires upscaler: Latent (nearest-exact), Version: f2.0.1v1.10.1"
)
SDNEXT = (
    "1girl, hatsune miku   \n"
    "Negative prompt: lowres  \n"
    "Steps: 20, Seed: 5, CFG scale: 6 , Size: 1024x1024, Model: animagine-xl-3.1,"
    " Hires scale: 2, Hires upscaler: Latent, Denoising strength: 0.4,"
    " Backend: Diffusers, App: SD.Next  \n"
)


def test_forge_hires_without_denoising_strength() -> None:
    params = GenerationParameters.from_infotext(FORGE)
    assert params.hires == HiresParameters(
        scale=1.5, strength=0.7, upscaler="Latent (nearest-exact)"
    )  # A1111's default strength
    assert params.version == "v4"
    assert params.extra["Version"] == "f2.0.1v1.10.1"


def test_sdnext_hires_scale_and_no_sampler() -> None:
    params = GenerationParameters.from_infotext(SDNEXT)
    assert params.sampler == "Euler a"
    assert params.hires == HiresParameters(scale=2.0, strength=0.4, upscaler="Latent")
    assert params.guidance_scale == 6.0
    assert params.extra["App"] == "SD.Next"  # trailing white space trimmed
    assert params.negative_prompt == "lowres  "  # the prompts themselves are kept
    again = GenerationParameters.from_infotext(params.to_infotext())
    assert again == params


def test_values_are_trimmed_but_quoted_values_kept() -> None:
    params = GenerationParameters.from_infotext(
        f'x\n{BASE}, Note:  spaced out  , Quoted: " both ends "'
    )
    assert params.extra["Note"] == "spaced out"
    assert params.extra["Quoted"] == " both ends "


def test_repair_latin1() -> None:
    text = "1girl, 初音ミク, café"
    assert repair_latin1(text.encode("utf-8").decode("latin-1")) == text
    assert repair_latin1("café") == "café"  # real Latin-1 is not valid UTF-8: kept
    assert repair_latin1("plain") == "plain"
    assert repair_latin1(text) == text  # already text


# --- A1111's reader, and a linear one ------------------------------------------------------------

# A1111's `re_param` (modules/infotext_utils.py) with this library's `{...}` addition: the
# reference for `pairs`, on lines short enough for its backtracking.
_REFERENCE = re.compile(
    r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|\{[^{}]*\}(?=\s*(?:,|$))|[^,]*)(?:,|$)'
)


def _reference(line: str) -> list[tuple[str, str]]:
    return [
        (key.strip(), raw if raw.startswith('"') else raw.strip())
        for key, raw in _REFERENCE.findall(line)
    ]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='ab -/:,"{}\\1 _é\t', max_size=40))
def test_pairs_agree_with_a1111s_expression(line: str) -> None:
    assert pairs(line) == _reference(line)


@pytest.mark.parametrize(
    "line",
    [
        BASE,
        'Steps: 2, Hashes: {"vae": "a", "model": "b"}, Lora hashes: "x: 1, y: 2"',
        "junk words Steps: 2, : x, a:b:c, -k: v, Size: 8x8",
        'A: "unterminated, B: 1',
    ],
)
def test_pairs_on_real_shapes(line: str) -> None:
    assert pairs(line) == _reference(line)


def _seconds(line: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises(MetadataError):
            GenerationParameters.from_infotext(line)
        best = min(best, time.perf_counter() - start)
    return best


def test_reading_is_linear() -> None:
    """A long line without ':' or ',' (the shape that made A1111's expression quadratic)."""
    times = {size: _seconds("a " * (size // 2)) for size in (1_000, 4_000, 16_000)}
    assert times[16_000] < 0.05, times  # milliseconds, not seconds
    # Linear: 16 times the text, well under 16**2 times the time (generous for noisy machines).
    assert times[16_000] < 40 * max(times[1_000], 1e-5), times
    assert _seconds("word " * 20_000) < 0.5  # 100 KB
    # Colons after long runs of key characters, and stray colons: each scanned once.
    shaped = {
        size: _seconds((("many words " * 30 + ": v :: -:") * (size // 340 + 1))[:size])
        for size in (1_000, 16_000)
    }
    assert shaped[16_000] < 40 * max(shaped[1_000], 1e-5), shaped


def test_long_valid_infotext_reads_fast() -> None:
    prompt = ", ".join(f"tag {i}" for i in range(2_000))
    extra = ", ".join(f"Key {i}: value {i}" for i in range(500))
    start = time.perf_counter()
    params = GenerationParameters.from_infotext(f"{prompt}\n{BASE}, {extra}")
    assert time.perf_counter() - start < 0.5
    assert len(params.extra) == 500


def test_a_text_chunk_of_utf8_bytes_reads_as_utf8(tmp_path: Path) -> None:
    """tEXt is Latin-1 by the standard; tools write UTF-8 bytes there, and readers decode them."""
    pytest.importorskip("PIL")  # read_parameters needs Pillow (the generate extra)
    import struct
    import zlib

    from animagine.metadata import read_parameters

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    text = "初音ミク, 1girl\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 8x8"
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0\0")
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"parameters\0" + text.encode("utf-8"))
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "utf8.png"
    path.write_bytes(png)
    assert read_parameters(path).prompt == "初音ミク, 1girl"
