"""Normalise a folder of training captions into a model version's tag order, keeping them data.

The layout is kohya sd-scripts': one ``.txt`` caption beside each training image, holding
comma-separated Danbooru tags. A caption is data, not a prompt: each comma-separated item is one
literal tag name, so ``jeanne_d'arc_alter_(avenger)_(fate)`` is one tag whose brackets are part of
its name, nothing is emphasis or a weight, and a stray bracket is text. A trainer reading captions
literally (kohya's default) learns exactly what the file says, so the text is written the way the
trainer reads it: literal by default, escaped with ``escape=True`` for trainers that parse
weights in captions (kohya's ``--weighted_captions``).

What normalising does to a caption, and nothing else (:func:`normalise_caption` has the exact
rules):

- its tags are put in the version's canonical order (the prompt core's
  :meth:`~animagine.core.Prompt.from_tags`), keeping their relative order otherwise;
- names are spelled with spaces (``long_hair`` is ``long hair``; emoticons such as ``^_^`` keep
  their underscores), or with underscores everywhere with ``underscores=True``;
- empty items are dropped, and the items are joined with ``", "``;
- with ``canonical=True``, a character or series alias becomes the tag it stands for;
- kohya's keep-tokens separator ``|||`` stays where it is, each side ordered on its own; with
  ``separator=True`` a caption without one gets one after its identity tags (subjects,
  characters, series).

Each line of a file is a caption of its own (kohya trains on the first line, or on one line
picked at random with ``--enable_wildcard``): lines are never joined, and line breaks, a trailing
newline and a UTF-8 byte order mark are kept as they were.

Files are rewritten in place, each one atomically with :func:`animagine.files.write_atomic`: the
new text goes to a temporary file in the same folder, which takes the old file's permission bits
and is then moved over it with :func:`os.replace`, so a reader sees the old caption or the new
one, never half of one. A file that cannot be normalised is left untouched and reported. Nothing
here prints; the CLI does.

Only regular files of the dataset are rewritten. A symlink is left alone (:class:`CaptionSkip`)
unless ``follow_symlinks`` is set, and even then only when the file it points to is inside the
caption's folder; a file reached through a symlinked folder that leads outside is left alone
too. A file nobody may write (no write bit, ``0444``) or this user may not write is read-only
by intent and left alone, and FIFOs, devices and sockets are never opened. A run that was killed
may have left its temporary files (hidden, never taken for captions); the next run that writes
removes the ones beside the captions it is given, and no other file.

With ``jobs`` above 1 the work is shared by worker processes. On Linux each worker asks the
kernel to send it ``SIGTERM`` when the process that started it dies, so killing a run (even with
``SIGKILL``) leaves no workers behind; elsewhere the workers finish their current chunk and find
their queue gone.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import multiprocessing
import os
import re
import signal
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from animagine.core import MAX_PROMPT_CHARS, ModelVersion, Prompt, Tag, get_version
from animagine.errors import (
    AnimagineError,
    InvalidArgumentError,
    MissingFileError,
    PromptSyntaxError,
    PromptTooLongError,
    WrongTypeError,
)
from animagine.files import is_temporary, temporary_name, write_atomic

__all__ = [
    "SEPARATOR",
    "CaptionFailure",
    "CaptionReport",
    "CaptionSkip",
    "CaptionStyle",
    "find_captions",
    "normalise_caption",
    "normalise_captions",
]

#: kohya sd-scripts' usual ``keep_tokens_separator``: the tags before it are never shuffled or
#: dropped (Animagine XL 3.0 was trained with it); a second one fixes the tags after it at the end.
SEPARATOR: Final = "|||"

_BOM: Final = "\ufeff"
_LINE_BREAK: Final = re.compile(r"(\r\n|\r|\n)")
# Escaped captions use A1111's escapes, the ones kohya's weighted captions read: a backslash
# before each of these characters. Nothing else is escaped (keywords mean nothing to a trainer).
_ESCAPABLE: Final = frozenset("\\()[]")
_BRACKETS: Final = frozenset("()[]")
_ESCAPE: Final = re.compile(r"([\\()\[\]])")
_ESCAPE_PAIR: Final = re.compile(r"\\([\\()\[\]])")
# What kohya's keep-tokens separator keeps in place: who the image shows.
_IDENTITY_SLOTS: Final = frozenset({"subject", "character", "series"})
# Chunks handed to one worker at a time: big enough that pickling and queueing cost little
# per caption, small enough that the workers finish together.
_MAX_CHUNK: Final = 256

Outcome = Literal["unchanged", "changed", "failed", "skipped"]
# One file to do: the path as given, and the real path of the folder it must stay inside.
_Job = tuple[Path, str]
# How temporary names mark themselves (animagine.files): ``.{name}.animagine-{hex}.tmp``.
_TEMPORARY_MARK: Final = ".animagine-"


def _is_bool(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise WrongTypeError(
            f"{attribute.name} must be a bool, got {type(value).__name__}: {value!r}"
        )


def _flag(help_text: str) -> Any:
    """A boolean option of :class:`CaptionStyle`; its help text is the CLI flag's."""
    return attrs.field(
        default=False, kw_only=True, validator=_is_bool, metadata={"help": help_text}
    )


