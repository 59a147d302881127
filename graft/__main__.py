"""``python -m graft`` runs the command line."""

import sys

from graft.cli import main

sys.exit(main())
