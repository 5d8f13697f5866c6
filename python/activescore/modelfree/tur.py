"""Positions alone, propulsion hidden: the short-time thermodynamic-uncertainty lower bound on the entropy
production of the positions (Van Vu et al., PRE 101, 042138 (2020); Otsubo et al., PRE 101, 062106 (2020);
physics.md §8).

For any current J = Σ_i ψ_i ∘ Δx_i over one frame pair (Stratonovich: ψ at the midpoint of the step),
σ ≥ 2⟨J⟩² / (Δt Var J). With ψ = Σ_k c_k φ_k linear in the model-free position features, the best bound over c is
2 rᵀΣ⁻¹r / Δt (r the mean and Σ the covariance of the feature currents J_k): one more linear solve. The bound is on
the entropy production of the *positions* — a coarse-grained quantity, below the EPR of the full state — and never
an estimate of the EPR itself.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..estimation.statistics import Estimate, n_batches_for
from .estimator import BALLISTIC_RATIO, N_RADIAL
from .pairs import FrameCache, block_increment, mean_square_step, pair_rows, setup
from .tracks import Tracks, as_tracks

#: Pair currents beyond the gradients: Σ_j B_k r̂_ij^⊥ (Σ_j B_k r̂_ij summed over particles is the increment of a
#: pair function, whose mean vanishes in a steady state).
TUR_FAMILIES = ("radial_perp",)


def hotelling_quadratic(mean: np.ndarray, covariance: np.ndarray, n: int) -> float:
    """An unbiased estimate of mᵀΣ⁻¹m from n samples' mean and covariance (ddof 1), Gaussian currents assumed:
    E[m̂ᵀΣ̂⁻¹m̂] = (n − 1)/(n − p − 2) (mᵀΣ⁻¹m + p/n), so the raw value overstates the bound by p/n and more."""
    p = len(mean)
    diag = np.diag(covariance).copy()
    used = diag > 1e-300 * max(float(diag.max(initial=0.0)), 1e-300)
    p = int(used.sum())
    if p == 0 or n <= p + 2:
        return math.nan
    scale = np.sqrt(diag[used])
    m = mean[used] / scale
    cov = covariance[np.ix_(used, used)] / np.outer(scale, scale)
    raw = float(m @ np.linalg.solve(cov + 1e-12 * np.eye(p), m))
    return raw * (n - p - 2) / (n - 1) - p / n


@dataclass(eq=False)
class TURBound:
    """The short-time TUR lower bound on the entropy production of the positions (k_B per ``time_unit``).

    Attributes
    ----------
    bound, bound_per_particle : Estimate
        The lower bound for the whole system and per particle (its mean divided by the mean particle count),
        with a batch-jackknife standard error. A lower bound of a coarse-grained quantity, not the EPR.
    coefficients : ndarray
        The best current ψ = Σ_k c_k φ_k (up to a factor) on ``feature_names``.
    dt, lag, n_pairs, n_batches, mean_particles
        Δt of the pairs, their lag in frames, pairs used, jackknife batches, mean particles per pair.
    msd_ratio : float
        MSD(2Δt)/MSD(Δt) of the positions: 2 when they diffuse between frames, 4 when they move smoothly.
    warning : str or None
        Given when ``msd_ratio`` > 3.5: without translational noise the short-time TUR does not hold.
    """

    tracks: Tracks = field(repr=False)
    bound: Estimate
    bound_per_particle: Estimate
    coefficients: np.ndarray = field(repr=False)
    feature_names: list = field(repr=False)
    dt: float
    lag: int
    n_pairs: int
    n_batches: int
    mean_particles: float
    msd_ratio: float = math.nan
    warning: str | None = None

    def summary(self) -> str:
        unit = f" per {self.tracks.time_unit}" if self.tracks.time_unit else " per unit time"
        return "\n".join(
            [
                f"TUR lower bound on the entropy production of the POSITIONS (k_B{unit}) of {self.tracks!r}",
                f"  {self.n_pairs} frame pairs Δt = {self.dt:g} apart; currents linear in {len(self.feature_names)} "
                f"position features; ± = batch jackknife ({self.n_batches} batches)",
                f"  bound per particle {format(self.bound_per_particle, '.5g')}   total {format(self.bound, '.5g')}",
                "  A LOWER BOUND on the coarse-grained (positions-only) entropy production: not the EPR, which is",
                "  at least as large (physics.md §8).",
                f"  MSD(2Δt)/MSD(Δt) = {self.msd_ratio:.3g} (2: the positions diffuse between frames, as the TUR needs)",
            ]
            + (["  !!! " + self.warning] if self.warning else [])
        )

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """The numbers as plain Python values (JSON)."""

        def est(e: Estimate) -> dict:
            return {"value": e.value, "stderr": e.stderr, "form": e.form}

        return {
            "kind": "TUR lower bound of the positions' entropy production (not the EPR)",
            "bound": est(self.bound),
            "bound_per_particle": est(self.bound_per_particle),
            "dt": self.dt,
            "lag": self.lag,
            "n_pairs": self.n_pairs,
            "n_batches": self.n_batches,
            "mean_particles": self.mean_particles,
            "msd_ratio": self.msd_ratio,
            "warning": self.warning,
        }


def tur_lower_bound(
    tracks,
    *,
    lag: int = 1,
    cutoff: float | None = None,
    n_radial: int = N_RADIAL,
    external: bool = True,
    n_batches: int | None = None,
    n_threads: int = 0,
) -> TURBound:
    """The short-time TUR lower bound on the entropy production of the positions, from positions alone.

    Any observed propulsion is ignored: the currents J = Σ_i ψ_i(x) ∘ Δx_i use the position features only (a
    uniform and an affine field, pair terms on a radial basis along r̂_ij and r̂_ij^⊥), and
    σ ≥ max_c 2⟨J⟩²/(Δt Var J) = 2 rᵀΣ⁻¹r/Δt (physics.md §8), with Hotelling's correction for the finite number of
    frame pairs. It bounds the entropy production of the positions (a coarse-grained quantity) from below; the EPR of
    the full state is larger still. Currents whose mean vanishes by symmetry (an isotropic system without chirality
    has no mean rotational current) give a bound of 0. The short-time TUR needs translational noise: where the
    positions move nearly ballistically between frames (MSD(2Δt)/MSD(Δt) > 3.5, as with ε = 0) a warning says so.

    Parameters
    ----------
    tracks : Tracks or Trajectory
        Consecutive frames (only the positions are used).
    lag, cutoff, n_radial, external, n_threads
        As for :func:`estimate_model_free`.
    n_batches : int, optional
        Batches of frame pairs for the jackknife standard error (default √P, at least 2).

    Returns
    -------
    TURBound
    """
    tracks = as_tracks(tracks)
    pairs, features, search, cutoff = setup(
        tracks, lag, cutoff, n_radial, external, n_threads, propulsion=False, families=TUR_FAMILIES
    )
    names = features.vector_names(propulsion=False)
    cache = FrameCache(tracks, features, search, propulsion=False)
    currents, counts = [], []
    for k0, k1 in pairs:
        rows = pair_rows(tracks, k0, k1, cutoff)
        if len(rows) == 0:
            continue
        slot0, f0 = cache(k0)
        slot1, f1 = cache(k1)
        midpoint = 0.5 * (f0["vector"][slot0[rows]] + f1["vector"][slot1[rows]])  # (n, 2, p)
        dx = block_increment(tracks, "x", k0, k1, rows)
        currents.append(np.einsum("ncp,nc->p", midpoint, dx))
        counts.append(len(rows))
    n = len(currents)
    if n < len(names) + 3:
        raise ValueError(
            f"tracks give {n} frame pairs at lag {lag}: need more than {len(names) + 2} (the currents' covariance)"
        )
    j = np.asarray(currents)
    dt = tracks.frame_interval * int(lag)
    mean_particles = float(np.mean(counts))

    def bound(sample: np.ndarray) -> float:
        return 2 * hotelling_quadratic(sample.mean(axis=0), np.cov(sample, rowvar=False), len(sample)) / dt

    value = bound(j)
    nb = max(2, n_batches_for(n, n_batches))
    batches = np.array_split(np.arange(n), nb)
    leave_out = np.array([bound(np.delete(j, b, axis=0)) for b in batches])
    stderr = math.sqrt((nb - 1) / nb * np.sum((leave_out - leave_out.mean()) ** 2))
    scaled = j.std(axis=0)
    scaled[scaled == 0] = 1.0
    cov = np.cov(j / scaled, rowvar=False)
    coefficients = np.linalg.lstsq(cov, j.mean(axis=0) / scaled, rcond=None)[0] / scaled
    total = Estimate(value, stderr, "TUR lower bound (positions)", None, n)
    per = Estimate(value / mean_particles, stderr / mean_particles, "TUR lower bound (positions)", None, n)
    ratio = mean_square_step(tracks, 2 * int(lag)) / mean_square_step(tracks, int(lag))
    warning = None
    if ratio > BALLISTIC_RATIO:
        warning = (
            f"the positions move nearly ballistically between frames (MSD(2Δt)/MSD(Δt) = {ratio:.2f} > "
            f"{BALLISTIC_RATIO:g}): if they carry no translational noise the short-time TUR does not hold and this "
            "bounds no EPR (physics.md §8)"
        )
        warnings.warn(warning, stacklevel=2)
    return TURBound(tracks, total, per, coefficients, names, dt, int(lag), n, nb, mean_particles, ratio, warning)
