"""Training a :class:`ScoreNet` on stationary snapshots (issue 4): Optax, EMA, checkpoints, data parallelism.

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
from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..io.progress import progress_bar
from ..samples import as_samples
from ..systems import AOUP
from .checkpoint import read_metadata_and_state, restore_tree, save_tree
from .data import Snapshots, gather_tokens, make_snapshots
from .losses import dsm_loss, implicit_loss
from .network import ScoreNet, ScoreNetConfig, init_params
from .score import Score
from .stream import (DEFAULT_MEMORY_BYTES, ResidentFrames, WindowStream, check_window_settings, frame_bytes,
                     plan_windows, read_window)

LOSSES = ("dsm", "implicit")
#: Frames of a streamed data set on which the neighbour cutoff's coverage is checked before training.
COVERAGE_FRAMES = 16


@dataclass(frozen=True)
class TrainConfig:
    """Everything besides the data and the architecture that determines a training run.

    ``sigmas`` are the denoising noise levels (one per particle drawn uniformly when several; ignored by the
    implicit loss). The learning rate warms up linearly from 0 over ``warmup_steps`` and then decays by a
    cosine to ``final_lr_fraction × learning_rate`` at ``n_steps``. The EMA uses decay
    ``min(ema_decay, (1 + t)/(10 + t))`` so that short runs are not dominated by the initial weights.
    """

    loss: str = "dsm"
    sigmas: tuple = (0.01,)
    n_steps: int = 10_000
    batch_particles: int = 256
    learning_rate: float = 1e-3
    warmup_steps: int = 500
    final_lr_fraction: float = 0.01
    optimizer: str = "radam"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss == "dsm" and (not self.sigmas or any(not s > 0 for s in self.sigmas)):
            raise ValueError(f"dsm needs positive noise levels, got sigma={self.sigmas}")
        if self.optimizer not in ("radam", "adamw"):
            raise ValueError(f"optimizer must be 'radam' or 'adamw', got {self.optimizer!r}")
        if self.n_steps < 1 or self.batch_particles < 1 or not 0 <= self.warmup_steps:
            raise ValueError("n_steps and batch_particles must be >= 1 and warmup_steps >= 0")
        if not (self.learning_rate > 0 and 0 <= self.ema_decay < 1 and self.grad_clip > 0):
            raise ValueError("need learning_rate > 0, 0 <= ema_decay < 1 and grad_clip > 0")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d


def _run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(initialisation key, step key)``; step t draws from ``fold_in(step key, t)``."""
    init_key, step_key = jax.random.split(jax.random.PRNGKey(seed))
    return init_key, step_key


class TrainState(NamedTuple):
    step: jax.Array
    params: object
    opt_state: object
    ema_params: object


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping, then RAdam or AdamW on a warm-up + cosine-decay schedule."""
    warmup = min(config.warmup_steps, config.n_steps - 1)
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=warmup, decay_steps=config.n_steps,
        end_value=config.learning_rate * config.final_lr_fraction)
    if config.optimizer == "radam":
        inner = optax.chain(optax.scale_by_radam(), optax.add_decayed_weights(config.weight_decay),
                            optax.scale_by_learning_rate(schedule))
    else:
        inner = optax.adamw(schedule, weight_decay=config.weight_decay)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), inner)


def init_state(net_config: ScoreNetConfig, train_config: TrainConfig) -> TrainState:
    """Step-0 state: fresh weights from the run's seed, their copy as the EMA, a fresh optimiser state."""
    init_key, _ = _run_keys(train_config.seed)
    params = init_params(net_config, init_key)
    opt_state = make_optimizer(train_config).init(params)
    ema_params = jax.tree_util.tree_map(jnp.copy, params)  # distinct buffers: the step donates its input
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state, ema_params)


