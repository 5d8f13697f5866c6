"""The samples of one training run, split once: training frames, held-out frames, the neighbour sample and the
frames of the stacked refit, in memory or streamed from a data set.

Every step of :func:`~activescore.learning.train.train_score` takes its frames from one :class:`TrainingSamples`,
which reads each kind of frame once, when a step first asks for it. Frames in memory are sliced; a data set is
read in this order: the neighbour sample, then either all frames (when they fit the memory budget) or the
held-out frames and the training windows, then the frames of the stacked refit. The last ``holdout`` fraction of
the frames (at least two) is held out; none when that would leave fewer than two on either side.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..samples import as_samples, check_frames
from .data import Snapshots, make_snapshots
from .defaults import spread_frames
from .notices import warn
from .stream import DEFAULT_MEMORY_BYTES, WindowPlan, WindowStream, frame_bytes, plan_windows, read_window

#: Frames on either side of the split: the held-out evaluation needs two for a standard error over frames.
MIN_SPLIT_FRAMES = 2


def training_frames(n_frames: int, holdout: float) -> int:
    """How many of ``n_frames`` are trained on: all but the last ``holdout`` fraction (at least two frames); all of
    them when ``holdout`` is 0 or when fewer than two would remain for training."""
    if holdout <= 0:
        return n_frames
    held = max(MIN_SPLIT_FRAMES, math.ceil(holdout * n_frames))
    if n_frames - held < MIN_SPLIT_FRAMES:
        return n_frames
    return n_frames - held


def check_samples_system(system, samples) -> None:
    """Samples of another system are refused (their own system, when they carry one, must be ``system``)."""
    own = getattr(samples, "system", None)
    if own is not None and own.to_dict() != system.to_dict():
        raise ValueError(
            f"samples: they belong to {own!r}, not to the system {system!r}; train with their own "
            "system (samples.system)"
        )
    if samples.n_particles != system.n_particles:
        raise ValueError(
            f"samples: frames of {samples.n_particles} particles, but the system has {system.n_particles}; "
            "pass the samples' own system"
        )


@dataclass(frozen=True)
class TokenInputs:
    """What turns frames into network input (:func:`~activescore.learning.data.make_snapshots`): the box, ``k``
    tokens per particle in ``dtype``, the forces of ``system`` (networks with ``force_input``, else None), the
    values of the ``base`` score a residual network corrects (else None) and the token ``reach`` of a run in token
    tiers (else None)."""

    box_length: float
    k: int
    dtype: Any
    system: Any = None
    base: Any = None
    reach: float | None = None

    def snapshots(self, x: np.ndarray, g: np.ndarray, *, reach: bool = True) -> Snapshots:
        """Host snapshots of frames ``x``, ``g`` (F, N, 2); ``reach=False``: without the tokens each particle
        needs (an evaluation computes all k)."""
        return make_snapshots(
            x,
            g,
            self.box_length,
            self.k,
            self.dtype,
            system=self.system,
            base=self.base,
            reach=self.reach if reach else None,
        )

    def frame_bytes(self, n_particles: int, offset_dim: int) -> int:
        """Host memory of one loaded frame of ``n_particles`` (``offset_dim``: the base's columns, 0 without)."""
        return frame_bytes(n_particles, self.k, self.dtype, self.system is not None, offset_dim)


class TrainingSamples:
    """The frames of one training run (module docstring).

    Parameters
    ----------
    system
        The system the samples belong to (samples carrying another are refused).
    samples
        Anything :func:`activescore.samples.as_samples` accepts.
    holdout
        The fraction of frames held out (``TrainConfig.holdout``).

    Attributes
    ----------
    n_frames, n_particles, n_train
        F frames of N particles, of which the first ``n_train`` are trained on.
    neighbour_sample
        (S, N, 2) positions of up to :data:`~activescore.learning.defaults.NEIGHBOUR_SAMPLE_FRAMES` training
        frames spread evenly: the network's neighbour count, checks and token tiers are measured on them.
    not_validated
        Why no frame is held out although ``holdout`` > 0 (None when frames are held out or none were asked for).
    """

    def __init__(self, system, samples, holdout: float):
        self.samples = as_samples(samples)
        check_samples_system(system, self.samples)
        self.n_frames, self.n_particles = len(self.samples), self.samples.n_particles
        self.n_train = training_frames(self.n_frames, holdout)
        self._all: tuple[np.ndarray, np.ndarray] | None = None  # every frame, once loaded
        self.not_validated = self._without_heldout(holdout)
        warn_if_half_built(self.samples)
        if self.not_validated is not None:
            warn(f"training on all frames without validation: {self.not_validated}")
        self.neighbour_sample = self.frames(spread_frames(self.n_train))[0]

    @property
    def dt(self) -> float | None:
        """The time step of the simulation the samples come from, where they carry it (the finite-dt ceiling)."""
        dt = getattr(self.samples, "dt", None)
        return None if dt is None else float(dt)

    def _without_heldout(self, holdout: float) -> str | None:
        if holdout <= 0 or self.n_train < self.n_frames:
            return None
        return (
            f"holdout={holdout:g} of {self.n_frames} frame{'s' if self.n_frames != 1 else ''} leaves no "
            f"held-out frames ({MIN_SPLIT_FRAMES} or more must be held out and {MIN_SPLIT_FRAMES} kept for "
            "training); give more frames, or holdout=0 to train without validation"
        )

    @property
    def n_heldout(self) -> int:
        return self.n_frames - self.n_train

    def frames(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """``(x, g)`` of the frames ``indices``, each (F', N, 2) float64: sliced from memory, else read."""
        if self._all is None and self.samples.in_memory:
            self._all = self.samples.load()
        if self._all is not None:
            x, g = self._all
            index = np.asarray(indices if not isinstance(indices, range) else list(indices), dtype=np.int64)
            return x[index], g[index]
        return check_frames(*self.samples.load(indices))

    @functools.cached_property
    def heldout(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(x, g)`` of the held-out frames, each (F − n_train, N, 2); None when none are held out."""
        if self.n_train == self.n_frames:
            return None
        if self._all is not None:
            x, g = self._all
            return x[self.n_train :], g[self.n_train :]
        return self.frames(range(self.n_train, self.n_frames))

    def fit_frames(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x, g)`` of up to ``count`` training frames spread evenly, each (F', N, 2): a closed-form refit's."""
        return self.frames(spread_frames(self.n_train, count))

    def window_plan(
        self, inputs: TokenInputs, offset_dim: int, train_config, frames_in_memory: int | None, steps_per_window
    ) -> WindowPlan | None:
        """How a data set's training frames are streamed (None: they are loaded whole; frames in memory always
        are): windows within ``frames_in_memory`` frames (default: as many as fit 1 GiB)."""
        if self.samples.in_memory:
            return None
        per_frame = inputs.frame_bytes(self.n_particles, offset_dim)
        budget = frames_in_memory or max(2, DEFAULT_MEMORY_BYTES // per_frame)
        return plan_windows(
            self.n_train, self.n_particles, budget, steps_per_window, train_config.batch_particles, train_config.seed
        )

    def training_data(self, inputs: TokenInputs, plan: WindowPlan | None, steps: int) -> Snapshots | WindowStream:
        """Host snapshots of every training frame, or (with a window ``plan``) a stream of windows for a run of
        ``steps``."""
        if plan is None:
            if self._all is None:
                self._all = self.samples.load()
            x, g = self._all
            return inputs.snapshots(x[: self.n_train], g[: self.n_train])
        read = functools.partial(
            read_window,
            self.samples,
            box_length=inputs.box_length,
            k=inputs.k,
            dtype=inputs.dtype,
            system=inputs.system,
            base=inputs.base,
            reach=inputs.reach,
        )
        return WindowStream(plan, read, steps)

    def fingerprint(self) -> str:
        """The samples' hash, stored in checkpoints (a data set's reads no frame)."""
        return self.samples.fingerprint()

    def record(self) -> dict:
        """The frame counts of a Score's training record."""
        return {
            "n_frames": int(self.n_train),
            "heldout_frames": int(self.n_heldout),
            "n_particles": int(self.n_particles),
        }


def warn_if_half_built(samples) -> None:
    """Warn, naming the frames, when ``samples`` is a data set whose build stopped before all its planned frames
    were written (its manifest's ``n_frames_planned``)."""
    metadata = getattr(samples, "metadata", None)
    if not isinstance(metadata, dict):
        return
    planned, written = metadata.get("n_frames_planned"), len(samples)
    if planned is None or written >= planned:
        return
    where = getattr(samples, "path", "the data set")
    warn(
        f"{where} holds {written} of its {planned} planned frames (its build stopped early): training on frames "
        f"0-{written - 1}; rerun its build (`activescore dataset` or build_dataset, same plan) to finish it"
    )
