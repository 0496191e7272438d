"""The prompt core: tags, the syntax, each version's vocabulary, the tag database, lint.

Needs only ``attrs`` and ``lark``. Imports nothing of animagine but the foundation
(:mod:`animagine.errors`, :mod:`animagine.limits`).
"""

from __future__ import annotations

from animagine.core._grammar import ParsedTag, parse_tags
from animagine.core._lint import Diagnostic, apply_fixes, lint
from animagine.core._prompt import Prompt, convert, parse
from animagine.core._tag import BREAK, Tag
from animagine.core._tagdb import TagDatabase
from animagine.core._vocab import VERSIONS, GenerationDefaults, ModelVersion, get_version

__all__ = [
    "BREAK",
    "VERSIONS",
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
    "parse",
    "parse_tags",
]