def _version_name(value: Any) -> str:
    return get_version(value).name


@attrs.frozen
class CaptionStyle:
    """How captions are ordered and written: one record for the functions, workers and CLI.

    Each boolean field is a flag of ``animagine captions`` (``--underscores`` and so on), with
    the help text in its ``metadata``.

    Attributes:
        version: The model version whose tag order to use (its name, ``"v4"``).
        underscores: Write names as Danbooru spells them, ``long_hair`` (every space an
            underscore) instead of ``long hair``.
        escape: Write a backslash before each ``\\ ( ) [ ]`` of a name,
            ``hu tao \\(genshin impact\\)``, for trainers that parse weights in captions.
        separator: Insert :data:`SEPARATOR` after the identity tags (subjects, characters,
            series) of a caption that has none.
        canonical: Replace each Danbooru alias the tag database knows (an old name, such as
            ``agir (azur lane)``) with the tag it stands for (``aegir (azur lane)``), as
            :meth:`Prompt.resolve_aliases <animagine.core.Prompt.resolve_aliases>` does.

    Raises:
        UnknownVersionError: unknown ``version``.
        WrongTypeError: a flag that is not a bool (a ``TypeError``).
    """

    version: str = attrs.field(default="v4", converter=_version_name)
    underscores: bool = _flag(
        "write Danbooru underscores (long_hair) instead of spaces (long hair)"
    )
    escape: bool = _flag(
        "escape brackets (hu tao \\(genshin impact\\)) for trainers that parse weights in "
        "captions (kohya --weighted_captions); default: literal, as kohya reads captions"
    )
    separator: bool = _flag(
        f"insert kohya's keep-tokens separator {SEPARATOR} after the identity tags (subjects, "
        "characters, series) of captions that have none"
    )
    canonical: bool = _flag(
        "replace Danbooru aliases (old names, such as agir_(azur_lane)) with the tags they "
        "stand for"
    )

    @classmethod
    def flags(cls) -> tuple[str, ...]:
        """The names of the boolean options, in the order the CLI lists them."""
        return tuple(field.name for field in attrs.fields(cls) if "help" in field.metadata)


@attrs.frozen
class CaptionFailure:
    """A caption file that was left untouched because it could not be read or normalised.

    Attributes:
        path: The file.
        kind: ``"caption"`` (an item that cannot be a tag, or a caption over the size limit;
            see :func:`normalise_caption`) or ``"read"`` / ``"write"`` (an I/O or decoding
            error).
        message: What went wrong, for people.
        line: 1-based line of the item at fault, else None.
        column: 1-based column of the item at fault, else None.
    """

    path: Path
    kind: Literal["caption", "read", "write"]
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is not None and self.column is not None:
            return f"{self.path}:{self.line}:{self.column}: {self.kind} {self.message}"
        return f"{self.path}: {self.kind} {self.message}"


SkipReason = Literal["symlink", "outside", "read-only", "special"]


@attrs.frozen
class CaptionSkip:
    """A file left alone on purpose: it is not a regular caption file of the folder to rewrite.

    Attributes:
        path: The file, as it was given.
        reason: ``"symlink"`` (a symlink, and ``follow_symlinks`` is off), ``"outside"`` (the
            file it stands for is outside its folder: a symlink, or a path through a
            symlinked folder, pointing out), ``"read-only"`` (no write bit at all, or not
            writable by this user) or ``"special"`` (not a regular file: a FIFO, a device, a
            socket, a folder; never opened).
        message: What the file is, for people.
    """

    path: Path
    reason: SkipReason
    message: str

    def __str__(self) -> str:
        return f"{self.path}: skipped {self.message}"


