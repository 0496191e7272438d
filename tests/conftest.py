"""Shared fixtures.

Generation tests (marked ``generate``) run on a tiny random SDXL built once per session by
``animagine.testing``; they are skipped only when the ``generate`` extra (torch, diffusers,
transformers) is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Before torch, transformers or huggingface_hub are imported: no network, and one CPU thread
# (with two threads and any other load a 0.1 s call can take seconds).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

if TYPE_CHECKING:
    from animagine.testing import TinyModelPaths

GENERATE_EXTRA = ("torch", "diffusers", "transformers")
HAS_GENERATE = all(importlib.util.find_spec(name) is not None for name in GENERATE_EXTRA)

#: The third-party warnings a ``generate`` test may meet, each narrow (every other warning is an
#: error, see pyproject.toml). Applied here, once, to every test marked ``generate``.
GENERATE_WARNINGS = (
    # diffusers' schedulers call np.array(tensor, copy=False) on torch tensors (set_timesteps,
    # from_config): numpy 2 deprecates it. Harmless; not ours to fix.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    # diffusers' KDPM2 schedulers (DPM2, DPM2 a) hit numpy 2's __array_wrap__ deprecation on
    # torch tensors; the same story.
    "ignore:__array_wrap__ must accept context:DeprecationWarning",
)


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:  # the core-only test session
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = None if HAS_GENERATE else pytest.mark.skip(reason="needs the generate extra")
    for item in items:
        if "generate" not in item.keywords:
            continue
        if skip is not None:
            item.add_marker(skip)
        for warning in GENERATE_WARNINGS:
            item.add_marker(pytest.mark.filterwarnings(warning))
    # A test marked `gpu` runs where CUDA is, and says why it does not elsewhere.
    gpu = [item for item in items if "gpu" in item.keywords]
    if gpu and not _has_cuda():
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def _torch_setup() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_pipeline(_torch_setup: None) -> Any:
    """A tiny random ``StableDiffusionXLPipeline`` (seed 0), shared: do not modify it."""
    from animagine.testing import make_tiny_pipeline

    return make_tiny_pipeline(seed=0)


@pytest.fixture(scope="session")
def tiny_model_paths(
    _torch_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> TinyModelPaths:
    """The seed-0 tiny model saved as a diffusers folder and an original-layout single file."""
    from animagine.testing import save_tiny_model

    directory: Path = tmp_path_factory.mktemp("tiny-model")
    return save_tiny_model(directory, seed=0)
