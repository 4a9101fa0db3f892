"""`python -m producers.cli`: the same as the `datapost` command."""

import sys

from .main import main

sys.exit(main())
