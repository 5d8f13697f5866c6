"""The plain description of a system and a run that every backend consumes.

Mirrors ``cpp/activescore/system_spec.hpp`` field for field, so the compiled core, the CUDA driver and the
Numba fallback read the same numbers. Built by :meth:`activescore.AOUP.spec` and friends; users never need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class SystemSpec:
    model: str  # the model's name: its propulsion policy in cpp/activescore/propulsion.hpp and numba_propulsion.py
    box_length: float
    v0: float
    eps: float  # translational diffusion
    k: float  # interaction strength
    trap: float  # A
    beta: float  # softplus sharpness; inf = harmonic soft disk
    #: The model's own parameters, in the order its propulsion policy reads them (AOUP: γ, ω; ABP: D_r, ω).
    propulsion: tuple[float, ...]
    #: How many numbers hold a particle's propulsion state q (AOUP g: 2; ABP θ: 1).
    propulsion_components: int
    cutoff_tol: float = 1e-6

    @property
    def harmonic(self) -> bool:
        return math.isinf(self.beta)

    @property
    def cutoff_delta(self) -> float:
        """Cutoff beyond contact, where the softplus force is ``cutoff_tol`` of its contact value."""
        if self.harmonic:
            return 0.0
        return math.log(1.0 / (self.cutoff_tol * math.log(2.0))) / self.beta

    def max_cutoff(self, radius: np.ndarray) -> float:
        """Largest pair interaction range: 2 max(R) + delta (the minimum cell width)."""
        return 2.0 * float(np.max(radius)) + self.cutoff_delta


@dataclass(frozen=True)
class RunSpec:
    dt: float
    seed: int
    step: int = 0  # global step counter: keys the random stream
    n_threads: int = 0  # 0 = all available
