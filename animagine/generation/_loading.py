"""Loading models: dtypes, devices, the fp16-safe VAE, safe weights, model references."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from animagine.core import WEIGHT_FILE_SUFFIXES, ModelVersion, get_version
from animagine.errors import (
    GenerationArgumentError,
    GenerationTypeError,
    ModelLoadError,
    UnknownVersionError,
)
from animagine.extras import require
from animagine.generation._checks import bool_argument

if TYPE_CHECKING:
    import torch

#: The model :meth:`animagine.Generator.from_pretrained` and the command line load by default.
DEFAULT_MODEL: Final = "cagliostrolab/animagine-xl-4.0"
#: Weight file suffixes that hold pickles (which run code when loaded).
PICKLE_SUFFIXES: Final = WEIGHT_FILE_SUFFIXES - {".safetensors"}

_DTYPE_NAMES: Final = {
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}  # fmt: skip


def _resolve_dtype(dtype: object) -> torch.dtype | None:
    if dtype is None:
        return None
    torch_module = require("torch")
    if isinstance(dtype, torch_module.dtype):
        name = str(dtype).removeprefix("torch.")
    elif isinstance(dtype, str):
        name = _DTYPE_NAMES.get(dtype.strip().lower().removeprefix("torch."), "")
    else:
        raise GenerationTypeError(
            f"dtype must be a torch.dtype or a str, got {type(dtype).__name__}: {dtype!r}"
        )
    if name not in ("float16", "bfloat16", "float32"):
        raise GenerationArgumentError(f"dtype must be float16, bfloat16 or float32, got {dtype!r}")
    result: torch.dtype = getattr(torch_module, name)
    return result


def _resolve_device(device: object) -> torch.device | None:
    if device is None:
        return None
    torch_module = require("torch")
    if not isinstance(device, (str, torch_module.device)):
        raise GenerationTypeError(
            f"device must be a str or torch.device, got {type(device).__name__}: {device!r}"
        )
    try:
        result: torch.device = torch_module.device(device)
    except (RuntimeError, ValueError) as error:
        raise GenerationArgumentError(f"device={device!r} is not a torch device: {error}") from None
    return result


def _dtype_keyword() -> str:
    """diffusers >= 0.40 calls the loading dtype ``dtype``; before, ``torch_dtype``."""
    version = require("diffusers").__version__
    numbers = re.match(r"(\d+)\.(\d+)", version)
    if numbers is not None and (int(numbers[1]), int(numbers[2])) < (0, 40):
        return "torch_dtype"
    return "dtype"


def _vae_plan(
    dtype: torch.dtype | None, version: ModelVersion, vae_given: bool, vae: object
) -> tuple[str | None, bool]:
    """How to get a VAE that decodes without NaN: ``(hub id of a VAE to load, force upcast)``.

    Only float16 overflows. Without a ``vae=`` option, versions whose card loads an fp16-fix VAE
    (3.0, 3.1) get it, and other versions' bundled VAE is decoded in float32. ``vae=None`` keeps
    the bundled VAE, decoded in float32; a VAE passed in is used as its config says.
    """
    torch = require("torch")
    if dtype != torch.float16:
        return None, False
    if vae_given:
        return None, vae is None
    if version.defaults.vae is not None:
        return version.defaults.vae, False
    return None, True


def _model_label(model: str) -> str:
    """The model name recorded in images: a hub id as given, a local folder or file by name."""
    path = Path(model).expanduser()
    if path.exists():
        named = Path(os.path.abspath(path))  # a symlink keeps its own name
        return named.stem if named.is_file() else named.name
    return model


def _version_for(model: str, version: object, what: str) -> ModelVersion:
    if version is not None:
        if not isinstance(version, (str, ModelVersion)):
            raise GenerationTypeError(
                f"version must be a str or ModelVersion, got {type(version).__name__}: {version!r}"
            )
        return get_version(version)
    try:
        return get_version(model)
    except UnknownVersionError:
        raise UnknownVersionError(
            f"cannot tell the Animagine XL version from {what} {model!r}; pass version="
            " ('v3', 'v3.1' or 'v4')"
        ) from None


def _has_weights(folder: Path, suffixes: frozenset[str]) -> bool:
    return any(path.suffix.lower() in suffixes for path in folder.rglob("*") if path.is_file())


def _check_pickle_option(options: dict[str, Any]) -> bool:
    allow_pickle = bool_argument("allow_pickle", options.pop("allow_pickle", False))
    if "use_safetensors" in options:
        raise GenerationArgumentError(
            "use_safetensors is set by animagine: safetensors only, unless allow_pickle=True"
        )
    return allow_pickle


def _choose_vae(
    options: dict[str, Any], torch_dtype: torch.dtype | None, version: ModelVersion
) -> bool:
    """Put the VAE to load into ``options`` (the caller's, or the version's fp16-fix one).

    Returns whether the bundled VAE must decode in float32. Runs before ``local_files_only``
    gets its default, so the fp16-fix VAE may come from the hub (or its cache).
    """
    vae_given = "vae" in options
    vae = options.pop("vae", None)
    vae_id, upcast = _vae_plan(torch_dtype, version, vae_given, vae)
    if vae is not None:
        options["vae"] = vae
    elif vae_id is not None:
        options["vae"] = _load_fix_vae(vae_id, torch_dtype, options)
    return upcast


def _load_fix_vae(hub_id: str, dtype: torch.dtype | None, options: Mapping[str, Any]) -> Any:
    """The fp16-fix VAE, with the loading options that make sense for one model."""
    diffusers = require("diffusers")
    passed = {
        key: options[key]
        for key in ("cache_dir", "local_files_only", "token", "proxies")
        if key in options
    }
    if dtype is not None:
        passed[_dtype_keyword()] = dtype
    return diffusers.AutoencoderKL.from_pretrained(hub_id, use_safetensors=True, **passed)


def bundled_config() -> Path | None:
    """The diffusers-format SDXL config in ``animagine/_data/sdxl``, if this build ships one."""
    folder = Path(__file__).parent.parent / "_data" / "sdxl"
    return folder if (folder / "model_index.json").is_file() else None


# --- model references -------------------------------------------------------------------------

#: Libraries whose classes a diffusers folder may name in ``model_index.json``: anything else is
#: custom code that loading would import and run.
_KNOWN_LIBRARIES: Final = frozenset({"diffusers", "transformers"})


def is_hub_id(text: str) -> bool:
    """Whether ``text`` is a valid hub repository id (huggingface_hub's own rule)."""
    validators = require("huggingface_hub.utils")
    try:
        validators.validate_repo_id(text)
    except validators.HFValidationError:
        return False
    return True


def _offline() -> bool:
    constants = require("huggingface_hub.constants")
    return bool(constants.HF_HUB_OFFLINE)


def check_model_reference(model: str, *, single_file: bool) -> None:
    """Refuse, before any loading, a model that is neither a local path nor a hub id we can get.

    Raises:
        ModelLoadError: a path that does not exist (and is no hub id), or a hub id that is not in
            the local cache while the hub is offline.
    """
    local = Path(model).expanduser()
    if local.exists():
        return
    if single_file or not is_hub_id(model):
        what = "file" if single_file else "folder or file"
        raise ModelLoadError(f"{model!r}: no such {what}, and not a hub repository id")
    if _offline():
        cache = require("huggingface_hub")
        found = cache.try_to_load_from_cache(model, "model_index.json")
        if not isinstance(found, str):
            raise ModelLoadError(
                f"{model!r} is not a local folder or file, and the hub id could not be fetched"
                " offline (HF_HUB_OFFLINE is set and it is not in the cache)"
            )


def check_folder(folder: Path, *, allow_pickle: bool) -> None:
    """Refuse a diffusers folder that is not one, has only pickles, or names custom code.

    Raises:
        ModelLoadError: no ``model_index.json``, an unreadable one, a component whose class
            comes from another library than diffusers or transformers (custom code), or no
            ``.safetensors`` weights without ``allow_pickle``.
    """
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(
            f"{os.fspath(folder)!r} is not a diffusers folder (no model_index.json)"
        )
    try:
        entries = json.loads(index.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{os.fspath(index)!r} cannot be read: {error}") from None
    if not isinstance(entries, dict):
        raise ModelLoadError(f"{os.fspath(index)!r} is not a JSON object")
    for name, entry in entries.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2:
            continue
        library = entry[0]
        if library is not None and library not in _KNOWN_LIBRARIES:
            raise ModelLoadError(
                f"{os.fspath(folder)!r}: component {name!r} comes from {library!r}, which is"
                " custom code that loading would run; only diffusers and transformers"
                " components are loaded"
            )
    if not allow_pickle and not _has_weights(folder, frozenset({".safetensors"})):
        raise ModelLoadError(
            f"{os.fspath(folder)!r} has no .safetensors weights; pickle weights (.bin) can run"
            " code when loaded: pass allow_pickle=True if you trust them"
        )


def load_errors() -> tuple[type[BaseException], ...]:
    """What diffusers, transformers and safetensors raise for files they cannot load."""
    safetensors = require("safetensors")
    hub = require("huggingface_hub.errors")
    single_file = require("diffusers.loaders.single_file_utils")
    extra = tuple(
        error
        for error in (getattr(single_file, "SingleFileComponentError", None),)
        if isinstance(error, type) and issubclass(error, BaseException)
    )
    return (
        *extra,
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        AttributeError,
        EOFError,
        safetensors.SafetensorError,
        hub.HfHubHTTPError,
    )


def describe_load_error(what: str, error: BaseException) -> ModelLoadError:
    """A :class:`ModelLoadError` naming the file or model and the reason, in one line."""
    reason = " ".join(str(error).split()) or type(error).__name__
    if len(reason) > 300:
        reason = reason[:297] + "..."
    return ModelLoadError(f"cannot load {what}: {type(error).__name__}: {reason}")


def check_safetensors(path: Path) -> None:
    """Read a ``.safetensors`` file's header: refuse a truncated or corrupt file up front.

    Raises:
        ModelLoadError: the header cannot be read, is not JSON, or describes more data than the
            file holds.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            length = int.from_bytes(head, "little")
            if length > min(size - 8, 100_000_000):
                raise ValueError(f"header of {length} bytes in a file of {size}")
            header = json.loads(file.read(length))
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"{os.fspath(path)!r} is not a readable .safetensors file: {error}"
        ) from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{os.fspath(path)!r} is not a .safetensors file (bad header)")
    end = 0
    for key, value in header.items():
        if key == "__metadata__" or not isinstance(value, dict):
            continue
        offsets = value.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int):
            end = max(end, offsets[1])
    if 8 + length + end > size:
        raise ModelLoadError(
            f"{os.fspath(path)!r} is truncated: its header describes {8 + length + end} bytes,"
            f" the file has {size}"
        )
