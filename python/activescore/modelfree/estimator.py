"""The model-free EPR: the probability-flow velocity learned from consecutive frames by one linear solve
(physics.md §8), or a network trained with the same loss (``velocity="network"``, :mod:`.network`).

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

from .. import _validate as check
from ..estimation.statistics import n_batches_for
from .features import PAIR_FAMILIES
from .network import NetworkSettings, apply_network
from .pairs import FrameCache, frame_pairs, mean_square_step, setup
from .result import ModelFreeEPR, assemble, local_fields
from .solve import accumulate, fit_block, total
from .tracks import Tracks, as_tracks

#: MSD(2Δt)/MSD(Δt) above this means the positions move nearly ballistically between frames (2: diffusive,
#: 4: smooth, as without translational noise).
BALLISTIC_RATIO = 3.5
#: Angles turning by more than this (radians, root mean square) between frames cannot be followed (or are degrees).
ANGLE_STEP = 1.0
#: Warn when the frame spacing times the fitted velocity's decorrelation rate exceeds this (bias ~ λΔt/2).
WARN_RATE = 0.1
#: Tent functions of the radial basis of the pair features.
N_RADIAL = 8
BLOCKS = ("x", "g")

__all__ = ["ModelFreeEPR", "estimate_model_free", "frame_pairs"]


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
    velocity: str = "linear",
    network=None,
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
        Threads computing the frames' features ahead of the sums (0: all cores; 1: none, all in the caller's).
    pair_features : tuple of str
        The pair terms linear in the propulsions, among ``PAIR_FAMILIES`` ("align", "shell", "push",
        "push_neighbour"; all by default). The radial pair term Σ_j B_k r̂_ij is always used.
    velocity : {"linear", "network"}
        "linear" (default): the linear solve. "network": Σ_k (c_k + h_k(ψ)) φ_k with h a small MLP of invariant
        descriptors ψ of the same features, trained with the same loss from the linear solve (JAX, Flax, Optax),
        two-fold cross-fitted over the frame pairs: the EPR is its held-out bound, no correction (physics.md §8, the network option;
        :mod:`activescore.modelfree.network`). Its samples are held in memory (float32).
    network : dict or NetworkSettings, optional
        The network's training settings (``hidden``, ``layers``, ``steps``, ``batch``, ``learning_rate``,
        ``weight_decay``, ``seed``).

    Returns
    -------
    ModelFreeEPR
    """
    tracks = as_tracks(tracks)
    check.choice("velocity", velocity, {"linear", "network"})
    settings = NetworkSettings.of(network) if velocity == "network" else None
    warn_rate = check.real("warn_rate", warn_rate, low=0.0, low_open=True)
    pairs, features, search, cutoff = setup(tracks, lag, cutoff, n_radial, external, n_threads, families=pair_features)
    given, noisy = _noisy_blocks(tracks, diffusion, int(lag))
    angle = tracks.kind == "angle"
    names = {"x": features.vector_names(), "g": features.angle_names() if angle else features.vector_names()}
    which = {"x": "vector", "g": "angle" if angle else "vector"}
    nb = n_batches_for(len(pairs), n_batches)
    cache = FrameCache(tracks, features, search)
    dt = tracks.frame_interval * int(lag)
    sizes = {b: len(names[b]) for b in noisy}
    moments = accumulate(tracks, pairs, cache, noisy, which, sizes, cutoff, nb, n_threads)
    totals = {b: total(moments[b]) for b in noisy}
    n_used, mean_particles = _pairs_used(tracks, totals)
    fits = {b: fit_block(b, moments[b], totals[b], dt, given[b], n_used, mean_particles) for b in noisy}
    options = dict(lag=lag, dt=dt, cutoff=cutoff, n_used=n_used, mean_particles=mean_particles, warn_rate=warn_rate)
    result = assemble(tracks, fits, names, **options)
    if keep_fields is None:
        keep_fields = not cache.evicted
    if settings is not None:
        apply_network(result, pairs, cache, which, moments, settings, keep_fields)
    elif keep_fields:
        local_fields(result, pairs, cache, noisy, which, cutoff)
    return result


def _noisy_blocks(tracks: Tracks, diffusion, lag: int) -> tuple[dict[str, float | None], list[str]]:
    """The diffusion asked for each block and the noisy blocks; warns when positions alone move ballistically."""
    blocks = ["x"] if tracks.kind == "positions" else ["x", "g"]
    given = _diffusion_spec(diffusion, blocks)
    noisy = [b for b in blocks if (given[b] or 0.0) > 0 or given[b] is None]
    if not noisy:
        raise ValueError("diffusion declares every block noiseless: there is no entropy production to estimate")
    if tracks.kind == "positions" and given["x"] is None:
        ratio = mean_square_step(tracks, 2 * lag) / mean_square_step(tracks, lag)
        if ratio > BALLISTIC_RATIO:
            warnings.warn(
                f"the positions move nearly ballistically between frames (MSD(2Δt)/MSD(Δt) = {ratio:.2f} > "
                f"{BALLISTIC_RATIO:g}): with a hidden propulsion they are not the state and this is no EPR; use "
                "tur_lower_bound (physics.md §8)",
                stacklevel=3,
            )
    return given, noisy


def _pairs_used(tracks: Tracks, totals: dict) -> tuple[int, float]:
    """Frame pairs with particles in the fit and their mean particle count; warns when angles turn too far."""
    first = next(iter(totals.values()))
    if first.n_pairs == 0:
        raise ValueError("no particle is present in both frames of any pair (or inside the field of view)")
    if tracks.angle is not None and "g" in totals:
        _check_turn(totals["g"].square / max(totals["g"].n_values, 1))
    return first.n_pairs, first.n_particles / first.n_pairs


def _check_turn(mean_square: float) -> None:
    """Warn when the angles turn by more than ``ANGLE_STEP`` between frames."""
    turn = math.sqrt(mean_square)
    if turn > ANGLE_STEP:
        warnings.warn(
            f"the angles turn by {turn:.2f} rad (root mean square) between frames, more than {ANGLE_STEP:g}: "
            "degrees read as radians (angle_unit='deg')? or frames too far apart to follow the orientation",
            stacklevel=4,
        )


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
