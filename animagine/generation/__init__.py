"""Generation: the one record of call options, samplers, sizes, hires fix, LoRA, loading, prompt
encoding, the :class:`Generator` and its results.

Imports only the prompt core, the metadata layer and the foundation. The heavy stack (torch,
diffusers, transformers) is imported inside the functions that use it, so importing this package
stays light.
"""

from __future__ import annotations

from animagine.generation._encoding import (
    CHUNK_LENGTH,
    CacheInfo,
    Chunk,
    PromptEmbeddings,
    PromptEncoder,
    chunk_tokens,
    prompt_fragments,
)
from animagine.generation._generator import SDXL_COMPONENTS, Generator
from animagine.generation._hires import (
    DEMO_HIRES_STRENGTH,
    DEMO_HIRES_UPSCALER,
    HIRES_UPSCALERS,
    hires_size,
)
from animagine.generation._loading import (
    DEFAULT_MODEL,
    PICKLE_SUFFIXES,
    bundled_config,
    check_folder,
    check_model_reference,
)
from animagine.generation._options import (
    OPTION_NAMES,
    GenerationOptions,
    GenerationPlan,
    OptionSpec,
    check_names,
    option_spec,
    plan_generation,
    set_values,
)
from animagine.generation._result import GenerationResult, check_output, png_names
from animagine.generation._samplers import SAMPLERS, Sampler, make_scheduler, resolve_sampler

__all__ = [
    "CHUNK_LENGTH",
    "DEFAULT_MODEL",
    "DEMO_HIRES_STRENGTH",
    "DEMO_HIRES_UPSCALER",
    "HIRES_UPSCALERS",
    "OPTION_NAMES",
    "PICKLE_SUFFIXES",
    "SAMPLERS",
    "SDXL_COMPONENTS",
    "CacheInfo",
    "Chunk",
    "GenerationOptions",
    "GenerationPlan",
    "GenerationResult",
    "Generator",
    "OptionSpec",
    "PromptEmbeddings",
    "PromptEncoder",
    "Sampler",
    "bundled_config",
    "check_folder",
    "check_model_reference",
    "check_names",
    "check_output",
    "chunk_tokens",
    "hires_size",
    "make_scheduler",
    "option_spec",
    "plan_generation",
    "png_names",
    "prompt_fragments",
    "resolve_sampler",
    "set_values",
]
