"""Numba fallback backend: the C++ CPU driver (``cpp/activescore/cpu_simulator.cpp``) line for line.

Same cell list (counting sort, stable in particle index, one cell when the box is under 3 cells a side), same
pair evaluators with the C++ core's own softplus, log, cos and sin (:mod:`.special_functions`), same integrator,
same Philox stream (:mod:`.rng`). Forces and divergences therefore equal the compiled ``cpu_forces`` and
``cpu_drift_divergence`` bit for bit (both sum in cell order). Float64 trajectories agree with the compiled
simulator to rounding, and bit for bit in one cell or without interactions: its Verlet lists sum a particle's
neighbours in index order, this backend in cell order. Each particle sums its own neighbours in a fixed order
inside a ``prange`` loop, so results do not depend on the thread count.

Kernels are compiled on first use and cached on disk (``cache=True``). Numba only checks this file's timestamp
for cache invalidation: after editing ``rng.py`` or ``special_functions.py``, clear ``backends/__pycache__``.
"""

from __future__ import annotations

import contextlib
import math

import numba
import numpy as np

from . import numba_propulsion as propulsion
from .rng import STEP_NOISE, box_muller_core, random_block_core
from .spec import RunSpec, SystemSpec
from .special_functions import softplus

MAX_CELLS_PER_SIDE = 4096

# Slots of the per-simulator parameter vector, stored in the simulator's precision (like StepParams<Real>,
# Box<Real> and the pair/propulsion evaluators) so float32 kernels never promote to float64.
_DT, _V0, _K, _TRAP, _X_NOISE, _MAX_STEP_SQ = 0, 1, 2, 3, 4, 5
_BETA, _INV_BETA, _DELTA = 6, 7, 8
_BOX_L, _BOX_HALF, _BOX_INV_L, _INV_CELL_WIDTH = 9, 10, 11, 12
_ZERO, _ONE_HALF = 13, 14
_PROPULSION = 15  # the propulsion policy's constants (numba_propulsion.constants) from here on
_N_PARAMS = _PROPULSION + propulsion.N_CONSTANTS


# ---------------------------------------------------------------------------------------------------------------
# Set-up helpers (plain Python, mirroring the C++ constructors).


def cells_per_side(box_length: float, min_width: float) -> int:
    """Cells per box side: floor(L / min_width), capped; under 3 means one cell (all pairs, minimum image)."""
    if not min_width > 0:
        return 1
    side = int(math.floor(box_length / min_width))
    return min(side, MAX_CELLS_PER_SIDE) if side >= 3 else 1


def _params(system: SystemSpec, run: RunSpec | None, real, min_width, side: int) -> np.ndarray:
    """The parameter vector, each entry rounded to the simulator's precision exactly where the C++ rounds it."""
    p = np.zeros(_N_PARAMS, dtype=real)
    if run is not None:
        p[_DT] = run.dt
        p[_X_NOISE] = math.sqrt(2.0 * system.eps * run.dt)
        p[_PROPULSION:] = propulsion.constants(system.model, system.propulsion, run.dt)
    p[_V0], p[_K], p[_TRAP] = system.v0, system.k, system.trap
    # The move limit protects the pair forces: a particle crossing half the interaction range in one step can pass
    # a contact the explicit step never resolves. Without interactions there is none to protect, and a stiff but
    # stable trap relaxation (trap dt < 2, checked by simulate) may move far: only a non-finite move stops the run.
    p[_MAX_STEP_SQ] = 0.25 * float(min_width) * float(min_width) if system.k != 0.0 else np.finfo(real).max
    if not system.harmonic:
        p[_BETA], p[_INV_BETA] = system.beta, 1.0 / system.beta
    p[_DELTA] = system.cutoff_delta  # 0 for the harmonic disk: its cutoff sigma + 0 is exactly sigma
    p[_BOX_L], p[_BOX_HALF], p[_BOX_INV_L] = system.box_length, 0.5 * system.box_length, 1.0 / system.box_length
    p[_INV_CELL_WIDTH] = real(side) * p[_BOX_INV_L]  # computed in Real, as CellGrid::with_side does
    p[_ONE_HALF] = 0.5
    return p


