"""The front door: :func:`estimate` takes a score and stationary samples and measures everything at once."""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..io.progress import progress_bar
from ..systems import ParticleSystem
from .accumulators import Accumulator, BinnedFields, KeptFields, SnapshotTotals, SquareTraces
from .binned import RadialProfile, SpatialMap
from .ceiling import check_dt, finite_dt_ceiling, not_applicable
from .identity import PROGRESS_LIMIT, identity_from_series
from .inputs import estimation_inputs, frame_indices
from .local import local_fields
from .result import EPRResult
from .score_protocol import BoundScore, ScoreProtocol
from .statistics import FORMS, n_batches_for, ratio_estimate, series_estimate

#: Keep per-particle fields by default up to this many particle-snapshots (≈ 64 bytes each).
KEEP_FIELDS_LIMIT = 1 << 22


def estimate(
    score: ScoreProtocol,
    samples,
    *,
    system: ParticleSystem | None = None,
    frames=None,
    n_batches: int | None = None,
    keep_fields: bool | None = None,
    bins: int = 64,
    extent: float | None = None,
    radial_bins: int | None = None,
    r_max: float | None = None,
    score_kwargs: dict | None = None,
    transfer: bool = False,
    dt: float | None = None,
    progress: bool | None = None,
    n_threads: int = 0,
) -> EPRResult:
    """Velocities, local and total entropy production from ``score`` on stationary ``samples`` (physics.md §4),
    and the learning-free identity on the same snapshots.

    AOUPs and ABPs alike: for ABPs the propulsion degree of freedom is the angle θ, the score's propulsion block is
    s_θ (N, 1), v_θ = −D_r s_θ, and the "g" parts of the split are θ's (physics.md §4).

    Parameters
    ----------
    score : ScoreProtocol
        E.g. a trained :class:`activescore.Score` or :class:`activescore.exact.GaussianScore`.
    samples : Trajectory or tuple of array_like
        A :class:`~activescore.Trajectory` or ``(x, g)`` with x, g of shape (F, N, 2) (wrapped positions; for ABPs
        g = (cos θ, sin θ), as ``Trajectory.g`` gives it).
    system : AOUP or ABP, optional
        The samples' system (default: the trajectory's, else the score's). The score must belong to it.
    frames : slice or sequence of int, optional
        The snapshots to use (e.g. ``slice(100, None)`` to drop a burn-in).
    n_batches : int, optional
        Batches for the batch-means standard errors (default √F; batches should be longer than the correlation
        time of the snapshots).
    keep_fields : bool, optional
        Keep v and the local EPRs of every snapshot and particle in ``result.local`` (default: when F·N ≤ 2²²
        particle-snapshots; totals and maps are always accumulated on the fly, so memory stays bounded).
    bins : int
        Grid cells per side of ``result.map``.
    extent : float, optional
        Half width of the map (default: half the box when untrapped, else the farthest particle coordinate).
    radial_bins, r_max : optional
        Radial profile (default: 32 bins out to the farthest particle for trapped systems, none otherwise).
    score_kwargs : dict, optional
        Extra keyword arguments for every score call (e.g. ``{"sigma": 0.01}`` for a σ-conditioned network;
        that σ then labels the numbers).
    transfer : bool
        Allow a score learned at another N / box size with the same dynamics (the score must accept
        ``box_length=``).
    dt : float, optional
        The time step of the simulation the samples come from (default: the samples' own, which a Trajectory, a
        GSD file and a data set carry; arrays carry none). With ε = 0 it gives the finite-dt ceiling and the
        corrected EPR (``result.finite_dt``, physics.md §5).
    progress : bool, optional
        A progress bar (default: for long runs).
    n_threads : int
        Threads of the drift kernels (0: all).

    Returns
    -------
    EPRResult
        ``print(result)`` shows the totals beside the learning-free identity.
    """
    system, x, g, own_dt = estimation_inputs(
        samples,
        system if system is not None else (None if hasattr(samples, "system") else getattr(score, "system", None)),
    )
    dt = check_dt(dt) if dt is not None else own_dt
    bound = BoundScore(score, system, score_kwargs, transfer)
    idx = frame_indices(frames, len(x))
    n_threads = check.integer("n_threads", n_threads, low=0)
    n_frames, n = len(idx), system.n_particles
    nb = n_batches_for(n_frames, n_batches)
    grid, radial = _binned(system, x[idx], bound.sigma, bins, extent, radial_bins, r_max)
    totals = SnapshotTotals(n_frames, system.eps > 0)
    traces = SquareTraces(system, n_frames) if not_applicable(system, dt) is None else None
    kept = KeptFields(system, n_frames, bound.sigma, system.eps > 0) if _keep(keep_fields, n_frames * n) else None
    accumulators: list[Accumulator] = [totals, BinnedFields(grid)]
    accumulators += [a for a in (BinnedFields(radial) if radial is not None else None, traces, kept) if a is not None]
    show = progress if progress is not None else n_frames * n >= PROGRESS_LIMIT
    _accumulate(system, bound, x, g, idx, accumulators, show, n_threads)
    local = kept.fields if kept is not None else None
    return _result(system, bound.sigma, idx, nb, totals.totals(), traces, dt, local, grid, radial, x)


