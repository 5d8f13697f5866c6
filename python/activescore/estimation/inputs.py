"""Checks on what the estimators are given: the system, the samples and the snapshots to use."""

from __future__ import annotations

import numpy as np

from ..samples import as_samples
from ..systems import AOUP, ParticleSystem, check_system


def check_aoup(system, name: str = "system") -> AOUP:
    """``system`` if it is an AOUP (for what is built on the Ornstein–Uhlenbeck propulsion, e.g. the linear
    drift-response score), else a ValueError naming ``name``."""
    if not isinstance(system, AOUP):
        raise ValueError(f"{name} must be an activescore.AOUP, got {type(system).__name__}")
    return system


def check_estimable(system, name: str = "system") -> ParticleSystem:
    """``system`` if a score-based EPR is defined for it: an activescore model whose propulsion carries noise."""
    system = check_system(system, name)
    if not system.propulsion_rate > 0:
        raise ValueError(
            f"{name}: {system.propulsion_rate_name} must be > 0 for the entropy production "
            f"(got {system.propulsion_rate:g}: without propulsion noise the propulsion block of v·D⁻¹v is undefined)"
        )
    return system


def sample_arrays(samples, system, name: str = "samples") -> tuple[ParticleSystem, np.ndarray, np.ndarray]:
    """(system, x, g), x and g of shape (F, N, 2) float64, from anything :func:`activescore.samples.as_samples`
    accepts, checked to belong to ``system`` (default: the samples' own), to lie in its box and (ABPs) to hold unit
    propulsion vectors g = (cos θ, sin θ), as ``Trajectory.g`` gives them. For a score-based estimate; the
    learning-free identity uses :func:`estimation_inputs` with ``any_model``."""
    return _arrays(samples, system, name, check_estimable)


def estimation_inputs(
    samples, system, name: str = "samples", *, any_model: bool = False
) -> tuple[ParticleSystem, np.ndarray, np.ndarray, float | None]:
    """As :func:`sample_arrays` (``any_model``: every model, also without propulsion noise, for what needs no
    score), and the time step of the simulation the samples come from where they carry it (a Trajectory, a GSD
    file, a data set), else None."""
    return _arrays(samples, system, name, check_system if any_model else check_estimable, with_dt=True)


def _arrays(samples, system, name: str, check_model, with_dt: bool = False):
    given = as_samples(samples, system, name=name)
    system = given.system if system is None else system
    if system is None:
        raise ValueError(f"{name}: arrays (x, g) need an explicit system=")
    system = check_model(system)
    x, g = given.load()
    n = system.n_particles
    if x.shape[1] != n:
        raise ValueError(f"{name}: snapshots of {x.shape[1]} particles, but the system has {n}")
    half = system.box_length / 2
    reach = float(np.max(np.abs(x)))
    if reach > half * (1 + 1e-9):
        raise ValueError(
            f"{name}.x: positions must lie in the box [-L/2, L/2]² with L={system.box_length:g} "
            f"(wrapped; the trap pulls toward the origin), found a coordinate {reach:g}"
        )
    system.check_propulsion_vectors(g, f"{name}.g")
    if with_dt:
        dt = getattr(given, "dt", None)
        return system, x, g, None if dt is None else float(dt)
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