def make_loss(net_config: ScoreNetConfig, train_config: TrainConfig) -> Callable:
    """``loss(params, tokens, key) -> scalar`` for the configured loss (tokens carry log σ per particle)."""
    apply = ScoreNet(net_config).apply
    predict_x = net_config.predict_x
    if train_config.loss == "implicit":
        return lambda params, tokens, key: implicit_loss(apply, params, tokens, predict_x)
    return lambda params, tokens, key: dsm_loss(apply, params, tokens, key, jnp.exp(tokens.log_sigma), predict_x)


@functools.lru_cache(maxsize=8)  # the same run settings compile once per process (resumes, repeated runs)
def make_train_step(net_config: ScoreNetConfig, train_config: TrainConfig, box_length: float, mesh: Mesh):
    """The compiled step ``(state, snapshots) -> (state, loss)``, its minibatch sharded over ``mesh``.

    Step t uses ``fold_in(step key, t)`` for the minibatch (frames and particles uniformly with replacement),
    each particle's σ and the denoising noise.
    """
    loss_fn = make_loss(net_config, train_config)
    optimizer = make_optimizer(train_config)
    dtype = net_config.jnp_dtype
    # The implicit loss has no noise level; its tokens carry log σ = 0 (unused without σ conditioning).
    log_sigmas = jnp.log(jnp.asarray(train_config.sigmas or (1.0,), dtype))
    batch = train_config.batch_particles
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    _, base_key = _run_keys(train_config.seed)

    def step(state: TrainState, snapshots: Snapshots):
        key = jax.random.fold_in(base_key, state.step)
        frame_key, particle_key, sigma_key, noise_key = jax.random.split(key, 4)
        n_frames, n_particles = snapshots.x.shape[:2]
        frames = jax.random.randint(frame_key, (batch,), 0, n_frames)
        particles = jax.random.randint(particle_key, (batch,), 0, n_particles)
        log_sigma = log_sigmas[jax.random.randint(sigma_key, (batch,), 0, log_sigmas.shape[0])]
        tokens = gather_tokens(snapshots, frames, particles, box_length, log_sigma)
        tokens = jax.lax.with_sharding_constraint(tokens, batch_sharding)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, tokens, noise_key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        t = state.step.astype(dtype)
        decay = jnp.minimum(train_config.ema_decay, (1 + t) / (10 + t))
        ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p, state.ema_params, params)
        return TrainState(state.step + 1, params, opt_state, ema), loss

    return jax.jit(step, donate_argnums=0)


def _mesh(devices) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("data",))


def run_metadata(system, net_config: ScoreNetConfig, train_config: TrainConfig, data_hash: str,
                 windows: dict | None = None) -> dict:
    """What a checkpoint must match to be resumed (``windows``: the window plan of a streamed run)."""
    metadata = {"system": system.to_dict(), "network": net_config.to_dict(), "training": train_config.to_dict(),
                "data": data_hash}
    if windows is not None:
        metadata["windows"] = windows
    return metadata


