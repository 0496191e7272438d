"""The ``animagine`` command line (``animagine ...`` or ``python -m animagine ...``).

Every subcommand is one :class:`Command` row in :data:`COMMANDS`: its help texts, a function
that adds its arguments and a function that runs it. Both functions may be given as
``"module:function"`` strings, imported only when needed: the arguments of a command are added
only when that command is on the command line (or is asked for ``--help``), and its runner is
imported only when it runs. That keeps ``animagine prompt`` from importing the generation stack
once ``generate`` and ``batch`` are registered here.

Exit status: 0 success; 1 the command ran but found a problem (lint errors, a strict-order
violation, captions that ``--check`` would change or could not read or normalise); 2 bad usage
or bad input (unknown version, an empty or unreadable prompt, missing file), reported as one
line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import textwrap
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final, NoReturn

import attrs

from animagine._version import __version__
from animagine.core import Diagnostic, ModelVersion, apply_fixes, get_version, lint
from animagine.errors import (
    AnimagineError,
    PromptSyntaxError,
    PromptTooLongError,
    UnknownVersionError,
)

__all__ = ["COMMANDS", "Command", "CommandError", "main", "one_line"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
_WIDTH: Final = 79

#: Lint codes that ``Prompt.parse(strict=True)`` fails on, and so ``prompt --strict``.
STRICT_CODES: Final = frozenset({"order", "wrong-version", "rating-conflict"})
#: Lint codes whose fix is a guess: printed, never applied by ``lint --fix``.
GUESSES: Final = frozenset({"unknown-tag"})

Runner = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], None]


class CommandError(Exception):
    """Bad usage or input found by a runner: printed as one line, exit status 2."""


@attrs.frozen
class Command:
    """One subcommand.

    Attributes:
        name: What users type.
        summary: One line for ``animagine --help``.
        description: The top of ``animagine NAME --help``.
        examples: The bottom of ``animagine NAME --help`` (shown as written).
        arguments: Adds the command's arguments to its parser; a callable or
            ``"module:function"``, imported only when the command is used. Keep it in a module
            that imports nothing heavy.
        run: Runs the command with the parsed arguments and returns the exit status; a callable
            or ``"module:function"``, imported only when the command runs. It may raise
            :class:`CommandError`, :class:`AnimagineError` or :class:`OSError` for bad input.
    """

    name: str
    summary: str
    description: str
    examples: str
    arguments: str | Configure
    run: str | Runner


def _resolve(reference: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(reference):
        return reference
    module_name, _, attribute = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return function


# --- argument helpers ---------------------------------------------------------------------


def _model_version(value: str) -> ModelVersion:
    try:
        return get_version(value)
    except UnknownVersionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _jobs(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(
            f"expected 1 or more processes (0: one per CPU), got {number}"
        )
    return number or os.cpu_count() or 1


def _add_version(parser: argparse.ArgumentParser, default: str = "v4") -> None:
    parser.add_argument(
        "--version",
        type=_model_version,
        default=get_version(default),
        metavar="VERSION",
        help=f"model version: v3, v3.1 or v4, or an alias such as 4.0 (default: {default})",
    )


def _add_text(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "text",
        nargs="*",
        metavar="TEXT",
        help="the prompt; several words are joined with spaces; none or '-' reads stdin",
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``prog: error: message (see --help)``."""

    subcommands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- input and output ---------------------------------------------------------------------


