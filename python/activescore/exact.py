"""Exact scores, stationary samples and EPRs for the systems whose stationary density is known (physics.md §5).

They implement the score protocol that :func:`activescore.estimate` consumes (``score(x, g) -> (s_x or None,
s_g)``, ``divergence_g``, ``divergence_x``, ``system``, ``sigma``), so they validate the estimators, and they show
what a σ-smoothed score (the minimiser of denoising score matching) does to the estimated EPR.

* :class:`GaussianScore`: non-interacting AOUPs (k = 0) in a harmonic trap A > 0. Every particle and dimension is
  an independent Gaussian (x, g) ~ N(0, S) with B S + S Bᵀ + 2D = 0, B = [[−A, v0], [0, −γ]], D = diag(ε, γ);
  the score is −S⁻¹ z. With ``sigma > 0`` it is the score of the smoothed density ρ * N(0, σ² I) (covariance
  S + σ² I, noise on x and g alike), i.e. what a perfectly trained DSM network at noise level σ returns. With
  ``dt`` it is the exact score of the simulated chain instead (Euler–Maruyama in x, the exact OU update in g) at
  time step dt: S = F S Fᵀ + Q (discrete Lyapunov), what a perfect score of simulated snapshots is (the finite-dt
  ceiling, physics.md §5).
* :class:`EquilibriumScore`: v0 = 0, ε > 0, any interactions: ρ ∝ exp(−U/ε) N(g; 0, I), so s_x = b_x/ε and
  s_g = −g, and the probability-flow velocity vanishes identically. For ABPs θ is uniform and independent of x:
  s_θ = 0.
* :class:`FreeScore`: non-interacting, untrapped particles (k = 0, trap = 0) in the periodic box, AOUPs or ABPs:
  ρ is uniform in x times the stationary propulsion marginal (N(0, I) for g, uniform for θ), so s_x = 0 and s_g = −g
  (AOUP) or s_θ = 0 (ABP); the EPR is d v0²/ε (AOUP) or v0²/ε (ABP) per particle for ε > 0, and 0 for ε = 0.

Example::

    system = activescore.AOUP(256, box_length=200.0, k=0.0, trap=1.0, eps=0.5, gamma=1.0, v0=1.0)
    x, g = gaussian_samples(system, 400, seed=1)
    result = activescore.estimate(GaussianScore(system), (x, g), system=system)
    gaussian_epr(system)            # the exact EPR per particle, d v0² γ / (ε (A + γ))
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as check
from .observables import drift_divergence, forces
from .systems import AOUP, check_system

D = 2  # spatial dimension

__all__ = [
    "EquilibriumScore",
    "FreeScore",
    "GaussianScore",
    "gaussian_conditional_epr",
    "gaussian_epr",
    "discrete_lyapunov_covariance",
    "gaussian_samples",
    "lyapunov_covariance",
    "trapped_aoup_covariance",
]


def lyapunov_covariance(drift, diffusion) -> np.ndarray:
    """Stationary covariance S of dz = B z dt + √(2D) dW: the solution of B S + S Bᵀ + 2D = 0 (B stable)."""
    b = np.asarray(drift, dtype=np.float64)
    d = np.asarray(diffusion, dtype=np.float64)
    n = b.shape[0]
    if b.shape != (n, n) or d.shape != (n, n):
        raise ValueError(f"drift and diffusion must be square matrices of one size, got {b.shape} and {d.shape}")
    if np.max(np.linalg.eigvals(b).real) >= 0:
        raise ValueError("drift must be stable (every eigenvalue with negative real part)")
    eye = np.eye(n)
    operator = np.kron(eye, b) + np.kron(b, eye)  # vec(BS + SBᵀ) = (I⊗B + B⊗I) vec(S), column-major vec
    s = np.linalg.solve(operator, -2.0 * d.reshape(-1, order="F")).reshape(n, n, order="F")
    return 0.5 * (s + s.T)


def discrete_lyapunov_covariance(transition, noise) -> np.ndarray:
    """Stationary covariance S of the chain z' = F z + ξ, ξ ~ N(0, Q): the solution of S = F S Fᵀ + Q (every
    eigenvalue of F inside the unit circle)."""
    f = np.asarray(transition, dtype=np.float64)
    q = np.asarray(noise, dtype=np.float64)
    n = f.shape[0]
    if f.shape != (n, n) or q.shape != (n, n):
        raise ValueError(f"transition and noise must be square matrices of one size, got {f.shape} and {q.shape}")
    if np.max(np.abs(np.linalg.eigvals(f))) >= 1:
        raise ValueError("transition must be a contraction (every eigenvalue inside the unit circle)")
    operator = np.eye(n * n) - np.kron(f, f)  # vec(F S Fᵀ) = (F ⊗ F) vec(S)
    s = np.linalg.solve(operator, q.reshape(-1)).reshape(n, n)
    return 0.5 * (s + s.T)


def _check_trapped(system, name: str = "system"):
    if not isinstance(system, AOUP):
        raise ValueError(f"{name} must be an activescore.AOUP, got {type(system).__name__}")
    if system.k != 0:
        raise ValueError(f"{name}: the Gaussian reference needs non-interacting particles (k = 0), got k={system.k}")
    if not system.trap > 0:
        raise ValueError(f"{name}: the Gaussian reference needs a harmonic trap (trap > 0), got trap={system.trap}")
    if system.eps == 0 and system.v0 == 0:
        raise ValueError(f"{name}: with eps = 0 and v0 = 0 every particle sits at the origin (degenerate density)")
    if system.chiral:
        raise ValueError(
            f"{name}: the Gaussian reference is per dimension and a chiral turn (omega={system.omega:g}) couples "
            "the two; use omega = 0"
        )
    return system


def _drift_matrices(system) -> tuple[np.ndarray, np.ndarray]:
    """Per particle and dimension: B = [[−A, v0], [0, −γ]] and D = diag(ε, γ)."""
    b = np.array([[-system.trap, system.v0], [0.0, -system.gamma]])
    return b, np.diag([system.eps, system.gamma])


def trapped_aoup_covariance(system, dt: float | None = None) -> np.ndarray:
    """The 2×2 per-dimension stationary covariance S of (x, g) for non-interacting trapped AOUPs.

    S_gg = 1, S_xg = v0/(A + γ), S_xx = ε/A + v0²/(A (A + γ)); non-degenerate also when ε = 0 (v0 > 0). With
    ``dt``: that of the simulated chain x' = (1 − A dt) x + v0 dt g + √(2ε dt) ξ, g' = e^{−γ dt} g + √(1 − e^{−2γ dt}) η
    (physics.md §2), the discrete Lyapunov solution."""
    _check_trapped(system)
    b, d = _drift_matrices(system)
    if dt is None:
        return lyapunov_covariance(b, d)
    dt = check.real("dt", dt, low=0.0, low_open=True)
    decay = math.exp(-system.gamma * dt)
    transition = np.array([[1.0 - system.trap * dt, system.v0 * dt], [0.0, decay]])
    noise = np.diag([2.0 * system.eps * dt, 1.0 - decay**2])
    return discrete_lyapunov_covariance(transition, noise)


def gaussian_samples(system, n_frames: int, *, seed=None, dt: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact, independent stationary snapshots ``(x, g)``, each (n_frames, N, 2), of non-interacting trapped AOUPs.

    ``seed``: an int, a ``numpy.random.Generator`` or None; ``dt``: of the simulated chain at that time step
    instead of the SDE (:func:`trapped_aoup_covariance`). Raises ValueError if a particle falls outside the box
    (choose a box many cloud widths √S_xx wide: the trap pulls toward the origin, not toward the nearest image)."""
    n_frames = check.integer("n_frames", n_frames, low=1)
    cov = trapped_aoup_covariance(system, dt)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    chol = np.linalg.cholesky(cov)
    z = rng.standard_normal((n_frames, system.n_particles, D, 2)) @ chol.T  # last axis: (x, g)
    x, g = np.ascontiguousarray(z[..., 0]), np.ascontiguousarray(z[..., 1])
    half = system.box_length / 2
    if np.max(np.abs(x)) >= half:
        raise ValueError(
            f"system: box_length={system.box_length:g} is too small for the trapped cloud "
            f"(width √S_xx = {math.sqrt(cov[0, 0]):.3g}); use a box at least ~20 widths wide"
        )
    return x, g


