"""k nearest neighbours under the minimum image, the token sets of the score network (physics.md §7).

The search itself is the compiled core's cell list (O(N k)); this module only validates and converts.
"""

from __future__ import annotations

import numpy as np

from .. import backends


def knn(x, box_length: float, k: int, *, n_threads: int = 1, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest particles of every particle in a periodic square box, self first.

    Parameters
    ----------
    x : array_like, shape (N, 2)
        Positions in the centred box [-L/2, L/2) (other values are wrapped).
    box_length : float
        Side L of the periodic box.
    k : int
        Neighbours per particle, self included (1 <= k <= N).
    n_threads : int
        OpenMP threads (0: all available). Default 1: score learning calls this once per frame inside a JAX process,
        where one thread is fast enough (O(N k)) and does not compete with JAX's own thread pool. (With OpenMP threads,
        runs interleaving it with JAX computations crashed intermittently in the core's knn on the development machine;
        under investigation.)
    backend : str
        "cpp" or "numba" (same lists); "auto" and "cuda" use the compiled core when it is there, else Numba.

    Returns
    -------
    index : ndarray of int64, shape (N, k)
        Particle ``i``'s neighbours ordered by squared minimum-image distance, self first, ties broken by smaller
        index.
    displacement : ndarray of float64, shape (N, k, 2)
        ``x_i - x_j`` under the minimum image (the self row is zero).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2), got {x.shape}")
    if not (np.isfinite(box_length) and box_length > 0):
        raise ValueError(f"box_length must be a finite positive number, got {box_length!r}")
    k = int(k)
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be in [1, N = {x.shape[0]}], got {k}")
    return backends.get_cpu(backend).knn(x, float(box_length), k, int(n_threads))


def minimum_image(displacement, box_length):
    """Map coordinate differences into [-L/2, L/2] (works on NumPy and JAX arrays alike)."""
    return displacement - box_length * (displacement / box_length).round()
