"""System descriptions: the active-particle models of physics.md §1, validated on construction.

Positions live in the periodic square box [-L/2, L/2)² centred on the origin (the GSD/freud/OVITO convention);
the optional harmonic trap pulls toward the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

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
        return np.full(n_particles, check.real("radius", radius, low=0.0, low_open=True))
    r = check.array("radius", radius, (n_particles,))
    if np.any(r <= 0):
        raise ValueError("radius must be > 0 for every particle")
    return r


def _quarter_turn(g: np.ndarray) -> np.ndarray:
    """J g = (−g_y, g_x): the counter-clockwise quarter turn of vectors (..., 2)."""
    return np.stack([-g[..., 1], g[..., 0]], axis=-1)


def _beta(beta) -> float:
    """The softplus sharpness; None (or inf) is the harmonic soft disk, the β → ∞ limit, stored as inf."""
    if beta is None:
        return math.inf
    if beta == 0:
        raise ValueError("beta must be > 0 (softplus sharpness); for harmonic soft disks pass beta=None or inf")
    return check.real("beta", beta, low=0.0, low_open=True, allow_inf=True)


@dataclass(frozen=True, eq=False)
class ParticleSystem:
    """Fields, validation and behaviour shared by :class:`AOUP` and :class:`ABP`.

    A model subclass says what the rest of the package asks of a model: its name (``model``), how many numbers
    hold a particle's propulsion state q (``propulsion_components``), the propulsion vector g of a state
    (:meth:`propulsion_direction`), the stationary propulsion drawn from standard normals
    (:meth:`stationary_propulsion`), the relaxation rate of g (``propulsion_rate``), and its :meth:`spec`.
    """

    n_particles: int
    box_length: float
    radius: np.ndarray = field(repr=False)
    v0: float
    eps: float
    k: float
    trap: float
    beta: float
    cutoff_tol: float
    omega: float

    model: ClassVar[str]
    propulsion_components: ClassVar[int]
    #: The propulsion coordinates q the score is taken in: "vector" (q = g, AOUP) or "angle" (q = θ, ABP).
    propulsion_coordinate: ClassVar[str]
    #: The constructor argument holding ``propulsion_rate`` (named in error messages).
    propulsion_rate_name: ClassVar[str]
    #: The symbol of the propulsion coordinates in reports: "g" (AOUP) or "θ" (ABP).
    propulsion_symbol: ClassVar[str]
    #: The symbol of ``propulsion_rate`` in the equations and in plot titles.
    propulsion_rate_symbol: ClassVar[str]

    def _set_common(
        self, n_particles, packing_fraction, box_length, v0, eps, k, trap, beta, radius, cutoff_tol, omega
    ) -> None:
        n = check.integer("n_particles", n_particles, low=1, high=2**31 - 1)
        r = _radii(n, radius)
        set_ = object.__setattr__
        set_(self, "n_particles", n)
        set_(self, "radius", r)
        set_(self, "box_length", _box_length(n, r, packing_fraction, box_length))
        set_(self, "v0", check.real("v0", v0, low=0.0))
        set_(self, "eps", check.real("eps", eps, low=0.0))
        set_(self, "k", check.real("k", k, low=0.0))
        set_(self, "trap", check.real("trap", trap, low=0.0))
        set_(self, "beta", _beta(beta))
        set_(self, "cutoff_tol", check.real("cutoff_tol", cutoff_tol, low=0.0, high=1.0, low_open=True, high_open=True))
        set_(self, "omega", check.real("omega", omega))

    def _check_box(self, packing_fraction) -> None:
        """The pair force is evaluated under the minimum image, which counts each pair once: that is the periodic
        system only when no particle reaches a second image of another, L >= 2 r_c. In a smaller box the force
        on a particle jumps sign as a neighbour crosses the distance L/2 (a discontinuous drift, not the periodic
        model), so such a box is refused rather than simulated wrongly."""
        if self.k == 0 or self.n_particles == 1:
            return  # no pair force (a particle's own images pull it equally both ways): any box is exact
        reach = 2.0 * self.interaction_range
        if self.box_length >= reach:
            return
        area = float(np.sum(np.pi * self.radius**2))
        largest_phi = area / reach**2
        if packing_fraction is not None:
            raise ValueError(
                f"packing_fraction={packing_fraction:g} gives a box of side L = {self.box_length:.4g} for "
                f"{self.n_particles} particles, smaller than twice the interaction range (2 r_c = {reach:.4g}), "
                f"which the minimum-image pair force needs to count each pair once: use packing_fraction <= "
                f"{largest_phi:.4g} or more particles"
            )
        raise ValueError(
            f"box_length={self.box_length:g} is smaller than twice the interaction range (2 r_c = {reach:.4g}), "
            f"which the minimum-image pair force needs to count each pair once: use box_length >= {reach:.4g}"
        )

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

    @property
    def propulsion_rate(self) -> float:
        """The rate in b_g = −rate · g: γ for AOUP, D_r for ABP (Itô form of g = (cos θ, sin θ))."""
        raise NotImplementedError

    def propulsion_direction(self, q: np.ndarray) -> np.ndarray:
        """The propulsion vector g (..., 2) of a propulsion state q (..., propulsion_components)."""
        raise NotImplementedError

    def stationary_propulsion(self, z: np.ndarray) -> np.ndarray:
        """A stationary propulsion state (n, propulsion_components) from standard normals z (n, 2)."""
        raise NotImplementedError

    #: The model's own parameters, in the order its propulsion policy reads them (cpp/activescore/propulsion.hpp,
    #: backends/numba_propulsion.py).
    propulsion_parameters: ClassVar[tuple[str, ...]]

    def spec(self) -> SystemSpec:
        """The plain description every backend consumes."""
        return SystemSpec(
            model=self.model,
            box_length=self.box_length,
            v0=self.v0,
            eps=self.eps,
            k=self.k,
            trap=self.trap,
            beta=self.beta,
            cutoff_tol=self.cutoff_tol,
            propulsion=tuple(float(getattr(self, name)) for name in self.propulsion_parameters),
            propulsion_components=self.propulsion_components,
        )

    @property
    def chiral(self) -> bool:
        """True when the propulsion turns at the constant angular velocity ω ≠ 0 (chiral active particles)."""
        return self.omega != 0.0

    def propulsion_vector_drift(self, g: np.ndarray) -> np.ndarray:
        """The drift of the propulsion vectors g (N, 2), in Itô form for the ABP's g = (cos θ, sin θ):
        −rate · g + ω J g (J the counter-clockwise quarter turn)."""
        g = np.asarray(g, dtype=np.float64)
        if not self.chiral:  # the common case: no turn to compute on every snapshot
            return -self.propulsion_rate * g
        return -self.propulsion_rate * g + self.omega * _quarter_turn(g)

    @property
    def stationary_propulsion_identity(self) -> float:
        """E[b_q·D_q⁻¹b_q + ∇_q·b_q] per particle over the stationary propulsion marginal: the mean of the
        propulsion block of the identity (physics.md §4), which needs no positions: the chiral turn's ω²/rate per
        propulsion coordinate, 0 without chirality."""
        if not self.chiral:
            return 0.0
        return (
            self.propulsion_components * self.omega**2 / self.propulsion_rate if self.propulsion_rate > 0 else math.inf
        )

    def propulsion_drift(self, g: np.ndarray) -> np.ndarray:
        """The drift b_q (N, propulsion_components) of the propulsion coordinates q from the propulsion vectors
        g (N, 2): the coordinates whose noise is √(2 · propulsion_rate) dB (physics.md §4)."""
        raise NotImplementedError

    @property
    def propulsion_drift_divergence(self) -> float:
        """∇_{q_i}·b_q,i, the same for every particle: −d γ for AOUP, 0 for ABP."""
        raise NotImplementedError

    def stationary_propulsion_score(self, g: np.ndarray) -> np.ndarray:
        """∇_q log of the stationary one-particle marginal of q (N, propulsion_components) at g (N, 2): the whole
        propulsion score when the propulsion is independent of the positions (no interactions and no trap, or
        v0 = 0)."""
        raise NotImplementedError

    #: ∇_q·(stationary_propulsion_score) per particle: −d for AOUP (N(0, I)), 0 for ABP (uniform θ).
    stationary_propulsion_score_divergence: ClassVar[float]

    def propulsion_identity_terms(self, g: np.ndarray) -> np.ndarray:
        """Per particle, the propulsion block of the learning-free identity with ε > 0 (physics.md §4),
        b_q·D_q⁻¹b_q + ∇_q·b_q, from the propulsion vectors g (N, 2); shape (N,)."""
        b_q = self.propulsion_drift(g)
        return np.einsum("ij,ij->i", b_q, b_q) / self.propulsion_rate + self.propulsion_drift_divergence

    def propulsion_velocity(self, g: np.ndarray, s_q: np.ndarray) -> np.ndarray:
        """The probability-flow velocity of the propulsion coordinates, v_q = b_q − D_q s_q (N, components),
        from g (N, 2) and the propulsion score s_q (N, components)."""
        return self.propulsion_drift(g) - self.propulsion_rate * s_q

    def propulsion_velocity_divergence(self, divergence_s_q: np.ndarray) -> np.ndarray:
        """∇_{q_i}·v_q,i = ∇_q·b_q − D_q ∇_{q_i}·s_q,i per particle (N,), from the score's divergence (N,)."""
        return self.propulsion_drift_divergence - self.propulsion_rate * divergence_s_q

    def check_propulsion_vectors(self, g: np.ndarray, name: str) -> None:
        """Refuse propulsion vectors (..., 2) this model cannot produce (a ValueError naming ``name``)."""

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        r = self.radius
        d["radius"] = float(r[0]) if np.all(r == r[0]) else r.tolist()
        d["beta"] = None if self.harmonic else self.beta
        d["model"] = self.model
        return d

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        d = self.to_dict()
        for key in ("n_particles", "box_length", "radius", "cutoff_tol", "model"):
            d.pop(key)
        params = ", ".join(f"{key}={value}" for key, value in d.items())
        return (
            f"{type(self).__name__}(n_particles={self.n_particles}, packing_fraction={self.packing_fraction:.4g}, "
            f"box_length={self.box_length:.6g}, {params})"
        )

    def with_size(self, n_particles: int, *, packing_fraction: float | None = None) -> ParticleSystem:
        """The same system with another particle count (and packing fraction), e.g. for transfer studies."""
        d = self.to_dict()
        for key in ("model", "box_length", "n_particles"):
            d.pop(key)
        if not np.isscalar(d["radius"]):
            raise ValueError("with_size needs a monodisperse system (one radius)")
        model: Any = type(self)
        return model(n_particles, packing_fraction=packing_fraction or self.packing_fraction, **d)


