"""Observables of one configuration through the compiled kernels: forces, drift and its divergence.

The estimators and the score network's force input use them; they are exactly what the simulator integrates.
"""

from __future__ import annotations

import numpy as np

from . import _validate as check
from . import backends
from .systems import check_system


def _positions(system, x) -> np.ndarray:
    return check.array("x", x, (system.n_particles, 2))


def forces(system, x, *, backend: str = "auto", n_threads: int = 0) -> np.ndarray:
    """(N, 2) interaction plus trap force k Σ_j F(x_i − x_j) − A x_i of one configuration (float64)."""
    system = check_system(system)
    x = _positions(system, x)
    return backends.get(backend).forces(system.spec(), x, system.radius, n_threads)


def drift(system, x, g) -> tuple[np.ndarray, np.ndarray]:
    """The drift (b_x, b_g): b_x = v0 g + k Σ F − A x and b_g = −γ g (AOUP) or −D_r g (ABP, Itô form)."""
    system = check_system(system)
    g = check.array("g", g, (system.n_particles, 2))
    b_x = system.v0 * g + forces(system, x)
    return b_x, -system.propulsion_rate * g


def drift_divergence(system, x, *, backend: str = "auto", n_threads: int = 0) -> np.ndarray:
    """(N,) per-particle ∇_{x_i}·b_x,i = k Σ_j [f(ρ)(d−1)/ρ + f'(ρ)] − A d (physics.md §1)."""
    system = check_system(system)
    x = _positions(system, x)
    return backends.get(backend).drift_divergence(system.spec(), x, system.radius, n_threads)