class _CellList:
    """Arrays of the C++ CellList, allocated once."""

    def __init__(self, n: int, side: int, real):
        self.side = side
        self.cell_start = np.zeros(side * side + 1, dtype=np.int64)
        self.fill = np.zeros(side * side, dtype=np.int64)
        self.cell_of_particle = np.zeros(n, dtype=np.int64)
        self.order = np.arange(n, dtype=np.int64)  # slot -> particle; the identity until built
        self.slot_cell = np.zeros(n, dtype=np.int64)
        self.xy = np.zeros((n, 2), dtype=real)
        self.radius = np.zeros(n, dtype=real)

    def arrays(self):
        return (self.cell_start, self.fill, self.cell_of_particle, self.order, self.slot_cell, self.xy, self.radius)


@contextlib.contextmanager
def _numba_threads(n_threads: int):
    """Runs the block with n_threads Numba threads (0 = all), restoring the previous setting afterwards."""
    available = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    previous = numba.get_num_threads()
    numba.set_num_threads(available if n_threads <= 0 else min(n_threads, available))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------------------------
# Compiled kernels. Real is whatever dtype the state arrays carry; all scalars come from p (same dtype).


@numba.njit(cache=True, inline="always")
def _min_image(d, p):
    if d > p[_BOX_HALF]:
        return d - p[_BOX_L]
    if d < -p[_BOX_HALF]:
        return d + p[_BOX_L]
    return d


@numba.njit(cache=True, inline="always")
def _wrap(x, p):
    w = x - p[_BOX_L] * np.floor(x * p[_BOX_INV_L] + p[_ONE_HALF])
    return w - p[_BOX_L] if w >= p[_BOX_HALF] else w  # rounding can land exactly on +L/2


@numba.njit(cache=True)
def _pair_force(rho, sigma, p, harmonic):
    """f(rho): max(sigma - rho, 0), or pair_potential.hpp's softplus_beta(sigma - rho) (its polynomials in float64)."""
    if harmonic:
        return sigma - rho if rho < sigma else p[_ZERO]
    return softplus(p[_BETA] * (sigma - rho)) * p[_INV_BETA]


@numba.njit(cache=True)
def _pair_dforce(rho, sigma, p, harmonic):
    """df/drho = -sigmoid(beta (sigma - rho)), in float64 (only the float64 divergence uses it)."""
    if harmonic:
        return -1.0 if rho < sigma else 0.0
    z = p[_BETA] * (sigma - rho)
    if z > 0:
        return -1.0 / (1.0 + math.exp(-z))
    return -math.exp(z) / (1.0 + math.exp(z))


@numba.njit(cache=True)
def _build_cell_list(x, radius, side, p, cell_start, fill, cell_of_particle, order, slot_cell, xy, slot_radius):
    """Counting sort of particles into cells (stable in particle index), as CellList::build."""
    n = x.shape[0]
    cell_start[:] = 0
    for i in range(n):
        ix = int((x[i, 0] + p[_BOX_HALF]) * p[_INV_CELL_WIDTH])
        iy = int((x[i, 1] + p[_BOX_HALF]) * p[_INV_CELL_WIDTH])
        ix = min(max(ix, 0), side - 1)
        iy = min(max(iy, 0), side - 1)
        cell_of_particle[i] = iy * side + ix
        cell_start[iy * side + ix + 1] += 1
    for c in range(side * side):
        cell_start[c + 1] += cell_start[c]
    fill[:] = cell_start[:-1]
    for i in range(n):
        c = cell_of_particle[i]
        s = fill[c]
        fill[c] += 1
        order[s] = i
        slot_cell[s] = c
        xy[s, 0] = x[i, 0]
        xy[s, 1] = x[i, 1]
        slot_radius[s] = radius[i]


