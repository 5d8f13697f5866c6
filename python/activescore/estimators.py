"""Probability-flow velocity, currents and entropy production from a score, and the learning-free check
(physics.md §4).

One front door, :func:`estimate`, takes a score and stationary samples and returns an :class:`EPRResult` with

* per snapshot and particle (kept when they fit in memory): v_x, v_g and the local EPR in both forms,
  the quadratic e_i = |v_x,i|²/ε + |v_g,i|²/γ and the divergence c_i = ∇_{g_i}·v_g,i + v_x,i·b_x,i/ε + ∇_{x_i}·v_x,i
  (x terms dropped when ε = 0), split into the x and g degrees of freedom;
* the totals (EPR per particle and for the whole system) in both forms with batch-means standard errors;
* the learning-free identity (:func:`learning_free_epr`) on the same samples, the ratio learned/identity and the
  difference, printed prominently by :meth:`EPRResult.summary`;
* spatial maps on a grid (density, per-particle mean and density-weighted EPR, the current ρ v_x) and, for trapped
  systems, radial profiles.

Every number is an :class:`Estimate` labelled with its form and the σ of the score it came from.

Score protocol (duck typed): ``score(x, g) -> (s_x or None, s_g)`` for one snapshot ((N, 2) arrays), and
``score.divergence_g(x, g)``, ``score.divergence_x(x, g)`` (ε > 0) → (N,), ``score.system`` and ``score.sigma`` (or
``score.sigmas``) for the denoising noise level (None or 0: an unsmoothed score).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass, field

import numpy as np

from . import _validate as check

D = 2  # spatial dimension
FORMS = ("quadratic", "divergence")
#: Keep per-particle fields by default up to this many particle-snapshots (≈ 64 bytes each).
KEEP_FIELDS_LIMIT = 1 << 22
#: Show a progress bar by default from this many particle-snapshots on.
PROGRESS_LIMIT = 1 << 21
_QUANTITIES = ("quadratic", "divergence", "quadratic_x", "quadratic_g", "divergence_x", "divergence_g")

__all__ = [
    "BinnedField", "EPRResult", "Estimate", "LearningFreeEPR", "LocalEPR", "RadialProfile", "SpatialMap",
    "estimate", "learning_free_epr", "local_epr",
]


# ------------------------------------------------------------------------------------------- numbers with errors
def _sigma_text(sigma) -> str:
    if sigma is None:
        return "no score"
    return "σ=0 (unsmoothed score)" if sigma == 0 else f"σ={sigma:g}"


@dataclass(frozen=True)
class Estimate:
    """A mean over snapshots with its batch-means standard error, labelled with where it came from.

    ``form``: "quadratic", "divergence" (from a score, see ``sigma``), "identity" (E[b·D⁻¹b] + E[∇·b], or
    −E[Σ∇·b_x] when ε = 0), "active-work", or a derived label such as "quadratic/identity".
    ``sigma``: the noise level of the score (0: unsmoothed; None: no score involved).
    Unpacks as ``value, stderr = estimate``."""

    value: float
    stderr: float
    form: str
    sigma: float | None = None
    n_snapshots: int = 0

    def __iter__(self):
        yield self.value
        yield self.stderr

    def __float__(self) -> float:
        return float(self.value)

    @property
    def label(self) -> str:
        return f"{self.form}, {_sigma_text(self.sigma)}"

    def __format__(self, spec: str) -> str:
        spec = spec or ".6g"
        err = "n/a" if not np.isfinite(self.stderr) else f"{self.stderr:.2g}"
        return f"{self.value:{spec}} ± {err}"

    def __str__(self) -> str:
        return f"{self:.6g} [{self.label}]"


def _n_batches(n: int, n_batches) -> int:
    if n_batches is None:
        n_batches = max(2, int(round(math.sqrt(n))))
    return max(1, min(int(n_batches), n))


def _batch_means(series: np.ndarray, n_batches: int) -> np.ndarray:
    """Means of ``n_batches`` contiguous, nearly equal batches along the last axis."""
    return np.stack([chunk.mean(axis=-1) for chunk in np.array_split(series, n_batches, axis=-1)], axis=-1)


def _mean_stderr(series, n_batches: int) -> tuple[float, float]:
    series = np.asarray(series, dtype=np.float64)
    mean = float(series.mean())
    if n_batches < 2:
        return mean, math.nan
    bm = _batch_means(series, n_batches)
    return mean, float(bm.std(ddof=1) / math.sqrt(n_batches))


def _estimate(series, n_batches, form, sigma, scale: float = 1.0) -> Estimate:
    mean, se = _mean_stderr(series, n_batches)
    return Estimate(mean * scale, se * scale, form, sigma, len(series))


def _ratio(num, den, n_batches, form, sigma) -> Estimate:
    """mean(num)/mean(den) with the delta-method error from paired batch means (same snapshots)."""
    a, b = float(np.mean(num)), float(np.mean(den))
    r = a / b if b != 0 else math.inf
    if n_batches < 2 or b == 0:
        return Estimate(r, math.nan, form, sigma, len(num))
    bm = _batch_means(np.stack([num, den]), n_batches)
    cov = np.cov(bm) / n_batches
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (b * b)
    return Estimate(r, math.sqrt(max(var, 0.0)), form, sigma, len(num))


# ----------------------------------------------------------------------------------------- checks on the input
def _check_system(system, name: str = "system"):
    from .systems import ABP, AOUP

    if isinstance(system, ABP):
        raise ValueError(f"{name}: the estimators need an activescore.AOUP (the ABP propulsion is an angle on a "
                         "circle, not an Ornstein–Uhlenbeck variable)")
    if not isinstance(system, AOUP):
        raise ValueError(f"{name} must be an activescore.AOUP, got {type(system).__name__}")
    return system


def _samples(samples, system, name: str = "samples") -> tuple[object, np.ndarray, np.ndarray]:
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
    system = _check_system(system)
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


def _frames(frames, n: int) -> np.ndarray:
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


def _dynamics(system) -> dict:
    d = system.to_dict()
    for key in ("n_particles", "box_length"):
        d.pop(key, None)
    return d


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _score_sigma(score, kwargs: dict):
    if kwargs.get("sigma") is not None:
        return float(kwargs["sigma"])
    sigma = getattr(score, "sigma", None)
    if sigma is not None:
        return float(sigma)
    sigmas = tuple(getattr(score, "sigmas", ()) or ())
    return float(min(sigmas)) if sigmas else 0.0


class _BoundScore:
    """The score, checked against the system and called with the extra keyword arguments."""

    def __init__(self, score, system, score_kwargs, transfer: bool):
        for attr in ("divergence_g",) + (("divergence_x",) if system.eps > 0 else ()):
            if not callable(getattr(score, attr, None)):
                raise ValueError(f"score: needs a method {attr}(x, g) (the score protocol)")
        if not callable(score):
            raise ValueError("score: must be callable as score(x, g) -> (s_x, s_g)")
        own = getattr(score, "system", None)
        if own is None:
            raise ValueError("score: has no .system (the system it was learned for)")
        kwargs = dict(score_kwargs or {})
        if own != system:
            if getattr(own, "model", None) != system.model or _dynamics(own) != _dynamics(system):
                raise ValueError(f"score: it is the score of {own!r}, but the samples are of {system!r}")
            if not transfer:
                raise ValueError(f"score: it was learned at another size ({own!r}) than the samples "
                                 f"({system!r}); pass transfer=True to apply a size-transferable score")
            if not _accepts(score.__call__, "box_length"):
                raise ValueError("score: transfer=True needs a score that accepts box_length=")
            kwargs.setdefault("box_length", system.box_length)
        self.score, self.system, self.kwargs = score, system, kwargs
        self.sigma = _score_sigma(score, kwargs)

    def __call__(self, x, g):
        n, eps = self.system.n_particles, self.system.eps
        out = self.score(x, g, **self.kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError("score: must return a pair (s_x or None, s_g)")
        s_x, s_g = out
        s_g = _shaped("score s_g", s_g, (n, 2))
        if eps > 0:
            if s_x is None:
                raise ValueError("score: returned s_x=None, but the system has eps > 0 (both blocks are needed)")
            s_x = _shaped("score s_x", s_x, (n, 2))
            div_x = _shaped("score.divergence_x", self.score.divergence_x(x, g, **self.kwargs), (n,))
        else:
            s_x = div_x = None
        div_g = _shaped("score.divergence_g", self.score.divergence_g(x, g, **self.kwargs), (n,))
        return s_x, s_g, div_x, div_g


def _shaped(name, value, shape) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a


# ------------------------------------------------------------------------------------------------ drift terms
def _drift_terms(system, x, g, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """b_x (N, 2) and ∇_{x_i}·b_x,i (N,) of one snapshot (non-interacting systems without the cell list)."""
    if system.k == 0:
        forces = -system.trap * x
        div = np.full(system.n_particles, -D * system.trap)
    else:
        from .observables import drift_divergence, forces as pair_forces

        forces = pair_forces(system, x, n_threads=n_threads)
        div = drift_divergence(system, x, n_threads=n_threads)
    return system.v0 * g + forces, div


def _identity_terms(system, g, b_x, div_bx) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-particle integrands of the learning-free identity and (ε > 0) of its active-work form."""
    if system.eps > 0:
        gamma, eps = system.gamma, system.eps
        ident = (np.einsum("ij,ij->i", b_x, b_x) / eps + gamma * np.einsum("ij,ij->i", g, g) + div_bx - D * gamma)
        work = system.v0 * np.einsum("ij,ij->i", g, b_x) / eps
        return ident, work
    return -div_bx, None


