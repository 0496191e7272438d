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
* **Resume, checked**: an item whose images all exist is skipped only when each image was made
  from the same line: its metadata matches what the line would make now (prompt, options,
  model, seed), or its manifest row records the same input and exactly that image. If any
  existing image was made from something else, the run stops before any work and names the
  lines (``overwrite`` replaces them). A file at an output name that is not a complete PNG of
  ours is a failure of that line, never replaced without ``overwrite``.
* **One batch per folder**: the main process holds a lock on ``.animagine-batch.lock`` in the
  output folder for the whole run; a second batch on the same folder refuses to start and names
  the holder's pid. The lock dies with its process (a killed run leaves none that counts).
* **The environment, up front**: the output folder must be (or become) a writable folder with
  :data:`MIN_FREE_BYTES` free; the first "no space left on device" stops the batch at once
  (:class:`OSError` naming the file) instead of generating images that cannot be saved.
* **Manifest**: each process appends one JSON row per image to ``manifest.rank{N}.jsonl`` (flushed
  and fsynced per item); at the end the main process merges the shards, the previous
  ``manifest.jsonl`` and rows rebuilt from the metadata of images that have none into
  ``manifest.jsonl``, sorted by input line, one row per existing image, written atomically.
* **Many processes**: under ``accelerate launch`` or ``torchrun`` the pending items are split
  between the processes with accelerate's :class:`~accelerate.PartialState`; every item is made
  by exactly one process. The output folder must be shared by all machines.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from animagine.errors import (
    AnimagineError,
    BatchInputError,
    MetadataError,
)
from animagine.extras import require
from animagine.files import is_temporary
from animagine.generation import (
    Generator,
)
from animagine.limits import MAX_SEED
from animagine.metadata import write_png

if TYPE_CHECKING:
    import torch
    from accelerate import PartialState

    from animagine.apps._batch_cli import add_batch_arguments, main_batch
    from animagine.generation import GenerationPlan
    from animagine.metadata import GenerationParameters

from animagine.apps._batch_input import (
    BadLine,
    BatchItem,
    derive_seed,
    output_names,
    read_batch,
)
from animagine.apps._manifest import (
    MANIFEST,
    SHARD_PREFIX,
    Shard,
    fsync_dir,
    manifest_row,
    merge_manifest,
    read_image,
    recorded_rows,
    valid_image,
)
from animagine.apps.cli import one_line

__all__ = [
    "LOCK_NAME",
    "MIN_FREE_BYTES",
    "BadLine",
    "BatchInputError",
    "BatchInterrupted",
    "BatchItem",
    "BatchSummary",
    "ItemFailure",
    "add_batch_arguments",
    "check_output_folder",
    "derive_seed",
    "main_batch",
    "output_names",
    "read_batch",
    "run_batch",
]