def _accumulate(system, bound, x, g, idx, accumulators: list[Accumulator], show: bool, n_threads: int) -> None:
    """Every snapshot ``x[f], g[f]`` (f in ``idx``) through the score once, its local fields to every accumulator."""
    with progress_bar(show, len(idx), desc=f"estimate N={system.n_particles}", unit="snapshot") as bar:
        for k, f in enumerate(idx):
            loc = local_fields(system, bound, x[f], g[f], n_threads)
            for accumulator in accumulators:
                accumulator.add(k, x[f], loc)
            bar.update(1)


def _keep(keep_fields: bool | None, particle_snapshots: int) -> bool:
    return particle_snapshots <= KEEP_FIELDS_LIMIT if keep_fields is None else bool(keep_fields)


def _binned(system, x, sigma, bins, extent, radial_bins, r_max) -> tuple[SpatialMap, RadialProfile | None]:
    """The empty spatial map and (trapped systems, or when asked) radial profile of the snapshots ``x``."""
    bins = check.integer("bins", bins, low=1)
    half = system.box_length / 2 if extent is None else check.real("extent", extent, low=0.0, low_open=True)
    if extent is None and system.trap > 0:
        half = min(half, float(np.max(np.abs(x))) * (1 + 1e-12) + 1e-300)
    grid = SpatialMap.empty(bins, half, len(x), sigma)
    if radial_bins is None and r_max is None and not system.trap > 0:
        return grid, None
    nr = 32 if radial_bins is None else check.integer("radial_bins", radial_bins, low=1)
    if r_max is None:
        r_max = float(np.sqrt(np.max(np.einsum("fij,fij->fi", x, x)))) * (1 + 1e-12) + 1e-300
    else:
        r_max = check.real("r_max", r_max, low=0.0, low_open=True)
    return grid, RadialProfile.empty(nr, r_max, len(x), sigma)


def _result(system, sigma, idx, nb, series: dict, traces, dt, local, grid, radial, x) -> EPRResult:
    """The EPRResult of the per-snapshot series: estimates with batch-means errors, and the finite-dt ceiling."""
    n = system.n_particles
    finite_dt = None
    if traces is not None and dt is not None:
        series["square_trace"] = traces.values
        learned = {form: series[form] for form in FORMS}
        finite_dt = finite_dt_ceiling(dt, series["identity"], traces.values, learned, n, nb, sigma)
    identity = identity_from_series(system, series["identity"], series.get("active_work"), nb, finite_dt)
    epr, per, split, ratio, diff = {}, {}, {}, {}, {}
    for form in FORMS:
        epr[form] = series_estimate(series[form], nb, form, sigma)
        per[form] = series_estimate(series[form], nb, form, sigma, 1.0 / n)
        split[form] = {part: series_estimate(series[f"{form}_{part}"], nb, form, sigma, 1.0 / n) for part in ("x", "g")}
        ratio[form] = ratio_estimate(series[form], series["identity"], nb, f"{form}/identity", sigma)
        diff[form] = series_estimate(series[form] - series["identity"], nb, f"{form}-identity", sigma, 1.0 / n)
    return EPRResult(
        system, sigma, idx, nb, series, epr, per, split, identity, ratio, diff, local, grid, radial, x, dt, finite_dt
    )