_Result = tuple[Outcome, CaptionFailure | CaptionSkip | None]


@attrs.frozen
class CaptionReport:
    """What :func:`normalise_captions` did (or, with ``check``, would do).

    Attributes:
        changed: Files whose caption was (or would be) rewritten, in input order.
        unchanged: How many files were already canonical.
        failed: Files left untouched because they could not be read, normalised or written.
        checked: True when nothing was written (``check=True``).
        skipped: Files left alone on purpose, never opened for writing: symlinks, files
            outside their folder, read-only and special files (see :class:`CaptionSkip`).
            They do not make the report fail.
        removed: Temporary files of an earlier, killed run that this run removed.
    """

    changed: tuple[Path, ...]
    unchanged: int
    failed: tuple[CaptionFailure, ...]
    checked: bool
    skipped: tuple[CaptionSkip, ...] = ()
    removed: tuple[Path, ...] = ()

    @property
    def total(self) -> int:
        """How many files were looked at (skipped ones included)."""
        return len(self.changed) + self.unchanged + len(self.failed) + len(self.skipped)

    @property
    def ok(self) -> bool:
        """No failures, and (with ``check``) nothing would change."""
        return not self.failed and not (self.checked and self.changed)


def normalise_caption(
    text: str,
    *,
    version: str | ModelVersion = "v4",
    underscores: bool = False,
    escape: bool = False,
    separator: bool = False,
    canonical: bool = False,
) -> str:
    """The normalised text of one caption file for ``version``.

    Reading. Each line is a caption of its own. A line is split at :data:`SEPARATOR` into
    parts, each part at commas into items, and each item, stripped of surrounding white space,
    is one literal tag name; empty items are dropped. Nothing in an item is syntax: brackets,
    colons, ``AND`` and ``BREAK`` are text. One exception reads back what an escaping writer
    (``escape=True``, an earlier animagine, A1111's tagger with its escape option) wrote: an
    item that has a backslash before ``\\``, ``(``, ``)``, ``[`` or ``]`` and no bracket
    without one is escaped, and each of those pairs stands for its second character
    (``hu_tao_\\(genshin_impact\\)`` is ``hu tao (genshin impact)``). Any other item is taken
    as it is, backslashes included (``\\m/``, ``\\(^o^)/``). The name is then normalised as
    :func:`animagine.core.normalize_name` does: underscores become spaces (not in emoticons),
    runs of white space one space.

    Ordering. The tags of each part are put in ``version``'s canonical order with
    :meth:`Prompt.from_tags <animagine.core.Prompt.from_tags>`, which keeps their relative order
    otherwise; duplicates are kept. With ``canonical``, each alias is then replaced with the
    tag it stands for, where it stands.

    Writing. Tags are joined with ``", "``, parts with ``" ||| "``; line breaks, the trailing
    newline and a byte order mark are kept. A name is written as it is, or with every space an
    underscore (``underscores``), or escaped (``escape``: a backslash before each ``\\ ( ) [ ]``).
    A name that would read back as escaped (it came from an escaped caption and has a backslash
    before a bracket or a backslash, but no bare bracket) is written escaped even without
    ``escape``, so that it reads back the same. With ``separator``, a line without
    :data:`SEPARATOR` that has identity tags (subjects, characters, series) is written
    ``identity ||| the rest``.

    Normalising twice changes nothing the second time.

    Args:
        text: The file's text.
        version: The model version whose order to use.
        underscores, escape, separator, canonical: See :class:`CaptionStyle`.

    Raises:
        PromptSyntaxError: an item cannot be a tag (positions refer to ``text``, byte order mark
            included); :class:`~animagine.errors.PromptTooLongError` when the caption is longer
            than :data:`~animagine.core.MAX_PROMPT_CHARS`.
        UnknownVersionError: unknown ``version``.
        WrongTypeError: ``text`` is not a str, or a flag not a bool.
    """
    if not isinstance(text, str):
        raise WrongTypeError(f"caption text must be a str, got {type(text).__name__}")
    style = CaptionStyle(
        version,
        underscores=underscores,
        escape=escape,
        separator=separator,
        canonical=canonical,
    )
    return _normalise(text, style)


