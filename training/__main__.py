"""``python -m training train|eval ...``; see ``training.cli``."""

import sys

from .cli import main

sys.exit(main())
