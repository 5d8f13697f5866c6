"""System descriptions: the active-particle models of physics.md §1, validated on construction.

Positions live in the periodic square box [-L/2, L/2)² centred on the origin (the GSD/freud/OVITO convention);
the optional harmonic trap pulls toward the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from . import _validate as check
from .backends.spec import SystemSpec

#: The paper's MIPS time step (Boffi & Vanden-Eijnden, PNAS 2024).
MIPS_DT = 0.1
#: The paper's MIPS parameters (AOUP).
MIPS_PARAMETERS = dict(v0=0.025, gamma=1e-4, eps=0.0, k=1.0, trap=0.0, beta=7.5, radius=1.0)


def _box_length(n_particles: int, radius: np.ndarray, packing_fraction, box_length) -> float:
    if (packing_fraction is None) == (box_length is None):
        raise ValueError("give exactly one of packing_fraction and box_length")
    if box_length is not None:
        return check.real("box_length", box_length, low=0.0, low_open=True)
    phi = check.real("packing_fraction", packing_fraction, low=0.0, low_open=True)
    return math.sqrt(float(np.sum(np.pi * radius**2)) / phi)


def _radii(n_particles: int, radius) -> np.ndarray:
    if np.ndim(radius) == 0:
        r = check.real("radius", radius, low=0.0, low_open=True)
        return np.full(n_particles, r)
    r = check.array("radius", radius, (n_particles,))
    if np.any(r <= 0):
        raise ValueError("radius must be > 0 for every particle")
    return r


def _beta(beta) -> float:
    if beta is None:
        return math.inf
    return check.real("beta", beta, low=0.0, low_open=True, allow_inf=True)


@dataclass(frozen=True, eq=False)
class _ParticleSystem:
    """Fields and behaviour shared by AOUP and ABP."""

    n_particles: int
    box_length: float
    radius: np.ndarray = field(repr=False)
    v0: float
    eps: float
    k: float
    trap: float
    beta: float
    cutoff_tol: float

    @property
    def packing_fraction(self) -> float:
        return float(np.sum(np.pi * self.radius**2)) / self.box_length**2

    @property
    def harmonic(self) -> bool:
        return math.isinf(self.beta)

    @property
    def interaction_range(self) -> float:
        """Largest pair cutoff 2 max(R) + δ, δ = ln(1/(tol ln 2))/β (0 for harmonic disks)."""
        return self.spec().max_cutoff(self.radius)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        r = self.radius
        d["radius"] = float(r[0]) if np.all(r == r[0]) else r.tolist()
        d["beta"] = None if self.harmonic else self.beta
        d["model"] = self.model
        return d

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def with_size(self, n_particles: int, *, packing_fraction: float | None = None) -> "_ParticleSystem":
        """The same system with another particle count (and packing fraction), e.g. for transfer studies."""
        d = self.to_dict()
        for key in ("model", "box_length", "n_particles"):
            d.pop(key)
        if not np.isscalar(d["radius"]):
            raise ValueError("with_size needs a monodisperse system (one radius)")
        return type(self)(n_particles, packing_fraction=packing_fraction or self.packing_fraction, **d)


@dataclass(frozen=True, eq=False, repr=False)
class AOUP(_ParticleSystem):
    """Active Ornstein–Uhlenbeck particles (the paper's model, physics.md §1).

    dx_i = [v0 g_i + k Σ_j F(x_i − x_j) − A x_i] dt + √(2ε) dW_i,   dg_i = −γ g_i dt + √(2γ) dB_i,
    F(r) = softplus_β(R_i + R_j − |r|) r/|r|  (β = None: harmonic soft disks).

    Give exactly one of ``packing_fraction`` (φ = Σ πR²/L²) and ``box_length``. Defaults are the paper's MIPS
    values, so ``AOUP(4096, packing_fraction=0.5)`` is the paper's system.
    """

    gamma: float = 1e-4
    model = "aoup"

    def __init__(self, n_particles: int, *, packing_fraction: float | None = None, box_length: float | None = None,
                 v0: float = 0.025, gamma: float = 1e-4, eps: float = 0.0, k: float = 1.0, trap: float = 0.0,
                 beta: float | None = 7.5, radius=1.0, cutoff_tol: float = 1e-6):
        n = check.integer("n_particles", n_particles, low=1, high=2**31 - 1)
        r = _radii(n, radius)
        set_ = object.__setattr__
        set_(self, "n_particles", n)
        set_(self, "radius", r)
        set_(self, "box_length", _box_length(n, r, packing_fraction, box_length))
        set_(self, "v0", check.real("v0", v0, low=0.0))
        set_(self, "gamma", check.real("gamma", gamma, low=0.0, low_open=True))
        set_(self, "eps", check.real("eps", eps, low=0.0))
        set_(self, "k", check.real("k", k, low=0.0))
        set_(self, "trap", check.real("trap", trap, low=0.0))
        set_(self, "beta", _beta(beta))
        set_(self, "cutoff_tol", check.real("cutoff_tol", cutoff_tol, low=0.0, high=1.0, low_open=True, high_open=True))

    def __repr__(self) -> str:
        return (f"AOUP(n_particles={self.n_particles}, packing_fraction={self.packing_fraction:.4g}, "
                f"box_length={self.box_length:.6g}, v0={self.v0}, gamma={self.gamma}, eps={self.eps}, k={self.k}, "
                f"trap={self.trap}, beta={None if self.harmonic else self.beta})")

    def spec(self) -> SystemSpec:
        return SystemSpec("aoup", self.box_length, self.v0, self.gamma, 0.0, self.eps, self.k, self.trap,
                          self.beta, self.cutoff_tol)


@dataclass(frozen=True, eq=False, repr=False)
class ABP(_ParticleSystem):
    """Active Brownian particles: g_i = (cos θ_i, sin θ_i), dθ_i = √(2 D_r) dB_i, same x equation as AOUP."""

    rotational_diffusion: float = 1.0
    model = "abp"

    def __init__(self, n_particles: int, *, packing_fraction: float | None = None, box_length: float | None = None,
                 v0: float = 1.0, rotational_diffusion: float = 1.0, eps: float = 0.0, k: float = 1.0,
                 trap: float = 0.0, beta: float | None = 7.5, radius=1.0, cutoff_tol: float = 1e-6):
        n = check.integer("n_particles", n_particles, low=1, high=2**31 - 1)
        r = _radii(n, radius)
        set_ = object.__setattr__
        set_(self, "n_particles", n)
        set_(self, "radius", r)
        set_(self, "box_length", _box_length(n, r, packing_fraction, box_length))
        set_(self, "v0", check.real("v0", v0, low=0.0))
        set_(self, "rotational_diffusion", check.real("rotational_diffusion", rotational_diffusion, low=0.0))
        set_(self, "eps", check.real("eps", eps, low=0.0))
        set_(self, "k", check.real("k", k, low=0.0))
        set_(self, "trap", check.real("trap", trap, low=0.0))
        set_(self, "beta", _beta(beta))
        set_(self, "cutoff_tol", check.real("cutoff_tol", cutoff_tol, low=0.0, high=1.0, low_open=True, high_open=True))

    def __repr__(self) -> str:
        return (f"ABP(n_particles={self.n_particles}, packing_fraction={self.packing_fraction:.4g}, "
                f"box_length={self.box_length:.6g}, v0={self.v0}, rotational_diffusion={self.rotational_diffusion}, "
                f"eps={self.eps}, k={self.k}, trap={self.trap}, beta={None if self.harmonic else self.beta})")

    def spec(self) -> SystemSpec:
        return SystemSpec("abp", self.box_length, self.v0, 0.0, self.rotational_diffusion, self.eps, self.k,
                          self.trap, self.beta, self.cutoff_tol)


def mips(n_particles: int, packing_fraction: float = 0.5, **overrides) -> AOUP:
    """The paper's MIPS preset: v0 = 0.025, γ = 1e-4, ε = 0, k = 1, β = 7.5, R = 1 (use dt = MIPS_DT = 0.1)."""
    params = {**MIPS_PARAMETERS, **overrides}
    return AOUP(n_particles, packing_fraction=packing_fraction, **params)


def system_from_dict(d: dict) -> AOUP | ABP:
    """Inverse of ``system.to_dict()``."""
    d = dict(d)
    model = d.pop("model", "aoup")
    cls = {"aoup": AOUP, "abp": ABP}.get(model)
    if cls is None:
        raise ValueError(f"model must be 'aoup' or 'abp', got {model!r}")
    n = d.pop("n_particles")
    return cls(n, **d)