def train(system, data: Snapshots | WindowStream, net_config: ScoreNetConfig, train_config: TrainConfig, *,
          data_hash: str, checkpoint=None, checkpoint_every: int = 1000, log_every: int = 100,
          progress: bool = True, devices=None, callback: Callable | None = None):
    """Run (or resume) training; returns ``(final TrainState, loss history [(step, mean loss)])``.

    ``data``: host snapshots of all frames, or a :class:`WindowStream` of a data set's windows.
    ``callback(step, loss)`` is called at every logging point (after the checkpoint of that step, if any).
    """
    data = ResidentFrames(data) if isinstance(data, Snapshots) else data
    windows = None if data.plan is None else data.plan.to_dict()
    mesh = _mesh(devices)
    n_devices = mesh.devices.size
    if train_config.batch_particles % n_devices:
        raise ValueError(f"batch_particles ({train_config.batch_particles}) must be a multiple of the number of "
                         f"devices ({n_devices})")
    metadata = json.loads(json.dumps(run_metadata(system, net_config, train_config, data_hash, windows)))
    state = init_state(net_config, train_config)
    history: list = []
    if checkpoint is not None and os.path.exists(checkpoint):
        saved, raw = read_metadata_and_state(checkpoint, "a training checkpoint")
        saved_history = saved.pop("history", [])
        if saved != metadata:
            raise ValueError(f"checkpoint {checkpoint} belongs to another run (different system, network, training "
                             "settings or data); remove it or choose another path")
        state = restore_tree(checkpoint, raw, state, "a training checkpoint")
        # Own copies: the step donates its state, which must not alias host memory owned by NumPy.
        state = TrainState(*(jax.tree_util.tree_map(lambda a: jnp.array(a, copy=True), s) for s in state))
        history = [tuple(h) for h in saved_history]

    replicated = NamedSharding(mesh, PartitionSpec())
    state = jax.device_put(state, replicated)
    step_fn = make_train_step(net_config, train_config, float(system.box_length), mesh)

    def save(state):
        if checkpoint is not None:
            save_tree(checkpoint, state, {**metadata, "history": history})

    start = int(state.step)
    bar = progress_bar(progress, train_config.n_steps, initial=start, desc="score training", unit="step")
    losses = []
    snapshots = None
    try:
        for step in range(start, train_config.n_steps):
            if snapshots is None or data.starts_window(step):
                snapshots = None  # drop the finished window first: only it and the next one being read are held
                snapshots = data.window_at(step, lambda tree: jax.device_put(tree, replicated))
            state, loss = step_fn(state, snapshots)
            losses.append(loss)
            done = step + 1
            if done % log_every == 0 or done == train_config.n_steps:
                mean_loss = float(jnp.mean(jnp.stack(losses)))
                losses = []
                history.append((done, mean_loss))
                if done % checkpoint_every == 0 or done == train_config.n_steps:
                    save(state)
                bar.set_postfix(loss=f"{mean_loss:.4g}", refresh=False)
                bar.update(done - bar.n)
                if callback is not None:
                    callback(done, mean_loss)
            elif done % checkpoint_every == 0:
                save(state)
    finally:
        bar.close()
    return state, history


def hypoelliptic_inputs(system) -> dict:
    """Network options for an interacting AOUP without translational noise (ε = 0, the paper's MIPS case): the
    Gaussian baseline −g, outputs scaled by 1/√γ and every token's interaction force in units of v0. In the
    README's MIPS study they raise the learned EPR 5-21× at equal training. Empty for other systems."""
    if not isinstance(system, AOUP) or system.eps > 0 or system.k == 0:
        return {}
    return dict(gaussian_baseline=True, output_scale=1.0 / math.sqrt(system.gamma), force_input=True,
                force_unit=float(system.v0) if system.v0 > 0 else 1.0)


def default_network(system, n_sigmas: int, n_particles: int) -> ScoreNetConfig:
    """The small network with the heads and inputs the system needs: with an x head and k < N a cutoff of
    1.25 × the largest particle diameter (the pair-force range of soft disks, plus the envelope's width); for an
    interacting AOUP with ε = 0 the inputs of :func:`hypoelliptic_inputs`."""
    config = ScoreNetConfig.small(predict_x=system.eps > 0, absolute_position=system.trap > 0,
                                  sigma_conditioning=n_sigmas > 1, **hypoelliptic_inputs(system))
    if config.predict_x and config.k < n_particles:
        diameter = 2.0 * float(np.max(system.radius))
        config = config.replace(cutoff=1.25 * diameter, cutoff_width=0.25 * diameter)
    return config


def check_cutoff_coverage(x: np.ndarray, neighbours: np.ndarray, box_length: float, reach: float,
                          tolerance: float = 1e-3) -> float:
    """Fraction of particles whose k-th neighbour lies within ``reach`` (cutoff plus noise margin); warns when
    it exceeds ``tolerance``: there the truncated set may cut through the cutoff sphere."""
    from .neighbours import minimum_image

    frames = np.arange(x.shape[0])[:, None]
    farthest = minimum_image(x - x[frames, neighbours[..., -1]], box_length)
    fraction = float(np.mean(np.sum(farthest**2, axis=-1) <= reach**2))
    if fraction > tolerance:
        warnings.warn(f"{fraction:.2%} of particles have k nearest neighbours all within {reach:.3g} (cutoff + "
                      "noise margin): raise k or lower the cutoff", stacklevel=3)
    return fraction


