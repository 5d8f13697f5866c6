"""What :func:`~activescore.estimate` gathers snapshot by snapshot: accumulators with one method,
``add(k, x, loc)`` (the k-th snapshot used, its positions (N, 2) and its :class:`~.local.LocalEPR`), which the
estimate composes. Memory stays bounded unless the per-particle fields are kept."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .binned import RadialProfile, SpatialMap
from .ceiling import square_trace_total
from .local import LocalEPR

#: The per-particle fields summed per snapshot; every total, split and ratio of the result is built from these.
PARTS = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "identity")


class Accumulator(Protocol):
    def add(self, k: int, x: np.ndarray, loc: LocalEPR) -> None: ...


class SnapshotTotals:
    """Per-snapshot sums over particles of the local fields (and of the active work when ε > 0)."""

    def __init__(self, n_frames: int, with_work: bool):
        names = PARTS + (("active_work",) if with_work else ())
        self.series = {name: np.empty(n_frames) for name in names}

    def add(self, k: int, x: np.ndarray, loc: LocalEPR) -> None:
        for name, series in self.series.items():
            series[k] = getattr(loc, name).sum()

    def totals(self) -> dict:
        """The series keyed as ``EPRResult.totals``: the parts, their sums per form and the active work."""
        totals = dict(self.series)
        totals["quadratic"] = totals["quadratic_x"] + totals["quadratic_g"]
        totals["divergence"] = totals["divergence_x"] + totals["divergence_g"]
        return totals


class SquareTraces:
    """Per-snapshot E[tr M²] totals, M = ∂b_x/∂x, for the finite-dt ceiling (physics.md §5)."""

    def __init__(self, system, n_frames: int):
        self.system = system
        self.values = np.empty(n_frames)

    def add(self, k: int, x: np.ndarray, loc: LocalEPR) -> None:
        self.values[k] = square_trace_total(self.system, x)


class BinnedFields:
    """A spatial map or radial profile filled as the snapshots pass."""

    def __init__(self, target: SpatialMap | RadialProfile):
        self.target = target

    def add(self, k: int, x: np.ndarray, loc: LocalEPR) -> None:
        self.target.add(x, loc)


class KeptFields:
    """Every snapshot's per-particle fields, as one :class:`LocalEPR` with a leading snapshot axis."""

    def __init__(self, system, n_frames: int, sigma, with_work: bool):
        n = system.n_particles

        def zeros():
            return np.zeros((n_frames, n))

        self.fields = LocalEPR(
            v_x=np.empty((n_frames, n, 2)),
            v_g=np.empty((n_frames, n, system.propulsion_components)),
            quadratic_x=zeros(),
            quadratic_g=zeros(),
            divergence_x=zeros(),
            divergence_g=zeros(),
            identity=zeros(),
            active_work=zeros() if with_work else None,
            sigma=sigma,
        )

    def add(self, k: int, x: np.ndarray, loc: LocalEPR) -> None:
        names = ("v_x", "v_g") + PARTS + (("active_work",) if self.fields.active_work is not None else ())
        for name in names:
            getattr(self.fields, name)[k] = getattr(loc, name)
