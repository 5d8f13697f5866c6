"""Training a :class:`ScoreNet` on stationary snapshots: Optax, EMA, checkpoints, data parallelism.

A step draws ``batch_particles`` (frame, particle) pairs uniformly from the snapshots on the device, gathers
their tokens there, and takes one optimiser step on the chosen loss. The snapshots are all frames or, for a data
set larger than the memory budget, a window of frames replaced every few steps (stream.py). Every random number
of step t comes from ``fold_in(PRNGKey(seed), t)`` and its window from (seed, t), so a run is a pure function of
(data, settings, seed) and a run resumed from a checkpoint retraces the unbroken one exactly. The minibatch is
split across all visible devices (or those given) along one mesh axis; parameters and data are replicated and
gradients are averaged by the compiler.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ..io.progress import progress_bar
from ..samples import as_samples, check_frames
from .checkpoint import read_metadata_and_state, restore_tree, save_tree
from .data import Snapshots, make_snapshots
from .defaults import (
    NEIGHBOUR_SAMPLE_FRAMES,
    STACK_FIT_FRAMES,
    check_network,
    default_network,
    stacked_recipe,
)
from .network import ScoreNetConfig
from .score import Score
from .settings import TrainConfig
from .step import TrainState, device_mesh, init_state, make_train_step
from .stream import (
    DEFAULT_MEMORY_BYTES,
    ResidentFrames,
    WindowStream,
    check_window_settings,
    frame_bytes,
    plan_windows,
    read_window,
)
from .tiers import TokenTiers, training_tiers
from .validation import HeldOut, _keep_best, _stopped, validate


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
    ``train_config.validate_every`` steps and, with ``early_stopping``, the run ends once the held-out loss has stayed
    clearly above its best for ``patience`` evaluations (:func:`validation._stopped`). ``on_checkpoint(state, heldout_history, last)`` runs after every
    checkpoint (``last``: the run ends there). ``base``: the record of the base score whose residual the network
    learns (the data's ``offset``), part of what a resumed checkpoint must match. ``tiers``: compute each minibatch
    in these token tiers (:mod:`activescore.learning.tiers`; the data carry ``needed``): the same loss, cheaper.
    """
    frames: ResidentFrames | WindowStream = ResidentFrames(data) if isinstance(data, Snapshots) else data
    windows = None if frames.plan is None else frames.plan.to_dict()
    mesh = device_mesh(devices)
    n_devices = mesh.devices.size
    if train_config.batch_particles % n_devices:
        raise ValueError(
            f"batch_particles ({train_config.batch_particles}) must be a multiple of the number of "
            f"devices ({n_devices})"
        )
    metadata = json.loads(json.dumps(run_metadata(system, net_config, train_config, data_hash, windows, base)))
    state = init_state(net_config, train_config)
    history: list = []
    heldout_history: list = []
    best_params = _host_copy(state.ema_params)  # the EMA weights of the best held-out evaluation
    if checkpoint is not None and os.path.exists(checkpoint):
        saved, raw = read_metadata_and_state(checkpoint, "a training checkpoint")
        saved_history = saved.pop("history", [])
        saved_heldout = saved.pop("heldout", [])
        saved.pop("validation", None)
        if saved != metadata:
            raise ValueError(
                f"checkpoint {checkpoint} belongs to another run (different system, network, training "
                "settings or data); remove it or choose another path"
            )
        state, best_params = restore_tree(checkpoint, raw, (state, best_params), "a training checkpoint")
        # Own copies: the step donates its state, which must not alias host memory owned by NumPy.
        state = TrainState(*(jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), s) for s in state))
        history = [tuple(h) for h in saved_history]
        heldout_history = [tuple(h) for h in saved_heldout]

    replicated = NamedSharding(mesh, PartitionSpec())
    state = jax.device_put(state, replicated)
    step_fn = make_train_step(net_config, train_config, float(system.box_length), mesh, tiers)

    def save(state):
        if checkpoint is not None:
            save_tree(checkpoint, (state, best_params), {**metadata, "history": history, "heldout": heldout_history})
            if on_checkpoint is not None:
                on_checkpoint(state, heldout_history, int(state.step) == train_config.steps or stopped())

    def stopped() -> bool:
        return heldout is not None and train_config.early_stopping and _stopped(heldout_history, train_config.patience)

    def record_heldout(step: int, params) -> None:
        nonlocal best_params
        assert heldout is not None
        loss = heldout(params)
        if not heldout_history or loss < min(h[1] for h in heldout_history):
            best_params = _host_copy(params)
        heldout_history.append((step, loss))

    start = int(state.step)
    if heldout is not None and start == 0 and net_config.residual:
        record_heldout(0, state.ema_params)  # the base alone: a correction must do better than none
    bar = progress_bar(progress, train_config.steps, initial=start, desc="score training", unit="step")
    losses = []
    snapshots = None
    try:
        for step in range(start, train_config.steps):
            if stopped():
                break
            if snapshots is None or frames.starts_window(step):
                snapshots = None  # drop the finished window first: only it and the next one being read are held
                snapshots = frames.window_at(step, lambda tree: jax.device_put(tree, replicated))
            state, loss = step_fn(state, snapshots)
            losses.append(loss)
            done = step + 1
            evaluate = heldout is not None and (done % train_config.validate_every == 0 or done == train_config.steps)
            if evaluate and heldout is not None:
                record_heldout(done, state.ema_params)
            last = done == train_config.steps or (evaluate and stopped())
            if done % log_every == 0 or last:
                mean_loss = float(jnp.mean(jnp.stack(losses)))
                losses = []
                history.append((done, mean_loss))
                if done % checkpoint_every == 0 or last:
                    save(state)
                postfix = {"loss": f"{mean_loss:.4g}"}
                if heldout_history:
                    postfix["held-out"] = f"{heldout_history[-1][1]:.4g}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(done - bar.n)
                if callback is not None:
                    callback(done, mean_loss)
            elif done % checkpoint_every == 0:
                save(state)
    finally:
        bar.close()
    return state, history, heldout_history, best_params


