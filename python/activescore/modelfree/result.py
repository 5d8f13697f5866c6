"""What the model-free estimator returns (physics.md §8): :class:`ModelFreeEPR`, its assembly from the blocks'
fits, and the per-particle fields (the second pass over the frames).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from ..estimation.statistics import Estimate, series_estimate
from .pairs import FrameCache, pair_rows
from .solve import BlockFit
from .tracks import Tracks


@dataclass(eq=False)
class ModelFreeEPR:
    """What :func:`estimate_model_free` measured. Print it (or call :meth:`summary`) for the report.

    Attributes
    ----------
    epr, epr_per_particle : Estimate
        The EPR (k_B per ``time_unit``) of the whole system (per particle × mean particle count) and per
        particle, with batch-means standard errors, after the overfitting correction (``correction``).
    split : dict
        ``{"x": Estimate, "g": Estimate}`` per particle: the positions' and the propulsion's shares ("g" is θ for
        angles; a block without noise or not observed is absent).
    diffusion : dict
        Block → the diffusion coefficient used (D of that block, D_x = ε for positions); ``diffusion_estimated``:
        block → whether it was estimated from the increments.
    frame_interval, lag, dt : float, int, float
        The tracks' frame interval, the lag in frames, and Δt = lag × frame_interval of the pairs used.
    relaxation_rate : float
        λ: the rate at which the fitted velocity decorrelates between frames; the estimate's bias is O(λΔt).
    warning : str or None
        The one-line warning given when λΔt > ``warn_rate``.
    correction : dict
        Block → the overfitting correction subtracted per particle, 2 p_eff / (P N Δt) (p_eff fitted parameters,
        P frame pairs, N particles per pair; physics.md §8).
    coefficients, drift_coefficients : dict
        Block → the fitted velocity (and Itô drift) coefficients on ``feature_names[block]``.
    n_pairs, n_batches, mean_particles : int, int, float
        Frame pairs used, batches of the standard errors, mean particles per pair in the fit.
    quadratic : ndarray, shape (P, M), or None
        Per pair and track, e_i = Σ_blocks v_i·D⁻¹v_i at the first frame of the pair (NaN where the track is not
        in the fit); ``velocity[block]`` (P, M, 2) or (P, M, 1); ``positions`` (P, M, 2) the first frame's
        positions. None when the fields were not kept (``keep_fields``).
    velocity_model : str
        "linear" (the linear solve) or "network" (``velocity="network"``: the EPR is the cross-fitted network's
        held-out bound, ``linear`` the linear solve's per-particle EPR on the same pairs, ``network`` the trained
        parameters of the two folds, ``correction`` zero).
    """

    tracks: Tracks = field(repr=False)
    epr: Estimate
    epr_per_particle: Estimate
    split: dict
    diffusion: dict
    diffusion_estimated: dict
    frame_interval: float
    lag: int
    dt: float
    relaxation_rate: float
    warning: str | None
    correction: dict
    coefficients: dict = field(repr=False)
    drift_coefficients: dict = field(repr=False)
    feature_names: dict = field(repr=False)
    cutoff: float
    n_pairs: int
    n_batches: int
    mean_particles: float
    quadratic: np.ndarray | None = field(default=None, repr=False)
    velocity: dict | None = field(default=None, repr=False)
    positions: np.ndarray | None = field(default=None, repr=False)
    velocity_model: str = "linear"
    linear: Estimate | None = None
    network: list | None = field(default=None, repr=False)
    network_settings: object = field(default=None, repr=False)

    def per_particle_map(self, bins: int = 16, bounds=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The mean of e_i over the particle-snapshots in each cell of a ``bins`` × ``bins`` grid.

        Returns ``(mean, count, x_edges, y_edges)``: mean (bins, bins) (NaN in empty cells; index [ix, iy]),
        particle-snapshots per cell, and the edges (``bounds`` = (xmin, xmax, ymin, ymax), default: the box or the
        data's range)."""
        if self.quadratic is None or self.positions is None:
            raise ValueError("per-particle fields were not kept (pass keep_fields=True to estimate_model_free)")
        bins = check.integer("bins", bins, low=1)
        ok = np.isfinite(self.quadratic)
        pos, val = self.positions[ok], self.quadratic[ok]
        if bounds is None:
            if self.tracks.box_length is not None:
                half = self.tracks.box_length / 2
                bounds = (-half, half, -half, half)
            else:
                bounds = (pos[:, 0].min(), pos[:, 0].max(), pos[:, 1].min(), pos[:, 1].max())
        edges = (np.linspace(bounds[0], bounds[1], bins + 1), np.linspace(bounds[2], bounds[3], bins + 1))
        count, xe, ye = np.histogram2d(pos[:, 0], pos[:, 1], bins=edges)
        total, _, _ = np.histogram2d(pos[:, 0], pos[:, 1], bins=edges, weights=val)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        return mean, count, xe, ye

    def summary(self) -> str:
        unit = f" per {self.tracks.time_unit}" if self.tracks.time_unit else " per unit time"
        rule = "=" * 78
        lines = [
            f"Model-free entropy production (k_B{unit}) of {self.tracks!r}",
            f"  {self.n_pairs} frame pairs Δt = {self.dt:g} apart (lag {self.lag} × {self.frame_interval:g}), "
            f"{self.mean_particles:.1f} particles per pair; ± = standard error by batch means ({self.n_batches} "
            "batches)",
            f"  EPR per particle {format(self.epr_per_particle, '.5g'):>26}      total {format(self.epr, '.5g')}",
        ]
        value = self.epr_per_particle.value
        parts = []
        for block, est in self.split.items():
            share = f" ({100 * est.value / value:.1f}%)" if value > 3 * self.epr_per_particle.stderr else ""
            name = "θ" if block == "g" and self.tracks.angle is not None else block
            parts.append(f"{name}: {format(est, '.4g')}{share}")
        lines.append("    " + "   ".join(parts))
        dif = []
        for block, d in self.diffusion.items():
            name = "θ" if block == "g" and self.tracks.angle is not None else block
            how = "estimated from the increments" if self.diffusion_estimated[block] else "given"
            dif.append(f"D_{name} = {d:.5g} ({how})")
        lines.append("  " + "; ".join(dif))
        n_features = " + ".join(str(len(self.feature_names[b])) for b in self.diffusion)
        correction = sum(self.correction.values())
        if self.velocity_model == "network":
            net = self.network_settings
            lines.append(
                f"  velocity: network, Σ_k (c_k + MLP_k) φ_k on {n_features} model-free features (pair cutoff "
                f"{self.cutoff:.4g}; MLP {getattr(net, 'hidden', '?')} × {getattr(net, 'layers', '?')}), two-fold "
                f"cross-fitted (held-out, no correction); the linear solve gives {format(self.linear, '.5g')}"
            )
        else:
            lines.append(
                f"  velocity linear in {n_features} model-free features (pair cutoff {self.cutoff:.4g}); "
                f"overfitting correction −{correction:.3g} per particle"
            )
        rate = self.relaxation_rate
        lines.append(
            f"  fitted velocity decorrelates at λ = {rate:.4g}: λΔt = {rate * self.dt:.3g} (bias O(λΔt), physics.md §8)"
        )
        if self.warning:
            lines += [rule, "  !!! " + self.warning, rule]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """The numbers (no arrays) as plain Python values, e.g. for JSON."""

        def est(e: Estimate) -> dict:
            return {"value": e.value, "stderr": e.stderr}

        return {
            "epr": est(self.epr),
            "epr_per_particle": est(self.epr_per_particle),
            "split": {b: est(e) for b, e in self.split.items()},
            "diffusion": dict(self.diffusion),
            "diffusion_estimated": dict(self.diffusion_estimated),
            "dt": self.dt,
            "lag": self.lag,
            "relaxation_rate": self.relaxation_rate,
            "correction": dict(self.correction),
            "n_pairs": self.n_pairs,
            "mean_particles": self.mean_particles,
            "cutoff": self.cutoff,
            "velocity_model": self.velocity_model,
            "linear": None if self.linear is None else est(self.linear),
        }


