"""The counter-based random stream shared by every backend (physics.md §3, ``cpp/activescore/philox.hpp``).

Philox4x32-10 with the layout fixed in philox.hpp:

* key     = (seed & 0xffffffff, seed >> 32)
* counter = (particle, step & 0xffffffff, step >> 32, purpose)
* uniform u = (w + 0.5) 2^-32 in (0, 1); Box-Muller in float64: (n0, n1) from (u0, u1), (n2, n3) from (u2, u3),
  r = sqrt(-2 ln u_a), n_a = r cos(2 pi u_b), n_b = r sin(2 pi u_b).

The algorithm is written once: :func:`philox4x32_10_core` with ``np.uint64`` arithmetic and explicit 32-bit masks
(called from Python it runs vectorised over NumPy arrays), and :func:`normals4_core`, scalar code that
``numba.njit`` compiles (``register_jitable``) for the Numba simulator and for :func:`normals4_array`. Box-Muller's
log, cos and sin are not libm's but :func:`log_positive` and :func:`cos_sin_turns`, the C++ core's own
vectorisable functions repeated operation for operation (:mod:`.special_functions`), so every CPU backend draws
bit for bit the same normals.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import register_jitable

from .special_functions import cos_sin_turns, log_positive

STEP_NOISE = 0
INITIAL_CONDITION = 1

# Every constant is a uint64 so that NumPy and Numba both stay in unsigned 64-bit arithmetic: a product of two
# 32-bit words fits, and mixing signed and unsigned integers would make Numba fall back to float64.
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_TWO_POW_MINUS_32 = 2.3283064365386963e-10


@register_jitable
def philox4x32_10_core(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 words that each hold a 32-bit value (NumPy arrays, NumPy scalars or Numba)."""
    for _ in range(10):
        product0 = _PHILOX_M0 * c0
        product1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (
            (product1 >> _SHIFT32) ^ c1 ^ k0,
            product1 & _MASK32,
            (product0 >> _SHIFT32) ^ c3 ^ k1,
            product0 & _MASK32,
        )
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return c0, c1, c2, c3


@register_jitable
def _uniform_open01(word):
    return (word + 0.5) * _TWO_POW_MINUS_32


@register_jitable
def random_block_core(seed, step, particle, purpose):
    """The four 32-bit words (as uint64) of the block for uint64 (seed, step, particle, purpose)."""
    return philox4x32_10_core(
        particle & _MASK32, step & _MASK32, step >> _SHIFT32, purpose & _MASK32, seed & _MASK32, seed >> _SHIFT32
    )


@register_jitable
def box_muller_core(word_radius, word_angle):
    """Two standard normals from two uniform words: r cos(2 pi u_b), r sin(2 pi u_b), r = sqrt(-2 ln u_a)."""
    radius = math.sqrt(-2.0 * log_positive(_uniform_open01(word_radius)))
    cos_angle, sin_angle = cos_sin_turns(_uniform_open01(word_angle))
    return radius * cos_angle, radius * sin_angle


@register_jitable
def normals4_core(seed, step, particle, purpose):
    """Four standard normals for uint64 scalars (seed, step, particle, purpose).

    (n0, n1) come from words (0, 1) and (n2, n3) from words (2, 3), so a caller needing one pair may skip the other.
    """
    w0, w1, w2, w3 = random_block_core(seed, step, particle, purpose)
    n0, n1 = box_muller_core(w0, w1)
    n2, n3 = box_muller_core(w2, w3)
    return n0, n1, n2, n3


# Compiled versions: the exact code path of the Numba simulator.
philox_jit = numba.njit(philox4x32_10_core, cache=True)
normals4_jit = numba.njit(normals4_core, cache=True)


@numba.njit(cache=True)
def _normals4_table(seed, step, particles, purpose):
    out = np.empty((particles.size, 4))
    for a in range(particles.size):
        out[a, 0], out[a, 1], out[a, 2], out[a, 3] = normals4_core(seed, step, particles[a], purpose)
    return out


def _as_uint64(value):
    return np.asarray(value, dtype=np.uint64)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block: counter (c0..c3), key (k0, k1) -> four 32-bit words.

    Scalars give a tuple of four Python ints; arrays (broadcast together) give a tuple of four uint32 arrays.
    """
    words = philox4x32_10_core(*(_as_uint64(v) for v in (c0, c1, c2, c3, k0, k1)))
    if all(np.ndim(w) == 0 for w in words):
        return tuple(int(w) for w in words)
    return tuple(np.asarray(w, dtype=np.uint32) for w in words)


def normals4(seed: int, step: int, particle: int, purpose: int) -> tuple[float, float, float, float]:
    """Four float64 standard normals for (seed, step, particle, purpose), exactly as philox.hpp draws them."""
    return normals4_jit(np.uint64(seed), np.uint64(step), np.uint64(particle), np.uint64(purpose))


def normals4_array(seed: int, step: int, particles: np.ndarray, purpose: int) -> np.ndarray:
    """``normals4`` for every index in ``particles``: an (n, 4) float64 array, bit for bit the scalar values."""
    particles = _as_uint64(particles).reshape(-1)
    return _normals4_table(np.uint64(seed), np.uint64(step), particles, np.uint64(purpose))
