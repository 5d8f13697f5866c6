"""The learning-free EPR (physics.md §4): drift and stationary samples, no score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from ..io.progress import progress_bar
from ..systems import ParticleSystem, check_system
from .ceiling import FiniteDtCeiling, check_dt, finite_dt_ceiling, not_applicable, square_trace_total
from .inputs import estimation_inputs, frame_indices
from .local import drift_terms, identity_terms
from .statistics import Estimate, n_batches_for, series_estimate

#: Show a progress bar by default from this many particle-snapshots on.
PROGRESS_LIMIT = 1 << 21


@dataclass(eq=False)
class LearningFreeEPR:
    """The learning-free EPR (physics.md §4) from drift and samples alone, no score.

    ε > 0: EPR = E[b·D⁻¹b] + E[∇·b], ∇·b = Σ_i ∇_{x_i}·b_x,i − d N γ for AOUPs, Σ_i ∇_{x_i}·b_x,i for ABPs
    (``total``), and the active-work form
    (1/ε) Σ_i E[v0 g_i·b_x,i] (``active_work``); ε = 0: EPR = −E[Σ_i ∇_{x_i}·b_x,i] (``active_work`` None).
    ``per_snapshot``: the total of each snapshot. ``finite_dt`` (ε = 0 with the time step known): the ceiling a
    perfect score of the simulated chain reaches (physics.md §5). Unpacks as ``value, stderr = result`` (the
    total)."""

    system: ParticleSystem
    total: Estimate
    per_particle: Estimate
    active_work: Estimate | None
    active_work_per_particle: Estimate | None
    per_snapshot: np.ndarray = field(repr=False)
    active_work_per_snapshot: np.ndarray | None = field(repr=False)
    n_batches: int
    finite_dt: FiniteDtCeiling | None = field(default=None, repr=False)

    @property
    def value(self) -> float:
        return self.total.value

    @property
    def stderr(self) -> float:
        return self.total.stderr

    def __iter__(self):
        yield self.value
        yield self.stderr

    def forms_agree(self, n_se: float = 4.0) -> bool | None:
        """Whether the identity and its active-work form agree within ``n_se`` paired standard errors."""
        if self.active_work_per_snapshot is None:
            return None
        diff = series_estimate(self.per_snapshot - self.active_work_per_snapshot, self.n_batches, "difference", None)
        return bool(abs(diff.value) <= n_se * diff.stderr) if np.isfinite(diff.stderr) else None

    def __str__(self) -> str:
        n = self.system.n_particles
        lines = [
            f"learning-free EPR of {self.system!r} over {self.total.n_snapshots} snapshots:",
            f"  identity     total {self.total:.6g}   per particle {self.per_particle:.6g}",
        ]
        if self.active_work is not None:
            lines.append(
                f"  active work  total {self.active_work:.6g}   per particle {self.active_work_per_particle:.6g}"
            )
        if self.finite_dt is not None:
            c = self.finite_dt
            lines.append(
                f"  finite-dt ceiling (dt = {c.dt:g}): a perfect score of the simulated chain gives "
                f"{c.chain_identity:.6g} per particle, {c.ceiling:.4g} of the identity (physics.md §5)"
            )
        lines.append(f"  (N = {n}; standard errors by batch means over {self.n_batches} batches)")
        return "\n".join(lines)


def identity_from_series(system, ident, work, n_batches, finite_dt=None) -> LearningFreeEPR:
    n = system.n_particles
    total = series_estimate(ident, n_batches, "identity", None)
    per = series_estimate(ident, n_batches, "identity", None, 1.0 / n)
    aw = awp = None
    if work is not None:
        aw = series_estimate(work, n_batches, "active-work", None)
        awp = series_estimate(work, n_batches, "active-work", None, 1.0 / n)
    return LearningFreeEPR(system, total, per, aw, awp, ident, work, n_batches, finite_dt)


def learning_free_epr(
    system: ParticleSystem,
    samples,
    *,
    frames=None,
    n_batches: int | None = None,
    dt: float | None = None,
    progress: bool | None = None,
    n_threads: int = 0,
) -> LearningFreeEPR:
    """The EPR from the drift and stationary samples alone (physics.md §4), with a batch-means standard error.

    The identity fixes the total EPR, not its local split; it needs stationary samples (and converges slowly
    where the drift is large).

    Parameters
    ----------
    system : AOUP or ABP
        The samples' system. For ABPs the identity is the same with g = (cos θ, sin θ) and no propulsion terms
        (b_θ = 0; physics.md §4).
    samples : Trajectory or tuple of array_like
        A :class:`~activescore.Trajectory` or ``(x, g)`` with x, g of shape (F, N, 2) (one (N, 2) snapshot is
        accepted).
    frames : slice or sequence of int, optional
        The snapshots to use (e.g. to drop a burn-in).
    n_batches : int, optional
        Batches for the standard error (default √F).
    dt : float, optional
        The time step of the simulation the samples come from (default: the samples' own, where they carry it).
        With ε = 0 it gives the finite-dt ceiling (``result.finite_dt``, physics.md §5).
    progress : bool, optional
        A progress bar (default: for long runs).
    n_threads : int
        Threads of the drift kernels (0: all).

    Returns
    -------
    LearningFreeEPR
        Unpacks as ``value, stderr`` (the total EPR).
    """
    system = check_system(system)
    system, x, g, own_dt = estimation_inputs(samples, system, any_model=True)
    dt = check_dt(dt) if dt is not None else own_dt
    square_trace = np.empty(len(frame_indices(frames, len(x)))) if not_applicable(system, dt) is None else None
    idx = frame_indices(frames, len(x))
    n_threads = check.integer("n_threads", n_threads, low=0)
    nb = n_batches_for(len(idx), n_batches)
    ident = np.empty(len(idx))
    work = np.empty(len(idx)) if system.eps > 0 else None
    show = progress if progress is not None else len(idx) * system.n_particles >= PROGRESS_LIMIT
    with progress_bar(show, len(idx), desc=f"identity N={system.n_particles}", unit="snapshot") as bar:
        for k, f in enumerate(idx):
            b_x, div = drift_terms(system, x[f], g[f], n_threads)
            i_terms, w_terms = identity_terms(system, g[f], b_x, div)
            ident[k] = i_terms.sum()
            if work is not None and w_terms is not None:
                work[k] = w_terms.sum()
            if square_trace is not None:
                square_trace[k] = square_trace_total(system, x[f])
            bar.update(1)
    finite_dt = None
    if square_trace is not None and dt is not None:
        finite_dt = finite_dt_ceiling(dt, ident, square_trace, {}, system.n_particles, nb, None)
    return identity_from_series(system, ident, work, nb, finite_dt)
