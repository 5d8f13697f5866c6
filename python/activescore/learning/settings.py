"""Training settings: :class:`TrainConfig`, the truth of every training default (the command line's ``[train]``
section is generated from it), and the number of steps that grows with the data. No JAX here: the command line
reads these before it loads the learning code."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Loss:
    """What the package needs to know of a score-matching loss (physics.md §6), in one record every place reads.

    ``objective`` names the function in :mod:`activescore.learning.losses` (loaded on use: no JAX here), with the
    signature ``objective(apply, params, tokens, key, zeta, predict_x, angle) -> scalar``; ``needs_sigma``: it
    draws noise at the levels ``sigmas`` (denoising), and so perturbs x when the network predicts s_x;
    ``supports_base``: a residual network on a base score can be trained with it."""

    name: str
    objective: str
    needs_sigma: bool
    supports_base: bool
    summary: str

    def function(self):
        from . import losses

        return getattr(losses, self.objective)


#: The losses by name. "dsm": denoising score matching at noise levels σ (the training default); "implicit":
#: Hyvärinen's implicit score matching, exact divergences, no noise (the held-out default).
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("dsm", "dsm_objective", needs_sigma=True, supports_base=False, summary="denoising score matching"),
        Loss("implicit", "implicit_objective", needs_sigma=False, supports_base=True, summary="implicit (Hyvärinen)"),
    )
}


def loss_named(name: str, parameter: str = "loss") -> Loss:
    """The :class:`Loss` called ``name``, else a ValueError naming ``parameter`` and the choices."""
    if name not in LOSSES:
        raise ValueError(f"{parameter} must be one of {tuple(LOSSES)}, got {name!r}")
    return LOSSES[name]


#: Default steps: about this many draws of every training sample, between the bounds below. On interacting
#: equilibrium soft disks (128 particles, 900 training frames) the relative Fisher error of s_x falls from 3.7 %
#: at 4 draws to 1.7-1.8 % at 15 (tests/test_score_defaults.py).
DRAWS_PER_SAMPLE = 15
MIN_STEPS, MAX_STEPS = 1_000, 50_000


def default_steps(n_samples: int, batch_particles: int) -> int:
    """Steps for ``n_samples`` training (frame, particle) pairs: about :data:`DRAWS_PER_SAMPLE` draws of each,
    within [MIN_STEPS, MAX_STEPS] (early stopping ends a run sooner when the held-out loss clearly rises)."""
    steps = math.ceil(DRAWS_PER_SAMPLE * n_samples / batch_particles)
    return int(min(MAX_STEPS, max(MIN_STEPS, steps)))


@dataclass(frozen=True)
class TrainConfig:
    """Everything besides the data and the architecture that determines a training run: the defaults here are
    the package's (the command line's ``[train]`` section is generated from them).

    ``sigmas`` are the denoising noise levels (one per particle drawn uniformly when several; ignored by the
    implicit loss). ``n_steps=None`` grows with the data (:func:`default_steps`).
    The learning rate warms up linearly from 0 over ``warmup_steps`` (None: min(1000, n_steps // 10)) and then
    decays by a cosine to ``final_lr_fraction × learning_rate`` at ``n_steps``. The EMA uses decay
    ``min(ema_decay, (1 + t)/(10 + t))`` so that short runs are not dominated by the initial weights.

    ``holdout``: the fraction of frames (the last ones, at least two) held out of training for the score's
    validation; 0 turns it off. ``heldout_loss``: the loss evaluated on the held-out frames, reported in the
    validation and watched by early stopping. The default "implicit" (Hyvärinen) loss draws no noise: on
    interacting soft disks at σ = 0.01 it is about 10× less noisy than a denoising loss at one fixed noise draw,
    which late in a run rises while the true error still falls, and so stops runs too early. "dsm" (the training
    loss at its noise levels, one fixed draw) needs ``loss="dsm"``. ``early_stopping``: stop when the held-out loss
    has stayed clearly above its best (by more than twice its noise, estimated from the history) for ``patience``
    evaluations (one every ``n_steps // 50`` steps, at least 50); a plateau does not stop a run.
    """

    loss: str = "dsm"
    sigmas: tuple = (0.01,)
    n_steps: int | None = None
    batch_particles: int = 256
    learning_rate: float = 3e-3
    warmup_steps: int | None = None
    final_lr_fraction: float = 0.01
    optimizer: str = "radam"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    holdout: float = 0.1
    heldout_loss: str = "implicit"
    early_stopping: bool = True
    patience: int = 10

    def __post_init__(self):
        loss = loss_named(self.loss)
        object.__setattr__(self, "sigmas", tuple(float(s) for s in np.atleast_1d(self.sigmas)))
        if loss.needs_sigma and (not self.sigmas or any(not s > 0 for s in self.sigmas)):
            raise ValueError(f"{loss.name} needs positive noise levels, got sigma={self.sigmas}")
        if self.optimizer not in ("radam", "adamw"):
            raise ValueError(f"optimizer must be 'radam' or 'adamw', got {self.optimizer!r}")
        if (self.n_steps is not None and self.n_steps < 1) or self.batch_particles < 1:
            raise ValueError("n_steps (or None: from the data) and batch_particles must be >= 1")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0 (or None), got {self.warmup_steps}")
        if not (self.learning_rate > 0 and 0 <= self.ema_decay < 1 and self.grad_clip > 0):
            raise ValueError("need learning_rate > 0, 0 <= ema_decay < 1 and grad_clip > 0")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1) (0: no validation), got {self.holdout}")
        heldout = loss_named(self.heldout_loss, "heldout_loss")
        if heldout.needs_sigma and not loss.needs_sigma:
            raise ValueError(
                f"heldout_loss={heldout.name!r} needs loss={heldout.name!r} (its noise levels); "
                "use heldout_loss='implicit'"
            )
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")

    @property
    def effective_sigmas(self) -> tuple:
        """The noise levels the run uses: none for a loss without noise (the implicit loss)."""
        return self.sigmas if LOSSES[self.loss].needs_sigma else ()

    def resolved(self, n_samples: int) -> TrainConfig:
        """This configuration with the settings left to the data fixed for ``n_samples`` training samples."""
        n_steps = default_steps(n_samples, self.batch_particles) if self.n_steps is None else int(self.n_steps)
        warmup = min(1000, n_steps // 10) if self.warmup_steps is None else int(self.warmup_steps)
        return dataclasses.replace(self, n_steps=n_steps, warmup_steps=warmup, sigmas=self.effective_sigmas)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d

    @property
    def steps(self) -> int:
        """``n_steps`` of a resolved configuration."""
        if self.n_steps is None:
            raise ValueError("n_steps is left to the data: resolve the configuration first (TrainConfig.resolved)")
        return self.n_steps

    @property
    def validate_every(self) -> int:
        """Steps between evaluations of the held-out loss."""
        return max(50, self.steps // 50)


#: ``train_score`` keywords of earlier versions that are now fields of :class:`TrainConfig` (``sigma`` is
#: ``sigmas``). Deprecated: accepted with a DeprecationWarning for one more release.
LEGACY_KEYWORDS = (
    "loss",
    "sigma",
    "n_steps",
    "batch_particles",
    "learning_rate",
    "seed",
    "warmup_steps",
    "final_lr_fraction",
    "optimizer",
    "weight_decay",
    "grad_clip",
    "ema_decay",
)


def with_legacy_keywords(train_config: TrainConfig | None, legacy: dict) -> TrainConfig:
    """``train_config`` (default ``TrainConfig()``) with the deprecated ``train_score`` keywords ``legacy``
    applied, warning that they are deprecated; other keywords are a TypeError."""
    unknown = sorted(set(legacy) - set(LEGACY_KEYWORDS))
    if unknown:
        raise TypeError(f"train_score() got unexpected keyword arguments {unknown}")
    train_config = TrainConfig() if train_config is None else train_config
    if not legacy:
        return train_config
    warnings.warn(
        f"train_score({', '.join(f'{k}=' for k in legacy)}...) is deprecated: pass "
        "train=TrainConfig(...) (sigma is TrainConfig(sigmas=...))",
        DeprecationWarning,
        stacklevel=3,
    )
    changes = dict(legacy)
    if "sigma" in changes:
        sigma = changes.pop("sigma")
        changes["sigmas"] = () if sigma is None else tuple(float(s) for s in np.atleast_1d(sigma))
    return dataclasses.replace(train_config, **changes)
