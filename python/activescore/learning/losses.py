"""Score-matching losses and exact per-particle divergences (physics.md §6).

Conventions shared by everything here. The per-particle score has ``config.output_dim`` columns: ``(s_x, s_g)``
when the network predicts s_x (systems with ε > 0), else ``s_g``. A *self perturbation* ``δ`` with the same
columns moves particle i's own coordinates: ``g_i += δ_g`` enters only the self token, ``x_i += δ_x`` enters
every displacement ``x_i - x_j`` of i's tokens (the self row stays 0) and the absolute position. The network
output for particle i depends on z_i only through these inputs, so forward-mode derivatives along δ are the
exact partial derivatives ∂s_i/∂z_i.

Denoising with noise on x keeps the clean configuration's neighbour index set and recomputes the displacements
from the perturbed positions. For σ much smaller than the spacing between the k-th and (k+1)-th neighbour
(σ ≲ 0.1 particle radius in practice) the set would rarely change, and where it does the network sees the
(k+1)-th instead of the k-th neighbour, which hardly affects the self token's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .network import ParticleTokens

#: ``apply(params, tokens) -> (B, output_dim)``, e.g. ``ScoreNet(config).apply``.
ApplyFn = Callable[..., Any]  # apply(params, tokens) -> scores (N, 2 or 4)


def perturb_self(tokens: ParticleTokens, delta: jax.Array, predict_x: bool) -> ParticleTokens:
    """Move each particle's own coordinates by ``delta`` (B, output_dim); see the module docstring."""
    delta_g = delta[:, -2:]
    g = tokens.g.at[:, 0, :].add(delta_g)
    if not predict_x:
        return tokens._replace(g=g)
    delta_x = delta[:, :2]
    not_self = jnp.ones(tokens.displacement.shape[1], tokens.displacement.dtype).at[0].set(0)
    displacement = tokens.displacement + not_self[None, :, None] * delta_x[:, None, :]
    return tokens._replace(g=g, displacement=displacement, position=tokens.position + delta_x)


def perturb_all(tokens: ParticleTokens, noise: jax.Array, predict_x: bool) -> ParticleTokens:
    """Add ``noise`` (B, k, output_dim), already scaled, to every token's particle: row 0 is the particle itself.

    Displacements ``x_i - x_j`` move by ``noise_i - noise_j`` (zero on the self row).
    """
    g = tokens.g + noise[..., -2:]
    if not predict_x:
        return tokens._replace(g=g)
    noise_x = noise[..., :2]
    displacement = tokens.displacement + noise_x[:, :1, :] - noise_x
    return tokens._replace(g=g, displacement=displacement, position=tokens.position + noise_x[:, 0, :])


def score_and_self_divergence(
    apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool
) -> tuple[jax.Array, jax.Array]:
    """The scores (B, output_dim) and :func:`self_divergence` (B, 2) or (B, 1), from one pass of the network.

    The network is linearised once at the unperturbed tokens (:func:`jax.linearize`: one primal pass that keeps
    what the derivatives need); each coordinate of z_i then costs one pass of the linear map alone. The particles
    of the batch are independent, so one tangent shared by the whole batch yields every particle's own Jacobian
    column at once.
    """
    batch = tokens.g.shape[0]
    dim = 4 if predict_x else 2
    zero = jnp.zeros((batch, dim), tokens.g.dtype)
    score, linear = jax.linearize(lambda delta: apply(params, perturb_self(tokens, delta, predict_x)), zero)
    diagonal = jnp.stack([linear(zero.at[:, a].set(1))[:, a] for a in range(dim)], axis=1)
    return score, diagonal.reshape(batch, dim // 2, 2).sum(-1)


def self_divergence(apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool) -> jax.Array:
    """Exact ∇_{z_i}·s_i per particle and per block: (B, 2) columns (∇_x·s_x, ∇_g·s_g), or (B, 1) (∇_g·s_g).

    One forward-mode pass per coordinate of z_i (4 or 2) through the linearised network
    (:func:`score_and_self_divergence`).
    """
    return score_and_self_divergence(apply, params, tokens, predict_x)[1]


def implicit_loss(apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool) -> jax.Array:
    """Hyvärinen score matching per particle, |s_i|² + 2 ∇_{z_i}·s_i, averaged over the batch.

    Its minimiser is the score itself (no smoothing). z_i = (x_i, g_i) with ``predict_x``, else g_i (ε = 0: the
    Fisher divergence in g alone, which is all the EPR needs). The scores come from the divergence's own primal
    pass (:func:`score_and_self_divergence`), so the network runs forward once.
    """
    score, divergence = score_and_self_divergence(apply, params, tokens, predict_x)
    return jnp.mean(jnp.sum(score**2, axis=-1) + 2.0 * jnp.sum(divergence, axis=-1))


def dsm_loss(
    apply: ApplyFn, params, tokens: ParticleTokens, key: jax.Array, sigma: jax.Array, predict_x: bool
) -> jax.Array:
    """Antithetic denoising score matching per particle, averaged over the batch (physics.md §6):

        Σ_± |s_i(Z ± σζ)|² ± (2/σ) s_i(Z ± σζ)·ζ_i,    ζ ~ N(0, I) on every noisy coordinate.

    ``sigma`` is (B,), one noise level per particle. Its minimiser is 2× the Fisher distance to the score of
    the σ-smoothed density ρ * N(0, σ²I) plus a constant. Only particle i's loss term uses its tokens, so the
    noise of each token can be drawn independently: the expectation of every term is that of one shared
    snapshot-wide draw.
    """
    dim = 4 if predict_x else 2
    batch, k = tokens.g.shape[:2]
    zeta = jax.random.normal(key, (batch, k, dim), tokens.g.dtype)
    scaled = sigma[:, None, None] * zeta
    plus = apply(params, perturb_all(tokens, scaled, predict_x))
    minus = apply(params, perturb_all(tokens, -scaled, predict_x))
    zeta_self = zeta[:, 0, :]
    cross = jnp.sum((plus - minus) * zeta_self, axis=-1) * (2.0 / sigma)
    return jnp.mean(jnp.sum(plus**2, axis=-1) + jnp.sum(minus**2, axis=-1) + cross)