def _smoothed_precision(system, sigma: float, dt: float | None = None) -> np.ndarray:
    cov = trapped_aoup_covariance(system, dt)
    return np.linalg.inv(cov + sigma**2 * np.eye(2))


def _velocity_matrix(system, sigma: float) -> np.ndarray:
    """M with v = M z per dimension, for the score of the σ-smoothed density: M = B + D (S + σ² I)⁻¹."""
    b, d = _drift_matrices(system)
    return b + d @ _smoothed_precision(system, sigma)


def _quadratic_pieces(system, sigma: float, form: str, part: str):
    """The per-dimension local value as zᵀ Q z + q0 for ``form`` ("quadratic"/"divergence") and ``part``."""
    check.choice("form", form, {"quadratic", "divergence"})
    check.choice("part", part, {"total", "x", "g"})
    b, _ = _drift_matrices(system)
    m = _velocity_matrix(system, sigma)
    eps, gamma = system.eps, system.gamma
    want_x = part in ("total", "x") and eps > 0
    want_g = part in ("total", "g")
    q = np.zeros((2, 2))
    q0 = 0.0
    if form == "quadratic":  # e = |v_x|²/ε + |v_g|²/γ
        if want_x:
            q += np.outer(m[0], m[0]) / eps
        if want_g:
            q += np.outer(m[1], m[1]) / gamma
    else:  # c = ∇_g·v_g + v_x·b_x/ε + ∇_x·v_x
        if want_g:
            q0 += m[1, 1]
        if want_x:
            q += 0.5 * (np.outer(m[0], b[0]) + np.outer(b[0], m[0])) / eps
            q0 += m[0, 0]
    return q, q0


