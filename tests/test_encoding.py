"""A1111-semantics long weighted prompt encoding (animagine.PromptEncoder) on the tiny SDXL.

The tiny tokenizers give one token per character, so token counts are easy to set: a tag of
four letters is four tokens, ", " is one (the comma).
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from animagine.core import BREAK, Prompt, Tag
from animagine.errors import AnimagineError, EncodingError, UnsupportedPipelineError
from animagine.generation import CHUNK_LENGTH, PromptEncoder, chunk_tokens, prompt_fragments

generate = pytest.mark.generate

COMMA = 256 + 11  # ",</w>" in the tiny byte vocabulary
BOS, EOS = 512, 513


def names(count: int, length: int) -> list[str]:
    """``count`` distinct lower-case names of ``length`` letters (``length`` tokens each)."""
    letters = string.ascii_lowercase
    return [(letters[i // 26] + letters[i % 26]).ljust(length, "z")[:length] for i in range(count)]


def tags_of(*items: str | tuple[str, float] | Tag) -> list[Tag]:
    out = []
    for item in items:
        if isinstance(item, Tag):
            out.append(item)
        elif isinstance(item, tuple):
            out.append(Tag(item[0], item[1]))
        else:
            out.append(Tag(item))
    return out


def text_of(tags: Sequence[Tag]) -> str:
    return ", ".join(tag.name for tag in tags)


def ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


@pytest.fixture
def encoder(tiny_pipeline: Any) -> PromptEncoder:
    return PromptEncoder(tiny_pipeline)


@pytest.fixture
def count_forwards(tiny_pipeline: Any) -> Iterator[list[str]]:
    """Records each text encoder forward pass, independently of PromptEncoder's own counter."""
    calls: list[str] = []
    handles = [
        getattr(tiny_pipeline, name).register_forward_hook(lambda *_, name=name: calls.append(name))
        for name in ("text_encoder", "text_encoder_2")
    ]
    yield calls
    for handle in handles:
        handle.remove()


# --- fragments: what A1111 would parse from the rendered prompt ----------------------------------


def test_fragments_weight_runs() -> None:
    assert prompt_fragments(tags_of("a", ("b", 1.2), "c")) == [
        ("a, ", 1.0),
        ("b", 1.2),
        (", c", 1.0),
    ]


def test_fragments_follow_the_rendered_prompt() -> None:
    # Rendered "(a:1.2), (b:1.2), c, (d:0.8)": every separator keeps weight 1, as in A1111.
    assert str(Prompt(general=tags_of(("a", 1.2), ("b", 1.2), "c", ("d", 0.8)))) == (
        "(a:1.2), (b:1.2), c, (d:0.8)"
    )
    assert prompt_fragments(tags_of(("a", 1.2), ("b", 1.2), "c", ("d", 0.8))) == [
        ("a", 1.2),
        (", ", 1.0),
        ("b", 1.2),
        (", c, ", 1.0),
        ("d", 0.8),
    ]


def test_fragments_unescaped_names() -> None:
    tag = Tag("hoshimachi suisei (1st costume)", 1.1)
    assert prompt_fragments([tag]) == [("hoshimachi suisei (1st costume)", 1.1)]


def test_fragments_break_like_a1111() -> None:
    # Rendered "a BREAK b": A1111 drops the whitespace around BREAK.
    assert str(Prompt(general=tags_of("a", BREAK, "b"))) == "a BREAK b"
    assert prompt_fragments(tags_of("a", BREAK, "b")) == [("a", 1.0), None, ("b", 1.0)]
    assert prompt_fragments(tags_of(("a", 1.2), BREAK, ("b", 1.2))) == [
        ("a", 1.2),
        None,
        ("b", 1.2),
    ]
    assert prompt_fragments([]) == []


# --- chunks ---------------------------------------------------------------------------------------


@generate
def test_short_prompt_chunk_matches_diffusers_tokens(tiny_pipeline: Any) -> None:
    tags = tags_of("1girl", "long hair", "hoshimachi suisei (1st costume)")
    for tokenizer in (tiny_pipeline.tokenizer, tiny_pipeline.tokenizer_2):
        (chunk,) = chunk_tokens(tokenizer, tags)
        # text_of joins the plain names: the name is sent unescaped, as A1111 does.
        expected = tokenizer(text_of(tags), padding="max_length", max_length=77).input_ids
        assert list(chunk.tokens) == expected
        assert chunk.multipliers == (1.0,) * 77


