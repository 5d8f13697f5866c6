"""The training loop: Optax steps on the device, EMA weights, held-out evaluations, checkpoints, resumption.

A step draws ``batch_particles`` (frame, particle) pairs uniformly from the snapshots on the device, gathers
their tokens there, and takes one optimiser step on the chosen loss. The snapshots are all frames or, for a data
set larger than the memory budget, a window of frames replaced every few steps (stream.py). Every random number
of step t comes from ``fold_in(PRNGKey(seed), t)`` and its window from (seed, t), so a run is a pure function of
(data, settings, seed) and a run resumed from a checkpoint retraces the unbroken one exactly. The minibatch is
split across all visible devices (or those given) along one mesh axis; parameters and data are replicated and
gradients are averaged by the compiler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..io.progress import progress_bar
from .checkpoint import read_metadata_and_state, restore_tree, save_tree
from .data import Snapshots
from .network import ScoreNetConfig
from .settings import TrainConfig
from .step import TrainState, device_mesh, init_state, make_train_step, replicated
from .stopping import should_stop
from .stream import ResidentFrames, WindowStream
from .tiers import TokenTiers
from .validation import HeldOut


def run_metadata(
    system,
    net_config: ScoreNetConfig,
    train_config: TrainConfig,
    data_hash: str,
    windows: dict | None = None,
    base: dict | None = None,
) -> dict:
    """What a checkpoint must match to be resumed (``windows``: the window plan of a streamed run; ``base``: the
    base score a residual network corrects)."""
    metadata = {
        "system": system.to_dict(),
        "network": net_config.to_dict(),
        "training": train_config.to_dict(),
        "data": data_hash,
    }
    if windows is not None:
        metadata["windows"] = windows
    if base is not None:
        metadata["base"] = base
    return metadata


def _host_copy(tree):
    """NumPy copies of ``tree``'s arrays: the compiled step donates (reuses) the state's buffers."""
    return jax.tree_util.tree_map(np.array, tree)


class TrainingLoop:
    """One run of :func:`run_training` (see there): the device state, the loss and held-out histories and the
    EMA weights of the best held-out evaluation, advanced step by step and saved at checkpoints."""

    def __init__(
        self, system, data, net_config, train_config, *, data_hash, checkpoint, devices, heldout, base, tiers
    ) -> None:
        self.frames: ResidentFrames | WindowStream = ResidentFrames(data) if isinstance(data, Snapshots) else data
        mesh = device_mesh(devices)
        if train_config.batch_particles % mesh.devices.size:
            raise ValueError(
                f"batch_particles ({train_config.batch_particles}) must be a multiple of the number of "
                f"devices ({mesh.devices.size})"
            )
        windows = None if self.frames.plan is None else self.frames.plan.to_dict()
        self.metadata = json.loads(json.dumps(run_metadata(system, net_config, train_config, data_hash, windows, base)))
        self.train_config, self.checkpoint, self.heldout = train_config, checkpoint, heldout
        self.state = init_state(net_config, train_config)
        self.history: list = []  # [(step, mean training loss)]
        self.heldout_history: list = []  # [(step, held-out loss of the EMA weights)]
        self.best_params = _host_copy(self.state.ema_params)  # the EMA weights of the best held-out evaluation
        if checkpoint is not None and os.path.exists(checkpoint):
            self._resume()
        self.replicated = replicated(mesh)
        self.state = jax.device_put(self.state, self.replicated)
        self.step_fn = make_train_step(net_config, train_config, float(system.box_length), mesh, tiers)

    def _resume(self) -> None:
        """Continue from the checkpoint, which must belong to this run."""
        saved, raw = read_metadata_and_state(self.checkpoint, "a training checkpoint")
        saved_history = saved.pop("history", [])
        saved_heldout = saved.pop("heldout", [])
        saved.pop("validation", None)
        if saved != self.metadata:
            raise ValueError(
                f"checkpoint {self.checkpoint} belongs to another run (different system, network, training "
                "settings or data); remove it or choose another path"
            )
        target = (self.state, self.best_params)
        state, self.best_params = restore_tree(self.checkpoint, raw, target, "a training checkpoint")
        # Own copies: the step donates its state, which must not alias host memory owned by NumPy.
        self.state = TrainState(*(jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), s) for s in state))
        self.history = [tuple(h) for h in saved_history]
        self.heldout_history = [tuple(h) for h in saved_heldout]

    def stopped(self) -> bool:
        """Whether early stopping ends the run here (:func:`~activescore.learning.stopping.should_stop`)."""
        config = self.train_config
        return self.heldout is not None and config.early_stopping and should_stop(self.heldout_history, config.patience)

    def evaluate(self, step: int) -> None:
        """Record the held-out loss of the EMA weights after ``step`` steps (and keep them when best so far)."""
        assert self.heldout is not None
        params = self.state.ema_params
        loss = self.heldout(params)
        if not self.heldout_history or loss < min(h[1] for h in self.heldout_history):
            self.best_params = _host_copy(params)
        self.heldout_history.append((step, loss))

    def save(self, on_checkpoint: Callable | None) -> None:
        """Write the checkpoint (if any) and hand it to ``on_checkpoint(state, heldout_history, last)``."""
        if self.checkpoint is None:
            return
        metadata = {**self.metadata, "history": self.history, "heldout": self.heldout_history}
        save_tree(self.checkpoint, (self.state, self.best_params), metadata)
        if on_checkpoint is not None:
            last = int(self.state.step) == self.train_config.steps or self.stopped()
            on_checkpoint(self.state, self.heldout_history, last)

    def run(self, bar, *, log_every: int, checkpoint_every: int, callback, on_checkpoint) -> None:
        """Train from the state's step to the last (or until early stopping), logging every ``log_every`` steps."""
        steps = self.train_config.steps
        losses = []
        snapshots = None
        for step in range(int(self.state.step), steps):
            if self.stopped():
                break
            if snapshots is None or self.frames.starts_window(step):
                snapshots = None  # drop the finished window first: only it and the next one being read are held
                snapshots = self.frames.window_at(step, lambda tree: jax.device_put(tree, self.replicated))
            self.state, loss = self.step_fn(self.state, snapshots)
            losses.append(loss)
            done = step + 1
            evaluate = self.heldout is not None and (done % self.train_config.validate_every == 0 or done == steps)
            if evaluate:
                self.evaluate(done)
            last = done == steps or (evaluate and self.stopped())
            if done % log_every == 0 or last:
                self.history.append((done, float(jnp.mean(jnp.stack(losses)))))
                losses = []
                if done % checkpoint_every == 0 or last:
                    self.save(on_checkpoint)
                self._show(bar, done)
                if callback is not None:
                    callback(done, self.history[-1][1])
            elif done % checkpoint_every == 0:
                self.save(on_checkpoint)

    def _show(self, bar, done: int) -> None:
        postfix = {"loss": f"{self.history[-1][1]:.4g}"}
        if self.heldout_history:
            postfix["held-out"] = f"{self.heldout_history[-1][1]:.4g}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(done - bar.n)


