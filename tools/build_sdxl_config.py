"""Build the CLIP tokenizers of ``animagine/_data/sdxl``, the SDXL config shipped in the wheel.

``Generator.from_single_file`` needs a diffusers-format SDXL folder (``config=``) to load a
single-file checkpoint offline. ``animagine/_data/sdxl`` is that folder, without weights: the
component configs (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``,
``text_encoder_2/``, ``scheduler/``) are SDXL base 1.0's, committed as they are, and the two
tokenizer folders are written by this script.

The tokenizer files are rebuilt from OpenAI CLIP's BPE file ``bpe_simple_vocab_16e6.txt.gz``
(MIT), as shipped in the ``open-clip-torch`` wheel, exactly as OpenAI's ``simple_tokenizer.py``
forms its vocabulary (and as ``openai/clip-vit-large-patch14`` on the Hugging Face hub has it):

* ``merges.txt``: a ``#version: 0.2`` header, then the first 48,894 merge rules of the BPE file
  (its lines ``1 .. 49152 - 256 - 2``), one ``a b`` pair a line;
* ``vocab.json``: 49,408 entries: the 256 byte characters of ``bytes_to_unicode``, the same
  with ``</w>``, each merge joined, then ``<|startoftext|>`` (49406) and ``<|endoftext|>``
  (49407).

``tokenizer`` pads with ``<|endoftext|>`` and ``tokenizer_2`` with ``!`` (id 0), as SDXL's two
tokenizers do; their vocabularies are identical. The open-clip-torch wheel is only read, never
installed. Usage, from the repository root::

    python tools/build_sdxl_config.py                     # pip-downloads open-clip-torch==3.3.0
    python tools/build_sdxl_config.py path/to/open_clip_torch-3.3.0-py3-none-any.whl
    python tools/build_sdxl_config.py path/to/bpe_simple_vocab_16e6.txt.gz
    python tools/build_sdxl_config.py --check             # compare with the committed files
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "animagine" / "_data" / "sdxl"
PACKAGE = "open-clip-torch"
DEFAULT_VERSION = "3.3.0"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
#: OpenAI's simple_tokenizer.py: ``merges = merges[1 : 49152 - 256 - 2 + 1]``.
MERGE_COUNT = 49152 - 256 - 2
VOCAB_SIZE = 2 * 256 + MERGE_COUNT + 2
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MAX_LENGTH = 77
#: The pad token of each tokenizer folder (SDXL's text encoder 2, OpenCLIP ViT-bigG, pads with 0).
PAD_TOKENS = {"tokenizer": EOS, "tokenizer_2": "!"}


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI CLIP's reversible map from the 256 byte values to printable characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def read_merges(bpe_text: str) -> list[tuple[str, str]]:
    """The merge rules the tokenizer uses: lines 1 .. 48,894 of the BPE file (line 0 a header)."""
    lines = bpe_text.split("\n")[1 : MERGE_COUNT + 1]
    merges = []
    for number, line in enumerate(lines, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"BPE file line {number} is not a merge pair: {line!r}")
        merges.append((parts[0], parts[1]))
    if len(merges) != MERGE_COUNT:
        raise SystemExit(f"BPE file holds {len(merges)} merges, expected {MERGE_COUNT}")
    return merges


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's token-to-id table, in OpenAI's order."""
    tokens = list(bytes_to_unicode().values())
    tokens += [token + "</w>" for token in tokens]
    tokens += ["".join(merge) for merge in merges]
    tokens += [BOS, EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise SystemExit(f"vocabulary has {len(vocab)} distinct tokens, expected {VOCAB_SIZE}")
    return vocab


def tokenizer_files(merges: list[tuple[str, str]], pad_token: str) -> dict[str, str]:
    """File name to text for one ``CLIPTokenizer`` folder."""
    vocab = build_vocab(merges)
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": pad_token, "unk_token": EOS}
    config = {
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        **special,
        "tokenizer_class": "CLIPTokenizer",
    }
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n",
        "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        "tokenizer_config.json": json.dumps(config, indent=2, sort_keys=True) + "\n",
        "special_tokens_map.json": json.dumps(special, indent=2, sort_keys=True) + "\n",
    }


def all_files(merges: list[tuple[str, str]]) -> dict[str, str]:
    """Relative path to text for every file this script writes."""
    return {
        f"{folder}/{name}": text
        for folder, pad_token in PAD_TOKENS.items()
        for name, text in tokenizer_files(merges, pad_token).items()
    }


def download(version: str, directory: Path) -> Path:
    """Fetch the open-clip-torch wheel with ``pip download`` (no dependencies) to ``directory``."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--dest", str(directory), f"{PACKAGE}=={version}",
        ],
        check=True,
    )  # fmt: skip
    wheels = sorted(directory.glob("open_clip_torch-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one open-clip-torch wheel in {directory}, found {wheels}")
    return wheels[0]


def read_bpe(source: Path) -> bytes:
    """The gzip'd BPE file, from an open-clip-torch wheel or given directly."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(BPE_MEMBER)
    return source.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", nargs="?", type=Path,
        help="an open-clip-torch wheel or bpe_simple_vocab_16e6.txt.gz (default: pip download)",
    )  # fmt: skip
    parser.add_argument("--version", default=DEFAULT_VERSION, help="open-clip-torch to download")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the SDXL config folder")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files there instead of writing"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        source = args.source or download(args.version, Path(scratch))
        packed = read_bpe(source)
        print(f"source: {source.name} (sha256 {hashlib.sha256(source.read_bytes()).hexdigest()})")
    print(f"BPE file: sha256 {hashlib.sha256(packed).hexdigest()}, {len(packed)} bytes")
    merges = read_merges(gzip.decompress(packed).decode("utf-8"))
    stale = []
    for relative, text in all_files(merges).items():
        path = args.output / relative
        data = text.encode("utf-8")
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(data)}")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
