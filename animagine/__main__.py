"""``python -m animagine`` and the ``animagine`` console script (see :mod:`animagine.apps.cli`)."""

from __future__ import annotations

import sys

from animagine.apps.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
