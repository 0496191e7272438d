"""Griffe extension for the docs build: render the Sphinx roles animagine's docstrings use.

The package's docstrings are Google style but refer to other objects with Sphinx roles
(``:class:`Tag```, ``:meth:`parse```, ``:func:`~animagine.lint```), and show code after a
paragraph ending in ``::``. mkdocstrings reads Markdown, so without this both would appear
literally. This extension rewrites each docstring before it is rendered:

* a role becomes inline code wrapped in an *optional* autorefs cross-reference: it links to the
  object when the object is documented on the site, and stays plain code otherwise (a private
  helper, ``attrs.evolve``), so it can never break ``mkdocs build --strict``;
* a paragraph ending in ``::`` ends in ``:`` instead (the indented block after it is already a
  Markdown code block);
* a module attribute documented Sphinx-style, with ``#:`` comment lines just above it
  (``BREAK``), gets those lines as its docstring.

Loaded from mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``). It touches
the docs build only, never the package.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|func|meth|data|attr|mod|exc|obj|const):`(~?)([^`<>]+)`")
_LITERAL_MARKER = re.compile(r"(\S)::[ \t]*$", re.MULTILINE)
_CALLABLE_ROLES = frozenset({"func", "meth"})


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` refers to from ``obj``'s docstring, or None when unknown."""
    head, _, rest = name.partition(".")
    if head == obj.package.name:
        return name
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            resolved = scope.resolve(head)
        except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
            scope = scope.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return None


def _rewrite(obj: griffe.Object, text: str) -> str:
    def role(match: re.Match[str]) -> str:
        kind, short, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        if kind in _CALLABLE_ROLES:
            shown += "()"
        code = f"<code>{html.escape(shown)}</code>"
        target = _target(obj, name)
        if target is None:
            return code
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    text = _ROLE.sub(role, text)
    return _LITERAL_MARKER.sub(r"\1:", text)


def _comment_docstring(obj: griffe.Object) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above an attribute, as a docstring, or None."""
    if obj.lineno is None or obj.parent is None:
        return None
    lines = obj.parent.lines if obj.parent.is_module else obj.module.lines
    found: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        found.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    if not found:
        return None
    return griffe.Docstring("\n".join(found), lineno=index + 2, parent=obj)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` literal markers in every docstring of a package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is None and obj.is_attribute:
            obj.docstring = _comment_docstring(obj)
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
