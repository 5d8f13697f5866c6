"""Checks on what the estimators are given: the system, the samples and the snapshots to use."""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..systems import ABP, AOUP


def check_aoup(system, name: str = "system"):
    if isinstance(system, ABP):
        raise ValueError(f"{name}: the estimators need an activescore.AOUP (the ABP propulsion is an angle on a "
                         "circle, not an Ornstein–Uhlenbeck variable)")
    if not isinstance(system, AOUP):
        raise ValueError(f"{name} must be an activescore.AOUP, got {type(system).__name__}")
    return system


def sample_arrays(samples, system, name: str = "samples") -> tuple[object, np.ndarray, np.ndarray]:
    """(system, x, g) with x, g of shape (F, N, 2) from a Trajectory-like object or a tuple (x, g)."""
    if isinstance(samples, (tuple, list)):
        if len(samples) != 2:
            raise ValueError(f"{name}: a tuple must be (x, g), got {len(samples)} items")
        x, g = samples
        own = None
    elif hasattr(samples, "x") and hasattr(samples, "g"):
        x, g = samples.x, samples.g
        own = getattr(samples, "system", None)
    else:
        raise ValueError(f"{name} must be a Trajectory (with .x, .g, .system) or a tuple (x, g), "
                         f"got {type(samples).__name__}")
    if system is None:
        system = own
    elif own is not None and own != system:
        raise ValueError(f"system: {system!r} differs from {name}.system {own!r}")
    if system is None:
        raise ValueError(f"{name}: arrays (x, g) need an explicit system=")
    system = check_aoup(system)
    n = system.n_particles
    x, g = np.asarray(x), np.asarray(g)
    if x.ndim == 2:
        x = x[None]
    if g.ndim == 2:
        g = g[None]
    x = check.array(f"{name}.x", x, (None, n, 2))
    g = check.array(f"{name}.g", g, (None, n, 2))
    if len(x) != len(g):
        raise ValueError(f"{name}: x and g have different numbers of snapshots ({len(x)} and {len(g)})")
    if len(x) == 0:
        raise ValueError(f"{name}: no snapshots")
    half = system.box_length / 2
    reach = float(np.max(np.abs(x)))
    if reach > half * (1 + 1e-9):
        raise ValueError(f"{name}.x: positions must lie in the box [-L/2, L/2]² with L={system.box_length:g} "
                         f"(wrapped; the trap pulls toward the origin), found a coordinate {reach:g}")
    return system, x, g


def frame_indices(frames, n: int) -> np.ndarray:
    if frames is None:
        return np.arange(n)
    if isinstance(frames, slice):
        return np.arange(n)[frames]
    idx = np.asarray(frames)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("frames must be None, a slice or a 1-d sequence of integers")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"frames: indices must be in [-{n}, {n}), got {idx.min()}..{idx.max()}")
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size == 0:
        raise ValueError("frames: no snapshots selected")
    return idx
