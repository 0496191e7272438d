"""Bad input to every command: one line on stderr, the documented exit status, no traceback.

Each case runs ``main([...])`` in this process and checks what a user sees: exit status 2 for bad
usage or input (1 only where the command ran and found problems), exactly one line on stderr
(``animagine COMMAND: error: ...``, or ``FILE:LINE: ...`` findings for batch lines), no
traceback, a message naming what was wrong, and nothing on stdout when nothing was done.

``generate`` and ``batch`` check everything before they load a model: their cases run with
``StableDiffusionXLPipeline.from_pretrained`` and ``.from_single_file`` replaced by functions that
fail the test, so a check that only happens while loading shows up as a failure. The model
folders here are fakes (a ``model_index.json`` and an empty weights file) that nothing ever reads.

Cases marked ``xfail(strict=True)`` are bugs outside the command line module; the reason says
where. Fixing one makes its test pass, and the marker must then go.
"""

from __future__ import annotations

import builtins
import errno
import importlib.util
import io
import json
import os
import re
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from animagine.apps.cli import main

Setup = Callable[[Path, pytest.MonkeyPatch], None]
Says = tuple[str | tuple[str, ...], ...]

HAS_PILLOW = importlib.util.find_spec("PIL") is not None
needs_pillow = pytest.mark.skipif(not HAS_PILLOW, reason="needs Pillow")


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str


@dataclass(frozen=True)
class Case:
    """One bad command line.

    ``{tmp}`` in ``argv`` and ``says`` is the test's ``tmp_path``. Each ``says`` item must be in
    the error line; a tuple item means any one of its strings.
    """

    argv: tuple[str, ...]
    says: Says = ()
    status: int = 2
    stdin: bytes | None = None
    setup: Setup | None = None

    @property
    def command(self) -> str:
        """The name in ``animagine NAME: error:`` (empty for the top-level parser)."""
        first = next((arg for arg in self.argv if not arg.startswith("-")), "")
        return first if first in COMMAND_NAMES else ""


COMMAND_NAMES = ("prompt", "lint", "convert", "info", "captions", "generate", "batch")


def case(
    *argv: str,
    id: str,
    says: Says = (),
    status: int = 2,
    stdin: bytes | None = None,
    setup: Setup | None = None,
    xfail: str | None = None,
    marks: tuple[pytest.MarkDecorator, ...] = (),
) -> Any:
    all_marks = list(marks)
    if xfail is not None:
        all_marks.append(pytest.mark.xfail(strict=True, reason=xfail))
    return pytest.param(Case(argv, says, status, stdin, setup), id=id, marks=all_marks)


def expand(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def assert_says(line: str, says: Says, tmp: Path) -> None:
    for item in says:
        options = (item,) if isinstance(item, str) else item
        expanded = [expand(option, tmp) for option in options]
        assert any(option in line for option in expanded), (expanded, line)


def assert_one_line_error(
    result: Result, command: str, says: Says, tmp: Path, status: int = 2
) -> None:
    assert "Traceback" not in result.err, result.err
    assert result.status == status, result
    assert result.out == "", result.out
    assert result.err.endswith("\n"), result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    prefix = f"animagine {command}: error: " if command else "animagine: error: "
    assert lines[0].startswith(prefix), lines[0]
    assert_says(lines[0], says, tmp)


@dataclass(frozen=True)
class Cli:
    """Runs ``main`` in this process, in a test's folder, with its output captured."""

    tmp: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def setup(self, setup: Setup | None) -> None:
        if setup is not None:
            setup(self.tmp, self.monkeypatch)

    def run(self, argv: list[str], stdin: bytes | None = None) -> Result:
        if stdin is not None:
            wrapper = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
            self.monkeypatch.setattr(sys, "stdin", wrapper)
        self.capsys.readouterr()  # whatever setting up printed is not the command's
        status = main([expand(arg, self.tmp) for arg in argv])
        out, err = self.capsys.readouterr()
        return Result(status, out, err)

    def error(self, result: Result, command: str, says: Says, status: int = 2) -> None:
        assert_one_line_error(result, command, says, self.tmp, status)

    def check(self, case_: Case) -> Result:
        """Run a case and check that it is one error line."""
        self.setup(case_.setup)
        result = self.run(list(case_.argv), case_.stdin)
        self.error(result, case_.command, case_.says, case_.status)
        return result


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, capsys, monkeypatch)


# --- files the cases read -----------------------------------------------------------------


def write(relative: str, data: bytes | str) -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)

    return setup


def make_dir(relative: str) -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp / relative).mkdir(parents=True, exist_ok=True)

    return setup


NOT_UTF8 = b"1girl, \xff\xfe smile\n"


def png_bytes(parameters: str | None = None) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


