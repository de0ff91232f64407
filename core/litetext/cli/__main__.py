"""`python -m litetext.cli`: the `litetext` command."""

import sys

from . import main

sys.exit(main())