@generate
def test_padding_tokens(tiny_pipeline: Any) -> None:
    (first,) = chunk_tokens(tiny_pipeline.tokenizer, [])
    (second,) = chunk_tokens(tiny_pipeline.tokenizer_2, [])
    assert first.tokens == (BOS, *[EOS] * 76)  # CLIP ViT-L pads with EOS
    assert second.tokens == (BOS, EOS, *[0] * 75)  # tokenizer_2 pads with "!"
    assert first.length == second.length == 0


@generate
def test_150_tokens_make_two_chunks_and_every_tag_arrives(tiny_pipeline: Any) -> None:
    tokenizer = tiny_pipeline.tokenizer
    tags = tags_of(*names(30, 4))  # 30 * 4 letters + 29 commas = 149 tokens
    chunks = chunk_tokens(tokenizer, tags)
    assert len(chunks) == 2
    assert [chunk.length for chunk in chunks] == [75, 74]
    assert all(len(chunk.tokens) == len(chunk.multipliers) == 77 for chunk in chunks)
    assert [t for chunk in chunks for t in chunk.content] == ids(tokenizer, text_of(tags))
    for tag in tags:
        tag_ids = ids(tokenizer, tag.name)
        assert sum(contains(chunk.content, tag_ids) for chunk in chunks) == 1, tag


def contains(haystack: Sequence[int], needle: Sequence[int]) -> bool:
    n = len(needle)
    return any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


@generate
def test_comma_backtrack_keeps_a_tag_whole(tiny_pipeline: Any) -> None:
    tokenizer = tiny_pipeline.tokenizer
    tags = tags_of(*names(12, 6))  # tag k at 7k..7k+5: the 75-token border falls inside tag 10
    first, second = chunk_tokens(tokenizer, tags)
    assert first.length == 70  # cut after the comma that follows tag 9
    assert first.content[-1] == COMMA
    assert first.tokens[71:] == (EOS,) * 6
    assert list(second.content) == ids(tokenizer, text_of(tags[10:]))


@generate
def test_no_comma_near_the_border_splits_hard(tiny_pipeline: Any) -> None:
    tokenizer = tiny_pipeline.tokenizer
    first, second = chunk_tokens(tokenizer, [Tag("x" * 100)])
    assert (first.length, second.length) == (75, 25)
    far = tags_of("a" * 40, "b" * 50)  # last comma 35 tokens before the border: too far back
    assert [c.length for c in chunk_tokens(tokenizer, far)] == [75, 16]


@generate
def test_break_starts_a_new_chunk(tiny_pipeline: Any) -> None:
    tokenizer = tiny_pipeline.tokenizer
    first, second = chunk_tokens(tokenizer, tags_of("aaa", BREAK, "bbb"))
    assert list(first.content) == ids(tokenizer, "aaa")
    assert list(second.content) == ids(tokenizer, "bbb")
    assert len(chunk_tokens(tokenizer, tags_of("aaa", BREAK))) == 1  # nothing after: no chunk
    leading = chunk_tokens(tokenizer, tags_of(BREAK, "aaa"))
    assert [c.length for c in leading] == [0, 3]


@generate
def test_weights_follow_the_tokens(tiny_pipeline: Any) -> None:
    (chunk,) = chunk_tokens(tiny_pipeline.tokenizer, tags_of("aa", ("bb", 1.5), "cc"))
    # BOS, a a , b b , c c EOS pad...
    assert chunk.multipliers[:10] == (1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0)
    assert chunk.weighted


# --- embeddings against diffusers ----------------------------------------------------------------

PROMPT = tags_of("1girl", "hoshimachi suisei", "long hair", "smile", "masterpiece")
NEGATIVE = tags_of("lowres", "bad anatomy", "worst quality")


