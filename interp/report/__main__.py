"""``python -m interp.report``: the ``interp report`` subcommand on its own."""

import sys

from interp.cli.report import main

sys.exit(main())
