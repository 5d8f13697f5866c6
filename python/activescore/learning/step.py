"""The compiled training step: optimiser, loss and minibatch of one step, sharded over a device mesh.

Every random number of step t comes from ``fold_in(PRNGKey(seed), t)``, so a run is a pure function of (data,
settings, seed) and a run resumed from a checkpoint retraces the unbroken one exactly. The minibatch is split
across the mesh's devices along one axis; parameters and data are replicated and gradients are averaged by the
compiler.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .data import Snapshots, gather_tokens
from .network import ScoreNet, ScoreNetConfig, init_params
from .settings import LOSSES, TrainConfig
from .tiers import TokenTiers, check_tiers, is_plain


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
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
    warmup = min(config.warmup_steps or 0, config.steps - 1)
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=warmup,
        decay_steps=config.steps,
        end_value=config.learning_rate * config.final_lr_fraction,
    )
    if config.optimizer == "radam":
        inner = optax.chain(
            optax.scale_by_radam(),
            optax.add_decayed_weights(config.weight_decay),
            optax.scale_by_learning_rate(schedule),
        )
    else:
        inner = optax.adamw(schedule, weight_decay=config.weight_decay)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), inner)


def init_state(net_config: ScoreNetConfig, train_config: TrainConfig) -> TrainState:
    """Step-0 state: fresh weights from the run's seed, their copy as the EMA, a fresh optimiser state."""
    init_key, _ = run_keys(train_config.seed)
    params = init_params(net_config, init_key)
    opt_state = jax.jit(make_optimizer(train_config).init)(params)  # one compiled call, as init_params
    ema_params = jax.tree_util.tree_map(jnp.copy, params)  # distinct buffers: the step donates its input
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state, ema_params)


def make_loss(net_config: ScoreNetConfig, train_config: TrainConfig) -> Callable:
    """``loss(params, tokens, key, zeta=None) -> scalar`` for the configured loss (tokens carry log σ per
    particle; ``zeta``: denoising's noise, else drawn from ``key``)."""
    apply = ScoreNet(net_config).apply
    predict_x, angle = net_config.predict_x, net_config.angle
    objective = LOSSES[train_config.loss].function()
    return lambda params, tokens, key, zeta=None: objective(apply, params, tokens, key, zeta, predict_x, angle)


def plain_loss(loss_fn: Callable, sharding, box_length: float) -> Callable:
    """``loss(params, snapshots, frames, particles, log_sigma, key)`` of a minibatch computed whole: every particle
    at the snapshots' k tokens, the batch sharded by ``sharding``."""

    def loss(params, snapshots, frames, particles, log_sigma, key):
        tokens = gather_tokens(snapshots, frames, particles, box_length, log_sigma)
        return loss_fn(params, jax.lax.with_sharding_constraint(tokens, sharding), key)

    return loss


