"""The prompt core: tags, the syntax, each version's vocabulary, the tag database, lint.

Needs only ``attrs`` and ``lark``. Imports nothing of animagine but the foundation
(:mod:`animagine.errors`).

Besides what :mod:`animagine` re-exports, this is the public API of the prompt core's parts:
:func:`parse_tags` and :class:`ParsedTag` (the syntax alone, with source positions),
:data:`TERMINALS` (the grammar's terminal patterns), :data:`MAX_PROMPT_CHARS` (the prompt size
limit), :data:`CODES` (the lint codes), :func:`normalize_name` (how tag names are normalised) and
:data:`DEFAULT_TAGDB_FILE` (the shipped tag database file).
"""

from __future__ import annotations

from animagine.core._grammar import MAX_PROMPT_CHARS, TERMINALS, ParsedTag, parse_tags
from animagine.core._lint import CODES, Diagnostic, apply_fixes, lint
from animagine.core._prompt import Prompt, convert, parse
from animagine.core._tag import BREAK, Tag, normalize_name
from animagine.core._tagdb import DEFAULT_TAGDB_FILE, TagDatabase
from animagine.core._vocab import (
    VERSIONS,
    WEIGHT_FILE_SUFFIXES,
    GenerationDefaults,
    ModelVersion,
    get_version,
)

__all__ = [
    "BREAK",
    "CODES",
    "DEFAULT_TAGDB_FILE",
    "MAX_PROMPT_CHARS",
    "TERMINALS",
    "VERSIONS",
    "WEIGHT_FILE_SUFFIXES",
    "Diagnostic",
    "GenerationDefaults",
    "ModelVersion",
    "ParsedTag",
    "Prompt",
    "Tag",
    "TagDatabase",
    "apply_fixes",
    "convert",
    "get_version",
    "lint",
    "normalize_name",
    "parse",
    "parse_tags",
]