def _normalise(text: str, style: CaptionStyle) -> str:
    bom = _BOM if text.startswith(_BOM) else ""
    body = text[len(bom) :]
    if len(body) > MAX_PROMPT_CHARS:
        raise PromptTooLongError(text=body, limit=MAX_PROMPT_CHARS)
    version = get_version(style.version)
    pieces: list[str] = [bom]
    offset = len(bom)
    for index, piece in enumerate(_LINE_BREAK.split(body)):
        # Even pieces are lines, odd ones the line breaks between them (kept as they are).
        pieces.append(
            _normalise_line(text, offset, piece, version, style) if index % 2 == 0 else piece
        )
        offset += len(piece)
    return "".join(pieces)


def _normalise_line(
    text: str, start: int, line: str, version: ModelVersion, style: CaptionStyle
) -> str:
    """One line of ``text`` (starting at offset ``start``), normalised."""
    if not line or line.isspace():
        return ""
    parts: list[list[Tag]] = []
    offset = start
    for part in line.split(SEPARATOR):
        parts.append(_read_tags(text, offset, part, style))
        offset += len(part) + len(SEPARATOR)
    try:
        prompts = [_arrange(tags, version, style) for tags in parts]
    except AnimagineError as error:  # the core refused the tags: report, never guess
        raise PromptSyntaxError(
            f"the caption cannot be ordered: {error}", text=text, offset=start
        ) from error
    if len(prompts) == 1 and style.separator:
        identity, rest = _split_identity(prompts[0])
        if identity:
            return _join_parts([_join(identity, style), _join(rest, style)])
    return _join_parts([_join(prompt.tags, style) for prompt in prompts])


def _read_tags(text: str, start: int, part: str, style: CaptionStyle) -> list[Tag]:
    """The tags of one comma-separated ``part`` of ``text`` that starts at offset ``start``."""
    tags: list[Tag] = []
    offset = start
    for item in part.split(","):
        name = item.strip()
        if name:
            try:
                tag = Tag(_read_name(name))
            except AnimagineError as error:
                at = offset + len(item) - len(item.lstrip())
                raise PromptSyntaxError(
                    f"{name!r} cannot be a tag: {error}", text=text, offset=at
                ) from error
            tags.append(tag)
        offset += len(item) + 1
    return tags


def _read_name(item: str) -> str:
    """An item's literal name: unescaped when it is escaped (see :func:`normalise_caption`)."""
    if "\\" not in item:
        return item
    pairs = 0
    index = 0
    end = len(item)
    while index < end:
        char = item[index]
        if char == "\\" and index + 1 < end and item[index + 1] in _ESCAPABLE:
            pairs += 1
            index += 2
            continue
        if char in _BRACKETS:
            return item  # a bare bracket: the item is literal
        index += 1
    return _ESCAPE_PAIR.sub(r"\1", item) if pairs else item


def _arrange(tags: Sequence[Tag], version: ModelVersion, style: CaptionStyle) -> Prompt:
    """The tags classified and in ``version``'s order; with ``canonical``, aliases resolved."""
    prompt = Prompt.from_tags(tags, version=version)
    return prompt.resolve_aliases() if style.canonical else prompt


def _split_identity(prompt: Prompt) -> tuple[list[Tag], list[Tag]]:
    """The prompt's tags split into identity (subjects, characters, series) and the rest.

    Both keep the canonical order; a ``BREAK`` goes with the tag before it.
    """
    left: list[Tag] = []
    right: list[Tag] = []
    side = right
    for tag, slot in zip(prompt.tags, prompt.slots, strict=True):
        if slot != "break":
            side = left if slot in _IDENTITY_SLOTS else right
        side.append(tag)
    return left, right


def _join(tags: Iterable[Tag], style: CaptionStyle) -> str:
    return ", ".join(_write(tag, style) for tag in tags)


def _write(tag: Tag, style: CaptionStyle) -> str:
    name = tag.name
    if style.escape or _read_name(name) != name:
        name = _ESCAPE.sub(r"\\\1", name)
    return name.replace(" ", "_") if style.underscores else name


