"""The model-free EPR: the probability-flow velocity learned from consecutive frames by one linear solve
(physics.md §8).

For frames z, z' a time Δt apart, the Stratonovich loss over the noisy coordinates

    L(v) = E[ Δt v(z')·D⁻¹v(z') − (v(z) + v(z'))·D⁻¹(z' − z) ] = Δt E|v − v*|²_{D⁻¹} − Δt E|v*|²_{D⁻¹} + O(Δt²)

is minimised by the probability-flow velocity v* = b − D s, and EPR = E[v*·D⁻¹v*]. With v = Σ_k c_k φ_k on the
model-free features of :mod:`.features` the loss is quadratic in c: each noisy block (positions, propulsion) is one
linear solve A c = r/Δt with A = E Σ_i ½(φ_i(z)φ_i(z)ᵀ + φ_i(z')φ_i(z')ᵀ), r = E Σ_i ½(φ_i(z) + φ_i(z'))·(z'_i − z_i).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from ..estimation.statistics import Estimate, n_batches_for, series_estimate
from .features import PAIR_FAMILIES, FeatureSet, NeighbourSearch, default_cutoff
from .tracks import Tracks, as_tracks

#: MSD(2Δt)/MSD(Δt) above this means the positions move nearly ballistically between frames (2: diffusive,
#: 4: smooth, as without translational noise).
BALLISTIC_RATIO = 3.5
#: A block whose increments are less than this share noise (2 D̂ Δt per component over the mean square increment)
#: is taken to carry none: its fitted drift explains the rest.
NOISE_SHARE = 0.01
#: Angles turning by more than this (radians, root mean square) between frames cannot be followed (or are degrees).
ANGLE_STEP = 1.0
#: Warn when the frame spacing times the fitted velocity's decorrelation rate exceeds this (bias ~ λΔt/2).
WARN_RATE = 0.1
#: Ridge added to the diagonal of the column-normalised normal equations.
RIDGE = 1e-8
#: Tent functions of the radial basis of the pair features.
N_RADIAL = 8
BLOCKS = ("x", "g")
#: The decorrelation of the fitted velocity (the λΔt check) is measured on about this many frame pairs (all of
#: them when there are fewer): enough for a rate (each pair holds every particle), at little cost.
CROSS_PAIRS = 64
#: Frame features kept for the second pass (per-particle fields) up to this many bytes.
CACHE_BYTES = 256 << 20


def frame_pairs(frames: np.ndarray, lag: int) -> np.ndarray:
    """Index pairs (k, k') of frames whose numbers differ by ``lag``, not overlapping: starts at frame numbers
    frames[0], frames[0] + lag, … (a lag-times-sparser movie), shape (P, 2)."""
    position = {int(f): k for k, f in enumerate(frames)}
    pairs = [
        (k, position[int(f) + lag])
        for k, f in enumerate(frames)
        if (int(f) - int(frames[0])) % lag == 0 and int(f) + lag in position
    ]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def mean_square_step(tracks: Tracks, lag: int) -> float:
    """Mean |x(t + lag) − x(t)|² over the tracks present in both frames (NaN without such pairs)."""
    total, count = 0.0, 0
    for k0, k1 in frame_pairs(tracks.frames, lag):
        rows = np.flatnonzero(tracks.present[k0] & tracks.present[k1])
        d = block_increment(tracks, "x", k0, k1, rows)
        total += float(np.einsum("nc,nc->", d, d))
        count += len(rows)
    return total / count if count else math.nan


def block_increment(tracks: Tracks, block: str, k0: int, k1: int, rows: np.ndarray) -> np.ndarray:
    """z'_i − z_i of one block for the tracks ``rows`` between frames k0 and k1: (n, 2) or (n, 1) for an angle
    (wrapped into (−π, π]); positions by the minimum image in a periodic box."""
    if block == "x":
        d = tracks.x[k1, rows] - tracks.x[k0, rows]
        if tracks.box_length is not None:
            d -= tracks.box_length * np.round(d / tracks.box_length)
        return d
    if tracks.angle is not None:
        d = tracks.angle[k1, rows] - tracks.angle[k0, rows]
        return (d - 2 * np.pi * np.round(d / (2 * np.pi)))[:, None]
    assert tracks.propulsion is not None
    return tracks.propulsion[k1, rows] - tracks.propulsion[k0, rows]


def orientation(tracks: Tracks, k: int, rows: np.ndarray) -> np.ndarray | None:
    """The propulsion p of the tracks ``rows`` in frame k: g, or (cos θ, sin θ); None for positions alone."""
    if tracks.propulsion is not None:
        return tracks.propulsion[k, rows]
    if tracks.angle is not None:
        theta = tracks.angle[k, rows]
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return None


def solve_normal(gram: np.ndarray, rhs: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, float]:
    """``(c, effective parameters)`` of (A + ridge) c = r, with A's columns normalised first (the features have very
    different scales); a column that never saw data gets 0."""
    diag = np.diag(gram).copy()
    used = diag > 1e-300 * max(float(diag.max(initial=0.0)), 1e-300)
    c = np.zeros(len(rhs))
    if not used.any():
        return c, 0.0
    scale = np.sqrt(diag[used])
    a = gram[np.ix_(used, used)] / np.outer(scale, scale)
    regularised = a + ridge * np.eye(len(a))
    y = np.linalg.solve(regularised, rhs[used] / scale)
    c[used] = y / scale
    effective = float(np.trace(np.linalg.solve(regularised, a)))
    return c, effective


def trace_of_solve(gram: np.ndarray, other: np.ndarray, ridge: float = RIDGE) -> float:
    """tr(A⁻¹ B) with A's columns normalised as in :func:`solve_normal` (unused columns left out)."""
    diag = np.diag(gram).copy()
    used = diag > 1e-300 * max(float(diag.max(initial=0.0)), 1e-300)
    if not used.any():
        return 0.0
    scale = np.sqrt(diag[used])
    a = gram[np.ix_(used, used)] / np.outer(scale, scale)
    b = other[np.ix_(used, used)] / np.outer(scale, scale)
    return float(np.trace(np.linalg.solve(a + ridge * np.eye(len(a)), b)))


