"""Long, weighted prompts for SDXL with A1111's semantics, offline, for any SDXL pipeline.

The input is parsed tags, not text. A prompt ``[a, b(1.2), c]`` is encoded as AUTOMATIC1111's
WebUI encodes the text ``a, (b:1.2), c``:

* **Fragments.** Consecutive tags of the same weight form one run of text joined by ``", "``; the
  ``", "`` between runs of different weights is weight-1 text, so the example gives
  ``[("a, ", 1), ("b", 1.2), (", c", 1)]`` (a run of ``[b(1.2), c(1.2)]`` is the text
  ``(b, c:1.2)``). Names are sent unescaped, as A1111 unescapes ``\\(`` before tokenising.
  ``BREAK`` is rendered ``a, BREAK, b``: A1111 reads that as ``"a,"``, a break, ``", b"``.
* **Chunks.** Each fragment is tokenised without BOS/EOS, and the tokens are cut into chunks of
  75 (A1111's ``tokenize_line``): when a chunk is full and its last comma is among its last 20
  tokens, the chunk ends after that comma and the tokens after it move to the next chunk, so a tag
  is not split across a border. ``BREAK`` pads the current chunk and starts a new one. Each chunk
  is ``BOS + 75 tokens + EOS``, the rest padded with the tokenizer's pad token (``<|endoftext|>``
  for SDXL's tokenizer, ``!`` for ``tokenizer_2``: what diffusers sends for a prompt of at most
  75 tokens, and what A1111 sends too). BOS, EOS and padding have weight 1.
* **Encoders.** Each chunk goes through both text encoders; the hidden state used is diffusers'
  SDXL convention: ``hidden_states[-2]`` (penultimate layer, no final layer norm), or
  ``hidden_states[-(clip_skip + 2)]``. Chunks are concatenated along the sequence (77 x chunks),
  the two encoders along the features (768 + 1280 in SDXL). The pooled embedding (text encoder 2's
  projection) is that of the first chunk, as in A1111 (diffusers' ``lpw_stable_diffusion_xl``
  takes the last).
* **Emphasis** (A1111's "Original"): per chunk and *per encoder*, before concatenation, the
  hidden states are multiplied by their tokens' weights and then rescaled so the chunk keeps its
  mean: ``z *= w; z *= mean_before / mean_after``. That is what A1111 does for SDXL: each of the
  two embedders of its SDXL conditioner is wrapped and emphasised on its own
  (``sd_hijack_clip.py``), and the conditioner concatenates the results. A chunk whose weights are
  all 1 is left untouched, so an unweighted prompt of at most 75 tokens gives exactly what
  ``pipe.encode_prompt`` gives.
* **Negative.** The prompt and the negative are padded to the same number of chunks with empty
  chunks (``BOS EOS pad...``, encoded), as A1111's ``pad_cond_uncond`` option does (diffusers needs
  equal lengths to batch them). An empty negative gives zeros, for the embeddings and the pooled
  embedding, when the pipeline's config has ``force_zeros_for_empty_prompt`` (SDXL base and
  Animagine do), as diffusers and A1111 do; otherwise the empty prompt is encoded.

Differences from the tools, on purpose: ``clip_skip`` applies to both encoders and to the negative
(diffusers' ``encode_prompt`` ignores it for the negative; A1111 ignores clip skip for SDXL unless
``sdxl_clip_l_skip`` is set: ``clip_skip=None`` is A1111's default). LoRA text-encoder scales
(``lora_scale``) are not applied here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.core import Tag
from animagine.errors import (
    EncodingError,
    GenerationArgumentError,
    GenerationTypeError,
    UnsupportedPipelineError,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHUNK_LENGTH",
    "CacheInfo",
    "Chunk",
    "EncodingError",
    "PromptEmbeddings",
    "PromptEncoder",
    "UnsupportedPipelineError",
    "chunk_tokens",
]

#: Prompt tokens per chunk; with BOS and EOS a chunk is CLIP's 77 positions.
CHUNK_LENGTH: Final = 75
#: A1111's ``comma_padding_backtrack`` default: how far back a chunk border may move to a comma.
COMMA_BACKTRACK: Final = 20
_SEPARATOR: Final = ", "


# --- fragments and chunks: pure, no torch ---------------------------------------------------------

#: A run of text and its weight; ``None`` stands for ``BREAK``.
_Fragment = tuple[str, float] | None


def _check_tags(value: object, argument: str) -> tuple[Tag, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise EncodingError(
            f"{argument} must be a sequence of animagine.Tag (parse text first), "
            f"got {type(value).__name__}: {value!r:.80}"
        )
    tags = tuple(value)
    for index, tag in enumerate(tags):
        if not isinstance(tag, Tag):
            raise EncodingError(
                f"{argument}[{index}] must be an animagine.Tag, "
                f"got {type(tag).__name__}: {tag!r:.80}"
            )
    return tags


def prompt_fragments(prompt: Sequence[Tag]) -> list[_Fragment]:
    """A1111's ``parse_prompt_attention`` output for the prompt as animagine renders it.

    Tags are rendered one by one (``a, (b:1.2), (c:1.2)``), so the ``, `` between them always has
    weight 1, and ``BREAK`` stands between bare spaces that A1111 drops. Adjacent pieces of equal
    weight are merged, as A1111 does.
    """
    pieces: list[_Fragment] = []
    previous: Tag | None = None
    for tag in prompt:
        if previous is not None and not tag.is_break and not previous.is_break:
            pieces.append((_SEPARATOR, 1.0))
        if tag.is_break:
            pieces.append(None)
        elif tag.parts:  # inner emphasis: `an (important) word` keeps its text weights
            pieces.extend(tag.parts)
        else:
            pieces.append((tag.name, tag.weight))
        previous = tag
    merged: list[_Fragment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if piece is not None and last is not None and last[1] == piece[1]:
            merged[-1] = (last[0] + piece[0], piece[1])
        else:
            merged.append(piece)
    return merged


@attrs.frozen
class Chunk:
    """One 77-token window as it is sent to a text encoder.

    Attributes:
        tokens: ``BOS``, up to 75 prompt tokens, ``EOS``, then the tokenizer's pad token.
        multipliers: The weight of each token (1 for BOS, EOS and padding).
        length: How many of the tokens are the prompt's (between BOS and EOS).
    """

    tokens: tuple[int, ...]
    multipliers: tuple[float, ...]
    length: int

    @property
    def content(self) -> tuple[int, ...]:
        """The prompt's tokens, without BOS, EOS and padding."""
        return self.tokens[1 : 1 + self.length]

    @property
    def weighted(self) -> bool:
        """Whether any token has a weight other than 1."""
        return any(m != 1.0 for m in self.multipliers)