# --------------------------------------------------------------------------------------------- one snapshot
@dataclass(eq=False)
class LocalEPR:
    """Per-particle fields of one snapshot ((N, ...)), or of many (leading snapshot axis) in ``EPRResult.local``.

    ``v_x``: probability-flow velocity of the positions, b_x − ε s_x (ε = 0: v_x = b_x, the x noise is absent);
    ``v_g`` = −γ (g + s_g); ``quadratic_x`` = |v_x|²/ε, ``quadratic_g`` = |v_g|²/γ; ``divergence_g`` = ∇_g·v_g,
    ``divergence_x`` = v_x·b_x/ε + ∇_x·v_x (both x parts zero when ε = 0); ``quadratic`` and ``divergence`` are the
    sums e_i and c_i. ``identity`` / ``active_work``: the integrands of the learning-free identity (their sums
    have the EPR as expectation; they are not local EPRs). ``sigma``: the score's noise level."""

    v_x: np.ndarray
    v_g: np.ndarray
    quadratic_x: np.ndarray
    quadratic_g: np.ndarray
    divergence_x: np.ndarray
    divergence_g: np.ndarray
    identity: np.ndarray
    active_work: np.ndarray | None
    sigma: float | None = None

    @property
    def quadratic(self) -> np.ndarray:
        return self.quadratic_x + self.quadratic_g

    @property
    def divergence(self) -> np.ndarray:
        return self.divergence_x + self.divergence_g

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in _QUANTITIES:
            raise KeyError(f"{key!r}: one of {_QUANTITIES}")
        return getattr(self, key)