def gaussian_epr(system, *, sigma: float = 0.0, form: str = "quadratic", part: str = "total") -> float:
    """Exact expectation of the per-particle EPR e_i (``form="quadratic"``) or c_i (``"divergence"``) that
    :func:`activescore.estimate` computes from ``GaussianScore(system, sigma)``.

    σ = 0: both forms equal the EPR per particle, d v0² γ / (ε (A + γ)) for ε > 0 and d A for ε = 0. σ > 0: the
    values a perfectly trained DSM score at noise level σ gives (biased, and different for the two forms).
    ``part``: "total", or the "x" / "g" degree of freedom's share."""
    sigma = check.real("sigma", sigma, low=0.0)
    q, q0 = _quadratic_pieces(system, sigma, form, part)
    cov = trapped_aoup_covariance(system)
    return float(D * (np.trace(q @ cov) + q0))


def gaussian_conditional_epr(system, r, *, sigma: float = 0.0, form: str = "quadratic") -> np.ndarray:
    """E[e_i | x_i] (or E[c_i | x_i]) for the trapped Gaussian: a quadratic α |x|² + β in the distance r = |x_i|
    from the trap centre (g_i given x_i is Gaussian with mean (S_gx/S_xx) x_i). Returns an array like ``r``."""
    sigma = check.real("sigma", sigma, low=0.0)
    q, q0 = _quadratic_pieces(system, sigma, form, "total")
    cov = trapped_aoup_covariance(system)
    c = cov[1, 0] / cov[0, 0]
    var = cov[1, 1] - cov[1, 0] ** 2 / cov[0, 0]
    alpha = q[0, 0] + 2 * q[0, 1] * c + q[1, 1] * c**2
    beta = D * (q[1, 1] * var + q0)
    return alpha * np.square(np.asarray(r, dtype=np.float64)) + beta


def _snapshot(system, x, g):
    n = system.n_particles
    return check.array("x", x, (n, 2)), check.array("g", g, (n, 2))


