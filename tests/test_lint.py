"""lint: every code, positions, fixes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from animagine import Diagnostic, Edit, TagDatabase, apply_fixes, lint
from animagine.core import CODES, MAX_PROMPT_CHARS
from animagine.errors import InvalidArgumentError, PromptTooLongError, WrongTypeError


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
    assert text[found.start : found.end] == "smile"
    assert found.severity == "warning"
    assert found.fix == ()
    assert found.message == "general tag 'smile' goes after subject tags in Animagine XL 4.0"


def test_wrong_version_with_fix() -> None:
    text = "1girl, rating: general, smile, newest, best quality, high quality"
    found = [d for d in lint(text, version="v4") if d.code == "wrong-version"]
    assert [(text[d.start : d.end], d.fix) for d in found] == [
        ("rating: general", (Edit(7, 22, "safe"),)),
        ("newest", (Edit(31, 37, "year 2023"),)),
        ("high quality", (Edit(53, 65, "great score"),)),
    ]
    assert apply_fixes(text, found) == "1girl, safe, smile, year 2023, best quality, great score"
    v3 = [
        d.fix[0].replacement
        for d in lint("1girl, safe, year 2016, high score", version="v3")
        if d.code == "wrong-version"
    ]
    assert v3 == ["rating: general", "mid", "best quality"]


def test_wrong_version_without_equivalent() -> None:
    found = only("1girl, very aesthetic", "wrong-version")
    assert found.fix == ()
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
    # The finding points at the repeated tag itself; the fix also takes its separator.
    assert text[found.start : found.end].lower() == "smile"
    assert apply_fixes(text, [found]) == fixed


def test_weighted_duplicate_has_no_fix() -> None:
    found = only("smile, (smile:1.2)", "duplicate")
    assert found.fix == ()


def test_rating_conflict_is_an_error() -> None:
    text = "1girl, safe, explicit"
    found = only(text, "rating-conflict")
    assert found.severity == "error"
    assert text[found.start : found.end] == "explicit"


def test_suspicious_weight() -> None:
    text = "1girl, vertin (reverse:1999)"
    found = only(text, "suspicious-weight")
    assert "1999" in found.message
    # `vertin (reverse:1999)` is one tag with inner emphasis: the finding covers it.
    assert "reverse" in text[found.start : found.end]
    assert codes("(smile:-0.5), (blush:2), (night:0)") == ["suspicious-weight"]


def test_nsfw_risk_for_v3_quality_without_rating() -> None:
    found = only("masterpiece, best quality, 1girl", "nsfw-risk", version="v3")
    assert "rating: general" in found.message
    assert "nsfw-risk" not in codes("masterpiece, 1girl, rating: general", version="v3")
    assert "nsfw-risk" not in codes("1girl, masterpiece", version="v4")


def test_year_conflict() -> None:
    text = "1girl, year 2020, year 2024"
    found = only(text, "year-conflict")
    assert text[found.start : found.end] == "year 2024"
    assert found.message == (
        "second year tag 'year 2024' after 'year 2020'; the model knows one period per image"
    )


def test_syntax_error_is_a_diagnostic() -> None:
    [found] = lint("1girl, (smile")
    assert (found.code, found.severity, found.start, found.end) == ("syntax", "error", 7, 8)
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
        Diagnostic("order", "warning", "", 0, 2, (Edit(0, 2, "X"),)),
        Diagnostic("order", "warning", "", 1, 3, (Edit(1, 3, "Y"),)),
    ]
    assert apply_fixes(text, fixes) == "Xc"
    # A diagnostic's edits go in together or not at all.
    both = Diagnostic("order", "warning", "", 0, 1, (Edit(0, 1, "1"), Edit(2, 3, "3")))
    clash = Diagnostic("order", "warning", "", 2, 3, (Edit(2, 3, "Z"),))
    assert apply_fixes(text, [clash, both]) == "1b3"
    assert apply_fixes(text, [Diagnostic("order", "warning", "", 1, 2, (Edit(1, 2, "Q"),)),
                              both]) == "1Q3"  # fmt: skip


def test_duplicate_positions_on_later_lines() -> None:
    text = "1girl\nsmile, blush\n\nblush"
    found = only(text, "duplicate")
    assert found.message == "'blush' already appears at line 2, column 8"


def test_apply_fixes_rejects_what_is_not_a_fix_for_the_text() -> None:
    fix = Diagnostic("duplicate", "warning", "", 2, 9, (Edit(2, 9, ""),))
    with pytest.raises(InvalidArgumentError, match="another text"):
        apply_fixes("abc", [fix])
    with pytest.raises(WrongTypeError, match="Diagnostic"):
        apply_fixes("abc", ["not a diagnostic"])  # type: ignore[list-item]
    with pytest.raises(WrongTypeError, match="iterable of Diagnostic"):
        apply_fixes("abc", fix)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="text must be a str"):
        apply_fixes(None, [])  # type: ignore[arg-type]
    assert apply_fixes("abc", [Diagnostic("order", "warning", "", 0, 9)]) == "abc"  # no fix
    with pytest.raises(InvalidArgumentError, match="fix must be a tuple of Edit"):
        apply_fixes("abc", [Diagnostic("order", "warning", "", 0, 1, "x")])  # type: ignore[arg-type]


def test_lint_limits_and_types() -> None:
    with pytest.raises(PromptTooLongError):
        lint("a" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(PromptTooLongError):  # raised even where the text would not parse
        lint("(" * (MAX_PROMPT_CHARS + 1))
    assert [d.code for d in lint("(" * MAX_PROMPT_CHARS)] == ["syntax"]
    with pytest.raises(WrongTypeError, match="prompt must be a str"):
        lint(42)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="database must be a TagDatabase"):
        lint("1girl", database="default")  # type: ignore[arg-type]


def _best_time(function: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "make",
    [
        # many second ratings after many general tags
        lambda n: (
            ", ".join(f"g{i}" for i in range(n // 16))
            + ", safe, "
            + ", ".join(["explicit", "safe"] * (n // 40))
        ),
        # many duplicates whose first copy is far down the text, one per line
        lambda n: "\n".join(f"t{i}" for i in range(n // 10)) * 2,
        # quality tags in the middle: one order finding each
        lambda n: ", ".join(["1girl", "masterpiece", "smile"] * (n // 25)),
    ],
    ids=["ratings", "late-duplicates", "quality-in-the-middle"],
)
def test_lint_time_is_linear(make: Callable[[int], str]) -> None:
    """Four times the text takes about four times as long (a quadratic lint takes 16)."""
    small, big = make(MAX_PROMPT_CHARS // 8)[: MAX_PROMPT_CHARS // 8], make(MAX_PROMPT_CHARS // 2)
    ratio = _best_time(lambda: lint(big)) / max(_best_time(lambda: lint(small)), 1e-4)
    assert ratio < 10, ratio  # quadratic would be 16; a shared machine adds noise to 4


def test_every_card_example_is_in_order() -> None:
    import json
    from pathlib import Path

    cards = json.loads((Path(__file__).parent / "data" / "prompts" / "cards.json").read_text())
    for card in cards:
        found = lint(card["text"], version=card["version"])
        wrong = {"syntax", "order", "wrong-version", "rating-conflict", "duplicate"}
        assert [d for d in found if d.code in wrong] == [], card["card"]


def test_the_cards_typo_gets_a_did_you_mean() -> None:
    text = "1girl, smile, masterpiece, best quality, very aesthetic, absurdes"
    found = only(text, "unknown-tag", version="v3.1")
    assert found.severity == "info"
    assert found.message == "'absurdes' is not a Danbooru tag; did you mean 'absurdres'?"
    assert found.fix == (Edit(57, 65, "absurdres"),)


def test_unknown_tag_did_you_mean() -> None:
    text = "1girl, long hiar, smile"
    found = only(text, "unknown-tag")
    assert text[found.start : found.end] == "long hiar"
    assert apply_fixes(text, [found]) == "1girl, long hair, smile"
    plain = only("1girl, qwxzv plorkt", "unknown-tag")
    assert plain.fix == ()
    assert "did you mean" not in plain.message
    # A database of characters and series only knows no general tags: no noise.
    assert "unknown-tag" not in [
        d.code for d in lint("1girl, qwxzv plorkt", database=TagDatabase.from_names())
    ]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("sole_female", "1girl"), ("longhair", "long hair")],
)
def test_alias_with_the_canonical_name_as_fix(alias: str, canonical: str) -> None:
    text = f"smile, {alias}"
    found = [d for d in lint(text) if d.code == "alias"]
    if canonical == "1girl":
        # A subject alias is classified as what it stands for, and not reported as unknown.
        assert "unknown-tag" not in codes(text)
    (finding,) = found
    assert text[finding.start : finding.end] == alias
    assert canonical in finding.message
    assert apply_fixes(text, [finding]) == f"smile, {canonical}"


@pytest.mark.parametrize(
    ("text", "probable"),
    [
        ("1girl, (smile:abc)", True),
        ("1girl, (smile:l.2)", True),
        ("1girl, (smile: 1,2)", True),
        ("1girl, (re:zero)", False),
        ("1girl, (honkai: star rail)", False),
        ("1girl, (:d)", False),
    ],
)
def test_probable_weight(text: str, probable: bool) -> None:
    assert ("probable-weight" in codes(text)) is probable


def test_many_findings_on_one_tag_point_at_the_tag() -> None:
    text = "1girl, smile, , smile"
    for finding in lint(text):
        assert finding.end > finding.start
        assert text[finding.start : finding.end].strip() == text[finding.start : finding.end]
