"""The physics reference (physics.md: models, units, conventions, exact results) that the summaries and
docstrings cite as "physics.md §n". It is installed inside the package, so it is there after ``pip install``:
``activescore.physics_reference()`` gives its path, ``python -m activescore physics`` prints it."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
#: Where to look: the installed copy beside this module, then the source tree's docs/ (a checkout run in place).
_CANDIDATES = (_HERE / "physics.md", _HERE.parent.parent / "docs" / "physics.md")


def physics_reference() -> Path:
    """The path of physics.md, the reference for every "physics.md §n" in activescore's output and docs."""
    for path in _CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "physics.md is not installed with this copy of activescore; it is docs/physics.md in the source repository"
    )
