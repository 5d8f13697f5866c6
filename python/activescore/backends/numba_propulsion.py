"""The propulsion policies of ``cpp/activescore/propulsion.hpp`` for the Numba backend, one set per model.

A model here is its index in :data:`MODELS` (the order of ``PropulsionModels`` in the C++), its constants (what
its C++ ``make()`` computes from the parameter block, rounded to the simulator's precision by the caller), and its
branch in :func:`direction` and :func:`update`, line for line as the C++ policy. A new model adds one of each.
The kernels of :mod:`.numba_backend` inline these, and Numba's disk cache only watches that file: after editing
this one, clear ``backends/__pycache__``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .special_functions import cos_sin

#: The models in the order of ``PropulsionModels`` (propulsion.hpp).
MODELS = ("aoup", "abp")
AOUP, ABP = 0, 1
#: How many constants a policy holds at most (the slots of the parameter vector it gets).
N_CONSTANTS = 3


def constants(model: str, parameters: tuple[float, ...], dt: float) -> tuple[float, ...]:
    """The policy's constants from the model's parameter block, in float64, as its C++ ``make()`` computes them."""
    if model == "aoup":  # (gamma, omega) -> (e^{-γdt} cos ωdt, e^{-γdt} sin ωdt, √(1 − e^{-2γdt}))
        gamma, omega = parameters[0], parameters[1]
        decay = math.exp(-gamma * dt)
        turned = omega != 0.0
        return (
            decay * math.cos(omega * dt) if turned else decay,
            decay * math.sin(omega * dt) if turned else 0.0,
            math.sqrt(-math.expm1(-2.0 * gamma * dt)),
        )
    if model == "abp":  # (D_r, omega) -> (√(2 D_r dt), ω dt)
        return (math.sqrt(2.0 * parameters[0] * dt), parameters[1] * dt, 0.0)
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


@numba.njit(cache=True, inline="always")
def direction(model, q, i):
    """The propulsion direction (gx, gy) of particle i in q's precision."""
    real = q.dtype.type
    if model == ABP:
        cos_theta, sin_theta = cos_sin(np.float64(q[i, 0]))  # float64 for either precision, as ABPPropulsion
        return real(cos_theta), real(sin_theta)
    return q[i, 0], q[i, 1]


@numba.njit(cache=True, inline="always")
def update(model, q, i, q_new, c, n2, n3):
    """One propulsion step of particle i from the normals (n2, n3), with the policy's constants c."""
    real = q.dtype.type
    if model == ABP:  # c = (kick, turn)
        q_new[i, 0] = q[i, 0] + c[0] * real(n2)
        if c[1] != 0:
            q_new[i, 0] += c[1]
        return
    # AOUP: c = (decay cos, decay sin, kick)
    if c[1] == 0:
        q_new[i, 0] = c[0] * q[i, 0] + c[2] * real(n2)
        q_new[i, 1] = c[0] * q[i, 1] + c[2] * real(n3)
        return
    q0, q1 = q[i, 0], q[i, 1]  # as the C++, which may update in place
    q_new[i, 0] = c[0] * q0 - c[1] * q1 + c[2] * real(n2)
    q_new[i, 1] = c[1] * q0 + c[0] * q1 + c[2] * real(n3)
