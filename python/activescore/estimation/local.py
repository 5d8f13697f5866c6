"""Per-particle fields of one snapshot: drift terms, probability-flow velocity and the local EPR in both forms
(physics.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..observables import drift_divergence
from ..observables import forces as pair_forces
from .inputs import check_estimable, sample_arrays
from .score_protocol import BoundScore

D = 2  # spatial dimension
QUANTITIES = ("quadratic", "divergence", "quadratic_x", "quadratic_g", "divergence_x", "divergence_g")


def drift_terms(system, x, g, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """b_x (N, 2) and ∇_{x_i}·b_x,i (N,) of one snapshot (non-interacting systems without the cell list)."""
    if system.k == 0:
        forces = -system.trap * x
        div = np.full(system.n_particles, -D * system.trap)
    else:
        forces = pair_forces(system, x, n_threads=n_threads)
        div = drift_divergence(system, x, n_threads=n_threads)
    return system.v0 * g + forces, div


def identity_terms(system, g, b_x, div_bx) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-particle integrands of the learning-free identity and (ε > 0) of its active-work form.

    Where a form drops the propulsion block (ε = 0, the active work) it adds the block's exact stationary mean
    instead (``system.stationary_propulsion_identity``: a chiral turn's ω²/rate per coordinate, else 0)."""
    propulsion_mean = system.stationary_propulsion_identity
    if system.eps > 0:
        eps = system.eps
        ident = np.einsum("ij,ij->i", b_x, b_x) / eps + system.propulsion_identity_terms(g) + div_bx
        work = system.v0 * np.einsum("ij,ij->i", g, b_x) / eps + propulsion_mean
        return ident, work
    return -div_bx + propulsion_mean, None


# --------------------------------------------------------------------------------------------- one snapshot
@dataclass(eq=False)
class LocalEPR:
    """Per-particle fields of one snapshot ((N, ...)), or of many (leading snapshot axis) in ``EPRResult.local``.

    ``v_x``: probability-flow velocity of the positions, b_x − ε s_x (ε = 0: v_x = b_x, the x noise is absent);
    ``v_g``: that of the propulsion coordinates, −γ (g + s_g) (N, 2) for AOUPs, v_θ = −D_r s_θ (N, 1) for ABPs;
    ``quadratic_x`` = |v_x|²/ε, ``quadratic_g`` = |v_g|²/γ (v_θ²/D_r); ``divergence_g`` = ∇_g·v_g (∂_θ v_θ),
    ``divergence_x`` = v_x·b_x/ε + ∇_x·v_x (both x parts zero when ε = 0); ``quadratic`` and ``divergence`` are the
    sums e_i and c_i. The "g" parts are the propulsion degree of freedom: θ for ABPs. ``identity`` / ``active_work``: the integrands of the learning-free identity (their sums
    have the EPR as expectation; they are not local EPRs). ``sigma``: the score's noise level."""

    v_x: np.ndarray
    v_g: np.ndarray
    quadratic_x: np.ndarray
    quadratic_g: np.ndarray
    divergence_x: np.ndarray
    divergence_g: np.ndarray
    identity: np.ndarray
    active_work: np.ndarray | None
    sigma: float | None = None

    @property
    def quadratic(self) -> np.ndarray:
        return self.quadratic_x + self.quadratic_g

    @property
    def divergence(self) -> np.ndarray:
        return self.divergence_x + self.divergence_g

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in QUANTITIES:
            raise KeyError(f"{key!r}: one of {QUANTITIES}")
        return getattr(self, key)


def local_fields(system, bound: BoundScore, x, g, n_threads: int) -> LocalEPR:
    eps = system.eps
    b_x, div_bx = drift_terms(system, x, g, n_threads)
    s_x, s_g, div_sx, div_sg = bound(x, g)
    # The propulsion block in the system's coordinates q (g for AOUPs, θ for ABPs), D_q = rate · I:
    # v_q = b_q − D_q s_q, e_q = |v_q|²/rate, c_q = ∇_q·v_q (physics.md §4).
    v_g = system.propulsion_velocity(g, s_g)
    q_g = np.einsum("ij,ij->i", v_g, v_g) / system.propulsion_rate
    # c_q = v_q·b_q/rate + ∇_q·v_q; the first term's mean is the identity's propulsion block (a chiral turn's
    # ω²/rate per coordinate, else 0; physics.md §4), added as that exact constant.
    c_g = system.propulsion_velocity_divergence(div_sg) + system.stationary_propulsion_identity
    if eps > 0:
        v_x = b_x - eps * s_x
        q_x = np.einsum("ij,ij->i", v_x, v_x) / eps
        c_x = np.einsum("ij,ij->i", v_x, b_x) / eps + div_bx - eps * div_sx
    else:
        v_x = b_x
        q_x = np.zeros_like(q_g)
        c_x = np.zeros_like(q_g)
    ident, work = identity_terms(system, g, b_x, div_bx)
    return LocalEPR(v_x, v_g, q_x, q_g, c_x, c_g, ident, work, bound.sigma)


def local_epr(
    score, x, g, *, system=None, score_kwargs: dict | None = None, transfer: bool = False, n_threads: int = 0
) -> LocalEPR:
    """Per-particle velocity and local EPR (both forms, x/g parts) of one snapshot ``x``, ``g`` (N, 2) (ABPs:
    g = (cos θ, sin θ))."""
    system = check_estimable(system if system is not None else getattr(score, "system", None), "system")
    _, xs, gs = sample_arrays((x, g), system, "x, g")
    bound = BoundScore(score, system, score_kwargs, transfer)
    return local_fields(system, bound, xs[0], gs[0], check.integer("n_threads", n_threads, low=0))