@generate
@pytest.mark.parametrize("clip_skip", [None, 1, 3])
def test_unweighted_short_prompt_equals_encode_prompt(
    encoder: PromptEncoder, tiny_pipeline: Any, clip_skip: int | None
) -> None:
    import torch

    emb = encoder.encode(PROMPT, NEGATIVE, clip_skip=clip_skip)
    embeds, negative, pooled, negative_pooled = tiny_pipeline.encode_prompt(
        text_of(PROMPT), negative_prompt=text_of(NEGATIVE), clip_skip=clip_skip, device="cpu"
    )
    assert emb.prompt_embeds.shape == (1, 77, 80)
    torch.testing.assert_close(emb.prompt_embeds, embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(emb.pooled_prompt_embeds, pooled, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        emb.negative_pooled_prompt_embeds, negative_pooled, atol=1e-6, rtol=0
    )
    if clip_skip is None:
        torch.testing.assert_close(emb.negative_prompt_embeds, negative, atol=1e-6, rtol=0)
    else:
        # diffusers applies clip_skip to the prompt only; we apply it to the negative too.
        as_prompt = tiny_pipeline.encode_prompt(
            text_of(NEGATIVE), clip_skip=clip_skip, device="cpu", do_classifier_free_guidance=False
        )[0]
        torch.testing.assert_close(emb.negative_prompt_embeds, as_prompt, atol=1e-6, rtol=0)


@generate
def test_empty_negative_gives_zeros_like_diffusers(
    encoder: PromptEncoder, tiny_pipeline: Any
) -> None:
    import torch

    emb = encoder.encode(PROMPT, [])
    embeds, negative, pooled, negative_pooled = tiny_pipeline.encode_prompt(
        text_of(PROMPT), device="cpu"
    )
    torch.testing.assert_close(emb.prompt_embeds, embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(emb.pooled_prompt_embeds, pooled, atol=1e-6, rtol=0)
    assert torch.equal(emb.negative_prompt_embeds, negative)
    assert torch.equal(emb.negative_pooled_prompt_embeds, negative_pooled)
    assert not emb.negative_prompt_embeds.any()
    assert not emb.negative_pooled_prompt_embeds.any()


@generate
def test_empty_negative_without_force_zeros_is_encoded(tiny_pipeline: Any) -> None:
    import torch
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**tiny_pipeline.components, force_zeros_for_empty_prompt=False)
    emb = PromptEncoder(pipe).encode(PROMPT, [])
    _, negative, _, negative_pooled = pipe.encode_prompt(
        text_of(PROMPT), negative_prompt="", device="cpu"
    )
    torch.testing.assert_close(emb.negative_prompt_embeds, negative, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        emb.negative_pooled_prompt_embeds, negative_pooled, atol=1e-6, rtol=0
    )
    assert emb.negative_prompt_embeds.abs().sum() > 0


@generate
def test_compel_agrees_on_an_unweighted_prompt(encoder: PromptEncoder, tiny_pipeline: Any) -> None:
    """A third-party check: compel's SDXL setup gives the same embeddings (at most 75 tokens)."""
    import torch

    compel = pytest.importorskip("compel", reason="compel (bench group) is not installed")
    build = compel.Compel(
        tokenizer=[tiny_pipeline.tokenizer, tiny_pipeline.tokenizer_2],
        text_encoder=[tiny_pipeline.text_encoder, tiny_pipeline.text_encoder_2],
        returned_embeddings_type=compel.ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED,
        requires_pooled=[False, True],
    )
    embeds, pooled = build(text_of(PROMPT))
    emb = encoder.encode(PROMPT, NEGATIVE)
    torch.testing.assert_close(emb.prompt_embeds, embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(emb.pooled_prompt_embeds, pooled, atol=1e-6, rtol=0)


# --- long prompts, BREAK, weights ----------------------------------------------------------------


def encode_text(pipe: Any, text: str) -> Any:
    """diffusers' own encoding of one chunk's worth of text: (embeds, pooled)."""
    embeds, _, pooled, _ = pipe.encode_prompt(text, device="cpu", do_classifier_free_guidance=False)
    return embeds, pooled


@generate
def test_long_prompt_is_the_chunks_concatenated(encoder: PromptEncoder, tiny_pipeline: Any) -> None:
    import torch

    tags = tags_of(*names(30, 4))
    emb = encoder.encode(tags, NEGATIVE)
    assert emb.prompt_embeds.shape == (1, 154, 80)
    assert emb.chunks == 2
    first, first_pooled = encode_text(tiny_pipeline, text_of(tags[:15]) + ",")
    second, _ = encode_text(tiny_pipeline, text_of(tags[15:]))
    torch.testing.assert_close(emb.prompt_embeds[:, :77], first, atol=1e-6, rtol=0)
    torch.testing.assert_close(emb.prompt_embeds[:, 77:], second, atol=1e-6, rtol=0)
    # The pooled embedding is the first chunk's (A1111), not the last's.
    torch.testing.assert_close(emb.pooled_prompt_embeds, first_pooled, atol=1e-6, rtol=0)


@generate
def test_break_encodes_a_new_chunk(encoder: PromptEncoder, tiny_pipeline: Any) -> None:
    import torch

    emb = encoder.encode(tags_of("1girl", BREAK, "smile"), [])
    assert emb.prompt_embeds.shape == (1, 154, 80)
    torch.testing.assert_close(
        emb.prompt_embeds[:, 77:], encode_text(tiny_pipeline, "smile")[0], atol=1e-6, rtol=0
    )


@generate
def test_negative_is_padded_with_empty_chunks(encoder: PromptEncoder, tiny_pipeline: Any) -> None:
    import torch

    long = tags_of(*names(30, 4))
    emb = encoder.encode(long, NEGATIVE)
    assert emb.negative_prompt_embeds.shape == emb.prompt_embeds.shape == (1, 154, 80)
    negative, negative_pooled = encode_text(tiny_pipeline, text_of(NEGATIVE))
    empty, _ = encode_text(tiny_pipeline, "")
    torch.testing.assert_close(emb.negative_prompt_embeds[:, :77], negative, atol=1e-6, rtol=0)
    torch.testing.assert_close(emb.negative_prompt_embeds[:, 77:], empty, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        emb.negative_pooled_prompt_embeds, negative_pooled, atol=1e-6, rtol=0
    )
    # And the other way round: a short prompt with a long negative.
    flipped = encoder.encode(NEGATIVE, long)
    assert flipped.prompt_embeds.shape == flipped.negative_prompt_embeds.shape == (1, 154, 80)
    torch.testing.assert_close(flipped.prompt_embeds[:, 77:], empty, atol=1e-6, rtol=0)


@generate
def test_weights_scale_rows_then_restore_the_mean_per_encoder(encoder: PromptEncoder) -> None:
    import torch

    plain = encoder.encode(tags_of("aa", "bb", "cc"), [])
    weighted = encoder.encode(tags_of("aa", ("bb", 1.5), "cc"), [])
    weights = torch.ones(77)
    weights[4:6] = 1.5  # BOS a a , [b b] , c c
    expected_parts = []
    for part in (slice(0, 32), slice(32, 80)):  # text encoder 1, text encoder 2
        z = plain.prompt_embeds[0, :, part]
        scaled = z * weights[:, None]
        expected_parts.append(scaled * (z.mean() / scaled.mean()))
    expected = torch.cat(expected_parts, dim=-1)
    torch.testing.assert_close(weighted.prompt_embeds[0], expected, atol=1e-6, rtol=1e-5)
    # The mean is restored per encoder, not on the concatenation.
    z = plain.prompt_embeds[0]
    on_concat = z * weights[:, None]
    on_concat = on_concat * (z.mean() / on_concat.mean())
    assert not torch.allclose(weighted.prompt_embeds[0], on_concat, atol=1e-6)
    # Weights do not touch the pooled embedding.
    assert torch.equal(weighted.pooled_prompt_embeds, plain.pooled_prompt_embeds)


@generate
def test_weight_one_is_no_weighting(encoder: PromptEncoder) -> None:
    import torch

    plain = encoder.encode(tags_of("aa", "bb"), NEGATIVE)
    explicit = encoder.encode([Tag("aa", 1.0), Tag("bb", 1)], NEGATIVE)
    assert torch.equal(plain.prompt_embeds, explicit.prompt_embeds)
    weighted_negative = encoder.encode(tags_of("aa", "bb"), [Tag("lowres", 1.3)])
    unweighted_negative = encoder.encode(tags_of("aa", "bb"), [Tag("lowres")])
    assert torch.equal(weighted_negative.prompt_embeds, unweighted_negative.prompt_embeds)
    assert not torch.equal(
        weighted_negative.negative_prompt_embeds, unweighted_negative.negative_prompt_embeds
    )


# --- cache ---------------------------------------------------------------------------------------


@generate
def test_cache_reuses_embeddings(tiny_pipeline: Any, count_forwards: list[str]) -> None:
    import torch

    encoder = PromptEncoder(tiny_pipeline)
    results = [encoder.encode(PROMPT, NEGATIVE) for _ in range(3)]
    assert count_forwards == ["text_encoder", "text_encoder_2"]  # one batch per encoder
    assert encoder.encoder_calls == 2
    info = encoder.cache_info
    assert (info.hits, info.misses, info.size, info.maxsize) == (2, 1, 1, 32)
    assert all(torch.equal(r.prompt_embeds, results[0].prompt_embeds) for r in results)
    encoder.encode(PROMPT, NEGATIVE, clip_skip=1)
    assert encoder.encoder_calls == 4
    encoder.encode(PROMPT, [])
    assert encoder.encoder_calls == 6
    assert len(count_forwards) == 6


@generate
def test_num_images_repeats_without_encoding(encoder: PromptEncoder) -> None:
    import torch

    one = encoder.encode(PROMPT, NEGATIVE)
    three = encoder.encode(PROMPT, NEGATIVE, num_images=3)
    assert encoder.encoder_calls == 2
    assert three.prompt_embeds.shape == (3, 77, 80)
    assert three.pooled_prompt_embeds.shape == (3, 48)
    assert three.negative_prompt_embeds.shape == (3, 77, 80)
    assert three.negative_pooled_prompt_embeds.shape == (3, 48)
    for row in range(3):
        assert torch.equal(three.prompt_embeds[row], one.prompt_embeds[0])
        assert torch.equal(
            three.negative_pooled_prompt_embeds[row], one.negative_pooled_prompt_embeds[0]
        )


@generate
def test_cache_is_bounded(tiny_pipeline: Any) -> None:
    encoder = PromptEncoder(tiny_pipeline, cache_size=2)
    for name in ("aa", "bb", "cc"):
        encoder.encode([Tag(name)], [])
    assert encoder.cache_info.size == 2
    encoder.encode([Tag("cc")], [])  # newest: kept
    assert encoder.encoder_calls == 6
    encoder.encode([Tag("aa")], [])  # oldest: evicted
    assert encoder.encoder_calls == 8
    assert encoder.cache_info.size == 2


@generate
def test_cache_off_and_clear(tiny_pipeline: Any) -> None:
    off = PromptEncoder(tiny_pipeline, cache_size=0)
    off.encode(PROMPT, [])
    off.encode(PROMPT, [])
    assert off.encoder_calls == 4
    assert off.cache_info.size == 0
    cached = PromptEncoder(tiny_pipeline)
    cached.encode(PROMPT, [])
    cached.clear_cache()
    cached.encode(PROMPT, [])
    assert cached.encoder_calls == 4


@generate
def test_callers_cannot_spoil_the_cache(encoder: PromptEncoder) -> None:
    first = encoder.encode(PROMPT, NEGATIVE)
    reference = first.prompt_embeds.clone()
    first.prompt_embeds.mul_(0)
    import torch

    assert torch.equal(encoder.encode(PROMPT, NEGATIVE).prompt_embeds, reference)


@generate
def test_replacing_a_text_encoder_empties_the_cache(tiny_pipeline: Any) -> None:
    import torch
    from diffusers import StableDiffusionXLPipeline

    from animagine.testing import make_tiny_pipeline

    pipe = StableDiffusionXLPipeline(**tiny_pipeline.components)
    encoder = PromptEncoder(pipe)
    before = encoder.encode(PROMPT, [])
    pipe.text_encoder = make_tiny_pipeline(seed=1).text_encoder
    after = encoder.encode(PROMPT, [])
    assert encoder.encoder_calls == 4
    assert not torch.equal(before.prompt_embeds[..., :32], after.prompt_embeds[..., :32])
    assert torch.equal(before.prompt_embeds[..., 32:], after.prompt_embeds[..., 32:])


# --- the pipeline end to end ----------------------------------------------------------------------


@generate
@pytest.mark.parametrize("count", [5, 30])  # one chunk, two chunks
def test_pipeline_runs_with_the_embeddings(
    encoder: PromptEncoder, tiny_pipeline: Any, count: int
) -> None:
    import numpy as np
    import torch

    emb = encoder.encode(tags_of(*names(count, 4)), NEGATIVE, num_images=2)

    def run() -> Any:
        return tiny_pipeline(
            **emb.as_kwargs(),
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    images = run()
    assert images.shape == (2, 64, 64, 3)
    assert np.isfinite(images).all()
    np.testing.assert_array_equal(images, run())


@generate
def test_same_embeddings_from_folder_and_single_file(tiny_model_paths: Any) -> None:
    import torch
    from diffusers import StableDiffusionXLPipeline

    folder = StableDiffusionXLPipeline.from_pretrained(
        tiny_model_paths.folder, local_files_only=True
    )
    single = StableDiffusionXLPipeline.from_single_file(
        str(tiny_model_paths.single_file),
        config=str(tiny_model_paths.folder),
        local_files_only=True,
    )
    prompt = tags_of(*names(20, 4), ("smile", 1.3), BREAK, ("lowres", 0.8))
    a = PromptEncoder(folder).encode(prompt, NEGATIVE, clip_skip=1)
    b = PromptEncoder(single).encode(prompt, NEGATIVE, clip_skip=1)
    for name, tensor in a.as_kwargs().items():
        assert torch.equal(tensor, b.as_kwargs()[name]), name


# --- bad input -----------------------------------------------------------------------------------


def fake_pipeline(**missing: None) -> SimpleNamespace:
    parts = dict.fromkeys(("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2"), object())
    parts.update(missing)
    return SimpleNamespace(**parts)


def test_pipeline_without_second_encoder() -> None:
    with pytest.raises(UnsupportedPipelineError, match=r"SDXL pipeline.*text_encoder_2") as info:
        PromptEncoder(fake_pipeline(text_encoder_2=None))
    assert isinstance(info.value, AnimagineError)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("prompt", "match"),
    [
        ("1girl, smile", r"prompt must be a sequence of animagine\.Tag \(parse text first\)"),
        ([Tag("a"), "b"], r"prompt\[1\] must be an animagine\.Tag, got str"),
        (None, "prompt must be a sequence"),
    ],
)
def test_prompt_must_be_tags(prompt: Any, match: str) -> None:
    encoder = PromptEncoder(fake_pipeline())
    with pytest.raises(EncodingError, match=match) as info:
        encoder.encode(prompt, [])
    assert isinstance(info.value, (AnimagineError, ValueError))
    with pytest.raises(EncodingError, match="negative"):
        encoder.encode([], prompt)


@pytest.mark.parametrize("size", [-1, 1.5, True])
def test_bad_cache_size(size: Any) -> None:
    with pytest.raises(EncodingError, match="cache_size"):
        PromptEncoder(fake_pipeline(), cache_size=size)


@generate
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_images": 0}, "num_images must be an int >= 1, got 0"),
        ({"clip_skip": -1}, "clip_skip must be between 0 and 4, got -1"),
        ({"clip_skip": 5}, "clip_skip must be between 0 and 4, got 5"),
    ],
)
def test_bad_arguments(encoder: PromptEncoder, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        encoder.encode(PROMPT, [], **kwargs)
    assert isinstance(info.value, AnimagineError)


@generate
def test_clip_skip_is_one_error_class_by_every_entry_point(encoder: PromptEncoder) -> None:
    """The encoder and the generator refuse a too deep clip_skip with the same class."""
    from animagine.errors import GenerationArgumentError
    from animagine.generation import Generator

    generator = Generator(encoder.pipeline, version="v4")
    with pytest.raises(GenerationArgumentError, match="clip_skip must be between 0 and 4"):
        encoder.encode(PROMPT, [], clip_skip=5)
    with pytest.raises(GenerationArgumentError, match="clip_skip must be between 0 and 4"):
        generator.check("1girl", clip_skip=5)


def test_chunk_length() -> None:
    assert CHUNK_LENGTH == 75


@generate
def test_embeddings_repr_shows_shapes(encoder: PromptEncoder) -> None:
    emb = encoder.encode(PROMPT, NEGATIVE, num_images=2)
    assert repr(emb) == (
        "PromptEmbeddings(prompt_embeds=(2, 77, 80), pooled_prompt_embeds=(2, 48), "
        "negative_prompt_embeds=(2, 77, 80), negative_pooled_prompt_embeds=(2, 48))"
    )


@generate
def test_threads_share_one_encoding(tiny_pipeline: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    encoder = PromptEncoder(tiny_pipeline)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: encoder.encode(PROMPT, NEGATIVE), range(8)))
    assert len(results) == 8
    assert encoder.encoder_calls == 2
    assert (encoder.cache_info.hits, encoder.cache_info.misses) == (7, 1)


def test_importing_the_encoder_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, animagine.generation; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fragments_keep_inner_emphasis_of_one_tag() -> None:
    """`an (important) word` is one tag whose middle is at 1.1, as A1111 weighs it.

    (Where a space between words goes does not matter: the tokenizer makes no token of it.)
    """
    from animagine import parse

    prompt = parse("1girl, an (important) word")
    assert prompt_fragments(prompt.tags) == [
        ("1girl, an ", 1.0),
        ("important ", 1.1),
        ("word", 1.0),
    ]
