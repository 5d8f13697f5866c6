"""What the command line says when a command fails: one line per error, naming the file, key or value.

Every exception a command raises is mapped here to ``(message, exit status)``; ``main`` prints
``activescore CMD: error: MESSAGE`` (the traceback only with ``--debug``) and ``run.json`` records the same
message. Exit statuses: 2 for a bad configuration, argument or input file (nothing was done), 1 for a run that
failed while working (a blow-up, a full disk), 130 for Ctrl-C.
"""

from __future__ import annotations

import errno

from ..simulation.simulate import SimulationError

#: Exit status of a command interrupted by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Exit status of a bad configuration, argument or input: nothing was done.
USAGE = 2
#: Exit status of a run that started and failed.
FAILED = 1


def _os_message(err: OSError) -> str:
    path = err.filename if err.filename is not None else ""
    if isinstance(err, FileNotFoundError):
        what = "no such file or folder"
    elif isinstance(err, PermissionError):
        what = "permission denied"
    elif isinstance(err, IsADirectoryError):
        what = "is a folder, expected a file"
    elif isinstance(err, NotADirectoryError):
        what = "a part of the path is a file, expected a folder"
    elif err.errno == errno.ENOSPC:
        what = "no space left on the device"
    else:
        what = err.strerror or str(err)
    return f"{path}: {what}" if path else what


def describe(err: BaseException) -> tuple[str, int]:
    """``(one-line message, exit status)`` for an exception raised by a command."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted; rerun the same command with the same --out to resume", INTERRUPTED
    if isinstance(err, SimulationError):
        return (
            f"{err} (the frames saved before it are kept; a smaller simulation.dt, or a smaller "
            "system.v0 or system.k, keeps particles from jumping)",
            FAILED,
        )
    if isinstance(err, ValueError):
        return str(err), USAGE
    if isinstance(err, OSError):
        return _os_message(err), FAILED
    if isinstance(err, MemoryError):
        return "out of memory: try fewer particles or frames (system.n_particles, estimate.frames)", FAILED
    # Anything else is a defect of activescore rather than of the input: still one line, with the way to the detail.
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text} (rerun with --debug for the traceback)", FAILED


def one_line(command: str, message: str) -> str:
    """The line printed on stderr: ``activescore CMD: error: MESSAGE`` with the message on a single line."""
    return f"activescore {command}: error: " + " ".join(message.split())
