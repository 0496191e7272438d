"""Generation parameters in image files: PNG text chunks, and the Exif A1111 writes.

Three PNG text chunks can carry them:

- ``parameters``: A1111's infotext (what WebUI, Civitai, sd-parsers and most viewers read), or,
  from the Animagine 4.0-era demo, the demo's JSON;
- ``animagine``: ours, :meth:`GenerationParameters.to_json` as JSON, lossless, and the one
  :func:`read_parameters` prefers;
- ``metadata``: the official Animagine 3.x demos' JSON.

JPEG and WebP files from A1111 carry the infotext in the Exif ``UserComment``.
:func:`write_png` writes both of our chunks atomically and never replaces an existing file unless
asked to. Pillow is imported on first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from animagine.errors import (
    InvalidArgumentError,
    MetadataError,
    MissingFileError,
    NotAFileError,
    WrongTypeError,
)
from animagine.extras import require
from animagine.files import atomic_open, path_text
from animagine.metadata._demo import from_demo_json
from animagine.metadata._records import GenerationParameters

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.PngImagePlugin import PngInfo

__all__ = [
    "ANIMAGINE_CHUNK",
    "DEMO_CHUNK",
    "PARAMETERS_CHUNK",
    "png_info",
    "read_parameters",
    "write_png",
]

#: Name of the PNG text chunk A1111 writes and every tool reads.
PARAMETERS_CHUNK: Final = "parameters"
#: Name of our own PNG text chunk: :meth:`GenerationParameters.to_json` as JSON.
ANIMAGINE_CHUNK: Final = "animagine"
#: Name of the PNG text chunk the official Animagine demo writes its JSON into.
DEMO_CHUNK: Final = "metadata"


def _require_pillow(what: str) -> None:
    require("PIL", what=what)  # Pillow is optional: imported on use


def png_info(parameters: GenerationParameters) -> PngInfo:
    """The PNG text chunks for ``parameters``, for callers who save images themselves.

    ``parameters`` holds the A1111 infotext (tEXt, or iTXt when it is not Latin-1, as A1111
    does); ``animagine`` holds :meth:`GenerationParameters.to_json` as ASCII JSON (tEXt).

    Raises:
        WrongTypeError: ``parameters`` is not a :class:`GenerationParameters`.
        MissingDependencyError: Pillow is not installed (an ``ImportError``).
    """
    _require_pillow("png_info")
    from PIL.PngImagePlugin import PngInfo

    if not isinstance(parameters, GenerationParameters):
        raise WrongTypeError(
            f"parameters must be GenerationParameters, got {type(parameters).__name__}"
        )
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, parameters.to_infotext())
    info.add_text(ANIMAGINE_CHUNK, json.dumps(parameters.to_json(), separators=(",", ":")))
    return info


def write_png(
    image: Image,
    path: str | os.PathLike[str],
    parameters: GenerationParameters,
    *,
    overwrite: bool = False,
) -> Path:
    """Save ``image`` as a PNG at ``path``, the parameters in its metadata (see :func:`png_info`).

    The PNG goes through :func:`animagine.files.atomic_open`: it is written to a temporary file
    next to ``path``, synced, and then moved into place, so ``path`` never holds a partial file.
    Without ``overwrite`` an existing ``path`` is never replaced, even by a file created while
    this one was being encoded; with it, an existing file is replaced and keeps its permission
    bits.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (a plain builtin error).
        MissingFileError: the folder of ``path`` does not exist.
        NotAFileError: ``path`` is a folder.
        WrongTypeError: ``image`` is not a PIL image, ``parameters`` not
            :class:`GenerationParameters`, or ``path`` not a path.
        InvalidArgumentError: Pillow cannot save this image as PNG (an empty image, or a mode
            such as ``CMYK`` or ``F``: convert it first).
        MissingDependencyError: Pillow is not installed (an ``ImportError``).
    """
    _require_pillow("write_png")
    from PIL import Image as PILImage

    if not isinstance(image, PILImage.Image):
        raise WrongTypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    info = png_info(parameters)
    with atomic_open(path, "wb", exclusive=not overwrite) as file:
        try:
            image.save(file, format="PNG", pnginfo=info)
        except (OSError, ValueError) as error:
            if not _cannot_encode(error):
                raise
            raise InvalidArgumentError(
                f"cannot save a {image.mode} image of {image.width}x{image.height} as PNG:"
                f" {error} (convert it first, e.g. image.convert('RGB'))"
            ) from error
    return Path(path)


def _cannot_encode(error: Exception) -> bool:
    """Whether Pillow refused the image itself (not the disk): ``cannot write mode F as PNG``."""
    if isinstance(error, OSError) and error.errno is not None:
        return False
    return str(error).startswith("cannot write")


def read_parameters(source: str | os.PathLike[str] | Image) -> GenerationParameters:
    """Read the generation parameters stored in an image file or a PIL image.

    Looks, in order, at our ``animagine`` PNG chunk, A1111's ``parameters`` chunk (or, where
    the Animagine 4.0-era demo put its JSON there, that JSON), the official demo's ``metadata``
    JSON chunk, and the Exif ``UserComment`` A1111 writes into JPEG and WebP files.

    Raises:
        MissingFileError: ``source`` is a path that does not exist (a ``FileNotFoundError``).
        NotAFileError: ``source`` is a folder (an ``IsADirectoryError``).
        MetadataError: not an image, no parameters found, or parameters that do not read.
        WrongTypeError: ``source`` is neither a path nor a PIL image.
        MissingDependencyError: Pillow is not installed (an ``ImportError``).
        OSError: the file exists but cannot be read (no permission...).
    """
    _require_pillow("read_parameters")
    from PIL import Image as PILImage

    if isinstance(source, PILImage.Image):
        return _read_image(source, str(getattr(source, "filename", "") or "<image>"))
    if not isinstance(source, (str, os.PathLike)):
        raise WrongTypeError(f"source must be a path or a PIL image, got {type(source).__name__}")
    name = path_text(source, "source")
    try:
        file = open(name, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise MissingFileError.from_path(name) from None
    except IsADirectoryError:
        raise NotAFileError.from_path(name) from None
    except ValueError as error:  # a NUL character in the name
        raise InvalidArgumentError(f"not a file name: {name!r} ({error})") from None
    with file:
        if os.path.isdir(name):  # Windows opens folders without complaint on some systems
            raise NotAFileError.from_path(name)
        try:
            image = PILImage.open(file)
        except (
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            PILImage.DecompressionBombError,
        ) as error:
            raise MetadataError(f"{name} is not an image Pillow can read") from error
        with image:
            return _read_image(image, name)


def _read_image(image: Image, name: str) -> GenerationParameters:
    chunks = _text_chunks(image, name)
    if ANIMAGINE_CHUNK in chunks:
        where = f"the {ANIMAGINE_CHUNK!r} chunk of {name}"
        data = _load_json(chunks[ANIMAGINE_CHUNK], where)
        if not isinstance(data, Mapping):
            raise MetadataError(f"{where} is JSON but not an object")
        try:
            return GenerationParameters.from_json(data)
        except MetadataError as error:
            raise MetadataError(f"{where}: {error}") from error
    if PARAMETERS_CHUNK in chunks:
        text = chunks[PARAMETERS_CHUNK]
        demo = _try_json_object(text)
        if demo is not None:
            return _read_demo(demo, f"the {PARAMETERS_CHUNK!r} chunk of {name}")
        return _read_infotext(text, f"the {PARAMETERS_CHUNK!r} chunk of {name}")
    if DEMO_CHUNK in chunks:
        where = f"the {DEMO_CHUNK!r} chunk of {name}"
        return _read_demo(_load_json(chunks[DEMO_CHUNK], where), where)
    comment = _user_comment(image, name)
    if comment:
        return _read_infotext(comment, f"the Exif UserComment of {name}")
    raise MetadataError(f"no generation parameters found in {name}")


def _read_infotext(text: str, where: str) -> GenerationParameters:
    try:
        return GenerationParameters.from_infotext(text)
    except MetadataError as error:
        raise MetadataError(f"{where}: {error}") from error


def _read_demo(data: object, where: str) -> GenerationParameters:
    if not isinstance(data, Mapping):
        raise MetadataError(f"{where} is JSON but not an object")
    try:
        return from_demo_json(data)
    except MetadataError as error:
        raise MetadataError(f"{where}: {error}") from error


def _text_chunks(image: Image, name: str) -> dict[str, str]:
    wanted = (ANIMAGINE_CHUNK, PARAMETERS_CHUNK, DEMO_CHUNK)
    chunks = {
        key: value
        for key, value in image.info.items()
        if isinstance(key, str) and isinstance(value, str)
    }
    if image.format == "PNG" and not any(key in chunks for key in wanted):
        # Text chunks after the image data show up in `.text`, which decodes the image.
        try:
            text: dict[str, Any] = getattr(image, "text", {})
        except (OSError, SyntaxError, ValueError) as error:
            raise MetadataError(f"cannot read the PNG chunks of {name}: {error}") from error
        chunks.update((key, value) for key, value in text.items() if isinstance(value, str))
    return chunks


def _try_json_object(text: str) -> object | None:
    """The JSON object ``text`` holds, or None when it is not JSON (an A1111 infotext)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None  # an infotext whose prompt starts with "{", as dynamic prompts write
    return data if isinstance(data, dict) else None