def _join_parts(parts: Sequence[str]) -> str:
    """The parts of a line joined with the separator; an empty part leaves just the separator."""
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if index:
            pieces.append(SEPARATOR)
        if part:
            pieces.append(part)
    return " ".join(pieces)


def find_captions(
    roots: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    extension: str = ".txt",
) -> list[Path]:
    """The caption files in ``roots`` (folders, or files taken as they are), sorted per root.

    Hidden files and folders (``.name``) are skipped, and with them the temporary files of an
    interrupted run. Symlinked sub-folders are not entered. Every other name that ends with
    ``extension`` is listed, symlinks and special files included, so that
    :func:`normalise_captions` can report what it leaves alone; nothing is opened here.

    Raises:
        MissingFileError: a root does not exist (a ``FileNotFoundError``).
        InvalidArgumentError: ``extension`` does not look like ``.txt`` (a ``ValueError``).
        WrongTypeError: ``roots`` is not an iterable of paths, or ``extension`` not a str.
    """
    if not isinstance(extension, str):
        raise WrongTypeError(f"extension must be a str, got {type(extension).__name__}")
    if not extension.startswith(".") or len(extension) < 2 or any(c in extension for c in "/\\*?["):
        raise InvalidArgumentError(f"extension must look like '.txt', got {extension!r}")
    found: list[Path] = []
    for root in _paths("roots", roots):
        path = Path(root)
        if path.is_dir():  # a root that is a symlink to a folder was named: it is entered
            found.extend(sorted(_walk(path, extension, recursive)))
        elif os.path.lexists(path):
            found.append(path)
        else:
            raise MissingFileError.from_path(path)
    return found


def _walk(folder: Path, extension: str, recursive: bool) -> Iterator[Path]:
    """The names in ``folder`` ending with ``extension``, not hidden, that are not folders."""
    with os.scandir(folder) as entries:
        listed = list(entries)
    for entry in listed:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                yield from _walk(folder / entry.name, extension, recursive)
        elif entry.name.endswith(extension):
            yield folder / entry.name


