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
from pathlib import Path

import numpy as np

from .. import _validate as check
from .._version import __version__
from ..systems import system_from_dict
from .files import MissingFileError, atomic_file, atomic_write, describe_foreign
from .frames import FrameHeader, SavedFrames

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Keys of the manifest that fix the frames: a folder is resumed only by a build with the same values.
_PLAN_KEYS = ("format", "system", "dt", "seed", "burn_in", "spacing", "n_frames_planned", "shard_frames", "init")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as f:
        np.save(f, array)


def _save_json(path: Path, payload: dict) -> None:
    atomic_write(path, json.dumps(payload, indent=2))


def _shard_names(k: int) -> tuple[str, str, str]:
    return f"x_{k:05d}.npy", f"q_{k:05d}.npy", f"step_{k:05d}.npy"


def read_manifest(path) -> dict:
    """The manifest of the data set folder ``path``, checked: an error names the folder and what it is not."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "data set folder")
    if not path.is_dir():
        raise ValueError(f"path: {path} is a file, not a data set folder{describe_foreign(path)}")
    manifest = path / MANIFEST
    if not manifest.exists():
        raise ValueError(f"path: {path} is not an activescore data set (no {MANIFEST})")
    try:
        metadata = json.loads(manifest.read_text())
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{manifest} is corrupt (not JSON: {err}); rebuild the data set") from None
    required: dict[str, type | tuple[type, ...]] = {
        "format": int,
        "system": dict,
        "dt": (int, float),
        "seed": int,
        "shards": int,
        "n_frames": int,
    }
    if not isinstance(metadata, dict):
        metadata = {}
    wrong = [k for k, kind in required.items() if not isinstance(metadata.get(k), kind)]
    if wrong:
        raise ValueError(f"{manifest} is not an activescore data set manifest (missing or invalid: {', '.join(wrong)})")
    if metadata["format"] != FORMAT_VERSION:
        raise ValueError(
            f"{manifest}: data set format {metadata['format']} is not supported (this version reads "
            f"format {FORMAT_VERSION})"
        )
    return metadata


def _load_shard(path: Path, kind: str, n_shards: int, mmap: bool) -> np.ndarray:
    if not path.exists():
        raise MissingFileError(path, f"{kind} shard (the manifest names {n_shards} shards)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as err:  # truncated or foreign: np.load raises ValueError, OSError, EOFError, ...
        raise ValueError(f"{path} is not a readable .npy shard (truncated or corrupt?): {err}") from None


class SnapshotDataset:
    """Read access to a snapshot folder: ``len(ds)`` frames, ``ds[i] -> (x, g)``, ``ds.x``/``ds.g`` as lazily
    concatenated views (``ds.x[i]`` reads one frame), ``ds.system``, ``ds.metadata``.

    Opening checks the manifest and every shard's header (not the frames): a missing, corrupt or foreign file is
    an error naming it.
    """

    #: Frames stay on disk (memory-mapped) until asked for: see :class:`activescore.samples.Samples`.
    in_memory = False

    def __init__(self, path):
        self.path = Path(path)
        self.metadata = read_manifest(self.path)
        try:
            self.system = system_from_dict(self.metadata["system"])
        except Exception as err:
            raise ValueError(f"{self.path / MANIFEST}: its system cannot be rebuilt ({err})") from None
        shards = self.metadata["shards"]
        n, c = self.system.n_particles, self.system.propulsion_components
        self._x, self._q, steps = [], [], []
        for k in range(shards):
            names = _shard_names(k)
            x, q, step = (
                _load_shard(self.path / name, kind, shards, mmap)
                for name, kind, mmap in zip(names, ("x", "q", "step"), (True, True, False), strict=True)
            )
            if x.shape[1:] != (n, 2) or q.shape[1:] != (n, c) or step.ndim != 1 or not len(x) == len(q) == len(step):
                raise ValueError(
                    f"{self.path}: shard {k} has shapes x {x.shape}, q {q.shape}, step {step.shape}; "
                    f"expected (F, {n}, 2), (F, {n}, {c}), (F,)"
                )
            self._x.append(x)
            self._q.append(q)
            steps.append(step)
        self.step = np.concatenate(steps) if shards else np.zeros(0, dtype=np.int64)
        if len(self.step) != self.metadata["n_frames"]:
            raise ValueError(
                f"{self.path}: the shards hold {len(self.step)} frames, the manifest says {self.metadata['n_frames']}"
            )
        self._offsets = np.cumsum([0] + [len(a) for a in self._x])
        self.x = _FrameView(self, "x")
        self.g = _FrameView(self, "g")

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def dt(self) -> float:
        return self.metadata["dt"]

    @property
    def n_particles(self) -> int:
        return self.system.n_particles

    def fingerprint(self) -> str:
        """A short hash of the data that reads no frame, for training checkpoints: the manifest (system, plan, and the
        simulation state after the last shard, which differs for any other simulation) and every shard's size.
        A shard edited in place to the same size goes unnoticed."""
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps(self.metadata, sort_keys=True).encode())
        for k in range(self.metadata["shards"]):
            for name in _shard_names(k):
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
        """(x, g) of frame ``i``, each (N, 2) float64."""
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
        if not pairs:
            raise ValueError(f"frames: no frames chosen of the {len(self)} in {self.path}")
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (F, N, 2), q (F, N, c), step (F,))`` of every frame, the propulsion state as stored."""
        n, c = self.system.n_particles, self.system.propulsion_components
        if not self._x:
            return np.empty((0, n, 2)), np.empty((0, n, c)), self.step.copy()
        return (
            np.concatenate([np.asarray(a) for a in self._x]),
            np.concatenate([np.asarray(a) for a in self._q]),
            self.step.copy(),
        )


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


