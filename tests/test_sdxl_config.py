"""The SDXL config shipped in ``animagine/_data/sdxl`` (``Generator.from_single_file``'s default).

What is checked: the folder is a diffusers-format SDXL base 1.0 folder without weights; its
tokenizers are OpenAI CLIP's (known token ids, the padding of each); every component config
loads offline through its own class and, built on the meta device, has SDXL base's parameter
count; ``Generator.from_single_file`` without ``config=`` resolves this folder offline. An opt-in
test (``ANIMAGINE_TEST_REAL_SHAPES=1``: 1.8 GB of disk, about 4.5 GB of memory, about 20 s) loads a
single file holding real-size text encoders and VAE through it. No test loads a real-size UNet
from a checkpoint: that needs a 6.9 GB file.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "animagine" / "_data" / "sdxl"
TOOL = ROOT / "tools" / "build_sdxl_config.py"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
COMPONENT_CONFIGS = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "text_encoder_2": "config.json",
    "scheduler": "scheduler_config.json",
}
#: SDXL base 1.0's parameter counts (diffusers / transformers modules, as published).
UNET_PARAMETERS = 2_567_463_684
VAE_PARAMETERS = 83_653_863
TEXT_ENCODER_PARAMETERS = 123_060_480
TEXT_ENCODER_2_PARAMETERS = 694_659_840

#: Token ids of OpenAI CLIP's tokenizer (as in openai/clip-vit-large-patch14 and SDXL's two
#: tokenizers), without the <|startoftext|> (49406) and <|endoftext|> (49407) around them.
KNOWN_IDS = {
    "a photo of a cat": [320, 1125, 539, 320, 2368],
    "a photo of a dog": [320, 1125, 539, 320, 1929],
    "Hello, world!": [3306, 267, 1002, 256],
    "A PHOTO of  a Cat!": [320, 1125, 539, 320, 2368, 256],
    "don't stop 42 times": [847, 713, 1691, 275, 273, 1661],
    "hello-world, 3.14 (test)": [3306, 268, 1002, 267, 274, 269, 272, 275, 263, 1628, 264],
    "caf\u00e9 \u00fcber na\u00efve": [15304, 6522, 1516, 1097, 35689, 563],
    "  spaced   out  ": [10336, 538, 620],
}
#: Danbooru tags as A1111 tokenizes them (its token counter shows these ids): "1girl" is "1"
#: (the byte "1" with ``</w>``: 16 + 256) and "girl".
TAG_IDS = {
    "masterpiece, best quality, 1girl": [12066, 267, 949, 3027, 267, 272, 1611],
}
TAG_PIECES = ["masterpiece</w>", ",</w>", "best</w>", "quality</w>", ",</w>", "1</w>", "girl</w>"]

needs_generate = pytest.mark.generate


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_sdxl_config", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def read_json(relative: str) -> Any:
    return json.loads((FOLDER / relative).read_text(encoding="utf-8"))


# --- the files, without the generate extra --------------------------------------------------------


def test_the_folder_is_a_diffusers_sdxl_folder_without_weights() -> None:
    index = read_json("model_index.json")
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["force_zeros_for_empty_prompt"] is True
    components = {key: value for key, value in index.items() if isinstance(value, list)}
    assert components == {
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    expected = {"model_index.json"}
    expected |= {f"{folder}/{name}" for folder, name in COMPONENT_CONFIGS.items()}
    expected |= {f"{folder}/{name}" for folder in ("tokenizer", "tokenizer_2")
                 for name in TOKENIZER_FILES}  # fmt: skip
    found = {path.relative_to(FOLDER).as_posix() for path in FOLDER.rglob("*") if path.is_file()}
    assert found == expected  # no weights, nothing stray
    assert sum((FOLDER / name).stat().st_size for name in found) < 3_000_000


def test_configs_hold_sdxl_base_values() -> None:
    unet = read_json("unet/config.json")
    assert unet["block_out_channels"] == [320, 640, 1280]
    assert unet["transformer_layers_per_block"] == [1, 2, 10]
    assert unet["attention_head_dim"] == [5, 10, 20]
    assert unet["cross_attention_dim"] == 2048  # 768 + 1280
    assert unet["addition_embed_type"] == "text_time"
    assert unet["projection_class_embeddings_input_dim"] == 2816  # 1280 + 6 * 256
    assert unet["sample_size"] == 128
    vae = read_json("vae/config.json")
    assert vae["scaling_factor"] == 0.13025
    assert vae["force_upcast"] is True
    first, second = read_json("text_encoder/config.json"), read_json("text_encoder_2/config.json")
    assert (first["hidden_size"], first["num_hidden_layers"], first["hidden_act"]) == (
        768, 12, "quick_gelu",
    )  # fmt: skip
    assert (second["hidden_size"], second["num_hidden_layers"], second["hidden_act"]) == (
        1280, 32, "gelu",
    )  # fmt: skip
    assert first["vocab_size"] == second["vocab_size"] == 49408
    scheduler = read_json("scheduler/scheduler_config.json")
    assert (scheduler["beta_start"], scheduler["beta_end"]) == (0.00085, 0.012)
    assert scheduler["beta_schedule"] == "scaled_linear"
    assert scheduler["timestep_spacing"] == "leading"
    assert scheduler["steps_offset"] == 1
    assert scheduler["prediction_type"] == "epsilon"


def test_tokenizer_files_are_what_the_tool_builds_from_the_merges() -> None:
    """merges.txt is the tool's only input: every other tokenizer file follows from it."""
    tool = load_tool()
    lines = (FOLDER / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2"
    merges = [tuple(line.split(" ")) for line in lines[1:]]
    assert len(merges) == 48_894
    assert all(len(merge) == 2 for merge in merges)
    for relative, text in tool.all_files(merges).items():
        assert (FOLDER / relative).read_text(encoding="utf-8") == text, relative


def test_vocabulary_layout() -> None:
    vocab = read_json("tokenizer/vocab.json")
    assert len(vocab) == 49_408
    assert sorted(vocab.values()) == list(range(49_408))
    by_id = {index: token for token, index in vocab.items()}
    assert [by_id[i] for i in (0, 93, 94, 255)] == ["!", "~", "\u00a1", "\u0143"]
    assert [by_id[i] for i in (256, 511, 512)] == ["!</w>", "\u0143</w>", "in"]
    assert (by_id[49406], by_id[49407]) == ("<|startoftext|>", "<|endoftext|>")
    assert vocab["a</w>"] == 320
    assert vocab["photo</w>"] == 1125
    assert vocab["cat</w>"] == 2368


def test_tokenizer_2_differs_only_in_its_pad_token() -> None:
    for name in ("vocab.json", "merges.txt"):
        assert (FOLDER / "tokenizer" / name).read_bytes() == (
            FOLDER / "tokenizer_2" / name
        ).read_bytes()
    first = read_json("tokenizer/tokenizer_config.json")
    second = read_json("tokenizer_2/tokenizer_config.json")
    assert first.pop("pad_token") == "<|endoftext|>"
    assert second.pop("pad_token") == "!"
    assert first == second
    assert first["model_max_length"] == 77
    assert first["tokenizer_class"] == "CLIPTokenizer"
    assert (first["bos_token"], first["eos_token"], first["unk_token"]) == (
        "<|startoftext|>", "<|endoftext|>", "<|endoftext|>",
    )  # fmt: skip


def test_the_tool_rebuilds_the_files_from_the_bpe_file(tmp_path: Path) -> None:
    """The tool end to end on a BPE file made from the committed merges (the real one's shape)."""
    tool = load_tool()
    merges = (FOLDER / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    # The real file: a header line, the 48,894 merges used, then unused merges up to 262,145 lines.
    bpe = "\n".join(["bpe_simple_vocab_16e6.txt#version: 0.2", *merges, "unused merge", ""])
    source = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    source.write_bytes(gzip.compress(bpe.encode("utf-8")))
    output = tmp_path / "sdxl"
    assert tool.main([str(source), "--output", str(output), "--check"]) == 1
    assert tool.main([str(source), "--output", str(output)]) == 0
    assert tool.main([str(source), "--output", str(output), "--check"]) == 0
    for folder in ("tokenizer", "tokenizer_2"):
        for name in TOKENIZER_FILES:
            assert (output / folder / name).read_bytes() == (FOLDER / folder / name).read_bytes()


# --- through transformers and diffusers -----------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizers() -> tuple[Any, Any]:
    from transformers import CLIPTokenizer

    return (
        CLIPTokenizer.from_pretrained(FOLDER / "tokenizer", local_files_only=True),
        CLIPTokenizer.from_pretrained(FOLDER / "tokenizer_2", local_files_only=True),
    )


@needs_generate
def test_byte_characters_match_transformers() -> None:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    assert load_tool().bytes_to_unicode() == bytes_to_unicode()


@needs_generate
@pytest.mark.parametrize(("text", "ids"), KNOWN_IDS.items())
def test_known_openai_token_ids(tokenizers: tuple[Any, Any], text: str, ids: list[int]) -> None:
    first, second = tokenizers
    assert first(text).input_ids == [49406, *ids, 49407]
    # transformers makes a pad token special, so tokenizer_2 (pad "!", as SDXL's on the hub)
    # encodes every "!" as the pad id 0, not as the vocabulary's "!</w>" (256) or "!!</w>" (748).
    expected = [
        0 if "!" in piece else id_
        for piece, id_ in zip(first.convert_ids_to_tokens(ids), ids, strict=True)
    ]
    assert second(text).input_ids == [49406, *expected, 49407]


@needs_generate
def test_tag_ids(tokenizers: tuple[Any, Any]) -> None:
    for tokenizer in tokenizers:
        for text, ids in TAG_IDS.items():
            assert tokenizer(text, add_special_tokens=False).input_ids == ids
            assert tokenizer.convert_ids_to_tokens(ids) == TAG_PIECES


@needs_generate
def test_padding(tokenizers: tuple[Any, Any]) -> None:
    first, second = tokenizers
    assert first.model_max_length == second.model_max_length == 77
    assert (first.pad_token, first.pad_token_id) == ("<|endoftext|>", 49407)
    assert (second.pad_token, second.pad_token_id) == ("!", 0)
    cat = [49406, *KNOWN_IDS["a photo of a cat"], 49407]
    one = first("a photo of a cat", padding="max_length", max_length=77).input_ids
    two = second("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert one == cat + [49407] * 70
    assert two == cat + [0] * 70
    long = first("cat " * 100, truncation=True, max_length=77).input_ids
    assert len(long) == 77
    assert (long[0], long[-1]) == (49406, 49407)


def count(module: Any) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@needs_generate
def test_component_configs_load_offline_with_sdxl_sizes() -> None:
    """Each config loads through its class; built without weights it is SDXL base's size."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    index = StableDiffusionXLPipeline.load_config(FOLDER, local_files_only=True)
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    scheduler = EulerDiscreteScheduler.from_pretrained(
        FOLDER, subfolder="scheduler", local_files_only=True
    )
    assert scheduler.config.num_train_timesteps == 1000
    # Generator swaps in Euler a from this config.
    ancestral = EulerAncestralDiscreteScheduler.from_config(scheduler.config)
    assert ancestral.config.beta_schedule == "scaled_linear"
    unet_config = UNet2DConditionModel.load_config(FOLDER, subfolder="unet", local_files_only=True)
    vae_config = AutoencoderKL.load_config(FOLDER, subfolder="vae", local_files_only=True)
    first = CLIPTextConfig.from_pretrained(FOLDER, subfolder="text_encoder", local_files_only=True)
    second = CLIPTextConfig.from_pretrained(
        FOLDER, subfolder="text_encoder_2", local_files_only=True
    )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        text_encoder = CLIPTextModel(first)
        text_encoder_2 = CLIPTextModelWithProjection(second)
    assert count(unet) == UNET_PARAMETERS
    assert count(vae) == VAE_PARAMETERS
    assert count(text_encoder) == TEXT_ENCODER_PARAMETERS
    assert count(text_encoder_2) == TEXT_ENCODER_2_PARAMETERS
    assert text_encoder_2.text_projection.weight.shape == (1280, 1280)


@needs_generate
def test_from_single_file_uses_the_bundled_folder_offline(tmp_path: Path) -> None:
    """No config=: the tokenizers and scheduler come from animagine/_data/sdxl, with no network.

    The tiny model's networks are passed in (the checkpoint file is the tiny one, so its shapes
    do not fit SDXL's real configs); what this proves is the folder's resolution and loading.
    """
    from animagine.generation import Generator, bundled_config
    from animagine.testing import make_tiny_pipeline, save_tiny_model

    assert bundled_config() == FOLDER
    paths = save_tiny_model(tmp_path)
    assert paths.single_file is not None
    file = tmp_path / "animagine-xl-4.0.safetensors"
    paths.single_file.rename(file)
    tiny: Any = make_tiny_pipeline(seed=0)
    networks = {
        name: getattr(tiny, name) for name in ("unet", "vae", "text_encoder", "text_encoder_2")
    }
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    loaded = Generator.from_single_file(file, **networks)
    pipeline = loaded.pipeline
    assert Path(pipeline.tokenizer.name_or_path) == FOLDER
    assert pipeline.tokenizer("a photo of a cat").input_ids == [
        49406, *KNOWN_IDS["a photo of a cat"], 49407,
    ]  # fmt: skip
    assert pipeline.tokenizer_2.pad_token == "!"
    assert type(pipeline.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert pipeline.scheduler.config.timestep_spacing == "leading"
    assert pipeline.unet is tiny.unet


@needs_generate
@pytest.mark.skipif(
    os.environ.get("ANIMAGINE_TEST_REAL_SHAPES") != "1",
    reason="set ANIMAGINE_TEST_REAL_SHAPES=1 (1.8 GB of disk, about 4.5 GB of memory)",
)
def test_real_size_text_encoders_and_vae_load_from_a_single_file(tmp_path: Path) -> None:
    """A single file with SDXL-size text encoders and VAE (random, float16) loads with no config=.

    The UNet stays the tiny one, passed in (a real-size one makes a 6.9 GB file).
    """
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from animagine.generation import Generator
    from animagine.testing import make_tiny_pipeline, to_original_sdxl

    def build(make: Any) -> Any:
        with torch.device("meta"):
            module = make()
        module = module.to_empty(device="cpu").to(torch.float16)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in module.parameters():
                values = torch.rand(parameter.shape, generator=generator)
                parameter.copy_(values.to(torch.float16))
        return module

    text_encoder = build(
        lambda: CLIPTextModel(CLIPTextConfig.from_pretrained(FOLDER / "text_encoder"))
    )
    text_encoder_2 = build(
        lambda: CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(FOLDER / "text_encoder_2")
        )
    )
    vae = build(lambda: AutoencoderKL.from_config(AutoencoderKL.load_config(FOLDER / "vae")))
    tiny: Any = make_tiny_pipeline(seed=0)
    tiny.unet.half()
    tiny.text_encoder, tiny.text_encoder_2, tiny.vae = text_encoder, text_encoder_2, vae
    file = tmp_path / "animagine-xl-4.0.safetensors"
    save_file(to_original_sdxl(tiny), str(file), metadata={"format": "pt"})
    loaded = Generator.from_single_file(file, dtype="float16", unet=tiny.unet).pipeline
    for name, original in (("text_encoder", text_encoder), ("text_encoder_2", text_encoder_2),
                           ("vae", vae)):  # fmt: skip
        expected = original.state_dict()
        got = getattr(loaded, name).state_dict()
        assert got.keys() == expected.keys(), name
        assert all(torch.equal(got[key], expected[key]) for key in expected), name
    assert count(loaded.text_encoder_2) == TEXT_ENCODER_2_PARAMETERS