def normalise_captions(
    paths: Iterable[str | os.PathLike[str]],
    *,
    version: str | ModelVersion = "v4",
    check: bool = False,
    jobs: int = 1,
    folders: Iterable[str | os.PathLike[str]] | None = None,
    follow_symlinks: bool = False,
    underscores: bool = False,
    escape: bool = False,
    separator: bool = False,
    canonical: bool = False,
) -> CaptionReport:
    """Rewrite caption files into ``version``'s canonical order, in place.

    Only regular files are read and rewritten, each atomically. Left alone, and listed in the
    report's ``skipped`` (see :class:`CaptionSkip`): symlinks (unless ``follow_symlinks``),
    files whose real path is outside their folder, read-only files and special files, which
    are never opened. Without ``check``, the temporary files a killed run left beside the
    given captions are removed first (the report's ``removed``).

    Args:
        paths: The caption files (see :func:`find_captions` to collect a folder's).
        version: The model version whose order to use.
        check: Write nothing (and remove nothing); report which files would change.
        jobs: Worker processes. 1 works in this process; more use a
            :class:`~concurrent.futures.ProcessPoolExecutor` fed in chunks.
        folders: The folders the captions were found in (the roots given to
            :func:`find_captions`). A caption belongs to the first that holds it, else to its
            own folder, and is rewritten only when its real path is inside that folder.
        follow_symlinks: Rewrite the file a symlinked caption points to, when that file is
            inside the caption's folder; otherwise symlinks are skipped.
        underscores, escape, separator, canonical: How to write the captions (see
            :class:`CaptionStyle` and :func:`normalise_caption`).

    Returns:
        A :class:`CaptionReport`; a file that cannot be read, normalised or written is in its
        ``failed`` list and left as it was.

    Raises:
        UnknownVersionError: unknown ``version``.
        InvalidArgumentError: ``jobs`` is below 1 (a ``ValueError``).
        WrongTypeError: ``jobs`` is not an int, a flag not a bool, or ``paths`` or
            ``folders`` not an iterable of paths.
    """
    style = CaptionStyle(
        version,
        underscores=underscores,
        escape=escape,
        separator=separator,
        canonical=canonical,
    )
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise WrongTypeError(f"jobs must be a positive int, got {type(jobs).__name__}: {jobs!r}")
    if jobs < 1:
        raise InvalidArgumentError(f"jobs must be a positive int, got {jobs!r}")
    if not isinstance(follow_symlinks, bool):
        raise WrongTypeError(
            f"follow_symlinks must be a bool, got {type(follow_symlinks).__name__}: "
            f"{follow_symlinks!r}"
        )
    files = [Path(p) for p in _paths("paths", paths)]
    bases = [] if folders is None else [os.path.abspath(f) for f in _paths("folders", folders)]
    todo = _jobs(files, bases)
    removed = () if check else _remove_leftovers(todo)
    work = functools.partial(
        _normalise_file, style=style, check=check, follow_symlinks=follow_symlinks
    )
    results: Iterable[_Result]
    if jobs == 1 or len(files) < 2:
        results = map(work, todo)
        return _report(files, results, check, removed)
    workers = min(jobs, len(files))
    chunk = max(1, min(_MAX_CHUNK, len(files) // (workers * 4)))
    _warm_up(style)  # a forked worker inherits the loaded tag database
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_start_worker,
        initargs=(style, os.getpid()),
    ) as pool:
        return _report(files, pool.map(work, todo, chunksize=chunk), check, removed)


def _jobs(files: Sequence[Path], bases: Sequence[str]) -> list[_Job]:
    """Each file with the real path of the folder it belongs to (see :func:`normalise_captions`).

    A file belongs to the first of ``bases`` (absolute folders) that holds it by name, else to
    the folder its name is in.
    """
    real: dict[str, str] = {}
    todo: list[_Job] = []
    for path in files:
        absolute = os.path.abspath(path)
        home = next(
            (base for base in bases if absolute != base and _inside(absolute, base)),
            os.path.dirname(absolute),
        )
        if home not in real:
            real[home] = os.path.realpath(home)
        todo.append((path, real[home]))
    return todo


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (both absolute and normalised)."""
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def _remove_leftovers(todo: Sequence[_Job]) -> tuple[Path, ...]:
    """Remove the temporary files a killed run left beside the captions to do; return them.

    Only the ones :func:`animagine.files.is_temporary` recognises whose target is one of the
    captions, only regular files (never a symlink), and only in folders inside the folder their
    captions belong to.
    """
    marks: dict[Path, set[str]] = {}
    homes: dict[Path, str] = {}
    for path, home in todo:
        marks.setdefault(path.parent, set()).add(_temporary_target(temporary_name(path).name))
        homes.setdefault(path.parent, home)
    removed: list[Path] = []
    for folder, targets in marks.items():
        if not _inside(os.path.realpath(folder), homes[folder]):
            continue
        try:
            with os.scandir(folder) as entries:
                leftovers = [
                    entry
                    for entry in entries
                    if is_temporary(entry.name)
                    and _temporary_target(entry.name) in targets
                    and entry.is_file(follow_symlinks=False)
                ]
        except OSError:
            continue  # the folder is reported through its files
        for entry in leftovers:
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(folder / entry.name)
    return tuple(sorted(removed))


def _temporary_target(name: str) -> str:
    """The (possibly shortened) target name in a temporary file's name."""
    return name[1:].rpartition(_TEMPORARY_MARK)[0]


def _paths(argument: str, paths: object) -> list[str | os.PathLike[str]]:
    """``paths`` as a list, when it is an iterable of str or path objects."""
    if isinstance(paths, (str, os.PathLike)):
        raise WrongTypeError(f"{argument} must be an iterable of paths, not a single path")
    try:
        items: list[object] = list(paths)  # type: ignore[call-overload]
    except TypeError:
        raise WrongTypeError(
            f"{argument} must be an iterable of paths, got {type(paths).__name__}"
        ) from None
    checked: list[str | os.PathLike[str]] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise WrongTypeError(
                f"{argument} must hold str or os.PathLike paths, got {type(item).__name__}"
            )
        checked.append(item)
    return checked


def _pool_context() -> BaseContext:
    """The start method for workers: the default, unless that would not make them our children.

    A worker's parent-death signal and its check of the parent's pid need the worker to be a
    child of this process, which ``forkserver`` workers are not; on Linux, use ``spawn`` then.
    """
    context = multiprocessing.get_context()
    if sys.platform.startswith("linux") and context.get_start_method() == "forkserver":
        return multiprocessing.get_context("spawn")
    return context


def _start_worker(style: CaptionStyle, parent: int) -> None:
    """Worker initializer: end with the parent process, then load what ordering needs."""
    _die_with_parent(parent)
    _warm_up(style)


_PR_SET_PDEATHSIG: Final = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel send ``SIGTERM`` to this process when ``parent`` dies.

    The signal is tied to the parent from now on, so a parent that died before the call is
    caught by comparing the current parent's pid with ``parent``. Elsewhere, or when ``prctl``
    is not available, this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _report(
    files: Sequence[Path],
    results: Iterable[_Result],
    check: bool,
    removed: tuple[Path, ...],
) -> CaptionReport:
    changed: list[Path] = []
    failed: list[CaptionFailure] = []
    skipped: list[CaptionSkip] = []
    unchanged = 0
    for path, (outcome, detail) in zip(files, results, strict=True):
        if outcome == "changed":
            changed.append(path)
        elif isinstance(detail, CaptionFailure):
            failed.append(detail)
        elif isinstance(detail, CaptionSkip):
            skipped.append(detail)
        else:
            unchanged += 1
    return CaptionReport(tuple(changed), unchanged, tuple(failed), check, tuple(skipped), removed)


def _warm_up(style: CaptionStyle) -> None:
    """Load the tag database and the version tables before the first caption."""
    _normalise("1girl, hatsune miku, smile", style)


def _normalise_file(
    job: _Job, *, style: CaptionStyle, check: bool, follow_symlinks: bool
) -> _Result:
    path, folder = job
    target = _target(path, folder, follow_symlinks)
    if isinstance(target, CaptionFailure):
        return "failed", target
    if isinstance(target, CaptionSkip):
        return "skipped", target
    real, info = target
    try:
        text = _read_regular(real, info)
    except (OSError, UnicodeDecodeError) as error:
        return "failed", CaptionFailure(path, "read", _reason(error))
    try:
        canonical = _normalise(text, style)
    except PromptSyntaxError as error:
        return "failed", CaptionFailure(path, "caption", error.reason, error.line, error.column)
    if canonical == text:
        return "unchanged", None
    if not check:
        try:
            write_atomic(real, canonical)
        except OSError as error:
            return "failed", CaptionFailure(path, "write", _reason(error))
    return "changed", None


def _target(
    path: Path, folder: str, follow_symlinks: bool
) -> tuple[str, os.stat_result] | CaptionFailure | CaptionSkip:
    """The real path and status of the regular file to rewrite for ``path``, or why not."""
    try:
        info = os.lstat(path)
        link = stat.S_ISLNK(info.st_mode)
        if link and not follow_symlinks:
            return CaptionSkip(path, "symlink", f"symlink to {os.readlink(path)}, not followed")
        real = os.path.realpath(path)
        if not _inside(real, folder):
            what = f"symlink to {real}" if link else f"{real} (through a symlinked folder)"
            return CaptionSkip(path, "outside", f"{what}, outside {folder}")
        info = os.stat(real)
    except OSError as error:
        return CaptionFailure(path, "read", _reason(error))
    if not stat.S_ISREG(info.st_mode):
        return CaptionSkip(path, "special", f"{_file_kind(info.st_mode)}, not a regular file")
    if not info.st_mode & _WRITE_BITS or not os.access(real, os.W_OK):
        return CaptionSkip(path, "read-only", "read-only file")
    return real, info


# Any of these set: someone may write the file. None set: read-only by intent (this is what
# counts when running as root, for whom os.access says every file is writable).
_WRITE_BITS: Final = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
# Open without following a symlink put in place since it was checked, and without waiting
# on a FIFO put there.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _read_regular(real: str, info: os.stat_result) -> str:
    """The text of the regular file ``real``, still the one ``info`` describes."""
    descriptor = os.open(real, _OPEN_FLAGS)
    try:
        now = os.fstat(descriptor)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(now.st_mode):
            raise OSError(errno.ESTALE, "replaced by another file while being read", real)
        file = open(descriptor, encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
    except BaseException:
        os.close(descriptor)
        raise
    with file:
        return file.read()


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text ({error.reason} at byte {error.start})"
    return str(error)
