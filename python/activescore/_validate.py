"""Parameter checks at the Python boundary: every failure is a ValueError naming the parameter and the range."""

from __future__ import annotations

import math
import numbers

import numpy as np


def real(
    name: str,
    value,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """A finite real number in the given range (open or closed at each end)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    lo = "(" if low_open or low == -math.inf else "["
    hi = ")" if high_open or high == math.inf else "]"
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    below = v <= low if low_open else v < low
    above = v >= high if high_open else v > high
    if below or above:
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (NumPy integers included, bools and floats not) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(
            f"{name} must be in [{low if low is not None else '-inf'}, "
            f"{high if high is not None else 'inf'}], got {value!r}"
        )
    return v


def array(name: str, value, shape: tuple, *, dtype=np.float64, finite: bool = True) -> np.ndarray:
    """A real array of the given shape (None in shape = any length), copied to a contiguous float64 array."""
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be a real array, got dtype {a.dtype}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape, strict=False)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    a = np.ascontiguousarray(a, dtype=dtype)
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite everywhere (found NaN or inf)")
    return a


def choice(name: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:  # any other type too (a tuple, an array): no TypeError
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value
