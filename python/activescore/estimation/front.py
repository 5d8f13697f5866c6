"""The front door: :func:`estimate` takes a score and stationary samples and measures everything at once."""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..io.progress import progress_bar
from ..systems import ParticleSystem
from .binned import RadialProfile, SpatialMap
from .ceiling import check_dt, finite_dt_ceiling, not_applicable, square_trace_total
from .identity import PROGRESS_LIMIT, identity_from_series
from .inputs import estimation_inputs, frame_indices
from .local import LocalEPR, local_fields
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
    with_ceiling = not_applicable(system, dt) is None
    bound = BoundScore(score, system, score_kwargs, transfer)
    idx = frame_indices(frames, len(x))
    n_threads = check.integer("n_threads", n_threads, low=0)
    n_frames, n = len(idx), system.n_particles
    nb = n_batches_for(n_frames, n_batches)
    bins = check.integer("bins", bins, low=1)
    if keep_fields is None:
        keep_fields = n_frames * n <= KEEP_FIELDS_LIMIT
    sigma = bound.sigma

    reach = float(np.max(np.abs(x[idx]))) if system.trap > 0 else system.box_length / 2
    half = system.box_length / 2 if extent is None else check.real("extent", extent, low=0.0, low_open=True)
    if extent is None and system.trap > 0:
        half = min(half, reach * (1 + 1e-12) + 1e-300)
    grid = SpatialMap.empty(bins, half, n_frames, sigma)
    radial = None
    if radial_bins is not None or (system.trap > 0 and r_max is None) or r_max is not None:
        nr = 32 if radial_bins is None else check.integer("radial_bins", radial_bins, low=1)
        if r_max is None:
            r_max = float(np.sqrt(np.max(np.einsum("fij,fij->fi", x[idx], x[idx])))) * (1 + 1e-12) + 1e-300
        else:
            r_max = check.real("r_max", r_max, low=0.0, low_open=True)
        radial = RadialProfile.empty(nr, r_max, n_frames, sigma)

    names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "identity")
    totals = {name: np.empty(n_frames) for name in names}
    work = np.empty(n_frames) if system.eps > 0 else None
    square_trace = np.empty(n_frames) if with_ceiling else None
    kept = None
    if keep_fields:

        def zeros():
            return np.zeros((n_frames, n))

        kept = LocalEPR(
            v_x=np.empty((n_frames, n, 2)),
            v_g=np.empty((n_frames, n, system.propulsion_components)),
            quadratic_x=zeros(),
            quadratic_g=zeros(),
            divergence_x=zeros(),
            divergence_g=zeros(),
            identity=zeros(),
            active_work=zeros() if work is not None else None,
            sigma=sigma,
        )

    show = progress if progress is not None else n_frames * n >= PROGRESS_LIMIT
    with progress_bar(show, n_frames, desc=f"estimate N={n}", unit="snapshot") as bar:
        for k, f in enumerate(idx):
            loc = local_fields(system, bound, x[f], g[f], n_threads)
            for name in names:
                totals[name][k] = getattr(loc, name).sum()
            if work is not None and loc.active_work is not None:
                work[k] = loc.active_work.sum()
            if square_trace is not None:
                square_trace[k] = square_trace_total(system, x[f])
            grid.add(x[f], loc)
            if radial is not None:
                radial.add(x[f], loc)
            if kept is not None:
                for name in ("v_x", "v_g") + names:
                    getattr(kept, name)[k] = getattr(loc, name)
                if kept.active_work is not None:
                    kept.active_work[k] = loc.active_work
            bar.update(1)

    totals["quadratic"] = totals["quadratic_x"] + totals["quadratic_g"]
    totals["divergence"] = totals["divergence_x"] + totals["divergence_g"]
    if work is not None:
        totals["active_work"] = work
    finite_dt = None
    if square_trace is not None and dt is not None:
        totals["square_trace"] = square_trace
        learned = {form: totals[form] for form in FORMS}
        finite_dt = finite_dt_ceiling(dt, totals["identity"], square_trace, learned, n, nb, sigma)
    identity = identity_from_series(system, totals["identity"], work, nb, finite_dt)
    epr, per, split, ratio, diff = {}, {}, {}, {}, {}
    for form in FORMS:
        epr[form] = series_estimate(totals[form], nb, form, sigma)
        per[form] = series_estimate(totals[form], nb, form, sigma, 1.0 / n)
        split[form] = {part: series_estimate(totals[f"{form}_{part}"], nb, form, sigma, 1.0 / n) for part in ("x", "g")}
        ratio[form] = ratio_estimate(totals[form], totals["identity"], nb, f"{form}/identity", sigma)
        diff[form] = series_estimate(totals[form] - totals["identity"], nb, f"{form}-identity", sigma, 1.0 / n)
    return EPRResult(
        system, sigma, idx, nb, totals, epr, per, split, identity, ratio, diff, kept, grid, radial, x, dt, finite_dt
    )
