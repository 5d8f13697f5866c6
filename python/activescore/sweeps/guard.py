"""The refusal of a local cluster started from an unguarded script.

Dask's worker processes are spawned: each imports the user's script again as ``__mp_main__``. A sweep called at the
top level of the script, not under ``if __name__ == "__main__":``, then runs again in every worker while it starts,
and the cluster dies with Dask's "Nanny failed to start". This module finds the script line that called the sweep
and whether the guard covers it, before any worker is spawned.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import FrameType

GUARD = 'if __name__ == "__main__":'


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.comparators) != 1:
        return False
    operands = [node.test.left, node.test.comparators[0]]
    names = [o.id for o in operands if isinstance(o, ast.Name)]
    strings = [o.value for o in operands if isinstance(o, ast.Constant)]
    return isinstance(node.test.ops[0], ast.Eq) and names == ["__name__"] and strings == ["__main__"]


def unguarded_call_site() -> tuple[str, int] | None:
    """(script, line) of the top-level statement of the running script that leads here, when the main guard does
    not cover it; None when it does, or when there is no script file (an interactive session, ``python -c``, a
    notebook, a console entry point's guarded call)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not Path(path).is_file():
        return None
    frame: FrameType | None = sys._getframe(1)
    line = None
    while frame is not None:  # the outermost module-level frame of the script
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return None if _is_main_guard(node) else (str(path), line)
    return None


def refuse_unguarded_script() -> None:
    """Raise one line naming the script and line when a local cluster would be started from an unguarded script."""
    site = unguarded_call_site()
    if site is not None:
        path, line = site
        raise RuntimeError(
            f"{path}, line {line}: a sweep on a local Dask cluster must be started under '{GUARD}' (Dask's worker "
            f'processes import the script again); indent the call under that line, or pass scheduler="synchronous"'
        )
