"""Early stopping: when a training run ends before its last step, and which weights it then keeps.

The held-out loss is evaluated every ``TrainConfig.validate_every`` steps on fixed held-out particles (paired
evaluations: a change of the loss is a change of the weights). Two rules read that history:

- :func:`should_stop`: the run stops once each of the last ``patience`` losses lies above the best loss before
  them by more than :data:`NOISE_LEVELS` times the noise of one evaluation. A plateau, on which the held-out loss
  can no longer resolve what the decaying learning rate still improves, does not stop a run (stopping there left a
  trapped ε = 0 Gaussian 4 % off its EPR, against 0.4 % at the end of the schedule); a loss that has clearly risen
  (overfitting, or a run that diverges) does.
- :func:`keep_best`: the weights of the best evaluation replace the last ones only when the last loss lies above
  the best by more than the same margin, since among losses equal within their noise the end of the learning-rate
  schedule is the better estimate.

**The noise of one evaluation** is estimated from the history itself (:func:`evaluation_noise`): the robust scatter
of the second differences, which a steady trend (the descent of a learning run, or a rise) does not enter. It is
taken where it is smallest of two windows, the evaluations up to the best and the latest ones, so that a loss that
rises erratically cannot raise the bar it is judged against: an estimate from the latest evaluations alone counted
the rise itself as noise, and a run whose held-out loss climbed from −10.9 to +284 was never stopped. A non-finite
loss (a run that diverged) counts as worse than any finite one.
"""

from __future__ import annotations

import math

import numpy as np

#: A held-out loss counts as worse than the best before it only when above it by more than this many noise levels.
NOISE_LEVELS = 2.0

#: 1.4826 × median |deviation| is the standard deviation of a normal variable; a second difference
#: L[t+1] − 2 L[t] + L[t−1] of independent evaluations has √6 times the standard deviation of one.
_MAD_TO_SD = 1.4826


def evaluation_noise(losses: np.ndarray) -> float | None:
    """The standard deviation of one held-out evaluation estimated from consecutive ``losses`` (T,), robust to a
    trend and to outliers: 1.4826 × median |second difference| / √6, or from the one first difference of two
    losses (1.4826 × |change| / √2). None from fewer than two finite losses (nothing to judge by)."""
    losses = np.asarray(losses, dtype=np.float64)
    losses = losses[np.isfinite(losses)]
    if len(losses) >= 3:
        return _MAD_TO_SD * float(np.median(np.abs(np.diff(losses, n=2)))) / math.sqrt(6)
    if len(losses) == 2:
        return _MAD_TO_SD * abs(float(losses[1] - losses[0])) / math.sqrt(2)
    return None


def history_noise(losses: np.ndarray, patience: int) -> float:
    """The noise of one evaluation for a history of held-out ``losses`` (T,): the smaller of the estimates from the
    2 × ``patience`` + 1 evaluations up to the best and from the latest as many (module docstring); 0 when neither
    can be made."""
    losses = np.asarray(losses, dtype=np.float64)
    window = 2 * patience + 1
    best = int(np.argmin(_worst_if_not_finite(losses)))
    estimates = [
        evaluation_noise(losses[max(0, best + 1 - window) : best + 1]),
        evaluation_noise(losses[-window:]),
    ]
    known = [e for e in estimates if e is not None]
    return min(known) if known else 0.0


def _worst_if_not_finite(losses: np.ndarray) -> np.ndarray:
    """``losses`` with NaN and ±inf replaced by +inf: a diverged evaluation is worse than every finite one."""
    return np.where(np.isfinite(losses), losses, np.inf)


def _losses(heldout_history: list) -> np.ndarray:
    """The losses (T,) of a held-out history [(step, loss)]."""
    return np.array([loss for _, loss in heldout_history], dtype=np.float64)


def should_stop(heldout_history: list, patience: int) -> bool:
    """Whether a run with this held-out history [(step, loss)] stops: each of the last ``patience`` losses lies
    above the best before them by more than :data:`NOISE_LEVELS` times the noise of one evaluation
    (:func:`history_noise`)."""
    if len(heldout_history) <= patience:
        return False
    losses = _losses(heldout_history)
    worst_first = _worst_if_not_finite(losses)
    best_before = worst_first[:-patience].min()
    if not np.isfinite(best_before):
        return False  # nothing finite to compare with
    margin = NOISE_LEVELS * history_noise(losses, patience)
    return bool(worst_first[-patience:].min() > best_before + margin)


def keep_best(heldout_history: list, patience: int) -> bool:
    """Whether the weights of the best held-out evaluation replace the last ones: only when the last loss lies above
    the best by more than :data:`NOISE_LEVELS` times the noise of one evaluation (an overfitted or diverged run)."""
    if len(heldout_history) < 2:
        return False
    losses = _worst_if_not_finite(_losses(heldout_history))
    if not np.isfinite(losses.min()):
        return False
    return bool(losses[-1] > losses.min() + NOISE_LEVELS * history_noise(_losses(heldout_history), patience))