@numba.njit(cache=True)
def _pair_sums(slot, side, cell_start, slot_cell, xy, slot_radius, p, harmonic, with_divergence):
    """Sum over the neighbours of the particle in `slot`, in the C++ order (CellGrid::for_each_neighbour_cell, then slots).

    Returns (sum f/rho dx, sum f/rho dy, sum [f/rho + f']) with (dx, dy) = x_i - x_j under the minimum image;
    the last is 0 unless with_divergence.
    """
    xi, yi, ri = xy[slot, 0], xy[slot, 1], slot_radius[slot]
    fx = p[_ZERO]
    fy = p[_ZERO]
    div = p[_ZERO]
    c = slot_cell[slot]
    cx, cy = c % side, c // side
    n_cells = 1 if side == 1 else 9
    for a in range(n_cells):
        # for_each_neighbour_cell: dy outer, dx inner, each -1..1 (all distinct because side >= 3).
        cell = 0 if side == 1 else ((cy + a // 3 - 1 + side) % side) * side + (cx + a % 3 - 1 + side) % side
        for s in range(cell_start[cell], cell_start[cell + 1]):
            if s == slot:
                continue
            dx = _min_image(xi - xy[s, 0], p)
            dy = _min_image(yi - xy[s, 1], p)
            rho_sq = dx * dx + dy * dy
            sigma = ri + slot_radius[s]
            rc = sigma + p[_DELTA]
            # Coincident particles (rho = 0) exert no force: the direction r/rho is undefined.
            if rho_sq < rc * rc and rho_sq > p[_ZERO]:
                rho = math.sqrt(rho_sq)
                f = _pair_force(rho, sigma, p, harmonic)
                f_over_rho = f / rho
                fx += f_over_rho * dx
                fy += f_over_rho * dy
                if with_divergence:
                    div += f / rho + _pair_dforce(rho, sigma, p, harmonic)  # (d - 1) = 1 in two dimensions
    return fx, fy, div


@numba.njit(cache=True)
def _integrate_particle(i, x, q, fx, fy, x_new, q_new, p, model, seed, step):
    """integrate_particle of integrator.hpp; False if the move is non-finite or over the limit ``p[_MAX_STEP_SQ]``
    (half the interaction range, squared; the largest finite number without interactions).

    Words (0, 1) of the particle's Philox block drive x, words (2, 3) the propulsion (ABP uses the first normal).
    """
    real = x.dtype.type
    w0, w1, w2, w3 = random_block_core(seed, step, np.uint64(i), np.uint64(STEP_NOISE))
    gx, gy = propulsion.direction(model, q, i)
    dx = p[_DT] * (p[_V0] * gx + p[_K] * fx - p[_TRAP] * x[i, 0])
    dy = p[_DT] * (p[_V0] * gy + p[_K] * fy - p[_TRAP] * x[i, 1])
    if p[_X_NOISE] != 0:  # eps = 0 (the MIPS case) skips a Box-Muller it would multiply by zero
        n0, n1 = box_muller_core(w0, w1)
        dx += p[_X_NOISE] * real(n0)
        dy += p[_X_NOISE] * real(n1)
    x_new[i, 0] = _wrap(x[i, 0] + dx, p)
    x_new[i, 1] = _wrap(x[i, 1] + dy, p)
    n2, n3 = box_muller_core(w2, w3)
    propulsion.update(model, q, i, q_new, p[_PROPULSION:], n2, n3)
    return dx * dx + dy * dy <= p[_MAX_STEP_SQ]  # False for NaN too


@numba.njit(cache=True, parallel=True)
def _advance_kernel(
    n_steps,
    first_step,
    seed,
    x,
    q,
    radius,
    x_new,
    q_new,
    ok,
    p,
    side,
    interacting,
    harmonic,
    model,
    cell_start,
    fill,
    cell_of_particle,
    order,
    slot_cell,
    xy,
    slot_radius,
):
    """Runs up to n_steps of CpuSimulator::step_once. Returns (steps done, first bad particle or -1)."""
    n = x.shape[0]
    for done in range(n_steps):
        step = np.uint64(first_step + done)
        if interacting:
            _build_cell_list(x, radius, side, p, cell_start, fill, cell_of_particle, order, slot_cell, xy, slot_radius)
        for slot in numba.prange(n):
            i = order[slot]  # the identity when not interacting
            fx = p[_ZERO]
            fy = p[_ZERO]
            if interacting:
                fx, fy, _ = _pair_sums(slot, side, cell_start, slot_cell, xy, slot_radius, p, harmonic, False)
            ok[i] = _integrate_particle(i, x, q, fx, fy, x_new, q_new, p, model, seed, step)
        for i in range(n):
            if not ok[i]:
                return done, i  # the state is still the last good one
        x[:] = x_new
        q[:] = q_new
    return n_steps, -1


@numba.njit(cache=True, parallel=True)
def _observables_kernel(
    wrapped,
    p,
    side,
    harmonic,
    with_divergence,
    cell_start,
    slot_cell,
    order,
    xy,
    slot_radius,
    out_forces,
    out_divergence,
):
    """k sum_j F_ij - A x_i and, if asked, k sum_j [f/rho + f'] - A d, over a built float64 cell list."""
    for slot in numba.prange(wrapped.shape[0]):
        i = order[slot]
        fx, fy, div = 0.0, 0.0, 0.0
        if p[_K] != 0.0:
            fx, fy, div = _pair_sums(slot, side, cell_start, slot_cell, xy, slot_radius, p, harmonic, with_divergence)
        out_forces[i, 0] = p[_K] * fx - p[_TRAP] * wrapped[i, 0]
        out_forces[i, 1] = p[_K] * fy - p[_TRAP] * wrapped[i, 1]
        out_divergence[i] = p[_K] * div - p[_TRAP] * 2.0


# ---------------------------------------------------------------------------------------------------------------
# Public API.


def _as_float64(a, name: str, n: int | None = None, columns: int | None = None) -> np.ndarray:
    """A contiguous float64 copy-or-view of shape (n,) or (n, columns)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    shape = (-1,) if columns is None else (-1 if n is None else n, columns)
    try:
        return a.reshape(shape)
    except ValueError:
        raise ValueError(f"{name}: expected shape {(n, columns)}, got {a.shape}") from None


def _observables(system: SystemSpec, x, radius, n_threads: int, with_divergence: bool):
    radius = _as_float64(radius, "radius")
    n = radius.shape[0]
    x = _as_float64(x, "x", n, 2)
    min_width = system.max_cutoff(radius)
    side = cells_per_side(system.box_length, min_width)
    p = _params(system, None, np.float64, min_width, side)
    wrapped = x - p[_BOX_L] * np.floor(x * p[_BOX_INV_L] + 0.5)  # Box::wrap, vectorised
    wrapped = np.where(wrapped >= p[_BOX_HALF], wrapped - p[_BOX_L], wrapped)
    cells = _CellList(n, side, np.float64)
    out_forces = np.empty((n, 2))
    out_divergence = np.empty(n)
    with _numba_threads(n_threads):
        if n:
            _build_cell_list(wrapped, radius, side, p, *cells.arrays())
            _observables_kernel(
                wrapped,
                p,
                side,
                system.harmonic,
                with_divergence,
                cells.cell_start,
                cells.slot_cell,
                cells.order,
                cells.xy,
                cells.radius,
                out_forces,
                out_divergence,
            )
    return out_forces, out_divergence


def forces(system: SystemSpec, x: np.ndarray, radius: np.ndarray, n_threads: int = 0) -> np.ndarray:
    """(N, 2) float64 drift without propulsion, k sum_j F_ij - A x_i, at positions x wrapped into the box.

    Same cell list, cutoff and summation order as the compiled ``cpu_forces``.
    """
    return _observables(system, x, radius, n_threads, with_divergence=False)[0]


def drift_divergence(system: SystemSpec, x: np.ndarray, radius: np.ndarray, n_threads: int = 0) -> np.ndarray:
    """(N,) float64 divergence of particle i's drift in x_i: k sum_j [f(rho)(d-1)/rho + f'(rho)] - A d, d = 2.

    Same as the compiled ``cpu_drift_divergence``.
    """
    return _observables(system, x, radius, n_threads, with_divergence=True)[1]


class NumbaSimulator:
    """The CPU simulator in Numba: same interface and numbers as the compiled ``CpuSimulator``.

    x (N, 2) wrapped positions in [-L/2, L/2), q (N, components) propulsion (AOUP: g; ABP: theta), radius (N,),
    all converted to float64 or, when ``double_precision`` is False, float32 (then the state arithmetic is float32
    and the float64 normals are rounded to float32, as integrator.hpp does).
    """

    def __init__(self, system: SystemSpec, run: RunSpec, double_precision: bool, x, q, radius):
        real = np.float64 if double_precision else np.float32
        radius = _as_float64(radius, "radius")
        n = radius.shape[0]
        self._system = system
        self._run = run
        self._real = real
        self._x = _as_float64(x, "x", n, 2).astype(real)
        self._q = _as_float64(q, "q", n, system.propulsion_components).astype(real)
        self._radius = radius.astype(real)
        self._x_new = np.empty_like(self._x)
        self._q_new = np.empty_like(self._q)
        self._ok = np.ones(n, dtype=np.bool_)
        # As the C++: the minimum cell width is max_cutoff rounded to Real, and the cell count uses Real L.
        self._min_width = real(system.max_cutoff(radius))
        side = cells_per_side(float(real(system.box_length)), float(self._min_width))
        self._params = _params(system, run, real, self._min_width, side)
        self._cells = _CellList(n, side, real)
        self._step = int(run.step)
        self._error = ""

    @property
    def step(self) -> int:
        """The global step counter (keys the random stream)."""
        return self._step

    @property
    def size(self) -> int:
        return self._x.shape[0]

    @property
    def double_precision(self) -> bool:
        return self._real is np.float64

    @property
    def error(self) -> str:
        """Why the last advance stopped early; "" when fine."""
        return self._error

    def advance(self, n_steps: int) -> int:
        """Runs up to n_steps; returns how many completed (fewer on a blow-up, see ``error``; the state is then
        the last good one, before the failing step)."""
        n_steps = int(n_steps)
        if n_steps <= 0:
            return 0
        if self.size == 0:
            self._step += n_steps
            return n_steps
        with _numba_threads(self._run.n_threads):
            done, bad = _advance_kernel(
                n_steps,
                self._step,
                np.uint64(self._run.seed),
                self._x,
                self._q,
                self._radius,
                self._x_new,
                self._q_new,
                self._ok,
                self._params,
                self._cells.side,
                self._system.k != 0.0,
                self._system.harmonic,
                propulsion.MODELS.index(self._system.model),
                *self._cells.arrays(),
            )
        self._step += int(done)
        if bad >= 0:
            self._error = self._blow_up_message(int(bad))
        return int(done)

    def _blow_up_message(self, i: int) -> str:
        dx = float(self._x_new[i, 0]) - float(self._x[i, 0])
        dy = float(self._x_new[i, 1]) - float(self._x[i, 1])
        if self._system.k == 0.0:  # nothing to protect but finiteness (the compiled core's message alike)
            return f"blow-up at step {self._step}: particle {i} moved by ({dx:g}, {dy:g}) in one step, non-finite"
        return (
            f"blow-up at step {self._step}: particle {i} moved by ({dx:g}, {dy:g}) in one step, non-finite or more "
            f"than half the interaction range ({0.5 * float(self._min_width):g})"
        )

    def read_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (x, q) in the simulator's precision."""
        return self._x.copy(), self._q.copy()
