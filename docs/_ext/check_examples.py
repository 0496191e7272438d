"""Run every ```pycon example in docs/ as a doctest, so the documented output stays real.

Usage, from the repository root: ``python docs/_ext/check_examples.py``. Exits 1 if any example's
output differs. The examples of one page share a namespace and run in a temporary directory that
holds the page's titled code blocks as files (```csv title="my-tags.csv"``` becomes
``my-tags.csv``).

A page whose examples need optional packages says so in a comment,
``<!-- examples need: torch, diffusers, transformers -->``; where one of them is not installed its
examples are skipped (``unittest.SkipTest``, which pytest reports as a skip), never failed.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import sys
import tempfile
import unittest
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PYCON = re.compile(r"^```pycon[^\n]*\n(.*?)^```", re.S | re.M)
_TITLED = re.compile(r'^```\w+ title="([^"/]+)"\n(.*?)^```', re.S | re.M)
_NEEDS = re.compile(r"<!-- examples need: ([\w., ]+) -->")
#: Third-party warnings the examples may trigger, ignored as the test suite ignores them:
#: diffusers' schedulers call numpy's ``__array__`` without the copy keyword (numpy 2).
_IGNORED_WARNINGS = (
    (r"__array__ implementation doesn't accept a copy keyword", DeprecationWarning),
)


def check(page: Path) -> tuple[int, int]:
    """Run the page's examples; return (attempted, failed).

    Raises:
        unittest.SkipTest: the page's examples need a package that is not installed.
    """
    text = page.read_text(encoding="utf-8")
    blocks = _PYCON.findall(text)
    if not blocks:
        return 0, 0
    needs = [name.strip() for match in _NEEDS.findall(text) for name in match.split(",")]
    missing = [name for name in needs if name and importlib.util.find_spec(name) is None]
    if missing:
        raise unittest.SkipTest(f"{page.name}: its examples need {', '.join(missing)}")
    source = "\n".join(block.rstrip("\n") + "\n" for block in blocks)
    name = str(page.relative_to(ROOT))
    test = doctest.DocTestParser().get_doctest(source, {"__name__": "__docs__"}, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        for file_name, body in _TITLED.findall(text):
            Path(scratch, file_name).write_text(body, encoding="utf-8")
        os.chdir(scratch)
        try:
            with warnings.catch_warnings():
                for message, category in _IGNORED_WARNINGS:
                    warnings.filterwarnings("ignore", message, category)
                result = runner.run(test)
        finally:
            os.chdir(cwd)
    return result.attempted, result.failed


def main() -> int:
    sys.path.insert(0, str(ROOT))
    attempted = failed = 0
    for page in sorted((ROOT / "docs").rglob("*.md")):
        try:
            page_attempted, page_failed = check(page)
        except unittest.SkipTest as skip:
            print(f"{page.relative_to(ROOT)}: skipped ({skip})")
            continue
        if page_attempted:
            print(f"{page.relative_to(ROOT)}: {page_attempted} examples, {page_failed} failed")
        attempted += page_attempted
        failed += page_failed
    print(f"{attempted} examples, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
