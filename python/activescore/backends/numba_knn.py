"""k nearest neighbours under the minimum image in Numba: the compiled core's ``knn`` for machines without it.

Same contract and the same arithmetic as ``cpp/activescore/neighbours.cpp`` (wrapped coordinates, the C++
minimum image, squared distances, order by (distance², index) with self first), so both return the same lists.
The search scans growing rings of cells around each particle until the k-th nearest lies within the ring.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _min_image(d, box_length, half):
    if d > half:
        return d - box_length
    if d < -half:
        return d + box_length
    return d


@numba.njit(cache=True)
def cell_order(cell, n_cells):
    """A counting sort of particles into cells, stable in particle index: ``(start, order)`` with the particles of
    cell c at ``order[start[c]:start[c + 1]]``. ``cell``: each particle's cell index, in [0, n_cells)."""
    n = cell.shape[0]
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for i in range(n):
        start[cell[i] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[cell[i]]] = i
        fill[cell[i]] += 1
    return start, order


@numba.njit(cache=True, parallel=True)
def _knn_kernel(wrapped, box_length, k, side, index, displacement):
    n = wrapped.shape[0]
    half = 0.5 * box_length
    width = box_length / side
    # Counting sort of the particles into cells (stable in particle index).
    cell = np.empty(n, dtype=np.int64)
    for i in range(n):
        cx = min(int(math.floor((wrapped[i, 0] + half) / width)), side - 1)
        cy = min(int(math.floor((wrapped[i, 1] + half) / width)), side - 1)
        cell[i] = max(cy, 0) * side + max(cx, 0)
    start, order = cell_order(cell, side * side)
    for i in numba.prange(n):
        cx, cy = cell[i] % side, cell[i] // side
        ring = 1
        while True:
            whole_box = 2 * ring + 1 >= side
            lo = 0 if whole_box else -ring
            hi = side - 1 if whole_box else ring
            count = 0
            for dy in range(lo, hi + 1):
                for dx in range(lo, hi + 1):
                    c = dy * side + dx if whole_box else ((cy + dy + side) % side) * side + (cx + dx + side) % side
                    count += start[c + 1] - start[c]
            if not whole_box and count < k:
                ring += 1
                continue
            dist = np.empty(count)
            who = np.empty(count, dtype=np.int64)
            m = 0
            for dy in range(lo, hi + 1):
                for dx in range(lo, hi + 1):
                    c = dy * side + dx if whole_box else ((cy + dy + side) % side) * side + (cx + dx + side) % side
                    for s in range(start[c], start[c + 1]):
                        j = order[s]
                        ddx = _min_image(wrapped[i, 0] - wrapped[j, 0], box_length, half)
                        ddy = _min_image(wrapped[i, 1] - wrapped[j, 1], box_length, half)
                        dist[m] = -1.0 if j == i else ddx * ddx + ddy * ddy  # self first, even when coincident
                        who[m] = j
                        m += 1
            # Order by (distance², index), as std::sort on pairs does.
            keys = np.argsort(who, kind="mergesort")
            ranked = keys[np.argsort(dist[keys], kind="mergesort")]
            reach = ring * width
            if not whole_box and dist[ranked[k - 1]] > reach * reach:
                ring += 1
                continue
            for a in range(k):
                j = who[ranked[a]]
                index[i, a] = j
                displacement[i, a, 0] = _min_image(wrapped[i, 0] - wrapped[j, 0], box_length, half)
                displacement[i, a, 1] = _min_image(wrapped[i, 1] - wrapped[j, 1], box_length, half)
            break


def knn(x: np.ndarray, box_length: float, k: int, n_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(index (N, k) int64, displacement (N, k, 2) float64): see :func:`activescore.learning.neighbours.knn`."""
    n = x.shape[0]
    wrapped = x - box_length * np.floor(x * (1.0 / box_length) + 0.5)  # Box::wrap, operation for operation
    wrapped = np.where(wrapped >= 0.5 * box_length, wrapped - box_length, wrapped)
    # Cells sized so a 3x3 block holds about k particles on average (as the C++ does).
    width_target = box_length * math.sqrt(k / (9.0 * n))
    side = min(max(1, int(math.floor(box_length / width_target))), 2048)
    index = np.empty((n, k), dtype=np.int64)
    displacement = np.empty((n, k, 2))
    previous = numba.get_num_threads()
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(n_threads if 0 < n_threads <= most else previous)
    try:
        _knn_kernel(np.ascontiguousarray(wrapped), float(box_length), int(k), side, index, displacement)
    finally:
        numba.set_num_threads(previous)
    return index, displacement
