"""The `animagine` command line: output, exit status, one-line errors, lazy commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from animagine import get_version, lint
from animagine.apps.cli import COMMANDS, Command, build_parser, main

DATA = Path(__file__).parent / "data" / "metadata"
V4 = get_version("v4")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def assert_one_line_error(err: str, command: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith(f"animagine {command}: error: "), err
    assert "Traceback" not in err


# --- top level ------------------------------------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in COMMANDS:
        assert command.name in out


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_command_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    assert "examples:" in out
    assert f"animagine {command}" in out


def test_program_version(capsys: pytest.CaptureFixture[str]) -> None:
    from animagine import __version__

    status, out, _ = run(capsys, "--version")
    assert (status, out) == (0, f"animagine {__version__}\n")


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ((), ""),
        (("frobnicate",), ""),
        (("prompt", "--version", "v9", "1girl"), " prompt"),
        (("prompt", "--bogus", "1girl"), " prompt"),
        (("convert", "1girl"), " convert"),  # --to is required
        (("captions", "--jobs", "-1", "."), " captions"),
        (("captions", "--jobs", "two", "."), " captions"),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], command: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"animagine{command}: error: ")
    assert err.rstrip().endswith("--help')")


def test_unknown_version_message_names_the_versions(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "lint", "--version", "v9", "1girl")
    assert "'v9'" in err
    assert "'v3', 'v3.1', 'v4'" in err


def test_only_the_chosen_command_adds_its_arguments() -> None:
    """The hook for `generate`/`batch`: other commands' argument functions are not imported."""
    calls: list[str] = []

    def arguments(parser: Any) -> None:
        calls.append("added")
        parser.add_argument("--steps", type=int)

    def runner(args: Any) -> int:
        return int(args.steps)

    extra = Command("fake", "a fake command", "Fake.", "examples:\n  fake", arguments, runner)
    lazy = Command("lazy", "never used", "Lazy.", "", "no_such_module:nothing", "nope:nothing")
    commands = (*COMMANDS, extra, lazy)
    parser = build_parser(commands, wanted="fake")
    args = parser.parse_args(["fake", "--steps", "3"])
    assert calls == ["added"]
    assert args.run(args) == 3


def test_string_references_are_imported_on_use() -> None:
    command = Command(
        "p", "s", "d", "", "animagine.apps.cli:_prompt_arguments", "animagine.apps.cli:_run_prompt"
    )
    parser = build_parser((command,), wanted="p")
    args = parser.parse_args(["p", "--json", "1girl"])
    assert args.json is True
    assert args.run == "animagine.apps.cli:_run_prompt"


# --- prompt ---------------------------------------------------------------------------------


def test_prompt_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "prompt", "masterpiece, smile, 1girl, arima kana, safe")
    assert status == 0
    assert err == ""  # order problems are what the output fixes: not reported
    assert out.splitlines() == [
        "1girl, arima kana, safe, smile, masterpiece",
        f"Negative prompt: {V4.negative_prompt}",
        "Steps: 28, Sampler: Euler a, CFG scale: 5, Size: 832x1216, Animagine version: v4",
    ]


def test_prompt_words_are_joined(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "prompt", "smile,", "1girl")
    assert out.splitlines()[0] == "1girl, smile"


def test_prompt_version_and_quality(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "prompt", "--version", "3.0", "--quality", "1girl, rating: general, smile"
    )
    v3 = get_version("v3")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("masterpiece, best quality, 1girl, rating: general, smile")
    assert lines[1] == f"Negative prompt: {v3.negative_prompt}"
    assert lines[2].endswith("Animagine version: v3")


