"""The one place that decides a score network and its training from the system and the data.

Rules (docs/tutorials/learn.md):

- **Heads and inputs.** A propulsion head in the system's propulsion coordinates (s_g for AOUPs, s_θ for ABPs,
  whose tokens carry g = (cos θ, sin θ)); an x head (s_x) when ε > 0; the absolute position when the system is
  trapped; for interacting particles with ε = 0 the hypoelliptic inputs (output scale 1/√rate, forces as input,
  and for AOUPs the Gaussian baseline −g).
- **Neighbour set.** Without interactions (k = 0) the particles are independent and each token set is the particle
  alone (k = 1): neighbours carry no information there, and a truncated set of overlapping particles changes
  discontinuously with x and is exploited by both losses. With interactions the tokens are cut off smoothly at
  the pair range plus an envelope (a quarter of the largest diameter), and the number of tokens is measured on the
  data: the most particles found within the cutoff plus the noise margin of denoising over a sample of frames,
  plus headroom, so that no particle's set is ever truncated inside the cutoff sphere.
- **The stacked recipe (interacting AOUPs with ε = 0, the paper's MIPS case).** The network is trained on the
  whole score as for any system, then refitted together with the closed-form drift-response features in one linear
  solve (:mod:`activescore.learning.stacking`): the features capture most of the EPR where a network alone captures
  little (docs/studies/paper_regime.md), and the network adds part of what is nonlinear in the velocities.
- **Refusals.** A set-up that cannot learn the requested score is a ``ValueError`` that says what to change.
- **Training.** :class:`~activescore.learning.train.TrainConfig` holds the defaults; the number of steps left
  open grows with the number of training samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import ScoreNetConfig
from .settings import LOSSES

#: Network sizes; the system- and data-dependent fields are set by :func:`default_network`.
PRESETS = {"small": ScoreNetConfig.small, "paper": ScoreNetConfig.paper}
#: Frames on which the neighbour count is measured (spread evenly over the data).
NEIGHBOUR_SAMPLE_FRAMES = 16
#: Most tokens per particle the defaults will use; a cutoff sphere holding more is refused.
MAX_TOKENS = 256
#: Denoising moves a displacement x_i − x_j by about σ√2 per component; particles entering the cutoff sphere from
#: as far as this many σ beyond it are counted.
NOISE_MARGIN_SIGMAS = 4.0
#: Coverage tolerance of a given network: the fraction of particles whose k-th token lies within reach.
COVERAGE_TOLERANCE = 1e-3


def hypoelliptic_inputs(system) -> dict:
    """Network options for interacting particles without translational noise (ε = 0, the paper's MIPS case):
    outputs scaled by 1/√rate (γ or D_r), every token's interaction force in units of v0 and, for AOUPs, the
    Gaussian baseline −g (an ABP's θ is uniform: no baseline). In the AOUP MIPS study (docs/studies/mips.md) they raise the
    learned EPR 5-21× at equal training; for ABPs the same slaving of x to the propulsion motivates them.
    Empty for other systems."""
    if system.eps > 0 or system.k == 0:
        return {}
    inputs = dict(
        output_scale=1.0 / math.sqrt(system.propulsion_rate),
        force_input=True,
        force_unit=float(system.v0) if system.v0 > 0 else 1.0,
    )
    if system.propulsion_coordinate == "vector":
        inputs["gaussian_baseline"] = True
    return inputs


def interacting(system) -> bool:
    """Whether the particles interact (pair stiffness k > 0)."""
    return float(system.k) > 0


def stacked_recipe(system) -> bool:
    """Whether the defaults refit the trained network together with the drift-response features: interacting AOUPs
    without translational noise (module docstring)."""
    return system.propulsion_coordinate == "vector" and system.eps == 0 and interacting(system)


@dataclass(frozen=True)
class Recipe:
    """How a network learns the score of a system: on the whole score (``base`` None) or on the residual of the
    score ``base``, and whether it is refitted together with the drift-response features afterwards (``stacked``,
    :func:`activescore.learning.stacking.stacked_score`)."""

    base: Any
    stacked: bool


def training_recipe(system, base, loss: str) -> Recipe:
    """The recipe for ``train_score``'s ``base``: ``"auto"`` (the network alone, refitted with the drift-response
    features where :func:`stacked_recipe` holds), None (the network alone) or a score whose residual the network
    learns (by the implicit loss ``loss``), checked."""
    stacked = isinstance(base, str) and base == "auto" and stacked_recipe(system)
    return Recipe(base=check_base(system, base, loss), stacked=stacked)


def check_base(system, base, loss: str):
    """The base score of a residual network (``train_score``'s ``base``; None for "auto" and None), checked."""
    if isinstance(base, str):
        if base != "auto":
            raise ValueError(f"base: expected 'auto', None or a score (e.g. a LinearScore), got {base!r}")
        return None
    if base is None:
        return None
    if not (callable(base) and hasattr(base, "divergence_g") and hasattr(base, "to_dict")):
        raise ValueError(f"base: expected 'auto', None or a score such as a LinearScore, got {type(base).__name__}")
    if not LOSSES[loss].supports_base:
        raise ValueError(
            f"base: a network on the residual of a base score is trained by the implicit loss, not loss={loss!r} "
            "(denoising would need the base at perturbed configurations); use TrainConfig(loss='implicit') or base=None"
        )
    if base.system.to_dict() != system.to_dict():
        raise ValueError(f"base: it is a score of {base.system!r}, not of the system {system!r}")
    return base


#: Training frames (spread evenly) on which the default refit of a network with the drift-response features is
#: made: its handful of coefficients are fixed by far fewer (docs/studies/paper_regime.md: an eighth of the frames
#: changed the captured EPR by < 0.01).
STACK_FIT_FRAMES = 64


def neighbour_cutoff(system) -> tuple[float, float]:
    """``(cutoff, width)`` of the token envelope: attention weight 1 up to the pair range, 0 a quarter of the
    largest diameter beyond it."""
    width = 0.5 * float(np.max(system.radius))
    return float(system.interaction_range) + width, width


def noise_margin(predict_x: bool, loss: str, sigmas) -> float:
    """How far beyond the cutoff a particle may sit and still be moved inside it by the denoising noise on x."""
    if not predict_x or not LOSSES[loss].needs_sigma:
        return 0.0
    return NOISE_MARGIN_SIGMAS * max(sigmas, default=0.0)


def token_reach(config: ScoreNetConfig, loss: str, sigmas) -> float | None:
    """How far a network's tokens matter: its cutoff plus the noise margin of denoising (None without a cutoff)."""
    if config.cutoff is None:
        return None
    return config.cutoff + noise_margin(config.predict_x, loss, sigmas)


def spread_frames(n_frames: int, count: int = NEIGHBOUR_SAMPLE_FRAMES) -> np.ndarray:
    """Indices of up to ``count`` of ``n_frames`` frames spread evenly (sorted, distinct): the sample the defaults
    measure on, and the frames of a closed-form refit."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, count)).round().astype(int))


def most_within(x: np.ndarray, box_length: float, reach: float) -> int:
    """The largest number of other particles within ``reach`` of any particle over the frames ``x`` (F, N, 2)."""
    from .neighbours import knn

    n = x.shape[1]
    k = min(n, 32)
    while True:
        most = 0
        for frame in x:
            _, displacement = knn(frame, box_length, k)
            inside = np.sum(np.sum(displacement**2, axis=-1) <= reach**2, axis=1) - 1  # self excluded
            most = max(most, int(inside.max()))
        if most + 1 < k or k == n:
            return most
        k = min(n, 2 * k)


def measured_neighbours(x: np.ndarray, box_length: float, reach: float) -> tuple[int, int]:
    """``(tokens, most)``: tokens per particle (self included) covering the sphere of radius ``reach`` with
    headroom, measured on a sample of the frames ``x`` (F, N, 2), and the most particles found inside it."""
    n = x.shape[1]
    most = most_within(x[spread_frames(len(x))], box_length, reach)
    headroom = max(2, math.ceil(0.25 * most))
    return min(n, most + 1 + headroom), most


def default_network(
    system,
    x: np.ndarray,
    *,
    preset: str = "small",
    loss: str = "dsm",
    sigmas=(0.01,),
    residual: bool = False,
    **overrides,
) -> ScoreNetConfig:
    """The network for ``system`` learned from frames ``x`` (F, N, 2) (positions; a sample suffices).

    ``preset`` ("small" or "paper") fixes the size; heads, inputs, neighbour set and scales follow the system and
    the data (module docstring). ``residual``: the network corrects a base score (which holds the Gaussian
    baseline already). ``overrides`` replace any field afterwards (checked by :func:`check_network`).
    """
    if preset not in PRESETS:
        raise ValueError(f"network: expected one of {sorted(PRESETS)}, got {preset!r}")
    x = np.asarray(x, dtype=np.float64)
    predict_x = system.eps > 0
    fields = dict(
        propulsion=system.propulsion_coordinate,
        predict_x=predict_x,
        absolute_position=system.trap > 0,
        sigma_conditioning=len(sigmas) > 1,
        readout_skip=True,
        **hypoelliptic_inputs(system),
    )
    if residual:
        fields.update(gaussian_baseline=False, residual=True)
    if interacting(system):
        cutoff, width = neighbour_cutoff(system)
        reach = cutoff + noise_margin(predict_x, loss, sigmas)
        tokens, most = measured_neighbours(x, float(system.box_length), reach)
        if most + 1 > MAX_TOKENS:
            raise ValueError(
                f"up to {most} particles lie within {reach:.3g} (the cutoff {cutoff:.3g} plus the "
                f"noise margin of sigma) of a particle, more than the {MAX_TOKENS} tokens a network "
                "takes: lower sigma, or pass network=ScoreNetConfig(k=..., cutoff=...) yourself"
            )
        fields.update(k=tokens, cutoff=cutoff, cutoff_width=width, length_scale=float(np.max(system.radius)))
    else:
        fields.update(k=1, cutoff=None)
        if system.trap > 0:  # the trapped cloud's width: positions of order 1 at the input
            fields["length_scale"] = float(max(np.sqrt(np.mean(x**2)), 1e-12))
    return PRESETS[preset](**{**fields, **overrides})


def coverage_fraction(x: np.ndarray, box_length: float, k: int, reach: float) -> float:
    """Fraction of particles in frames ``x`` (F, N, 2) whose k nearest (self included) all lie within ``reach``:
    there a truncated neighbour set may cut through the cutoff sphere."""
    from .neighbours import knn

    within = [np.sum(knn(frame, box_length, k)[1][:, -1] ** 2, axis=-1) <= reach**2 for frame in x]
    return float(np.mean(within))


def check_network(system, config: ScoreNetConfig, *, loss: str, sigmas, x: np.ndarray) -> None:
    """Refuse a network that cannot learn the requested score of ``system`` from frames ``x`` (F, N, 2), saying
    what to change."""
    n = x.shape[1]
    truncated = config.k < n
    if config.propulsion != system.propulsion_coordinate:
        raise ValueError(
            f"network: a {type(system).__name__}'s propulsion score is taken in the {system.propulsion_coordinate} "
            f"(s_{system.propulsion_symbol}), but the network has propulsion={config.propulsion!r}; use "
            f"propulsion={system.propulsion_coordinate!r}"
        )
    if config.predict_x and not system.eps > 0:
        raise ValueError(
            "network: predict_x needs eps > 0: without translational noise the x-score is not "
            "learnable (and the EPR needs only s_g); use predict_x=False"
        )
    if system.eps > 0 and not config.predict_x:
        raise ValueError("network: eps > 0 but the network has no x head (the EPR needs s_x too); use predict_x=True")
    if system.trap > 0 and not config.absolute_position:
        raise ValueError(
            "network: the system is trapped (trap > 0) but the network has no absolute_position "
            "input, so it can only learn a translation-invariant approximation; use "
            "absolute_position=True"
        )
    if LOSSES[loss].needs_sigma and len(sigmas) > 1 and not config.sigma_conditioning:
        raise ValueError("network: several sigmas need a sigma-conditioned network; use sigma_conditioning=True")
    if not truncated or config.k == 1:
        return
    if config.cutoff is None:
        if not interacting(system):
            raise ValueError(
                f"network: without interactions (k = 0) the particles are independent; a truncated "
                f"set of k = {config.k} < N = {n} nearest particles changes discontinuously with the "
                "positions and both losses exploit it: use k=1 (self-only tokens, the default)"
            )
        if config.predict_x:
            raise ValueError(
                "network: learning s_x with a truncated neighbour set (k < N) needs a cutoff "
                "(ScoreNetConfig(cutoff=...), a few interaction ranges, with fewer than k particles "
                "inside): without it the network is discontinuous where the k-nearest set changes and "
                "both losses reward exploiting that"
            )
        return
    reach = token_reach(config, loss, sigmas)
    assert reach is not None  # the network has a cutoff here
    sample = x[spread_frames(len(x))]
    fraction = coverage_fraction(sample, float(system.box_length), config.k, reach)
    if fraction > COVERAGE_TOLERANCE:
        needed, _ = measured_neighbours(x, float(system.box_length), reach)
        raise ValueError(
            f"network: {fraction:.2%} of particles have their k = {config.k} nearest all within "
            f"{reach:.3g} (cutoff + noise margin), so the token set cuts through the cutoff sphere: "
            f"use k >= {needed}, a smaller cutoff or a smaller sigma"
        )


def training_network(system, network, x: np.ndarray, train_config, base) -> ScoreNetConfig:
    """The network ``train_score`` trains: ``network`` (a :class:`ScoreNetConfig`, or a preset name, None for
    "small", completed by :func:`default_network`) for ``system`` learned from frames ``x`` (F, N, 2) with
    ``train_config``'s loss, on the residual of ``base`` (a score, or None), checked (:func:`check_network`)."""
    sigmas = train_config.effective_sigmas
    if network is None or isinstance(network, str):
        config = default_network(
            system, x, preset=network or "small", loss=train_config.loss, sigmas=sigmas, residual=base is not None
        )
    else:
        config = network
    check_network(system, config, loss=train_config.loss, sigmas=sigmas, x=x)
    if config.residual != (base is not None):
        raise ValueError(
            "network: residual=True needs a base score (base='auto' or a score), and a base needs a residual network"
            if base is None
            else "network: a network on the residual of a base score needs residual=True (and no gaussian_baseline)"
        )
    return config