@dataclass
class _Moments:
    """Sums over the frame pairs of one batch and one block (module docstring)."""

    gram: np.ndarray  # Σ ½(ΦᵀΦ + Φ'ᵀΦ')
    rhs: np.ndarray  # Σ ½(Φ + Φ')ᵀ Δz
    gram_start: np.ndarray  # Σ ΦᵀΦ (Itô: the drift fit)
    rhs_start: np.ndarray  # Σ Φᵀ Δz
    cross: (
        np.ndarray
    )  # Σ ΦᵀΦ' over a regular subset of the pairs (CROSS_PAIRS) (the velocity's decorrelation over one pair)
    square: float = 0.0  # Σ |Δz|²
    n_values: int = 0  # particle-components
    n_particles: int = 0  # particle-pairs
    n_pairs: int = 0
    n_cross: int = 0  # pairs in ``cross``
    cross_particles: int = 0  # particle-pairs in ``cross``

    @classmethod
    def zeros(cls, p: int) -> _Moments:
        return cls(np.zeros((p, p)), np.zeros(p), np.zeros((p, p)), np.zeros(p), np.zeros((p, p)))

    def add(self, frame0: tuple, frame1: tuple, dz: np.ndarray, with_cross: bool) -> None:
        """One pair: ``frame0``, ``frame1`` = (transposed features (p, rows), their Gram) at z and z'."""
        from .moments import add_cross

        (mt0, g0), (mt1, g1) = frame0, frame1
        d = np.ascontiguousarray(dz.reshape(-1), dtype=np.float64)
        self.gram_start += g0
        self.gram += 0.5 * (g0 + g1)
        r0, r1 = mt0 @ d, mt1 @ d
        self.rhs += 0.5 * (r0 + r1)
        self.rhs_start += r0
        if with_cross:
            add_cross(mt0, mt1, self.cross)
            self.n_cross += 1
            self.cross_particles += len(dz)
        self.square += float(d @ d)
        self.n_values += len(d)
        self.n_particles += len(dz)
        self.n_pairs += 1

    def __iadd__(self, other: _Moments) -> _Moments:
        for name in ("gram", "rhs", "gram_start", "rhs_start", "cross"):
            getattr(self, name).__iadd__(getattr(other, name))
        self.square += other.square
        self.n_values += other.n_values
        self.n_particles += other.n_particles
        self.n_pairs += other.n_pairs
        self.n_cross += other.n_cross
        self.cross_particles += other.cross_particles
        return self