def _local(system, bound: _BoundScore, x, g, n_threads: int) -> LocalEPR:
    eps, gamma = system.eps, system.gamma
    b_x, div_bx = _drift_terms(system, x, g, n_threads)
    s_x, s_g, div_sx, div_sg = bound(x, g)
    v_g = -gamma * (g + s_g)
    q_g = np.einsum("ij,ij->i", v_g, v_g) / gamma
    c_g = -gamma * (D + div_sg)
    if eps > 0:
        v_x = b_x - eps * s_x
        q_x = np.einsum("ij,ij->i", v_x, v_x) / eps
        c_x = np.einsum("ij,ij->i", v_x, b_x) / eps + div_bx - eps * div_sx
    else:
        v_x = b_x
        q_x = np.zeros_like(q_g)
        c_x = np.zeros_like(q_g)
    ident, work = _identity_terms(system, g, b_x, div_bx)
    return LocalEPR(v_x, v_g, q_x, q_g, c_x, c_g, ident, work, bound.sigma)


def local_epr(score, x, g, *, system=None, score_kwargs: dict | None = None, transfer: bool = False,
              n_threads: int = 0) -> LocalEPR:
    """Per-particle velocity and local EPR (both forms, x/g parts) of one snapshot ``x``, ``g`` (N, 2)."""
    system = _check_system(system if system is not None else getattr(score, "system", None), "system")
    _, xs, gs = _samples((x, g), system, "x, g")
    bound = _BoundScore(score, system, score_kwargs, transfer)
    return _local(system, bound, xs[0], gs[0], check.integer("n_threads", n_threads, low=0))


