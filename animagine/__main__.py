"""``python -m animagine`` and the ``animagine`` console script (see :mod:`animagine._cli`)."""

from __future__ import annotations

import sys

from animagine._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