def run_training(
    system,
    data: Snapshots | WindowStream,
    net_config: ScoreNetConfig,
    train_config: TrainConfig,
    *,
    data_hash: str,
    checkpoint=None,
    checkpoint_every: int = 1000,
    log_every: int = 100,
    progress: bool = True,
    devices=None,
    callback: Callable | None = None,
    heldout: HeldOut | None = None,
    on_checkpoint: Callable | None = None,
    base: dict | None = None,
    tiers: TokenTiers | None = None,
):
    """Run (or resume) training; returns ``(final TrainState, loss history [(step, mean loss)], held-out history
    [(step, held-out loss of the EMA weights)], EMA weights of the best held-out evaluation (host copies; the
    initial ones without held-out frames))``. A residual network is also evaluated at step 0, where it is its base
    alone.

    ``data``: host snapshots of all frames, or a :class:`WindowStream` of a data set's windows; ``train_config``
    resolved (:meth:`TrainConfig.resolved`). ``callback(step, loss)`` is called at every logging point (after the
    checkpoint of that step, if any). With ``heldout`` the EMA weights are evaluated every
    ``train_config.validate_every`` steps and, with ``early_stopping``, the run ends once the held-out loss has
    stayed clearly above its best for ``patience`` evaluations (:func:`~activescore.learning.stopping.should_stop`).
    ``on_checkpoint(state, heldout_history, last)`` runs after every checkpoint (``last``: the run ends there).
    ``base``: the record of the base score whose residual the network learns (the data's ``offset``), part of what
    a resumed checkpoint must match. ``tiers``: compute each minibatch in these token tiers
    (:mod:`activescore.learning.tiers`; the data carry ``needed``): the same loss, cheaper. With ``progress``, a
    resumed run says from which step it continues.
    """
    loop = TrainingLoop(
        system,
        data,
        net_config,
        train_config,
        data_hash=data_hash,
        checkpoint=checkpoint,
        devices=devices,
        heldout=heldout,
        base=base,
        tiers=tiers,
    )
    start = int(loop.state.step)
    if start > 0 and progress:
        print(f"score training: resuming from step {start} of {train_config.steps} ({checkpoint})", flush=True)
    if heldout is not None and start == 0 and net_config.residual:
        loop.evaluate(0)  # the base alone: a correction must do better than none
    bar = progress_bar(progress, train_config.steps, initial=start, desc="score training", unit="step")
    try:
        loop.run(
            bar, log_every=log_every, checkpoint_every=checkpoint_every, callback=callback, on_checkpoint=on_checkpoint
        )
    finally:
        bar.close()
    return loop.state, loop.history, loop.heldout_history, loop.best_params
