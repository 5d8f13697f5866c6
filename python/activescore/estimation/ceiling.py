"""The finite-dt ceiling (physics.md §5): what a perfect score of the *simulated chain* can show, and the EPR
corrected for the time step.

A score is fitted to snapshots of the Euler chain, whose stationary density differs from the SDE's at O(dt). With
ε = 0 the chain's own exact score gives, to first order in dt,

    learned ≈ E[−tr M] − (dt/2) E[tr M²]        (M = ∂b_x/∂x; E[−tr M] is the identity)

so a perfect score reaches learned/identity = 1 − dt E[tr M²] / (2 E[−tr M]) (the *ceiling*), and
learned + (dt/2) E[tr M²] estimates the SDE's EPR to O(dt²) (the *corrected* EPR). For the linear chain both are
exact mode by mode. With ε > 0 the chain's bias has another form (the chain's exact score overshoots the identity),
so no ceiling is reported there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..observables import jacobian_square_trace
from ..systems import ParticleSystem
from .statistics import Estimate, ratio_estimate, series_estimate

#: One line on what the numbers mean, printed under them.
MEANING = (
    "learned/ceiling is the score's share of what the time step allows; the rest of learned/identity is the "
    "time step's (simulate at a smaller dt to shrink it); corrected = learned + (dt/2) E[tr M²] estimates the "
    "dt -> 0 EPR"
)


def not_applicable(system: ParticleSystem, dt: float | None) -> str | None:
    """Why no ceiling is reported for ``system`` at ``dt`` (None: it is)."""
    if system.eps > 0:
        return "not reported for eps > 0 (derived for eps = 0)"
    if dt is None:
        return "not reported: unknown time step (pass dt= for samples given as arrays)"
    return None


def check_dt(dt) -> float | None:
    """``dt`` as a positive float, or None."""
    return None if dt is None else check.real("dt", dt, low=0.0, low_open=True)


def square_trace_total(system: ParticleSystem, x: np.ndarray) -> float:
    """tr M² of one snapshot ``x`` (N, 2)."""
    return float(jacobian_square_trace(system, x).sum())


@dataclass(frozen=True)
class FiniteDtCeiling:
    """The time step's ceiling on a learned EPR and the corrected EPR (module docstring), per particle.

    Attributes
    ----------
    dt : float
        The chain's time step.
    ceiling : Estimate
        1 − dt E[tr M²] / (2 E[−tr M]): learned/identity of a perfect score of the chain.
    chain_identity : Estimate
        E[−tr M] − (dt/2) E[tr M²] per particle: what a perfect score of the chain gives.
    correction : Estimate
        (dt/2) E[tr M²] per particle, added to a learned EPR to estimate the SDE's.
    of_ceiling, corrected, corrected_ratio, difference : dict
        form → Estimate: learned/ceiling (= learned / chain identity), the corrected EPR per particle, corrected /
        identity, and learned − chain identity per particle (paired; its standard error judges the score).
    """

    dt: float
    ceiling: Estimate
    chain_identity: Estimate
    correction: Estimate
    of_ceiling: dict
    corrected: dict
    corrected_ratio: dict
    difference: dict

    def consistency(self, form: str = "quadratic") -> float:
        """(learned − chain identity) in standard errors (NaN if it cannot be judged)."""
        d = self.difference[form]
        if not np.isfinite(d.stderr):
            return float("nan")
        scale = max(abs(self.chain_identity.value), 1e-300)
        return d.value / float(np.hypot(d.stderr, 1e-9 * scale))

    def to_dict(self) -> dict:
        def est(e: Estimate) -> dict:
            return {"value": e.value, "stderr": e.stderr, "form": e.form}

        return {
            "dt": self.dt,
            "ceiling": est(self.ceiling),
            "chain_identity_per_particle": est(self.chain_identity),
            "correction_per_particle": est(self.correction),
            "of_ceiling": {f: est(e) for f, e in self.of_ceiling.items()},
            "corrected_per_particle": {f: est(e) for f, e in self.corrected.items()},
            "corrected_ratio": {f: est(e) for f, e in self.corrected_ratio.items()},
        }


def finite_dt_ceiling(
    dt: float, identity: np.ndarray, square_trace: np.ndarray, learned: dict, n_particles: int, n_batches: int, sigma
) -> FiniteDtCeiling:
    """The ceiling from per-snapshot totals over the same snapshots (F,): the identity E[−tr M] of each,
    ``square_trace`` tr M², and ``learned``: form → the learned EPR (total) of each."""
    half = 0.5 * dt * np.asarray(square_trace, dtype=np.float64)
    chain = identity - half
    per = 1.0 / n_particles
    of_ceiling, corrected, corrected_ratio, difference = {}, {}, {}, {}
    for form, series in learned.items():
        of_ceiling[form] = ratio_estimate(series, chain, n_batches, f"{form}/ceiling", sigma)
        corrected[form] = series_estimate(series + half, n_batches, f"{form}+dt correction", sigma, per)
        corrected_ratio[form] = ratio_estimate(series + half, identity, n_batches, f"corrected {form}/identity", sigma)
        difference[form] = series_estimate(series - chain, n_batches, f"{form}-chain identity", sigma, per)
    return FiniteDtCeiling(
        dt=dt,
        ceiling=ratio_estimate(chain, identity, n_batches, "ceiling", None),
        chain_identity=series_estimate(chain, n_batches, "chain identity", None, per),
        correction=series_estimate(half, n_batches, "dt correction", None, per),
        of_ceiling=of_ceiling,
        corrected=corrected,
        corrected_ratio=corrected_ratio,
        difference=difference,
    )
