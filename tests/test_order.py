"""Each version's tag order: the grammar, the automaton derived from it, and what uses them."""

from __future__ import annotations

import itertools
import json

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from animagine import Prompt, PromptOrderError, lint
from animagine.core import (
    ORDER_TERMINALS,
    VERSIONS,
    ModelVersion,
    OrderRules,
    compile_order_grammar,
    order_grammar_file,
    order_rules,
    order_table_file,
)

by_version = pytest.mark.parametrize("version", VERSIONS, ids=[v.name for v in VERSIONS])
terminal_lists = st.lists(st.sampled_from(ORDER_TERMINALS), max_size=12)


def lark_accepts(version: ModelVersion, terminals: list[str]) -> bool:
    """The grammar file itself, run by Lark on a token stream: the definition."""
    parser = lark.Lark(order_grammar_file(version).read_text("utf-8"), parser="lalr", lexer="basic")
    interactive = parser.parse_interactive("")
    try:
        for terminal in terminals:
            interactive.feed_token(lark.Token(terminal, terminal))
        interactive.feed_eof()
    except lark.exceptions.UnexpectedInput:
        return False
    return True


@by_version
def test_shipped_tables_are_compiled_from_the_grammar_as_it_is(version: ModelVersion) -> None:
    """Edit an order grammar without running tools/build_order_tables.py and this fails."""
    import hashlib

    source = order_grammar_file(version).read_bytes()
    table = json.loads(order_table_file(version).read_text("utf-8"))
    assert table["grammar_sha256"] == hashlib.sha256(source).hexdigest()
    moves, accepting = compile_order_grammar(source.decode())
    assert [dict(state) for state in table["moves"]] == moves
    assert frozenset(table["accepting"]) == accepting


@by_version
@settings(max_examples=300, deadline=None)
@given(terminals=terminal_lists)
def test_the_automaton_accepts_exactly_what_the_grammar_does(
    version: ModelVersion, terminals: list[str]
) -> None:
    assert order_rules(version).accepts(terminals) == lark_accepts(version, terminals)


@by_version
@settings(max_examples=300, deadline=None)
@given(terminals=st.lists(st.sampled_from((*ORDER_TERMINALS, None)), max_size=14))
def test_canonical_order_is_a_sentence_and_sentences_stay_put(
    version: ModelVersion, terminals: list[str | None]
) -> None:
    rules = order_rules(version)
    order = rules.canonical_order(terminals)
    assert sorted(order) == list(range(len(terminals)))
    placed = [terminals[i] for i in order]
    tags_only = [t for t in placed if t is not None]
    assert rules.accepts(tags_only)
    # Tags of one kind keep their relative order (a stable sort moves nothing needlessly).
    for kind in ORDER_TERMINALS:
        indices = [i for i in order if terminals[i] == kind]
        assert indices == sorted(indices)
    # Characters and series keep their interleaving.
    identity = [i for i in order if terminals[i] in ("CHARACTER", "SERIES")]
    assert identity == sorted(identity)
    # Already in order: nothing moves.
    again = rules.canonical_order(placed)
    assert again == list(range(len(placed)))
    if rules.accepts([t for t in terminals if t is not None]):
        assert order == list(range(len(terminals)))


@by_version
@settings(max_examples=200, deadline=None)
@given(terminals=st.lists(st.sampled_from(ORDER_TERMINALS), max_size=8))
def test_out_of_place_is_a_smallest_set_whose_removal_leaves_a_sentence(
    version: ModelVersion, terminals: list[str]
) -> None:
    rules = order_rules(version)
    found = rules.out_of_place(terminals)
    rest = [t for i, t in enumerate(terminals) if i not in found]
    assert rules.accepts(rest)
    # Brute force: no smaller removal works.
    for size in range(len(found)):
        for removed in itertools.combinations(range(len(terminals)), size):
            kept = [t for i, t in enumerate(terminals) if i not in removed]
            assert not rules.accepts(kept), (terminals, removed)


def test_ranks_come_from_the_grammar() -> None:
    v4 = order_rules(VERSIONS[-1])
    assert v4.ranks["SUBJECT"] == v4.ranks["FOCUS"] < v4.ranks["CHARACTER"]
    assert v4.ranks["CHARACTER"] == v4.ranks["SERIES"] < v4.ranks["RATING"]
    assert v4.ranks["RATING"] < v4.ranks["GENERAL"] == v4.ranks["YEAR"] < v4.ranks["QUALITY"]
    assert not v4.edges
    v3 = order_rules(VERSIONS[0])
    assert v3.edges == {"QUALITY"}
    assert v3.ranks["RATING"] == v3.ranks["GENERAL"] == v3.ranks["YEAR"]


def test_a_grammar_edit_changes_the_order_without_touching_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The grammar is the definition: compile a variant where rating goes last in 4.0."""
    source = order_grammar_file(VERSIONS[-1]).read_text("utf-8")
    variant = source.replace(
        "start: subjects? identity? ratings? rest? quality?",
        "start: subjects? identity? rest? quality? ratings?",
    )
    assert variant != source
    moves, accepting = compile_order_grammar(variant)
    rules = OrderRules("variant", moves, accepting)
    assert rules.ranks["RATING"] > rules.ranks["QUALITY"]
    assert rules.accepts(["SUBJECT", "GENERAL", "QUALITY", "RATING"])
    assert not rules.accepts(["SUBJECT", "RATING", "GENERAL"])


# -- what uses the order -------------------------------------------------------------------


def test_order_findings_are_one_per_misplaced_tag_and_short() -> None:
    text = "smile, 1girl, arima kana, safe"
    found = [d for d in lint(text) if d.code == "order"]
    assert [text[d.start : d.end] for d in found] == ["smile"]
    assert found[0].message == "general tag 'smile' goes after the rating in Animagine XL 4.0"
    # Between equally few, the template's anchors stay and the later kinds are reported.
    text = "1girl, smile, safe"
    (only,) = [d for d in lint(text) if d.code == "order"]
    assert text[only.start : only.end] == "smile"
    assert only.message == "general tag 'smile' goes after the rating in Animagine XL 4.0"
    assert len(only.message) < 80
    text = "1girl, smile, night, safe"
    (only,) = [d for d in lint(text) if d.code == "order"]
    assert only.message == "rating 'safe' goes before general tags in Animagine XL 4.0"


def test_strict_parsing_reports_the_first_misplaced_tag_from_the_grammar() -> None:
    with pytest.raises(PromptOrderError) as caught:
        Prompt.parse("1girl, smile, night, arima kana", strict=True)
    assert caught.value.code == "order"
    assert caught.value.offset == len("1girl, smile, night, ")
    assert "character 'arima kana' goes before general tags" in str(caught.value)


def test_3x_quality_tags_lead_or_sit_among_everything_else() -> None:
    # The cards prepend them (text) or append them (examples); both are fixed points.
    for text in (
        "masterpiece, 1girl, smile",
        "1girl, smile, masterpiece",
        "1girl, masterpiece, smile",
    ):
        assert str(Prompt.parse(text, version="v3")) == text
        assert not [d for d in lint(text, version="v3") if d.code == "order"]
    text = "1girl, masterpiece, arima kana"
    (finding,) = [d for d in lint(text, version="v3") if d.code == "order"]
    assert text[finding.start : finding.end] == "masterpiece"
    assert finding.message == (
        "quality tag 'masterpiece' goes first or among general tags in Animagine XL 3.0"
    )
    assert str(Prompt.parse(text, version="v3")) == "1girl, arima kana, masterpiece"
