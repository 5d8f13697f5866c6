"""Exact references and small utilities shared by the score-learning tests (physics.md §5)."""

from __future__ import annotations

import numpy as np

import activescore


def trapped_aoup_covariance(trap: float, gamma: float, v0: float, eps: float) -> np.ndarray:
    """Per-dimension stationary covariance of (x, g) for one AOUP in a harmonic trap (no interactions), in closed
    form (physics.md §5): S_gg = 1, S_xg = v0/(A + γ), S_xx = ε/A + v0²/(A (A + γ)). Independent of the package's
    Lyapunov solver, which test_score_gaussian checks against it."""
    return np.array([[eps / trap + v0**2 / (trap * (trap + gamma)), v0 / (trap + gamma)], [v0 / (trap + gamma), 1.0]])


def sample_trapped_aoups(rng: np.random.Generator, covariance: np.ndarray, n_frames: int, n_particles: int):
    """Exact stationary samples: every particle and dimension an independent (x, g) ~ N(0, covariance)."""
    z = rng.multivariate_normal(np.zeros(2), covariance, size=(n_frames, n_particles, 2))  # (..., dim, [x, g])
    return z[..., 0], z[..., 1]


def gaussian_score(x, g, covariance: np.ndarray, smoothing=(0.0, 0.0)):
    """Score −(S + diag(smoothing²))⁻¹ z of the (smoothed) Gaussian, returned as (s_x, s_g) like a Score.

    ``smoothing`` = (σ_x, σ_g): the denoising noise added to x and g (σ-smoothed density ρ * N(0, σ²)).
    """
    smoothed = covariance + np.diag(np.square(smoothing))
    precision = np.linalg.inv(smoothed)
    s_x = -(precision[0, 0] * x + precision[0, 1] * g)
    s_g = -(precision[1, 0] * x + precision[1, 1] * g)
    return s_x, s_g


def relative_fisher_error(learned, exact) -> float:
    """E|s − s*|² / E|s*|² over all particles and components."""
    learned, exact = np.asarray(learned), np.asarray(exact)
    return float(np.sum((learned - exact) ** 2) / np.sum(exact**2))


def score_on_frames(score, x, g, **kwargs):
    """Stack the learned (s_x, s_g) over frames (s_x stays None without an x head)."""
    outputs = [score(xf, gf, **kwargs) for xf, gf in zip(x, g, strict=False)]
    s_x = None if outputs[0][0] is None else np.stack([o[0] for o in outputs])
    return s_x, np.stack([o[1] for o in outputs])


def stationary_frames(system, dt, duration, every, seed):
    """Frames every ``every`` time units over ``duration``, after a burn-in of 50 time units (≫ the relaxation
    time 1/k = 1 of an overlap and the persistence time 1/γ = 1 of the soft-disk tests)."""
    return activescore.simulate(
        system,
        int(round(duration / dt)),
        dt,
        seed=seed,
        save_every=int(round(every / dt)),
        burn_in=int(round(50 / dt)),
        progress=False,
    )
