"""The linear solve of the model-free estimator (physics.md §8): the sums of the normal equations over frame pairs,
and per noisy block the velocity, the Itô drift, the diffusion, the batch series of the EPR, the overfitting
correction and the velocity's decorrelation rate.

With v = Σ_k c_k φ_k the Stratonovich loss is quadratic in c: A c = r/Δt with A = E Σ_i ½(φ_i(z)φ_i(z)ᵀ +
φ_i(z')φ_i(z')ᵀ), r = E Σ_i ½(φ_i(z) + φ_i(z'))·(z'_i − z_i).
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .pairs import FrameCache, PairFeatures, block_increment, pair_rows
from .tracks import Tracks

#: Ridge added to the diagonal of the column-normalised normal equations.
RIDGE = 1e-8
#: A block whose increments are less than this share noise (2 D̂ Δt per component over the mean square increment)
#: is taken to carry none: its fitted drift explains the rest.
NOISE_SHARE = 0.01
#: The decorrelation of the fitted velocity (the λΔt check) is measured on about this many frame pairs (all of
#: them when there are fewer): enough for a rate (each pair holds every particle), at little cost.
CROSS_PAIRS = 64


def solve_normal(gram: np.ndarray, rhs: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, float]:
    """``(c, effective parameters)`` of (A + ridge) c = r, with A's columns normalised first (the features have very
    different scales); a column that never saw data gets 0."""
    diag = np.diag(gram).copy()
    used = diag > 1e-300 * max(float(diag.max(initial=0.0)), 1e-300)
    c = np.zeros(len(rhs))
    if not used.any():
        return c, 0.0
    scale = np.sqrt(diag[used])
    a = gram[np.ix_(used, used)] / np.outer(scale, scale)
    regularised = a + ridge * np.eye(len(a))
    y = np.linalg.solve(regularised, rhs[used] / scale)
    c[used] = y / scale
    effective = float(np.trace(np.linalg.solve(regularised, a)))
    return c, effective


def trace_of_solve(gram: np.ndarray, other: np.ndarray, ridge: float = RIDGE) -> float:
    """tr(A⁻¹ B) with A's columns normalised as in :func:`solve_normal` (unused columns left out)."""
    diag = np.diag(gram).copy()
    used = diag > 1e-300 * max(float(diag.max(initial=0.0)), 1e-300)
    if not used.any():
        return 0.0
    scale = np.sqrt(diag[used])
    a = gram[np.ix_(used, used)] / np.outer(scale, scale)
    b = other[np.ix_(used, used)] / np.outer(scale, scale)
    return float(np.trace(np.linalg.solve(a + ridge * np.eye(len(a)), b)))


@dataclass
class Moments:
    """Sums over the frame pairs of one batch and one block (module docstring)."""

    gram: np.ndarray  # Σ ½(ΦᵀΦ + Φ'ᵀΦ')
    rhs: np.ndarray  # Σ ½(Φ + Φ')ᵀ Δz
    gram_start: np.ndarray  # Σ ΦᵀΦ (Itô: the drift fit)
    rhs_start: np.ndarray  # Σ Φᵀ Δz
    cross: (
        np.ndarray
    )  # Σ ΦᵀΦ' over a regular subset of the pairs (CROSS_PAIRS) (the velocity's decorrelation over one pair)
    square: float = 0.0  # Σ |Δz|²
    n_values: int = 0  # particle-components
    n_particles: int = 0  # particle-pairs
    n_pairs: int = 0
    n_cross: int = 0  # pairs in ``cross``
    cross_particles: int = 0  # particle-pairs in ``cross``

    @classmethod
    def zeros(cls, p: int) -> Moments:
        return cls(np.zeros((p, p)), np.zeros(p), np.zeros((p, p)), np.zeros(p), np.zeros((p, p)))

    def add(self, frame0: tuple, frame1: tuple, dz: np.ndarray, with_cross: bool) -> None:
        """One pair: ``frame0``, ``frame1`` = (transposed features (p, rows), their Gram) at z and z'."""
        from .moments import add_cross

        (mt0, g0), (mt1, g1) = frame0, frame1
        d = np.ascontiguousarray(dz.reshape(-1), dtype=np.float64)
        self.gram_start += g0
        self.gram += 0.5 * (g0 + g1)
        r0, r1 = mt0 @ d, mt1 @ d
        self.rhs += 0.5 * (r0 + r1)
        self.rhs_start += r0
        if with_cross:
            add_cross(mt0, mt1, self.cross)
            self.n_cross += 1
            self.cross_particles += len(dz)
        self.square += float(d @ d)
        self.n_values += len(d)
        self.n_particles += len(dz)
        self.n_pairs += 1

    def __iadd__(self, other: Moments) -> Moments:
        for name in ("gram", "rhs", "gram_start", "rhs_start", "cross"):
            getattr(self, name).__iadd__(getattr(other, name))
        self.square += other.square
        self.n_values += other.n_values
        self.n_particles += other.n_particles
        self.n_pairs += other.n_pairs
        self.n_cross += other.n_cross
        self.cross_particles += other.cross_particles
        return self


