"""Batch generation: one image (or several) per line of a prompt file, resumable, on many GPUs.

::

    python -m animagine batch prompts.jsonl -o out/ --model cagliostrolab/animagine-xl-4.0
    accelerate launch --num_processes 8 -m animagine batch prompts.jsonl -o out/

From Python::

    items, errors = read_batch("prompts.jsonl", defaults={"steps": 28})
    summary = run_batch(lambda device: Generator.from_pretrained(device=device), items, "out/")

How it works:

* **Input** (:func:`read_batch`): a text file (one prompt per line; blank lines and lines starting
  with ``#`` are skipped), JSONL (one object per line with :meth:`animagine.Generator.__call__`
  options by their Python names) or CSV (a header row of option names). Bad lines are reported
  with their line numbers and left out.
* **Deterministic outputs**: the item of input line ``n`` is written to ``{n:06d}.png`` (or
  ``{n:06d}-{k}.png``, ``k`` from 1, when it makes several images), and its seed is fixed before
  any work: the line's own, or one derived from a base seed and the line number.
* **Atomic, never overwritten**: images go through :func:`animagine.metadata.write_png` and the
  manifest through :func:`animagine.files.write_atomic` (temporary file, then a link or rename
  into place); an existing image is kept unless ``overwrite``. A cleanup after a crash removes
  only the temporary files animagine names (:func:`animagine.files.is_temporary`).
* **Resume**: an item whose images all exist, open and hold our metadata is skipped, so
  rerunning the same command after a crash or Ctrl-C finishes the job.
* **Manifest**: each process appends one JSON row per image to ``manifest.rank{N}.jsonl`` (flushed
  and fsynced per item); at the end the main process merges the shards, the previous
  ``manifest.jsonl`` and rows rebuilt from the metadata of images that have none into
  ``manifest.jsonl``, sorted by input line, one row per existing image, written atomically.
* **Many processes**: under ``accelerate launch`` or ``torchrun`` the pending items are split
  between the processes with accelerate's :class:`~accelerate.PartialState`; every item is made
  by exactly one process. The output folder must be shared by all machines.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from animagine.apps._generation_cli import (
    add_generation_arguments,
    add_model_arguments,
    batch_defaults,
    check_model_arguments,
    describe,
    model_loader,
    model_version,
)
from animagine.errors import (
    AnimagineError,
    BatchInputError,
    GenerationArgumentError,
    GenerationTypeError,
    MetadataError,
)
from animagine.extras import require
from animagine.files import is_temporary, write_atomic
from animagine.generation import (
    GenerationOptions,
    Generator,
    check_names,
    option_spec,
    plan_generation,
)
from animagine.limits import MAX_SEED
from animagine.metadata import GenerationParameters, read_parameters, write_png

if TYPE_CHECKING:
    import torch
    from accelerate import PartialState


__all__ = [
    "BadLine",
    "BatchInputError",
    "BatchInterrupted",
    "BatchItem",
    "BatchSummary",
    "ItemFailure",
    "add_batch_arguments",
    "derive_seed",
    "main_batch",
    "output_names",
    "read_batch",
    "run_batch",
]

_SIZE_OPTIONS: Final = frozenset({"width", "height", "aspect"})
_FORMATS: Final = ("txt", "jsonl", "csv")
_SUFFIX_FORMATS: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
MANIFEST: Final = "manifest.jsonl"
_SHARD_PREFIX: Final = "manifest.rank"
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED: Final = 130


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM under :func:`main_batch`) during :func:`run_batch`, after cleanup.

    A ``KeyboardInterrupt``, so code that does not know it stops as usual; it carries the
    summary of what was done before the interruption (``summary.interrupted`` is True).
    """

    def __init__(self, summary: BatchSummary) -> None:
        self.summary = summary
        super().__init__(summary.describe())


# --- input ------------------------------------------------------------------------------------


def _frozen_options(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value))


