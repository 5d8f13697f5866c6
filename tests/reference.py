"""Plain all-pairs NumPy float64 reference of the simulator maths (physics.md §1-2), for tests of every backend.

Written independently of the backends' kernels: all pairs at once (no cell list), the minimum image by rounding,
softplus via ``np.logaddexp``. Same cutoff r_c = sigma_ij + delta as the backends, so results agree to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from activescore.backends.rng import STEP_NOISE, normals4_array
from activescore.backends.spec import RunSpec, SystemSpec

DIMENSION = 2


def wrap(x: np.ndarray, box_length: float) -> np.ndarray:
    """Coordinates back into [-L/2, L/2)."""
    w = x - box_length * np.floor(x / box_length + 0.5)
    return np.where(w >= 0.5 * box_length, w - box_length, w)


def _pairs(system: SystemSpec, x: np.ndarray, radius: np.ndarray):
    """Minimum-image r_ij = x_i - x_j, rho, sigma and the mask of interacting pairs (inside the cutoff, rho > 0)."""
    L = system.box_length
    x = wrap(np.asarray(x, dtype=np.float64), L)
    radius = np.asarray(radius, dtype=np.float64)
    r = x[:, None, :] - x[None, :, :]
    r -= L * np.round(r / L)
    rho = np.sqrt(np.sum(r * r, axis=-1))
    sigma = radius[:, None] + radius[None, :]
    interacting = (rho < sigma + system.cutoff_delta) & (rho > 0)
    return x, r, np.where(interacting, rho, 1.0), sigma, interacting


def _f_and_df(system: SystemSpec, rho: np.ndarray, sigma: np.ndarray):
    """f(rho) and f'(rho): harmonic max(sigma - rho, 0), or softplus_beta(sigma - rho) and -sigmoid."""
    if system.harmonic:
        overlap = rho < sigma
        return np.where(overlap, sigma - rho, 0.0), np.where(overlap, -1.0, 0.0)
    z = system.beta * (sigma - rho)
    return np.logaddexp(0.0, z) / system.beta, -0.5 * (1.0 + np.tanh(0.5 * z))


def reference_forces(system: SystemSpec, x: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(N, 2): k sum_j f(rho) r_ij/rho - A x_i at wrapped positions."""
    x, r, rho, sigma, interacting = _pairs(system, x, radius)
    f, _ = _f_and_df(system, rho, sigma)
    scale = np.where(interacting, f / rho, 0.0)
    return system.k * np.einsum("ij,ijd->id", scale, r) - system.trap * x


def reference_drift_divergence(system: SystemSpec, x: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(N,): k sum_j [f(rho)(d-1)/rho + f'(rho)] - A d, d = 2."""
    _, _, rho, sigma, interacting = _pairs(system, x, radius)
    f, df = _f_and_df(system, rho, sigma)
    per_pair = np.where(interacting, f * (DIMENSION - 1) / rho + df, 0.0)
    return system.k * per_pair.sum(axis=1) - system.trap * DIMENSION


def reference_step(system: SystemSpec, run: RunSpec, x: np.ndarray, q: np.ndarray, radius: np.ndarray):
    """One step from (x, q) at step run.step: Euler-Maruyama in x (then wrap), exact (chiral) OU (AOUP) or
    theta + omega dt + sqrt(2 D_r dt) eta (ABP) in q, with the step-noise normals of rng. Returns (x_new, q_new)."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64).reshape(len(x), -1)
    noise = normals4_array(run.seed, run.step, np.arange(len(x)), STEP_NOISE)
    if system.model == "aoup":
        g = q
    else:
        g = np.stack([np.cos(q[:, 0]), np.sin(q[:, 0])], axis=1)
    drift = system.v0 * g + reference_forces(system, x, radius)
    x_new = wrap(x + run.dt * drift + math.sqrt(2.0 * system.eps * run.dt) * noise[:, :2], system.box_length)
    if system.model == "aoup":  # (gamma, omega): the mean turns by omega dt and decays, as an exact OU step
        gamma, omega = system.propulsion
        decay = math.exp(-gamma * run.dt)
        turn = omega * run.dt
        rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        q_new = decay * q @ rotation.T + math.sqrt(1.0 - decay * decay) * noise[:, 2:4]
    else:  # (D_r, omega)
        rotational_diffusion, omega = system.propulsion
        q_new = q + math.sqrt(2.0 * rotational_diffusion * run.dt) * noise[:, 2:3] + omega * run.dt
    return x_new, q_new
