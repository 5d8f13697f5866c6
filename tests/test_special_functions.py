"""The core's own elementary functions (special_functions.hpp, mirrored in backends/special_functions.py) against
extended precision. The Numba mirror is the C++ bit for bit (test_rng.py: normals; test_numba_backend.py: forces),
so these bounds hold for both."""

import numba
import numpy as np
import pytest

from activescore.backends import special_functions as sf

pytestmark = pytest.mark.skipif(
    np.finfo(np.longdouble).nmant < 63, reason="needs an 80-bit long double for the exact reference"
)
L = np.longdouble
TWO_PI = L("6.28318530717958647692528676655900577")
gen = np.random.default_rng(20261121)


def ulps(ours, exact):
    """|ours - exact| in units of the last place of the exact value rounded to float64."""
    return np.abs(ours - exact) / np.spacing(np.abs(exact.astype(np.float64)))


def evaluate(function, arguments):
    compiled = numba.njit(lambda v: function(v))
    return np.array([compiled(float(v)) for v in arguments])


def test_log_positive():
    """Every uniform Box-Muller can draw, (w + 1/2) 2^-32, including both ends and around sqrt(1/2)."""
    words = np.concatenate([[0, 1, 2**31, 0xB504F333, 0xB504F334, 2**32 - 1], gen.integers(0, 2**32, 20_000)])
    u = (words.astype(L) + L(0.5)) * L(2) ** -32
    assert ulps(evaluate(sf.log_positive, u), np.log(u)).max() <= 1.0


def test_cos_sin_turns():
    t = np.concatenate(
        [[2.0**-33, 0.125, 0.25 - 2.0**-33, 0.375, 0.5, 0.75 + 2.0**-33, 1 - 2.0**-33], gen.uniform(0.0, 1.0, 20_000)]
    ).astype(L)
    compiled = numba.njit(sf.cos_sin_turns)
    ours = np.array([compiled(float(v)) for v in t])
    exact = np.stack([np.cos(TWO_PI * t), np.sin(TWO_PI * t)], axis=1)
    # Absolute, in units of 2^-53 (half an ulp of 1): at the zeros of cos and sin a relative error means nothing.
    assert (np.abs(ours - exact) / 2.0**-53).max() <= 2.0


def test_cos_sin():
    """The ABP direction: any angle a diffusing θ reaches, the quadrant boundaries (odd multiples of π/4) included."""
    quarter = np.arange(-41, 42, 2).astype(L) * (TWO_PI / 8)
    theta = np.concatenate(
        [
            quarter,
            np.nextafter(quarter.astype(np.float64), np.inf).astype(L),
            [0.0, 1e-300],
            gen.uniform(-10.0, 10.0, 10_000),
            gen.uniform(-1e4, 1e4, 10_000),
        ]
    ).astype(np.float64)
    compiled = numba.njit(sf.cos_sin)
    ours = np.array([compiled(float(v)) for v in theta])
    exact = np.stack([np.cos(theta.astype(L)), np.sin(theta.astype(L))], axis=1)
    assert (np.abs(ours - exact) / 2.0**-53).max() <= 2.0


def test_exp_nonpositive():
    x = np.concatenate([[0.0, -1e-300, -0.5 * np.log(2), -1.0, -700.0], -gen.exponential(20.0, 20_000)]).astype(L)
    assert ulps(evaluate(sf.exp_nonpositive, x), np.exp(x)).max() <= 1.5
    assert sf.exp_nonpositive(-800.0) == sf.exp_nonpositive(-700.0) > 0.0  # clamped, not flushed to zero


def test_log1p_unit():
    e = np.concatenate([[0.0, 1e-300, 1e-17, 0.5, np.nextafter(0.5, 1.0), 1.0], gen.uniform(0.0, 1.0, 20_000)])
    e = e.astype(L)
    assert ulps(evaluate(sf.log1p_unit, e)[1:], np.log1p(e)[1:]).max() <= 1.5
    assert sf.log1p_unit(0.0) == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus(dtype):
    """The float64 pair force uses the polynomials (measured 1.49 ulp at most), float32 uses libm."""
    z = np.concatenate([[0.0, 1e-9, -1e-9, 40.0, -40.0], gen.uniform(-40.0, 40.0, 20_000)]).astype(dtype)
    compiled = numba.njit(lambda v: sf.softplus(v))
    ours = np.array([compiled(v) for v in z]).astype(dtype)  # Numba hands float32 results back as Python floats
    zl = z.astype(L)
    exact = np.maximum(zl, 0) + np.log1p(np.exp(-np.abs(zl)))
    assert (np.abs(ours - exact) / np.spacing(np.abs(exact.astype(dtype)))).max() <= 2.0