# ------------------------------------------------------------------------------------------- binned fields
@dataclass(eq=False)
class BinnedField:
    """Per-particle values accumulated in spatial bins over many snapshots.

    ``count``: particle-snapshots per bin; ``measure``: area of each bin; ``sums`` / ``sumsq``: sums of each
    quantity ("quadratic", "divergence", their "_x"/"_g" parts, and on grids the current components "j_x",
    "j_y") and of the squares of the totals; ``outside``: particle-snapshots beyond the binned region.

    * ``per_particle(q)``: mean of q over the particles found in the bin (NaN where empty);
    * ``density_weighted(q)``: sum of q in the bin / (bin area × snapshots), an EPR density whose integral
      ``integral(q)`` is the mean total per snapshot (of the particles inside the region);
    * ``density()``: particles per unit area."""

    measure: np.ndarray
    n_frames: int
    count: np.ndarray
    sums: dict
    sumsq: dict
    outside: int
    sigma: float | None

    def density(self) -> np.ndarray:
        return self.count / (self.measure * self.n_frames)

    def _sum(self, quantity: str) -> np.ndarray:
        if quantity in ("quadratic", "divergence"):
            return self.sums[quantity + "_x"] + self.sums[quantity + "_g"]
        if quantity not in self.sums:
            raise ValueError(f"quantity must be one of {sorted(set(self.sums) | {'quadratic', 'divergence'})}, "
                             f"got {quantity!r}")
        return self.sums[quantity]

    def per_particle(self, quantity: str = "quadratic") -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self._sum(quantity) / self.count, np.nan)

    def density_weighted(self, quantity: str = "quadratic") -> np.ndarray:
        return self._sum(quantity) / (self.measure * self.n_frames)

    def integral(self, quantity: str = "quadratic") -> float:
        return float(np.sum(self.density_weighted(quantity) * self.measure))

    def std(self, quantity: str = "quadratic") -> np.ndarray:
        """Spread of the per-particle values in each bin (``quantity``: "quadratic" or "divergence")."""
        if quantity not in self.sumsq:
            raise ValueError(f"std is kept for {sorted(self.sumsq)}, got {quantity!r}")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum(quantity) / self.count
            var = self.sumsq[quantity] / self.count - mean**2
            return np.sqrt(np.maximum(var, 0.0) * self.count / np.maximum(self.count - 1, 1))

    def stderr(self, quantity: str = "quadratic") -> np.ndarray:
        """std/√count: the error of ``per_particle`` if the values in a bin were independent (a lower bound for
        correlated snapshots)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.std(quantity) / np.sqrt(self.count)

    def _accumulate(self, index: np.ndarray, inside: np.ndarray, local: LocalEPR, extra: dict) -> None:
        size = self.count.size
        idx = index[inside]
        self.outside += int(np.count_nonzero(~inside))
        shape = self.count.shape

        def add(values):
            return np.bincount(idx, weights=values[inside], minlength=size).reshape(shape)

        self.count += np.bincount(idx, minlength=size).reshape(shape)
        for name in ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g"):
            self.sums[name] += add(local[name])
        for name in ("quadratic", "divergence"):
            self.sumsq[name] += add(local[name] ** 2)
        for name, values in extra.items():
            self.sums[name] += add(values)


def _empty_sums(shape, names) -> dict:
    return {name: np.zeros(shape) for name in names}


@dataclass(eq=False)
class SpatialMap(BinnedField):
    """A square grid of ``bins``² cells over [-half_width, half_width]² (arrays indexed [ix, iy]).

    ``current()``: the probability current of the positions, density × mean v_x per cell, shape (bins, bins, 2)."""

    edges: np.ndarray = field(default=None)
    half_width: float = 0.0

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def current(self) -> np.ndarray:
        return np.stack([self.density_weighted("j_x"), self.density_weighted("j_y")], axis=-1)

    def mean_velocity(self) -> np.ndarray:
        return np.stack([self.per_particle("j_x"), self.per_particle("j_y")], axis=-1)

    @classmethod
    def empty(cls, bins: int, half_width: float, n_frames: int, sigma):
        edges = np.linspace(-half_width, half_width, bins + 1)
        cell = (2 * half_width / bins) ** 2
        names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "j_x", "j_y")
        return cls(np.full((bins, bins), cell), n_frames, np.zeros((bins, bins), dtype=np.int64),
                   _empty_sums((bins, bins), names), _empty_sums((bins, bins), ("quadratic", "divergence")), 0,
                   sigma, edges, half_width)

    def add(self, x: np.ndarray, local: LocalEPR) -> None:
        bins = len(self.edges) - 1
        h = self.half_width
        ij = np.floor((x + h) * (bins / (2 * h))).astype(np.int64)
        inside = np.all((x >= -h) & (x <= h), axis=1)
        ij = np.clip(ij, 0, bins - 1)
        self._accumulate(ij[:, 0] * bins + ij[:, 1], inside, local,
                         {"j_x": local.v_x[:, 0], "j_y": local.v_x[:, 1]})


@dataclass(eq=False)
class RadialProfile(BinnedField):
    """Bins in the distance r = |x| from the trap centre; ``measure`` is the annulus area π (r₂² − r₁²)."""

    edges: np.ndarray = field(default=None)

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @classmethod
    def empty(cls, bins: int, r_max: float, n_frames: int, sigma):
        edges = np.linspace(0.0, r_max, bins + 1)
        area = np.pi * np.diff(edges**2)
        names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "r2")
        return cls(area, n_frames, np.zeros(bins, dtype=np.int64), _empty_sums(bins, names),
                   _empty_sums(bins, ("quadratic", "divergence")), 0, sigma, edges)

    def mean_r2(self) -> np.ndarray:
        """Mean of |x|² over the particles in each bin (to compare with a quadratic exact profile)."""
        return self.per_particle("r2")

    def add(self, x: np.ndarray, local: LocalEPR) -> None:
        bins = len(self.edges) - 1
        r2 = np.einsum("ij,ij->i", x, x)
        r = np.sqrt(r2)
        r_max = self.edges[-1]
        inside = r <= r_max
        idx = np.clip(np.floor(r * (bins / r_max)).astype(np.int64), 0, bins - 1)
        self._accumulate(idx, inside, local, {"r2": r2})


# ------------------------------------------------------------------------------------------- learning-free
@dataclass(eq=False)
class LearningFreeEPR:
    """The learning-free EPR (physics.md §4) from drift and samples alone, no score.

    ε > 0: EPR = E[b·D⁻¹b] + E[∇·b], ∇·b = Σ_i ∇_{x_i}·b_x,i − d N γ (``total``), and the active-work form
    (1/ε) Σ_i E[v0 g_i·b_x,i] (``active_work``); ε = 0: EPR = −E[Σ_i ∇_{x_i}·b_x,i] (``active_work`` None).
    ``per_snapshot``: the total of each snapshot. Unpacks as ``value, stderr = result`` (the total)."""

    system: object
    total: Estimate
    per_particle: Estimate
    active_work: Estimate | None
    active_work_per_particle: Estimate | None
    per_snapshot: np.ndarray = field(repr=False)
    active_work_per_snapshot: np.ndarray | None = field(repr=False)
    n_batches: int

    @property
    def value(self) -> float:
        return self.total.value

    @property
    def stderr(self) -> float:
        return self.total.stderr

    def __iter__(self):
        yield self.value
        yield self.stderr

    def forms_agree(self, n_se: float = 4.0) -> bool | None:
        """Whether the identity and its active-work form agree within ``n_se`` paired standard errors."""
        if self.active_work_per_snapshot is None:
            return None
        diff = _estimate(self.per_snapshot - self.active_work_per_snapshot, self.n_batches, "difference", None)
        return bool(abs(diff.value) <= n_se * diff.stderr) if np.isfinite(diff.stderr) else None

    def __str__(self) -> str:
        n = self.system.n_particles
        lines = [f"learning-free EPR of {self.system!r} over {self.total.n_snapshots} snapshots:",
                 f"  identity     total {self.total:.6g}   per particle {self.per_particle:.6g}"]
        if self.active_work is not None:
            lines.append(f"  active work  total {self.active_work:.6g}   "
                         f"per particle {self.active_work_per_particle:.6g}")
        lines.append(f"  (N = {n}; standard errors by batch means over {self.n_batches} batches)")
        return "\n".join(lines)


def _identity_from_series(system, ident, work, n_batches) -> LearningFreeEPR:
    n = system.n_particles
    total = _estimate(ident, n_batches, "identity", None)
    per = _estimate(ident, n_batches, "identity", None, 1.0 / n)
    aw = awp = None
    if work is not None:
        aw = _estimate(work, n_batches, "active-work", None)
        awp = _estimate(work, n_batches, "active-work", None, 1.0 / n)
    return LearningFreeEPR(system, total, per, aw, awp, ident, work, n_batches)


@contextlib.contextmanager
def _bar(show: bool, total: int, desc: str):
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="snapshot", desc=desc, dynamic_ncols=True) as bar:
        yield bar


def learning_free_epr(system, samples, *, frames=None, n_batches: int | None = None, progress: bool | None = None,
                      n_threads: int = 0) -> LearningFreeEPR:
    """The EPR from the drift and stationary samples alone (physics.md §4), with a batch-means standard error.

    ``samples``: a :class:`~activescore.Trajectory` or a tuple ``(x, g)`` of (F, N, 2) arrays (one (N, 2)
    snapshot is accepted); ``system`` must be the samples' system. ``frames``: a slice or indices selecting
    snapshots (e.g. to drop a burn-in). ``n_batches``: batches for the standard error (default √F). The
    identity fixes the total EPR, not its local split; it needs stationary samples (and converges slowly where
    the drift is large)."""
    system = _check_system(system)
    system, x, g = _samples(samples, system)
    idx = _frames(frames, len(x))
    n_threads = check.integer("n_threads", n_threads, low=0)
    nb = _n_batches(len(idx), n_batches)
    ident = np.empty(len(idx))
    work = np.empty(len(idx)) if system.eps > 0 else None
    show = progress if progress is not None else len(idx) * system.n_particles >= PROGRESS_LIMIT
    with _bar(show, len(idx), f"identity N={system.n_particles}") as bar:
        for k, f in enumerate(idx):
            b_x, div = _drift_terms(system, x[f], g[f], n_threads)
            i_terms, w_terms = _identity_terms(system, g[f], b_x, div)
            ident[k] = i_terms.sum()
            if work is not None:
                work[k] = w_terms.sum()
            if bar is not None:
                bar.update(1)
    return _identity_from_series(system, ident, work, nb)


# ---------------------------------------------------------------------------------------------- the result
@dataclass(eq=False)
class EPRResult:
    """Everything :func:`estimate` measured. Print it (or call :meth:`summary`) for the report.

    Attributes:
        system, sigma: the system and the noise level of the score (0: unsmoothed).
        frames: indices of the snapshots used; n_batches: batches for the standard errors.
        totals: per-snapshot totals over particles, arrays (F,) keyed "quadratic", "quadratic_x", "quadratic_g",
            "divergence", "divergence_x", "divergence_g", "identity" and (ε > 0) "active_work".
        epr, epr_per_particle: form → :class:`Estimate` of the total EPR and the EPR per particle.
        split: form → {"x": Estimate, "g": Estimate} (per particle): each degree of freedom's share.
        identity: the :class:`LearningFreeEPR` on the same snapshots.
        ratio: form → learned / identity (delta-method error from paired batch means).
        difference: form → learned − identity per particle (paired; meaningful also when the EPR is 0).
        local: per-particle fields (:class:`LocalEPR` with a leading snapshot axis), or None if not kept;
            ``local.quadratic[k]`` belongs to the positions ``positions(k)``.
        x: the samples' positions (a reference, all snapshots; ``frames`` selects the ones used).
        map: :class:`SpatialMap`; radial: :class:`RadialProfile` or None.
    """

    system: object
    sigma: float | None
    frames: np.ndarray = field(repr=False)
    n_batches: int
    totals: dict = field(repr=False)
    epr: dict
    epr_per_particle: dict
    split: dict
    identity: LearningFreeEPR
    ratio: dict
    difference: dict
    local: LocalEPR | None = field(repr=False)
    map: SpatialMap | None = field(repr=False)
    radial: RadialProfile | None = field(repr=False)
    x: np.ndarray | None = field(default=None, repr=False)

    def positions(self, index: int) -> np.ndarray:
        """Positions (N, 2) of the ``index``-th snapshot used (``frames[index]`` of the samples)."""
        return self.x[self.frames[index]]

    @property
    def n_snapshots(self) -> int:
        return len(self.frames)

    @property
    def n_particles(self) -> int:
        return self.system.n_particles

    # convenient aliases of the per-particle fields
    def _field(self, name):
        if self.local is None:
            raise ValueError("per-particle fields were not kept (pass keep_fields=True to estimate)")
        return getattr(self.local, name)

    @property
    def v_x(self) -> np.ndarray:
        return self._field("v_x")

    @property
    def v_g(self) -> np.ndarray:
        return self._field("v_g")

    @property
    def quadratic(self) -> np.ndarray:
        """e_i per snapshot and particle, (F, N)."""
        return self._field("quadratic")

    @property
    def divergence(self) -> np.ndarray:
        """c_i per snapshot and particle, (F, N)."""
        return self._field("divergence")

    def consistency(self, form: str = "quadratic") -> float:
        """(learned − identity) in units of its paired standard error (NaN if it cannot be judged)."""
        check.choice("form", form, set(FORMS))
        d = self.difference[form]
        if not np.isfinite(d.stderr):
            return math.nan
        # Floating-point floor: exact scores can make both sides constant (standard error 0).
        scale = max(abs(self.epr_per_particle[form].value), abs(self.identity.per_particle.value), 1e-300)
        return d.value / math.hypot(d.stderr, 1e-9 * scale)

    def consistent(self, form: str = "quadratic", n_se: float = 3.0) -> bool:
        z = self.consistency(form)
        return bool(np.isfinite(z) and abs(z) <= n_se)

    def to_dict(self) -> dict:
        """The numbers (no arrays) as plain Python values, e.g. for JSON."""
        def est(e):
            return None if e is None else {"value": e.value, "stderr": e.stderr, "form": e.form, "sigma": e.sigma}

        return {
            "system": self.system.to_dict(), "sigma": self.sigma, "n_snapshots": self.n_snapshots,
            "n_batches": self.n_batches,
            "epr": {f: est(self.epr[f]) for f in FORMS},
            "epr_per_particle": {f: est(self.epr_per_particle[f]) for f in FORMS},
            "split": {f: {k: est(v) for k, v in self.split[f].items()} for f in FORMS},
            "identity": est(self.identity.total), "identity_per_particle": est(self.identity.per_particle),
            "active_work": est(self.identity.active_work),
            "ratio": {f: est(self.ratio[f]) for f in FORMS},
            "difference_per_particle": {f: est(self.difference[f]) for f in FORMS},
        }

    def summary(self) -> str:
        sys_, n = self.system, self.n_particles
        rule = "=" * 78
        sig = _sigma_text(self.sigma)
        lines = [
            f"Entropy production (k_B per unit time) of {sys_!r}",
            f"  {self.n_snapshots} snapshots, score {sig}; ± = standard error by batch means ({self.n_batches} "
            "batches)",
            "",
            f"  {'form':<12}{'EPR per particle':>28}{'total EPR':>30}",
        ]
        for form in FORMS:
            lines.append(f"  {form:<12}{format(self.epr_per_particle[form], '.5g'):>28}"
                         f"{format(self.epr[form], '.5g'):>30}")
            parts = self.split[form]
            tot = self.epr_per_particle[form].value
            err = self.epr_per_particle[form].stderr
            nonzero = tot != 0 and (not np.isfinite(err) or abs(tot) > 3 * err)
            share = (lambda v: f"{100 * v / tot:.1f}%") if nonzero else (lambda v: "-")
            x_part = (f"x: {format(parts['x'], '.4g')} ({share(parts['x'].value)})" if sys_.eps > 0
                      else "x: - (eps = 0, no x noise)")
            lines.append(f"  {'':<12}  {x_part}   g: {format(parts['g'], '.4g')} ({share(parts['g'].value)})")
        ident = self.identity
        lines += ["", rule, "  LEARNING-FREE CHECK (no score; physics.md §4)", rule]
        what = "E[b·D⁻¹b] + E[∇·b]" if sys_.eps > 0 else "−E[Σ ∇·b_x]"
        lines.append(f"  identity {what:<22}{format(ident.per_particle, '.5g'):>22} per particle"
                     f"   {format(ident.total, '.5g')} total")
        if ident.active_work is not None:
            lines.append(f"  active work (1/ε)Σ v0 g·b_x    {format(ident.active_work_per_particle, '.5g'):>22} per "
                         f"particle   {format(ident.active_work, '.5g')} total")
        for form in FORMS:
            r = self.ratio[form]
            z = self.consistency(form)
            if not np.isfinite(z):
                verdict = "cannot judge (need >= 2 snapshots)"
            elif abs(z) <= 3:
                verdict = f"consistent ({z:+.1f} s.e.)"
            else:
                verdict = f"!!! INCONSISTENT: {z:+.1f} standard errors from the identity !!!"
            zero = abs(ident.total.value) <= 3 * ident.total.stderr if np.isfinite(ident.total.stderr) else False
            ratio = "n/a (identity ~ 0)" if zero or not np.isfinite(r.value) else f"{r:.4g}"
            lines.append(f"  learned/identity, {form:<10} {ratio:>24}   {verdict}")
        if self.sigma:
            lines.append(f"  note: the score is σ-smoothed ({sig}); a bias of the learned EPR is expected "
                         "(physics.md §6)")
        lines.append(rule)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------- front door
def estimate(score, samples, *, system=None, frames=None, n_batches: int | None = None,
             keep_fields: bool | None = None, bins: int = 64, extent: float | None = None,
             radial_bins: int | None = None, r_max: float | None = None, score_kwargs: dict | None = None,
             transfer: bool = False, progress: bool | None = None, n_threads: int = 0) -> EPRResult:
    """Velocities, local and total entropy production from ``score`` on stationary ``samples`` (physics.md §4),
    and the learning-free identity on the same snapshots.

    Args:
        score: an object following the score protocol (see the module doc), e.g. a trained
            :class:`activescore.learning.Score` or :class:`activescore.exact.GaussianScore`.
        samples: a :class:`~activescore.Trajectory` or a tuple ``(x, g)`` of (F, N, 2) arrays (wrapped positions).
        system: the samples' system (default: the trajectory's, else the score's). The score must belong to it.
        frames: a slice or indices of the snapshots to use (e.g. ``slice(100, None)`` to drop a burn-in).
        n_batches: batches for the batch-means standard errors (default √F; batches should be longer than the
            correlation time of the snapshots).
        keep_fields: keep v and the local EPRs of every snapshot and particle in ``result.local`` (default: when
            F·N ≤ 2²² particle-snapshots; totals and maps are always accumulated on the fly, so memory stays
            bounded).
        bins: grid cells per side of ``result.map``; ``extent``: its half width (default: half the box when
            untrapped, else the farthest particle coordinate).
        radial_bins, r_max: radial profile (default: 32 bins out to the farthest particle for trapped systems,
            none otherwise).
        score_kwargs: extra keyword arguments for every score call (e.g. ``{"sigma": 0.01}`` for a σ-conditioned
            network; that σ then labels the numbers).
        transfer: allow a score learned at another N / box size with the same dynamics (the score must accept
            ``box_length=``).
        progress: tqdm bar (default: for long runs). n_threads: threads of the drift kernels (0: all).

    Returns:
        :class:`EPRResult`; ``print(result)`` shows the totals beside the learning-free identity.
    """
    system, x, g = _samples(samples, system if system is not None else
                            (None if hasattr(samples, "system") else getattr(score, "system", None)))
    bound = _BoundScore(score, system, score_kwargs, transfer)
    idx = _frames(frames, len(x))
    n_threads = check.integer("n_threads", n_threads, low=0)
    n_frames, n = len(idx), system.n_particles
    nb = _n_batches(n_frames, n_batches)
    bins = check.integer("bins", bins, low=1)
    if keep_fields is None:
        keep_fields = n_frames * n <= KEEP_FIELDS_LIMIT
    sigma = bound.sigma

    reach = float(np.max(np.abs(x[idx]))) if system.trap > 0 else system.box_length / 2
    half = system.box_length / 2 if extent is None else check.real("extent", extent, low=0.0, low_open=True)
    if extent is None and system.trap > 0:
        half = min(half, reach * (1 + 1e-12) + 1e-300)
    grid = SpatialMap.empty(bins, half, n_frames, sigma)
    radial = None
    if radial_bins is not None or (system.trap > 0 and r_max is None) or r_max is not None:
        nr = 32 if radial_bins is None else check.integer("radial_bins", radial_bins, low=1)
        if r_max is None:
            r_max = float(np.sqrt(np.max(np.einsum("fij,fij->fi", x[idx], x[idx])))) * (1 + 1e-12) + 1e-300
        else:
            r_max = check.real("r_max", r_max, low=0.0, low_open=True)
        radial = RadialProfile.empty(nr, r_max, n_frames, sigma)

    names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "identity")
    totals = {name: np.empty(n_frames) for name in names}
    work = np.empty(n_frames) if system.eps > 0 else None
    kept = None
    if keep_fields:
        kept = LocalEPR(np.empty((n_frames, n, 2)), np.empty((n_frames, n, 2)),
                        *(np.zeros((n_frames, n)) for _ in range(5)), np.empty((n_frames, n)) if work is not None
                        else None, sigma)

    show = progress if progress is not None else n_frames * n >= PROGRESS_LIMIT
    with _bar(show, n_frames, f"estimate N={n}") as bar:
        for k, f in enumerate(idx):
            loc = _local(system, bound, x[f], g[f], n_threads)
            for name in names:
                totals[name][k] = getattr(loc, name).sum()
            if work is not None:
                work[k] = loc.active_work.sum()
            grid.add(x[f], loc)
            if radial is not None:
                radial.add(x[f], loc)
            if kept is not None:
                for name in ("v_x", "v_g") + names:
                    getattr(kept, name)[k] = getattr(loc, name)
                if work is not None:
                    kept.active_work[k] = loc.active_work
            if bar is not None:
                bar.update(1)

    totals["quadratic"] = totals["quadratic_x"] + totals["quadratic_g"]
    totals["divergence"] = totals["divergence_x"] + totals["divergence_g"]
    if work is not None:
        totals["active_work"] = work
    identity = _identity_from_series(system, totals["identity"], work, nb)
    epr, per, split, ratio, diff = {}, {}, {}, {}, {}
    for form in FORMS:
        epr[form] = _estimate(totals[form], nb, form, sigma)
        per[form] = _estimate(totals[form], nb, form, sigma, 1.0 / n)
        split[form] = {part: _estimate(totals[f"{form}_{part}"], nb, form, sigma, 1.0 / n) for part in ("x", "g")}
        ratio[form] = _ratio(totals[form], totals["identity"], nb, f"{form}/identity", sigma)
        diff[form] = _estimate(totals[form] - totals["identity"], nb, f"{form}-identity", sigma, 1.0 / n)
    return EPRResult(system, sigma, idx, nb, totals, epr, per, split, identity, ratio, diff, kept, grid, radial, x)
