"""Initial conditions, drawn from the Philox stream (purpose INITIAL_CONDITION) so every backend starts alike."""

from __future__ import annotations

import math

import numpy as np

from ..backends import rng


def draw(system, seed: int) -> np.ndarray:
    """(n, 4) standard normals keyed by (seed, step 0, particle, INITIAL_CONDITION): the one draw an initial
    state is made from (positions from columns 0-1, propulsion from columns 2-3)."""
    particles = np.arange(system.n_particles, dtype=np.uint64)
    return rng.normals4_array(seed, 0, particles, rng.INITIAL_CONDITION)


def propulsion(system, z: np.ndarray) -> np.ndarray:
    """Stationary propulsion from columns 2-3 of the draw z (AOUP: g_i ~ N(0, I); ABP: θ_i uniform)."""
    return system.stationary_propulsion(z[:, 2:4])


def uniform_positions(system, z: np.ndarray) -> np.ndarray:
    """Positions uniform in the box. The Box–Muller pair (n0, n1) = r (cos 2πu1, sin 2πu1), r² = −2 ln u0 gives
    back its two independent uniforms, so positions and propulsion (n2, n3) come from one draw."""
    u = np.stack(
        [np.exp(-0.5 * (z[:, 0] ** 2 + z[:, 1] ** 2)), np.mod(np.arctan2(z[:, 1], z[:, 0]) / (2 * np.pi), 1.0)], axis=-1
    )
    L = system.box_length
    x = (u - 0.5) * L
    return np.where(x >= 0.5 * L, x - L, x)


def cluster_positions(system) -> np.ndarray:
    """A dense hexagonal disk around the origin (a head start for MIPS): the n lattice sites nearest the centre,
    spacing 2R (mean radius), shrunk if needed so that the disk fits in the box."""
    n = system.n_particles
    L = system.box_length
    spacing = 2.0 * float(np.mean(system.radius))
    # Hexagonal lattice holding n sites needs area n (√3/2) a²; keep it inside the box.
    spacing = min(spacing, 0.999 * L / math.sqrt(n * math.sqrt(3.0) / 2.0 * 4.0 / math.pi))
    m = int(math.ceil(math.sqrt(n))) + 3
    i, j = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
    sites = np.stack([spacing * (i + 0.5 * (j % 2)), spacing * (math.sqrt(3.0) / 2.0) * j], -1).reshape(-1, 2)
    d2 = np.einsum("ij,ij->i", sites, sites)
    nearest = np.lexsort((sites[:, 1], sites[:, 0], d2))[:n]
    x = sites[nearest]
    return x - L * np.floor(x / L + 0.5)
