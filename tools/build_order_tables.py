"""Compile each version's order grammar into the automaton animagine ships beside it.

``animagine/core/grammar/order/<version>.lark`` defines a version's tag order. Reading it needs
Lark and an LALR table build, which would cost a first ``Prompt.parse`` tens of milliseconds, so
the parser's states and moves are explored once here and written to
``<version>.states.json`` with the SHA-256 of the grammar they came from. At run time animagine
uses the table only while that digest matches the grammar (otherwise it compiles the grammar
itself), and ``tests/test_order.py`` fails when a table is out of date.

Usage, from the repository root, after editing an order grammar::

    python tools/build_order_tables.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from animagine.core import (  # noqa: E402 (needs the path above)
    VERSIONS,
    compile_order_grammar,
    order_grammar_file,
    order_table_file,
)
from animagine.files import write_atomic  # noqa: E402


def table_text(source: bytes) -> str:
    """The JSON text of the compiled automaton of one grammar."""
    moves, accepting = compile_order_grammar(source.decode("utf-8"))
    data = {
        "grammar_sha256": hashlib.sha256(source).hexdigest(),
        "accepting": sorted(accepting),
        "moves": [sorted(state.items()) for state in moves],
    }
    return json.dumps(data, separators=(",", ":")) + "\n"


def main() -> int:
    for version in VERSIONS:
        text = table_text(order_grammar_file(version).read_bytes())
        write_atomic(order_table_file(version), text)
        print(f"{order_table_file(version).relative_to(ROOT)}: {len(text)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
