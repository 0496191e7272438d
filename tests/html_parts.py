"""Reading the HTML that objects show in notebooks, for the tests that check it."""

from __future__ import annotations

from html.parser import HTMLParser


class Parsed(HTMLParser):
    """Start tags (name, attributes) and, per span, its attributes and the text inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, dict[str, str]]] = []
        self.spans: list[tuple[dict[str, str], str]] = []
        self.cells: list[list[str]] = []
        self._open: list[tuple[dict[str, str], list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.starts.append((tag, attributes))
        if tag == "span":
            self._open.append((attributes, []))
        elif tag == "tr":
            self.cells.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            attributes, text = self._open.pop()
            self.spans.append((attributes, "".join(text)))
            if self._open:
                self._open[-1][1].extend(text)
        elif tag in ("td", "th") and self._cell is not None:
            self.cells[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1].append(data)
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> Parsed:
    """The start tags, spans and table cells of ``html``."""
    parser = Parsed()
    parser.feed(html)
    parser.close()
    return parser
