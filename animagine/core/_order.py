"""Each model version's tag order, defined by a Lark grammar over classified tags.

``grammar/order/<version>.lark`` is the definition: its terminals are what a tag *is*
(``SUBJECT``, ``FOCUS``, ``CHARACTER``, ``SERIES``, ``RATING``, ``YEAR``, ``GENERAL``,
``QUALITY``), and a prompt is in order when the sequence of its tags' terminals is a sentence of
the grammar. Everything here is derived from that grammar, once per version and lazily:

* an automaton: the LALR parser's states, explored from the start over every terminal, so that
  checking and repairing an order is dictionary look-ups rather than parser copies;
* :meth:`OrderRules.out_of_place`: the fewest tags whose removal leaves a sentence of the
  grammar (one ``order`` finding each in lint and strict parsing);
* :meth:`OrderRules.canonical_order`: a sentence of the grammar is left as it is; anything else
  is stably sorted by *rank*. Terminal ``A`` ranks before ``B`` when the grammar lets ``B``
  follow ``A`` but not ``A`` follow ``B``. A terminal the grammar lets stand on either side of
  every other one (3.x quality tags: a leading block, or among everything else) is an *edge*
  terminal: its tags stay at the start when they lead the prompt, and otherwise take their home
  rank. Everything of equal rank keeps the user's order, so characters and series stay
  interleaved as written and general tags are never shuffled. Tests check that the result is
  always a sentence of the grammar.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from animagine.core._vocab import ModelVersion

__all__ = [
    "FOCUS_TAGS",
    "ORDER_TERMINALS",
    "OrderRules",
    "compile_order_grammar",
    "order_grammar_file",
    "order_rules",
    "order_table_file",
    "terminal_of",
]

#: The order grammars' terminals, in the order messages list them.
ORDER_TERMINALS: Final = (
    "SUBJECT",
    "FOCUS",
    "CHARACTER",
    "SERIES",
    "RATING",
    "GENERAL",
    "YEAR",
    "QUALITY",
)

#: Danbooru's focus tags: they say who the image is about and travel with the subject tags.
FOCUS_TAGS: Final = frozenset({"male focus", "female focus", "other focus", "solo focus"})

_SLOT_TERMINAL: Final[Mapping[str, str]] = {
    "subject": "SUBJECT",
    "character": "CHARACTER",
    "series": "SERIES",
    "rating": "RATING",
    "general": "GENERAL",
    "year": "YEAR",
    "quality": "QUALITY",
}

_GRAMMARS: Final = Path(__file__).parent / "grammar" / "order"
_END: Final = "$END"
_MAX_STATES: Final = 512


def terminal_of(slot: str, key: str) -> str | None:
    """The order terminal of a classified tag (``None`` for ``BREAK``, which is not ordered)."""
    if slot == "break":
        return None
    if slot == "subject" and key in FOCUS_TAGS:
        return "FOCUS"
    return _SLOT_TERMINAL[slot]


class OrderRules:
    """One version's order grammar, compiled into an automaton and a rank per terminal."""

    __slots__ = ("_accepting", "_homes", "_moves", "edges", "name", "ranks")

    def __init__(
        self,
        name: str,
        moves: list[dict[str, int]],
        accepting: frozenset[int],
    ) -> None:
        self.name = name
        self._moves = moves
        self._accepting = accepting
        ranks, edges, homes = _ranks(moves)
        #: Terminal -> rank: a lower rank must come first; equal ranks keep the user's order.
        self.ranks: Mapping[str, int] = ranks
        #: Edge terminals: allowed before every other tag, and after them (see _ranks).
        self.edges: frozenset[str] = edges
        self._homes = homes

    def accepts(self, terminals: Sequence[str]) -> bool:
        """Whether this sequence of terminals is a sentence of the grammar."""
        state = 0
        for terminal in terminals:
            found = self._moves[state].get(terminal)
            if found is None:
                return False
            state = found
        return state in self._accepting

    def out_of_place(self, terminals: Sequence[str]) -> list[int]:
        """Indices of the fewest tags whose removal leaves a sentence of the grammar.

        Among equally few, the answer removes tags of the latest ranks (the template's anchors,
        subjects and identity, stay put: ``smile, 1girl, arima kana`` reports ``smile``), and
        then the later tags. Linear in the number of tags (the automaton has a few states).
        """
        if self.accepts(terminals):  # the common case: nothing out of place
            return []
        top = max(self.ranks.values(), default=0)
        penalty = {
            t: top - (self._homes[t] if t in self.edges else self.ranks.get(t, top))
            for t in set(terminals)
        }
        # state -> (removed count, penalty, removed indices as a linked list)
        best: dict[int, tuple[int, int, object]] = {0: (0, 0, None)}
        moves = self._moves
        for index, terminal in enumerate(terminals):
            step: dict[int, tuple[int, int, object]] = {}
            cost = penalty[terminal]
            for state, (count, paid, removed) in best.items():
                following = moves[state].get(terminal)
                if following is not None:
                    held = step.get(following)
                    if held is None or held[:2] > (count, paid):
                        step[following] = (count, paid, removed)
                held = step.get(state)
                if held is None or held[:2] > (count + 1, paid + cost):
                    step[state] = (count + 1, paid + cost, (index, removed))
            best = step
        finals = [value for state, value in best.items() if state in self._accepting]
        if not finals:  # pragma: no cover - removing every tag always leaves a sentence
            return list(range(len(terminals)))
        chain = min(finals, key=lambda value: value[:2])[2]
        out: list[int] = []
        while chain is not None:
            assert isinstance(chain, tuple)
            out.append(chain[0])
            chain = chain[1]
        out.reverse()
        return out

    def canonical_order(self, terminals: Sequence[str | None]) -> list[int]:
        """A permutation of ``range(len(terminals))``: the tags in this version's order.

        A sequence the grammar accepts is left as it is. Otherwise tags are stably sorted by
        rank; ``None`` (``BREAK``) stays with the tag after it (the one whose chunk it opens),
        or at the end when no tag follows. An edge tag (3.x quality)
        before every other tag stays at the start; elsewhere it takes its home rank (among
        3.x's "everything else"), or goes last when it has none.
        """
        ordered = [t for t in terminals if t is not None]
        if self.accepts(ordered):
            return list(range(len(terminals)))
        ranks = self.ranks
        edges = self.edges
        keys: list[int | None] = []
        head = True
        for terminal in terminals:
            if terminal is None:
                keys.append(None)
                continue
            if terminal in edges:
                key = -1 if head else self._homes[terminal]
            else:
                head = False
                key = ranks[terminal]
            keys.append(key)
        # A BREAK opens the chunk of the tag after it, so it travels with that tag; a BREAK
        # with no tag after it stays at the end.
        following = max(ranks.values(), default=0) + 1
        final: list[int] = [0] * len(keys)
        for index in range(len(keys) - 1, -1, -1):
            known = keys[index]
            if known is None:
                final[index] = following
            else:
                final[index] = following = known
        return sorted(range(len(terminals)), key=final.__getitem__)

    def home(self, terminal: str) -> int:
        """The rank an edge terminal takes when it does not lead the prompt."""
        return self._homes[terminal]

    def after(self, terminal: str) -> frozenset[str]:
        """The terminals that must come after ``terminal`` (for messages)."""
        rank = self.ranks.get(terminal)
        if rank is None:
            return frozenset()
        return frozenset(t for t, r in self.ranks.items() if r > rank)