def _check_options(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    assert isinstance(value, Mapping)
    check_names(tuple(value))
    if not isinstance(value.get("prompt"), str):
        raise GenerationTypeError("options must hold a 'prompt' str")


def _positive_line(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GenerationArgumentError(f"line must be a positive int, got {value!r}")


@attrs.frozen
class BatchItem:
    """One line of a batch: where it came from and the generation options it asks for.

    Attributes:
        line: The 1-based line of the input file it was read from (the first line of a CSV
            record); it names the outputs (:func:`output_names`) and orders the manifest.
        options: The options the line sets (:class:`animagine.GenerationOptions` field names,
            ``prompt`` at least) as read, with the batch defaults applied; read-only.
    """

    line: int = attrs.field(validator=_positive_line)
    options: Mapping[str, Any] = attrs.field(
        converter=_frozen_options, validator=_check_options, hash=False
    )

    @property
    def num_images(self) -> int:
        count = self.options.get("num_images")
        return count if isinstance(count, int) and count > 0 else 1

    def generation_options(self) -> GenerationOptions:
        """The item's options as the checked record a :class:`Generator` call takes."""
        return GenerationOptions.from_mapping(self.options)


@attrs.frozen
class BadLine:
    """An input line that was left out, and why.

    Attributes:
        line: The 1-based line number in the input file.
        message: What is wrong with it.
    """

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _options(fields: Mapping[str, object], *, text: bool) -> dict[str, object]:
    """The options a line sets, checked by :class:`GenerationOptions` (CSV cells: ``text``)."""
    checked = GenerationOptions.from_mapping(fields, text=text)
    options: dict[str, object] = {}
    for name, value in fields.items():
        if value is None or (text and value == ""):
            continue  # not set: the default applies
        parsed = value
        if text and isinstance(value, str) and name != "prompt":
            parsed = option_spec(name).parse(value)
        options[name] = parsed
    if isinstance(checked.prompt, str) and not checked.prompt.strip():
        raise GenerationArgumentError("no prompt")
    return options


def _with_defaults(options: dict[str, object], defaults: Mapping[str, object]) -> dict[str, object]:
    merged = dict(options)
    sized = any(name in options for name in _SIZE_OPTIONS)
    for name, value in defaults.items():
        if name in merged or value is None:
            continue
        if sized and name in _SIZE_OPTIONS:
            continue  # a line that sets its size sets all of it
        merged[name] = value
    return merged


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise BatchInputError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
        return format
    return _SUFFIX_FORMATS.get(path.suffix.lower(), "txt")


def _text_lines(text: str) -> Iterator[tuple[int, dict[str, object]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, {"prompt": stripped}


def _jsonl_lines(text: str) -> Iterator[tuple[int, dict[str, object] | BadLine]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, BadLine(number, f"not JSON: {error.msg} at column {error.colno}")
            continue
        except RecursionError:
            yield number, BadLine(number, "not usable JSON: nested too deeply")
            continue
        except ValueError as error:  # an integer of more than 4,300 digits, ...
            yield number, BadLine(number, f"not usable JSON: {str(error).split(';')[0]}")
            continue
        if not isinstance(data, dict):
            yield number, BadLine(number, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield number, data


def _csv_lines(text: str) -> Iterator[tuple[int, dict[str, object] | BadLine]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        yield 1, BadLine(1, f"bad CSV header: {error}")
        return
    names = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield start, BadLine(start, f"bad CSV: {error}")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield number, BadLine(number, f"{len(row)} fields, the header has {len(names)}")
            continue
        yield number, dict(zip(names, row, strict=True))


def read_batch(
    source: str | os.PathLike[str],
    *,
    format: Literal["txt", "jsonl", "csv"] | None = None,
    defaults: Mapping[str, object] | None = None,
    strict: bool = False,
) -> tuple[tuple[BatchItem, ...], tuple[BadLine, ...]]:
    """Read a batch input file.

    Args:
        source: The file: ``.txt`` (one prompt per line; blank lines and ``#`` comments are
            skipped), ``.jsonl`` (one JSON object of call options per line) or ``.csv`` (a header
            row of option names; an empty cell leaves that option unset). Other suffixes are
            read as text unless ``format`` says otherwise. UTF-8.
        format: ``"txt"``, ``"jsonl"`` or ``"csv"`` instead of the suffix.
        defaults: Options for every line that does not set them (a line that sets ``width``,
            ``height`` or ``aspect`` takes none of those three from here). ``None`` values are
            ignored.
        strict: If any line is bad, raise a :class:`BatchInputError` that lists every bad
            line (all lines are read first).

    Returns:
        ``(items, bad_lines)``, both in line order.

    Raises:
        BatchInputError: an unknown format, a file that is not UTF-8, bad defaults, or (strict)
            bad lines.
        FileNotFoundError: no such file.
    """
    path = Path(source)
    kind = _format_of(path, format)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchInputError(f"{path} is not UTF-8: {error}") from None
    try:
        fixed = _options({"prompt": "-", **(defaults or {})}, text=False)
    except AnimagineError as error:
        raise BatchInputError(f"bad default: {error}") from None
    fixed.pop("prompt")
    if kind == "txt":
        raw: Iterable[tuple[int, dict[str, object] | BadLine]] = _text_lines(text)
    elif kind == "jsonl":
        raw = _jsonl_lines(text)
    else:
        raw = _csv_lines(text)
    items: list[BatchItem] = []
    bad: list[BadLine] = []
    for number, fields in raw:
        if isinstance(fields, BadLine):
            bad.append(fields)
            continue
        try:
            options = _options(fields, text=kind == "csv")
        except AnimagineError as error:
            bad.append(BadLine(number, str(error)))
            continue
        items.append(BatchItem(number, _with_defaults(options, fixed)))
    if strict and bad:
        raise BatchInputError(f"{path}: {len(bad)} bad line(s)", bad)
    return tuple(items), tuple(bad)


def derive_seed(base: int, line: int) -> int:
    """The seed of a line that sets none: a 32-bit hash of the base seed and the line number.

    A hash rather than ``base + line`` so that lines making several images (seeds ``s, s+1...``)
    do not share noise with the next lines.
    """
    digest = hashlib.sha256(f"animagine-batch:{base}:{line}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def output_names(item: BatchItem) -> tuple[str, ...]:
    """The image file names of an item: ``000042.png``, or ``000042-1.png``... for several."""
    if item.num_images == 1:
        return (f"{item.line:06d}.png",)
    return tuple(f"{item.line:06d}-{k}.png" for k in range(1, item.num_images + 1))


# --- results ----------------------------------------------------------------------------------


@attrs.frozen
class ItemFailure:
    """An item that was not produced: invalid options, an error while generating or saving.

    Attributes:
        line: The item's input line.
        message: The error, as ``Type: message``.
    """

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@attrs.frozen(kw_only=True)
class BatchSummary:
    """What a :func:`run_batch` did, over all its processes.

    Attributes:
        total: Items in the batch.
        done: Items generated by this run.
        skipped: Items whose images were already there and valid.
        failed: Items that were not produced (see :attr:`failures`).
        images: Images written by this run.
        seconds: Wall time of the whole run (loading the model included).
        work_seconds: Wall time from the moment every process had its model until the last one
            finished its items.
        processes: Number of processes that shared the batch.
        interrupted: Stopped by Ctrl-C (or SIGTERM under the CLI) before the end.
        failures: The failed items, in line order.
        manifest: The merged manifest, or None when it was not written (an interrupted run
            on several processes leaves its shards for the next run to merge).
    """

    total: int
    done: int
    skipped: int
    failed: int
    images: int
    seconds: float
    work_seconds: float
    processes: int = 1
    interrupted: bool = False
    failures: tuple[ItemFailure, ...] = ()
    manifest: Path | None = None

    @property
    def remaining(self) -> int:
        """Items neither done, skipped nor failed (non-zero after an interruption)."""
        return self.total - self.done - self.skipped - self.failed

    @property
    def items_per_second(self) -> float:
        """Items generated per second of :attr:`work_seconds`."""
        return self.done / self.work_seconds if self.work_seconds > 0 else 0.0

    def describe(self) -> str:
        """One line: ``batch: 10 items: 7 done, 3 skipped, 0 failed in 12.3 s (0.6 items/s)``."""
        state = "interrupted" if self.interrupted else "batch"
        text = (
            f"{state}: {self.total} items: {self.done} done, {self.skipped} skipped,"
            f" {self.failed} failed"
        )
        if self.remaining:
            text += f", {self.remaining} not started"
        text += f" in {self.seconds:.1f} s ({self.items_per_second:.2f} items/s"
        if self.processes > 1:
            text += f" on {self.processes} processes"
        return text + ")"

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "remaining": self.remaining,
            "images": self.images,
            "seconds": self.seconds,
            "work_seconds": self.work_seconds,
            "items_per_second": self.items_per_second,
            "processes": self.processes,
            "interrupted": self.interrupted,
            "failures": [{"line": f.line, "message": f.message} for f in self.failures],
            "manifest": None if self.manifest is None else str(self.manifest),
        }


@attrs.define
class _Counts:
    done: int = 0
    skipped: int = 0
    images: int = 0
    failures: list[ItemFailure] = attrs.Factory(list)


# --- files ------------------------------------------------------------------------------------


def _valid_image(path: Path) -> GenerationParameters | None:
    """The parameters of a complete PNG with generation metadata at ``path``, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return None
            image.verify()  # every chunk's CRC, up to IEND
        return read_parameters(path)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, MetadataError):
        return None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / file system can
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _row(
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


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a manifest file; a torn last line (a kill while appending) is skipped."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("file"), str):
            yield row


def _shards(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob(f"{_SHARD_PREFIX}*.jsonl"))


def _merge_manifest(out_dir: Path, items: Sequence[BatchItem]) -> Path:
    """Merge the previous manifest, the shards and rebuilt rows into ``manifest.jsonl``."""
    target = out_dir / MANIFEST
    shards = _shards(out_dir)
    rows: dict[str, dict[str, Any]] = {}
    for source in (target, *shards):
        for row in _read_rows(source):
            rows[row["file"]] = row
    present = {entry.name for entry in os.scandir(out_dir)}
    rows = {name: row for name, row in rows.items() if name in present}
    for item in items:  # images made by an earlier run that died before writing their rows
        for index, name in enumerate(output_names(item), start=1):
            if name in present and name not in rows:
                parameters = _valid_image(out_dir / name)
                if parameters is not None:
                    rows[name] = _row(item, index, name, parameters)

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


class _Shard:
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


# --- running ----------------------------------------------------------------------------------


def _check_call(generator: Generator, item: BatchItem) -> None:
    """Validate an item's options the way a call would, without generating anything."""
    generator.check(item.generation_options())


def _describe_error(error: BaseException) -> str:
    message = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _make_state() -> PartialState:
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _progress_bar(total: int, *, enabled: bool, description: str) -> Any:
    tqdm = require("tqdm.auto", what="animagine batch").tqdm
    return tqdm(
        total=total,
        disable=not enabled,
        desc=description,
        unit="item",
        dynamic_ncols=True,
        file=sys.stderr,
    )


def run_batch(
    generator: Generator | Callable[[torch.device], Generator],
    items: Iterable[BatchItem],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
    state: PartialState | None = None,
) -> BatchSummary:
    """Generate every item into ``out_dir``; skip those already there; write the manifest.

    Runs in every process of an ``accelerate launch`` / ``torchrun`` job: the items are split
    between the processes and each is produced by exactly one. Every process must be given the
    same items, options and folder (a folder every machine sees).

    Args:
        generator: A :class:`Generator`, or a function that builds one for a ``torch.device``
            (called once in each process, with the process's device).
        items: The items (:func:`read_batch`); two items must not share a line number.
        out_dir: The output folder, created if needed.
        seed: Base of the seeds of items that set none (:func:`derive_seed`).
        overwrite: Make every item again, replacing its images. Otherwise an item whose images
            all exist and are valid PNGs with parameters is skipped, and an existing image that
            is not one is a failure, never replaced.
        strict: Raise :class:`BatchInputError` if any item's options are invalid for this
            generator, before generating anything (otherwise such items are failures).
        progress: Show a progress bar (count, rate, ETA) on the main process.
        state: Accelerate's state (default: ``PartialState(cpu=not torch.cuda.is_available())``).

    Returns:
        The summary over all processes (after an interruption: this process's part).

    Raises:
        BatchInterrupted: Ctrl-C; the images being written were discarded (no temporary file is
            left), the finished ones are in the manifest. Carries the summary.
        BatchInputError: (strict) invalid item options; duplicate line numbers.
    """
    started = time.monotonic()

    items = tuple(items)
    lines = [item.line for item in items]
    if len(set(lines)) != len(lines):
        raise BatchInputError("two items have the same line number")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BatchInputError(f"seed must be an int from 0 to 2**64 - 1, got {seed!r}")
    items = tuple(
        item if "seed" in item.options
        else BatchItem(item.line, {**item.options, "seed": derive_seed(seed, item.line)})
        for item in items
    )  # fmt: skip
    out = Path(out_dir)
    state = _make_state() if state is None else state
    rank, world = state.process_index, state.num_processes
    main = state.is_main_process

    # 1. One process tidies up after a kill and makes the folder; 2. everyone sees the same
    # listing before anyone writes.
    if main:
        out.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(out):
            if is_temporary(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
    state.wait_for_everyone()
    present = {entry.name for entry in os.scandir(out)}
    state.wait_for_everyone()

    if isinstance(generator, Generator):
        model = generator
    else:
        with state.main_process_first():  # the first download fills the cache for the others
            model = generator(state.device)
    invalid: list[ItemFailure] = []
    valid: list[BatchItem] = []
    for item in items:
        try:
            _check_call(model, item)
        except AnimagineError as error:
            message = str(error).strip().splitlines()  # no caret context
            invalid.append(ItemFailure(item.line, message[0] if message else repr(error)))
        else:
            valid.append(item)
    if strict and invalid:
        bad = [BadLine(failure.line, failure.message) for failure in invalid]
        raise BatchInputError(f"{len(invalid)} item(s) with invalid options", bad)

    def finished(item: BatchItem) -> bool:
        return not overwrite and all(name in present for name in output_names(item))

    # Stable split: the same listing gives every process the same lists.
    existing = [item for item in valid if finished(item)]
    pending = [item for item in valid if not finished(item)]
    mine_existing = existing[rank::world]
    mine_pending = pending[rank::world]
    counts = _Counts(failures=list(invalid) if main else [])  # counted once, by the main process
    shard = _Shard(out / f"{_SHARD_PREFIX}{rank}.jsonl")

    state.wait_for_everyone()
    work_started = time.monotonic()
    bar = _progress_bar(
        len(mine_pending),
        enabled=progress and state.is_local_main_process,
        description="batch" if world == 1 else f"batch (process {rank + 1} of {world})",
    )
    interrupted = False
    try:
        for item in mine_existing:
            _skip_existing(item, out, shard, counts)
        for item in mine_pending:
            _generate(model, item, out, shard, counts, overwrite=overwrite)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        shard.close()
    work_seconds = time.monotonic() - work_started

    local = (counts.done, counts.skipped, counts.images, tuple(counts.failures), work_seconds)
    if interrupted and world > 1:
        # The other processes may be gone: no collective calls, their shards merge next time.
        summary = _summary(items, [local], started, world, interrupted=True, manifest=None)
        raise BatchInterrupted(summary)
    if interrupted:
        manifest = _merge_manifest(out, items)
        summary = _summary(items, [local], started, world, interrupted=True, manifest=manifest)
        raise BatchInterrupted(summary)
    parts = _gather(state, local)
    if main:
        _merge_manifest(out, items)
    state.wait_for_everyone()
    return _summary(items, parts, started, world, interrupted=False, manifest=out / MANIFEST)


def _gather(state: PartialState, local: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if state.num_processes == 1:
        return [local]
    from accelerate.utils import gather_object

    gathered: list[tuple[Any, ...]] = gather_object([local])
    return gathered


def _summary(
    items: Sequence[BatchItem],
    parts: Sequence[tuple[Any, ...]],
    started: float,
    world: int,
    *,
    interrupted: bool,
    manifest: Path | None,
) -> BatchSummary:
    failures = sorted(
        (failure for part in parts for failure in part[3]), key=lambda failure: failure.line
    )
    return BatchSummary(
        total=len(items),
        done=sum(part[0] for part in parts),
        skipped=sum(part[1] for part in parts),
        failed=len(failures),
        images=sum(part[2] for part in parts),
        seconds=time.monotonic() - started,
        work_seconds=max(part[4] for part in parts),
        processes=world,
        interrupted=interrupted,
        failures=tuple(failures),
        manifest=manifest,
    )


def _skip_existing(item: BatchItem, out: Path, shard: _Shard, counts: _Counts) -> None:
    rows = []
    for index, name in enumerate(output_names(item), start=1):
        parameters = _valid_image(out / name)
        if parameters is None:
            counts.failures.append(
                ItemFailure(
                    item.line,
                    f"{name} exists but is not a complete PNG with generation parameters;"
                    " remove it or pass --overwrite",
                )
            )
            return
        rows.append(_row(item, index, name, parameters))
    shard.append(rows, sync=False)
    counts.skipped += 1


def _generate(
    model: Generator,
    item: BatchItem,
    out: Path,
    shard: _Shard,
    counts: _Counts,
    *,
    overwrite: bool,
) -> None:

    names = output_names(item)
    try:
        result = model(item.generation_options(), progress=False)
        rows = []
        for index, (name, image, parameters) in enumerate(
            zip(names, result.images, result.parameters, strict=True), start=1
        ):
            path = out / name
            if not overwrite and os.path.lexists(path):
                # Made by an earlier run that stopped between this item's images: the same
                # seed gave the same image; keep the file.
                existing = _valid_image(path)
                if existing is None:
                    raise FileExistsError(
                        errno.EEXIST,
                        "exists but is not a complete PNG with generation parameters;"
                        " remove it or pass --overwrite",
                        str(path),
                    )
                rows.append(_row(item, index, name, existing))
                continue
            write_png(image, path, parameters, overwrite=overwrite)
            counts.images += 1
            rows.append(_row(item, index, name, parameters))
        _fsync_dir(out)
        shard.append(rows, sync=True)
    except Exception as error:  # one bad item must not stop the batch
        counts.failures.append(ItemFailure(item.line, _describe_error(error)))
        return
    counts.done += 1


# --- command line -----------------------------------------------------------------------------


def add_batch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``batch`` command's arguments to ``parser`` (for :func:`main_batch`)."""
    parser.add_argument(
        "input", type=Path, help="prompts: .txt (one per line), .jsonl or .csv (option columns)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (created if needed)"
    )
    parser.add_argument(
        "--format", choices=_FORMATS, help="input format (default: from the file suffix)"
    )
    add_model_arguments(parser)
    add_generation_arguments(parser, "generation options (for every line that does not set them)")
    run = parser.add_argument_group("run")
    run.add_argument("--overwrite", action="store_true", help="replace existing images")
    run.add_argument(
        "--strict", action="store_true", help="stop before any work if any line is bad"
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars (loading included)",
    )
    run.add_argument(
        "--summary-json", type=Path, metavar="FILE", help="also write the summary here, as JSON"
    )
    return parser


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def main_batch(args: argparse.Namespace) -> int:
    """Run the ``batch`` command from :func:`add_batch_arguments`'s arguments.

    Returns:
        0 when every item is done or skipped; 1 when some failed or lines were bad; 2 for
        unusable input (or bad lines with ``--strict``); 130 after Ctrl-C or SIGTERM.
    """
    defaults = batch_defaults(args)
    # SIGTERM (torchrun stopping its workers, a scheduler's preemption) stops cleanly too.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _in_main_thread() else None
    try:
        return _main_batch(args, defaults)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_batch(args: argparse.Namespace, defaults: Mapping[str, object]) -> int:
    # Before torch is imported: under a launcher, only the first process speaks.
    say = os.environ.get("RANK", "0") == "0"
    base_seed = 0 if args.seed is None else args.seed
    # The flags first, once: options, seed, model, version (before reading any line).
    try:
        if not 0 <= base_seed <= MAX_SEED:
            raise BatchInputError(f"--seed must be from 0 to 2**64 - 1, got {base_seed}")
        flag_options = GenerationOptions.from_mapping({"prompt": "1girl", **defaults})
        check_model_arguments(args)
        version = model_version(args)
        plan_generation(flag_options, version)
    except AnimagineError as error:
        if say:
            _err(f"animagine batch: error: {_first_line(error)}")
        return 2
    try:
        items, bad = read_batch(args.input, format=args.format, defaults=defaults)
    except (BatchInputError, OSError) as error:
        if say:
            _err(f"animagine batch: error: {describe(error)}")
        return 2
    if bad and say:
        for line in bad:
            _err(f"{args.input}:{line.line}: {line.message}")
    if bad and args.strict:
        if say:
            _err(f"animagine batch: {len(bad)} bad line(s); nothing done (--strict)")
        return 2
    # What depends on the version (buckets, hires sizes, prompt syntax), before loading.
    checked: list[BatchItem] = []
    late: list[BadLine] = []
    for item in items:
        try:
            plan_generation(item.generation_options(), version)
        except AnimagineError as error:
            late.append(BadLine(item.line, _first_line(error)))
        else:
            checked.append(item)
    if late:
        items = tuple(checked)
        bad = tuple(sorted((*bad, *late), key=lambda line: line.line))
        if say:
            for line in late:
                _err(f"{args.input}:{line.line}: {line.message}")
        if args.strict:
            if say:
                _err(f"animagine batch: {len(late)} bad line(s); nothing done (--strict)")
            return 2
    if not items:  # nothing to make: no model is loaded for nothing
        if say:
            _err(f"animagine batch: no usable line in {args.input}; nothing done")
        return 1 if bad else 0
    state = _make_state()
    say = state.is_main_process
    try:
        summary = run_batch(
            model_loader(args),
            items,
            args.output,
            seed=base_seed,
            overwrite=args.overwrite,
            strict=args.strict,
            progress=args.progress,
            state=state,
        )
    except BatchInterrupted as interrupt:
        summary = interrupt.summary
        prefix = "" if state.num_processes == 1 else f"[process {state.process_index}] "
        _err(prefix + summary.describe())
        _write_summary(args.summary_json, summary, say)
        return EXIT_INTERRUPTED
    except BatchInputError as error:
        if say:
            for failure in error.errors:
                if isinstance(failure, BadLine):
                    _err(f"{args.input}:{failure.line}: {failure.message}")
            _err(f"animagine batch: {error.args[0].splitlines()[0]}; nothing done (--strict)")
        return 2
    except KeyboardInterrupt:  # while loading the model
        return EXIT_INTERRUPTED
    if say:
        for failure in summary.failures:
            _err(f"{args.input}:{failure.line}: {failure.message}")
        print(summary.describe(), flush=True)
    _write_summary(args.summary_json, summary, say)
    return 1 if summary.failed or bad else 0


def _first_line(error: BaseException) -> str:
    """An error's first line (a syntax error's caret context left out)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _in_main_thread() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


def _write_summary(path: Path | None, summary: BatchSummary, main: bool) -> None:
    if path is not None and main:
        write_atomic(path, json.dumps(summary.to_json(), indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m animagine.apps.batch``: the ``batch`` command on its own."""
    parser = argparse.ArgumentParser(
        prog="python -m animagine.apps.batch",
        description="Generate an image for each line of a prompt file (resumable).",
    )
    return main_batch(add_batch_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
