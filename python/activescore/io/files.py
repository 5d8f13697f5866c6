"""Files on disk: one way to write them atomically and one way to check a file before reading it.

Outputs are written to a temporary file in the target's folder and renamed over the target when complete, so a
reader (or a run killed mid-write) sees either the old file or the new one, never half of one. Temporary files
are created with ``open(..., "x")``, so finished files get the permissions the umask allows, like any other file
the user creates.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class MissingFileError(FileNotFoundError, ValueError):
    """A file or folder activescore was asked to read does not exist. Both a ``FileNotFoundError`` and a
    ``ValueError`` (a bad argument), so callers that report bad input catch it with the rest."""

    def __init__(self, path, what: str):
        self.message = f"{path}: no such {what}"
        super().__init__(2, self.message)
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message


def temporary_name(path: Path) -> Path:
    """A fresh name beside ``path`` for a file that becomes ``path`` once complete."""
    return path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without an error (on an error it
    is removed and ``path`` is left as it was). The folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, mode.replace("w", "x")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_file(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def check_output(path, *, overwrite: bool, name: str = "out") -> Path:
    """``path`` as a Path, refusing an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{name}: {path} exists; pass overwrite=True to replace it")
    return path


def existing_file(path, what: str) -> Path:
    """``path`` as a Path after checking that it is a file (``what`` names its kind in the error)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, what)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a {what}")
    return path


def read_head(path: Path, n: int = 16) -> bytes:
    """The first ``n`` bytes of a file (to tell what kind of file it is)."""
    with open(path, "rb") as f:
        return f.read(n)


#: The first bytes of every GSD file.
GSD_MAGIC = (0x65DF65DF65DF65DF).to_bytes(8, "little")


def describe_foreign(path: Path) -> str:
    """A hint of what a file that is not what was expected is instead ("" when nothing is recognised)."""
    try:
        head = read_head(path)
    except OSError:
        return ""
    if not head:
        return " (it is empty)"
    if head.startswith(GSD_MAGIC):
        return " (it is a GSD trajectory)"
    if head.startswith(b"\x93NUMPY"):
        return " (it is a NumPy .npy array)"
    if head.startswith(b"\x89PNG"):
        return " (it is a PNG image)"
    if head.lstrip().startswith(b"{"):
        return " (it is JSON text)"
    return ""
