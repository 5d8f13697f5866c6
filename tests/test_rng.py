"""The Philox4x32-10 stream (physics.md §3): known answers, the counter/key layout, Box-Muller against extended
precision, NumPy vs Numba vs C++ bit for bit, statistics."""

import math

import numba
import numpy as np
import pytest

from activescore.backends.rng import (
    INITIAL_CONDITION,
    STEP_NOISE,
    box_muller_core,
    normals4,
    normals4_array,
    philox4x32_10,
    philox_jit,
)

M32 = 0xFFFFFFFF
# (counter c0..c3, key k0 k1) -> output words (Salmon et al., SC'11; also physics.md §3).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32, M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
# (seed, step, particle, purpose), covering seeds and steps past 32 bits.
SAMPLE_KEYS = [
    (0, 0, 0, STEP_NOISE),
    (1, 2, 3, INITIAL_CONDITION),
    (2**40 + 17, 2**33 + 5, 123456, STEP_NOISE),
    (2**64 - 1, 2**63 + 7, 2**32 - 1, INITIAL_CONDITION),
]


@pytest.mark.parametrize("inputs, expected", KNOWN_ANSWERS)
def test_known_answers_numpy_scalar(inputs, expected):
    assert philox4x32_10(*inputs) == expected


@pytest.mark.parametrize("inputs, expected", KNOWN_ANSWERS)
def test_known_answers_numba(inputs, expected):
    words = philox_jit(*(np.uint64(v) for v in inputs))
    assert tuple(int(w) for w in words) == expected


def test_known_answers_numpy_vectorised():
    inputs = np.array([k[0] for k in KNOWN_ANSWERS], dtype=np.uint64).T
    words = philox4x32_10(*inputs)
    assert all(w.dtype == np.uint32 for w in words)
    np.testing.assert_array_equal(np.stack(words, axis=1), np.array([k[1] for k in KNOWN_ANSWERS]))


def _box_muller(word_radius, word_angle):
    u_radius, u_angle = (word_radius + 0.5) * 2.0**-32, (word_angle + 0.5) * 2.0**-32
    r = math.sqrt(-2.0 * math.log(u_radius))
    return r * math.cos(2.0 * math.pi * u_angle), r * math.sin(2.0 * math.pi * u_angle)


@pytest.mark.parametrize("seed, step, particle, purpose", SAMPLE_KEYS)
def test_normals4_layout(seed, step, particle, purpose):
    """key = seed halves, counter = (particle, step low, step high, purpose), Box-Muller on word pairs."""
    w = philox4x32_10(particle, step & M32, step >> 32, purpose, seed & M32, seed >> 32)
    expected = _box_muller(w[0], w[1]) + _box_muller(w[2], w[3])
    np.testing.assert_allclose(normals4(seed, step, particle, purpose), expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("seed, step, purpose", [(7, 0, STEP_NOISE), (2**40 + 17, 2**33 + 5, INITIAL_CONDITION)])
def test_normals4_array_matches_scalar(seed, step, purpose):
    particles = np.arange(0, 4000, 37)
    table = normals4_array(seed, step, particles, purpose)
    assert table.shape == (len(particles), 4) and table.dtype == np.float64
    scalar = np.array([normals4(seed, step, int(i), purpose) for i in particles])
    np.testing.assert_array_equal(table, scalar)


# Every extreme of the uniforms (u = 2^-33 and 1 - 2^-33) and the words where 4u crosses a quadrant or
# m crosses sqrt(2), plus random words.
EDGE_WORDS = [
    0,
    1,
    2,
    2**29 - 1,
    2**29,
    2**30 - 1,
    2**30,
    2**31 - 1,
    2**31,
    3 * 2**30,
    2**32 - 2,
    2**32 - 1,
    0x6A09E667,
    0xB504F333,
    0xB504F334,
]


def _extended_words(count):
    words = np.random.default_rng(20261121).integers(0, 2**32, size=count, dtype=np.uint64)
    return np.concatenate([np.array(EDGE_WORDS, dtype=np.uint64), words])


def _extended(words):
    """u = (w + 1/2) 2^-32 in extended precision (the uniforms are exact there)."""
    return (words.astype(np.longdouble) + np.longdouble(0.5)) * np.longdouble(2.0) ** -32


needs_extended = pytest.mark.skipif(
    np.finfo(np.longdouble).nmant < 63, reason="needs an 80-bit long double for the exact reference"
)
TWO_PI_EXTENDED = np.longdouble("6.28318530717958647692528676655900577")


@needs_extended
def test_box_muller_within_two_ulps_of_the_radius():
    """Measured maximum 1.86 ulp; libm's log/cos/sin with 2 pi u rounded first reach 5.7 on the same words."""
    words = _extended_words(20_000)
    angle_words = words[::-1].copy()
    normals = numba.njit(box_muller_core)
    ours = np.array([normals(a, b) for a, b in zip(words, angle_words, strict=False)])
    radius = np.sqrt(-2 * np.log(_extended(words)))
    angle = TWO_PI_EXTENDED * _extended(angle_words)
    exact = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    ulps = np.abs(ours - exact) / np.spacing(radius.astype(np.float64))[:, None]
    assert ulps.max() <= 2.0, ulps.max()


def test_streams_differ_by_every_input():
    base = normals4(5, 9, 3, STEP_NOISE)
    for other in [
        (6, 9, 3, STEP_NOISE),
        (5, 10, 3, STEP_NOISE),
        (5, 9, 4, STEP_NOISE),
        (5, 9, 3, INITIAL_CONDITION),
        (5 + 2**32, 9, 3, STEP_NOISE),
        (5, 9 + 2**32, 3, STEP_NOISE),
    ]:
        assert normals4(*other) != base


def test_normal_statistics():
    samples = normals4_array(20261121, 3, np.arange(50_000), STEP_NOISE).reshape(-1)
    n = samples.size
    assert abs(samples.mean()) < 5 / math.sqrt(n)
    assert abs(samples.var() - 1.0) < 5 * math.sqrt(2.0 / n)
    assert abs(np.mean(samples**4) - 3.0) < 5 * math.sqrt(96.0 / n)  # Var(z^4) = 105 - 9
    columns = samples.reshape(-1, 4)
    correlation = np.corrcoef(columns, rowvar=False)
    np.testing.assert_allclose(correlation, np.eye(4), atol=5 / math.sqrt(len(columns)))


# ---------------------------------------------------------------- against the compiled core (conftest's `core`)


def test_core_known_answers_and_random_blocks(core):
    for inputs, expected in KNOWN_ANSWERS:
        assert tuple(core.philox4x32_10(*inputs)) == expected
    words = np.random.default_rng(1).integers(0, 2**32, size=(50, 6), dtype=np.uint64)
    for row in words:
        assert tuple(core.philox4x32_10(*(int(v) for v in row))) == philox4x32_10(*row)


def test_core_normals4(core):
    """The C++ Box-Muller and the Numba one agree bit for bit (same operations, exactly rounded, no FMA)."""
    for seed, step, particle, purpose in SAMPLE_KEYS + [(11, s, p, STEP_NOISE) for s in range(5) for p in range(20)]:
        assert tuple(core.normals4(seed, step, particle, purpose)) == normals4(seed, step, particle, purpose)