def _ranks(
    moves: list[dict[str, int]],
) -> tuple[dict[str, int], frozenset[str], dict[str, int]]:
    """Rank terminals by what the grammar lets follow what (see the module docstring).

    Returns the ranks of the ordinary terminals, the edge terminals (ones that may come before
    and after every other terminal), and each edge terminal's home rank: the lowest rank of a
    terminal ``X`` with ``X edge X`` viable (where it may sit inside a block), else after all.
    """

    def viable(*sequence: str) -> bool:
        state = 0
        for terminal in sequence:
            found = moves[state].get(terminal)
            if found is None:
                return False
            state = found
        return True

    usable = [t for t in ORDER_TERMINALS if any(t in m for m in moves)]
    before: dict[str, set[str]] = {t: set() for t in usable}
    edges: set[str] = set()
    for first in usable:
        loose = True
        for second in usable:
            if second == first:
                continue
            forward, backward = viable(first, second), viable(second, first)
            if forward and not backward:
                before[second].add(first)
            if not (forward and backward):
                loose = False
        if loose:
            edges.add(first)
    ranks = {t: len(before[t] - edges) for t in usable if t not in edges}
    top = max(ranks.values(), default=0) + 1
    homes = {
        edge: min((ranks[x] for x in ranks if viable(x, edge, x)), default=top) for edge in edges
    }
    return ranks, frozenset(edges), homes