INFOTEXT = (
    "1girl, smile\nNegative prompt: lowres\nSteps: 28, Sampler: Euler a, CFG scale: 5, Seed: 1"
)


def png(relative: str, parameters: str | None = None, *, cut: int | None = None) -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        data = png_bytes(parameters)
        (tmp / relative).write_bytes(data if cut is None else data[:cut])

    return setup


def png_chunk(relative: str, keyword: str, text: str) -> Setup:
    """A PNG whose ``keyword`` tEXt chunk holds ``text``, whatever it is."""

    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        data = png_bytes()
        body = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body
        chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body))
        end = data.rindex(b"IEND") - 4
        (tmp / relative).write_bytes(data[:end] + chunk + data[end:])

    return setup


# --- top level and argument parsing ---------------------------------------------------------

USAGE_CASES = [
    case(id="no-command", says=("COMMAND",)),
    case("frobnicate", id="unknown-command", says=("frobnicate",)),
    case("--bogus", id="unknown-top-level-flag", says=("--bogus",)),
    case("prompt", "--bogus", "1girl", id="unknown-flag", says=("--bogus",)),
    case("lint", "--fixx", "1girl", id="unknown-flag-lint", says=("--fixx",)),
    case("prompt", "--version", "v9", "1girl", id="bad-version", says=("--version", "'v9'")),
    case("prompt", "--version=v9", "1girl", id="bad-version-equals", says=("'v9'",)),
    case("lint", "--version", "", "1girl", id="empty-version", says=("--version",)),
    case("prompt", "--version", id="version-without-value", says=("--version",)),
    case("captions", "--version", "v5", "{tmp}", id="bad-version-captions", says=("'v5'",)),
    case("convert", "1girl", id="missing-required-to", says=("--to",)),
    case("info", id="missing-image", says=("IMAGE",)),
    case("captions", id="missing-folder-argument", says=("DIR",)),
    case("generate", "1girl", id="generate-missing-output", says=("--output",)),
    case("batch", "{tmp}/p.txt", id="batch-missing-output", says=("--output",)),
]


@pytest.mark.parametrize("case_", USAGE_CASES)
def test_usage_error(case_: Case, cli: Cli) -> None:
    result = cli.check(case_)
    assert result.err.rstrip().endswith("--help')")  # argparse's errors point at --help


def test_a_command_module_that_cannot_be_imported_is_one_line(cli: Cli) -> None:
    # The arguments of generate live in a module imported only when generate is asked for.
    cli.monkeypatch.setitem(sys.modules, "animagine.apps._generation_cli", None)
    result = cli.run(["generate", "1girl", "-o", str(cli.tmp / "a.png")])
    cli.error(result, "generate", ("pip install",))


# --- prompt, lint, convert ------------------------------------------------------------------

PROMPT_CASES = [
    case("prompt", "1girl, (smile", id="prompt-unclosed-bracket", says=("<text>:1:8:", "'('")),
    case("prompt", "1girl, [smile", id="prompt-unclosed-square", says=("<text>:1:8:", "'['")),
    case("prompt", "1girl, smile)", id="prompt-stray-closer", says=("<text>:1:13:",)),
    case("prompt", stdin=b"", id="prompt-empty-stdin", says=("<stdin>", "empty")),
    case("prompt", "-", stdin=b"  \n", id="prompt-blank-stdin", says=("<stdin>", "empty")),
    case("prompt", "", id="prompt-empty-text", says=("<text>", "empty")),
    case("prompt", stdin=NOT_UTF8, id="prompt-stdin-not-utf8", says=("<stdin>", "UTF-8")),
    case(
        "prompt",
        stdin=b"1girl,\n(smile",
        id="prompt-stdin-position",
        says=("<stdin>:2:1:",),
    ),
    case("lint", stdin=NOT_UTF8, id="lint-stdin-not-utf8", says=("<stdin>", "UTF-8")),
    case(
        "lint",
        "--files",
        "{tmp}/missing.txt",
        id="lint-missing-file",
        says=("{tmp}/missing.txt", "No such file"),
    ),
    case(
        "lint",
        "--files",
        "{tmp}/folder",
        id="lint-directory",
        setup=make_dir("folder"),
        says=("{tmp}/folder", ("directory", "folder")),
    ),
    case(
        "lint",
        "--files",
        "{tmp}/bad.txt",
        id="lint-not-utf8-file",
        setup=write("bad.txt", NOT_UTF8),
        says=("{tmp}/bad.txt", "UTF-8"),
    ),
    case(
        "lint",
        "{tmp}/bad.txt",
        id="lint-not-utf8-file-without-files-flag",
        setup=write("bad.txt", NOT_UTF8),
        says=("{tmp}/bad.txt", "UTF-8"),
    ),
    case(
        "lint",
        "{tmp}/good.txt",
        "{tmp}/missing.txt",
        id="lint-file-and-non-file",
        setup=write("good.txt", "1girl, smile\n"),
        says=("good.txt", "missing.txt", "--files"),
    ),
    case("convert", "--to", "v9", "1girl", id="convert-bad-to", says=("--to", "'v9'")),
    case("convert", "--to", "", "1girl", id="convert-empty-to", says=("--to",)),
    case("convert", "--from", "v2", "--to", "v3", "1girl", id="convert-bad-from", says=("'v2'",)),
    case("convert", "--to", "v3", "1girl, (smile", id="convert-unclosed", says=("<text>:1:8:",)),
    case("convert", "--to", "v3", stdin=b"", id="convert-empty-stdin", says=("<stdin>", "empty")),
]


