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

Images are untrusted input. A PNG file's chunks are walked here, without Pillow and without
decoding a pixel: a file that declares more than :data:`MAX_PIXELS` pixels, a text chunk that
holds (or decompresses to) more than :data:`MAX_TEXT_CHARS` characters, more than
:data:`MAX_TEXT_TOTAL` characters of text in all, a truncated file or a damaged text chunk is a
:class:`~animagine.MetadataError`, found in time and memory bounded by these limits and the
file's size. JSON nested too deeply or holding numbers Python refuses is one too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Iterator, Mapping
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
from animagine.metadata._infotext import repair_latin1
from animagine.metadata._records import GenerationParameters

if TYPE_CHECKING:
    from typing import BinaryIO

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

#: Most pixels an image file may declare (8192 x 8192); larger ones are refused unread.
MAX_PIXELS: Final = 8192 * 8192
#: Most characters one text chunk read for parameters may hold, once decompressed (4 Mi): a
#: prompt at the 100,000-character limit takes about 0.5 Mi in our JSON chunk.
MAX_TEXT_CHARS: Final = 4 * 2**20
#: Most characters of parameter text read from one file, all chunks together.
MAX_TEXT_TOTAL: Final = 16 * 2**20
#: Most chunks walked in one PNG file.
MAX_CHUNKS: Final = 1_000_000

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_TEXT_KINDS: Final = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_WANTED: Final = (ANIMAGINE_CHUNK, PARAMETERS_CHUNK, DEMO_CHUNK)
_EXIF: Final = "\0exif"  # marks an eXIf chunk among the text chunks (no keyword has a NUL)


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


def read_parameters(source: str | os.PathLike[str] | Image | bytes) -> GenerationParameters:
    """Read the generation parameters stored in an image file, a PIL image or an image file's
    bytes (an upload: read as a file is, chunk by chunk, without decoding the pixels).

    Looks, in order, at our ``animagine`` PNG chunk, A1111's ``parameters`` chunk (or, where
    the Animagine 4.0-era demo put its JSON there, that JSON), the official demo's ``metadata``
    JSON chunk, and the Exif ``UserComment`` A1111 writes into JPEG and WebP files.

    Raises:
        MissingFileError: ``source`` is a path that does not exist (a ``FileNotFoundError``).
        NotAFileError: ``source`` is a folder (an ``IsADirectoryError``).
        MetadataError: not an image, no parameters found, or parameters that do not read.
        WrongTypeError: ``source`` is neither a path, a PIL image nor bytes.
        MissingDependencyError: Pillow is not installed (an ``ImportError``).
        OSError: the file exists but cannot be read (no permission...).
    """
    _require_pillow("read_parameters")
    from PIL import Image as PILImage

    if isinstance(source, PILImage.Image):
        return _read_image(source, str(getattr(source, "filename", "") or "<image>"))
    if isinstance(source, bytes):
        if not source:
            raise MetadataError("the image is empty (no bytes)")
        with io.BytesIO(source) as memory:
            return _read_file(memory, "the image")
    if not isinstance(source, (str, os.PathLike)):
        raise WrongTypeError(
            f"source must be a path, a PIL image or bytes, got {type(source).__name__}"
        )
    name = path_text(source, "source")
    if _special_file(name):  # opening a FIFO would wait for a writer forever
        raise MetadataError(f"{name} is not a regular file")
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
        return _read_file(file, name)


def _read_file(file: BinaryIO, name: str) -> GenerationParameters:
    """The parameters of an open image file: its PNG chunks walked within limits, else Pillow."""
    from PIL import Image as PILImage

    chunks = _png_text(file, name)
    if chunks is not None and any(key in chunks for key in _WANTED):
        return _from_chunks(chunks, name)
    if chunks is not None and _EXIF not in chunks:
        raise MetadataError(f"no generation parameters found in {name}")
    file.seek(0)
    with _no_bombs():
        try:
            image = PILImage.open(file)
        except _pillow_errors() as error:
            raise MetadataError(f"{name} is not an image Pillow can read") from error
        with image:
            if chunks is not None:  # a PNG without our chunks: only Exif is left
                return _from_exif(image, name)
            return _read_image(image, name)


