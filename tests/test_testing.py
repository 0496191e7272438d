"""animagine.testing: the tiny random SDXL and its single-file checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.generate,
]

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def assert_same_weights(a: Any, b: Any) -> None:
    import torch

    for name in COMPONENTS:
        left, right = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert left.keys() == right.keys(), name
        different = [key for key in left if not torch.equal(left[key], right[key])]
        assert not different, f"{name}: {different[:5]}"


def test_same_seed_same_weights(tiny_pipeline: Any) -> None:
    from animagine.testing import make_tiny_pipeline

    assert_same_weights(tiny_pipeline, make_tiny_pipeline(seed=0))


def test_other_seed_other_weights(tiny_pipeline: Any) -> None:
    import torch

    from animagine.testing import make_tiny_pipeline

    other = make_tiny_pipeline(seed=1)
    for name in COMPONENTS:
        left = getattr(tiny_pipeline, name).state_dict()
        right = getattr(other, name).state_dict()
        assert any(not torch.equal(left[key], right[key]) for key in left), name


def test_callers_rng_is_left_alone(tiny_pipeline: Any) -> None:
    import torch

    from animagine.testing import make_tiny_pipeline

    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    make_tiny_pipeline(seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_shapes(tiny_pipeline: Any) -> None:
    import torch

    pipe = tiny_pipeline
    assert pipe.text_encoder.config.hidden_size == 32
    assert pipe.text_encoder.config.hidden_act == "quick_gelu"
    assert pipe.text_encoder_2.config.hidden_size == 48
    assert pipe.text_encoder_2.config.hidden_act == "gelu"
    assert pipe.text_encoder_2.config.num_hidden_layers == 5
    assert pipe.unet.config.cross_attention_dim == 80
    assert pipe.unet.config.addition_embed_type == "text_time"
    assert pipe.vae.config.scaling_factor == 0.13025
    assert len(pipe.vae.config.block_out_channels) == 4
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert pipe.config.force_zeros_for_empty_prompt
    assert all(p.dtype == torch.float32 for p in pipe.unet.parameters())


def test_tokenizers_one_token_per_character(tiny_pipeline: Any) -> None:
    tokenizer, tokenizer_2 = tiny_pipeline.tokenizer, tiny_pipeline.tokenizer_2
    assert tokenizer("ab, c").input_ids == [512, 64, 256 + 65, 256 + 11, 256 + 66, 513]
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer_2.pad_token == "!"
    assert tokenizer_2.pad_token_id == 0
    padded = tokenizer_2("a", padding="max_length", max_length=77).input_ids
    assert padded[:3] == [512, 256 + 64, 513]
    assert set(padded[3:]) == {0}


def test_pipeline_runs_and_is_deterministic(tiny_pipeline: Any) -> None:
    import numpy as np
    import torch

    def run() -> Any:
        return tiny_pipeline(
            "1girl, solo",
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    first = run()
    assert first.shape == (1, 64, 64, 3)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, run())


def test_saved_folder_and_single_file_hold_the_same_weights(
    tiny_pipeline: Any, tiny_model_paths: Any
) -> None:
    from diffusers import StableDiffusionXLPipeline

    assert tiny_model_paths.folder.is_dir()
    assert tiny_model_paths.single_file.suffix == ".safetensors"
    folder = StableDiffusionXLPipeline.from_pretrained(
        tiny_model_paths.folder, local_files_only=True
    )
    single = StableDiffusionXLPipeline.from_single_file(
        str(tiny_model_paths.single_file),
        config=str(tiny_model_paths.folder),
        local_files_only=True,
    )
    assert_same_weights(folder, tiny_pipeline)
    assert_same_weights(single, tiny_pipeline)


def test_single_file_weights_come_from_the_file(tmp_path: Path, tiny_model_paths: Any) -> None:
    """Seed 1's file with seed 0's config folder loads seed 1's weights: nothing from the folder."""
    from diffusers import StableDiffusionXLPipeline

    from animagine.testing import make_tiny_pipeline, save_tiny_model

    other = save_tiny_model(tmp_path, seed=1)
    assert other.single_file is not None
    single = StableDiffusionXLPipeline.from_single_file(
        str(other.single_file), config=str(tiny_model_paths.folder), local_files_only=True
    )
    assert_same_weights(single, make_tiny_pipeline(seed=1))


def test_original_layout_keys(tiny_pipeline: Any) -> None:
    from animagine.testing import to_original_sdxl

    state = to_original_sdxl(tiny_pipeline)
    prefixes = {
        "model.diffusion_model.",
        "first_stage_model.",
        "conditioner.embedders.0.transformer.text_model.",
        "conditioner.embedders.1.model.",
    }
    assert all(any(key.startswith(p) for p in prefixes) for key in state)
    # A few names every SDXL checkpoint has, and their original shapes.
    assert state["model.diffusion_model.input_blocks.0.0.weight"].shape[0] == 8
    assert "model.diffusion_model.output_blocks.2.2.conv.weight" in state
    assert "model.diffusion_model.label_emb.0.0.weight" in state
    assert state["first_stage_model.decoder.mid.attn_1.q.weight"].ndim == 4
    assert state["conditioner.embedders.1.model.text_projection"].shape == (48, 48)
    assert state[
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"
    ].shape == (
        3 * 48,
        48,
    )
    # Every tensor kept, except q, k and v of text encoder 2 fused into one: per layer, 6 -> 2.
    total = sum(len(getattr(tiny_pipeline, name).state_dict()) for name in COMPONENTS)
    assert len(state) == total - 4 * 5


def test_without_single_file(tmp_path: Path) -> None:
    from animagine.testing import save_tiny_model

    paths = save_tiny_model(tmp_path, single_file=False)
    assert paths.single_file is None
    assert not list(tmp_path.glob("*.safetensors"))
    assert (paths.folder / "model_index.json").is_file()


def test_importing_testing_is_light() -> None:
    code = "import sys, animagine.testing; assert 'torch' not in sys.modules, 'torch imported'"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
