"""lint: every code, positions, fixes."""

from __future__ import annotations

import pytest

from animagine import Diagnostic, TagDatabase, apply_fixes, lint
from animagine.core._lint import CODES


def codes(text: str, version: str = "v4") -> list[str]:
    return [d.code for d in lint(text, version=version)]


def only(text: str, code: str, version: str = "v4") -> Diagnostic:
    found = [d for d in lint(text, version=version) if d.code == code]
    assert len(found) == 1, found
    return found[0]


def test_clean_card_prompt_has_no_findings() -> None:
    text = (
        "1girl, firefly \\(honkai: star rail\\), honkai \\(series\\), honkai: star rail, safe, "
        "casual, solo, smile, night, masterpiece, high score, great score, absurdres"
    )
    assert lint(text) == []


def test_order() -> None:
    text = "smile, 1girl, masterpiece"
    found = only(text, "order")
    assert text[found.start : found.end] == "1girl"
    assert found.severity == "warning"
    assert found.fix is None
    assert "trained on the order" in found.message


def test_wrong_version_with_fix() -> None:
    text = "1girl, rating: general, smile, newest, best quality, high quality"
    found = [d for d in lint(text, version="v4") if d.code == "wrong-version"]
    assert [(text[d.start : d.end], d.fix) for d in found] == [
        ("rating: general", "safe"),
        ("newest", "year 2023"),
        ("high quality", "great score"),
    ]
    assert apply_fixes(text, found) == "1girl, safe, smile, year 2023, best quality, great score"
    v3 = [d.fix for d in lint("1girl, safe, year 2016, high score", version="v3")]
    assert v3 == ["rating: general", "mid", "best quality"]


def test_wrong_version_without_equivalent() -> None:
    found = only("1girl, very aesthetic", "wrong-version")
    assert found.fix is None
    assert "no equivalent" in found.message


def test_unescaped_parens() -> None:
    text = "1girl, hoshimachi suisei (1st costume), smile"
    found = only(text, "unescaped-parens")
    assert text[found.start : found.end] == "hoshimachi suisei (1st costume)"
    assert apply_fixes(text, [found]) == "1girl, hoshimachi suisei \\(1st costume\\), smile"


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("1girl, smile, long hair, smile", "1girl, smile, long hair"),
        ("smile, 1girl, Smile", "smile, 1girl"),
        ("smile\nsmile", "smile\n"),
    ],
)
def test_duplicate_with_removal_fix(text: str, fixed: str) -> None:
    found = only(text, "duplicate", version="v3")
    assert "already appears at line 1, column 1" in found.message or "column 8" in found.message
    assert apply_fixes(text, [found]) == fixed


def test_weighted_duplicate_has_no_fix() -> None:
    found = only("smile, (smile:1.2)", "duplicate")
    assert found.fix is None


def test_rating_conflict_is_an_error() -> None:
    text = "1girl, safe, explicit"
    found = only(text, "rating-conflict")
    assert found.severity == "error"
    assert text[found.start : found.end] == "explicit"


def test_suspicious_weight() -> None:
    text = "1girl, vertin (reverse:1999)"
    found = only(text, "suspicious-weight")
    assert "1999" in found.message
    assert text[found.start : found.end] == "reverse"
    assert codes("(a:-0.5), (b:2), (c:0)") == ["suspicious-weight"]


def test_nsfw_risk_for_v3_quality_without_rating() -> None:
    found = only("masterpiece, best quality, 1girl", "nsfw-risk", version="v3")
    assert "rating: general" in found.message
    assert "nsfw-risk" not in codes("masterpiece, 1girl, rating: general", version="v3")
    assert "nsfw-risk" not in codes("1girl, masterpiece", version="v4")


def test_year_conflict() -> None:
    text = "1girl, year 2020, year 2024"
    found = only(text, "year-conflict")
    assert text[found.start : found.end] == "year 2024"


def test_syntax_error_is_a_diagnostic() -> None:
    [found] = lint("1girl, (smile")
    assert (found.code, found.severity, found.start) == ("syntax", "error", 7)
    assert "never closed" in found.message
    assert found.position("1girl, (smile") == (1, 8)


def test_every_code_is_documented() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "lint.md").read_text("utf-8")
    for code in CODES:
        assert f"`{code}`" in page, code


def test_lint_uses_the_given_database() -> None:
    text = "1girl, smile, arima kana"
    assert "order" in codes(text)
    assert lint(text, database=TagDatabase.empty()) == []


def test_apply_fixes_skips_overlaps() -> None:
    text = "abc"
    fixes = [
        Diagnostic("order", "warning", "", 0, 2, "X"),
        Diagnostic("order", "warning", "", 1, 3, "Y"),
    ]
    assert apply_fixes(text, fixes) == "Xc"
