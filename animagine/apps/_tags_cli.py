"""``animagine tags QUERY``: complete a Danbooru tag from the shipped tag database, offline."""

from __future__ import annotations

import argparse
import json
import sys

from animagine.core import TagDatabase, TagMatch

__all__ = ["arguments", "run"]

#: The choices of ``--category`` (the categories of :class:`TagMatch`).
CATEGORIES = ("general", "artist", "series", "character", "meta")


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of matches, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more matches, got {number}")
    return number


def arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``animagine tags``."""
    parser.add_argument(
        "query",
        nargs="+",
        metavar="QUERY",
        help="the start of a tag name or alias; several words are joined with spaces",
    )
    parser.add_argument(
        "--limit",
        "-n",
        type=_limit,
        default=10,
        metavar="N",
        help="the most matches to print (default: 10)",
    )
    parser.add_argument(
        "--category",
        "-c",
        choices=CATEGORIES,
        default=None,
        help="only tags of this category",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per match instead"
    )


def _line(match: TagMatch) -> str:
    posts = "-" if match.post_count is None else str(match.post_count)
    text = f"{match.name}\t{match.category}\t{posts}"
    return text if match.alias is None else f"{text}\t{match.alias}"


def run(args: argparse.Namespace) -> int:
    """Print the matches, best first: ``NAME<TAB>CATEGORY<TAB>POSTS[<TAB>ALIAS]`` lines."""
    query = " ".join(args.query)
    matches = TagDatabase.default().search(query, limit=args.limit, category=args.category)
    for match in matches:
        if args.json:
            record = {
                "name": match.name,
                "category": match.category,
                "post_count": match.post_count,
                "alias": match.alias,
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(_line(match))
    if not matches:
        print(f"no tag starts with {query!r}", file=sys.stderr)
        return 1
    return 0