@attrs.frozen
class _Specials:
    bos: int
    eos: int
    pad: int
    comma: int | None


def _specials(tokenizer: Any) -> _Specials:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise UnsupportedPipelineError(
            f"{type(tokenizer).__name__} has no BOS/EOS token: a CLIP tokenizer is needed"
        )
    pad = tokenizer.pad_token_id
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    if comma is not None and comma == tokenizer.unk_token_id and tokenizer.unk_token != ",</w>":
        comma = None
    return _Specials(bos=bos, eos=eos, pad=eos if pad is None else pad, comma=comma)


def _make_chunk(content: list[int], weights: list[float], specials: _Specials) -> Chunk:
    fill = CHUNK_LENGTH - len(content)
    return Chunk(
        tokens=(specials.bos, *content, specials.eos, *([specials.pad] * fill)),
        multipliers=(1.0, *weights, *([1.0] * (fill + 1))),
        length=len(content),
    )


def _chunk(fragments: list[tuple[list[int], float] | None], specials: _Specials) -> list[Chunk]:
    chunks: list[Chunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def flush() -> None:
        nonlocal last_comma
        chunks.append(_make_chunk(tokens, weights, specials))
        tokens.clear()
        weights.clear()
        last_comma = -1

    for fragment in fragments:
        if fragment is None:
            flush()
            continue
        ids, weight = fragment
        for token in ids:
            if token == specials.comma:
                last_comma = len(tokens)
            elif (
                len(tokens) == CHUNK_LENGTH
                and last_comma != -1
                and len(tokens) - last_comma <= COMMA_BACKTRACK
            ):
                cut = last_comma + 1
                carry, carry_weights = tokens[cut:], weights[cut:]
                del tokens[cut:], weights[cut:]
                flush()
                tokens.extend(carry)
                weights.extend(carry_weights)
            if len(tokens) == CHUNK_LENGTH:
                flush()
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        flush()
    return chunks


def chunk_tokens(tokenizer: Any, prompt: Sequence[Tag]) -> list[Chunk]:
    """Cut ``prompt`` into the 77-token chunks one text encoder will see, as A1111 does.

    ``tokenizer`` is a CLIP tokenizer (``pipe.tokenizer`` or ``pipe.tokenizer_2``). Nothing is
    truncated: every tag's tokens are in exactly one chunk (a tag longer than 20 tokens may still
    be split at a border). An empty prompt gives one chunk of ``BOS EOS pad...``.
    """
    tags = _check_tags(prompt, "prompt")
    return _chunk_checked(tokenizer, tags, _specials(tokenizer))


def _chunk_checked(tokenizer: Any, tags: tuple[Tag, ...], specials: _Specials) -> list[Chunk]:
    fragments = prompt_fragments(tags)
    texts = [fragment[0] for fragment in fragments if fragment is not None]
    ids: list[list[int]] = []
    if texts:
        # verbose=False: fragments longer than 77 tokens are expected here, no warning wanted.
        encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        ids = [list(row) for row in encoded["input_ids"]]
    tokenized: list[tuple[list[int], float] | None] = []
    rows = iter(ids)
    for fragment in fragments:
        tokenized.append(None if fragment is None else (next(rows), fragment[1]))
    return _chunk(tokenized, specials)


def _empty_chunk(specials: _Specials) -> Chunk:
    return _make_chunk([], [], specials)


# --- embeddings ----------------------------------------------------------------------------------


@attrs.frozen(eq=False, repr=False)
class PromptEmbeddings:
    """Embeddings for ``StableDiffusionXLPipeline.__call__``; the batch is ``num_images``.

    ``prompt_embeds`` and ``negative_prompt_embeds`` are ``(num_images, 77 * chunks, 2048)`` in
    SDXL (the two encoders' widths added), the pooled ones ``(num_images, 1280)``. Compared by
    identity (compare tensors with ``torch.equal``).
    """

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    negative_pooled_prompt_embeds: torch.Tensor

    @property
    def chunks(self) -> int:
        """How many 77-token chunks the embeddings hold."""
        return int(self.prompt_embeds.shape[1]) // (CHUNK_LENGTH + 2)

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}={tuple(tensor.shape)}" for name, tensor in self.as_kwargs().items()
        )
        return f"PromptEmbeddings({shapes})"

    def as_kwargs(self) -> dict[str, Any]:
        """The four tensors as keyword arguments of ``StableDiffusionXLPipeline.__call__``."""
        return attrs.asdict(self, recurse=False)


