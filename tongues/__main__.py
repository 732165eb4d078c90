"""``python -m tongues ...`` runs the ``tongues`` command."""

from .cli import entry

if __name__ == "__main__":
    entry()