def tiered_loss(
    loss_fn: Callable,
    plain: Callable,
    net_config: ScoreNetConfig,
    train_config: TrainConfig,
    tiers: TokenTiers,
    sharding,
    box_length: float,
):
    """``loss(params, snapshots, frames, particles, log_sigma, key) -> (loss, grads)`` of a minibatch computed in
    token tiers (:mod:`activescore.learning.tiers`): the batch sorted by the tokens its particles need, each tier
    gathering its own number of tokens, the tiers' means weighted by their sizes. Denoising's noise is drawn for the
    whole batch at k tokens, as the plain step draws it, and each tier takes its rows and first tokens. When a
    particle needs more tokens than its tier holds, the batch is computed whole by ``plain`` (:func:`plain_loss`,
    under ``lax.cond``), so the loss and gradients are the plain step's either way (up to rounding)."""
    batch, dim = train_config.batch_particles, net_config.output_dim
    sizes = np.array([size for size, _ in tiers])
    counts = np.array([count for _, count in tiers])
    ends = np.cumsum(sizes)

    def in_tiers(params, snapshots, frames, particles, log_sigma, key, order, zeta):
        total = 0.0
        for end, size, count in zip(ends, sizes, counts, strict=True):
            rows = order[end - size : end]
            tokens = gather_tokens(snapshots, frames[rows], particles[rows], box_length, log_sigma[rows], int(count))
            tokens = jax.lax.with_sharding_constraint(tokens, sharding)
            noise = None if zeta is None else zeta[rows, :count]
            total = total + (int(size) / batch) * loss_fn(params, tokens, key, noise)  # a weakly typed Python float
        return total

    def loss_and_grads(params, snapshots, frames, particles, log_sigma, key):
        needed = snapshots.needed[frames, particles]
        order = jnp.argsort(needed)
        fits = jnp.all(needed[order][ends - 1] <= counts)
        zeta = None
        if LOSSES[train_config.loss].needs_sigma:  # what dsm_loss draws for the whole batch (k: lists' length, <= N)
            k = snapshots.neighbours.shape[-1]
            zeta = jax.random.normal(key, (batch, k, dim), snapshots.g.dtype)
        arguments = (snapshots, frames, particles, log_sigma, key)
        return jax.lax.cond(
            fits,
            lambda p: jax.value_and_grad(in_tiers)(p, *arguments, order, zeta),
            lambda p: jax.value_and_grad(plain)(p, *arguments),
            params,
        )

    return loss_and_grads


@functools.lru_cache(maxsize=8)  # the same run settings compile once per process (resumes, repeated runs)
def make_train_step(
    net_config: ScoreNetConfig,
    train_config: TrainConfig,
    box_length: float,
    mesh: Mesh,
    tiers: TokenTiers | None = None,
):
    """The compiled step ``(state, snapshots) -> (state, loss)``, its minibatch sharded over ``mesh``.

    Step t uses ``fold_in(step key, t)`` for the minibatch (frames and particles uniformly with replacement),
    each particle's σ and the denoising noise. ``tiers``: the minibatch is computed in these token tiers
    (:func:`tiered_loss`; the snapshots must carry ``needed``), with the same loss as without.
    """
    loss_fn = make_loss(net_config, train_config)
    optimizer = make_optimizer(train_config)
    dtype = net_config.jnp_dtype
    # The implicit loss has no noise level; its tokens carry log σ = 0 (unused without σ conditioning).
    log_sigmas = jnp.log(jnp.asarray(train_config.sigmas or (1.0,), dtype))
    batch = train_config.batch_particles
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    _, base_key = run_keys(train_config.seed)
    plain = plain_loss(loss_fn, batch_sharding, box_length)
    loss_and_grads = jax.value_and_grad(plain)
    if tiers is not None and not is_plain(tiers, batch, net_config.k):
        check_tiers(tiers, batch, net_config.k)
        loss_and_grads = tiered_loss(loss_fn, plain, net_config, train_config, tiers, batch_sharding, box_length)

    def step(state: TrainState, snapshots: Snapshots):
        key = jax.random.fold_in(base_key, state.step)
        frame_key, particle_key, sigma_key, noise_key = jax.random.split(key, 4)
        n_frames, n_particles = snapshots.x.shape[:2]
        frames = jax.random.randint(frame_key, (batch,), 0, n_frames)
        particles = jax.random.randint(particle_key, (batch,), 0, n_particles)
        log_sigma = log_sigmas[jax.random.randint(sigma_key, (batch,), 0, log_sigmas.shape[0])]
        loss, grads = loss_and_grads(state.params, snapshots, frames, particles, log_sigma, noise_key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        t = state.step.astype(dtype)
        decay = jnp.minimum(train_config.ema_decay, (1 + t) / (10 + t))
        ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p, state.ema_params, params)
        return TrainState(state.step + 1, params, opt_state, ema), loss

    return jax.jit(step, donate_argnums=0)


def device_mesh(devices) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    """Where the step's state and snapshots live: whole on every device of ``mesh``. The compiled step returns its
    state so; a state placed otherwise (fresh from :func:`init_state`, say) makes it compile a second time."""
    return NamedSharding(mesh, PartitionSpec())
