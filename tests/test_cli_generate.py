"""The generation commands of the CLI: ``animagine generate`` and ``animagine batch``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from animagine.apps.cli import main
from animagine.testing import TinyModelPaths

pytestmark = [
    pytest.mark.generate,
]

SMALL = ["--width", "64", "--height", "64", "--steps", "2", "--no-progress"]


def test_generate_writes_images_that_reproduce(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from animagine import read_parameters

    out = tmp_path / "kana.png"
    argv = ["generate", "1girl,", "smile", "-o", str(out), "--seed", "7", "-n", "2"]
    model = ["--model", str(tiny_model_paths.folder), "--version", "v4", "--device", "cpu"]
    assert main([*argv, *model, *SMALL]) == 0
    captured = capsys.readouterr()
    written = captured.out.split()
    assert captured.err == "seed: 7, 8\n"  # --no-progress: no bars at all, loading included
    assert written == [str(tmp_path / "kana-1.png"), str(tmp_path / "kana-2.png")]
    first = read_parameters(written[0])
    assert (first.seed, first.width, first.steps, first.version) == (7, 64, 2, "v4")
    assert first.prompt == "1girl, smile, masterpiece, high score, great score, absurdres"
    assert read_parameters(written[1]).seed == 8
    # Never overwritten: the same command again fails with one line and leaves the files alone.
    before = Path(written[0]).read_bytes()
    assert main([*argv, *model, *SMALL]) == 2
    err = capsys.readouterr().err  # refused before the model is loaded: no loading output
    assert (
        err == f"animagine generate: error: {written[0]}: refusing to overwrite an existing file\n"
    )
    assert Path(written[0]).read_bytes() == before


def test_generate_from_a_single_file(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tiny_model_paths.single_file is not None
    out = tmp_path / "a.png"
    argv = ["generate", "1girl", "-o", str(out), "--seed", "1", "--model"]
    model = [str(tiny_model_paths.single_file), "--config", str(tiny_model_paths.folder)]
    assert main([*argv, *model, "--version", "v3", "--device", "cpu", *SMALL]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_generate_bad_option_is_one_line(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "1girl", "-o", str(tmp_path / "x.png"), "--model"]
    assert main([*argv, str(tiny_model_paths.folder), "--version", "v4", "--steps", "0"]) == 2
    # Checked before the model is loaded: one line, no loading output, no traceback.
    err = capsys.readouterr().err
    assert err == "animagine generate: error: steps must be between 1 and 200, got 0\n"


def test_generate_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert main(["generate", "1girl", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'animagine[generate]'" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_batch_subcommand_runs_and_resumes(
    tiny_model_paths: TinyModelPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("1girl, smile\n1boy, night\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["batch", str(prompts), "-o", str(out), "--model", str(tiny_model_paths.folder)]
    argv += ["--version", "v4", "--device", "cpu", *SMALL]
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["000001.png", "000002.png"]
    assert len((out / "manifest.jsonl").read_text("utf-8").splitlines()) == 2
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main(argv) == 0  # resumed: nothing left to do, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps
    capsys.readouterr()
