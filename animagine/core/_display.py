"""HTML for notebooks: a prompt's tags coloured by slot, and lint findings as a table.

Jupyter shows an object through its ``_repr_html_``; :class:`Prompt`, :class:`Diagnostic` and
:class:`Diagnostics` call the builders here. Everything that comes from the user (tag names,
messages quoting them, fixes) goes through :func:`html.escape`. The colours are translucent
tints with a solid border and the text colour left to the theme, so the same HTML reads on a
light or a dark notebook.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Final

from animagine.core._tag import Tag, format_weight

if TYPE_CHECKING:
    from animagine.core._classify import Slot
    from animagine.core._lint import Diagnostic, Edit
    from animagine.core._vocab import ModelVersion

__all__ = ["SLOT_COLOURS", "diagnostic_html", "diagnostics_html", "prompt_html"]

#: The colour (red, green, blue) of each slot, as tags are drawn with it.
SLOT_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "subject": (59, 130, 246),  # blue
    "character": (168, 85, 247),  # purple
    "series": (20, 184, 166),  # teal
    "rating": (239, 68, 68),  # red
    "general": (100, 116, 139),  # slate
    "year": (245, 158, 11),  # amber
    "quality": (34, 197, 94),  # green
    "break": (148, 163, 184),  # grey, drawn dashed
}
_SEVERITY_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "error": (239, 68, 68),
    "warning": (245, 158, 11),
    "info": (59, 130, 246),
}
_FALLBACK: Final = (148, 163, 184)
_CELL: Final = "padding:2px 8px;text-align:left;vertical-align:top;"
_TABLE: Final = "border-collapse:collapse;font-size:0.9em;margin-top:6px;"
_NOTE: Final = "font-size:0.85em;opacity:0.75;"


def _chip(rgb: tuple[int, int, int], *, dashed: bool = False) -> str:
    """Inline style of a tinted chip: readable whatever the theme's text colour."""
    red, green, blue = rgb
    border = "dashed" if dashed else "solid"
    return (
        f"display:inline-block;margin:2px 3px 2px 0;padding:0 6px;border-radius:4px;"
        f"border:1px {border} rgba({red},{green},{blue},0.85);"
        f"background:rgba({red},{green},{blue},{0.05 if dashed else 0.18});color:inherit;"
    )


def _weight_html(weight: float) -> str:
    return f'<span style="{_NOTE}">:{escape(format_weight(weight))}</span>'


def _tag_html(tag: Tag, slot: Slot) -> str:
    if tag.parts:  # inner emphasis: each piece with its own weight
        pieces = "".join(
            escape(text) if weight == 1.0 else f"<u>{escape(text)}</u>{_weight_html(weight)}"
            for text, weight in tag.parts
        )
        weights = ", ".join(format_weight(weight) for _, weight in tag.parts)
        title = f"{slot}, weights {weights}"
    else:
        pieces = escape(tag.name)
        if tag.weight != 1.0:
            pieces += _weight_html(tag.weight)
            title = f"{slot}, weight {format_weight(tag.weight)}"
        else:
            title = slot
    style = _chip(SLOT_COLOURS.get(slot, _FALLBACK), dashed=slot == "break")
    return (
        f'<span class="animagine-tag animagine-slot-{escape(slot)}" title="{escape(title)}" '
        f'style="{style}">{pieces}</span>'
    )


def _legend(slots: Iterable[str]) -> str:
    present = set(slots)
    items = "".join(
        f'<span style="{_chip(SLOT_COLOURS.get(slot, _FALLBACK), dashed=slot == "break")}">'
        f"{escape(slot)}</span>"
        for slot in SLOT_COLOURS
        if slot in present
    )
    return f'<div class="animagine-legend" style="{_NOTE}margin-top:4px;">{items}</div>'


