"""Observables of one configuration through the compiled kernels: forces, drift and its divergence.

The estimators and the score network's force input use them; they are exactly what the simulator integrates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as check
from . import backends
from .systems import ParticleSystem, check_system


def _positions(system: ParticleSystem, x: ArrayLike) -> np.ndarray:
    return check.array("x", x, (system.n_particles, 2))


def forces(system: ParticleSystem, x: ArrayLike, *, backend: str = "auto", n_threads: int = 0) -> np.ndarray:
    """Interaction plus trap force of one configuration, k Σ_j F(x_i − x_j) − A x_i (physics.md §1).

    Parameters
    ----------
    system : AOUP or ABP
    x : array_like, shape (N, 2)
        Positions (wrapped into the box or not: the minimum image is taken).
    backend : {"auto", "cpp", "cuda", "numba"}
        Where to compute; every backend gives the same numbers.
    n_threads : int
        OpenMP threads of the compiled core (0: all).

    Returns
    -------
    numpy.ndarray, shape (N, 2), float64
    """
    system = check_system(system)
    x = _positions(system, x)
    return backends.get(backend).forces(system.spec(), x, system.radius, n_threads)


def drift(system: ParticleSystem, x: ArrayLike, g: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The drift of one configuration: b_x = v0 g + k Σ F − A x and b_g = −γ g (AOUP) or −D_r g (ABP, Itô form).

    Parameters
    ----------
    system : AOUP or ABP
    x, g : array_like, shape (N, 2)
        Positions and propulsion vectors.

    Returns
    -------
    b_x, b_g : numpy.ndarray, shape (N, 2) each
    """
    system = check_system(system)
    g = check.array("g", g, (system.n_particles, 2))
    b_x = system.v0 * g + forces(system, x)
    return b_x, -system.propulsion_rate * g


def drift_divergence(system: ParticleSystem, x: ArrayLike, *, backend: str = "auto", n_threads: int = 0) -> np.ndarray:
    """Per-particle divergence of the position drift, ∇_{x_i}·b_x,i = k Σ_j [f(ρ)(d−1)/ρ + f'(ρ)] − A d.

    Parameters
    ----------
    system : AOUP or ABP
    x : array_like, shape (N, 2)
        Positions.
    backend, n_threads
        As in :func:`forces`.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
    """
    system = check_system(system)
    x = _positions(system, x)
    return backends.get(backend).drift_divergence(system.spec(), x, system.radius, n_threads)