def check_network(system, config: ScoreNetConfig, train_config: TrainConfig, n_particles: int) -> None:
    """Refuse settings that cannot learn the requested score; warn about doubtful ones."""
    if config.predict_x and config.cutoff is None and 1 < config.k < n_particles:
        raise ValueError("learning s_x with a truncated neighbour set (k < N) needs a cutoff "
                         "(ScoreNetConfig(cutoff=...), a few interaction ranges, with fewer than k particles inside): "
                         "without it the network is discontinuous where the k-nearest set changes and both losses "
                         "reward exploiting that")
    if config.predict_x and not system.eps > 0:
        raise ValueError("predict_x needs eps > 0: without translational noise the x-score is not learnable "
                         "(and the EPR needs only s_g)")
    if train_config.loss == "dsm" and len(train_config.sigmas) > 1 and not config.sigma_conditioning:
        raise ValueError("several sigmas need a sigma-conditioned network (ScoreNetConfig(sigma_conditioning=True))")
    if system.trap > 0 and not config.absolute_position:
        warnings.warn("the system is trapped (trap > 0) but the network has no absolute_position input: it can "
                      "only learn a translation-invariant approximation of the score", stacklevel=3)
    if system.eps > 0 and not config.predict_x:
        warnings.warn("eps > 0 but the network has no x head: only s_g is learned (the EPR needs s_x too)",
                      stacklevel=3)


