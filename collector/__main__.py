"""``python -m collector``: the same as the ``servelog`` console script."""

import sys

from collector.cli import main

sys.exit(main())
