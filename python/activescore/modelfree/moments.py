"""The sums of the normal equations over frame pairs, and the pair sums of the features, in Numba.

Compiled loops instead of NumPy's matrix products: these products are small (a few thousand rows, a few dozen
columns), and on a machine whose cores are busy a multi-threaded BLAS waits for its threads far longer than the
arithmetic takes (measured: 40 ms instead of 30 µs for 512 × 32 on 2 shared cores). The features come transposed,
(p, rows), so every entry is one contiguous dot product over the rows.
"""

from __future__ import annotations

import numba
import numpy as np

from ..backends.numba_knn import cell_order


@numba.njit(cache=True, fastmath=True, nogil=True)
def _gram(mt, out):  # pragma: no cover - compiled
    # Tiles of 2 × 4 entries per pass over the rows: each loaded value serves several products (twice the speed of
    # one dot product at a time at p = 48, 2048 rows). Indices past the end repeat the last row (same values).
    p, n = mt.shape
    for a0 in range(0, p, 2):
        a1 = min(a0 + 1, p - 1)
        r0 = mt[a0]
        r1 = mt[a1]
        for b0 in range(a0, p, 4):
            b1 = min(b0 + 1, p - 1)
            b2 = min(b0 + 2, p - 1)
            b3 = min(b0 + 3, p - 1)
            q0 = mt[b0]
            q1 = mt[b1]
            q2 = mt[b2]
            q3 = mt[b3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
            for r in range(n):
                x0 = r0[r]
                x1 = r1[r]
                s00 += x0 * q0[r]
                s01 += x0 * q1[r]
                s02 += x0 * q2[r]
                s03 += x0 * q3[r]
                s10 += x1 * q0[r]
                s11 += x1 * q1[r]
                s12 += x1 * q2[r]
                s13 += x1 * q3[r]
            out[a0, b0] = s00
            out[a0, b1] = s01
            out[a0, b2] = s02
            out[a0, b3] = s03
            out[a1, b0] = s10
            out[a1, b1] = s11
            out[a1, b2] = s12
            out[a1, b3] = s13
    for a in range(p):
        for b in range(a + 1, p):
            out[b, a] = out[a, b]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _cross(mt0, mt1, out):  # pragma: no cover - compiled
    p, n = mt0.shape
    for a in range(p):
        ra = mt0[a]
        for b in range(p):
            rb = mt1[b]
            s = 0.0
            for r in range(n):
                s += ra[r] * rb[r]
            out[a, b] += s


def transposed(phi: np.ndarray) -> np.ndarray:
    """Features (n, c, p) as a contiguous (p, n·c) float64 array (no copy for a frame's features, which are views
    of a (p, n, c) array)."""
    p = phi.shape[-1]
    return np.ascontiguousarray(phi.reshape(-1, p).T, dtype=np.float64)


def gram(mt: np.ndarray) -> np.ndarray:
    """mt mtᵀ, (p, p), for transposed features mt (p, rows)."""
    out = np.empty((mt.shape[0], mt.shape[0]))
    _gram(mt, out)
    return out


def add_cross(mt0: np.ndarray, mt1: np.ndarray, out: np.ndarray) -> None:
    """out += mt0 mt1ᵀ."""
    _cross(mt0, mt1, out)


#: Codes of the pair families in :func:`pair_sums` (features.py names them).
FAMILY_CODES = {"radial": 0, "align": 1, "shell": 2, "push": 3, "push_neighbour": 4}


@numba.njit(cache=True, fastmath=True, nogil=True)
def _pair_sums(
    index, displacement, within, orientation, width, codes, offsets, turn_offsets, n_radial, out, turn
):  # pragma: no cover - compiled
    n, k = index.shape
    n_f = len(codes)
    acc = np.zeros((n_f, n_radial, 2))
    tacc = np.zeros((n_f, n_radial))
    for i in range(n):
        acc[:] = 0.0
        tacc[:] = 0.0
        # p_i^⊥ = (−p_y, p_x): the turning projections (angles).
        qx, qy = -orientation[i, 1], orientation[i, 0]
        for a in range(k):
            if not within[i, a]:
                continue
            dx = displacement[i, a, 0]
            dy = displacement[i, a, 1]
            rho = np.sqrt(dx * dx + dy * dy)
            ux = dx / rho
            uy = dy / rho
            # Tent functions on a uniform grid: at most two are non-zero at any distance.
            t = rho / width
            low = int(np.floor(t))
            frac = t - low
            j = index[i, a]
            for f in range(n_f):
                code = codes[f]
                if code == 0:
                    vx, vy = ux, uy
                elif code == 1:
                    vx, vy = orientation[j, 0], orientation[j, 1]
                elif code == 2:
                    vx, vy = orientation[i, 0], orientation[i, 1]
                elif code == 3:
                    along = ux * orientation[i, 0] + uy * orientation[i, 1]
                    vx, vy = along * ux, along * uy
                else:
                    along = ux * orientation[j, 0] + uy * orientation[j, 1]
                    vx, vy = along * ux, along * uy
                proj = vx * qx + vy * qy
                if low < n_radial:
                    acc[f, low, 0] += (1.0 - frac) * vx
                    acc[f, low, 1] += (1.0 - frac) * vy
                    tacc[f, low] += (1.0 - frac) * proj
                if low + 1 < n_radial:
                    acc[f, low + 1, 0] += frac * vx
                    acc[f, low + 1, 1] += frac * vy
                    tacc[f, low + 1] += frac * proj
        for f in range(n_f):
            for b in range(n_radial):
                out[offsets[f] + b, i, 0] = acc[f, b, 0]
                out[offsets[f] + b, i, 1] = acc[f, b, 1]
                if turn_offsets[f] >= 0:
                    turn[turn_offsets[f] + b, i] = tacc[f, b]


def pair_sums(
    index,
    displacement,
    within,
    orientation,
    width: float,
    n_radial: int,
    families,
    offsets,
    out: np.ndarray,
    turn_offsets=None,
    turn: np.ndarray | None = None,
) -> None:
    """Write Σ_j B_k(|r_ij|) u_ij for each family's per-pair vector u (``FAMILY_CODES``) into ``out`` (p, n, 2):
    family f's K columns start at ``offsets[f]`` (the features' transposed layout, see features.py); with ``turn``
    (q, n), also their projections on p_i^⊥ = (−p_y, p_x) into its rows from ``turn_offsets[f]`` (−1: none).

    ``index``, ``displacement``, ``within``: the neighbour lists (n, k), (n, k, 2), (n, k); ``orientation`` (n, 2)
    the propulsion p (any (n, 2) array when only "radial" is asked); ``width``: the tent functions' spacing."""
    codes = np.array([FAMILY_CODES[f] for f in families], dtype=np.int64)
    if turn is None:
        turn, turn_offsets = np.zeros((1, 1)), [-1] * len(codes)
    _pair_sums(
        np.ascontiguousarray(index, dtype=np.int64),
        np.ascontiguousarray(displacement, dtype=np.float64),
        np.ascontiguousarray(within),
        np.ascontiguousarray(orientation, dtype=np.float64),
        float(width),
        codes,
        np.asarray(offsets, dtype=np.int64),
        np.asarray(turn_offsets, dtype=np.int64),
        int(n_radial),
        out,
        turn,
    )


@numba.njit(cache=True, nogil=True)
def _cell_pairs(x, box, cutoff, side, count_only, count, index, displacement):  # pragma: no cover - compiled
    n = x.shape[0]
    half = 0.5 * box
    width = box / side
    cell = np.empty(n, dtype=np.int64)
    for i in range(n):
        cx = min(max(int(np.floor((x[i, 0] + half) / width)), 0), side - 1)
        cy = min(max(int(np.floor((x[i, 1] + half) / width)), 0), side - 1)
        cell[i] = cy * side + cx
    start, order = cell_order(cell, side * side)
    reach = 1 if side >= 3 else 0
    cut2 = cutoff * cutoff
    for i in range(n):
        cx, cy = cell[i] % side, cell[i] // side
        m = 0
        for oy in range(-reach, reach + 1):
            for ox in range(-reach, reach + 1):
                cells = side * side if reach == 0 else 1
                for whole in range(cells):
                    c = whole if reach == 0 else ((cy + oy) % side) * side + (cx + ox) % side
                    for s in range(start[c], start[c + 1]):
                        j = order[s]
                        if j == i:
                            continue
                        dx = x[i, 0] - x[j, 0]
                        dy = x[i, 1] - x[j, 1]
                        dx -= box * np.round(dx / box)
                        dy -= box * np.round(dy / box)
                        d2 = dx * dx + dy * dy
                        # Coincident particles (tracking artefacts) have no direction: left out.
                        if d2 >= cut2 or d2 == 0.0:
                            continue
                        if not count_only and m < index.shape[1]:
                            index[i, m] = j
                            displacement[i, m, 0] = dx
                            displacement[i, m, 1] = dy
                        m += 1
        count[i] = m


def cell_pairs(
    x: np.ndarray, box: float, cutoff: float, capacity: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every pair closer than ``cutoff`` in a periodic square box of side ``box`` (positions in [−box/2, box/2)),
    by a cell list of cells at least ``cutoff`` wide: ``(index (n, k), displacement x_i − x_j (n, k, 2),
    within (n, k), largest count)`` with rows padded (``within`` False there) to k = ``capacity`` when the largest
    neighbour count fits in it (one pass), else to that count (a counting pass first)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = len(x)
    side = max(1, min(int(box // cutoff), 4096))
    count = np.zeros(n, dtype=np.int64)
    k = int(capacity)
    if k > 0:
        index = np.zeros((n, k), dtype=np.int64)
        displacement = np.zeros((n, k, 2))
        _cell_pairs(x, float(box), float(cutoff), side, False, count, index, displacement)
    if k <= 0 or int(count.max(initial=0)) > k:
        empty_index, empty_disp = np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1, 2))
        _cell_pairs(x, float(box), float(cutoff), side, True, count, empty_index, empty_disp)
        k = int(count.max(initial=0))
        index = np.zeros((n, k), dtype=np.int64)
        displacement = np.zeros((n, k, 2))
        _cell_pairs(x, float(box), float(cutoff), side, False, count, index, displacement)
    within = np.arange(k)[None, :] < count[:, None]
    return index, displacement, within, int(count.max(initial=0))
