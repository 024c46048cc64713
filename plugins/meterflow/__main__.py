"""``python -m meterflow ingest PATH [--feed NAME] [--dry-run]``: see meterflow.cli."""

import sys

from meterflow.cli import main

sys.exit(main())
