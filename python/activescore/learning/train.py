"""Training a :class:`ScoreNet` on stationary snapshots: :func:`train_score`, a pipeline of named steps.

1. **Split the samples** once (:class:`~activescore.learning.split.TrainingSamples`): training and held-out frames,
   the neighbour sample, later the frames of a stacked refit; in memory or streamed from a data set.
2. **Choose the recipe** (:func:`~activescore.learning.defaults.training_recipe`): the base score a network
   corrects, and whether it is refitted with the drift-response features afterwards.
3. **Choose the network** (:func:`~activescore.learning.defaults.training_network`) and resolve the training
   settings for the number of training samples.
4. **Lay out the tokens**: the neighbours each particle sees and, with a cutoff, the token tiers of a minibatch
   (:mod:`~activescore.learning.tiers`).
5. **Train** (:func:`~activescore.learning.loop.run_training`): Optax steps, EMA, held-out evaluations, early
   stopping (:mod:`~activescore.learning.stopping`), checkpoints.
6. **Report** (:class:`~activescore.learning.report.TrainingReport`): the Score with its record and validation,
   refitted when the recipe is stacked (:func:`~activescore.learning.stacking.stacked_score`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from .defaults import STACK_FIT_FRAMES, training_network, training_recipe
from .loop import run_metadata, run_training
from .network import ScoreNetConfig
from .report import TrainingReport
from .score import Score
from .settings import TrainConfig, with_legacy_keywords
from .split import TokenInputs, TrainingSamples
from .stacking import stacked_score
from .stream import WindowStream, check_window_settings
from .tiers import training_tiers
from .validation import HeldOut

__all__ = ["run_metadata", "run_training", "train_score"]


def train_score(
    system,
    samples,
    network: ScoreNetConfig | str | None = None,
    train: TrainConfig | None = None,
    *,
    checkpoint=None,
    checkpoint_every: int = 1000,
    progress: bool = True,
    log_every: int = 100,
    devices=None,
    callback: Callable | None = None,
    frames_in_memory: int | None = None,
    steps_per_window: int | None = None,
    base="auto",
    **legacy,
) -> Score:
    """Learn the per-particle score of ``system`` from stationary ``samples`` and validate it on held-out frames.

    Parameters
    ----------
    system
        An :class:`activescore.AOUP` or :class:`activescore.ABP` (the samples' own system).
    samples
        Stationary frames (after burn-in), anything :func:`activescore.samples.as_samples` accepts: a
        :class:`activescore.Trajectory`, a tuple ``(x, g)`` of (F, N, 2) arrays, a GSD file written by activescore,
        or a data set (:class:`activescore.io.dataset.SnapshotDataset` or its folder; one whose build stopped early
        is trained on with a warning naming its frames).
    network
        A :class:`ScoreNetConfig` (checked; refused with what to change when it cannot learn the score), or a
        preset ``"small"`` (default) or ``"paper"`` completed for the system and the data
        (:func:`activescore.learning.defaults.default_network`).
    train
        A :class:`TrainConfig` (default: ``TrainConfig()``, whose steps grow with the data).
    checkpoint, checkpoint_every
        A checkpoint file written atomically every ``checkpoint_every`` steps and at the end; an existing one is
        resumed (saying from which step) and ends where an unbroken run would.
    progress, log_every, callback
        Show a progress bar and print the validation block; record the loss and call ``callback(step, loss)``
        every ``log_every`` steps.
    devices
        JAX devices for data parallelism (default: all visible); ``batch_particles`` must divide evenly.
    frames_in_memory, steps_per_window
        A data set of more than ``frames_in_memory`` frames (default: 1 GiB of them) is streamed in windows of
        half as many, a new one every ``steps_per_window`` steps (default: each particle drawn about once), in a
        shuffled order fixed by the seed (:mod:`activescore.learning.stream`). Samples in memory are used whole.
    base
        ``"auto"`` (default): the network, refitted with the drift-response features for interacting AOUPs with
        ε = 0 (:mod:`activescore.learning.stacking`); None: the network alone; a score such as a
        :class:`~activescore.learning.linear.LinearScore`: a network trained (implicit loss) on its residual.
    **legacy
        Deprecated keywords of earlier versions, forwarded to ``train`` with a DeprecationWarning.

    Returns
    -------
    Score
        The EMA weights, with ``score.validation`` on the held-out frames (with ``holdout`` > 0 but too few frames
        to hold any out, a one-line warning and the block say so).
    """
    check_window_settings(frames_in_memory, steps_per_window)
    if isinstance(network, TrainConfig):  # train_score(system, samples, TrainConfig(...))
        network, train = None, network
    train_config = with_legacy_keywords(train, legacy)
    split = TrainingSamples(system, samples, train_config.holdout)
    recipe = training_recipe(system, base, train_config.loss)
    config = training_network(system, network, split.neighbour_sample, train_config, recipe.base)
    train_config = train_config.resolved(split.n_train * split.n_particles)
    inputs, tiers = _token_layout(system, config, train_config, split, recipe.base, devices)
    offset_dim = 0 if recipe.base is None else config.output_dim
    plan = split.window_plan(inputs, offset_dim, train_config, frames_in_memory, steps_per_window)
    data = split.training_data(inputs, plan, train_config.steps)
    heldout = _heldout_loss(split, inputs, config, train_config)
    windows = None if plan is None else plan.to_dict()
    report = TrainingReport(system, config, train_config, recipe.base, split, heldout, tiers, windows, progress)
    run = dict(checkpoint=checkpoint, checkpoint_every=checkpoint_every, log_every=log_every, progress=progress)
    state, history, heldout_history, best_params = _train(data, report, dict(run, devices=devices, callback=callback))
    score = report.final_score(state, history, heldout_history, best_params, quiet=recipe.stacked)
    if recipe.stacked:
        score = stacked_score(system, score, split.fit_frames(STACK_FIT_FRAMES), split.heldout, dt=split.dt)
    if progress and score.validation is not None:
        print(score.validation, flush=True)
    return score


def _token_layout(system, config, train_config, split, base, devices):
    """``(TokenInputs, token tiers or None)``: what turns the run's frames into network input, and with a cutoff
    the token tiers in which a minibatch is computed (each particle needs only its tokens within reach)."""
    # Fewer particles than tokens: use them all (the network does not depend on the token count).
    k = min(config.k, split.n_particles)
    box_length = float(system.box_length)
    reach, tiers = training_tiers(
        config,
        train_config.loss,
        train_config.sigmas,
        split.neighbour_sample,
        box_length,
        train_config.batch_particles,
        k,
        len(jax.devices() if devices is None else devices),
        seed=train_config.seed,
        steps=train_config.steps,
    )
    force_system = system if config.force_input else None
    return TokenInputs(box_length, k, config.jnp_dtype, force_system, base, reach), tiers


def _heldout_loss(split, inputs: TokenInputs, config, train_config) -> HeldOut | None:
    """The held-out loss on the split's held-out frames (None when none are held out)."""
    if split.heldout is None:
        return None
    return HeldOut(inputs.snapshots(*split.heldout, reach=False), config, train_config, inputs.box_length)


def _train(data, report: TrainingReport, run: dict):
    """Train on ``data`` (the split's training snapshots or windows) as ``report`` records it, with the options
    ``run`` of :func:`run_training`; a stream's reading thread is stopped however the run ends."""
    try:
        return run_training(
            report.system,
            data,
            report.config,
            report.train_config,
            data_hash=report.split.fingerprint(),
            heldout=report.heldout,
            on_checkpoint=report.on_checkpoint,
            base=None if report.base is None else report.base.to_dict(),
            tiers=report.tiers,
            **run,
        )
    finally:
        if isinstance(data, WindowStream):
            data.close()
