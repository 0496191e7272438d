"""``animagine expand``: the prompts a template draws; and the preset listing of ``generate``.

``expand`` prints what ``generate`` would make of a template with the same seed: image ``i``
of a call with seed ``S`` draws its prompt with seed ``S + i``. Imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any, Final

from animagine.core import (
    VERSIONS,
    WILDCARD_MODES,
    PresetTable,
    Template,
    WildcardFolder,
    get_version,
    presets_for,
)
from animagine.errors import PromptSyntaxError
from animagine.limits import MAX_IMAGES, MAX_SEED

__all__ = ["ListPresetsAction", "arguments", "format_presets", "run"]

_EXIT_OK: Final = 0
_EXIT_USAGE: Final = 2


def format_presets(table: PresetTable) -> str:
    """The presets of one version as text: each kind with its default, each preset's template."""
    version = get_version(table.version)
    lines = [f"{version.name} ({version.title})"]
    for kind, presets, default in (
        ("quality", table.quality, table.default_quality),
        ("style", table.style, table.default_style),
    ):
        lines.append(f"  {kind} presets (the demo's default: {default}):")
        width = max(len(preset.name) for preset in presets)
        for preset in presets:
            lines.append(f"    {preset.name:<{width}}  {preset.prompt}".rstrip())
    return "\n".join(lines)


class ListPresetsAction(argparse.Action):
    """``--list-presets [VERSION]``: print the presets (of every version) and exit."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("nargs", "?")
        kwargs.setdefault("metavar", "VERSION")
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        try:
            versions = VERSIONS if values is None else (get_version(str(values)),)
        except ValueError as error:
            parser.error(str(error))
        try:
            print("\n\n".join(format_presets(presets_for(version)) for version in versions))
            sys.stdout.flush()
        except BrokenPipeError:  # `... --list-presets | head`
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter's last flush)
        parser.exit()


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= MAX_IMAGES:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_IMAGES}, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64 - 1, got {value}")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    """The ``expand`` command's arguments."""
    parser.add_argument("template", nargs="+", help="the template (words are joined with spaces)")
    parser.add_argument(
        "-n", "--num", type=_count, default=1, help="how many prompts to draw (default: 1)"
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        help="seed of the first prompt; prompt i uses SEED + i, as image i of generate does"
        " (default: random, printed on stderr)",
    )
    parser.add_argument("--wildcards", metavar="DIR", help="folder of wildcard files (NAME.txt)")
    parser.add_argument(
        "--variants",
        choices=WILDCARD_MODES,
        default="random",
        help="'random': each wildcard occurrence draws a line; 'demo': one line per wildcard"
        " (the official 3.x demos) (default: random)",
    )
    parser.add_argument("--json", action="store_true", help="a JSON list of {seed, prompt}")


def run(args: argparse.Namespace) -> int:
    """Print the drawn prompts, one a line (or JSON)."""
    text = " ".join(args.template)
    folder = None if args.wildcards is None else WildcardFolder(args.wildcards)
    try:
        template = Template.parse(text)
        template.check(folder)
    except PromptSyntaxError as error:
        print(f"animagine expand: {error}", file=sys.stderr)
        return _EXIT_USAGE
    first = secrets.randbits(32) if args.seed is None else args.seed
    seeds = [seed for seed in range(first, first + args.num) if seed <= MAX_SEED]
    drawn = [template.expand(seed, wildcards=folder, mode=args.variants) for seed in seeds]
    if args.json:
        print(json.dumps([{"seed": s, "prompt": p} for s, p in zip(seeds, drawn, strict=True)]))
    else:
        for prompt in drawn:
            print(prompt)
    if args.seed is None:
        print(f"seed: {first}", file=sys.stderr)
    return _EXIT_OK