@attrs.frozen
class CacheInfo:
    """Statistics of a :class:`PromptEncoder`'s embedding cache, like ``functools``' ``CacheInfo``.

    Attributes:
        hits: Encodings answered from the cache.
        misses: Encodings that ran the text encoders.
        size: Entries held now.
        maxsize: The most entries it holds (0: caching is off).
    """

    hits: int
    misses: int
    size: int
    maxsize: int


_Key = tuple[tuple[Tag, ...], tuple[Tag, ...], "int | None", bool]
_Entry = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor", "torch.Tensor"]


def _execution_device(module: Any) -> torch.device:
    """Where the module's inputs must be: its hook's device under offloading, else its own."""
    try:
        from diffusers.utils.torch_utils import get_module_execution_device
    except ImportError:  # older diffusers
        import torch

        return torch.device(next(module.parameters()).device)
    device: torch.device = get_module_execution_device(module)
    return device


def _hidden_layers(encoder: Any) -> int:
    return int(encoder.config.num_hidden_layers)


class PromptEncoder:
    """Encode tag prompts for an SDXL pipeline with A1111's long-prompt and weighting semantics.

    Works with any ``StableDiffusionXLPipeline`` (``from_pretrained``, ``from_single_file``, or
    built by hand): it uses the pipeline's own tokenizers and text encoders, on their device and
    in their dtype, and copies nothing. See the module documentation for the exact semantics.

    Embeddings are cached (LRU, ``cache_size`` entries, 0 turns the cache off) by prompt,
    negative, ``clip_skip`` and the pipeline's ``force_zeros_for_empty_prompt``; ``num_images``
    repeats cached embeddings without encoding again. The cache belongs to this encoder. It is
    emptied when the pipeline's tokenizers or text encoders are replaced by other objects; after
    changing their weights in place (loading or fusing a LoRA, ``load_state_dict``) call
    :meth:`clear_cache`. Safe to share between threads (encoding is serialised by a lock).
    """

    def __init__(self, pipeline: Any, *, cache_size: int = 32) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise EncodingError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self._pipeline = pipeline
        self._components = self._read_components()
        self._maxsize = cache_size
        self._cache: OrderedDict[_Key, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._encoder_calls = 0

    def _read_components(self) -> tuple[Any, Any, Any, Any]:
        pipeline = self._pipeline
        names = ("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2")
        missing = [name for name in names if getattr(pipeline, name, None) is None]
        if missing:
            raise UnsupportedPipelineError(
                "PromptEncoder needs an SDXL pipeline (StableDiffusionXLPipeline) with two "
                f"tokenizers and two text encoders; {type(pipeline).__name__} has no "
                f"{', '.join(missing)}"
            )
        tokenizer, tokenizer_2, text_encoder, text_encoder_2 = (
            getattr(pipeline, name) for name in names
        )
        return tokenizer, tokenizer_2, text_encoder, text_encoder_2

    @property
    def pipeline(self) -> Any:
        """The pipeline whose tokenizers and text encoders are used."""
        return self._pipeline

    @property
    def cache_size(self) -> int:
        """How many prompts' embeddings the cache keeps (0: no cache)."""
        return self._maxsize

    @property
    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the embedding cache."""
        with self._lock:
            return CacheInfo(
                hits=self._hits, misses=self._misses, size=len(self._cache), maxsize=self._maxsize
            )

    @property
    def encoder_calls(self) -> int:
        """Text encoder forward passes run so far (two per encoding that missed the cache)."""
        return self._encoder_calls

    def clear_cache(self) -> None:
        """Forget every cached embedding (the statistics are kept)."""
        with self._lock:
            self._cache.clear()

    def encode(
        self,
        prompt: Sequence[Tag],
        negative: Sequence[Tag] = (),
        *,
        clip_skip: int | None = None,
        num_images: int = 1,
    ) -> PromptEmbeddings:
        """Encode a prompt and its negative for ``num_images`` images.

        Args:
            prompt: The tags, ``BREAK`` included (parse text with animagine first).
            negative: The negative prompt's tags; empty gives zeros when the pipeline's
                ``force_zeros_for_empty_prompt`` is set.
            clip_skip: Layers to skip, diffusers' convention: ``None`` (and 0) use the
                penultimate layer, ``k`` uses ``hidden_states[-(k + 2)]``.
            num_images: The batch size of the returned tensors.

        Raises:
            EncodingError: An argument that is not valid.
            UnsupportedPipelineError: The pipeline lost its SDXL text encoders.
        """
        tags = _check_tags(prompt, "prompt")
        negative_tags = _check_tags(negative, "negative")
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise EncodingError(f"num_images must be an int >= 1, got {num_images!r}")
        components = self._read_components()
        self._check_clip_skip(clip_skip, components)
        config = getattr(self._pipeline, "config", None) or {}
        zero_negative = not negative_tags and bool(
            config.get("force_zeros_for_empty_prompt", False)
        )
        key: _Key = (tags, negative_tags, clip_skip, zero_negative)
        with self._lock:
            if any(new is not old for new, old in zip(components, self._components, strict=True)):
                self._cache.clear()
                self._components = components
            entry = self._cache.get(key)
            if entry is not None:
                self._hits += 1
                self._cache.move_to_end(key)
            else:
                self._misses += 1
                entry = self._encode(tags, negative_tags, clip_skip, zero_negative, components)
                if self._maxsize:
                    self._cache[key] = entry
                    while len(self._cache) > self._maxsize:
                        self._cache.popitem(last=False)
        # `repeat` copies: callers may change the tensors without touching the cache.
        embeds, pooled, negative_embeds, negative_pooled = entry
        return PromptEmbeddings(
            prompt_embeds=embeds.repeat(num_images, 1, 1),
            pooled_prompt_embeds=pooled.repeat(num_images, 1),
            negative_prompt_embeds=negative_embeds.repeat(num_images, 1, 1),
            negative_pooled_prompt_embeds=negative_pooled.repeat(num_images, 1),
        )

    @staticmethod
    def _check_clip_skip(clip_skip: int | None, components: tuple[Any, Any, Any, Any]) -> None:
        if clip_skip is None:
            return
        layers = min(_hidden_layers(components[2]), _hidden_layers(components[3]))
        if isinstance(clip_skip, bool) or not isinstance(clip_skip, int):
            raise GenerationTypeError(f"clip_skip must be None or an int, got {clip_skip!r}")
        if not 0 <= clip_skip <= layers - 1:
            raise GenerationArgumentError(
                f"clip_skip must be between 0 and {layers - 1}, got {clip_skip!r}"
            )

    def _encode(
        self,
        prompt: tuple[Tag, ...],
        negative: tuple[Tag, ...],
        clip_skip: int | None,
        zero_negative: bool,
        components: tuple[Any, Any, Any, Any],
    ) -> _Entry:
        import torch

        tokenizers, encoders = components[:2], components[2:]
        specials = [_specials(tokenizer) for tokenizer in tokenizers]
        positive = [_chunk_checked(t, prompt, s) for t, s in zip(tokenizers, specials, strict=True)]
        negatives = (
            [[] for _ in tokenizers]
            if zero_negative
            else [_chunk_checked(t, negative, s) for t, s in zip(tokenizers, specials, strict=True)]
        )
        count = max(len(chunks) for chunks in (*positive, *negatives))
        layer = -2 if clip_skip is None else -(clip_skip + 2)
        dtype = encoders[1].dtype
        hidden: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        with torch.no_grad():
            for index, encoder in enumerate(encoders):
                empty = _empty_chunk(specials[index])
                rows = positive[index] + [empty] * (count - len(positive[index]))
                if not zero_negative:
                    rows += negatives[index] + [empty] * (count - len(negatives[index]))
                device = _execution_device(encoder)
                ids = torch.tensor([row.tokens for row in rows], dtype=torch.long, device=device)
                output = encoder(ids, output_hidden_states=True)
                self._encoder_calls += 1
                states = output.hidden_states[layer]
                if any(row.weighted for row in rows):
                    weights = torch.tensor(
                        [row.multipliers for row in rows], dtype=states.dtype, device=states.device
                    )
                    states = _emphasise(states, weights)
                hidden.append(states.to(dtype=dtype))
                if index == 1:
                    pooled = _pooled(output)
            assert pooled is not None
            device = hidden[1].device
            features = torch.cat([hidden[0].to(device), hidden[1]], dim=-1)
            width = features.shape[-1]
            embeds = features[:count].reshape(1, -1, width)
            pooled_embeds = pooled[:1].to(device=device, dtype=dtype)
            if zero_negative:
                negative_embeds = torch.zeros_like(embeds)
                negative_pooled = torch.zeros_like(pooled_embeds)
            else:
                negative_embeds = features[count:].reshape(1, -1, width)
                negative_pooled = pooled[count : count + 1].to(device=device, dtype=dtype)
        return embeds, pooled_embeds, negative_embeds, negative_pooled


def _emphasise(states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's "Original" emphasis on a batch of chunks ``(rows, 77, width)``, row by row."""
    import torch

    original = states.mean(dim=(1, 2), keepdim=True)
    weighted = states * weights[:, :, None]
    new = weighted.mean(dim=(1, 2), keepdim=True)
    # A mean of 0 after weighting (all-zero weights) would give inf: keep the weighted states.
    ratio = torch.where(new != 0, original / torch.where(new != 0, new, 1.0), 1.0)
    weighted = weighted * ratio
    untouched = (weights == 1.0).all(dim=1)[:, None, None]
    return torch.where(untouched, states, weighted)


def _pooled(output: Any) -> torch.Tensor:
    pooled = getattr(output, "text_embeds", None)
    if pooled is None:
        first = output[0]
        if first.ndim != 2:
            raise UnsupportedPipelineError(
                "text_encoder_2 gives no pooled embedding: SDXL needs CLIPTextModelWithProjection"
            )
        pooled = first
    result: torch.Tensor = pooled
    return result
