"""Frame sinks: where a simulation's saved frames go (memory, a GSD file, the shards of a data set).

A run saves its first frame after the burn-in and then one every ``save_every`` steps. It opens each sink with a
:class:`FrameHeader` (what determines the frames) and hands it every saved frame in order. A sink on disk can be
asked to resume: it then checks that what it holds was written by the same run and reports the frames it has
(:class:`SavedFrames`), and the run continues from the last of them exactly as an unbroken one would (the random
stream is keyed by the global step).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class FrameHeader:
    """What fixes the frames of a run. Frame i is saved at step ``first_step + burn_in + i × save_every``;
    ``n_frames`` are planned."""

    system: dict
    dt: float
    seed: int
    burn_in: int
    save_every: int
    n_frames: int
    first_step: int = 0
    init: str = "uniform"
    dtype: str = "float64"
    backend: str = ""

    def step_of(self, frame: int) -> int:
        return self.first_step + self.burn_in + frame * self.save_every

    def to_dict(self) -> dict:
        return asdict(self)

    #: Keys that a resumed run must share with the stored one (the planned length may grow; the backend and the
    #: thread count do not change the frames).
    SAME_ON_RESUME = ("system", "dt", "seed", "burn_in", "save_every", "first_step", "init", "dtype")

    def differences(self, stored: dict, keys=SAME_ON_RESUME) -> list[str]:
        """Keys of ``keys`` present in ``stored`` whose values differ from this header's."""
        mine = self.to_dict()
        return [k for k in keys if k in stored and stored[k] != mine[k]]


@dataclass(frozen=True)
class SavedFrames:
    """What a resumed sink holds: ``n_frames`` frames, the last at ``step`` with state ``x`` (N, 2), ``q`` (N, c)."""

    n_frames: int
    x: np.ndarray
    q: np.ndarray
    step: int


@runtime_checkable
class FrameSink(Protocol):
    """Where saved frames go. ``open`` is called once before the first frame and ``close`` always (also after an
    error or an interruption: an on-disk sink then keeps what is complete, so the run can resume)."""

    def open(self, header: FrameHeader, *, resume: bool = False, overwrite: bool = False) -> SavedFrames | None:
        """Prepare to receive frames; with ``resume`` return the frames already held (None: start afresh)."""

    def append(self, x: np.ndarray, q: np.ndarray, step: int) -> None:
        """Store one frame: positions ``x`` (N, 2), propulsion state ``q`` (N, c), global ``step``."""

    def close(self) -> None:
        """Finish (keeps every complete frame)."""

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (F, N, 2), q (F, N, c), step (F,))`` of the frames held (to fill memory when resuming)."""


class MemorySink:
    """Keeps the frames in memory (what ``simulate`` returns as a Trajectory)."""

    def __init__(self):
        self.header = None
        self.x, self.q, self.step = [], [], []

    def open(self, header: FrameHeader, *, resume: bool = False, overwrite: bool = False) -> None:
        self.header = header
        return None

    def extend(self, x, q, step) -> None:
        """Add frames saved earlier (by a sink on disk the run resumes)."""
        self.x.extend(np.asarray(x, dtype=np.float64))
        self.q.extend(np.asarray(q, dtype=np.float64))
        self.step.extend(int(s) for s in step)

    def append(self, x, q, step) -> None:
        self.x.append(x)
        self.q.append(q)
        self.step.append(int(step))

    def close(self) -> None:
        pass

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frames as arrays: x (F, N, 2), q (F, N, c), step (F,) int64 (at least one frame held)."""
        return np.stack(self.x), np.stack(self.q), np.asarray(self.step, dtype=np.int64)