def order_grammar_file(version: ModelVersion) -> Path:
    """The order grammar of ``version``."""
    return _GRAMMARS / f"{version.name}.lark"


def order_table_file(version: ModelVersion) -> Path:
    """The automaton compiled from :func:`order_grammar_file` by ``tools/build_order_tables.py``."""
    return _GRAMMARS / f"{version.name}.states.json"


@functools.cache
def order_rules(version: ModelVersion) -> OrderRules:
    """The compiled order grammar of ``version``.

    The automaton is read from :func:`order_table_file` when that file was compiled from the
    grammar as it is now (its ``grammar_sha256`` matches), which keeps Lark out of a first parse;
    otherwise it is compiled from the grammar here. A test keeps the shipped tables in step.
    """
    source = order_grammar_file(version).read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    try:
        table = json.loads(order_table_file(version).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        table = None
    if isinstance(table, dict) and table.get("grammar_sha256") == digest:
        moves = [dict(state) for state in table["moves"]]
        accepting = frozenset(table["accepting"])
    else:
        moves, accepting = compile_order_grammar(source.decode("utf-8"))
    return OrderRules(version.name, moves, accepting)


def compile_order_grammar(source: str) -> tuple[list[dict[str, int]], frozenset[int]]:
    """Explore the LALR parser of an order grammar: its states and moves, from the start.

    State 0 is the start; a state is the parser's whole state stack, so two states are the same
    only when every later input is treated the same.
    """
    import lark  # noqa: PLC0415 (only when the shipped table is out of date, and in tests)

    parser = lark.Lark(source, parser="lalr", lexer="basic")
    start = parser.parse_interactive("")
    states: dict[tuple[int, ...], int] = {tuple(start.parser_state.state_stack): 0}
    pending = [start]
    moves: list[dict[str, int]] = [{}]
    accepting: set[int] = set()
    while pending:
        current = pending.pop(0)
        number = states[tuple(current.parser_state.state_stack)]
        choices: set[str] = current.accepts()  # type: ignore[no-untyped-call]
        if _END in choices:
            accepting.add(number)
        for terminal in sorted(choices - {_END}):
            following = current.copy()  # type: ignore[no-untyped-call]
            following.feed_token(lark.Token(terminal, terminal))
            key = tuple(following.parser_state.state_stack)
            target = states.get(key)
            if target is None:
                if len(states) >= _MAX_STATES:  # pragma: no cover - a grammar bug
                    raise RuntimeError("an order grammar must be finite-state")
                target = states[key] = len(moves)
                moves.append({})
                pending.append(following)
            moves[number][terminal] = target
    return _minimal(moves, frozenset(accepting))


def _minimal(
    moves: list[dict[str, int]], accepting: frozenset[int]
) -> tuple[list[dict[str, int]], frozenset[int]]:
    """The same automaton with equivalent states merged (Moore's partition refinement).

    The parser's stacks tell apart states that accept exactly the same continuations; merging
    them leaves a handful of states, which is what checking an order walks through.
    """
    terminals = sorted({t for state in moves for t in state})
    block = [1 if state in accepting else 0 for state in range(len(moves))]
    while True:
        signatures = [
            (block[s], *(block[moves[s][t]] if t in moves[s] else -1 for t in terminals))
            for s in range(len(moves))
        ]
        numbering: dict[tuple[int, ...], int] = {}
        refined = [numbering.setdefault(sig, len(numbering)) for sig in signatures]
        if len(numbering) == len(set(block)):
            break
        block = refined
    # Number the merged states in the order they are reached from the start (state 0 stays 0).
    order: dict[int, int] = {}
    pending = [0]
    while pending:
        state = pending.pop(0)
        if block[state] in order:
            continue
        order[block[state]] = len(order)
        pending.extend(moves[state][t] for t in terminals if t in moves[state])
    merged: list[dict[str, int]] = [{} for _ in order]
    for state, targets in enumerate(moves):
        if block[state] in order:
            merged[order[block[state]]] = {t: order[block[s]] for t, s in targets.items()}
    return merged, frozenset(order[block[s]] for s in accepting if block[s] in order)
