"""``python -m activescore``: the command-line interface (see activescore.cli)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
