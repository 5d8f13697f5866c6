"""The C++ core's own elementary functions (``cpp/activescore/special_functions.hpp``), operation for operation.

Each step is an exactly rounded IEEE operation in the C++ order (which compiles with -ffp-contract=off; Numba does
not contract either), so these give bit for bit the C++ values:

* :func:`log_positive` and :func:`cos_sin_turns`: Box-Muller's log and (cos, sin), and :func:`cos_sin`, the ABP
  direction (cos theta, sin theta), used by every backend (C++, CUDA, Numba), within about an ulp of the true values;
* :func:`softplus`: the float64 softplus pair force of the C++ CPU core (float32 uses libm, as the C++ does).

The C++ splits a float into mantissa and exponent by its bits, this module by ``math.frexp``; both are exact. They
are ``register_jitable``: Numba compiles them into its kernels. After editing this file clear
``backends/__pycache__`` (Numba checks only the timestamp of the file that defines a cached kernel).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that e * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_ROUND = 6755399441055744.0  # 1.5 * 2^52: adding and removing it rounds to an integer
_TWO_PI = 6.283185307179586
_TWO_OVER_PI = 6.36619772367581382433e-01
_HALF_PI_1 = 1.57079632673412561417e00  # pi/2 in three parts: the first two have 33 significant bits
_HALF_PI_2 = 6.07710050630396597660e-11
_HALF_PI_3 = 2.02226624879595063154e-21
_LOG2_E = 1.4426950408889634
_LOG_THREE_HALVES = 0.40546510810816438198
_POWERS_OF_TWO = np.ldexp(1.0, np.arange(-1022, 1))  # 2^-1022 .. 2^0, exact; a table is faster than ldexp in Numba


@register_jitable
def atanh_series_tail(z):
    """sum_{k=1..11} 2 z^k/(2k+1) by Estrin's scheme: special_functions.hpp's atanh_series_tail, in its order."""
    z2 = z * z
    z4 = z2 * z2
    z8 = z4 * z4
    a0 = 2.0 / 3.0 + z * (2.0 / 5.0)
    a1 = 2.0 / 7.0 + z * (2.0 / 9.0)
    a2 = 2.0 / 11.0 + z * (2.0 / 13.0)
    a3 = 2.0 / 15.0 + z * (2.0 / 17.0)
    a4 = 2.0 / 19.0 + z * (2.0 / 21.0)
    return z * (((a0 + a1 * z2) + (a2 + a3 * z2) * z4) + (a4 + z2 * (2.0 / 23.0)) * z8)


@register_jitable
def log_positive(u):
    """log u for a positive normal float u: special_functions.hpp's log_positive, operation for operation.

    u = m 2^e with m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f/(2 + f): log(1 + f) = f - (f^2/2 - s (f^2/2 + R)),
    R = sum_{k=1..11} 2 s^(2k)/(2k+1). Every step is an exactly rounded operation in the C++ order, so both agree
    bit for bit (the C++ splits u by its bits, this by frexp: both exact).
    """
    m, e = math.frexp(u)  # m in [1/2, 1)
    m = 2.0 * m
    e = float(e - 1)
    if m > _SQRT2:
        m = 0.5 * m
        e = e + 1.0
    f = m - 1.0
    half_f_sq = (0.5 * f) * f
    s = f / (2.0 + f)
    r = atanh_series_tail(s * s)
    return e * _LN2_HI - ((half_f_sq - (s * (half_f_sq + r) + e * _LN2_LO)) - f)


@register_jitable
def cos_sin_quadrant(theta, quadrant):
    """(cos, sin) of theta + quadrant pi/2 for |theta| <= pi/4: special_functions.hpp's cos_sin_quadrant.

    Taylor polynomials in theta to theta^17 and theta^16; the quadrant (mod 4) rotates the result.
    """
    z = theta * theta
    ps = 1.0 / 355687428096000.0  # 1/17!
    ps = ps * z - 1.0 / 1307674368000.0
    ps = ps * z + 1.0 / 6227020800.0
    ps = ps * z - 1.0 / 39916800.0
    ps = ps * z + 1.0 / 362880.0
    ps = ps * z - 1.0 / 5040.0
    ps = ps * z + 1.0 / 120.0
    ps = ps * z - 1.0 / 6.0
    sin_theta = theta + (theta * z) * ps
    pc = 1.0 / 20922789888000.0  # 1/16!
    pc = pc * z - 1.0 / 87178291200.0
    pc = pc * z + 1.0 / 479001600.0
    pc = pc * z - 1.0 / 3628800.0
    pc = pc * z + 1.0 / 40320.0
    pc = pc * z - 1.0 / 720.0
    pc = pc * z + 1.0 / 24.0
    cos_theta = 1.0 - (0.5 * z - (z * z) * pc)
    if quadrant & 1:
        cos_theta, sin_theta = sin_theta, cos_theta
    if (quadrant + 1) & 2:
        cos_theta = -cos_theta
    if quadrant & 2:
        sin_theta = -sin_theta
    return cos_theta, sin_theta


@register_jitable
def cos_sin_turns(t):
    """(cos 2 pi t, sin 2 pi t) for t in [0, 1]: special_functions.hpp's cos_sin_turns, operation for operation.

    t = j/4 + d exactly (j the nearest quarter); the polynomials in theta = 2 pi d, |theta| <= pi/4; the quadrant
    j mod 4 rotates the result.
    """
    shifted = 4.0 * t + _ROUND
    j = shifted - _ROUND
    return cos_sin_quadrant(_TWO_PI * (t - 0.25 * j), int(j) & 3)


@register_jitable
def cos_sin(theta):
    """(cos theta, sin theta): special_functions.hpp's cos_sin, operation for operation (the ABP direction).

    theta = j pi/2 + r, j the nearest integer to theta 2/pi, r by Cody-Waite reduction with pi/2 in three parts;
    within about an ulp for |theta| < 2^20 pi/2.
    """
    shifted = theta * _TWO_OVER_PI + _ROUND
    j = shifted - _ROUND
    r = ((theta - j * _HALF_PI_1) - j * _HALF_PI_2) - j * _HALF_PI_3
    return cos_sin_quadrant(r, int(j) & 3)


@register_jitable
def exp_nonpositive(x):
    """exp(x) for x <= 0 (clamped at -700): x = n ln2 + r, 1 + (r + r^2 Q(r)), Q by Estrin's scheme."""
    x = -700.0 if x < -700.0 else x
    t = x * _LOG2_E + _ROUND
    n = t - _ROUND
    r = (x - n * _LN2_HI) - n * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    a0 = 0.5 + r * (1.0 / 6.0)
    a1 = 1.0 / 24.0 + r * (1.0 / 120.0)
    a2 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    a3 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    a4 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    a5 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    q = ((a0 + a1 * r2) + (a2 + a3 * r2) * r4) + (a4 + a5 * r2) * r8
    p = 1.0 + (r + r2 * q)
    return p * _POWERS_OF_TWO[int(n) + 1022]  # p 2^n, the C++ product (n >= -1010: 2^n is normal)


@register_jitable
def log1p_unit(e):
    """log1p(e) for e in [0, 1]: above 1/2, log(3/2) + log1p((e - 1/2)/(3/2)); log1p(f) as in log_positive."""
    high = e > 0.5
    f = (e - 0.5) * (2.0 / 3.0) if high else e
    half_f_sq = (0.5 * f) * f
    s = f / (2.0 + f)
    r = atanh_series_tail(s * s)
    return (_LOG_THREE_HALVES if high else 0.0) + (f - (half_f_sq - s * (half_f_sq + r)))


def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|): the C++ polynomials in float64, libm in float32."""
    raise NotImplementedError("softplus is compiled by Numba (numba.njit)")


@overload(softplus, jit_options={"cache": True})  # type: ignore[typeddict-unknown-key]
def _softplus_overload(z):
    if isinstance(z, types.Float) and z.bitwidth == 64:

        def softplus_float64(z):
            return (z if z > 0.0 else 0.0) + log1p_unit(exp_nonpositive(-z if z > 0.0 else z))

        return softplus_float64

    def softplus_libm(z):
        zero = z - z
        return (z if z > zero else zero) + math.log1p(math.exp(-z if z > zero else z))

    return softplus_libm
