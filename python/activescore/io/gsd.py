"""GSD files that the gsd package, freud and OVITO open.

Per frame: configuration (2D box of side L, step), particles/position (float32, as the HOOMD schema wants),
particles/diameter, particles/orientation (a quaternion about z along g, so OVITO can draw arrows), and the
exact float64 state as per-particle log fields ``particles/activescore_position`` (N, 2) and
``particles/propulsion`` (N, 2 for AOUP g; N, 1 for ABP θ). Frame 0 also holds ``activescore/metadata``:
JSON with the system, dt, seed and package version, so a file alone is enough to resume a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._version import __version__
from ..systems import ParticleSystem, system_from_dict
from .files import GSD_MAGIC, describe_foreign, existing_file, permissions_as_created, read_head
from .frames import FrameHeader, SavedFrames

_METADATA = "activescore/metadata"
_POSITION = "particles/activescore_position"
_PROPULSION = "particles/propulsion"


def _gsd_hoomd():
    import gsd.hoomd

    return gsd.hoomd


def _orientation(system, q: np.ndarray) -> np.ndarray:
    g = system.propulsion_direction(q)
    half = 0.5 * np.arctan2(g[:, 1], g[:, 0])
    quat = np.zeros((len(g), 4), dtype=np.float32)
    quat[:, 0] = np.cos(half)
    quat[:, 3] = np.sin(half)
    return quat


class GSDWriter:
    """Streams frames to ``path`` through ``path.partial``: each frame is flushed as it is written, and the file
    takes its final name when the writer closes (normally, on a blow-up or on Ctrl-C alike), so a finished file is
    never half-written and an interrupted run keeps the frames it had."""

    def __init__(
        self, path, system, *, dt: float, seed: int, backend: str = "", append: bool = False, run: dict | None = None
    ):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.system = system
        # run: the rest of the run's FrameHeader (burn-in, save_every, ...), so that a resume can be checked.
        self._metadata = {
            **(run or {}),
            "version": __version__,
            "system": system.to_dict(),
            "dt": dt,
            "seed": seed,
            "backend": backend,
        }
        # append=True continues the frames an interrupted writer left in path.partial.
        resume = append and self.partial.exists()
        self._file = _gsd_hoomd().open(str(self.partial), "a" if resume else "w")
        if not resume:
            permissions_as_created(self.partial)  # the gsd library creates its files 0640 whatever the umask
        self._frames = len(self._file) if resume else 0

    def append(self, x: np.ndarray, q: np.ndarray, step: int) -> None:
        system = self.system
        frame = _gsd_hoomd().Frame()
        frame.configuration.step = int(step)
        frame.configuration.dimensions = 2
        frame.configuration.box = [system.box_length, system.box_length, 0.0, 0.0, 0.0, 0.0]
        frame.particles.N = system.n_particles
        position = np.zeros((system.n_particles, 3), dtype=np.float32)
        position[:, :2] = x
        frame.particles.position = position
        frame.particles.diameter = (2.0 * system.radius).astype(np.float32)
        frame.particles.orientation = _orientation(system, q)
        frame.log[_POSITION] = np.asarray(x, dtype=np.float64)
        frame.log[_PROPULSION] = np.asarray(q, dtype=np.float64)
        if self._frames == 0:
            frame.log[_METADATA] = np.frombuffer(json.dumps(self._metadata).encode(), dtype=np.uint8)
        self._file.append(frame)
        self._file.flush()
        self._frames += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            os.replace(self.partial, self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def partial_path(path: Path) -> Path:
    """Where :class:`GSDWriter` streams the frames of ``path`` until it closes."""
    return path.with_name(path.name + ".partial")


class GSDSink:
    """A frame sink writing a GSD file (see :mod:`activescore.io.frames`); resumes from the frames in the file (or
    in the ``.partial`` file an interrupted run left)."""

    def __init__(self, path):
        self.path = Path(path)
        self._writer = None

    def __repr__(self) -> str:
        return f"GSDSink({str(self.path)!r})"

    def open(self, header: FrameHeader, *, resume: bool = False, overwrite: bool = False) -> SavedFrames | None:
        partial = partial_path(self.path)
        found = partial if partial.exists() else self.path if self.path.exists() else None
        saved = None
        if found is not None and resume:
            saved = _saved_frames(found, header)
            if found == self.path:
                os.replace(self.path, partial)  # frames published by an interrupted run: continue them
        elif self.path.exists() and not overwrite:
            raise ValueError(
                f"out: {self.path} exists; pass overwrite=True to replace it (or resume=True to continue "
                "the run it holds)"
            )
        system = system_from_dict(header.system)
        run = {k: v for k, v in header.to_dict().items() if k not in ("system", "dt", "seed", "backend")}
        self._writer = GSDWriter(
            self.path, system, dt=header.dt, seed=header.seed, backend=header.backend, append=saved is not None, run=run
        )
        return saved

    def append(self, x: np.ndarray, q: np.ndarray, step: int) -> None:
        self._writer.append(x, q, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        partial = partial_path(self.path)
        _, _, x, q, steps = read_frames(partial if partial.exists() else self.path)
        return x, q, steps


def _saved_frames(path: Path, header: FrameHeader) -> SavedFrames | None:
    """The frames of ``path`` to resume from (None when it has none), after checking that they come from the run
    that ``header`` describes."""
    with _open(path) as f:
        if len(f) == 0:
            return None
        meta, system = _header(f, path)
        stored = {**meta, "system": system.to_dict()}
        different = header.differences(stored)
        if different:
            raise ValueError(
                f"out: {path} holds a run with other settings ({', '.join(different)} differ); choose "
                "another file or pass overwrite=True"
            )
        x, q, step = _frame_state(f[len(f) - 1], system)
        return SavedFrames(len(f), x, q, step)


def _open(path):
    """An activescore-readable GSD file opened for reading, or an error naming the path and what it is not."""
    path = existing_file(path, "GSD file")
    if read_head(path, len(GSD_MAGIC)) != GSD_MAGIC:
        raise ValueError(f"{path} is not a GSD file{describe_foreign(path)}")
    try:
        return _gsd_hoomd().open(str(path), "r")
    except Exception as err:  # the gsd package raises RuntimeError for corrupt and truncated files
        raise ValueError(f"{path} is not a readable GSD file (truncated or corrupt?): {err}") from None


def _header(f, path) -> tuple[dict, ParticleSystem]:
    """(metadata, system) from frame 0 of an open activescore GSD file."""
    if len(f) == 0:
        raise ValueError(f"{path} holds no frames")
    log = f[0].log
    if _METADATA not in log or _POSITION not in log or _PROPULSION not in log:
        raise ValueError(f"{path} is a GSD file without activescore metadata: written by another program?")
    try:
        meta = json.loads(bytes(log[_METADATA]).decode())
        return meta, system_from_dict(meta["system"])
    except Exception as err:  # unreadable JSON, or a system this version cannot rebuild
        raise ValueError(f"{path}: its activescore metadata cannot be read ({type(err).__name__}: {err})") from None


def _frame_state(frame, system):
    """(x, q, step) of one frame, from the exact float64 logs."""
    x = np.asarray(frame.log[_POSITION], dtype=np.float64).reshape(-1, 2)
    q = np.asarray(frame.log[_PROPULSION], dtype=np.float64).reshape(system.n_particles, -1)
    return x, q, int(frame.configuration.step)


def read_frames(path) -> tuple[dict, ParticleSystem, np.ndarray, np.ndarray, np.ndarray]:
    """(metadata, system, x (F, N, 2), q (F, N, c), steps (F,)) of every frame of an activescore GSD file."""
    with _open(path) as f:
        meta, system = _header(f, path)
        xs, qs, steps = zip(*(_frame_state(frame, system) for frame in f), strict=True)
    return meta, system, np.stack(xs), np.stack(qs), np.asarray(steps, dtype=np.int64)


def read_header(path) -> tuple[dict, ParticleSystem, int]:
    """(metadata, system, number of frames) of an activescore GSD file, reading its first frame only."""
    with _open(path) as f:
        meta, system = _header(f, path)
        return meta, system, len(f)


def read_frame(path, frame: int = -1) -> tuple[dict, ParticleSystem, np.ndarray, np.ndarray, int]:
    """(metadata, system, x (N, 2), q (N, c), step) of one frame; reads that frame only."""
    with _open(path) as f:
        meta, system = _header(f, path)
        if not -len(f) <= frame < len(f):
            raise ValueError(f"frame {frame}: {path} has {len(f)} frames (0 to {len(f) - 1}, or -1 for the last)")
        x, q, step = _frame_state(f[frame], system)
    return meta, system, x, q, step
