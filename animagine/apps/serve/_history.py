"""The history of every generation the server made: an SQLite file that survives a restart.

One row per image: its PNG (with the metadata every image carries), its parameters as our JSON
and as A1111's infotext, when it was made and whether it is a favourite. A second table holds the
image's tags (the names of its prompt's tags, as the prompt core reads them), so a search by tag
is an index lookup.

The database is the standard library's :mod:`sqlite3` in WAL mode; one connection, used under a
lock, serves the server's threads. The schema's version is SQLite's ``user_version``: a file
written by a newer animagine is refused instead of being misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from animagine.core import parse_tags
from animagine.errors import AnimagineError, InvalidArgumentError, PromptSyntaxError
from animagine.metadata import GenerationParameters

__all__ = ["SCHEMA_VERSION", "History", "HistoryEntry", "HistoryError", "default_history_path"]

#: The schema version this module writes (SQLite's ``user_version``).
SCHEMA_VERSION: Final = 1
#: The most entries one page of :meth:`History.search` returns.
MAX_PAGE: Final = 500

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL,
    seed TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    infotext TEXT NOT NULL,
    png BLOB NOT NULL,
    favourite INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS image_tags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_tags_by_tag ON image_tags(tag, image_id);
CREATE INDEX IF NOT EXISTS images_by_favourite ON images(favourite, id);
"""


class HistoryError(AnimagineError, OSError):
    """The history database cannot be opened or used (a file of a newer schema, a damaged file,
    a folder that cannot be written)."""


def default_history_path() -> Path:
    """``history.sqlite3`` in the user's data folder (``~/.local/share/animagine`` on Linux)."""
    from platformdirs import user_data_path  # noqa: PLC0415  # the app extra, on first use

    return user_data_path("animagine", appauthor=False) / "history.sqlite3"


@attrs.frozen
class HistoryEntry:
    """One image of the history.

    Attributes:
        id: Its number in the history (grows with time).
        created: When it was made (seconds since the epoch).
        parameters: How it was made.
        favourite: Marked as a favourite.
    """

    id: int
    created: float
    parameters: GenerationParameters
    favourite: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON object: ``id``, ``created``, ``favourite``, ``parameters`` (our JSON) and
        ``infotext`` (A1111's text)."""
        return {
            "id": self.id,
            "created": self.created,
            "favourite": self.favourite,
            "parameters": self.parameters.to_json(),
            "infotext": self.parameters.to_infotext(),
        }


def tag_keys(text: str) -> list[str]:
    """The search keys of a prompt or a query: its tag names, lower case, each once, in order.

    Text that does not read as a prompt is split at commas instead, so a search never fails on
    a stray bracket.
    """
    try:
        names: Iterable[str] = (item.tag.name for item in parse_tags(text))
    except PromptSyntaxError:
        names = (" ".join(part.replace("_", " ").split()) for part in text.split(","))
    keys: dict[str, None] = {}
    for name in names:
        key = name.strip().lower()
        if key:
            keys[key] = None
    return list(keys)


class History:
    """The generations of a server, in an SQLite file (or in memory with ``":memory:"``).

    Args:
        path: The database file; its folder is created. ``":memory:"`` keeps the history for
            the life of this object only (tests, ``--no-history``).

    Raises:
        HistoryError: the file cannot be opened, is not an SQLite database, or was written by a
            newer schema.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.Lock()
        target = os.fspath(path)
        self.path: Path | None = None if target == ":memory:" else Path(target)
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"cannot open the history database {target}: {error}") from None
        try:
            self._setup()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise HistoryError(f"{target} is not a history database: {error}") from None
        except HistoryError:
            self._db.close()
            raise

    def _setup(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer animagine (history schema {version}; this"
                f" one reads {SCHEMA_VERSION}); upgrade animagine or pass another --history file"
            )
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database (further calls fail)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def add(self, png: bytes, parameters: GenerationParameters) -> int:
        """Record one image (its PNG bytes, metadata included) and return its id."""
        if not isinstance(png, bytes) or not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise InvalidArgumentError("png must be the bytes of a PNG file")
        keys = tag_keys(parameters.prompt)
        row = (
            time.time(),
            parameters.prompt,
            parameters.negative_prompt,
            str(parameters.seed),
            parameters.width,
            parameters.height,
            json.dumps(parameters.to_json(), ensure_ascii=False, separators=(",", ":")),
            parameters.to_infotext(),
            png,
        )
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "INSERT INTO images (created, prompt, negative_prompt, seed, width, height,"
                " parameters, infotext, png) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            image_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO image_tags (image_id, tag) VALUES (?, ?)",
                [(image_id, key) for key in keys],
            )
        return image_id

    def set_favourite(self, image_id: int, favourite: bool = True) -> bool:
        """Mark (or unmark) an image as a favourite; False when there is no such image."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE images SET favourite = ? WHERE id = ?", (int(bool(favourite)), image_id)
            )
        return cursor.rowcount > 0

    def delete(self, image_id: int) -> bool:
        """Remove an image; False when there is no such image."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        return cursor.rowcount > 0

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM images").fetchone()[0])

    def get(self, image_id: int) -> HistoryEntry | None:
        """The entry ``image_id``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, created, parameters, favourite FROM images WHERE id = ?", (image_id,)
            ).fetchone()
        return None if row is None else _entry(row)

    def png(self, image_id: int) -> bytes | None:
        """The PNG bytes of image ``image_id``, or None."""
        with self._lock:
            row = self._db.execute("SELECT png FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def search(
        self,
        query: str = "",
        *,
        favourites: bool = False,
        before: int | None = None,
        limit: int = 50,
    ) -> list[HistoryEntry]:
        """The newest entries first: those whose prompt has every tag of ``query``.

        Args:
            query: Tags, comma-separated as in a prompt (``"1girl, smile"``); case and
                underscores do not matter. Empty: every entry.
            favourites: Only favourites.
            before: Only entries with a smaller id (the next page after the last id seen).
            limit: At most this many, 1 to :data:`MAX_PAGE`.

        Raises:
            InvalidArgumentError: ``limit`` out of range.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidArgumentError(f"limit must be an integer from 1 to {MAX_PAGE}")
        keys = tag_keys(query) if query.strip() else []
        clauses: list[str] = []
        arguments: list[object] = []
        for key in keys:
            clauses.append("id IN (SELECT image_id FROM image_tags WHERE tag = ?)")
            arguments.append(key)
        if favourites:
            clauses.append("favourite = 1")
        if before is not None:
            clauses.append("id < ?")
            arguments.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, created, parameters, favourite FROM images {where}"
                " ORDER BY id DESC LIMIT ?",
                [*arguments, limit],
            ).fetchall()
        return [_entry(row) for row in rows]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")


def _entry(row: Sequence[Any]) -> HistoryEntry:
    return HistoryEntry(
        id=int(row[0]),
        created=float(row[1]),
        parameters=GenerationParameters.from_json(json.loads(row[2])),
        favourite=bool(row[3]),
    )
