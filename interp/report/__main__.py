"""``python -m interp.report``: the ``interp report`` subcommand on its own."""

import sys

from interp.report.command import main

sys.exit(main())
