"""``python -m tongues ...`` runs the ``tongues`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
