"""Data sets of stationary snapshots for training and estimation.

Format (a folder; every file written atomically, so an interrupted build leaves no corrupt file):

    manifest.json        version, system, dt, seed, burn_in, spacing, n_frames, shards, and the state after the
                         last shard (so ``build_dataset`` resumes exactly where it stopped)
    x_00000.npy ...      (frames, N, 2) float64 wrapped positions, one shard per `shard_frames` frames
    q_00000.npy ...      (frames, N, 2) propulsion g (AOUP) or (frames, N, 1) θ (ABP)
    step_00000.npy ...   (frames,) global step of each frame

Shards are memory-mapped on reading, so sets larger than memory can be used frame by frame (training streams
them in windows of frames: learning/stream.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validate as check

FORMAT_VERSION = 1


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".partial.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _save_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


class SnapshotDataset:
    """Read access to a snapshot folder: ``len(ds)`` frames, ``ds[i] -> (x, g)``, ``ds.x``/``ds.g`` as lazily
    concatenated views (``ds.x[i]`` reads one frame), ``ds.system``, ``ds.metadata``."""

    def __init__(self, path):
        from ..systems import system_from_dict

        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.exists():
            raise ValueError(f"path: {self.path} is not an activescore data set (no manifest.json)")
        self.metadata = json.loads(manifest.read_text())
        self.system = system_from_dict(self.metadata["system"])
        shards = self.metadata["shards"]
        self._x = [np.load(self.path / f"x_{k:05d}.npy", mmap_mode="r") for k in range(shards)]
        self._q = [np.load(self.path / f"q_{k:05d}.npy", mmap_mode="r") for k in range(shards)]
        self.step = np.concatenate([np.load(self.path / f"step_{k:05d}.npy") for k in range(shards)]) if shards else \
            np.zeros(0, dtype=np.int64)
        self._offsets = np.cumsum([0] + [len(a) for a in self._x])
        self.x = _FrameView(self, "x")
        self.g = _FrameView(self, "g")

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def dt(self) -> float:
        return self.metadata["dt"]

    def fingerprint(self) -> str:
        """A short hash of the data that reads no frame, for training checkpoints: the manifest (system, plan, and the
        simulation state after the last shard, which differs for any other simulation) and every shard's size.
        A shard edited in place to the same size goes unnoticed."""
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps(self.metadata, sort_keys=True).encode())
        for k in range(self.metadata["shards"]):
            for name in (f"x_{k:05d}.npy", f"q_{k:05d}.npy", f"step_{k:05d}.npy"):
                h.update(f"{name}:{(self.path / name).stat().st_size};".encode())
        return h.hexdigest()

    def _locate(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range for {n} frames")
        i %= n
        shard = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return shard, i - self._offsets[shard]

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        
        shard, j = self._locate(int(i))
        x = np.array(self._x[shard][j], dtype=np.float64)
        g = self.system.propulsion_direction(np.array(self._q[shard][j], dtype=np.float64))
        return x, g

    def __getitem__(self, i):
        return self.frame(i)

    def load(self, frames=None) -> tuple[np.ndarray, np.ndarray]:
        """(x, g) of the chosen frames (default: all) as in-memory arrays."""
        idx = range(len(self)) if frames is None else frames
        pairs = [self.frame(i) for i in idx]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


class _FrameView:
    """``ds.x[i]`` / ``ds.g[i]`` read single frames; ``np.asarray(ds.x)`` loads everything."""

    def __init__(self, dataset: SnapshotDataset, which: str):
        self._ds, self._which = dataset, which

    def __len__(self) -> int:
        return len(self._ds)

    @property
    def shape(self):
        return (len(self._ds), self._ds.system.n_particles, 2)

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            return self._ds.frame(int(i))[0 if self._which == "x" else 1]
        idx = range(len(self._ds))[i] if isinstance(i, slice) else i
        return np.stack([self[int(k)] for k in idx])

    def __array__(self, dtype=None, copy=None):
        a = self[slice(None)]
        return a.astype(dtype) if dtype is not None else a


@dataclass(frozen=True)
class DatasetPlan:
    """What ``build_dataset`` will do: burn-in steps, then `n_frames` snapshots `spacing` steps apart."""

    n_frames: int
    spacing: int
    burn_in: int
    dt: float
    seed: int
    shard_frames: int = 16

    def __post_init__(self):
        check.integer("n_frames", self.n_frames, low=1)
        check.integer("spacing", self.spacing, low=1)
        check.integer("burn_in", self.burn_in, low=0)
        check.real("dt", self.dt, low=0.0, low_open=True)
        check.integer("seed", self.seed, low=0, high=2**64 - 1)
        check.integer("shard_frames", self.shard_frames, low=1)


def build_dataset(system, plan: DatasetPlan, path, *, init="uniform", backend="auto", n_threads=0,
                  progress=True) -> SnapshotDataset:
    """Simulate `system` and write a snapshot data set to the folder `path`, resuming if it holds a partial one
    built with the same system and plan (an interrupted build continues exactly where it stopped)."""
    from .._version import __version__
    from ..simulation.simulate import simulate
    from ..simulation.trajectory import State

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest_path = path / "manifest.json"
    header = {"format": FORMAT_VERSION, "version": __version__, "system": system.to_dict(), "dt": plan.dt,
              "seed": plan.seed, "burn_in": plan.burn_in, "spacing": plan.spacing,
              "n_frames_planned": plan.n_frames, "shard_frames": plan.shard_frames, "init": str(init)}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        previous = {k: manifest.get(k) for k in header if k != "version"}
        if previous != {k: v for k, v in header.items() if k != "version"}:
            raise ValueError(f"path: {path} holds a data set built with other settings; choose another folder")
    else:
        manifest = {**header, "shards": 0, "n_frames": 0, "state": None}

    def resume_state():
        s = manifest["state"]
        return State(system, np.asarray(s["x"]), np.asarray(s["q"]), s["step"], plan.seed, plan.dt)

    bar = None
    if progress and manifest["n_frames"] < plan.n_frames:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.n_frames, initial=manifest["n_frames"], unit="frame", desc="data set")
    try:
        while manifest["n_frames"] < plan.n_frames:
            frames = min(plan.shard_frames, plan.n_frames - manifest["n_frames"])
            first = manifest["state"] is None
            start = init if first else resume_state()
            # The first shard's first frame comes right after the burn-in; later shards start one spacing on.
            traj = simulate(system, (frames - 1) * plan.spacing if first else frames * plan.spacing, plan.dt,
                            seed=plan.seed, save_every=plan.spacing, burn_in=plan.burn_in if first else 0,
                            init=start, backend=backend, n_threads=n_threads, progress=False)
            x, q, steps = (traj.x, traj.q, traj.step) if first else (traj.x[1:], traj.q[1:], traj.step[1:])
            k = manifest["shards"]
            _save_npy(path / f"x_{k:05d}.npy", np.ascontiguousarray(x))
            _save_npy(path / f"q_{k:05d}.npy", np.ascontiguousarray(q))
            _save_npy(path / f"step_{k:05d}.npy", np.asarray(steps, dtype=np.int64))
            final = traj.final_state
            manifest.update(shards=k + 1, n_frames=manifest["n_frames"] + len(x),
                            state={"x": final.x.tolist(), "q": final.q.tolist(), "step": final.step})
            _save_json(manifest_path, manifest)  # the shard counts only once the manifest names it
            if bar is not None:
                bar.update(len(x))
    finally:
        if bar is not None:
            bar.close()
    return SnapshotDataset(path)
