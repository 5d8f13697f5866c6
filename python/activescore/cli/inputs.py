"""The files and folders given on the command line, checked before any output is made: each mistake is one
line naming the option and the file."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..io.files import existing_file
from . import pipeline


@contextlib.contextmanager
def opening(option: str, path):
    """Errors while reading an input name the option and the file: a foreign or corrupt file otherwise surfaces as
    a bare KeyError or decoder message."""
    try:
        yield
    except OSError:
        raise  # carries its file name
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{option} {path}: {err}") from err
    except Exception as err:
        detail = f"{type(err).__name__}: {err}"
        raise ValueError(f"{option} {path}: cannot be read as an activescore file ({detail})") from err


def input_file(option: str, path, what: str) -> Path:
    """An input file given on the command line, which must exist and be a file (``what``: its kind)."""
    try:
        return existing_file(path, what)
    except ValueError as err:
        raise ValueError(f"{option} {err}") from None


def input_samples(option: str, path):
    """Check the samples given on the command line before any output is made: ``(data set, system)`` for a data
    set folder (its manifest read), ``(None, system)`` for a GSD trajectory (its first frame read; the stage reads
    it whole)."""
    from ..io.files import GSD_MAGIC, describe_foreign, read_head
    from ..io.gsd import read_frame

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{option} {path}: no such file or folder")
    if not path.is_dir():
        if read_head(path, len(GSD_MAGIC)) != GSD_MAGIC and path.suffix != ".gsd":
            raise ValueError(
                f"{option}: {path} is neither a GSD trajectory nor a data set folder{describe_foreign(path)}"
            )
        with opening(option, path):
            return None, read_frame(path, 0)[1]
    if not (path / "manifest.json").exists() and (path / "dataset" / "manifest.json").exists():
        raise ValueError(
            f"{option} {path}: is the output folder of `activescore dataset`; the data set is {path / 'dataset'}"
        )
    with opening(option, path):
        samples, system = pipeline.read_samples(path)
    return samples, system


def output_file(option: str, path) -> Path:
    """An output file whose folder must exist (it is not created for a single file)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder, expected a file name")
    return path


def frame_index(frame: int, n_frames: int, source) -> int:
    if not -n_frames <= frame < n_frames:
        raise ValueError(
            f"--frame {frame}: {source} has {n_frames} frames, so the index must be in "
            f"[0, {n_frames - 1}] (or [-{n_frames}, -1] counting from the end)"
        )
    return frame % n_frames
