"""``python -m core ...``: the GloveWatch command line."""

import sys

from core.cli import main

sys.exit(main())
