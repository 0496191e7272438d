"""Run every ```pycon example in docs/ as a doctest, so the documented output stays real.

Usage, from the repository root: ``python docs/_ext/check_examples.py``. Exits 1 if any example's
output differs. The examples of one page share a namespace and run in a temporary directory that
holds the page's titled code blocks as files (```csv title="my-tags.csv"``` becomes
``my-tags.csv``).
"""

from __future__ import annotations

import doctest
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PYCON = re.compile(r"^```pycon[^\n]*\n(.*?)^```", re.S | re.M)
_TITLED = re.compile(r'^```\w+ title="([^"/]+)"\n(.*?)^```', re.S | re.M)


def check(page: Path) -> tuple[int, int]:
    """Run the page's examples; return (attempted, failed)."""
    text = page.read_text(encoding="utf-8")
    blocks = _PYCON.findall(text)
    if not blocks:
        return 0, 0
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
            result = runner.run(test)
        finally:
            os.chdir(cwd)
    return result.attempted, result.failed


def main() -> int:
    sys.path.insert(0, str(ROOT))
    attempted = failed = 0
    for page in sorted((ROOT / "docs").rglob("*.md")):
        page_attempted, page_failed = check(page)
        if page_attempted:
            print(f"{page.relative_to(ROOT)}: {page_attempted} examples, {page_failed} failed")
        attempted += page_attempted
        failed += page_failed
    print(f"{attempted} examples, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
