"""``python -m relu_ext``: the ``relu-ext`` command line."""

import sys

from .cli import main

sys.exit(main())
