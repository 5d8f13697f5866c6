"""Training on data sets larger than memory: windows of frames streamed from a data set's memory-mapped shards.

Frames are visited in epochs, each a permutation of all frames drawn from ``(seed, epoch)``; window w holds the
frames at positions [w W, (w + 1) W) of that endless sequence and is trained on for ``steps_per_window`` steps.
Which frames a step sees is therefore a pure function of (seed, step), so a resumed run reads the same windows as
the unbroken one. While one window trains, a background thread reads the next from the shards and computes its
neighbour lists; every window has the same shape, so the compiled step is traced once.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .. import _validate as check
from ..samples import check_frames
from .data import Snapshots, make_snapshots

#: Without ``frames_in_memory``: the data set is loaded whole when its frames take at most this many bytes.
DEFAULT_MEMORY_BYTES = 2**30
#: Without ``steps_per_window``: each particle of a window is drawn about this many times before it is replaced,
#: so an epoch of windows draws as many samples as there are particles in the data set. Reading a window and
#: building its neighbour lists then costs far less than training on it and hides behind it (drawing each frame
#: only a few times instead left training waiting for the reads, about 3× slower on a CPU with N = 512).
PARTICLE_DRAWS_PER_WINDOW = 1


@dataclass(frozen=True)
class WindowPlan:
    """Which frames are on the device at which step: ``window_frames`` of the data set's ``n_frames`` at a time,
    replaced every ``steps_per_window`` steps, in an order fixed by ``seed``."""

    n_frames: int
    window_frames: int
    steps_per_window: int
    seed: int

    def window_of(self, step: int) -> int:
        return step // self.steps_per_window

    def first_step(self, window: int) -> int:
        return window * self.steps_per_window

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The permutation of all frames visited in ``epoch``."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.n_frames)

    def frames(self, window: int) -> np.ndarray:
        """Sorted frame indices of ``window`` (sorted: the shards are then read front to back). A window that
        straddles two epochs may hold a frame twice."""
        positions = window * self.window_frames + np.arange(self.window_frames)
        epochs = positions // self.n_frames
        frames = np.empty(self.window_frames, dtype=np.int64)
        for epoch in np.unique(epochs):
            here = epochs == epoch
            frames[here] = self.epoch_order(int(epoch))[positions[here] % self.n_frames]
        return np.sort(frames)

    def to_dict(self) -> dict:
        return asdict(self)


def check_window_settings(frames_in_memory, steps_per_window) -> None:
    """Both are None (automatic) or integers: ``frames_in_memory >= 2`` (a window trains while the next is read),
    ``steps_per_window >= 1``."""
    if frames_in_memory is not None:
        check.integer("frames_in_memory", frames_in_memory, low=2)
    if steps_per_window is not None:
        check.integer("steps_per_window", steps_per_window, low=1)


def frame_bytes(n_particles: int, k: int, dtype, force_input: bool = False, offset_dim: int = 0) -> int:
    """Host memory of one loaded frame: (x, g) in float64 and in the network dtype, its neighbour lists, the
    forces (float64, then in the network dtype) of a network with ``force_input``, the ``offset_dim`` columns
    of a residual network's base score and the tokens each particle needs (int32)."""
    vectors = 3 if force_input else 2
    return n_particles * ((vectors * 2 + offset_dim) * (8 + np.dtype(dtype).itemsize) + 4 * k + 4)


def plan_windows(
    n_frames: int,
    n_particles: int,
    frames_in_memory: int,
    steps_per_window: int | None,
    batch_particles: int,
    seed: int,
) -> WindowPlan | None:
    """The window plan for a data set of ``n_frames``, or None when all of them fit in ``frames_in_memory``.

    A window is half the budget: the window being trained on and the next one being read are held together.
    """
    if n_frames <= frames_in_memory:
        return None
    window_frames = frames_in_memory // 2
    if steps_per_window is None:
        steps_per_window = math.ceil(PARTICLE_DRAWS_PER_WINDOW * window_frames * n_particles / batch_particles)
    return WindowPlan(n_frames=n_frames, window_frames=window_frames, steps_per_window=steps_per_window, seed=seed)


def read_window(dataset, frames, box_length: float, k: int, dtype, system=None, base=None, reach=None) -> Snapshots:
    """Host snapshots of the chosen frames of a data set: read from its shards, checked, with neighbour lists
    (forces, for a network with ``force_input``: pass its ``system``; the values of the ``base`` score a residual
    network corrects; the tokens each particle needs within ``reach``)."""
    x, g = check_frames(*dataset.load(frames))
    return make_snapshots(x, g, box_length, k, dtype, system=system, base=base, reach=reach)


class ResidentFrames:
    """Every frame on the device for the whole run (the data fit in memory): one window that never ends."""

    plan = None

    def __init__(self, snapshots: Snapshots):
        self.snapshots = snapshots

    def starts_window(self, step: int) -> bool:
        return False

    def window_at(self, step: int, put) -> Snapshots:
        return put(self.snapshots)


class WindowStream:
    """The windows of a :class:`WindowPlan` for a run of ``n_steps``: ``window_at(step, put)`` returns the window
    holding ``step`` as placed by ``put`` (host → device) and starts reading the next one in a background thread.

    ``read(frames) -> Snapshots`` reads host snapshots (:func:`read_window` with the data set bound).
    :meth:`close` stops the reading thread.
    """

    def __init__(self, plan: WindowPlan, read, n_steps: int):
        self.plan, self._read, self._n_steps = plan, read, n_steps
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="activescore-window")
        self._pending: tuple[int, Future] | None = None  # (window, future of its host snapshots)

    def starts_window(self, step: int) -> bool:
        return step % self.plan.steps_per_window == 0

    def window_at(self, step: int, put) -> Snapshots:
        window = self.plan.window_of(step)
        placed = put(self._host_window(window))
        following = window + 1
        if self.plan.first_step(following) < self._n_steps:
            self._pending = (following, self._pool.submit(self._read, self.plan.frames(following)))
        return placed

    def _host_window(self, window: int) -> Snapshots:
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == window:
            return pending[1].result()
        if pending is not None:
            pending[1].cancel()
        return self._read(self.plan.frames(window))  # the first window of a run (or of a resumed one)

    def close(self) -> None:
        self._pending = None
        self._pool.shutdown(wait=True, cancel_futures=True)