class PairFeatures:
    """The transposed features and Gram matrix of one frame restricted to a pair's rows, reused by the next pair
    when it starts from the same frame with the same particles (a frame's Gram is then computed once)."""

    def __init__(self):
        self.last: dict[str, tuple] = {}

    def __call__(self, block: str, k: int, rows: np.ndarray, phi_all: np.ndarray, slot: np.ndarray) -> tuple:
        from .moments import gram, transposed

        key = self.last.get(block)
        if key is not None and key[0] == k and np.array_equal(key[1], rows):
            return key[2]
        picked = slot[rows]
        # Every particle of the frame in its order (the common case): no copy before the transpose.
        whole = len(picked) == len(phi_all) and bool(np.all(picked == np.arange(len(picked))))
        mt = transposed(phi_all if whole else phi_all[picked])
        value = (mt, gram(mt))
        self.last[block] = (k, rows, value)
        return value


@dataclass(eq=False)
class ModelFreeEPR:
    """What :func:`estimate_model_free` measured. Print it (or call :meth:`summary`) for the report.

    Attributes
    ----------
    epr, epr_per_particle : Estimate
        The EPR (k_B per ``time_unit``) of the whole system (per particle × mean particle count) and per
        particle, with batch-means standard errors, after the overfitting correction (``correction``).
    split : dict
        ``{"x": Estimate, "g": Estimate}`` per particle: the positions' and the propulsion's shares ("g" is θ for
        angles; a block without noise or not observed is absent).
    diffusion : dict
        Block → the diffusion coefficient used (D of that block, D_x = ε for positions); ``diffusion_estimated``:
        block → whether it was estimated from the increments.
    frame_interval, lag, dt : float, int, float
        The tracks' frame interval, the lag in frames, and Δt = lag × frame_interval of the pairs used.
    relaxation_rate : float
        λ: the rate at which the fitted velocity decorrelates between frames; the estimate's bias is O(λΔt).
    warning : str or None
        The one-line warning given when λΔt > ``warn_rate``.
    correction : dict
        Block → the overfitting correction subtracted per particle, 2 p_eff / (P N Δt) (p_eff fitted parameters,
        P frame pairs, N particles per pair; physics.md §8).
    coefficients, drift_coefficients : dict
        Block → the fitted velocity (and Itô drift) coefficients on ``feature_names[block]``.
    n_pairs, n_batches, mean_particles : int, int, float
        Frame pairs used, batches of the standard errors, mean particles per pair in the fit.
    quadratic : ndarray, shape (P, M), or None
        Per pair and track, e_i = Σ_blocks v_i·D⁻¹v_i at the first frame of the pair (NaN where the track is not
        in the fit); ``velocity[block]`` (P, M, 2) or (P, M, 1); ``positions`` (P, M, 2) the first frame's
        positions. None when the fields were not kept (``keep_fields``).
    """

    tracks: Tracks = field(repr=False)
    epr: Estimate
    epr_per_particle: Estimate
    split: dict
    diffusion: dict
    diffusion_estimated: dict
    frame_interval: float
    lag: int
    dt: float
    relaxation_rate: float
    warning: str | None
    correction: dict
    coefficients: dict = field(repr=False)
    drift_coefficients: dict = field(repr=False)
    feature_names: dict = field(repr=False)
    cutoff: float
    n_pairs: int
    n_batches: int
    mean_particles: float
    quadratic: np.ndarray | None = field(default=None, repr=False)
    velocity: dict | None = field(default=None, repr=False)
    positions: np.ndarray | None = field(default=None, repr=False)

    def per_particle_map(self, bins: int = 16, bounds=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The mean of e_i over the particle-snapshots in each cell of a ``bins`` × ``bins`` grid.

        Returns ``(mean, count, x_edges, y_edges)``: mean (bins, bins) (NaN in empty cells; index [ix, iy]),
        particle-snapshots per cell, and the edges (``bounds`` = (xmin, xmax, ymin, ymax), default: the box or the
        data's range)."""
        if self.quadratic is None or self.positions is None:
            raise ValueError("per-particle fields were not kept (pass keep_fields=True to estimate_model_free)")
        bins = check.integer("bins", bins, low=1)
        ok = np.isfinite(self.quadratic)
        pos, val = self.positions[ok], self.quadratic[ok]
        if bounds is None:
            if self.tracks.box_length is not None:
                half = self.tracks.box_length / 2
                bounds = (-half, half, -half, half)
            else:
                bounds = (pos[:, 0].min(), pos[:, 0].max(), pos[:, 1].min(), pos[:, 1].max())
        edges = (np.linspace(bounds[0], bounds[1], bins + 1), np.linspace(bounds[2], bounds[3], bins + 1))
        count, xe, ye = np.histogram2d(pos[:, 0], pos[:, 1], bins=edges)
        total, _, _ = np.histogram2d(pos[:, 0], pos[:, 1], bins=edges, weights=val)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        return mean, count, xe, ye

    def summary(self) -> str:
        unit = f" per {self.tracks.time_unit}" if self.tracks.time_unit else " per unit time"
        rule = "=" * 78
        lines = [
            f"Model-free entropy production (k_B{unit}) of {self.tracks!r}",
            f"  {self.n_pairs} frame pairs Δt = {self.dt:g} apart (lag {self.lag} × {self.frame_interval:g}), "
            f"{self.mean_particles:.1f} particles per pair; ± = standard error by batch means ({self.n_batches} "
            "batches)",
            f"  EPR per particle {format(self.epr_per_particle, '.5g'):>26}      total {format(self.epr, '.5g')}",
        ]
        value = self.epr_per_particle.value
        parts = []
        for block, est in self.split.items():
            share = f" ({100 * est.value / value:.1f}%)" if value > 3 * self.epr_per_particle.stderr else ""
            name = "θ" if block == "g" and self.tracks.angle is not None else block
            parts.append(f"{name}: {format(est, '.4g')}{share}")
        lines.append("    " + "   ".join(parts))
        dif = []
        for block, d in self.diffusion.items():
            name = "θ" if block == "g" and self.tracks.angle is not None else block
            how = "estimated from the increments" if self.diffusion_estimated[block] else "given"
            dif.append(f"D_{name} = {d:.5g} ({how})")
        lines.append("  " + "; ".join(dif))
        n_features = " + ".join(str(len(self.feature_names[b])) for b in self.diffusion)
        correction = sum(self.correction.values())
        lines.append(
            f"  velocity linear in {n_features} model-free features (pair cutoff {self.cutoff:.4g}); "
            f"overfitting correction −{correction:.3g} per particle"
        )
        rate = self.relaxation_rate
        lines.append(
            f"  fitted velocity decorrelates at λ = {rate:.4g}: λΔt = {rate * self.dt:.3g} (bias O(λΔt), physics.md §8)"
        )
        if self.warning:
            lines += [rule, "  !!! " + self.warning, rule]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """The numbers (no arrays) as plain Python values, e.g. for JSON."""

        def est(e: Estimate) -> dict:
            return {"value": e.value, "stderr": e.stderr}

        return {
            "epr": est(self.epr),
            "epr_per_particle": est(self.epr_per_particle),
            "split": {b: est(e) for b, e in self.split.items()},
            "diffusion": dict(self.diffusion),
            "diffusion_estimated": dict(self.diffusion_estimated),
            "dt": self.dt,
            "lag": self.lag,
            "relaxation_rate": self.relaxation_rate,
            "correction": dict(self.correction),
            "n_pairs": self.n_pairs,
            "mean_particles": self.mean_particles,
            "cutoff": self.cutoff,
        }


def _diffusion_spec(diffusion, blocks: list[str]) -> dict[str, float | None]:
    """Block → a given D (float ≥ 0) or None (estimate)."""
    if isinstance(diffusion, str):
        check.choice("diffusion", diffusion, {"estimate"})
        return {b: None for b in blocks}
    if isinstance(diffusion, Mapping):
        unknown = set(diffusion) - set(blocks)
        if unknown:
            raise ValueError(f"diffusion keys must be among {blocks} for these tracks, got {sorted(unknown)}")
        spec: dict[str, float | None] = {}
        for b in blocks:
            value = diffusion.get(b, "estimate")
            if isinstance(value, str):
                check.choice(f"diffusion[{b!r}]", value, {"estimate"})
                spec[b] = None
            else:
                spec[b] = check.real(f"diffusion[{b!r}]", value, low=0.0)
        return spec
    value = check.real("diffusion", diffusion, low=0.0, low_open=True)
    return {b: value for b in blocks}


class FrameCache:
    """The features of the frames asked for: every frame's are used by two pairs and again for the per-particle
    fields, so they are kept up to ``budget`` bytes (then only the last two frames are)."""

    def __init__(
        self,
        tracks: Tracks,
        features: FeatureSet,
        search: NeighbourSearch,
        propulsion: bool | None = None,
        budget: int | None = None,
    ):
        self.tracks, self.features, self.search, self.propulsion = tracks, features, search, propulsion
        self.store: dict[int, tuple[np.ndarray, dict]] = {}
        self.budget, self.size = CACHE_BYTES if budget is None else budget, 0
        self.evicted = False

    def __call__(self, k: int) -> tuple[np.ndarray, dict]:
        """``(slot, features)``: slot (M,) the row of each track in this frame's arrays (−1 if absent)."""
        if k not in self.store:
            present = np.flatnonzero(self.tracks.present[k])
            slot = np.full(self.tracks.n_tracks, -1, dtype=np.int64)
            slot[present] = np.arange(len(present))
            x = self.tracks.x[k, present]
            value = self.features.frame(x, orientation(self.tracks, k, present), self.search, self.propulsion)
            self.store[k] = (slot, value)
            self.size += sum(v.nbytes for v in value.values())
            while self.size > self.budget and len(self.store) > 2:
                oldest = next(iter(self.store))  # the first inserted (never k, the last)
                self.evicted = True
                self.size -= sum(v.nbytes for v in self.store.pop(oldest)[1].values())
        return self.store[k]


def pair_rows(tracks: Tracks, k0: int, k1: int, margin: float) -> np.ndarray:
    """Tracks present in both frames (and, in a field of view, farther than ``margin`` from its edge in the
    first frame, where all their neighbours within the cutoff are seen)."""
    rows = np.flatnonzero(tracks.present[k0] & tracks.present[k1])
    if tracks.field_of_view is not None and len(rows):
        x0, x1, y0, y1 = tracks.field_of_view
        x = tracks.x[k0, rows]
        inside = (x[:, 0] >= x0 + margin) & (x[:, 0] <= x1 - margin) & (x[:, 1] >= y0 + margin)
        inside &= x[:, 1] <= y1 - margin
        rows = rows[inside]
    return rows


def setup(
    tracks: Tracks,
    lag: int,
    cutoff,
    n_radial: int,
    external: bool,
    n_threads: int,
    propulsion=None,
    families=PAIR_FAMILIES,
):
    """The pairs, the feature set and the neighbour search shared by the model-free estimators."""
    lag = check.integer("lag", lag, low=1)
    n_radial = check.integer("n_radial", n_radial, low=1)
    n_threads = check.integer("n_threads", n_threads, low=0)
    families = tuple(families)
    unknown = [f for f in families if f not in (*PAIR_FAMILIES, "radial_perp")]
    if unknown:
        raise ValueError(f"pair_features must be among {list(PAIR_FAMILIES)}, got {unknown}")
    pairs = frame_pairs(tracks.frames, lag)
    if len(pairs) == 0:
        raise ValueError(f"no two frames are lag = {lag} frame numbers apart in these tracks")
    if cutoff is None:
        sample = np.unique(np.linspace(0, tracks.n_frames - 1, min(5, tracks.n_frames)).astype(int))
        cutoff = default_cutoff([tracks.x[k, tracks.present[k]] for k in sample], tracks.box_length, n_threads)
    else:
        cutoff = check.real("cutoff", cutoff, low=0.0, low_open=True)
        if tracks.box_length is not None and cutoff > tracks.box_length / 2:
            raise ValueError(
                f"cutoff must be in (0, L/2 = {tracks.box_length / 2:g}] in a periodic box, got {cutoff!r}"
            )
    origin = np.nanmean(tracks.x[tracks.present], axis=0) if tracks.box_length is None else np.zeros(2)
    kind = tracks.kind if propulsion is not False else "positions"
    features = FeatureSet(kind, float(cutoff), n_radial, bool(external), (float(origin[0]), float(origin[1])), families)
    search = NeighbourSearch(float(cutoff), tracks.box_length, n_threads)
    return pairs, features, search, float(cutoff)


def estimate_model_free(
    tracks,
    *,
    diffusion="estimate",
    lag: int = 1,
    cutoff: float | None = None,
    n_radial: int = N_RADIAL,
    external: bool = True,
    n_batches: int | None = None,
    keep_fields: bool | None = None,
    warn_rate: float = WARN_RATE,
    n_threads: int = 0,
    pair_features=PAIR_FAMILIES,
) -> ModelFreeEPR:
    """The EPR of tracked particles from their trajectories alone: no drift, no model (physics.md §8).

    The probability-flow velocity v* = b − D s of each noisy block is fitted to consecutive frames by the
    Stratonovich loss with v linear in model-free features (own propulsion, an affine external field, pair terms on
    a radial basis with direction and neighbours' orientation): one linear solve per block. EPR = E[v·D⁻¹v] over
    the noisy blocks, with batch-means standard errors and the overfitting correction 2 p/(P Δt) (p fitted
    parameters, P frame pairs) subtracted. Exact as Δt → 0 when v* lies in the features' span; otherwise a lower
    bound (the projection of v*). The frame spacing biases it by O(λΔt): a warning is given when λΔt > ``warn_rate``.

    Parameters
    ----------
    tracks : Tracks or Trajectory
        Consecutive frames: positions with an observed propulsion vector (AOUP-like: noisy blocks x and g), with an
        observed angle (ABP-like: x and θ), or positions alone (x; overdamped with translational noise, the
        state being the positions).
    diffusion : "estimate", float or dict
        "estimate" (default): every block's D from the increments, ⟨|Δz − Δt b̂(z)|²⟩ / (2 d Δt) with b̂ the Itô
        drift fitted on the same features (removing the drift's O(Δt) share). A number: that D for every block.
        A dict ``{"x": …, "g": …}`` per block, each a number or "estimate"; 0 declares a block noiseless (e.g.
        ``{"x": 0}`` for AOUPs with ε = 0), which then carries no EPR.
    lag : int
        Use frames ``lag`` frame numbers apart (Δt = lag × frame_interval), not overlapping: the bias rows.
    cutoff : float, optional
        Range of the pair features (default: 2.5 × the median nearest-neighbour distance).
    n_radial : int
        Tent functions on [0, cutoff] of the pair features.
    external : bool
        Include the affine external-field features (a trap anywhere; a uniform field is always included).
    n_batches : int, optional
        Batches of frame pairs for the standard errors (default √P).
    keep_fields : bool, optional
        Keep the per-particle EPR and velocities (``quadratic``, ``velocity``, ``positions``): a second pass over the
        frames, which costs nothing more when their features fit in ``CACHE_BYTES`` (256 MiB) and recomputes them
        otherwise. Default: only in the first case.
    warn_rate : float
        Warn when λΔt exceeds this (λ: the fitted velocity's decorrelation rate between frames).
    n_threads : int
        Threads of the neighbour search (0: all).
    pair_features : tuple of str
        The pair terms linear in the propulsions, among ``PAIR_FAMILIES`` ("align", "shell", "push",
        "push_neighbour"; all by default). The radial pair term Σ_j B_k r̂_ij is always used.

    Returns
    -------
    ModelFreeEPR
    """
    tracks = as_tracks(tracks)
    warn_rate = check.real("warn_rate", warn_rate, low=0.0, low_open=True)
    pairs, features, search, cutoff = setup(tracks, lag, cutoff, n_radial, external, n_threads, families=pair_features)
    blocks = ["x"] if tracks.kind == "positions" else ["x", "g"]
    given = _diffusion_spec(diffusion, blocks)
    noisy = [b for b in blocks if (given[b] or 0.0) > 0 or given[b] is None]
    if not noisy:
        raise ValueError("diffusion declares every block noiseless: there is no entropy production to estimate")
    if tracks.kind == "positions" and given["x"] is None:
        ratio = mean_square_step(tracks, 2 * int(lag)) / mean_square_step(tracks, int(lag))
        if ratio > BALLISTIC_RATIO:
            warnings.warn(
                f"the positions move nearly ballistically between frames (MSD(2Δt)/MSD(Δt) = {ratio:.2f} > "
                f"{BALLISTIC_RATIO:g}): with a hidden propulsion they are not the state and this is no EPR; use "
                "tur_lower_bound (physics.md §8)",
                stacklevel=2,
            )
    names = {
        "x": features.vector_names(),
        "g": features.angle_names() if tracks.kind == "angle" else features.vector_names(),
    }
    which = {"x": "vector", "g": "angle" if tracks.kind == "angle" else "vector"}
    n_pairs = len(pairs)
    nb = n_batches_for(n_pairs, n_batches)
    batch_of = (np.arange(n_pairs) * nb) // n_pairs
    moments = {b: [_Moments.zeros(len(names[b])) for _ in range(nb)] for b in noisy}
    cache = FrameCache(tracks, features, search)
    dt = tracks.frame_interval * int(lag)
    frames = PairFeatures()
    cross_every = max(1, n_pairs // CROSS_PAIRS)
    for p, (k0, k1) in enumerate(pairs):
        rows = pair_rows(tracks, k0, k1, cutoff)
        if len(rows) == 0:
            continue
        slot0, f0 = cache(k0)
        slot1, f1 = cache(k1)
        for b in noisy:
            # The end frame's features are computed last, so the next pair finds them as its start.
            start = frames(b, k0, rows, f0[which[b]], slot0)
            end = frames(b, k1, rows, f1[which[b]], slot1)
            increment = block_increment(tracks, b, k0, k1, rows)
            moments[b][batch_of[p]].add(start, end, increment, with_cross=p % cross_every == 0)
    totals = {}
    for b in noisy:
        total = _Moments.zeros(len(names[b]))
        for m in moments[b]:
            total += m
        totals[b] = total
    n_used = totals[noisy[0]].n_pairs
    if n_used == 0:
        raise ValueError("no particle is present in both frames of any pair (or inside the field of view)")
    mean_particles = totals[noisy[0]].n_particles / n_used
    if tracks.angle is not None and "g" in totals:
        turn = math.sqrt(totals["g"].square / max(totals["g"].n_values, 1))
        if turn > ANGLE_STEP:
            warnings.warn(
                f"the angles turn by {turn:.2f} rad (root mean square) between frames, more than {ANGLE_STEP:g}: "
                "degrees read as radians (angle_unit='deg')? or frames too far apart to follow the orientation",
                stacklevel=2,
            )
    coefficients, drift, diff, estimated, correction, series, rates = {}, {}, {}, {}, {}, {}, {}
    for b in noisy:
        t = totals[b]
        c, p_eff = solve_normal(t.gram, t.rhs)
        c /= dt
        cb, _ = solve_normal(t.gram_start, t.rhs_start)
        cb /= dt
        coefficients[b], drift[b] = c, cb
        if given[b] is None:
            residual = t.square - 2 * dt * cb @ t.rhs_start + dt * dt * cb @ t.gram_start @ cb
            diff[b] = max(float(residual / (2 * dt * t.n_values)), 0.0)
            estimated[b] = True
            share = 2 * diff[b] * dt * t.n_values / t.square if t.square > 0 else 0.0
            if share < NOISE_SHARE:
                warnings.warn(
                    f"the increments of block {b!r} are {100 * (1 - share):.1f} % drift (noise share {share:.2g} < "
                    f"{NOISE_SHARE:g}): it carries no noise at this Δt; declare diffusion={{{b!r}: 0}} (e.g. ε = 0), "
                    "or with the propulsion hidden use tur_lower_bound (physics.md §8)",
                    stacklevel=2,
                )
            if diff[b] == 0:
                raise ValueError(
                    f"block {b!r} shows no noise in its increments: declare it with diffusion={{{b!r}: 0}}"
                )
        else:
            diff[b] = float(given[b] or 0.0)
            estimated[b] = False
        # Per batch, the influence-function form of the EPR, (2 c·r/Δt − cᵀAc)/D: its mean is cᵀĀc/D at the
        # minimiser, and its batch spread carries the fit's own noise (physics.md §8).
        values = []
        for m in moments[b]:
            if m.n_particles == 0:
                continue
            values.append((2 * c @ m.rhs / dt - c @ m.gram @ c) / (diff[b] * m.n_particles))
        series[b] = np.asarray(values)
        correction[b] = 2 * p_eff / (n_used * dt * mean_particles)
        # The fit's noise δc (covariance 2D A⁻¹/Δt) decorrelates as fast as the noise it was fitted to: its expected
        # share of both forms is removed, so that λ is the rate of the velocity, not of the fit's noise.
        # The cross sums cover a subset of the pairs: scaled to all of them.
        cross = 0.5 * (t.cross + t.cross.T) * (t.n_particles / max(t.cross_particles, 1))
        noise = 2 * diff[b] / dt
        quadratic = c @ t.gram @ c - noise * p_eff
        overlap = c @ cross @ c - noise * trace_of_solve(t.gram, cross)
        rates[b] = -math.log(overlap / quadratic) / dt if quadratic > 0 and overlap > 0 else math.inf
    length = min(len(s) for s in series.values())
    split = {}
    for b in noisy:
        est = series_estimate(series[b][:length], length, "model-free", None)
        split[b] = Estimate(est.value - correction[b], est.stderr, "model-free", None, n_used)
    total_series = sum(series[b][:length] for b in noisy)
    per = series_estimate(total_series, length, "model-free", None)
    per = Estimate(per.value - sum(correction.values()), per.stderr, "model-free", None, n_used)
    epr = Estimate(per.value * mean_particles, per.stderr * mean_particles, "model-free", None, n_used)
    significant = [b for b in noisy if split[b].value > 3 * split[b].stderr] or noisy
    rate = max(rates[b] for b in significant)
    warning = None
    if rate * dt > warn_rate:
        warning = (
            f"frame spacing Δt = {dt:g} is long: the fitted velocity decorrelates at λ = {rate:.3g}, λΔt = "
            f"{rate * dt:.2f} > {warn_rate:g}, so the model-free EPR is biased by O(λΔt) (physics.md §8)"
        )
        warnings.warn(warning, stacklevel=2)
    result = ModelFreeEPR(
        tracks,
        epr,
        per,
        split,
        diff,
        estimated,
        tracks.frame_interval,
        int(lag),
        dt,
        rate,
        warning,
        correction,
        coefficients,
        drift,
        {b: names[b] for b in noisy},
        cutoff,
        n_used,
        length,
        mean_particles,
    )
    if keep_fields is None:
        keep_fields = not cache.evicted
    if keep_fields:
        _local_fields(result, pairs, cache, noisy, which, cutoff)
    return result


def _local_fields(result: ModelFreeEPR, pairs, cache: FrameCache, blocks, which, cutoff: float) -> None:
    """Per pair and track: v of each block and e_i = Σ v·D⁻¹v at the first frame of the pair."""
    tracks = result.tracks
    n_pairs, m = len(pairs), tracks.n_tracks
    quadratic = np.full((n_pairs, m), np.nan)
    positions = np.full((n_pairs, m, 2), np.nan)
    velocity: dict[str, np.ndarray] = {}
    for p, (k0, k1) in enumerate(pairs):
        rows = pair_rows(tracks, k0, k1, cutoff)
        if len(rows) == 0:
            continue
        slot0, f0 = cache(k0)
        e = np.zeros(len(rows))
        for b in blocks:
            v = f0[which[b]][slot0[rows]] @ result.coefficients[b]  # (n, c)
            if b not in velocity:
                velocity[b] = np.full((n_pairs, m, v.shape[1]), np.nan)
            velocity[b][p, rows] = v
            e += np.einsum("nc,nc->n", v, v) / result.diffusion[b]
        quadratic[p, rows] = e
        positions[p, rows] = tracks.x[k0, rows]
    result.quadratic, result.positions = quadratic, positions
    result.velocity = velocity
