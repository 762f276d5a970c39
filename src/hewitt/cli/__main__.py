"""``python -m hewitt.cli``: the ``hewitt`` command."""

import sys

from . import main

sys.exit(main())