def _read_text(words: Sequence[str]) -> tuple[str, str]:
    """The prompt given as arguments or on stdin, and its label for messages."""
    if words and list(words) != ["-"]:
        return " ".join(words), "<text>"
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        raise CommandError("no prompt given: pass it as TEXT or pipe it on stdin")
    try:
        return stdin.read(), "<stdin>"
    except UnicodeDecodeError as error:
        raise CommandError(
            f"<stdin>: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def _read_prompt(words: Sequence[str]) -> tuple[str, str]:
    """:func:`_read_text` for commands that print a prompt: blank text is an error."""
    text, label = _read_text(words)
    if not text.strip():
        raise CommandError(f"{label}: the prompt is empty")
    return text, label


def _prompt_error(label: str, error: PromptSyntaxError) -> CommandError:
    """A prompt that cannot be read, as one line: ``LABEL:LINE:COL: syntax REASON``.

    A text over the size limit is ``LABEL: REASON``: its position says nothing more.
    """
    if isinstance(error, PromptTooLongError):
        return CommandError(f"{label}: {error.reason}")
    return CommandError(f"{label}:{error.line}:{error.column}: syntax {error.reason}")


class _Lines:
    """1-based (line, column) of offsets in one text, each found in logarithmic time."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        found = text.find("\n")
        while found != -1:
            self.starts.append(found + 1)
            found = text.find("\n", found + 1)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def _diagnostic_line(label: str, lines: _Lines, diagnostic: Diagnostic) -> str:
    line, column = lines.position(diagnostic.start)
    return f"{label}:{line}:{column}: {diagnostic.code} {diagnostic.message}"


def _diagnostic_json(label: str, lines: _Lines, diagnostic: Diagnostic) -> dict[str, Any]:
    line, column = lines.position(diagnostic.start)
    end_line, end_column = lines.position(diagnostic.end)
    return {
        "file": label,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "fix": [
            {"start": edit.start, "end": edit.end, "replacement": edit.replacement}
            for edit in diagnostic.fix
        ],
    }


def _print_diagnostics(
    label: str, text: str, diagnostics: Sequence[Diagnostic], stream: IO[str]
) -> None:
    lines = _Lines(text)
    for diagnostic in diagnostics:
        print(_diagnostic_line(label, lines, diagnostic), file=stream)


def _syntax_error(label: str, diagnostics: Sequence[Diagnostic], text: str) -> None:
    for diagnostic in diagnostics:
        if diagnostic.code == "syntax":
            raise CommandError(_diagnostic_line(label, _Lines(text), diagnostic))


def _lint(label: str, text: str, version: ModelVersion) -> list[Diagnostic]:
    """:func:`lint`, with a text it refuses (over the size limit) as a :class:`CommandError`."""
    try:
        return lint(text, version=version)
    except PromptSyntaxError as error:
        raise _prompt_error(label, error) from None


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _format_number(value: float) -> str:
    return f"{value:g}"


# --- prompt -------------------------------------------------------------------------------


def _prompt_arguments(parser: argparse.ArgumentParser) -> None:
    _add_text(parser)
    _add_version(parser)
    parser.add_argument(
        "--quality",
        action="store_true",
        help="add the version's recommended quality tags that are missing",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) if the text breaks the version's tag order, uses another version's "
        "special tags or names two ratings",
    )
    parser.add_argument(
        "--canonical",
        action="store_true",
        help="replace Danbooru aliases (old names such as 'saber') with the tags they stand for",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def _run_prompt(args: argparse.Namespace) -> int:
    from animagine.core import Prompt  # noqa: PLC0415 (keeps `--help` fast)

    version: ModelVersion = args.version
    text, label = _read_prompt(args.text)
    diagnostics = _lint(label, text, version)
    _syntax_error(label, diagnostics, text)
    if args.strict:
        broken = [d for d in diagnostics if d.code in STRICT_CODES]
        if broken:
            _print_diagnostics(label, text, broken, sys.stderr)
            return EXIT_FAILURE
    # The output is in canonical order, so order warnings would only be noise here.
    diagnostics = [d for d in diagnostics if d.code != "order"]
    _print_diagnostics(label, text, diagnostics, sys.stderr)
    try:
        prompt = Prompt.parse(text, version=version)
    except PromptSyntaxError as error:
        raise _prompt_error(label, error) from None
    if args.canonical:
        prompt = prompt.resolve_aliases()
    if args.quality:
        prompt = prompt.with_quality_tags()
    defaults = version.defaults
    if args.json:
        lines = _Lines(text)
        tags = prompt.to_json()["tags"]
        _print_json(
            {
                "version": version.name,
                "prompt": str(prompt),
                "negative_prompt": version.negative_prompt,
                "settings": {
                    "steps": defaults.steps,
                    "sampler": defaults.sampler,
                    "guidance_scale": defaults.guidance_scale,
                    "width": defaults.width,
                    "height": defaults.height,
                    "guidance_range": list(defaults.guidance_range),
                    "vae": defaults.vae,
                },
                "tags": tags,
                "diagnostics": [_diagnostic_json(label, lines, d) for d in diagnostics],
            }
        )
        return EXIT_OK
    print(prompt)
    print(f"Negative prompt: {version.negative_prompt}")
    print(
        f"Steps: {defaults.steps}, Sampler: {defaults.sampler}, "
        f"CFG scale: {_format_number(defaults.guidance_scale)}, "
        f"Size: {defaults.width}x{defaults.height}, Animagine version: {version.name}"
    )
    return EXIT_OK


# --- lint ---------------------------------------------------------------------------------


def _lint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="TEXT|FILE",
        help="prompt files, or the prompt itself; none or '-' reads stdin",
    )
    _add_version(parser)
    parser.add_argument(
        "--fix",
        action="store_true",
        help="apply the mechanical fixes: rewrite FILEs in place, or print the fixed TEXT/stdin",
    )
    parser.add_argument(
        "--files",
        action="store_true",
        help="treat every argument as a file name (a missing file is an error)",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


@attrs.frozen
class _Source:
    label: str
    text: str
    path: Path | None = None


def _read_file(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def _lint_sources(args: argparse.Namespace) -> list[_Source]:
    inputs: list[str] = args.inputs
    if not inputs or inputs == ["-"]:
        text, label = _read_text(inputs)
        return [_Source(label, text)]
    if args.files:
        return [_Source(name, _read_file(Path(name)), Path(name)) for name in inputs]
    files = [name for name in inputs if os.path.isfile(name)]
    if files and len(files) < len(inputs):
        missing = next(name for name in inputs if name not in files)
        raise CommandError(
            f"{files[0]!r} is a file but {missing!r} is not: pass --files to lint files, or "
            "quote the prompt"
        )
    if files:
        return [_Source(name, _read_file(Path(name)), Path(name)) for name in files]
    text = " ".join(inputs)
    if len(inputs) == 1 and "," not in text and (os.sep in text or Path(text).suffix):
        print(
            f"note: no file {text!r}; linting it as prompt text (--files makes it a file name)",
            file=sys.stderr,
        )
    return [_Source("<text>", text)]


def _fixed(label: str, text: str, version: ModelVersion) -> str:
    """``text`` with every mechanical fix applied, until none is left (fixes may overlap).

    A did-you-mean (``unknown-tag``) is a guess, so it is shown but never applied.
    """
    for _ in range(8):
        found = _lint(label, text, version)
        fixed = apply_fixes(text, [d for d in found if d.code not in GUESSES])
        if fixed == text:
            break
        text = fixed
    return text


def _write_fixed(path: Path, text: str) -> None:
    """Rewrite a linted file; a failure names the file, not the temporary file beside it."""
    from animagine.files import write_atomic  # noqa: PLC0415 (keeps `--help` fast)

    try:
        write_atomic(path, text)
    except OSError as error:
        reason = error.strerror or one_line(error)
        raise CommandError(f"{path}: cannot write the fixes: {reason}") from None


def _run_lint(args: argparse.Namespace) -> int:
    version: ModelVersion = args.version
    sources = _lint_sources(args)
    errors = False
    report: list[dict[str, Any]] = []
    for source in sources:
        text = source.text
        fixed: str | None = None
        if args.fix:
            fixed = _fixed(source.label, text, version)
            if source.path is not None and fixed != text:
                _write_fixed(source.path, fixed)
                print(f"fixed {source.path}", file=sys.stderr)
            text = fixed
        diagnostics = _lint(source.label, text, version)
        errors = errors or any(d.severity == "error" for d in diagnostics)
        if args.json:
            lines = _Lines(text)
            entry: dict[str, Any] = {
                "file": source.label,
                "diagnostics": [_diagnostic_json(source.label, lines, d) for d in diagnostics],
            }
            if fixed is not None and source.path is None:
                entry["fixed"] = fixed
            report.append(entry)
            continue
        if fixed is not None and source.path is None:
            # The fixed text is the output; findings that remain go to stderr (as ruff does).
            print(fixed, end="" if fixed.endswith("\n") else "\n")
            _print_diagnostics(source.label, text, diagnostics, sys.stderr)
        else:
            _print_diagnostics(source.label, text, diagnostics, sys.stdout)
    if args.json:
        _print_json(report)
    return EXIT_FAILURE if errors else EXIT_OK


# --- convert ------------------------------------------------------------------------------


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    _add_text(parser)
    parser.add_argument(
        "--to",
        type=_model_version,
        required=True,
        metavar="VERSION",
        help="the version to convert to: v3, v3.1 or v4",
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=_model_version,
        default=get_version("v4"),
        metavar="VERSION",
        help="the version the prompt was written for (default: v4)",
    )


def _run_convert(args: argparse.Namespace) -> int:
    from animagine.core import Prompt  # noqa: PLC0415 (keeps `--help` fast)

    text, label = _read_prompt(args.text)
    try:
        prompt = Prompt.parse(text, version=args.source)
    except PromptSyntaxError as error:
        raise _prompt_error(label, error) from None
    converted = str(prompt.convert(args.to))
    diagnostics = _lint("<converted>", converted, args.to)
    print(converted)
    _print_diagnostics("<converted>", converted, diagnostics, sys.stderr)
    return EXIT_OK


# --- info ---------------------------------------------------------------------------------


def _info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or WebP files")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file": ..., "parameters": {...}} objects',
    )


def _run_info(args: argparse.Namespace) -> int:
    from animagine.metadata import read_parameters  # noqa: PLC0415 (needs Pillow)

    found: list[tuple[str, Any]] = []
    failed = False
    for name in args.images:
        try:
            found.append((name, read_parameters(name)))
        except ImportError as error:
            raise CommandError(str(error)) from None
        except (AnimagineError, OSError) as error:
            message = one_line(error)
            if name not in message:
                message = f"{name}: {message}"
            print(f"animagine info: error: {message}", file=sys.stderr)
            failed = True
    if args.json and (found or not failed):
        _print_json([{"file": name, "parameters": p.to_json()} for name, p in found])
    else:
        for index, (name, parameters) in enumerate(found):
            if len(args.images) > 1:
                if index:
                    print()
                print(f"==> {name} <==")
            print(parameters.to_infotext())
    return EXIT_USAGE if failed else EXIT_OK


# --- captions -----------------------------------------------------------------------------


def _captions_arguments(parser: argparse.ArgumentParser) -> None:
    from animagine.apps.captions import CaptionStyle  # noqa: PLC0415

    parser.add_argument(
        "folders", nargs="+", metavar="DIR", help="folders of caption files (or caption files)"
    )
    _add_version(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the files that would change and exit 1 if there are any",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="worker processes (default: 1; 0: one per CPU)",
    )
    parser.add_argument(
        "-r", "--recursive", action="store_true", help="also look in sub-folders (not hidden ones)"
    )
    parser.add_argument(
        "--extension",
        default=".txt",
        metavar=".EXT",
        help="caption file extension (default: .txt; kohya's other choice is .caption)",
    )
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="rewrite the file a symlinked caption points to when it is inside the folder given "
        "(default: skip symlinks); one pointing outside is never followed",
    )
    # How captions are written: one flag per field of CaptionStyle, its help text there.
    for field in attrs.fields(CaptionStyle):
        if "help" in field.metadata:
            parser.add_argument(f"--{field.name}", action="store_true", help=field.metadata["help"])


def _run_captions(args: argparse.Namespace) -> int:
    from animagine.apps.captions import (  # noqa: PLC0415
        CaptionStyle,
        find_captions,
        normalise_captions,
    )

    try:
        files = find_captions(args.folders, recursive=args.recursive, extension=args.extension)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if not files:
        where = ", ".join(args.folders)
        print(f"no *{args.extension} caption files in {where}", file=sys.stderr)
        return EXIT_OK
    flags = {name: getattr(args, name) for name in CaptionStyle.flags()}
    report = normalise_captions(
        files,
        version=args.version,
        check=args.check,
        jobs=args.jobs,
        folders=[folder for folder in args.folders if os.path.isdir(folder)],
        follow_symlinks=args.follow_symlinks,
        **flags,
    )
    for path in report.removed:
        print(f"{path}: removed, a temporary file left by an interrupted run", file=sys.stderr)
    for path in report.changed:
        print(path)
    for failure in report.failed:
        print(failure, file=sys.stderr)
    for skip in report.skipped:
        print(skip, file=sys.stderr)
    done = "would be normalised" if args.check else "normalised"
    summary = f"{len(report.changed)} {done}, {report.unchanged} unchanged"
    if report.failed:
        summary += f", {len(report.failed)} failed (left untouched)"
    if report.skipped:
        summary += f", {len(report.skipped)} skipped (left alone)"
    print(f"{report.total} caption files for {args.version.name}: {summary}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILURE


# --- the command table --------------------------------------------------------------------

COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        name="prompt",
        summary="print the canonical prompt, negative prompt and settings for a version",
        description="Read a prompt in any order and print it in the version's training order, "
        "with the version's negative prompt and recommended settings. Lint findings other than "
        "'order' (which the output fixes) go to stderr.",
        examples="""\
examples:
  animagine prompt "masterpiece, smile, 1girl, arima kana, oshi no ko, safe"
  animagine prompt --version v3 --quality "1girl, rating: general, smile"
  echo "1girl, smile" | animagine prompt --json
  animagine prompt --strict "smile, 1girl"     # exit 1: 1girl after a general tag
""",
        arguments=_prompt_arguments,
        run=_run_prompt,
    ),
    Command(
        name="lint",
        summary="check prompts: file:line:col: code message, --fix to repair",
        description="Check prompt text or prompt files for a version. Each finding is printed "
        "as FILE:LINE:COL: CODE MESSAGE (FILE is <text> or <stdin> for a prompt given directly). "
        "An argument that names an existing file is a file, otherwise the arguments are the "
        "prompt. Exit status: 0 when clean or only warnings remain, 1 when errors remain "
        "(syntax, rating-conflict), 2 for bad usage.",
        examples="""\
examples:
  animagine lint "smile, 1girl, (long hair"
  animagine lint prompts/*.txt
  animagine lint --fix prompt.txt              # rewrites prompt.txt in place
  animagine lint --fix "1girl, rating: general, newest"   # prints the fixed prompt
  cat prompt.txt | animagine lint --version v3 --json
""",
        arguments=_lint_arguments,
        run=_run_lint,
    ),
    Command(
        name="convert",
        summary="rewrite a prompt for another version (ratings, years, quality tags)",
        description="Convert a prompt written for one version (--from, default v4) into the "
        "canonical prompt for another (--to). Tags with no equivalent are kept and reported on "
        "stderr.",
        examples="""\
examples:
  animagine convert --to v3 "1girl, safe, smile, year 2023, masterpiece, high score"
  animagine convert --from v3 --to v4 "masterpiece, best quality, 1girl, rating: general, newest"
""",
        arguments=_convert_arguments,
        run=_run_convert,
    ),
    Command(
        name="info",
        summary="print the generation parameters stored in images",
        description="Print the generation parameters stored in images: animagine's own PNG "
        "chunk, A1111 infotext (PNG, JPEG, WebP) or the official Animagine demo's JSON. Needs "
        "Pillow.",
        examples="""\
examples:
  animagine info image.png
  animagine info --json outputs/*.png
""",
        arguments=_info_arguments,
        run=_run_info,
    ),
    Command(
        name="captions",
        summary="normalise a folder of kohya-style .txt captions into canonical order",
        description="Rewrite caption files (comma-separated tags beside each image, kohya "
        "sd-scripts layout) into the version's canonical tag order, in place and atomically per "
        "file. Captions are data: each comma-separated item is one literal tag, brackets and "
        "all (jeanne_d'arc_alter_(avenger)_(fate) is one tag), nothing is a weight. Underscores "
        "become spaces unless --underscores; nothing is escaped unless --escape (an escaped "
        "caption is read back as the names it stands for). The keep-tokens separator ||| is "
        "kept, each side ordered on its own; each line is a caption of its own. Changed files "
        "are listed on stdout; files that cannot be read or normalised are reported on stderr "
        "and left untouched. Exit status 1 if any file failed, or with --check if any file "
        "would change.",
        examples="""\
examples:
  animagine captions dataset/10_kana
  animagine captions --check --recursive dataset      # CI: exit 1 if anything would change
  animagine captions --version v3.1 --jobs 4 -r dataset
  animagine captions --separator --canonical dataset  # identity ||| the rest, aliases resolved
  animagine captions --escape dataset                 # for kohya --weighted_captions
""",
        arguments=_captions_arguments,
        run=_run_captions,
    ),
    Command(
        name="tags",
        summary="complete a Danbooru tag offline: names and aliases, most used first",
        description="Print the Danbooru tags whose name or alias starts with QUERY, from the "
        "tag database shipped with animagine (no network), most used first: one line per tag, "
        "NAME, CATEGORY, POST COUNT ('-' when unknown) and the ALIAS that matched, separated by "
        "tabs. Case and underscores do not matter. Exit status 1 when nothing matches.",
        examples="""\
examples:
  animagine tags long_h
  animagine tags --category character --limit 5 hatsune
  animagine tags --json sister clea
""",
        arguments="animagine.apps._tags_cli:arguments",
        run="animagine.apps._tags_cli:run",
    ),
    Command(
        name="expand",
        summary="print the prompts a template draws: {a|b}, {2$$a|b|c}, __wildcards__",
        description="Draw prompts from a dynamic-prompts template, as generate and batch do "
        "with --variants or --wildcards: prompt i uses seed SEED + i, the seed of image i, so "
        "the same seed gives the same prompts. Bad templates (an unclosed brace, a weight that "
        "is not a number, a missing wildcard file) are reported with their position.",
        examples="""\
examples:
  animagine expand "1girl, {red|blue|green} dress, {2$$smile|blush|wink}" -n 5 --seed 1
  animagine expand "1girl, __character__, __outfits/summer__" --wildcards wildcards/ -n 3
  animagine expand "__color__ hair, __color__ eyes" --wildcards w/ --variants demo
""",
        arguments="animagine.apps._expand_cli:arguments",
        run="animagine.apps._expand_cli:run",
    ),
    Command(
        name="generate",
        summary="generate images with an Animagine XL model (needs the generate extra)",
        description="Generate images with the model card's settings: the prompt is parsed for "
        "the version and put in its training order, the recommended quality tags and the default "
        "negative prompt are added, long and weighted prompts work offline. Images are saved "
        "with A1111-readable parameters and never overwrite a file. On a GPU the model runs in "
        "float16 unless --dtype says otherwise.",
        examples="""\
examples:
  animagine generate "1girl, arima kana, oshi no ko, smile" -o kana.png --seed 123
  animagine generate "1girl, hatsune miku, vocaloid" -o out/ -n 4 --aspect landscape
  animagine generate "1girl, smile" --model animagine-xl-4.0-opt.safetensors -o a.png
  animagine generate "1boy, night" --model cagliostrolab/animagine-xl-3.1 --cfg 6 \\
      --sampler "DPM++ 2M Karras" --hires 1.5 -o b.png
""",
        arguments="animagine.apps._generation_cli:generate_arguments",
        run="animagine.apps._generation_cli:run_generate",
    ),
    Command(
        name="batch",
        summary="render a file of prompts; resumes after a crash, scales out with accelerate",
        description="Generate one image set per input line (.txt: a prompt per line; .jsonl or "
        ".csv: any generation option by its Python name per line). Options given here apply to "
        "lines that do not set them. Images are written atomically with deterministic names and "
        "a manifest.jsonl; rerunning the same command skips finished items. Run it under "
        "'accelerate launch ... -m animagine batch' to share the items among processes, GPUs "
        "and machines.",
        examples="""\
examples:
  animagine batch prompts.txt -o out/ --model cagliostrolab/animagine-xl-4.0 --seed 7
  animagine batch prompts.jsonl -o out/ --aspect portrait --strict
  accelerate launch --multi_gpu --num_processes 4 -m animagine batch prompts.txt -o out/
""",
        arguments="animagine.apps._batch_cli:add_batch_arguments",
        run="animagine.apps._batch_cli:main_batch",
    ),
    Command(
        name="serve",
        summary="web UI and A1111-compatible API in one server (needs the app extra)",
        description="Serve the web UI at / and an A1111-compatible HTTP API at /sdapi/v1 (OpenAPI "
        "docs at /docs), with one queue for every generation request and a history of images. "
        "Without --model only the prompt tools work. Binds 127.0.0.1 unless told otherwise; "
        "Ctrl-C stops it cleanly.",
        examples="""\
examples:
  animagine serve --model cagliostrolab/animagine-xl-4.0
  animagine serve --model animagine-xl-3.1.safetensors --port 7861 --api-auth me:secret
  animagine serve            # prompt tools only: lint, canonical order, tag search
""",
        arguments="animagine.apps._serve_cli:arguments",
        run="animagine.apps._serve_cli:run",
    ),
)


# --- main ---------------------------------------------------------------------------------

_DESCRIPTION: Final = """\
Prompt tools for the Animagine XL anime models (3.0, 3.1, 4.0).

Run 'animagine COMMAND --help' for a command's options and examples."""


def build_parser(commands: Sequence[Command] = COMMANDS, wanted: str | None = None) -> _Parser:
    """The argument parser; only the ``wanted`` command (if any) gets its arguments added."""
    parser = _Parser(
        prog="animagine",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"animagine {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.subcommands = {}
    for command in commands:
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=textwrap.fill(command.description, width=_WIDTH),
            epilog=command.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.name == wanted:
            _resolve(command.arguments)(sub)
        sub.set_defaults(run=command.run)
        parser.subcommands[command.name] = sub
    return parser


def one_line(error: BaseException) -> str:
    """An error as one line for stderr: ``FILE: reason`` for an OSError, else its first line
    (a syntax error's caret context left out)."""
    if isinstance(error, OSError) and error.strerror:
        filename = error.filename
        reason = error.strerror
        return f"{filename}: {reason}" if filename is not None else reason
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _missing_extra(error: ImportError) -> str:
    return f"{one_line(error)} (install the generate extra: pip install 'animagine[generate]')"


def _is_top_level_option(argument: str) -> bool:
    """Whether ``argument`` is an option of ``animagine`` itself (abbreviations included)."""
    name = argument.partition("=")[0]
    if name in ("-", "--", "-h"):
        return True
    return len(name) > 2 and any(flag.startswith(name) for flag in ("--help", "--version"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``animagine`` command line and return its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    wanted = next((arg for arg in arguments if not arg.startswith("-")), None)
    try:
        parser = build_parser(COMMANDS, wanted)
    except ImportError as error:  # the command's arguments live in a module that cannot load
        print(f"animagine {wanted}: error: {_missing_extra(error)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if wanted is None and not {"-h", "--help"} & set(arguments):
            # Without this, argparse would only say that COMMAND is missing.
            unknown = [arg for arg in arguments if not _is_top_level_option(arg)]
            if unknown:
                parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args, unknown = parser.parse_known_args(arguments)
        if unknown:  # reported by the command's parser, so the message names the command
            parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    prog = f"animagine {args.command}"
    try:
        runner: Runner = _resolve(args.run)
        return runner(args)
    except CommandError as error:
        message = str(error)
    except (AnimagineError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return _broken_pipe()
        message = one_line(error)
    except ImportError as error:  # a command of the generate extra without it installed
        message = _missing_extra(error)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _broken_pipe() -> int:
    """stdout was closed early (``animagine ... | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_FAILURE
