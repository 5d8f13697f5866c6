"""What a training run reports: the Score's training record, its validation block, and a line per checkpoint."""

from __future__ import annotations

import warnings

import jax

from .score import Score
from .stopping import keep_best
from .validation import validate


class TrainingReport:
    """Turns the weights and histories of a run into a :class:`Score` carrying its record and validation.

    Parameters
    ----------
    system, config, train_config, base
        The system, the network (:class:`ScoreNetConfig`), the resolved :class:`TrainConfig` and the base score of
        a residual network (else None).
    split
        The run's :class:`~activescore.learning.split.TrainingSamples`.
    heldout
        The held-out loss (:class:`~activescore.learning.validation.HeldOut`), None without held-out frames.
    tiers, windows
        The run's token tiers and window plan (dict), recorded when there are any.
    progress
        Print each intermediate checkpoint's validation in one line.
    """

    def __init__(
        self, system, config, train_config, base, split, heldout, tiers=None, windows=None, progress=True
    ) -> None:
        self.system, self.config, self.train_config, self.base = system, config, train_config, base
        self.split, self.heldout, self.tiers, self.windows, self.progress = split, heldout, tiers, windows, progress
        #: One record per intermediate checkpoint (step, held-out loss, ratio to the identity, verdict).
        self.checkpoint_lines: list[dict] = []

    def record(self, history: list, heldout_history: list, steps: int) -> dict:
        """The training record a Score carries (``score.info``) after ``steps`` steps."""
        train_config = self.train_config
        record = {
            "loss": train_config.loss,
            "n_steps": steps,
            "seed": train_config.seed,
            "batch_particles": train_config.batch_particles,
            **self.split.record(),
            "history": history,
            "heldout_history": heldout_history,
            "training": train_config.to_dict(),
            "token_tiers": None if self.tiers is None else [list(tier) for tier in self.tiers],
        }
        if self.windows is not None:
            record["windows"] = self.windows
        return record

    def score(self, params, history, heldout_history, steps: int, *, quiet=False, final=True, best=False) -> Score:
        """The Score of weights ``params`` after ``steps`` steps with its validation on the held-out frames.

        ``quiet``: no warning when the validation finds it inconsistent; ``final``: the run has ended (a run that
        ended before its last step stopped early); ``best``: ``params`` are those of the best held-out evaluation.
        """
        record = self.record(history, heldout_history, steps)
        system, train_config = self.system, self.train_config
        score = Score(
            system, self.config, jax.device_get(params), sigmas=train_config.sigmas, info=record, base=self.base
        )
        if self.heldout is None:
            if self.split.not_validated is not None:
                score.info["validation"] = {"frames": 0, "steps": int(steps), "not_validated": self.split.not_validated}
            return score
        best_step, best_loss = min(heldout_history, key=lambda h: h[1])
        loss = {
            "loss_name": train_config.heldout_loss,
            "loss": best_loss if best else heldout_history[-1][1],
            "best_loss": best_loss,
            "best_step": int(best_step),
            "weights": f"best held-out (step {int(best_step)}; the last had overfitted)" if best else "last",
            "steps": int(steps),
            "stopped_early": final and steps < train_config.steps,
        }
        x_held, g_held = self.split.heldout
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            score.info["validation"] = validate(system, score, x_held, g_held, loss, dt=self.split.dt).to_dict()
        return score

    def final_score(self, state, history: list, heldout_history: list, best_params, *, quiet: bool = False) -> Score:
        """The Score a run returns: its final EMA weights, or those of the best held-out evaluation (``best_params``)
        when the final loss lies clearly above it (an overfitted run, :func:`~activescore.learning.stopping.keep_best`),
        with the validation lines of its intermediate checkpoints."""
        best = self.heldout is not None and keep_best(heldout_history, self.train_config.patience)
        params = best_params if best else state.ema_params
        score = self.score(params, history, heldout_history, int(state.step), quiet=quiet, best=best)
        if self.checkpoint_lines:
            score.info["checkpoint_validations"] = self.checkpoint_lines
        return score

    def on_checkpoint(self, state, heldout_history: list, last: bool) -> None:
        """The validation of an intermediate checkpoint in one line (the final one is the Score's own block)."""
        if self.heldout is None or last:
            return
        step = int(state.step)
        losses = list(heldout_history)
        if not losses or losses[-1][0] != step:
            losses.append((step, self.heldout(state.ema_params)))
        validation = self.score(state.ema_params, [], losses, step, quiet=True, final=False).validation
        assert validation is not None  # frames are held out
        line = {"step": step, "loss": validation["loss"]}
        text = f"checkpoint at step {step}: held-out {self.train_config.heldout_loss} loss {validation['loss']:.5g}"
        if "ratio" in validation.record:
            ratio, se = validation.ratio("quadratic")
            line.update(ratio=ratio, ratio_stderr=se, consistent=validation.consistent)
            text += f", learned/identity {ratio:.4g} ± {se:.2g}"
        self.checkpoint_lines.append(line)
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(text)