@pytest.mark.parametrize("case_", PROMPT_CASES)
def test_prompt_lint_convert_error(case_: Case, cli: Cli) -> None:
    cli.check(case_)


def _prompt_limit() -> int | None:
    import animagine.core

    limit: int | None = getattr(animagine.core, "MAX_PROMPT_CHARS", None)
    return limit


@pytest.mark.skipif(_prompt_limit() is None, reason="no documented prompt size limit")
@pytest.mark.parametrize(
    "argv",
    [["prompt"], ["prompt", "--json"], ["lint"], ["lint", "--fix"], ["convert", "--to", "v3"]],
    ids=["prompt", "prompt-json", "lint", "lint-fix", "convert"],
)
def test_prompt_over_the_size_limit(argv: list[str], cli: Cli) -> None:
    limit = _prompt_limit()
    assert limit is not None
    text = "1girl, smile, " * (limit // 14 + 1)
    assert len(text) > limit
    result = cli.run([*argv, text])
    cli.error(result, argv[0], ("<text>", f"{limit:,}"))


@pytest.mark.skipif(_prompt_limit() is None, reason="no documented prompt size limit")
def test_lint_file_over_the_size_limit(cli: Cli) -> None:
    limit = _prompt_limit()
    assert limit is not None
    big = cli.tmp / "big.txt"
    big.write_text("a" * (limit + 1), encoding="utf-8")
    result = cli.run(["lint", "--files", str(big)])
    cli.error(result, "lint", (str(big), f"{limit:,}"))


def deny_writes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail every write into ``folder`` as a read-only folder does, for root too.

    Root ignores permission bits, so the calls that create, link or rename a file there raise
    the ``PermissionError`` the operating system would give anyone else.
    """
    inside = str(folder) + os.sep

    def guard(function: Callable[..., Any], *, target: int, writes: Callable[..., bool]) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            path = os.fsdecode(os.path.abspath(args[target]))
            if path.startswith(inside) and writes(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return function(*args, **kwargs)

        return guarded

    def writing_flags(path: object, flags: int, *args: Any, **kwargs: Any) -> bool:
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    def writing_mode(file: object, mode: str = "r", *args: Any, **kwargs: Any) -> bool:
        return isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+")

    def always(*args: Any, **kwargs: Any) -> bool:
        return True

    monkeypatch.setattr(os, "open", guard(os.open, target=0, writes=writing_flags))
    monkeypatch.setattr(builtins, "open", guard(builtins.open, target=0, writes=writing_mode))
    for name in ("replace", "rename", "link"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), target=1, writes=always))


def test_lint_fix_of_a_file_that_cannot_be_written(cli: Cli) -> None:
    folder = cli.tmp / "read-only"
    folder.mkdir()
    prompt = folder / "prompt.txt"
    original = "1girl, rating: general, newest\n"  # v4 fixes: safe, year 2023
    prompt.write_text(original, encoding="utf-8")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root: the permission bits stop nobody
            deny_writes(folder, cli.monkeypatch)
        result = cli.run(["lint", "--fix", "--files", str(prompt)])
    finally:
        folder.chmod(0o755)
    # The file the user named, not the temporary file beside it.
    cli.error(result, "lint", (f"{prompt}:", os.strerror(errno.EACCES)), status=2)
    assert f"{folder}{os.sep}." not in result.err  # no hidden temporary name
    assert prompt.read_text(encoding="utf-8") == original


# --- info -----------------------------------------------------------------------------------

INFO_CASES = [
    case(
        "info",
        "{tmp}/missing.png",
        id="missing-file",
        says=("{tmp}/missing.png", "No such file"),
    ),
    case(
        "info",
        "{tmp}/folder",
        id="directory",
        setup=make_dir("folder"),
        says=("{tmp}/folder", ("directory", "folder")),
    ),
    case(
        "info",
        "{tmp}/text.png",
        id="not-an-image",
        setup=write("text.png", "1girl, smile\n"),
        says=("{tmp}/text.png",),
    ),
    case(
        "info",
        "{tmp}/empty.png",
        id="empty-file",
        setup=write("empty.png", b""),
        says=("{tmp}/empty.png",),
    ),
    case(
        "info",
        "{tmp}/plain.png",
        id="png-without-parameters",
        setup=png("plain.png"),
        says=("{tmp}/plain.png", "parameters"),
    ),
    case(
        "info",
        "{tmp}/cut.png",
        id="png-cut-in-the-header",
        setup=png("cut.png", INFOTEXT, cut=20),
        says=("{tmp}/cut.png",),
    ),
    case(
        "info",
        "{tmp}/cut.png",
        id="png-cut-in-the-middle",
        setup=png("cut.png", INFOTEXT, cut=60),
        says=("{tmp}/cut.png",),
    ),
    case(
        "info",
        "{tmp}/garbage.png",
        id="png-with-garbage-parameters",
        setup=png("garbage.png", "not parameters at all"),
        says=("{tmp}/garbage.png",),
    ),
    case(
        "info",
        "{tmp}/deep.png",
        id="png-with-deeply-nested-json",
        setup=png_chunk("deep.png", "animagine", "[" * 100_000 + "]" * 100_000),
        says=("{tmp}/deep.png",),
    ),
    case(
        "info",
        "{tmp}/huge.png",
        id="png-with-a-5000-digit-seed",
        setup=png_chunk("huge.png", "animagine", '{"seed": ' + "9" * 5000 + "}"),
        says=("{tmp}/huge.png",),
    ),
    case(
        "info",
        "--json",
        "{tmp}/plain.png",
        id="json-without-parameters",  # nothing found: no `[]` on stdout
        setup=png("plain.png"),
        says=("{tmp}/plain.png",),
    ),
]


@needs_pillow  # without it, every info command says to install it
@pytest.mark.parametrize("case_", INFO_CASES)
def test_info_error(case_: Case, cli: Cli) -> None:
    cli.check(case_)


# --- captions -------------------------------------------------------------------------------

CAPTIONS_CASES = [
    case(
        "captions",
        "{tmp}/missing",
        id="missing-folder",
        says=("{tmp}/missing", "No such file"),
    ),
    case("captions", "--extension", "txt", "{tmp}", id="extension-without-dot", says=("'txt'",)),
    case("captions", "--extension", "", "{tmp}", id="empty-extension", says=("extension",)),
    case(
        "captions",
        "--extension",
        ".txt/../x",
        "{tmp}",
        id="extension-with-a-path",
        says=(".txt/../x",),
    ),
    case("captions", "--jobs", "two", "{tmp}", id="jobs-not-a-number", says=("--jobs", "'two'")),
    case("captions", "--jobs", "-1", "{tmp}", id="jobs-negative", says=("--jobs", "-1")),
    case("captions", "-j", "1.5", "{tmp}", id="jobs-fraction", says=("--jobs", "'1.5'")),
]


@pytest.mark.parametrize("case_", CAPTIONS_CASES)
def test_captions_error(case_: Case, cli: Cli) -> None:
    (cli.tmp / "a.txt").write_text("smile, 1girl\n", encoding="utf-8")
    cli.check(case_)
    assert (cli.tmp / "a.txt").read_text(encoding="utf-8") == "smile, 1girl\n"  # untouched


# --- status 1: the command ran and found problems ------------------------------------------

FINDING = r"^{file}:\d+:\d+: [a-z-]+ "


def test_lint_errors_are_findings_with_status_1(cli: Cli) -> None:
    prompt = cli.tmp / "prompt.txt"
    prompt.write_text("1girl,\n(smile\n", encoding="utf-8")
    result = cli.run(["lint", str(prompt)])
    assert (result.status, result.err) == (1, "")
    assert result.out.splitlines() == [
        f"{prompt}:2:1: syntax '(' is never closed (escape it as '\\(' if it is part of a tag)"
    ]


def test_prompt_strict_violations_are_findings_with_status_1(cli: Cli) -> None:
    result = cli.run(["prompt", "--strict", "smile, 1girl, newest"])
    assert (result.status, result.out) == (1, "")
    lines = result.err.splitlines()
    assert [line.split(" ")[1] for line in lines] == ["order", "wrong-version"]
    assert all(re.match(FINDING.format(file="<text>"), line) for line in lines), lines


def test_captions_that_cannot_be_read_are_findings_with_status_1(cli: Cli) -> None:
    # A caption is data: `1girl, (smile` is two literal tags, not a syntax error. What fails is
    # a file that is not text.
    caption = cli.tmp / "a.txt"
    caption.write_bytes(b"caf\xe9, 1girl\n")
    result = cli.run(["captions", str(cli.tmp)])
    assert (result.status, result.out) == (1, "")
    finding, summary = result.err.splitlines()
    assert finding == f"{caption}: read not UTF-8 text (invalid continuation byte at byte 3)"
    assert "1 failed" in summary
    assert caption.read_bytes() == b"caf\xe9, 1girl\n"  # left untouched


# --- generate and batch: checked before any model is loaded ---------------------------------

generate_extra = pytest.mark.generate


@pytest.fixture(scope="session")
def sdxl_pipeline() -> Any:
    """The diffusers pipeline class (imported once: the import prints transformers notices)."""
    import diffusers

    return diffusers.StableDiffusionXLPipeline


@pytest.fixture
def loads(sdxl_pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Loading calls made during the test; each one also fails the test."""
    calls: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def load(*args: object, **kwargs: object) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called: the model is loaded before the error")

        return load

    monkeypatch.setattr(sdxl_pipeline, "from_pretrained", refuse("from_pretrained"))
    monkeypatch.setattr(sdxl_pipeline, "from_single_file", refuse("from_single_file"))
    return calls


def fake_model_folder(
    folder: Path, *, weights: str = "diffusion_pytorch_model.safetensors"
) -> None:
    """A diffusers folder on the outside; nothing may read its weights in these tests."""
    index = {
        "_class_name": "StableDiffusionXLPipeline",
        "_diffusers_version": "0.30.0",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
    }
    (folder / "unet").mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    (folder / "unet" / weights).write_bytes(b"")


def safetensors_bytes(*, declared: int, present: int) -> bytes:
    """A .safetensors file whose header describes ``declared`` bytes of data; ``present`` follow."""
    header = {"weight": {"dtype": "U8", "shape": [declared], "data_offsets": [0, declared]}}
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + bytes(present)


def no_cuda(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def offline(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def model_folder(relative: str, weights: str = "diffusion_pytorch_model.safetensors") -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        fake_model_folder(tmp / relative, weights=weights)

    return setup


def custom_code_folder(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp / "custom" / "animagine-xl-4.0"
    fake_model_folder(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    index["unet"] = ["evil_package", "EvilUNet"]
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")


MODEL = "{tmp}/animagine-xl-4.0"  # a fake folder made by every generate/batch test
PICKLE_ADVICE = "--allow-pickle"


@dataclass(frozen=True)
class ModelCase:
    """Model flags (``--model`` included) that must be refused before loading."""

    flags: tuple[str, ...]
    says: Says
    setup: Setup | None = None
    xfail_generate: str | None = None
    xfail_batch: str | None = None


MODEL_CASES: dict[str, ModelCase] = {
    "missing-path": ModelCase(
        ("--model", "{tmp}/missing/animagine-xl-4.0"), ("{tmp}/missing/animagine-xl-4.0",)
    ),
    "missing-single-file": ModelCase(
        ("--model", "{tmp}/animagine-xl-4.0-opt.safetensors"),
        ("{tmp}/animagine-xl-4.0-opt.safetensors",),
    ),
    "pickle-checkpoint": ModelCase(
        ("--model", "x.ckpt"),
        ("x.ckpt", PICKLE_ADVICE),
    ),
    "pickle-checkpoint-with-version": ModelCase(
        ("--model", "x.ckpt", "--version", "v4"), ("x.ckpt", PICKLE_ADVICE)
    ),
    "pickle-checkpoint-named-for-its-version": ModelCase(
        ("--model", "{tmp}/animagine-xl-4.0.ckpt"),
        ("animagine-xl-4.0.ckpt", PICKLE_ADVICE),
        setup=write("animagine-xl-4.0.ckpt", b"not a pickle"),
    ),
    "folder-with-pickle-weights-only": ModelCase(
        ("--model", "{tmp}/animagine-xl-3.1"),
        ("animagine-xl-3.1", PICKLE_ADVICE),
        setup=model_folder("animagine-xl-3.1", weights="diffusion_pytorch_model.bin"),
    ),
    "hub-id-offline": ModelCase(
        ("--model", "someone/animagine-xl-4.0"),
        ("someone/animagine-xl-4.0", "could not be fetched offline"),
        setup=offline,
    ),
    "garbage-safetensors": ModelCase(
        ("--model", "{tmp}/animagine-xl-4.0.safetensors"),
        ("{tmp}/animagine-xl-4.0.safetensors",),
        setup=write("animagine-xl-4.0.safetensors", bytes(range(256)) * 4),
    ),
    "empty-safetensors": ModelCase(
        ("--model", "{tmp}/animagine-xl-4.0.safetensors"),
        ("{tmp}/animagine-xl-4.0.safetensors",),
        setup=write("animagine-xl-4.0.safetensors", b""),
    ),
    "truncated-safetensors": ModelCase(
        ("--model", "{tmp}/animagine-xl-4.0.safetensors"),
        ("{tmp}/animagine-xl-4.0.safetensors", "truncated"),
        setup=write("animagine-xl-4.0.safetensors", safetensors_bytes(declared=4096, present=64)),
    ),
    "custom-code-folder": ModelCase(
        ("--model", "{tmp}/custom/animagine-xl-4.0"),
        ("evil_package", "custom code"),
        setup=custom_code_folder,
    ),
    "folder-without-model-index": ModelCase(
        ("--model", "{tmp}/empty/animagine-xl-4.0"),
        ("{tmp}/empty/animagine-xl-4.0", "model_index.json"),
        setup=make_dir("empty/animagine-xl-4.0"),
    ),
    "unknown-version": ModelCase(("--model", MODEL, "--version", "v9"), ("'v9'",)),
    "version-not-in-the-name": ModelCase(
        ("--model", "{tmp}/my-model"), ("--version",), setup=model_folder("my-model")
    ),
    "cuda-without-cuda": ModelCase(
        ("--model", MODEL, "--device", "cuda"), ("--device", "CUDA"), setup=no_cuda
    ),
    "not-a-device": ModelCase(("--model", MODEL, "--device", "gpu0"), ("--device", "'gpu0'")),
    "float8": ModelCase(("--model", MODEL, "--dtype", "float8"), ("--dtype", "'float8'")),
    "config-with-a-folder-model": ModelCase(
        ("--model", MODEL, "--config", "{tmp}/animagine-xl-4.0"), ("--config",)
    ),
}


def _model_params() -> list[Any]:
    params = []
    for name, model_case in MODEL_CASES.items():
        for command, reason in (
            ("generate", model_case.xfail_generate),
            ("batch", model_case.xfail_batch),
        ):
            marks: list[pytest.MarkDecorator] = [generate_extra]
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            params.append(pytest.param(command, model_case, id=f"{command}-{name}", marks=marks))
    return params


def command_line(command: str, tmp: Path, *extra: str) -> list[str]:
    """``generate`` or ``batch`` of one good prompt into a fresh output, plus ``extra``."""
    fake_model_folder(tmp / "animagine-xl-4.0")
    if command == "generate":
        argv = ["generate", "1girl, smile", "-o", str(tmp / "out.png"), "--no-progress"]
    else:
        prompts = tmp / "prompts.txt"
        prompts.write_text("1girl, smile\n", encoding="utf-8")
        argv = ["batch", str(prompts), "-o", str(tmp / "out"), "--no-progress"]
    return [*argv, *(expand(arg, tmp) for arg in extra)]


@pytest.mark.parametrize(("command", "model_case"), _model_params())
def test_model_flags_refused_before_loading(
    command: str, model_case: ModelCase, loads: list[str], cli: Cli
) -> None:
    argv = command_line(command, cli.tmp, *model_case.flags)
    if model_case.setup is not None:
        model_case.setup(cli.tmp, cli.monkeypatch)
    result = cli.run(argv)
    assert loads == []
    cli.error(result, command, model_case.says)
    if PICKLE_ADVICE in model_case.says:
        assert "allow_pickle=True" not in result.err  # the flag, not the Python keyword


GENERATE_CASES = [
    case("--steps", "0", id="steps-0", says=("steps", "0")),
    case("--steps", "1000", id="steps-1000", says=("steps", "1000")),
    case("--cfg", "abc", id="cfg-not-a-number", says=(("--cfg", "guidance"), "'abc'")),
    case("--cfg", "nan", id="cfg-nan", says=(("--cfg", "guidance"), "nan")),
    case("--width", "65", id="width-65", says=("width", "65")),
    case("--width", "99999", id="width-too-big", says=("width", "99999")),
    case("--aspect", "7:1", id="aspect-7-1", says=("aspect", "7:1")),
    case("--sampler", "nope", id="sampler-nope", says=("sampler", "'nope'")),
    case("--hires", "9", id="hires-9", says=("hires", "9")),
    case("--seed", "-1", id="seed-negative", says=("seed", "-1")),
    case("--seed", str(2**64), id="seed-too-big", says=("seed", str(2**64))),
    case("--seed", "abc", id="seed-not-a-number", says=("seed", "'abc'")),
    case("--num-images", "0", id="num-images-0", says=(("num_images", "--num-images"), "0")),
    case("-n", "1000000000", id="num-images-huge", says=(("num_images", "--num-images"),)),
]


@generate_extra
@pytest.mark.parametrize("case_", GENERATE_CASES)
def test_generate_bad_option(case_: Case, loads: list[str], cli: Cli) -> None:
    argv = command_line("generate", cli.tmp, "--model", MODEL, *case_.argv)
    result = cli.run(argv)
    assert loads == []
    cli.error(result, "generate", case_.says)


@generate_extra
@pytest.mark.parametrize(
    ("prompt", "says"),
    [
        pytest.param("1girl, (smile", ("'('", ("column 8", ":1:8")), id="unclosed-bracket"),
        pytest.param("1girl, [a|b]", ("alternation",), id="alternation"),
    ],
)
def test_generate_bad_prompt(prompt: str, says: Says, loads: list[str], cli: Cli) -> None:
    argv = command_line("generate", cli.tmp, "--model", MODEL)
    argv[1] = prompt
    result = cli.run(argv)
    assert loads == []
    cli.error(result, "generate", says)


@generate_extra
def test_generate_prompt_over_the_size_limit(loads: list[str], cli: Cli) -> None:
    from animagine.core import MAX_PROMPT_CHARS

    argv = command_line("generate", cli.tmp, "--model", MODEL)
    argv[1] = "1girl, smile, " * (MAX_PROMPT_CHARS // 14 + 1)
    result = cli.run(argv)
    assert loads == []
    cli.error(result, "generate", (f"{MAX_PROMPT_CHARS:,}",))


OUTPUT_CASES = [
    case("-o", "{tmp}/out.jpg", id="jpg", says=("{tmp}/out.jpg", ".png")),
    case(
        "-o",
        "{tmp}/taken.png",
        id="file-exists",
        setup=write("taken.png", b"someone's image"),
        says=("{tmp}/taken.png", ("exist", "overwrite")),
    ),
    case(
        "-o",
        "{tmp}/taken.png",
        "-n",
        "2",
        id="numbered-file-exists",
        setup=write("taken-2.png", b"someone's image"),
        says=("{tmp}/taken-2.png",),
    ),
    case(
        "-o",
        "{tmp}/a-file",
        id="folder-that-is-a-file",
        setup=write("a-file", b"data"),
        says=("{tmp}/a-file",),
    ),
    case(
        "-o",
        "{tmp}/a-file/out.png",
        id="inside-a-file",
        setup=write("a-file", b"data"),
        says=("{tmp}/a-file",),
    ),
]


@generate_extra
@pytest.mark.parametrize("case_", OUTPUT_CASES)
def test_generate_bad_output(case_: Case, loads: list[str], cli: Cli) -> None:
    argv = command_line("generate", cli.tmp, "--model", MODEL)
    del argv[2:4]  # -o OUT: the case's own
    argv += [expand(arg, cli.tmp) for arg in case_.argv]
    if case_.setup is not None:
        case_.setup(cli.tmp, cli.monkeypatch)
    before = {path: path.read_bytes() for path in cli.tmp.glob("*.png")}
    result = cli.run(argv)
    assert loads == []
    cli.error(result, "generate", case_.says)
    assert {path: path.read_bytes() for path in cli.tmp.glob("*.png")} == before


@generate_extra
@pytest.mark.parametrize("command", ["generate", "batch"])
def test_model_error_only_loading_finds_is_one_line(
    command: str, sdxl_pipeline: Any, cli: Cli
) -> None:
    """A well-formed .safetensors without SDXL weights: only loading can tell.

    The pipeline class is imported first (``sdxl_pipeline``): what transformers prints when it is
    imported depends on the packages installed, and is not the command's error.
    """
    checkpoint = cli.tmp / "animagine-xl-4.0.safetensors"
    checkpoint.write_bytes(safetensors_bytes(declared=16, present=16))
    argv = command_line(command, cli.tmp, "--model", str(checkpoint), "--device", "cpu")
    result = cli.run(argv)
    cli.error(result, command, (str(checkpoint), "cannot load"))


# --- batch ----------------------------------------------------------------------------------

BATCH_CASES = [
    case(
        "{tmp}/missing.txt",
        id="missing-input",
        says=("{tmp}/missing.txt", "No such file"),
    ),
    case(
        "{tmp}/folder",
        id="input-is-a-folder",
        setup=make_dir("folder"),
        says=("{tmp}/folder",),
    ),
    case(
        "{tmp}/bad.txt",
        id="input-not-utf8",
        setup=write("bad.txt", NOT_UTF8),
        says=("{tmp}/bad.txt", "UTF-8"),
    ),
    case("{tmp}/p.txt", "--format", "xml", id="bad-format", says=("--format", "'xml'")),
    case("{tmp}/p.txt", "--seed", "-1", id="seed-negative", says=("--seed", "-1")),
    case("{tmp}/p.txt", "--seed", "abc", id="seed-not-a-number", says=("--seed", "'abc'")),
    case("{tmp}/p.txt", "--seed", str(2**64), id="seed-too-big", says=("--seed", str(2**64))),
    case("{tmp}/p.txt", "--cfg", "abc", id="cfg-not-a-number", says=(("--cfg", "guidance"),)),
    case(
        "{tmp}/p.txt",
        "--steps",
        "0",
        id="steps-0",
        says=("steps", "0"),
    ),
    case(
        "{tmp}/p.txt",
        "--aspect",
        "7:1",
        id="aspect-7-1",
        says=("aspect", "7:1"),
    ),
    case(
        "{tmp}/p.txt",
        "-o",
        "{tmp}/a-file",
        id="output-is-a-file",
        setup=write("a-file", b"data"),
        says=("{tmp}/a-file",),
    ),
    case(
        "{tmp}/p.txt",
        "-o",
        "{tmp}/a-file/out",
        id="output-inside-a-file",
        setup=write("a-file", b"data"),
        says=("{tmp}/a-file",),
    ),
]


@generate_extra
@pytest.mark.parametrize("case_", BATCH_CASES)
def test_batch_error(case_: Case, loads: list[str], cli: Cli) -> None:
    fake_model_folder(cli.tmp / "animagine-xl-4.0")
    (cli.tmp / "p.txt").write_text("1girl, smile\n", encoding="utf-8")
    argv = ["batch", *case_.argv]
    if "-o" not in argv:
        argv += ["-o", "{tmp}/out"]
    argv += ["--model", MODEL, "--no-progress"]
    full = Case(tuple(argv), case_.says, case_.status, case_.stdin, case_.setup)
    cli.check(full)
    assert loads == []


DEEP = "[" * 100_000 + "]" * 100_000

BAD_LINES = [
    pytest.param(
        '{"prompt": "1girl", "seed": ' + "9" * 5000 + "}",
        (("digit", "integer", "number"),),
        id="5000-digit-integer",
    ),
    pytest.param(
        '{"prompt": "1girl", "extra": ' + DEEP + "}",
        (("nest", "deep", "depth"),),
        id="deeply-nested-json",
    ),
    pytest.param(
        '{"prompt": "1girl", "num_images": 1000000000}',
        ("num_images", "1000000000"),
        id="a-billion-images",
    ),
    pytest.param('{"prompt": "1girl", "steps": 0}', ("steps",), id="steps-0"),
    pytest.param('{"prompt": "1girl", "aspect": "7:1"}', ("7:1",), id="aspect-7-1"),
    pytest.param('{"prompt": "1girl, (smile"}', ("'('",), id="unparseable-prompt"),
    pytest.param('{"prompt": 5}', ("prompt",), id="prompt-not-a-string"),
    pytest.param('{"prompt": "1girl", "stepz": 5}', ("stepz",), id="unknown-option"),
    pytest.param("[1, 2]", ("object",), id="not-an-object"),
    pytest.param("{", ("JSON",), id="not-json"),
]


@generate_extra
@pytest.mark.parametrize(("line", "says"), BAD_LINES)
def test_batch_bad_line_with_strict(line: str, says: Says, loads: list[str], cli: Cli) -> None:
    """Each bad line is one ``FILE:LINE: ...`` finding; --strict then stops with one summary."""
    fake_model_folder(cli.tmp / "animagine-xl-4.0")
    prompts = cli.tmp / "prompts.jsonl"
    prompts.write_text(line + "\n", encoding="utf-8")
    argv = ["batch", str(prompts), "-o", str(cli.tmp / "out"), "--strict", "--no-progress"]
    result = cli.run([*argv, "--model", str(cli.tmp / "animagine-xl-4.0")])
    assert loads == []
    assert "Traceback" not in result.err
    assert result.status == 2
    assert result.out == ""
    finding, summary = result.err.splitlines()
    assert finding.startswith(f"{prompts}:1: "), finding
    assert_says(finding, says, cli.tmp)
    assert summary.startswith("animagine batch: "), summary
    assert not (cli.tmp / "out").exists()


@generate_extra
def test_batch_with_no_usable_line_loads_nothing(loads: list[str], cli: Cli) -> None:
    fake_model_folder(cli.tmp / "animagine-xl-4.0")
    prompts = cli.tmp / "prompts.jsonl"
    prompts.write_text('{"prompt": "1girl", "steps": 0}\n', encoding="utf-8")
    argv = ["batch", str(prompts), "-o", str(cli.tmp / "out"), "--no-progress"]
    result = cli.run([*argv, "--model", str(cli.tmp / "animagine-xl-4.0")])
    assert loads == []
    assert "Traceback" not in result.err
    assert result.status in (1, 2)  # nothing could be done: a bad-input status either way
    assert result.out == ""
    assert result.err.splitlines()[0].startswith(f"{prompts}:1: ")
