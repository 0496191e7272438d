"""The prompt core: tags, the syntax, each version's vocabulary, the tag database, lint.

Needs only ``attrs`` and ``lark``. Imports nothing of animagine but the foundation
(:mod:`animagine.errors`).

Besides what :mod:`animagine` re-exports, this is the public API of the prompt core's parts:
:func:`parse_tags` and :class:`ParsedTag` (the syntax alone, with source positions),
:data:`TERMINALS` (the grammar's terminal patterns), :data:`MAX_PROMPT_CHARS` (the prompt size
limit), :data:`CODES` (the lint codes), :func:`normalize_name` (how tag names are normalised) and
:data:`DEFAULT_TAGDB_FILE` (the shipped tag database file), and each version's order grammar:
:func:`order_rules` (compiled), :class:`OrderRules`, :data:`ORDER_TERMINALS`,
:func:`order_grammar_file`, :func:`order_table_file` and :func:`compile_order_grammar`; the
demos' presets (:func:`presets_for`, :class:`PresetTable`, :class:`Preset`) and prompt templates
with variants and wildcards (:class:`Template`, :class:`WildcardFolder`, :func:`expand`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from animagine.core._grammar import MAX_PROMPT_CHARS, TERMINALS, ParsedTag, parse_tags, render_tags
from animagine.core._lint import CODES, Diagnostic, Diagnostics, Edit, apply_fixes, lint
from animagine.core._order import (
    ORDER_TERMINALS,
    OrderRules,
    compile_order_grammar,
    order_grammar_file,
    order_rules,
    order_table_file,
)
from animagine.core._prompt import Prompt, convert, parse
from animagine.core._tag import BREAK, Tag, normalize_name
from animagine.core._tagdb import DEFAULT_TAGDB_FILE, TagDatabase, TagMatch
from animagine.core._tagdb import FORMAT as TAGDB_FORMAT
from animagine.core._tagdb import Category as TagCategory
from animagine.core._tagdb import format_lines as format_tagdb_lines
from animagine.core._vocab import (
    VERSIONS,
    WEIGHT_FILE_SUFFIXES,
    GenerationDefaults,
    ModelVersion,
    get_version,
)

if TYPE_CHECKING:  # imported on first use, see __getattr__: parsing a prompt needs neither
    from animagine.core._presets import PRESET_FILE_SUFFIXES, Preset, PresetTable, presets_for
    from animagine.core._wildcards import (
        DEFAULT_SEPARATOR,
        MAX_DEPTH,
        WILDCARD_MODES,
        Template,
        WildcardFolder,
        expand,
    )

__all__ = [
    "BREAK",
    "CODES",
    "DEFAULT_SEPARATOR",
    "DEFAULT_TAGDB_FILE",
    "MAX_DEPTH",
    "MAX_PROMPT_CHARS",
    "ORDER_TERMINALS",
    "PRESET_FILE_SUFFIXES",
    "TAGDB_FORMAT",
    "TERMINALS",
    "VERSIONS",
    "WEIGHT_FILE_SUFFIXES",
    "WILDCARD_MODES",
    "Diagnostic",
    "Diagnostics",
    "Edit",
    "GenerationDefaults",
    "ModelVersion",
    "OrderRules",
    "ParsedTag",
    "Preset",
    "PresetTable",
    "Prompt",
    "Tag",
    "TagCategory",
    "TagDatabase",
    "TagMatch",
    "Template",
    "WildcardFolder",
    "apply_fixes",
    "compile_order_grammar",
    "convert",
    "expand",
    "format_tagdb_lines",
    "get_version",
    "lint",
    "normalize_name",
    "order_grammar_file",
    "order_rules",
    "order_table_file",
    "parse",
    "parse_tags",
    "presets_for",
    "render_tags",
]

_PRESETS = ("PRESET_FILE_SUFFIXES", "Preset", "PresetTable", "presets_for")
_WILDCARDS = (
    "DEFAULT_SEPARATOR", "MAX_DEPTH", "WILDCARD_MODES", "Template", "WildcardFolder", "expand",
)  # fmt: skip
_LAZY = {
    **dict.fromkeys(_PRESETS, "animagine.core._presets"),
    **dict.fromkeys(_WILDCARDS, "animagine.core._wildcards"),
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'animagine.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