def _special_file(name: str) -> bool:
    """Whether ``name`` is a FIFO, a socket or a device (not a file, a folder or nothing)."""
    try:
        mode = os.stat(name).st_mode
    except (OSError, ValueError):
        return False  # open() says why
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def verify_png(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a complete PNG: every chunk's CRC, up to ``IEND``.

    No pixel is decoded, and Pillow's decompression-bomb limits apply. The file is untrusted:
    whatever is wrong with it is a :class:`MetadataError`.

    Raises:
        MetadataError: not a PNG, truncated, or a damaged chunk, with the reason.
        MissingDependencyError: Pillow is not installed (an ``ImportError``).
    """
    _require_pillow("verify_png")
    from PIL import Image as PILImage

    name = os.path.basename(os.fspath(path))
    try:
        with _no_bombs(), PILImage.open(path) as image:
            if image.format != "PNG":
                raise MetadataError(f"{name} is a {image.format} file, not a PNG")
            image.verify()
    except MetadataError:
        raise
    except _pillow_errors() as error:
        raise MetadataError(f"{name} is not a complete PNG: {error}") from None


def _pillow_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises on a file it cannot read (bombs included, under :func:`_no_bombs`)."""
    from PIL import Image as PILImage

    return (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        zlib.error,
        PILImage.DecompressionBombError,
        PILImage.DecompressionBombWarning,
    )


@contextlib.contextmanager
def _no_bombs() -> Iterator[None]:
    """Pillow's decompression-bomb warning raised as an error (Pillow only warns below 2x)."""
    from PIL import Image as PILImage

    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        yield


def _png_text(file: BinaryIO, name: str) -> dict[str, str] | None:
    """The parameter text chunks of a PNG file (None when it is not a PNG), read within limits.

    Walks the chunks from the signature to ``IEND`` reading only their headers, except the
    text chunks named like ours, which are checked (CRC) and decoded; a chunk after the image
    data counts as one before it, and a later chunk wins. Nothing is decompressed beyond
    :data:`MAX_TEXT_CHARS`. An ``eXIf`` chunk (where Exif could hold A1111's infotext) is
    marked by the key ``_EXIF``.
    """
    if file.read(8) != _PNG_SIGNATURE:
        return None
    chunks: dict[str, str] = {}
    total = 0
    for index in range(MAX_CHUNKS):
        head = file.read(8)
        if len(head) < 8:
            raise MetadataError(f"{name} is a truncated PNG (it ends before its IEND chunk)")
        length, kind = struct.unpack(">I4s", head)
        if length > 2**31 - 1:
            raise MetadataError(f"{name} is not a valid PNG (a chunk of {length} bytes)")
        if index == 0:
            _check_header(kind, file.read(length) if length == 13 else b"", name)
            file.seek(4, os.SEEK_CUR)
            continue
        if kind == b"IEND":
            return chunks
        if kind == b"eXIf":
            chunks[_EXIF] = ""
        if kind not in _TEXT_KINDS or not _names_ours(file, length):
            file.seek(length + 4, os.SEEK_CUR)  # past the end is found by the next read
            continue
        if length > MAX_TEXT_CHARS:
            raise MetadataError(
                f"{name} has a text chunk of {length:,} bytes; the limit is {MAX_TEXT_CHARS:,}"
            )
        body, crc = file.read(length), file.read(4)
        if len(body) < length or len(crc) < 4:
            raise MetadataError(f"{name} is a truncated PNG (it ends inside a text chunk)")
        if zlib.crc32(kind + body) & 0xFFFFFFFF != struct.unpack(">I", crc)[0]:
            raise MetadataError(f"{name} has a damaged {kind.decode()} chunk (bad CRC)")
        key, value = _decode_text(kind, body, name)
        total += len(value)
        if total > MAX_TEXT_TOTAL:
            raise MetadataError(
                f"{name} holds more than {MAX_TEXT_TOTAL:,} characters of parameter text"
            )
        chunks[key] = value
    raise MetadataError(f"{name} has more than {MAX_CHUNKS:,} chunks")


def _check_header(kind: bytes, body: bytes, name: str) -> None:
    if kind != b"IHDR" or len(body) != 13:
        raise MetadataError(f"{name} is not a valid PNG (no IHDR chunk first)")
    width, height = struct.unpack(">II", body[:8])
    if not width or not height:
        raise MetadataError(f"{name} is not a valid PNG (an image of {width}x{height})")
    if width * height > MAX_PIXELS:
        raise MetadataError(
            f"{name} declares {width}x{height} pixels, more than the limit of {MAX_PIXELS:,}"
            " (a decompression bomb, or an image too large to be one of ours)"
        )


def _names_ours(file: BinaryIO, length: int) -> bool:
    """Whether the text chunk whose body starts here has one of our keywords (file unmoved)."""
    start = file.tell()
    keyword = file.read(min(length, 80))
    file.seek(start)
    return keyword.partition(b"\0")[0] in {key.encode() for key in _WANTED}


def _decode_text(kind: bytes, body: bytes, name: str) -> tuple[str, str]:
    """A text chunk's keyword and text (tEXt and zTXt: Latin-1, or UTF-8 when the bytes are
    valid UTF-8, as many tools write them and A1111 reads them; iTXt: UTF-8)."""
    where = f"the {kind.decode()} chunk of {name}"
    raw_key, _, rest = body.partition(b"\0")
    key = raw_key.decode("latin-1")
    try:
        if kind == b"tEXt":
            return key, repair_latin1(rest.decode("latin-1"))
        if kind == b"zTXt":
            return key, repair_latin1(_inflate(rest[1:], where).decode("latin-1"))
        compressed = rest[:1] == b"\1"
        _, _, rest = rest[2:].partition(b"\0")  # the language tag
        _, _, text = rest.partition(b"\0")  # the translated keyword
        return key, (_inflate(text, where) if compressed else text).decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataError(f"{where} is not valid UTF-8: {error}") from None


def _inflate(data: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_TEXT_CHARS + 1)
    except zlib.error as error:
        raise MetadataError(f"{where} does not decompress: {error}") from None
    if len(text) > MAX_TEXT_CHARS:
        raise MetadataError(f"{where} decompresses to more than {MAX_TEXT_CHARS:,} bytes")
    return text


def _from_exif(image: Image, name: str) -> GenerationParameters:
    comment = _user_comment(image, name)
    if comment:
        return _read_infotext(comment, f"the Exif UserComment of {name}")
    raise MetadataError(f"no generation parameters found in {name}")


def _read_image(image: Image, name: str) -> GenerationParameters:
    chunks = _text_chunks(image, name)
    if any(key in chunks for key in _WANTED):
        return _from_chunks(chunks, name)
    return _from_exif(image, name)


def _from_chunks(chunks: Mapping[str, str], name: str) -> GenerationParameters:
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
    where = f"the {DEMO_CHUNK!r} chunk of {name}"
    return _read_demo(_load_json(chunks[DEMO_CHUNK], where), where)


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
    wanted = _WANTED
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
