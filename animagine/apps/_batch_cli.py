"""The ``animagine batch`` command: its arguments and its runner."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from animagine.apps._batch_input import _FORMATS, BadLine, BatchItem, read_batch
from animagine.apps._generation_cli import (
    add_generation_arguments,
    add_model_arguments,
    batch_defaults,
    check_model_arguments,
    model_loader,
    model_version,
)
from animagine.apps.batch import (
    BatchInterrupted,
    BatchSummary,
    _make_state,
    check_output_folder,
    run_batch,
)
from animagine.apps.cli import one_line
from animagine.errors import (
    AnimagineError,
    BatchInputError,
)
from animagine.files import write_atomic
from animagine.generation import (
    GenerationOptions,
    plan_generation,
)
from animagine.limits import MAX_SEED

__all__ = ["EXIT_INTERRUPTED", "add_batch_arguments", "main_batch"]

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED: Final = 130


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
        0 when every item is done or skipped; 1 when some failed or lines were bad, or the disk
        filled up; 2 for unusable input (or bad lines with ``--strict``), an unusable output
        folder, existing images made from other lines, or a folder another batch holds; 130
        after Ctrl-C or SIGTERM.
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
        _check_summary_path(args.summary_json)
        check_output_folder(args.output)
        check_model_arguments(args)
        version = model_version(args)
        plan_generation(flag_options, version)
    except AnimagineError as error:
        if say:
            _err(f"animagine batch: error: {one_line(error)}")
        return 2
    try:
        items, bad = read_batch(args.input, format=args.format, defaults=defaults)
    except (BatchInputError, OSError) as error:
        if say:
            _err(f"animagine batch: error: {one_line(error)}")
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
            late.append(BadLine(item.line, one_line(error)))
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
            message = error.args[0].splitlines()[0]
            if "nothing done" not in message:
                message += "; nothing done (--strict)"
            _err(f"animagine batch: {message}")
        return 2
    except OSError as error:  # another batch holds the folder; the disk is full
        if say:
            _err(f"animagine batch: error: {one_line(error)}")
        return 1 if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", 0)) else 2
    except KeyboardInterrupt:  # while loading the model
        return EXIT_INTERRUPTED
    if say:
        for failure in summary.failures:
            _err(f"{args.input}:{failure.line}: {failure.message}")
        print(summary.describe(), flush=True)
    _write_summary(args.summary_json, summary, say)
    return 1 if summary.failed or bad else 0


def _check_summary_path(path: Path | None) -> None:
    """Find an unwritable ``--summary-json`` before the work, not after it."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BatchInputError(f"--summary-json {path}: is a folder")
    if not folder.is_dir():
        raise BatchInputError(f"--summary-json {path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BatchInputError(f"--summary-json {path}: not writable")


def _in_main_thread() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


def _write_summary(path: Path | None, summary: BatchSummary, main: bool) -> None:
    if path is not None and main:
        write_atomic(path, json.dumps(summary.to_json(), indent=2) + "\n")