def test_prompt_json_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, "smile, 1girl, hatsune miku, safe, smile\n")
    status, out, err = run(capsys, "prompt", "--json")
    assert status == 0
    data = json.loads(out)
    assert set(data) == {"version", "prompt", "negative_prompt", "settings", "tags", "diagnostics"}
    assert data["version"] == "v4"
    assert data["prompt"] == "1girl, hatsune miku, safe, smile, smile"  # prompt keeps duplicates
    assert data["negative_prompt"] == V4.negative_prompt
    assert data["settings"] == {
        "steps": 28,
        "sampler": "Euler a",
        "guidance_scale": 5.0,
        "width": 832,
        "height": 1216,
        "guidance_range": [4.0, 7.0],
        "vae": None,
    }
    assert data["tags"] == [
        {"slot": "subject", "name": "1girl", "weight": 1.0, "text": "1girl"},
        {"slot": "character", "name": "hatsune miku", "weight": 1.0, "text": "hatsune miku"},
        {"slot": "rating", "name": "safe", "weight": 1.0, "text": "safe"},
        {"slot": "general", "name": "smile", "weight": 1.0, "text": "smile"},
        {"slot": "general", "name": "smile", "weight": 1.0, "text": "smile"},
    ]
    [duplicate] = data["diagnostics"]
    assert duplicate["file"] == "<stdin>"
    assert (duplicate["code"], duplicate["line"], duplicate["column"]) == ("duplicate", 1, 35)
    assert duplicate["fix"] == [{"start": 32, "end": 39, "replacement": ""}]
    assert err == "<stdin>:1:35: duplicate 'smile' already appears at line 1, column 1\n"


def test_prompt_strict(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "prompt", "--strict", "smile, 1girl, newest")
    assert status == 1
    assert out == ""
    assert err.splitlines() == [
        "<text>:1:1: order general tag 'smile' goes after subject tags in Animagine XL 4.0",
        "<text>:1:15: wrong-version 'newest' is an Animagine XL 3.0 year tag; use 'year 2023'",
    ]
    assert run(capsys, "prompt", "--strict", "1girl, smile")[0] == 0


def test_prompt_syntax_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "prompt", "1girl, (smile")
    assert status == 2
    assert out == ""
    assert_one_line_error(err, "prompt")
    assert "<text>:1:8: syntax '(' is never closed" in err


def test_prompt_without_input_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    status, _, err = run(capsys, "prompt")
    assert status == 2
    assert_one_line_error(err, "prompt")
    assert "no prompt given" in err


# --- lint -----------------------------------------------------------------------------------


def test_lint_text_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "lint", "1girl, smile, masterpiece") == (0, "", "")


def test_lint_warnings_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "lint", "smile, 1girl")
    assert status == 0
    assert out.startswith("<text>:1:1: order general tag 'smile'")
    assert err == ""


def test_lint_errors_exit_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "lint", "1girl, safe,\nsmile, (long hair")
    assert status == 1
    assert (
        out
        == "<text>:2:8: syntax '(' is never closed (escape it as '\\(' if it is part of a tag)\n"
    )


def test_lint_stdin_positions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, "1girl, safe,\nexplicit, smile\n")
    status, out, _ = run(capsys, "lint", "-")
    assert status == 1
    assert out.startswith("<stdin>:2:1: rating-conflict second rating 'explicit'")


def test_lint_fix_text_prints_fixed_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "lint", "--fix", "1girl, rating: general, smile, newest, safe")
    assert status == 0
    assert out == "1girl, safe, smile, year 2023\n"
    assert err == ""


def test_lint_fix_stdin_keeps_newline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, "1girl, newest, smile\n")
    status, out, _ = run(capsys, "lint", "--fix")
    assert (status, out) == (0, "1girl, year 2023, smile\n")