class ShardSink:
    """A frame sink writing the shards of a data set folder (see :mod:`activescore.io.frames`): a shard of
    ``shard_frames`` frames is written (atomically, then named in the manifest) as soon as it is complete; frames of
    an incomplete shard are dropped when the run stops early, and a resumed run redoes them."""

    def __init__(self, path, shard_frames: int = 16):
        self.path = Path(path)
        self.shard_frames = check.integer("shard_frames", shard_frames, low=1)
        self.manifest: dict = {}
        self._buffer: list[tuple[np.ndarray, np.ndarray, int]] = []

    def __repr__(self) -> str:
        return f"ShardSink({str(self.path)!r}, shard_frames={self.shard_frames})"

    def _plan(self, header: FrameHeader) -> dict:
        return {
            "format": FORMAT_VERSION,
            "version": __version__,
            "system": header.system,
            "dt": header.dt,
            "seed": header.seed,
            "burn_in": header.burn_in,
            "spacing": header.save_every,
            "n_frames_planned": header.n_frames,
            "shard_frames": self.shard_frames,
            "init": header.init,
        }

    def open(self, header: FrameHeader, *, resume: bool = False, overwrite: bool = False) -> SavedFrames | None:
        plan = self._plan(header)
        self._buffer = []
        if (self.path / MANIFEST).exists() and not overwrite:
            if not resume:
                raise ValueError(
                    f"path: {self.path} holds a data set; pass overwrite=True to replace it (or resume it)"
                )
            manifest = read_manifest(self.path)
            if any(manifest.get(k) != plan[k] for k in _PLAN_KEYS):
                raise ValueError(f"path: {self.path} holds a data set built with other settings; choose another folder")
            self.manifest = manifest
            state = manifest["state"]
            if manifest["n_frames"] == 0 or state is None:
                return None
            return SavedFrames(
                manifest["n_frames"],
                np.asarray(state["x"], dtype=np.float64),
                np.asarray(state["q"], dtype=np.float64),
                int(state["step"]),
            )
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for old in [self.path / MANIFEST, *self.path.glob("[xq]_*.npy"), *self.path.glob("step_*.npy")]:
                old.unlink()
        self.manifest = {**plan, "shards": 0, "n_frames": 0, "state": None}
        return None

    def append(self, x: np.ndarray, q: np.ndarray, step: int) -> None:
        self._buffer.append((x, q, int(step)))
        manifest = self.manifest
        if len(self._buffer) == min(self.shard_frames, manifest["n_frames_planned"] - manifest["n_frames"]):
            self._write_shard()

    def _write_shard(self) -> None:
        manifest, k = self.manifest, self.manifest["shards"]
        x = np.stack([b[0] for b in self._buffer])
        q = np.stack([b[1] for b in self._buffer])
        steps = np.asarray([b[2] for b in self._buffer], dtype=np.int64)
        for name, array in zip(_shard_names(k), (x, q, steps), strict=True):
            _save_npy(self.path / name, np.ascontiguousarray(array))
        last_x, last_q, last_step = self._buffer[-1]
        manifest.update(
            shards=k + 1,
            n_frames=manifest["n_frames"] + len(x),
            state={"x": np.asarray(last_x).tolist(), "q": np.asarray(last_q).tolist(), "step": last_step},
        )
        _save_json(self.path / MANIFEST, manifest)  # the shard counts only once the manifest names it
        self._buffer = []

    def close(self) -> None:
        self._buffer = []

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return SnapshotDataset(self.path).read()
