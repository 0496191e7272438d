"""LoRA files: which file of a folder, A1111's short hash, how they are recorded."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final

import attrs

from animagine.errors import ModelLoadError
from animagine.generation._loading import PICKLE_SUFFIXES

__all__ = [
    "ADAPTER_NAME",
    "LORA_SUFFIXES",
    "Lora",
    "check_weight_suffix",
    "format_weight",
    "lora_file_in",
    "lora_hash",
]


ADAPTER_NAME: Final = re.compile(r"[\w\-]+")
LORA_SUFFIXES: Final = PICKLE_SUFFIXES | {".safetensors"}


@attrs.frozen
class Lora:
    name: str
    weight: float
    hash: str | None


def format_weight(weight: float) -> str:
    return str(int(weight)) if weight.is_integer() else repr(weight)


def lora_hash(path: Path) -> str:
    """A1111's LoRA short hash (``Lora hashes``): the first 12 hex digits of the sha256 of a
    safetensors file's tensor data (the "addnet" hash, header skipped), or of a whole pickle file.
    """
    digest = hashlib.sha256()
    with path.open("rb") as file:
        if path.suffix.lower() == ".safetensors":
            header = file.read(8)
            file.seek(8 + int.from_bytes(header, "little"))
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def check_weight_suffix(name: str, allow_pickle: bool, what: str) -> None:
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(
                f"{what} {name!r} is a pickle file, which can run code when loaded; convert it to"
                " .safetensors, or pass allow_pickle=True if you trust it"
            )
    elif suffix != ".safetensors":
        raise ModelLoadError(f"{what} {name!r} is not a .safetensors file")


def lora_file_in(folder: Path, allow_pickle: bool) -> str:
    """The one LoRA weights file in ``folder`` (safetensors first)."""
    files = sorted(path.name for path in folder.iterdir() if path.is_file())
    for suffixes in ({".safetensors"}, PICKLE_SUFFIXES if allow_pickle else set()):
        found = [name for name in files if Path(name).suffix.lower() in suffixes]
        if len(found) == 1:
            return found[0]
        if found:
            raise ModelLoadError(
                f"{os.fspath(folder)!r} holds several weights files ({', '.join(found)}); pass"
                " weight_name= to choose one"
            )
    pickles = [name for name in files if Path(name).suffix.lower() in PICKLE_SUFFIXES]
    hint = (
        f"; its pickle weights ({', '.join(pickles)}) can run code when loaded: pass"
        " allow_pickle=True if you trust them"
        if pickles
        else ""
    )
    raise ModelLoadError(f"{os.fspath(folder)!r} has no .safetensors LoRA weights{hint}")
