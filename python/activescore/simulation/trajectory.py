"""Trajectories and resumable states: NumPy arrays in, NumPy arrays out, GSD on disk."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.gsd import GSDWriter, read_frame, read_frames
from ..systems import ParticleSystem


@dataclass(frozen=True)
class State:
    """Everything a run needs to continue exactly: wrapped positions x (N, 2), propulsion state q (AOUP: g (N, 2);
    ABP: θ (N, 1)), the global step counter that keys the random stream, the seed and the time step."""

    system: ParticleSystem
    x: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    step: int
    seed: int
    dt: float

    @property
    def g(self) -> np.ndarray:
        return self.system.propulsion_direction(self.q)


@dataclass
class Trajectory:
    """Saved frames of a run. ``x``: (frames, N, 2) wrapped positions; ``g``: (frames, N, 2) propulsion;
    ``theta``: (frames, N) for ABP, else None; ``step``: global step of each frame; ``t = step · dt``."""

    system: ParticleSystem
    x: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    step: np.ndarray
    dt: float
    seed: int
    final_state: State | None = field(default=None, repr=False)
    backend: str = ""

    @property
    def g(self) -> np.ndarray:
        return self.system.propulsion_direction(self.q)

    @property
    def theta(self) -> np.ndarray | None:
        return self.q[..., 0] if self.system.propulsion_components == 1 else None

    @property
    def t(self) -> np.ndarray:
        return self.step * self.dt

    def __len__(self) -> int:
        return len(self.x)

    def state(self, frame: int = -1) -> State:
        """The state at a saved frame (resume from it with ``simulate(..., init=traj.state(i))``)."""
        return State(self.system, self.x[frame].copy(), self.q[frame].copy(), int(self.step[frame]), self.seed, self.dt)

    def save(self, path) -> None:
        """Write all frames to a GSD file (atomically: a temporary file renamed at the end)."""
        with GSDWriter(path, self.system, dt=self.dt, seed=self.seed, backend=self.backend) as writer:
            for i in range(len(self)):
                writer.append(self.x[i], self.q[i], int(self.step[i]))


def load_trajectory(path) -> Trajectory:
    """Read a GSD file written by activescore back into a :class:`Trajectory` (float64 state, system, seed)."""
    meta, system, x, q, steps = read_frames(path)
    traj = Trajectory(system, x, q, steps, meta["dt"], meta["seed"], backend=meta.get("backend", ""))
    traj.final_state = traj.state(-1)
    return traj


def load_state(path, frame: int = -1) -> State:
    """The resumable :class:`State` at a frame of a GSD file (default: the last); reads that frame only."""
    meta, system, x, q, step = read_frame(path, frame)
    return State(system, x, q, step, meta["seed"], meta["dt"])