def assemble(
    tracks: Tracks,
    fits: dict[str, BlockFit],
    names: dict[str, list[str]],
    *,
    lag: int,
    dt: float,
    cutoff: float,
    n_used: int,
    mean_particles: float,
    warn_rate: float,
    method: str = "model-free",
) -> ModelFreeEPR:
    """The result from the blocks' fits: the per-particle and total EPR with batch-means errors after the
    overfitting correction, the split by block, and the λΔt warning."""
    length = min(len(f.series) for f in fits.values())
    split = {}
    for b, f in fits.items():
        est = series_estimate(f.series[:length], length, method, None)
        split[b] = Estimate(est.value - f.correction, est.stderr, method, None, n_used)
    total_series = sum(f.series[:length] for f in fits.values())
    per = series_estimate(total_series, length, method, None)
    correction = {b: f.correction for b, f in fits.items()}
    per = Estimate(per.value - sum(correction.values()), per.stderr, method, None, n_used)
    epr = Estimate(per.value * mean_particles, per.stderr * mean_particles, method, None, n_used)
    significant = [b for b in fits if split[b].value > 3 * split[b].stderr] or list(fits)
    rate = max(fits[b].rate for b in significant)
    warning = None
    if rate * dt > warn_rate:
        warning = (
            f"frame spacing Δt = {dt:g} is long: the fitted velocity decorrelates at λ = {rate:.3g}, λΔt = "
            f"{rate * dt:.2f} > {warn_rate:g}, so the model-free EPR is biased by O(λΔt) (physics.md §8)"
        )
        warnings.warn(warning, stacklevel=3)
    return ModelFreeEPR(
        tracks,
        epr,
        per,
        split,
        {b: f.diffusion for b, f in fits.items()},
        {b: f.estimated for b, f in fits.items()},
        tracks.frame_interval,
        int(lag),
        dt,
        rate,
        warning,
        correction,
        {b: f.coefficients for b, f in fits.items()},
        {b: f.drift for b, f in fits.items()},
        {b: names[b] for b in fits},
        cutoff,
        n_used,
        length,
        mean_particles,
    )


def local_fields(result: ModelFreeEPR, pairs, cache: FrameCache, blocks, which, cutoff: float) -> None:
    """Per pair and track: v of each block and e_i = Σ v·D⁻¹v at the first frame of the pair."""
    tracks = result.tracks
    n_pairs, m = len(pairs), tracks.n_tracks
    quadratic = np.full((n_pairs, m), np.nan)
    positions = np.full((n_pairs, m, 2), np.nan)
    velocity: dict[str, np.ndarray] = {}
    for p, (k0, k1) in enumerate(pairs):
        rows = pair_rows(tracks, k0, k1, cutoff)
        if len(rows) == 0:
            continue
        slot0, f0 = cache(k0)
        e = np.zeros(len(rows))
        for b in blocks:
            v = f0[which[b]][slot0[rows]] @ result.coefficients[b]  # (n, c)
            if b not in velocity:
                velocity[b] = np.full((n_pairs, m, v.shape[1]), np.nan)
            velocity[b][p, rows] = v
            e += np.einsum("nc,nc->n", v, v) / result.diffusion[b]
        quadratic[p, rows] = e
        positions[p, rows] = tracks.x[k0, rows]
    result.quadratic, result.positions = quadratic, positions
    result.velocity = velocity