def _load_json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        raise MetadataError(f"{where} is JSON nested too deeply to read") from None
    except ValueError as error:
        raise MetadataError(f"{where} is not valid JSON: {error}") from error


_EXIF_IFD: Final = 0x8769
_USER_COMMENT: Final = 0x9286


def _user_comment(image: Image, name: str) -> str | None:
    """The Exif UserComment as text (A1111 writes ``UNICODE\\0`` + UTF-16 via piexif)."""
    try:
        raw = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except (OSError, SyntaxError, ValueError, KeyError) as error:
        raise MetadataError(f"cannot read the Exif data of {name}: {error}") from error
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.rstrip("\0")
    if not isinstance(raw, bytes):
        return None
    prefix, body = raw[:8], raw[8:]
    try:
        if prefix == b"UNICODE\0":
            if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
                encoding = "utf-16-le" if body[:2] == b"\xff\xfe" else "utf-16-be"
                text = body[2:].decode(encoding)
            else:
                # piexif writes big-endian; a few tools write little-endian. Text that is
                # mostly ASCII has its zero bytes first in big-endian order.
                big = body[0::2].count(0) >= body[1::2].count(0)
                text = body.decode("utf-16-be" if big else "utf-16-le")
        elif prefix == b"ASCII\0\0\0":
            text = body.decode("ascii")
        elif prefix == b"\0" * 8:
            text = body.decode("utf-8")
        else:
            return None
    except UnicodeDecodeError as error:
        raise MetadataError(f"cannot decode the Exif UserComment of {name}: {error}") from error
    return text.rstrip("\0")
