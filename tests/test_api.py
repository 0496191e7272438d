"""The public surface: exports, module names, and a light import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import animagine

PUBLIC = {
    "BREAK", "VERSIONS", "AnimagineError", "Diagnostic", "Edit", "GenerationDefaults",
    "GenerationParameters", "GenerationResult", "Generator", "ModelVersion", "Prompt",
    "PromptOrderError", "PromptSyntaxError", "Tag", "TagDatabase", "TagDatabaseError", "TagMatch",
    "UnknownVersionError", "__version__", "apply_fixes", "convert", "get_version", "lint",
    "parse", "read_parameters", "EncodingError", "GenerationArgumentError",
    "GenerationTypeError", "HiresParameters", "MetadataError", "ModelLoadError",
    "UnsupportedPipelineError", "BatchInputError", "GenerationOptions", "GenerationPlan",
    "InvalidArgumentError", "MissingDependencyError", "MissingFileError", "NotAFileError",
    "PromptEncoder", "PromptTooLongError", "WrongTypeError", "Diagnostics",
}  # fmt: skip


def test_all_is_exactly_the_public_api() -> None:
    assert set(animagine.__all__) == PUBLIC
    assert animagine.__all__ == sorted(animagine.__all__, key=lambda n: (not n.isupper(), n))
    assert sorted(dir(animagine)) == sorted(PUBLIC)


def test_eager_public_objects_report_the_package() -> None:
    lazy = {
        "Generator", "GenerationResult", "GenerationParameters", "HiresParameters",
        "GenerationOptions", "GenerationPlan", "PromptEncoder",
    }  # fmt: skip
    for name in PUBLIC - lazy - {"BREAK", "VERSIONS", "__version__", "read_parameters"}:
        assert getattr(animagine, name).__module__ == "animagine", name


def test_import_and_parse_stay_light() -> None:
    code = (
        "import sys, animagine; "
        "animagine.Prompt.parse('1girl, arima kana, oshi no ko, safe, smile, masterpiece'); "
        "animagine.lint('1girl, (smile'); animagine.convert('1girl', to='v3'); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'PIL', 'numpy', 'lark') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # lark itself is loaded only when the fast path defers (here: the unclosed bracket).
    assert result.stdout.strip() == "['lark']"


def test_lazy_public_objects_report_the_package() -> None:
    for name in ("Generator", "GenerationOptions", "GenerationPlan", "PromptEncoder"):
        assert getattr(animagine, name).__module__ == "animagine", name


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="'Nope'"):
        animagine.Nope  # type: ignore[attr-defined]  # noqa: B018