@dataclass(frozen=True, eq=False, repr=False)
class AOUP(ParticleSystem):
    """Active Ornstein–Uhlenbeck particles (the paper's model, physics.md §1).

    dx_i = [v0 g_i + k Σ_j F(x_i − x_j) − A x_i] dt + √(2ε) dW_i,   dg_i = (−γ g_i + ω J g_i) dt + √(2γ) dB_i,
    F(r) = softplus_β(R_i + R_j − |r|) r/|r|  (β = None: harmonic soft disks; J the counter-clockwise quarter turn).

    Give exactly one of ``packing_fraction`` (φ = Σ πR²/L²) and ``box_length``. Defaults are the paper's MIPS
    values, so ``AOUP(4096, packing_fraction=0.5)`` is the paper's system. The propulsion state q is g itself.
    ``omega`` ≠ 0 makes them chiral: g turns at angular velocity ω while it relaxes (its stationary law stays
    N(0, I)), which adds d ω²/γ per particle to the EPR of free particles.
    """

    gamma: float = 1e-4
    model: ClassVar[str] = "aoup"
    propulsion_components: ClassVar[int] = 2
    propulsion_parameters: ClassVar[tuple[str, ...]] = ("gamma", "omega")
    propulsion_coordinate: ClassVar[str] = "vector"
    propulsion_rate_name: ClassVar[str] = "gamma"
    propulsion_symbol: ClassVar[str] = "g"
    propulsion_rate_symbol: ClassVar[str] = "γ"

    def __init__(
        self,
        n_particles: int,
        *,
        packing_fraction: float | None = None,
        box_length: float | None = None,
        v0: float = 0.025,
        gamma: float = 1e-4,
        eps: float = 0.0,
        k: float = 1.0,
        trap: float = 0.0,
        beta: float | None = 7.5,
        radius=1.0,
        cutoff_tol: float = 1e-6,
        omega: float = 0.0,
    ):
        self._set_common(n_particles, packing_fraction, box_length, v0, eps, k, trap, beta, radius, cutoff_tol, omega)
        object.__setattr__(self, "gamma", check.real("gamma", gamma, low=0.0, low_open=True))
        self._check_box(packing_fraction)

    @property
    def propulsion_rate(self) -> float:
        return self.gamma

    def propulsion_direction(self, q: np.ndarray) -> np.ndarray:
        return q

    def stationary_propulsion(self, z: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(z[:, :2])  # g_i ~ N(0, I)

    def propulsion_drift(self, g: np.ndarray) -> np.ndarray:
        return self.propulsion_vector_drift(g)

    @property
    def propulsion_drift_divergence(self) -> float:
        return -2.0 * self.gamma  # ∇_g·(−γ g) = −d γ, d = 2

    def stationary_propulsion_score(self, g: np.ndarray) -> np.ndarray:
        return -np.asarray(g, dtype=np.float64)  # g ~ N(0, I)

    stationary_propulsion_score_divergence: ClassVar[float] = -2.0

    def propulsion_identity_terms(self, g: np.ndarray) -> np.ndarray:
        # b_g = −γ g + ω J g, D_g = γ I: |b_g|²/γ + ∇_g·b_g = γ (|g|² − d) + ω² |g|²/γ (J g ⊥ g), in this order so
        # that it is exactly 0 at |g|² = d without chirality.
        square = np.einsum("ij,ij->i", g, g)
        terms = self.gamma * (square - g.shape[-1])
        return terms + self.omega**2 / self.gamma * square if self.chiral else terms


@dataclass(frozen=True, eq=False, repr=False)
class ABP(ParticleSystem):
    """Active Brownian particles: g_i = (cos θ_i, sin θ_i), dθ_i = ω dt + √(2 D_r) dB_i, same x equation as AOUP.

    The propulsion state q is θ (n, 1). ``omega`` ≠ 0 makes them chiral (circle swimmers): θ turns at angular
    velocity ω, which adds ω²/D_r per particle to the EPR."""

    rotational_diffusion: float = 1.0
    model: ClassVar[str] = "abp"
    propulsion_components: ClassVar[int] = 1
    propulsion_parameters: ClassVar[tuple[str, ...]] = ("rotational_diffusion", "omega")
    propulsion_coordinate: ClassVar[str] = "angle"
    propulsion_rate_name: ClassVar[str] = "rotational_diffusion"
    propulsion_symbol: ClassVar[str] = "θ"
    propulsion_rate_symbol: ClassVar[str] = "D_r"

    def __init__(
        self,
        n_particles: int,
        *,
        packing_fraction: float | None = None,
        box_length: float | None = None,
        v0: float = 1.0,
        rotational_diffusion: float = 1.0,
        eps: float = 0.0,
        k: float = 1.0,
        trap: float = 0.0,
        beta: float | None = 7.5,
        radius=1.0,
        cutoff_tol: float = 1e-6,
        omega: float = 0.0,
    ):
        self._set_common(n_particles, packing_fraction, box_length, v0, eps, k, trap, beta, radius, cutoff_tol, omega)
        object.__setattr__(
            self, "rotational_diffusion", check.real("rotational_diffusion", rotational_diffusion, low=0.0)
        )
        self._check_box(packing_fraction)

    @property
    def propulsion_rate(self) -> float:
        return self.rotational_diffusion

    def propulsion_direction(self, q: np.ndarray) -> np.ndarray:
        theta = q[..., 0]
        return np.stack([np.cos(theta), np.sin(theta)], axis=-1)

    def stationary_propulsion(self, z: np.ndarray) -> np.ndarray:
        # The angle of a standard normal pair is uniform on the circle.
        return np.ascontiguousarray(np.mod(np.arctan2(z[:, 1], z[:, 0]), 2 * np.pi)[:, None])

    def propulsion_drift(self, g: np.ndarray) -> np.ndarray:
        # b_θ = ω: without chirality the propulsion block of the identity contributes nothing (physics.md §4).
        return np.full((len(g), 1), self.omega)

    def propulsion_identity_terms(self, g: np.ndarray) -> np.ndarray:
        return np.full(len(g), self.stationary_propulsion_identity)  # b_θ²/D_r + ∂_θ b_θ = ω²/D_r, θ-independent

    @property
    def propulsion_drift_divergence(self) -> float:
        return 0.0

    def stationary_propulsion_score(self, g: np.ndarray) -> np.ndarray:
        return np.zeros((len(g), 1))  # θ uniform on the circle

    stationary_propulsion_score_divergence: ClassVar[float] = 0.0

    #: How far |g| may be from 1 in ABP samples (float32 storage of θ gives ~1e-7).
    UNIT_TOLERANCE: ClassVar[float] = 1e-5

    def check_propulsion_vectors(self, g: np.ndarray, name: str) -> None:
        norm = np.sqrt(np.einsum("...j,...j->...", g, g))
        worst = float(np.max(np.abs(norm - 1.0))) if norm.size else 0.0
        if worst > self.UNIT_TOLERANCE:
            raise ValueError(
                f"{name}: ABP propulsion vectors must be unit vectors g = (cos θ, sin θ) (as Trajectory.g gives "
                f"them), found |g| off 1 by {worst:.3g}"
            )


MODELS: dict[str, type[ParticleSystem]] = {cls.model: cls for cls in (AOUP, ABP)}


def check_system(system, name: str = "system") -> ParticleSystem:
    """``system`` if it is an activescore model, else a ValueError naming ``name``."""
    if not isinstance(system, ParticleSystem):
        raise ValueError(f"{name} must be an activescore.AOUP or activescore.ABP, got {type(system).__name__}")
    return system


def mips(n_particles: int, packing_fraction: float = 0.5, **overrides) -> AOUP:
    """The paper's MIPS preset: v0 = 0.025, γ = 1e-4, ε = 0, k = 1, β = 7.5, R = 1 (use dt = MIPS_DT = 0.1)."""
    params = {**MIPS_PARAMETERS, **overrides}
    return AOUP(n_particles, packing_fraction=packing_fraction, **params)


def system_from_dict(d: dict) -> ParticleSystem:
    """Inverse of ``system.to_dict()``."""
    d = dict(d)
    model = d.pop("model", "aoup")
    cls = MODELS.get(model)
    if cls is None:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    n = d.pop("n_particles")
    return cls(n, **d)
