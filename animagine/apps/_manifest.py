"""The batch manifest: one JSON row per image, per-process shards, merged atomically."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from animagine.apps._batch_input import BatchItem, output_names, physical_lines
from animagine.errors import (
    MetadataError,
)
from animagine.files import write_atomic
from animagine.metadata import GenerationParameters, read_parameters, verify_png

__all__ = [
    "MANIFEST",
    "SHARD_PREFIX",
    "Shard",
    "fsync_dir",
    "manifest_row",
    "merge_manifest",
    "read_image",
    "read_rows",
    "recorded_rows",
    "shard_files",
    "valid_image",
]

MANIFEST: Final = "manifest.jsonl"
SHARD_PREFIX: Final = "manifest.rank"
#: The shards' names, exactly: a user's ``manifest.rank-notes.jsonl`` is not one of ours.
_SHARD_NAME: Final = re.compile(r"manifest\.rank(0|[1-9][0-9]{0,5})\.jsonl")


# --- files ------------------------------------------------------------------------------------


def read_image(path: Path) -> GenerationParameters:
    """The parameters of a complete PNG with generation metadata at ``path``.

    The file is untrusted (it may be anyone's): its metadata is read within the limits of
    :func:`animagine.read_parameters` first, then every chunk's CRC is checked up to ``IEND``
    (no pixel is decoded).

    Raises:
        MetadataError: anything else, with the reason.
    """
    try:
        parameters = read_parameters(path)
    except OSError as error:
        raise MetadataError(f"{path.name} cannot be read: {error.strerror or error}") from None
    verify_png(path)
    return parameters


def valid_image(path: Path) -> GenerationParameters | None:
    """The parameters of a complete PNG with generation metadata at ``path``, else None."""
    try:
        return read_image(path)
    except MetadataError:
        return None


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / file system can
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def manifest_row(
    item: BatchItem, index: int, name: str, parameters: GenerationParameters
) -> dict[str, Any]:
    return {
        "line": item.line,
        "image": index,
        "file": name,
        "seed": parameters.seed,
        "input": dict(item.options),
        "parameters": parameters.to_json(),
    }


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a manifest file; a torn last line (a kill while appending) is skipped."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in physical_lines(text):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # torn, or not ours
            continue
        if isinstance(row, dict) and isinstance(row.get("file"), str):
            yield row


def shard_files(out_dir: Path) -> list[Path]:
    """This batch's shards in ``out_dir``: ``manifest.rank{N}.jsonl``, nothing else."""
    return sorted(
        Path(entry.path) for entry in os.scandir(out_dir) if _SHARD_NAME.fullmatch(entry.name)
    )


def recorded_rows(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The rows the manifest and the shards of a stopped run hold, by file (later ones win)."""
    rows: dict[str, dict[str, Any]] = {}
    for source in (out_dir / MANIFEST, *shard_files(out_dir)):
        for row in read_rows(source):
            rows[row["file"]] = row
    return rows


def merge_manifest(out_dir: Path, items: Sequence[BatchItem]) -> Path:
    """Merge the previous manifest, the shards and rebuilt rows into ``manifest.jsonl``."""
    target = out_dir / MANIFEST
    shards = shard_files(out_dir)
    rows = recorded_rows(out_dir)
    present = {entry.name for entry in os.scandir(out_dir)}
    rows = {name: row for name, row in rows.items() if name in present}
    for item in items:  # images made by an earlier run that died before writing their rows
        for index, name in enumerate(output_names(item), start=1):
            if name in present and name not in rows:
                parameters = valid_image(out_dir / name)
                if parameters is not None:
                    rows[name] = manifest_row(item, index, name, parameters)

    def order(row: dict[str, Any]) -> tuple[int, int, str]:
        line, index = row.get("line"), row.get("image")
        return (
            line if isinstance(line, int) else 0,
            index if isinstance(index, int) else 0,
            row["file"],
        )

    text = "".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
        for row in sorted(rows.values(), key=order)
    )
    write_atomic(target, text)
    for shard in shards:
        with contextlib.suppress(FileNotFoundError):
            shard.unlink()
    return target


class Shard:
    """This process's manifest shard: one JSON row per image, flushed and fsynced per item."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: io.TextIOWrapper | None = None

    def append(self, rows: Sequence[dict[str, Any]], *, sync: bool) -> None:
        if self._file is None:
            self._file = open(self._path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._file.write(
            "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        )
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
