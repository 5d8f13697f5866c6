"""Samples: stationary snapshots (x, g) of a system, wherever they are held.

Everything that consumes snapshots (training, estimation) accepts the same inputs and normalises them with
:func:`as_samples`: a :class:`~activescore.Trajectory` (or anything with ``.x`` and ``.g``), a tuple ``(x, g)``,
a GSD file written by activescore, or a data set (:class:`~activescore.io.dataset.SnapshotDataset` or its
folder). What comes back satisfies :class:`Samples`: frames in memory (:class:`ArraySamples`) or a data set
whose frames stay on disk until asked for.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .io.dataset import SnapshotDataset
from .io.files import GSD_MAGIC, MissingFileError, describe_foreign, read_head
from .simulation.trajectory import load_trajectory
from .systems import ParticleSystem


@runtime_checkable
class Samples(Protocol):
    """Snapshots of one system. ``system`` is None only for bare arrays given without one; ``in_memory`` is False
    for a data set whose frames are read from disk on demand (train on it in windows)."""

    system: ParticleSystem | None
    in_memory: bool

    def __len__(self) -> int:
        """The number of frames F (at least 1)."""

    @property
    def n_particles(self) -> int:
        """N, the particles per frame."""

    def load(self, frames=None) -> tuple[np.ndarray, np.ndarray]:
        """``(x, g)`` of the chosen frames (indices; default all), each (F', N, 2) float64, checked finite."""

    def fingerprint(self) -> str:
        """A short hash that changes with the data (stored in training checkpoints)."""


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """A short hash of arrays' shapes, dtypes and bytes."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_frames(x, g, name: str = "samples") -> tuple[np.ndarray, np.ndarray]:
    """``x``, ``g`` as float64 arrays (F, N, 2) of equal shape, F >= 1, finite. One snapshot (N, 2) becomes one
    frame."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if g.ndim == 2:
        g = g[None]
    if x.ndim != 3 or x.shape[-1] != 2 or x.shape != g.shape:
        raise ValueError(f"{name}: expected x and g of equal shape (frames, N, 2), got {x.shape} and {g.shape}")
    if len(x) == 0:
        raise ValueError(f"{name}: no snapshots")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(g))):
        raise ValueError(f"{name}: x and g must be finite everywhere (found NaN or inf)")
    return x, g


class ArraySamples:
    """Frames held in memory: ``x``, ``g`` (F, N, 2) float64, checked on construction; ``system`` may be None;
    ``dt``: the time step of the simulation they come from, where known (the finite-dt ceiling needs it)."""

    in_memory = True

    def __init__(self, x, g, system=None, *, name: str = "samples", source=None, dt: float | None = None):
        self.x, self.g = check_frames(x, g, name)
        self.system = system
        self.source = source  # the file the frames were read from, if any
        self.dt = dt

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_particles(self) -> int:
        return self.x.shape[1]

    def load(self, frames=None) -> tuple[np.ndarray, np.ndarray]:
        if frames is None:
            return self.x, self.g
        idx = np.asarray(frames if not isinstance(frames, range) else list(frames), dtype=np.int64)
        return self.x[idx], self.g[idx]

    def fingerprint(self) -> str:
        return fingerprint_arrays(self.x, self.g)

    def __repr__(self) -> str:
        src = f", source={str(self.source)!r}" if self.source is not None else ""
        return f"ArraySamples({len(self)} frames of {self.n_particles} particles{src})"


def _from_path(path: Path, name: str):
    if path.is_dir():
        return SnapshotDataset(path)
    if not path.exists():
        raise MissingFileError(path, "GSD trajectory or data set folder")
    if read_head(path, len(GSD_MAGIC)) == GSD_MAGIC or path.suffix == ".gsd":
        traj = load_trajectory(path)
        return ArraySamples(traj.x, traj.g, traj.system, name=name, source=path, dt=traj.dt)
    raise ValueError(f"{name}: {path} is neither a GSD trajectory nor a data set folder{describe_foreign(path)}")


def as_samples(samples, system=None, *, name: str = "samples") -> Samples:
    """Normalise snapshots to a :class:`Samples`.

    Parameters
    ----------
    samples
        A :class:`~activescore.Trajectory` (or any object with ``.x`` and ``.g`` of shape (F, N, 2) and optionally
        ``.system``), a tuple ``(x, g)`` of such arrays (one (N, 2) snapshot is one frame), a path to a GSD file
        written by activescore or to a data set folder, or a :class:`~activescore.io.dataset.SnapshotDataset`
        (or a :class:`Samples` already).
    system
        The system the samples belong to. Bare arrays take it; samples that carry their own must carry an equal
        one.
    name
        The parameter name used in error messages.

    Returns
    -------
    Samples
        :class:`ArraySamples` for frames in memory (a GSD file is read whole), the
        :class:`~activescore.io.dataset.SnapshotDataset` for a data set (frames stay on disk). ``.system`` is
        None only for bare arrays given without ``system``.

    Raises
    ------
    ValueError
        Shapes that are not (F, N, 2) alike, no frames, non-finite values, a system different from the samples'
        own, or a file that is neither kind (the error names the path and what it is not).
    FileNotFoundError
        A path that does not exist (the error is also a ValueError).
    """
    if isinstance(samples, (str, os.PathLike)):
        out = _from_path(Path(samples), name)
    elif isinstance(samples, (SnapshotDataset, ArraySamples)):
        out = samples
    elif isinstance(samples, (tuple, list)):
        if len(samples) != 2:
            raise ValueError(f"{name}: a tuple must be (x, g), got {len(samples)} items")
        x, g = samples
        out = ArraySamples(x, g, system, name=name)
    elif hasattr(samples, "x") and hasattr(samples, "g"):
        out = ArraySamples(
            samples.x, samples.g, getattr(samples, "system", None), name=name, dt=getattr(samples, "dt", None)
        )
    elif isinstance(samples, Samples):
        out = samples
    else:
        raise ValueError(
            f"{name} must be a Trajectory, a tuple (x, g), a GSD file or a data set (folder or "
            f"SnapshotDataset), got {type(samples).__name__}"
        )
    if system is not None:
        own = getattr(out, "system", None)
        if own is None:
            x, g = out.load()
            out = ArraySamples(
                x, g, system, name=name, source=getattr(out, "source", None), dt=getattr(out, "dt", None)
            )
        elif own != system:
            raise ValueError(f"system: {system!r} differs from {name}.system {own!r}")
    return out