def accumulate(
    tracks: Tracks,
    pairs: np.ndarray,
    cache: FrameCache,
    blocks: list[str],
    which: dict[str, str],
    sizes: dict[str, int],
    cutoff: float,
    n_batches: int,
    n_threads: int = 1,
) -> dict[str, list[Moments]]:
    """Block → the normal-equation sums of each batch of consecutive frame pairs (``n_batches`` batches). With
    ``n_threads`` ≠ 1 (0: all cores) the frames' features and Grams are computed ahead on a thread pool (the
    compiled kernels release the GIL); the sums are the same."""
    n_pairs = len(pairs)
    batch_of = (np.arange(n_pairs) * n_batches) // n_pairs
    moments = {b: [Moments.zeros(sizes[b]) for _ in range(n_batches)] for b in blocks}
    frames = PairFeatures()
    cross_every = max(1, n_pairs // CROSS_PAIRS)
    workers = n_threads if n_threads > 0 else os.cpu_count() or 1
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    window = 8 * workers
    arrays = {which[b] for b in blocks}
    try:
        for p, (k0, k1) in enumerate(pairs):
            if pool is not None and p % window == 0:
                cache.prefetch(pairs[p : p + window].ravel(), pool, arrays)
            rows = pair_rows(tracks, k0, k1, cutoff)
            if len(rows) == 0:
                continue
            slot0, f0 = cache(k0)
            slot1, f1 = cache(k1)
            ready0, ready1 = cache.whole.pop(int(k0), {}), cache.whole.get(int(k1), {})
            for b in blocks:
                # The end frame's features are computed last, so the next pair finds them as its start.
                start = frames(b, k0, rows, f0[which[b]], slot0, ready0.get(which[b]))
                end = frames(b, k1, rows, f1[which[b]], slot1, ready1.get(which[b]))
                increment = block_increment(tracks, b, k0, k1, rows)
                moments[b][batch_of[p]].add(start, end, increment, with_cross=p % cross_every == 0)
    finally:
        if pool is not None:
            pool.shutdown()
        cache.whole.clear()
    return moments


def total(batches: list[Moments]) -> Moments:
    """The sums over all batches."""
    out = Moments.zeros(len(batches[0].rhs))
    for m in batches:
        out += m
    return out


@dataclass
class BlockFit:
    """The linear solve of one noisy block."""

    coefficients: np.ndarray  # the velocity's, on the block's features
    drift: np.ndarray  # the Itô drift's
    diffusion: float
    estimated: bool  # D from the increments
    series: np.ndarray  # per batch, the influence-function form of the block's EPR per particle
    correction: float  # the overfitting correction per particle, 2 p_eff / (P N Δt)
    rate: float  # λ: the fitted velocity's decorrelation rate
    effective: float = field(default=0.0)  # p_eff, the effective fitted parameters


def estimated_diffusion(block: str, t: Moments, drift: np.ndarray, dt: float) -> float:
    """⟨|Δz − Δt b̂(z)|²⟩ / (2 d Δt) with the Itô drift b̂ fitted on the same features; warns when the block's
    increments are nearly all drift, and refuses a block without noise."""
    residual = t.square - 2 * dt * drift @ t.rhs_start + dt * dt * drift @ t.gram_start @ drift
    value = max(float(residual / (2 * dt * t.n_values)), 0.0)
    share = 2 * value * dt * t.n_values / t.square if t.square > 0 else 0.0
    if share < NOISE_SHARE:
        warnings.warn(
            f"the increments of block {block!r} are {100 * (1 - share):.1f} % drift (noise share {share:.2g} < "
            f"{NOISE_SHARE:g}): it carries no noise at this Δt; declare diffusion={{{block!r}: 0}} (e.g. ε = 0), "
            "or with the propulsion hidden use tur_lower_bound (physics.md §8)",
            stacklevel=4,
        )
    if value == 0:
        raise ValueError(
            f"block {block!r} shows no noise in its increments: declare it with diffusion={{{block!r}: 0}}"
        )
    return value


def fit_block(
    block: str, batches: list[Moments], t: Moments, dt: float, given: float | None, n_used: int, mean_particles: float
) -> BlockFit:
    """Solve one block (``t`` the sums over all ``batches``; ``given`` its D, or None to estimate it)."""
    c, p_eff = solve_normal(t.gram, t.rhs)
    c /= dt
    cb, _ = solve_normal(t.gram_start, t.rhs_start)
    cb /= dt
    if given is None:
        diffusion, estimated = estimated_diffusion(block, t, cb, dt), True
    else:
        diffusion, estimated = float(given or 0.0), False
    # Per batch, the influence-function form of the EPR, (2 c·r/Δt − cᵀAc)/D: its mean is cᵀĀc/D at the
    # minimiser, and its batch spread carries the fit's own noise (physics.md §8).
    series = np.asarray(
        [(2 * c @ m.rhs / dt - c @ m.gram @ c) / (diffusion * m.n_particles) for m in batches if m.n_particles]
    )
    correction = 2 * p_eff / (n_used * dt * mean_particles)
    # The fit's noise δc (covariance 2D A⁻¹/Δt) decorrelates as fast as the noise it was fitted to: its expected
    # share of both forms is removed, so that λ is the rate of the velocity, not of the fit's noise.
    # The cross sums cover a subset of the pairs: scaled to all of them.
    cross = 0.5 * (t.cross + t.cross.T) * (t.n_particles / max(t.cross_particles, 1))
    noise = 2 * diffusion / dt
    quadratic = c @ t.gram @ c - noise * p_eff
    overlap = c @ cross @ c - noise * trace_of_solve(t.gram, cross)
    rate = -math.log(overlap / quadratic) / dt if quadratic > 0 and overlap > 0 else math.inf
    return BlockFit(c, cb, diffusion, estimated, series, correction, rate, p_eff)