def prompt_html(
    version: ModelVersion,
    tags: Sequence[Tag],
    slots: Sequence[Slot],
    text: str,
    findings: Sequence[Diagnostic] | None,
) -> str:
    """A prompt as HTML: its tags in order coloured by slot, a legend, and its lint findings.

    ``findings`` are those of lint on ``text`` (the prompt's text); None when it was not
    linted (a text over the prompt size limit).
    """
    chips = "".join(_tag_html(tag, slot) for tag, slot in zip(tags, slots, strict=True))
    count = sum(1 for slot in slots if slot != "break")
    noun = "tag" if count == 1 else "tags"
    header = f'<div style="{_NOTE}">{escape(version.title)} prompt, {count} {noun}</div>'
    body = chips or f'<span style="{_NOTE}">(no tags)</span>'
    if findings is None:
        report = f'<div style="{_NOTE}">Too long to lint.</div>'
    elif not findings:
        report = f'<div style="{_NOTE}margin-top:4px;">No lint findings.</div>'
    else:
        report = _table(findings, text)
    return (
        f'<div class="animagine-prompt">{header}'
        f'<div style="line-height:1.9;">{body}</div>{_legend(slots)}{report}</div>'
    )


def diagnostics_html(diagnostics: Sequence[Diagnostic], text: str | None) -> str:
    """Lint findings as a table; ``text`` is the linted text (None: positions as offsets)."""
    if not diagnostics:
        return f'<div class="animagine-diagnostics" style="{_NOTE}">No lint findings.</div>'
    return _table(diagnostics, text)


def diagnostic_html(diagnostic: Diagnostic) -> str:
    """One finding as a one-row table (without its text, the place is a character offset)."""
    return _table([diagnostic], None)


def _table(diagnostics: Sequence[Diagnostic], text: str | None) -> str:
    head_cells = ["line:column" if text is not None else "span", "severity", "code"]
    if text is not None:
        head_cells.append("tag")
    head_cells += ["message", "fix"]
    head = "".join(
        f'<th style="{_CELL}border-bottom:1px solid rgba(128,128,128,0.5);">{name}</th>'
        for name in head_cells
    )
    rows = "".join(_row(diagnostic, text) for diagnostic in diagnostics)
    return (
        f'<table class="animagine-diagnostics" style="{_TABLE}">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _row(diagnostic: Diagnostic, text: str | None) -> str:
    if text is not None:
        line, column = diagnostic.position(text)
        where = f"{line}:{column}"
    else:
        where = f"{diagnostic.start}-{diagnostic.end}"
    colour = _SEVERITY_COLOURS.get(diagnostic.severity, _FALLBACK)
    cells = [
        escape(where),
        f'<span style="{_chip(colour)}">{escape(diagnostic.severity)}</span>',
        f"<code>{escape(diagnostic.code)}</code>",
    ]
    if text is not None:
        cells.append(f"<code>{escape(text[diagnostic.start : diagnostic.end])}</code>")
    cells += [escape(diagnostic.message), _fix_html(diagnostic.fix, text)]
    tds = "".join(f'<td style="{_CELL}">{cell}</td>' for cell in cells)
    return (
        f'<tr class="animagine-{escape(diagnostic.severity)}" '
        f'data-code="{escape(diagnostic.code)}">{tds}</tr>'
    )


def _fix_html(fix: Sequence[Edit], text: str | None) -> str:
    """Each edit of a fix as text: ``old → new``, ``delete old``, ``insert new``."""
    parts: list[str] = []
    for edit in fix:
        new = f"<code>{escape(edit.replacement)}</code>"
        if text is None or not 0 <= edit.start <= edit.end <= len(text):
            parts.append(f"{edit.start}-{edit.end} \u2192 {new}")
            continue
        old = f"<code>{escape(text[edit.start : edit.end])}</code>"
        if not edit.replacement:
            parts.append(f"delete {old}")
        elif edit.start == edit.end:
            parts.append(f"insert {new}")
        else:
            parts.append(f"{old} \u2192 {new}")
    return "; ".join(parts)
