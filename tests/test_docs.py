"""The documentation's examples are real: every ```pycon block runs and prints what it shows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "```pycon" in p.read_text("utf-8"))


def _checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "check_examples", DOCS / "_ext" / "check_examples.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_examples(page: Path) -> None:
    attempted, failed = _checker().check(page)
    assert attempted > 0
    assert failed == 0
