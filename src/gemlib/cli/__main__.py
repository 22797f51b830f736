"""``python -m gemlib.cli``: the ``gemlib`` command."""

import sys

from gemlib.cli import main

sys.exit(main())