def test_lint_files_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.txt"
    good.write_text("1girl, smile\n", encoding="utf-8")
    fixable = tmp_path / "fixable.txt"
    fixable.write_text("1girl,\nrating: general, smile, smile\r\n", encoding="utf-8", newline="")
    fixable.chmod(0o640)
    status, out, _ = run(capsys, "lint", str(good), str(fixable))
    assert status == 0
    assert out.splitlines() == [
        f"{fixable}:2:1: wrong-version 'rating: general' is an Animagine XL 3.0 rating tag; "
        "use 'safe'",
        f"{fixable}:2:25: duplicate 'smile' already appears at line 2, column 18",
    ]
    status, out, err = run(capsys, "lint", "--fix", str(good), str(fixable))
    assert (status, out, err) == (0, "", f"fixed {fixable}\n")
    assert fixable.read_bytes() == b"1girl,\nsafe, smile\r\n"
    assert fixable.stat().st_mode & 0o777 == 0o640
    assert good.read_text(encoding="utf-8") == "1girl, smile\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixable.txt", "good.txt"]


def test_lint_fix_file_with_errors_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.txt"
    path.write_text("1girl, safe, explicit, newest", encoding="utf-8")
    status, out, _ = run(capsys, "lint", "--fix", str(path))
    assert status == 1
    assert path.read_text(encoding="utf-8") == "1girl, safe, explicit, year 2023"
    assert "rating-conflict" in out


def test_lint_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.txt"
    path.write_text("smile, 1girl", encoding="utf-8")
    status, out, _ = run(capsys, "lint", "--json", str(path))
    assert status == 0
    [entry] = json.loads(out)
    assert entry["file"] == str(path)
    [finding] = entry["diagnostics"]
    assert finding == {
        "file": str(path),
        "line": 1,
        "column": 1,
        "end_line": 1,
        "end_column": 6,
        "code": "order",
        "severity": "warning",
        "message": lint("smile, 1girl")[0].message,
        "fix": [],
    }
    _, out, _ = run(capsys, "lint", "--json", "--fix", "1girl, newest")
    assert json.loads(out) == [{"file": "<text>", "diagnostics": [], "fixed": "1girl, year 2023"}]


def test_lint_missing_file_with_files_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.txt"
    status, out, err = run(capsys, "lint", "--files", str(missing))
    assert status == 2
    assert out == ""
    assert_one_line_error(err, "lint")
    assert f"{missing}: No such file or directory" in err


def test_lint_file_and_text_mixed_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.txt"
    path.write_text("1girl", encoding="utf-8")
    status, _, err = run(capsys, "lint", str(path), "smile")
    assert status == 2
    assert_one_line_error(err, "lint")
    assert "--files" in err


def test_lint_missing_file_looks_like_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "lint", "no-such-prompts.txt")
    # Read as a prompt: one tag that no vocabulary knows (information, exit status 0).
    assert (status, out) == (
        0,
        "<text>:1:1: unknown-tag 'no-such-prompts.txt' is not a Danbooru tag\n",
    )
    assert err.startswith("note: no file 'no-such-prompts.txt'")


def test_lint_file_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"1girl, caf\xe9")
    status, _, err = run(capsys, "lint", str(path))
    assert status == 2
    assert_one_line_error(err, "lint")
    assert "not UTF-8" in err


# --- convert --------------------------------------------------------------------------------


def test_convert(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "convert", "--to", "v3", "1girl, safe, smile, year 2023, masterpiece, high score"
    )
    assert (status, err) == (0, "")
    assert out == "1girl, rating: general, smile, newest, masterpiece, best quality\n"
    status, out, _ = run(
        capsys, "convert", "--from", "v3", "--to", "v4", "masterpiece, 1girl, rating: general"
    )
    assert (status, out) == (0, "1girl, safe, masterpiece\n")


def test_convert_reports_tags_without_equivalent(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "convert", "--from", "v3.1", "--to", "v4", "1girl, very aesthetic"
    )
    assert (status, out) == (0, "1girl, very aesthetic\n")
    assert err.startswith("<converted>:1:8: wrong-version 'very aesthetic'")


def test_convert_syntax_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "convert", "--to", "v3", "1girl, smile)")
    assert status == 2
    assert_one_line_error(err, "convert")
    assert "<text>:1:13: syntax" in err


