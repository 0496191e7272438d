"""Tiny random SDXL pipelines for offline tests.

Animagine XL is an SDXL fine-tune of several gigabytes. Tests of code that drives a pipeline (ours,
benchmarks, or your own application's) need none of that: they need a pipeline with SDXL's
*topology* (two CLIP text encoders of different widths, a UNet with text-time conditioning, a
4-level VAE) whose weights are random and small. This module builds one in a fraction of a second,
offline, seeded::

    from animagine.testing import make_tiny_pipeline, save_tiny_model

    pipe = make_tiny_pipeline(seed=0)              # StableDiffusionXLPipeline, float32, CPU
    image = pipe("1girl", num_inference_steps=2, output_type="np").images[0]   # 64x64

    paths = save_tiny_model(tmp_path)              # a diffusers folder and an A1111 single file
    StableDiffusionXLPipeline.from_single_file(
        paths.single_file, config=str(paths.folder), local_files_only=True
    )

The tokenizers use a hand-written byte-level CLIP vocabulary with no merges: every character is
one token (``","`` and ``",</w>"`` exist as in the real vocabulary; ``<|startoftext|>`` is 512,
``<|endoftext|>`` 513). ``tokenizer_2`` pads with ``"!"`` (id 0), as SDXL's does.

Needs the ``generate`` extra (torch, diffusers, transformers, safetensors).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.extras import require

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

__all__ = ["TinyModelPaths", "make_tiny_pipeline", "save_tiny_model", "to_original_sdxl"]

#: Width of text encoder 1 (CLIP ViT-L in the real model) and of text encoder 2 (OpenCLIP bigG).
#: They must differ: diffusers' single-file loader tells the two encoders apart by width.
TEXT_DIM_1: Final = 32
TEXT_DIM_2: Final = 48
_VOCAB_SIZE: Final = 514
_BOS: Final = "<|startoftext|>"
_EOS: Final = "<|endoftext|>"
_FOLDER_NAME: Final = "tiny-sdxl"


def _import(name: str) -> Any:
    """Import a module of the generate extra on use (``import animagine.testing`` stays cheap)."""
    return require(name, what="animagine.testing")


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for module initialisation without disturbing the caller's."""
    torch = _import("torch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _byte_vocab() -> dict[str, int]:
    """A CLIP vocabulary with one token per byte, as CLIP's byte-to-unicode table spells bytes.

    Ids 0-255 are the bytes, 256-511 the same with ``</w>`` (end of word), then BOS and EOS.
    The table is GPT-2's: printable bytes stand for themselves, the others are moved above 255.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    chars = [chr(b) for b in printable]
    chars += [chr(256 + n) for n in range(256 - len(printable))]
    vocab = {char: i for i, char in enumerate(chars)}
    vocab.update({f"{char}</w>": i + 256 for i, char in enumerate(chars)})
    vocab[_BOS] = 512
    vocab[_EOS] = 513
    return vocab


def _tokenizer(*, pad_token: str) -> CLIPTokenizer:
    tokenizer: CLIPTokenizer = _import("transformers").CLIPTokenizer(
        vocab=_byte_vocab(),
        merges=[],
        bos_token=_BOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=pad_token,
        model_max_length=77,
    )
    return tokenizer


def _text_config(hidden_size: int, act: str, projection_dim: int) -> Any:
    return _import("transformers").CLIPTextConfig(
        vocab_size=_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        projection_dim=projection_dim,
        num_hidden_layers=5,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=act,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
    )


def make_tiny_pipeline(seed: int = 0) -> StableDiffusionXLPipeline:
    """Build a tiny SDXL pipeline with random weights: float32, on the CPU, offline.

    The same ``seed`` gives identical weights (the caller's torch RNG state is left alone).
    Default image size is 64x64 (UNet sample size 8, VAE scale factor 8). The scheduler is Euler a,
    Animagine's recommended sampler; ``force_zeros_for_empty_prompt`` is on, as in SDXL base.
    """
    diffusers = _import("diffusers")
    transformers = _import("transformers")

    with _seeded(seed):
        unet = diffusers.UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16, 32),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            layers_per_block=2,
            transformer_layers_per_block=(1, 1, 2),
            attention_head_dim=(2, 4, 8),
            norm_num_groups=8,
            cross_attention_dim=TEXT_DIM_1 + TEXT_DIM_2,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM_2,
        )
    with _seeded(seed + 1):
        vae = diffusers.AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            norm_num_groups=4,
            latent_channels=4,
            sample_size=64,
            scaling_factor=0.13025,
        )
    with _seeded(seed + 2):
        text_encoder = transformers.CLIPTextModel(
            _text_config(TEXT_DIM_1, "quick_gelu", TEXT_DIM_1)
        )
    with _seeded(seed + 3):
        text_encoder_2 = transformers.CLIPTextModelWithProjection(
            _text_config(TEXT_DIM_2, "gelu", TEXT_DIM_2)
        )
    with warnings.catch_warnings():
        # diffusers' scheduler init passes a torch tensor to np.array(copy=False), which numpy 2
        # deprecates; it is harmless, and tests run with warnings as errors.
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning
        )
        scheduler = diffusers.EulerAncestralDiscreteScheduler(
            num_train_timesteps=1000,
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
            prediction_type="epsilon",
        )
    pipe: Any = diffusers.StableDiffusionXLPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=_tokenizer(pad_token=_EOS),
        tokenizer_2=_tokenizer(pad_token="!"),
        unet=unet.eval(),
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    result: StableDiffusionXLPipeline = pipe
    return result


@attrs.frozen
class TinyModelPaths:
    """Where :func:`save_tiny_model` wrote the model.

    Attributes:
        folder: The diffusers-format folder (``save_pretrained``, safetensors): pass it to
            ``from_pretrained``, and as ``config=`` to ``from_single_file`` to load offline.
        single_file: The original-SD (A1111 / ComfyUI) layout ``.safetensors`` checkpoint, or
            ``None`` when it was not asked for.
    """

    folder: Path
    single_file: Path | None


def save_tiny_model(
    directory: str | Path, *, seed: int = 0, single_file: bool = True
) -> TinyModelPaths:
    """Write :func:`make_tiny_pipeline`'s model to ``directory``, as people download models.

    ``directory/tiny-sdxl/`` is the diffusers folder; ``directory/tiny-sdxl.safetensors`` the single
    file checkpoint in the original SDXL layout (written unless ``single_file=False``). Loading the
    single file offline needs ``config=str(paths.folder), local_files_only=True``.
    """
    save_file = _import("safetensors.torch").save_file
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pipe: Any = make_tiny_pipeline(seed)
    folder = directory / _FOLDER_NAME
    pipe.save_pretrained(folder, safe_serialization=True)
    file: Path | None = None
    if single_file:
        file = directory / f"{_FOLDER_NAME}.safetensors"
        state = to_original_sdxl(pipe)
        save_file(state, str(file), metadata={"format": "pt"})
    return TinyModelPaths(folder=folder, single_file=file)


# --- diffusers -> original SDXL (sgm / A1111) state dict ------------------------------------------
#
# The layout of the original checkpoints: `model.diffusion_model.` (UNet, LDM block numbering),
# `first_stage_model.` (VAE), `conditioner.embedders.0.transformer.text_model.` (CLIP ViT-L, in
# transformers' own naming) and `conditioner.embedders.1.model.` (OpenCLIP bigG in open_clip's
# naming: fused q/k/v, `resblocks`, `ln_final`, a transposed `text_projection`). Learned from
# diffusers' `scripts/convert_diffusers_to_original_sdxl.py` and its single-file loader; written
# here from the block structure rather than hard-coded SDXL block counts.

_RESNET_NAMES: Final = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP: Final = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_BLOCK_KEY: Final = re.compile(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)")
_SAMPLER_KEY: Final = re.compile(
    r"(down|up)_blocks\.(\d+)\.(downsamplers|upsamplers)\.0\.conv\.(.+)"
)
_MID_KEY: Final = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def _resnet_rest(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_RESNET_NAMES.get(head, head)}.{tail}"


def _unet_key(key: str, *, layers: int, up_has_attention: list[bool]) -> str:
    head, _, tail = key.rpartition(".")  # tail: weight / bias
    if head in _UNET_TOP:
        return f"{_UNET_TOP[head]}.{tail}"
    if match := _BLOCK_KEY.fullmatch(key):
        direction, block, kind, index, rest = match.groups()
        b, i = int(block), int(index)
        if direction == "down":  # input_blocks.0 is conv_in; each level has `layers` + 1 slots
            slot = f"input_blocks.{1 + b * (layers + 1) + i}"
        else:  # up levels have `layers` + 1 resnets
            slot = f"output_blocks.{b * (layers + 1) + i}"
        if kind == "resnets":
            return f"{slot}.0.{_resnet_rest(rest)}"
        return f"{slot}.1.{rest}"
    if match := _SAMPLER_KEY.fullmatch(key):
        direction, block, _, rest = match.groups()
        b = int(block)
        if direction == "down":
            return f"input_blocks.{(b + 1) * (layers + 1)}.0.op.{rest}"
        position = 2 if up_has_attention[b] else 1
        return f"output_blocks.{b * (layers + 1) + layers}.{position}.conv.{rest}"
    if match := _MID_KEY.fullmatch(key):
        kind, index, rest = match.groups()
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * int(index)}.{_resnet_rest(rest)}"
    raise ValueError(f"no original SDXL name for UNet key {key!r}")


_VAE_ATTENTION: Final = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
_VAE_RESNET: Final = re.compile(r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.resnets\.(\d+)\.(.+)")
_VAE_SAMPLER: Final = re.compile(
    r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.\w+samplers\.0\.(.+)"
)
_VAE_MID: Final = re.compile(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def _vae_key(key: str, *, levels: int) -> str:
    key = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
    if match := _VAE_RESNET.fullmatch(key):
        part, direction, block, index, rest = match.groups()
        level = int(block) if direction == "down" else levels - 1 - int(block)
        return f"{part}.{direction}.{level}.block.{index}.{rest}"
    if match := _VAE_SAMPLER.fullmatch(key):
        part, direction, block, rest = match.groups()
        level = int(block) if direction == "down" else levels - 1 - int(block)
        name = "downsample" if direction == "down" else "upsample"
        return f"{part}.{direction}.{level}.{name}.{rest}"
    if match := _VAE_MID.fullmatch(key):
        part, kind, index, rest = match.groups()
        if kind == "resnets":
            return f"{part}.mid.block_{int(index) + 1}.{rest}"
        head, _, tail = rest.rpartition(".")
        return f"{part}.mid.attn_1.{_VAE_ATTENTION[head]}.{tail}"
    return key


_OPENCLIP_TOP: Final = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}
_OPENCLIP_LAYER: Final = re.compile(r"text_model\.encoder\.layers\.(\d+)\.(.+)")
_OPENCLIP_NAMES: Final = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _openclip_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    cat = _import("torch").cat
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in _OPENCLIP_TOP:
            out[_OPENCLIP_TOP[key]] = value
        elif key == "text_projection.weight":  # a Linear in transformers, a matrix in open_clip
            out["text_projection"] = value.T.contiguous()
        elif match := _OPENCLIP_LAYER.fullmatch(key):
            layer, rest = match.groups()
            head, _, tail = rest.rpartition(".")
            if head in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((layer, tail), {})[head[-6]] = value
            else:
                out[f"transformer.resblocks.{layer}.{_OPENCLIP_NAMES[head]}.{tail}"] = value
        elif not key.endswith("position_ids"):
            raise ValueError(f"no original SDXL name for text encoder 2 key {key!r}")
    for (layer, tail), parts in qkv.items():
        fused: torch.Tensor = cat([parts["q"], parts["k"], parts["v"]])
        out[f"transformer.resblocks.{layer}.attn.in_proj_{tail}"] = fused
    return out


def to_original_sdxl(pipe: StableDiffusionXLPipeline) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and text encoders as an original-layout SDXL state dict.

    This is the layout of the single-file checkpoints people download (A1111, ComfyUI, Civitai).
    It is written for the topology :func:`make_tiny_pipeline` builds (SDXL's own block structure
    at any width), and is what :func:`save_tiny_model` saves.
    """
    components: Any = pipe  # diffusers' pipelines are not annotated
    unet_config = components.unet.config
    layers = int(unet_config.layers_per_block)
    up_has_attention = ["CrossAttn" in name for name in unet_config.up_block_types]
    levels = len(components.vae.config.block_out_channels)
    state: dict[str, torch.Tensor] = {}
    for key, value in components.unet.state_dict().items():
        name = _unet_key(key, layers=layers, up_has_attention=up_has_attention)
        state[f"model.diffusion_model.{name}"] = value.contiguous()
    for key, value in components.vae.state_dict().items():
        name = _vae_key(key, levels=levels)
        if ".mid.attn_1." in name and name.endswith(".weight") and value.ndim == 2:
            # Linear layers in diffusers, 1x1 convolutions in the original VAE.
            state[f"first_stage_model.{name}"] = value[:, :, None, None].contiguous()
        else:
            state[f"first_stage_model.{name}"] = value.contiguous()
    for key, value in components.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; the checkpoint keeps `text_model.`.
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        if not name.endswith("position_ids"):
            state[f"conditioner.embedders.0.transformer.{name}"] = value.contiguous()
    for key, value in _openclip_state(components.text_encoder_2.state_dict()).items():
        state[f"conditioner.embedders.1.model.{key}"] = value.contiguous()
    return state
