"""Observables of one configuration through the compiled kernels: forces, drift and its divergence.

The estimators and the score network's force input use them; they are exactly what the simulator integrates.
"""

from __future__ import annotations

from typing import Any

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
    return b_x, system.propulsion_vector_drift(g)


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


def drift_jacobian(system: ParticleSystem, x: ArrayLike) -> tuple[np.ndarray, Any]:
    """The force F (N, 2) and the drift Jacobian M = ∂b_x/∂x (2N × 2N, sparse, rows/columns ordered x_0, y_0,
    x_1, …) of one configuration ``x`` (N, 2), with the simulator's pair potential and cutoff.

    M is symmetric (the forces derive from a pair energy and the trap): per interacting pair the (i, i) and (j, j)
    blocks gain ∂(f ê)/∂x_i, the (i, j) and (j, i) blocks lose it; −A stands on the diagonal. A NumPy/SciPy
    computation (scipy.sparse), for the estimators' finite-dt ceiling and the drift-response score.
    """
    import scipy.sparse as sparse
    from scipy.spatial import cKDTree

    system = check_system(system)
    x = _positions(system, x)
    n = system.n_particles
    radius = np.asarray(system.radius, dtype=np.float64)
    length = float(system.box_length)
    force = -float(system.trap) * x
    diagonal = np.full(2 * n, -float(system.trap))
    if float(system.k) == 0.0 or n < 2:
        return force, sparse.diags(diagonal, format="csr")
    delta = float(system.spec().cutoff_delta)
    reach = 2.0 * float(radius.max()) + delta
    tree = cKDTree(np.mod(x + 0.5 * length, length), boxsize=length)
    pairs = tree.query_pairs(reach, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    r = x[i] - x[j]
    r -= length * np.round(r / length)
    rho = np.sqrt(np.sum(r**2, axis=1))
    sigma = radius[i] + radius[j]
    keep = rho < sigma + delta
    i, j, r, rho, sigma = i[keep], j[keep], r[keep], rho[keep], sigma[keep]
    e = r / rho[:, None]
    k = float(system.k)
    if system.harmonic:
        f, df = k * np.maximum(sigma - rho, 0.0), -k * (rho < sigma)
    else:
        z = system.beta * (sigma - rho)
        f, df = k * np.logaddexp(0.0, z) / system.beta, -k / (1.0 + np.exp(-z))
    np.add.at(force, i, f[:, None] * e)
    np.add.at(force, j, -f[:, None] * e)
    # ∂(f ê)/∂x_i = f' ê êᵀ + (f/ρ)(I − ê êᵀ) on the (i, i) block, its negative on (i, j); the same for j.
    outer = e[:, :, None] * e[:, None, :]
    block = df[:, None, None] * outer + (f / rho)[:, None, None] * (np.eye(2) - outer)
    rows, cols, values = [], [], []
    for a in range(2):
        for b in range(2):
            for first, second, sign in ((i, i, 1.0), (j, j, 1.0), (i, j, -1.0), (j, i, -1.0)):
                rows.append(2 * first + a)
                cols.append(2 * second + b)
                values.append(sign * block[:, a, b])
    rows.append(np.arange(2 * n))
    cols.append(np.arange(2 * n))
    values.append(diagonal)
    jacobian = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(2 * n, 2 * n)
    )
    return force, jacobian


def jacobian_square_trace(system: ParticleSystem, x: ArrayLike) -> np.ndarray:
    """Per-particle shares of tr M², M = ∂b_x/∂x the drift Jacobian (:func:`drift_jacobian`): the sum of the
    squared entries of particle i's two rows, so that the shares add up to tr M² = Σ_ab M_ab² (M symmetric).
    Enters the finite-dt ceiling of the learned EPR (physics.md §5).

    Parameters
    ----------
    system : AOUP or ABP
    x : array_like, shape (N, 2)
        Positions.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
    """
    _, jacobian = drift_jacobian(system, x)
    rows = np.asarray(jacobian.multiply(jacobian).sum(axis=1)).ravel()
    return rows.reshape(-1, 2).sum(axis=1)
