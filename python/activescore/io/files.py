"""Files on disk: one way to write them atomically and one way to check a file before reading it.

Outputs are written to a temporary file in the target's folder and renamed over the target when complete, so a
reader (or a run killed mid-write) sees either the old file or the new one, never half of one. Temporary files
are created with ``open(..., "x")``, so finished files get the permissions the umask allows, like any other file
the user creates.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
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


def umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def permissions_as_created(path) -> None:
    """Give ``path`` the permissions a file created by the user gets (0666 less the umask): some writers (the gsd
    library) create their files 0640 whatever the umask."""
    os.chmod(path, 0o666 & ~umask())


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


try:
    import fcntl  # noqa: F401
except ImportError:  # pragma: no cover (Windows)
    _HAS_FCNTL = False
else:
    _HAS_FCNTL = True

#: The lock file of an output folder (:class:`FolderLock`).
LOCK_NAME = ".activescore.lock"


class FolderInUse(ValueError):
    """An output folder is held by another running command (a bad argument: nothing was done)."""


class FolderLock:
    """An advisory lock on an output folder, held for a whole run, so that two commands never write into one folder.

    ``fcntl.flock`` on ``FOLDER/.activescore.lock``: the kernel releases it when the holder exits, however it
    ends (Ctrl-C, kill -9, a crash), so a stale lock never needs removing. The holder writes who it is (command,
    process id, host, start time) into the file, and a second command that finds the folder held stops at once
    with :class:`FolderInUse` naming the holder. The lock file stays in the folder after the run (removing it would
    let a third process lock a file no longer in the folder).

    On a platform without ``fcntl`` (Windows) the lock is not taken.

    Parameters
    ----------
    folder : path
        The output folder; it must exist.
    holder : str
        What holds it, as the refusal names it (e.g. ``"activescore simulate"``).
    option : str
        How error messages name the folder (``"--out"``).
    """

    def __init__(self, folder, holder: str, option: str = "--out"):
        self.folder, self.holder, self.option = Path(folder), holder, option
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self.created = False  # whether acquire made the lock file

    def acquire(self) -> FolderLock:
        """Take the lock, or raise :class:`FolderInUse` naming the command that holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            self.created = True
        except FileExistsError:
            fd = os.open(self.path, os.O_RDWR)
            self.created = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUse(
                f"{self.option} {self.folder}: in use by {self._describe_holder()}; wait for it to finish or choose "
                "another folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        info = {"holder": self.holder, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return self

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (always true where ``fcntl`` is missing and no lock is taken)."""
        return self._fd is not None or not _HAS_FCNTL

    def _describe_holder(self) -> str:
        try:
            info = json.loads(self.path.read_text())
            return f"{info['holder']} (process {info['pid']} on {info['host']}, since {info['since']})"
        except Exception:  # written a moment after the lock is taken: the holder may not have said who it is yet
            return "another activescore command"

    def release(self, remove: bool = False) -> None:
        """Let go of the lock (the kernel does so too when the process ends). ``remove``: also delete the lock file
        when :meth:`acquire` made it (a run that takes back what it wrote), while still holding it."""
        if self._fd is not None:
            if remove and self.created:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # nobody holds it any more
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