class GaussianScore:
    """Exact (σ = 0) or exactly σ-smoothed score of non-interacting AOUPs in a harmonic trap (see the module doc).

    ``score(x, g)`` → ``(s_x, s_g)`` for one snapshot ((N, 2) each; ``s_x`` is None when ε = 0);
    ``divergence_g(x, g)``, ``divergence_x(x, g)`` → (N,) per-particle divergences; ``sigma`` the smoothing;
    ``dt``: the score of the simulated chain at that time step instead of the SDE's (module doc)."""

    def __init__(self, system, sigma: float = 0.0, dt: float | None = None):
        _check_trapped(system)
        self.system = system
        self.sigma = check.real("sigma", sigma, low=0.0)
        self.dt = dt
        self.covariance = trapped_aoup_covariance(system, dt)
        self.precision = _smoothed_precision(system, self.sigma, dt)

    def __call__(self, x, g):
        x, g = _snapshot(self.system, x, g)
        p = self.precision
        s_g = -(p[1, 0] * x + p[1, 1] * g)
        s_x = -(p[0, 0] * x + p[0, 1] * g) if self.system.eps > 0 else None
        return s_x, s_g

    def divergence_g(self, x, g) -> np.ndarray:
        return np.full(self.system.n_particles, -D * self.precision[1, 1])

    def divergence_x(self, x, g) -> np.ndarray:
        if self.system.eps == 0:
            raise ValueError("this score has no x block (the system has eps = 0)")
        return np.full(self.system.n_particles, -D * self.precision[0, 0])

    def __repr__(self) -> str:
        chain = f", dt={self.dt}" if self.dt is not None else ""
        return f"GaussianScore({self.system!r}, sigma={self.sigma}{chain})"


class EquilibriumScore:
    """Exact score of an equilibrium system (v0 = 0, ε > 0, any interactions and trap), AOUP or ABP:
    ρ ∝ exp(−U(x)/ε) × the stationary propulsion marginal, so s_x = b_x/ε = forces/ε, s_g = −g (AOUP) or s_θ = 0
    (ABP), and v = b − D s = 0 (with chirality ω ≠ 0 the score stays exact, and v_q = ω J g, or ω for θ, is all
    that flows)."""

    def __init__(self, system, *, n_threads: int = 0):
        system = check_system(system)
        if system.v0 != 0 or not system.eps > 0:
            raise ValueError(
                f"system: the equilibrium score needs v0 = 0 and eps > 0, got v0={system.v0}, eps={system.eps}"
            )
        self.system = system
        self.sigma = 0.0
        self.n_threads = check.integer("n_threads", n_threads, low=0)

    def __call__(self, x, g):
        x, g = _snapshot(self.system, x, g)
        s_x = forces(self.system, x, n_threads=self.n_threads) / self.system.eps
        return s_x, self.system.stationary_propulsion_score(g)

    def divergence_g(self, x, g) -> np.ndarray:
        return np.full(self.system.n_particles, float(self.system.stationary_propulsion_score_divergence))

    def divergence_x(self, x, g) -> np.ndarray:
        x, _ = _snapshot(self.system, x, g)
        return drift_divergence(self.system, x, n_threads=self.n_threads) / self.system.eps

    def __repr__(self) -> str:
        return f"EquilibriumScore({self.system!r})"


class FreeScore:
    """Exact score of non-interacting, untrapped particles (k = 0, trap = 0) in the periodic box, AOUP or ABP.

    Each particle is independent, its position uniform in the box and its propulsion at its stationary marginal,
    independent of the position (the propulsion drift v0 g has no x dependence to correlate them): s_x = 0 and
    s_g = −g (AOUP) or s_θ = 0 (ABP). Then v_x = b_x = v0 g and the EPR per particle is E|v0 g|²/ε: d v0²/ε for
    AOUPs, v0²/ε for ABPs (ε > 0), and 0 when ε = 0 (physics.md §4)."""

    def __init__(self, system):
        system = check_system(system)
        if system.k != 0 or system.trap != 0:
            raise ValueError(
                f"system: the free-particle score needs k = 0 and trap = 0, got k={system.k}, trap={system.trap}"
            )
        self.system = system
        self.sigma = 0.0

    def __call__(self, x, g):
        x, g = _snapshot(self.system, x, g)
        s_x = np.zeros_like(x) if self.system.eps > 0 else None
        return s_x, self.system.stationary_propulsion_score(g)

    def divergence_g(self, x, g) -> np.ndarray:
        return np.full(self.system.n_particles, float(self.system.stationary_propulsion_score_divergence))

    def divergence_x(self, x, g) -> np.ndarray:
        return np.zeros(self.system.n_particles)

    def __repr__(self) -> str:
        return f"FreeScore({self.system!r})"