#: ``train_score`` keywords of earlier versions that are now fields of :class:`TrainConfig`.
_LEGACY_TRAINING = (
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


def _legacy_training(train_config: TrainConfig | None, legacy: dict) -> TrainConfig:
    unknown = sorted(set(legacy) - set(_LEGACY_TRAINING))
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


def _check_samples_system(system, samples, n_particles: int) -> None:
    """Samples of another system are refused (their own system, when they carry one, must be ``system``)."""
    own = getattr(samples, "system", None)
    if own is not None and own.to_dict() != system.to_dict():
        raise ValueError(
            f"samples: they belong to {own!r}, not to the system {system!r}; train with their own "
            "system (samples.system)"
        )
    if n_particles != system.n_particles:
        raise ValueError(
            f"samples: frames of {n_particles} particles, but the system has {system.n_particles}; "
            "pass the samples' own system"
        )


def _check_base(system, base, loss: str):
    """The base score of a residual network (``train_score``'s ``base``; None for "auto" and None), checked."""
    if isinstance(base, str):
        if base != "auto":
            raise ValueError(f"base: expected 'auto', None or a score (e.g. a LinearScore), got {base!r}")
        return None
    if base is None:
        return None
    if not (callable(base) and hasattr(base, "divergence_g") and hasattr(base, "to_dict")):
        raise ValueError(f"base: expected 'auto', None or a score such as a LinearScore, got {type(base).__name__}")
    if loss != "implicit":
        raise ValueError(
            "base: a network on the residual of a base score is trained by the implicit loss (denoising would need "
            "the base at perturbed configurations); use TrainConfig(loss='implicit') or base=None"
        )
    if base.system.to_dict() != system.to_dict():
        raise ValueError(f"base: it is a score of {base.system!r}, not of the system {system!r}")
    return base


def _stacked_score(system, network: Score, samples, n_train: int, x_held, g_held) -> Score:
    """The default for interacting AOUPs with ε = 0: the trained network refitted together with the drift-response
    features on (a sample of) the training frames, validated on the held-out ones (:mod:`.stacking`)."""
    from .linear import DEFAULT_ORDER
    from .stacking import stack, stacked_normal_equations

    picks = np.unique(np.linspace(0, n_train - 1, min(n_train, STACK_FIT_FRAMES)).round().astype(int))
    x_fit, g_fit = check_frames(*samples.load(picks))
    score = stack(system, network, x_fit, g_fit, DEFAULT_ORDER)
    network_validation = network.info.get("validation")
    if network_validation is not None:
        score.info["network_validation"] = network_validation
    if x_held is None:
        return score
    gram, rhs = stacked_normal_equations(system, network, x_held, g_held, DEFAULT_ORDER)
    c = np.asarray(score.info["stack"]["coefficients"])
    record = dict(network_validation or {})
    loss = {
        # The implicit loss per particle, up to its constant E|g|² − 2d (the normal equations sum over particles).
        "loss": float(c @ gram @ c - 2 * c @ rhs) / x_held.shape[1],
        "loss_name": "implicit (network and features refitted in closed form)",
        "best_step": record.get("best_step", 0),
        "steps": record.get("steps", 0),
        "stopped_early": record.get("stopped_early", False),
    }
    advice = (
        "the network and the drift-response features together miss part of the score here (README, The paper's "
        "regime): train on more frames and for more steps, or use a larger network"
    )
    score.info["validation"] = validate(system, score, x_held, g_held, loss, advice).to_dict()
    return score


def _split_frames(n_frames: int, holdout: float) -> int:
    """Training frames of ``n_frames``: the last ``holdout`` fraction (at least two frames) is held out; none when
    ``holdout`` is 0 or fewer than two frames would remain for training."""
    if holdout <= 0:
        return n_frames
    held = max(2, math.ceil(holdout * n_frames))
    if n_frames - held < 2:
        return n_frames
    return n_frames - held


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

    Args:
        system: an :class:`activescore.AOUP` or :class:`activescore.ABP` (the samples' own system).
        samples: anything :func:`activescore.samples.as_samples` accepts: a :class:`activescore.Trajectory`, a
            tuple ``(x, g)`` of (frames, N, 2) arrays, a GSD file written by activescore, or a data set
            (:class:`activescore.io.dataset.SnapshotDataset` or its folder). Frames should be
            stationary (after burn-in).
        network: a :class:`ScoreNetConfig`, or a preset name ``"small"`` (default) or ``"paper"`` whose heads,
            inputs and neighbour set follow the system and the data
            (:func:`activescore.learning.defaults.default_network`). A given network is checked and refused
            (ValueError saying what to change) when it cannot learn the score.
        train: a :class:`TrainConfig` (default: ``TrainConfig()``; its steps grow with the data).
        checkpoint: path of a checkpoint file, written atomically every ``checkpoint_every`` steps and at the
            end; if it exists the run resumes from it (and ends where an unbroken run would).
        progress: show a tqdm bar with the running and held-out losses, and print the validation block.
        log_every: steps between loss records (and ``callback`` calls).
        devices: JAX devices for data parallelism (default: all visible); ``batch_particles`` must divide evenly.
        callback: ``callback(step, loss)`` at every logging point.
        frames_in_memory: for a data set, the most frames held in memory at once (default: as many as fit
            1 GiB). A data set with more frames is streamed: training sees a window of ``frames_in_memory // 2``
            frames on the device while the next window is read in the background, a new one every
            ``steps_per_window`` steps (default: each particle of a window drawn about once). Windows follow a
            shuffled order fixed by the seed, every frame once per epoch. Samples already in memory are always
            used whole.
        base: ``"auto"`` (default): for interacting AOUPs with ε = 0 the trained network is then refitted
            together with the drift-response features in closed form (:mod:`activescore.learning.stacking`), for
            other systems it is the whole score; None: the network alone, always; a score such as a
            :class:`~activescore.learning.linear.LinearScore`: a network trained on its residual (with the
            implicit loss) and returned added to it.
        **legacy: the keywords of earlier versions (``loss``, ``sigma``, ``n_steps``, ...): deprecated, forwarded
            to ``train``.

    Returns:
        a :class:`Score` holding the EMA weights; ``score.validation`` holds its validation on the held-out frames.
    """
    check_window_settings(frames_in_memory, steps_per_window)
    if isinstance(network, TrainConfig):  # train_score(system, samples, TrainConfig(...))
        network, train = None, network
    train_config = _legacy_training(train, legacy)
    sigmas = train_config.effective_sigmas
    samples = as_samples(samples)
    n_frames, n_particles = len(samples), samples.n_particles
    _check_samples_system(system, samples, n_particles)
    n_train = _split_frames(n_frames, train_config.holdout)
    # A sample of the training frames for the network's neighbour count and checks (a data set is not read whole).
    picks = np.unique(np.linspace(0, n_train - 1, min(n_train, NEIGHBOUR_SAMPLE_FRAMES)).round().astype(int))
    x_sample = samples.load(picks)[0]
    stacking = isinstance(base, str) and base == "auto" and stacked_recipe(system)
    base = _check_base(system, base, train_config.loss)
    if network is None or isinstance(network, str):
        config = default_network(
            system,
            x_sample,
            preset=network or "small",
            loss=train_config.loss,
            sigmas=sigmas,
            residual=base is not None,
        )
    else:
        config = network
    check_network(system, config, loss=train_config.loss, sigmas=sigmas, x=x_sample)
    if config.residual != (base is not None):
        raise ValueError(
            "network: residual=True needs a base score (base='auto' or a score), and a base needs a residual network"
            if base is None
            else "network: a network on the residual of a base score needs residual=True (and no gaussian_baseline)"
        )
    train_config = train_config.resolved(n_train * n_particles)
    # Fewer particles than tokens: use them all (the network does not depend on the token count).
    k = min(config.k, n_particles)
    box_length = float(system.box_length)
    force_system = system if config.force_input else None
    # With a cutoff, each particle needs only its tokens within reach: minibatches are computed in token tiers.
    reach, tiers = training_tiers(
        config,
        train_config.loss,
        sigmas,
        x_sample,
        box_length,
        train_config.batch_particles,
        k,
        len(jax.devices() if devices is None else devices),
        seed=train_config.seed,
        steps=train_config.steps,
    )
    plan = None
    if not samples.in_memory:
        offset_dim = 0 if base is None else config.output_dim
        per_frame = frame_bytes(n_particles, k, config.jnp_dtype, config.force_input, offset_dim)
        budget = frames_in_memory or max(2, DEFAULT_MEMORY_BYTES // per_frame)
        plan = plan_windows(
            n_train, n_particles, budget, steps_per_window, train_config.batch_particles, train_config.seed
        )
    data: Snapshots | WindowStream
    if plan is None:
        x, g = samples.load()
        data = make_snapshots(
            x[:n_train], g[:n_train], box_length, k, config.jnp_dtype, system=force_system, base=base, reach=reach
        )
    else:
        read = functools.partial(
            read_window,
            samples,
            box_length=box_length,
            k=k,
            dtype=config.jnp_dtype,
            system=force_system,
            base=base,
            reach=reach,
        )
        data = WindowStream(plan, read, train_config.steps)
    heldout: HeldOut | None = None
    x_held = g_held = None
    if n_train < n_frames:
        if plan is None:
            x_held, g_held = x[n_train:], g[n_train:]
        else:
            x_held, g_held = check_frames(*samples.load(range(n_train, n_frames)))
        heldout = HeldOut(
            make_snapshots(x_held, g_held, box_length, k, config.jnp_dtype, system=force_system, base=base),
            config,
            train_config,
            box_length,
        )
    data_hash = samples.fingerprint()  # a data set's hash reads no frame

    def info(history, heldout_history, steps) -> dict:
        record = {
            "loss": train_config.loss,
            "n_steps": steps,
            "seed": train_config.seed,
            "batch_particles": train_config.batch_particles,
            "n_frames": int(n_train),
            "heldout_frames": int(n_frames - n_train),
            "n_particles": int(n_particles),
            "history": history,
            "heldout_history": heldout_history,
            "training": train_config.to_dict(),
            "token_tiers": None if tiers is None else [list(tier) for tier in tiers],
        }
        if plan is not None:
            record["windows"] = plan.to_dict()
        return record

    def validation_of(params, history, heldout_history, steps, quiet=False, final=True, best=False):
        record = info(history, heldout_history, steps)
        score = Score(system, config, jax.device_get(params), sigmas=sigmas, info=record, base=base)
        if heldout is None:
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
        if quiet:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score.info["validation"] = validate(system, score, x_held, g_held, loss).to_dict()
        else:
            score.info["validation"] = validate(system, score, x_held, g_held, loss).to_dict()
        return score

    checkpoint_reports = []

    def report_checkpoint(state, heldout_history, last):
        # The validation of every intermediate checkpoint, in one line; the final one is the score's own block.
        if heldout is None or last:
            return
        step = int(state.step)
        losses = list(heldout_history)
        if not losses or losses[-1][0] != step:
            losses.append((step, heldout(state.ema_params)))
        validation = validation_of(state.ema_params, [], losses, step, quiet=True, final=False).validation
        line = {"step": step, "loss": validation["loss"]}
        text = f"checkpoint at step {step}: held-out {train_config.heldout_loss} loss {validation['loss']:.5g}"
        if "ratio" in validation.record:
            ratio, se = validation.ratio("quadratic")
            line.update(ratio=ratio, ratio_stderr=se, consistent=validation.consistent)
            text += f", learned/identity {ratio:.4g} ± {se:.2g}"
        checkpoint_reports.append(line)
        if progress:
            from tqdm.auto import tqdm

            tqdm.write(text)

    try:
        state, history, heldout_history, best_params = run_training(
            system,
            data,
            config,
            train_config,
            data_hash=data_hash,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            log_every=log_every,
            progress=progress,
            devices=devices,
            callback=callback,
            heldout=heldout,
            on_checkpoint=report_checkpoint,
            base=None if base is None else base.to_dict(),
            tiers=tiers,
        )
    finally:
        if isinstance(data, WindowStream):
            data.close()
    # The final EMA weights, or the best held-out evaluation's when the final loss lies clearly above it (overfitted).
    best = heldout is not None and _keep_best(heldout_history, train_config.patience)
    params = best_params if best else state.ema_params
    # With stacking the network alone is an intermediate: its validation is kept, its warning is not given.
    score = validation_of(params, history, heldout_history, int(state.step), quiet=stacking, best=best)
    if checkpoint_reports:
        score.info["checkpoint_validations"] = checkpoint_reports
    if stacking:
        score = _stacked_score(system, score, samples, n_train, x_held, g_held)
    if progress and score.validation is not None:
        print(score.validation, flush=True)
    return score