# --- info -----------------------------------------------------------------------------------


def _png(path: Path, chunks: dict[str, str]) -> Path:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def _ours(tmp_path: Path) -> tuple[Path, Any]:
    from PIL import Image

    from animagine.metadata import GenerationParameters, write_png

    parameters = GenerationParameters(
        prompt="1girl, hatsune miku, vocaloid, solo, masterpiece, high score, absurdres",
        negative_prompt="lowres, bad anatomy",
        steps=28,
        sampler="Euler a",
        guidance_scale=5.0,
        seed=123456789,
        width=832,
        height=1216,
        model="cagliostrolab/animagine-xl-4.0",
        version="v4",
    )
    return write_png(Image.new("RGB", (8, 8)), tmp_path / "ours.png", parameters), parameters


def test_info_our_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("PIL")
    path, parameters = _ours(tmp_path)
    status, out, err = run(capsys, "info", str(path))
    assert (status, err) == (0, "")
    assert out == parameters.to_infotext() + "\n"
    status, out, _ = run(capsys, "info", "--json", str(path))
    assert status == 0
    assert json.loads(out) == [{"file": str(path), "parameters": parameters.to_json()}]


def test_info_a1111_and_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("PIL")
    a1111 = _png(
        tmp_path / "a1111.png",
        {"parameters": (DATA / "a1111_v1_8_animagine31.txt").read_text(encoding="utf-8")},
    )
    demo = _png(
        tmp_path / "demo.png", {"metadata": (DATA / "demo_3_1.json").read_text(encoding="utf-8")}
    )
    status, out, _ = run(capsys, "info", str(a1111), str(demo))
    assert status == 0
    assert out.startswith(f"==> {a1111} <==\n1girl, hatsune miku, vocaloid, rating: general")
    assert f"\n\n==> {demo} <==\n1girl, frieren" in out
    assert "Seed: 1178286131" in out
    status, out, _ = run(capsys, "info", "--json", str(a1111), str(demo))
    data = json.loads(out)
    assert [entry["parameters"]["version"] for entry in data] == ["v3.1", "v3.1"]
    assert data[1]["parameters"]["seed"] == 1178286131


def test_info_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("PIL")
    bare = _png(tmp_path / "bare.png", {})
    text = tmp_path / "not-an-image.png"
    text.write_text("hello", encoding="utf-8")
    good, _ = _ours(tmp_path)
    missing = tmp_path / "missing.png"
    status, out, err = run(capsys, "info", str(missing), str(bare), str(text), str(good))
    assert status == 2
    assert out.count("==> ") == 1  # the good image is still shown
    assert err.splitlines() == [
        f"animagine info: error: {missing}: No such file or directory",
        f"animagine info: error: no generation parameters found in {bare}",
        f"animagine info: error: {text} is not an image Pillow can read",
    ]


def test_info_without_pillow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    status, _, err = run(capsys, "info", str(tmp_path / "x.png"))
    assert status == 2
    assert_one_line_error(err, "info")
    assert "pip install pillow" in err


# --- a real process -------------------------------------------------------------------------


def _animagine(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "animagine", *argv],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_python_dash_m(tmp_path: Path) -> None:
    done = _animagine("prompt", "--json", input="smile, 1girl\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prompt"] == "1girl, smile"

    done = _animagine("prompt", "1girl, (smile")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr

    done = _animagine("lint", "--files", str(tmp_path / "missing.txt"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1

    (tmp_path / "a.txt").write_text("smile, 1girl\n", encoding="utf-8")
    done = _animagine("captions", "--check", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout == f"{tmp_path / 'a.txt'}\n"


def test_prompt_command_does_not_import_the_generation_stack() -> None:
    code = (
        "import sys\n"
        "from animagine.__main__ import main\n"
        "assert main(['prompt', '1girl']) == 0\n"
        "heavy = {'torch', 'diffusers', 'transformers', 'PIL'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