#: The lock file a running batch holds in its output folder.
LOCK_NAME: Final = ".animagine-batch.lock"
#: Free space the output folder needs before a batch starts.
MIN_FREE_BYTES: Final = 64 * 2**20
# Out of space: stop the batch at the first one.
_DISK_FULL: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM under :func:`main_batch`) during :func:`run_batch`, after cleanup.

    A ``KeyboardInterrupt``, so code that does not know it stops as usual; it carries the
    summary of what was done before the interruption (``summary.interrupted`` is True).
    """

    def __init__(self, summary: BatchSummary) -> None:
        self.summary = summary
        super().__init__(summary.describe())


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


# --- running ----------------------------------------------------------------------------------


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
            all exist and were made from the same line (same options, model and seed) is
            skipped; an existing image made from something else stops the run before any work
            (:class:`BatchInputError` naming the lines); an existing file that is not a complete
            PNG of ours is a failure of its line, never replaced.
        strict: Raise :class:`BatchInputError` if any item's options are invalid for this
            generator, before generating anything (otherwise such items are failures).
        progress: Show a progress bar (count, rate, ETA) on the main process.
        state: Accelerate's state (default: ``PartialState(cpu=not torch.cuda.is_available())``).

    Returns:
        The summary over all processes (after an interruption: this process's part).

    Raises:
        BatchInterrupted: Ctrl-C; the images being written were discarded (no temporary file is
            left), the finished ones are in the manifest. Carries the summary.
        BatchInputError: (strict) invalid item options; duplicate line numbers; existing images
            made from other lines (without ``overwrite``); an output folder that cannot be
            used or has less than :data:`MIN_FREE_BYTES` free.
        BlockingIOError: another batch holds the folder's lock (the message names its pid).
        OSError: the disk filled up (``errno.ENOSPC``, the file it was writing named): the
            batch stopped at once; what was finished is in the manifest.
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
    main = state.is_main_process

    # 1. One process checks the folder, takes its lock, tidies up after a kill; 2. everyone
    # sees the same listing before anyone writes.
    lock: _FolderLock | None = None
    refusal: BaseException | None = None
    if main:
        try:
            check_output_folder(out)
            out.mkdir(parents=True, exist_ok=True)
            lock = _FolderLock.acquire(out)
            for entry in os.scandir(out):
                if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        except (AnimagineError, OSError) as error:
            refusal = error
    refusal = _share(state, refusal)
    if refusal is not None:
        raise refusal
    try:
        return _run_locked(
            generator, items, out, state, started,
            overwrite=overwrite, strict=strict, progress=progress,
        )  # fmt: skip
    finally:
        if lock is not None:
            lock.release()


def _run_locked(
    generator: Generator | Callable[[torch.device], Generator],
    items: tuple[BatchItem, ...],
    out: Path,
    state: PartialState,
    started: float,
    *,
    overwrite: bool,
    strict: bool,
    progress: bool,
) -> BatchSummary:
    rank, world = state.process_index, state.num_processes
    main = state.is_main_process
    state.wait_for_everyone()
    present = {entry.name for entry in os.scandir(out)}
    state.wait_for_everyone()

    if isinstance(generator, Generator):
        model = generator
    else:
        with state.main_process_first():  # the first download fills the cache for the others
            model = generator(state.device)
    invalid: list[ItemFailure] = []
    valid: list[tuple[BatchItem, GenerationPlan]] = []
    for item in items:
        try:
            plan = model.check(item.generation_options())
        except AnimagineError as error:
            invalid.append(ItemFailure(item.line, one_line(error)))
        else:
            valid.append((item, plan))
    if strict and invalid:
        bad = [BadLine(failure.line, failure.message) for failure in invalid]
        raise BatchInputError(f"{len(invalid)} item(s) with invalid options", bad)

    # Items with images already there: each image must have been made from this same line.
    rows = recorded_rows(out) if not overwrite else {}
    started_items = [
        (item, plan)
        for item, plan in valid
        if not overwrite and any(name in present for name in output_names(item))
    ]
    verdicts = [
        (item, _verdict(item, plan, model, out=out, present=present, rows=rows))
        for item, plan in started_items[rank::world]
    ]
    differ = [
        BadLine(item.line, verdict[1]) for item, verdict in verdicts if verdict[0] == "differs"
    ]
    differ = sorted(
        (line for part in _gather(state, (tuple(differ),)) for line in part[0]),
        key=lambda line: line.line,
    )
    if differ:
        raise BatchInputError(
            f"{len(differ)} line(s) differ from the images already in {out}; nothing done"
            " (pass --overwrite to replace those images)",
            differ,
        )

    counts = _Counts(failures=list(invalid) if main else [])  # counted once, by the main process
    blocked = {item.line for item, verdict in verdicts if verdict[0] == "bad"}
    finished_lines = {item.line for item, verdict in verdicts if verdict[0] == "same"}
    for item, verdict in verdicts:
        if verdict[0] == "bad":
            counts.failures.append(ItemFailure(item.line, verdict[1]))
    blocked_all = {line for part in _gather(state, (tuple(sorted(blocked)),)) for line in part[0]}

    def finished(item: BatchItem) -> bool:
        return not overwrite and all(name in present for name in output_names(item))

    # Stable split: the same listing gives every process the same lists.
    pending = [item for item, _ in valid if not finished(item) and item.line not in blocked_all]
    mine_pending = pending[rank::world]
    shard = Shard(out / f"{SHARD_PREFIX}{rank}.jsonl")

    state.wait_for_everyone()
    work_started = time.monotonic()
    bar = _progress_bar(
        len(mine_pending),
        enabled=progress and state.is_local_main_process,
        description="batch" if world == 1 else f"batch (process {rank + 1} of {world})",
    )
    interrupted = False
    full: OSError | None = None
    try:
        for item, verdict in verdicts:
            if verdict[0] == "same" and item.line in finished_lines and finished(item):
                shard.append(verdict[2], sync=False)
                counts.skipped += 1
        for item in mine_pending:
            _generate(model, item, out, shard, counts, overwrite=overwrite)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    except _DiskFull as error:
        full = error.error
    finally:
        bar.close()
        with contextlib.suppress(OSError):  # a full disk may refuse the last flush too
            shard.close()
    work_seconds = time.monotonic() - work_started

    local = (counts.done, counts.skipped, counts.images, tuple(counts.failures), work_seconds)
    if full is not None:
        # Stop now, every process on its own (the others stop at their first failed write,
        # or their launcher stops them); what is finished stays listed.
        if world == 1:
            with contextlib.suppress(OSError):
                merge_manifest(out, [item for item, _ in valid])
        raise OSError(
            full.errno,
            f"{full.strerror or 'no space left on device'}; the batch stopped after"
            f" {counts.images} new image(s) (rerun the same command once there is room)",
            full.filename,
        )
    if interrupted and world > 1:
        # The other processes may be gone: no collective calls, their shards merge next time.
        summary = _summary(items, [local], started, world, interrupted=True, manifest=None)
        raise BatchInterrupted(summary)
    if interrupted:
        manifest = merge_manifest(out, [item for item, _ in valid])
        summary = _summary(items, [local], started, world, interrupted=True, manifest=manifest)
        raise BatchInterrupted(summary)
    parts = _gather(state, local)
    if main:
        merge_manifest(out, [item for item, _ in valid])
    state.wait_for_everyone()
    return _summary(items, parts, started, world, interrupted=False, manifest=out / MANIFEST)


def check_output_folder(out: str | os.PathLike[str], *, free: int = MIN_FREE_BYTES) -> None:
    """Refuse, before any work, an output folder a batch cannot use.

    ``out`` must be a folder, or not exist yet below a folder, that this process can write
    into, on a file system with at least ``free`` bytes available.

    Raises:
        BatchInputError: what is wrong, naming the folder.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BatchInputError(f"output {path} exists and is not a folder")
    folder = path
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise BatchInputError(f"output {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BatchInputError(f"output {path}: {folder} is not writable")
    try:
        available = shutil.disk_usage(folder).free
    except OSError:
        return  # a file system that cannot say: the first failed write will
    if available < free:
        raise BatchInputError(
            f"output {path}: only {available / 2**20:.0f} MiB free on its disk; a batch needs"
            f" at least {free / 2**20:.0f} MiB"
        )


def _share(state: PartialState, error: BaseException | None) -> BaseException | None:
    """The main process's refusal, given to every process (so that none waits for it)."""
    if state.num_processes == 1:
        return error
    from accelerate.utils import broadcast_object_list

    message = [None if error is None else (type(error).__name__, str(error))]
    broadcast_object_list(message)
    if message[0] is None:
        return None
    if error is not None:
        return error
    name, text = message[0]
    return BatchInputError(f"the main process refused to start: {name}: {text}")


def _expected(plan: GenerationPlan, model: Generator, index: int) -> dict[str, object]:
    """What the image ``index`` (from 0) of a planned call records, field by field."""
    return {
        "prompt": str(plan.prompts[index]),  # a template draws each image's prompt anew
        "negative_prompt": plan.negative_prompt,
        "seed": plan.seeds[index],
        "width": plan.width,
        "height": plan.height,
        "steps": plan.steps,
        "sampler": plan.sampler,
        "guidance_scale": plan.guidance_scale,
        "clip_skip": plan.clip_skip,
        "hires": plan.hires,
        "model": model.model,
        "version": model.version.name,
    }


def _difference(parameters: GenerationParameters, expected: dict[str, object]) -> str | None:
    for field, wanted in expected.items():
        made = getattr(parameters, field)
        if made != wanted:
            shown = [repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                     for value in (made, wanted)]  # fmt: skip
            return f"{field} was {shown[0]}, the line now asks for {shown[1]}"
    return None


def _same_input(
    row: dict[str, Any] | None, item: BatchItem, parameters: GenerationParameters
) -> bool:
    """Whether a manifest row says this image was made from exactly this item's input."""
    if row is None or row.get("line") != item.line or not isinstance(row.get("input"), dict):
        return False
    try:
        current = json.loads(json.dumps(dict(item.options)))
    except (TypeError, ValueError):
        return False
    return bool(row["input"] == current and row.get("parameters") == parameters.to_json())


def _verdict(
    item: BatchItem,
    plan: GenerationPlan,
    model: Generator,
    *,
    out: Path,
    present: set[str],
    rows: dict[str, dict[str, Any]],
) -> tuple[str, str, list[dict[str, Any]]]:
    """``("same", "", rows)``, ``("differs", why, [])`` or ``("bad", why, [])`` for an item
    with some of its images already in ``out``."""
    found = []
    for index, name in enumerate(output_names(item), start=1):
        if name not in present:
            continue
        try:
            parameters = read_image(out / name)
        except MetadataError as error:
            return (
                "bad",
                f"{name} exists but is not a complete PNG with generation parameters"
                f" ({one_line(error)}); remove it or pass --overwrite",
                [],
            )
        expected = _expected(plan, model, index - 1)
        difference = _difference(parameters, expected)
        if difference is not None and not (
            _same_input(rows.get(name), item, parameters)
            and parameters.model == expected["model"]
            and parameters.seed == expected["seed"]
        ):
            return ("differs", f"{name} was made from something else: {difference}", [])
        found.append(manifest_row(item, index, name, parameters))
    return ("same", "", found)


class _DiskFull(Exception):
    def __init__(self, error: OSError) -> None:
        self.error = error
        super().__init__(str(error))


class _FolderLock:
    """An exclusive lock on ``LOCK_NAME`` in a folder, held by one process.

    ``flock`` where the system has it: the kernel drops the lock when its process dies, however
    it dies, so a lock left by a killed batch never blocks the next one. The file holds the
    holder's pid and host, for the refusal message. Elsewhere (no ``fcntl``, or a file system
    that refuses ``flock``), the file is created exclusively and a lock whose pid is not alive
    on this host is taken over.
    """

    def __init__(self, path: Path, descriptor: int | None) -> None:
        self._path = path
        self._descriptor = descriptor

    @classmethod
    def acquire(cls, folder: Path) -> _FolderLock:
        path = folder / LOCK_NAME
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        try:
            import fcntl  # noqa: PLC0415 (not on Windows)
        except ImportError:
            return cls._acquire_file(path, record)
        for _ in range(100):
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = _holder(path)
                os.close(descriptor)
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    raise _locked(path, holder) from None
                return cls._acquire_file(path, record)  # ENOLCK...: no flock here
            try:
                same = os.path.samestat(os.stat(path), os.fstat(descriptor))
            except FileNotFoundError:
                same = False
            if not same:  # released and removed while we waited: lock the new one
                os.close(descriptor)
                continue
            os.ftruncate(descriptor, 0)
            os.write(descriptor, record)
            return cls(path, descriptor)
        raise BlockingIOError(errno.EAGAIN, "cannot take the batch lock", str(path))

    @classmethod
    def _acquire_file(cls, path: Path, record: bytes) -> _FolderLock:
        for _ in range(100):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _holder(path)
                if holder is None or _alive(holder):
                    raise _locked(path, holder) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # a stale lock: its process is gone
                continue
            try:
                os.write(descriptor, record)
            finally:
                os.close(descriptor)
            return cls(path, None)
        raise BlockingIOError(errno.EAGAIN, "cannot take the batch lock", str(path))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes()[:1000])
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(holder: dict[str, Any]) -> bool:
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return True  # another machine's process: cannot tell, so it holds the lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _locked(path: Path, holder: dict[str, Any] | None) -> BlockingIOError:
    who = "another batch"
    if holder is not None and isinstance(holder.get("pid"), int):
        who = f"another batch (pid {holder['pid']} on {holder.get('host', '?')})"
    return BlockingIOError(
        errno.EAGAIN, f"{who} is writing to {path.parent}; wait for it to finish", str(path)
    )


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


def _generate(
    model: Generator,
    item: BatchItem,
    out: Path,
    shard: Shard,
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
                existing = valid_image(path)
                if existing is None:
                    raise FileExistsError(
                        errno.EEXIST,
                        "exists but is not a complete PNG with generation parameters;"
                        " remove it or pass --overwrite",
                        str(path),
                    )
                rows.append(manifest_row(item, index, name, existing))
                continue
            write_png(image, path, parameters, overwrite=overwrite)
            counts.images += 1
            rows.append(manifest_row(item, index, name, parameters))
        fsync_dir(out)
        shard.append(rows, sync=True)
    except OSError as error:
        if error.errno in _DISK_FULL:
            raise _DiskFull(error) from error
        counts.failures.append(ItemFailure(item.line, _describe_error(error)))
        return
    except Exception as error:  # one bad item must not stop the batch
        counts.failures.append(ItemFailure(item.line, _describe_error(error)))
        return
    counts.done += 1


def __getattr__(name: str) -> Any:
    # The command line lives in its own module, which imports this one.
    if name in ("add_batch_arguments", "main_batch", "EXIT_INTERRUPTED"):
        from animagine.apps import _batch_cli  # noqa: PLC0415

        return getattr(_batch_cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