def train_score(system, samples, config: ScoreNetConfig | None = None, *, loss: str = "dsm", sigma=0.01,
                n_steps: int = 10_000, batch_particles: int = 256, learning_rate: float = 1e-3, seed: int = 0,
                checkpoint=None, progress: bool = True, warmup_steps: int | None = None,
                final_lr_fraction: float = 0.01, optimizer: str = "radam", weight_decay: float = 0.0,
                grad_clip: float = 1.0, ema_decay: float = 0.999, checkpoint_every: int = 1000,
                log_every: int = 100, devices=None, callback: Callable | None = None,
                frames_in_memory: int | None = None, steps_per_window: int | None = None) -> Score:
    """Learn the per-particle score of ``system`` from stationary ``samples``.

    Args:
        system: an :class:`activescore.AOUP` (uses ``box_length``, ``eps``, ``trap``, ``to_dict()``).
        samples: anything :func:`activescore.samples.as_samples` accepts: a :class:`activescore.Trajectory`, a
            tuple ``(x, g)`` of (frames, N, 2) arrays, a GSD file written by activescore, or a data set
            (:class:`activescore.io.dataset.SnapshotDataset` or its folder). Frames should be
            stationary (after burn-in).
        config: the network (default: :meth:`ScoreNetConfig.small` with an x head when ε > 0, the absolute
            position when trapped, σ conditioning when several σ).
        loss: ``"dsm"`` (antithetic denoising; learns the score of the σ-smoothed density) or ``"implicit"``
            (Hyvärinen; learns the score itself, costs 2-4 extra forward-mode passes).
        sigma: denoising noise level, or a sequence of levels for one σ-conditioned network.
        n_steps, batch_particles, learning_rate, warmup_steps (default min(1000, n_steps // 10)),
            final_lr_fraction, optimizer (``"radam"`` or ``"adamw"``), weight_decay, grad_clip, ema_decay:
            optimisation settings (see :class:`TrainConfig`).
        seed: fixes initialisation, minibatches and noise: equal seeds give equal runs.
        checkpoint: path of a checkpoint file, written atomically every ``checkpoint_every`` steps and at the
            end; if it exists the run resumes from it (and ends where an unbroken run would).
        progress: show a tqdm bar with the running loss (updated every ``log_every`` steps).
        devices: JAX devices for data parallelism (default: all visible); ``batch_particles`` must divide evenly.
        callback: ``callback(step, loss)`` at every logging point.
        frames_in_memory: for a data set, the most frames held in memory at once (default: as many as fit
            1 GiB). A data set with more frames is streamed: training sees a window of ``frames_in_memory // 2``
            frames on the device while the next window is read in the background, a new one every
            ``steps_per_window`` steps (default: each particle of a window drawn about once). Windows follow a
            shuffled order fixed by ``seed``, every frame once per epoch. Samples already in memory are always
            used whole.

    Returns:
        a :class:`Score` holding the EMA weights.
    """
    check_window_settings(frames_in_memory, steps_per_window)
    sigmas = tuple(float(s) for s in np.atleast_1d(sigma)) if loss == "dsm" else ()
    train_config = TrainConfig(
        loss=loss, sigmas=sigmas, n_steps=int(n_steps), batch_particles=int(batch_particles),
        learning_rate=float(learning_rate),
        warmup_steps=int(min(1000, n_steps // 10) if warmup_steps is None else warmup_steps),
        final_lr_fraction=float(final_lr_fraction), optimizer=optimizer, weight_decay=float(weight_decay),
        grad_clip=float(grad_clip), ema_decay=float(ema_decay), seed=int(seed))
    samples = as_samples(samples)
    n_frames, n_particles = len(samples), samples.n_particles
    config = default_network(system, len(sigmas), n_particles) if config is None else config
    check_network(system, config, train_config, n_particles)
    if n_particles != system.n_particles:
        warnings.warn(f"samples have {n_particles} particles, the system {system.n_particles}", stacklevel=2)
    # Fewer particles than tokens: use them all (the network does not depend on the token count).
    k = min(config.k, n_particles)
    box_length = float(system.box_length)
    force_system = system if config.force_input else None
    plan = None
    if not samples.in_memory:
        per_frame = frame_bytes(n_particles, k, config.jnp_dtype, config.force_input)
        budget = frames_in_memory or max(2, DEFAULT_MEMORY_BYTES // per_frame)
        plan = plan_windows(n_frames, n_particles, budget, steps_per_window, train_config.batch_particles,
                            train_config.seed)
    if plan is None:
        x, g = samples.load()
        data = make_snapshots(x, g, box_length, k, config.jnp_dtype, system=force_system)
        coverage_sample = x, data.neighbours
    else:
        read = functools.partial(read_window, samples, box_length=box_length, k=k, dtype=config.jnp_dtype,
                                 system=force_system)
        data = WindowStream(plan, read, train_config.n_steps)
        first = read(range(min(n_frames, COVERAGE_FRAMES)))  # the whole set is never in memory: check a sample
        coverage_sample = first.x, first.neighbours
    if config.cutoff is not None and k < n_particles:
        noise_margin = 4 * max(sigmas, default=0.0)  # DSM moves displacements by ≈ σ√2 per component
        check_cutoff_coverage(*coverage_sample, box_length, config.cutoff + noise_margin)
    data_hash = samples.fingerprint()  # a data set's hash reads no frame
    try:
        state, history = train(system, data, config, train_config, data_hash=data_hash, checkpoint=checkpoint,
                               checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                               devices=devices, callback=callback)
    finally:
        if plan is not None:
            data.close()
    info = {"loss": loss, "n_steps": train_config.n_steps, "seed": train_config.seed,
            "batch_particles": train_config.batch_particles, "n_frames": int(n_frames),
            "n_particles": int(n_particles), "history": history, "training": train_config.to_dict()}
    if plan is not None:
        info["windows"] = plan.to_dict()
    return Score(system, config, jax.device_get(state.ema_params), sigmas=sigmas, info=info)

