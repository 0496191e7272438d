"""What a generation call returns, and how its images are saved."""

from __future__ import annotations

import base64
import errno
import io
import os
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from animagine.errors import GenerationArgumentError, GenerationTypeError
from animagine.metadata import GenerationParameters, png_info, write_png

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["GenerationResult", "check_output", "png_names"]

#: How wide a notebook shows an image alone, and each image of several (CSS pixels).
_DISPLAY_WIDTH: Final = 512
_GRID_WIDTH: Final = 256
#: Embedded copies are at most this many times the display width (sharp on HiDPI screens).
_DENSITY: Final = 2


def _free_name(directory: Path, stem: str) -> Path:
    candidate = directory / f"{stem}.png"
    number = 2
    while os.path.lexists(candidate):
        candidate = directory / f"{stem}_{number}.png"
        number += 1
    return candidate


@attrs.frozen
class GenerationResult:
    """The images of one :class:`Generator` call and how each was made.

    Attributes:
        images: The images (PIL), one per seed.
        seeds: The seed of each image: ``seed, seed + 1, ...``.
        parameters: Per image, everything needed to make it again
            (``gen(**parameters[i].to_call_kwargs())``).
    """

    images: tuple[Image, ...]
    seeds: tuple[int, ...]
    parameters: tuple[GenerationParameters, ...]

    @property
    def image(self) -> Image:
        """The first image."""
        return self.images[0]

    def _repr_png_(self) -> bytes | None:
        """For notebooks: the first image as PNG, its parameters in the metadata."""
        if not self.images:
            return None
        return _png_bytes(self.images[0], self.parameters[0])

    def _repr_html_(self) -> str:
        """For notebooks: the images side by side, each with its seed and parameters."""
        width = _DISPLAY_WIDTH if len(self.images) == 1 else _GRID_WIDTH
        figures = "".join(
            _figure(image, seed, parameters, width)
            for image, seed, parameters in zip(
                self.images, self.seeds, self.parameters, strict=True
            )
        )
        return (
            '<div class="animagine-result" style="display:flex;flex-wrap:wrap;gap:12px;'
            f'align-items:flex-start;">{figures}</div>'
        )

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Save the images as PNGs with their parameters in the metadata; never overwrite.

        ``path`` is a directory (an existing one, or a path without a suffix, created as
        needed): each image is named ``{seed}-{n}.png`` (``n`` counts from 1), with ``_2``,
        ``_3``... added when the name is taken. Or ``path`` is a ``.png`` file: one image is
        saved there; several are saved as ``{stem}-1.png``, ``{stem}-2.png``...

        The metadata is A1111's ``parameters`` text and animagine's JSON
        (:func:`animagine.read_parameters` reads either).

        Returns:
            The paths written, in image order.

        Raises:
            FileExistsError: a file path (or one of its numbered names) exists; nothing is written.
            GenerationArgumentError: a file path that does not end in ``.png``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise GenerationTypeError(f"path must be a str or path, got {type(path).__name__}")
        target = Path(path).expanduser()
        items = list(zip(self.images, self.parameters, strict=True))
        if target.is_dir() or (not target.exists() and not target.suffix):
            target.mkdir(parents=True, exist_ok=True)
            written: list[Path] = []
            for number, (image, parameters) in enumerate(items, start=1):
                while True:
                    candidate = _free_name(target, f"{parameters.seed}-{number}")
                    try:
                        written.append(write_png(image, candidate, parameters))
                        break
                    except FileExistsError:  # taken since we looked: try the next name
                        continue
            return written
        check_output(target, len(items))
        names = png_names(target, len(items))
        _refuse_existing(names)
        target.parent.mkdir(parents=True, exist_ok=True)
        return [
            write_png(image, name, parameters)
            for name, (image, parameters) in zip(names, items, strict=True)
        ]


def _png_bytes(image: Image, parameters: GenerationParameters | None) -> bytes:
    """``image`` encoded as PNG, with ``parameters`` in its metadata when given."""
    buffer = io.BytesIO()
    if parameters is None:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="PNG", pnginfo=png_info(parameters))
    return buffer.getvalue()


def _figure(image: Image, seed: int, parameters: GenerationParameters, width: int) -> str:
    """One image as an inline PNG at most ``width`` wide, its seed and infotext under it."""
    shown = min(image.width, width)
    limit = shown * _DENSITY
    embedded = image
    if image.width > limit:  # a smaller copy keeps the notebook file small
        from PIL import Image as PILImage

        embedded = image.resize(
            (limit, max(1, round(image.height * limit / image.width))),
            PILImage.Resampling.LANCZOS,
        )
    data = base64.b64encode(_png_bytes(embedded, None)).decode("ascii")
    infotext = escape(parameters.to_infotext())
    return (
        f'<figure style="margin:0;width:{shown}px;max-width:100%;">'
        f'<img src="data:image/png;base64,{data}" alt="seed {seed}" width="{shown}" '
        f'style="width:{shown}px;max-width:100%;height:auto;display:block;">'
        f'<figcaption style="font-size:0.8em;"><div><b>seed {seed}</b>'
        f" ({image.width}x{image.height})</div>"
        '<pre style="white-space:pre-wrap;word-break:break-word;margin:2px 0 0;'
        f'font-size:0.95em;">{infotext}</pre></figcaption></figure>'
    )


def png_names(target: Path, count: int) -> list[Path]:
    """The files :meth:`GenerationResult.save` writes for a ``.png`` path and ``count`` images."""
    if count == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{n}{target.suffix}") for n in range(1, count + 1)]


def _refuse_existing(names: Iterable[Path]) -> None:
    """Raise :class:`FileExistsError` for the first of ``names`` that exists."""
    for name in names:
        if os.path.lexists(name):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing file", str(name))


def check_output(path: str | os.PathLike[str], count: int) -> Path:
    """Check, before any model work, that :meth:`GenerationResult.save` can save ``count`` images.

    ``path`` is a folder (existing, or a path without a suffix) or a ``.png`` file whose names
    (:func:`png_names`) are all free.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        GenerationArgumentError: a file path that does not end in ``.png`` (images are saved as
            PNG, which carries their parameters losslessly), or a path inside a file.
        FileExistsError: one of the file names exists.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise GenerationTypeError(f"path must be a str or path, got {type(path).__name__}")
    target = Path(path).expanduser()
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise GenerationArgumentError(
                    f"output {os.fspath(path)!r}: {os.fspath(parent)!r} is a file, not a folder"
                )
            break
    if target.is_dir() or (not target.exists() and not target.suffix):
        return target
    if target.suffix.lower() != ".png":
        raise GenerationArgumentError(
            f"output {os.fspath(path)!r} must be a folder or a .png file: images are saved as"
            " PNG with their parameters"
        )
    _refuse_existing(png_names(target, count))
    return target
