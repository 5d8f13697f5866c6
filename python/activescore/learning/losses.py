"""Score-matching losses and exact per-particle divergences (physics.md §6).

Conventions shared by everything here. The per-particle score has ``config.output_dim`` columns: ``(s_x, s_g)``
when the network predicts s_x (systems with ε > 0), else ``s_g``; for ABPs (``angle``) ``s_g`` is the one column
s_θ and a perturbation of θ_i turns the token's g_i = (cos θ_i, sin θ_i). A *self perturbation* ``δ`` with the same
columns moves particle i's own coordinates: ``g_i += δ_g`` enters only the self token, ``x_i += δ_x`` enters
every displacement ``x_i - x_j`` of i's tokens (the self row stays 0) and the absolute position. The network
output for particle i depends on z_i only through these inputs, so forward-mode derivatives along δ are the
exact partial derivatives ∂s_i/∂z_i.

Denoising with noise on x keeps the clean configuration's neighbour index set and recomputes the displacements
from the perturbed positions. For σ much smaller than the spacing between the k-th and (k+1)-th neighbour
(σ ≲ 0.1 particle radius in practice) the set would rarely change, and where it does the network sees the
(k+1)-th instead of the k-th neighbour, which hardly affects the self token's output.

A *residual network* learns s − s_base for a fixed base score (the tokens' ``offset`` holds s_base at each
particle). The implicit loss of the sum, |s_base + s_θ|² + 2 ∇·s_base + 2 ∇·s_θ, differs from what
:func:`implicit_loss` returns by the constant 2 ∇·s_base, which no weight changes; denoising would need s_base at
the perturbed configurations and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .network import ParticleTokens

#: ``apply(params, tokens) -> (B, output_dim)``, e.g. ``ScoreNet(config).apply``.
ApplyFn = Callable[..., Any]  # apply(params, tokens) -> scores (N, 2 or 4)


def rotate(g: jax.Array, angle: jax.Array) -> jax.Array:
    """The unit vectors ``g`` (..., 2) = (cos θ, sin θ) turned by ``angle`` (...): (cos(θ + angle), sin(θ + angle))."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([g[..., 0] * c - g[..., 1] * s, g[..., 0] * s + g[..., 1] * c], axis=-1)


def _move_propulsion(g: jax.Array, delta_q: jax.Array, angle: bool) -> jax.Array:
    """``g`` (..., 2) moved by ``delta_q`` (..., 2) in g, or turned by ``delta_q`` (..., 1) in θ (ABPs)."""
    return rotate(g, delta_q[..., 0]) if angle else g + delta_q


def perturb_self(tokens: ParticleTokens, delta: jax.Array, predict_x: bool, angle: bool = False) -> ParticleTokens:
    """Move each particle's own coordinates by ``delta`` (B, output_dim); see the module docstring. With ``angle``
    the propulsion column is a turn of θ_i (g_i = (cos θ_i, sin θ_i) rotates)."""
    delta_q = delta[:, 2:] if predict_x else delta
    g = tokens.g.at[:, 0, :].set(_move_propulsion(tokens.g[:, 0, :], delta_q, angle))
    if not predict_x:
        return tokens._replace(g=g)
    delta_x = delta[:, :2]
    not_self = jnp.ones(tokens.displacement.shape[1], tokens.displacement.dtype).at[0].set(0)
    displacement = tokens.displacement + not_self[None, :, None] * delta_x[:, None, :]
    return tokens._replace(g=g, displacement=displacement, position=tokens.position + delta_x)


def perturb_all(tokens: ParticleTokens, noise: jax.Array, predict_x: bool, angle: bool = False) -> ParticleTokens:
    """Add ``noise`` (B, k, output_dim), already scaled, to every token's particle: row 0 is the particle itself.

    Displacements ``x_i - x_j`` move by ``noise_i - noise_j`` (zero on the self row). With ``angle`` the propulsion
    column turns each token's θ (its g rotates).
    """
    noise_q = noise[..., 2:] if predict_x else noise
    g = _move_propulsion(tokens.g, noise_q, angle)
    if not predict_x:
        return tokens._replace(g=g)
    noise_x = noise[..., :2]
    displacement = tokens.displacement + noise_x[:, :1, :] - noise_x
    return tokens._replace(g=g, displacement=displacement, position=tokens.position + noise_x[:, 0, :])


def score_and_self_divergence(
    apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool, angle: bool = False
) -> tuple[jax.Array, jax.Array]:
    """The scores (B, output_dim) and :func:`self_divergence` (B, 2) or (B, 1), from one pass of the network.

    The network is linearised once at the unperturbed tokens (:func:`jax.linearize`: one primal pass that keeps
    what the derivatives need); each coordinate of z_i (2 or 1 for the propulsion, 2 more for x) then costs one
    pass of the linear map alone. The particles of the batch are independent, so one tangent shared by the whole
    batch yields every particle's own Jacobian column at once.
    """
    batch = tokens.g.shape[0]
    dim = (2 if predict_x else 0) + (1 if angle else 2)
    zero = jnp.zeros((batch, dim), tokens.g.dtype)
    score, linear = jax.linearize(lambda delta: apply(params, perturb_self(tokens, delta, predict_x, angle)), zero)
    diagonal = jnp.stack([linear(zero.at[:, a].set(1))[:, a] for a in range(dim)], axis=1)
    if not predict_x:
        return score, jnp.sum(diagonal, axis=1, keepdims=True)
    return score, jnp.stack([jnp.sum(diagonal[:, :2], axis=1), jnp.sum(diagonal[:, 2:], axis=1)], axis=1)


def self_divergence(apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool, angle: bool = False) -> jax.Array:
    """Exact ∇_{z_i}·s_i per particle and per block: (B, 2) columns (∇_x·s_x, ∇_g·s_g), or (B, 1) (∇_g·s_g);
    with ``angle`` the propulsion block is ∂_{θ_i} s_θ,i.

    One forward-mode pass per coordinate of z_i through the linearised network
    (:func:`score_and_self_divergence`).
    """
    return score_and_self_divergence(apply, params, tokens, predict_x, angle)[1]


def implicit_loss(apply: ApplyFn, params, tokens: ParticleTokens, predict_x: bool, angle: bool = False) -> jax.Array:
    """Hyvärinen score matching per particle, |s_i|² + 2 ∇_{z_i}·s_i, averaged over the batch.

    Its minimiser is the score itself (no smoothing). z_i = (x_i, g_i) with ``predict_x``, else g_i (ε = 0: the
    Fisher divergence in g alone, which is all the EPR needs); θ_i in place of g_i with ``angle`` (ABPs: the
    integration by parts behind the loss has no boundary term on the circle). The scores come from the
    divergence's own primal pass (:func:`score_and_self_divergence`), so the network runs forward once.
    """
    score, divergence = score_and_self_divergence(apply, params, tokens, predict_x, angle)
    if tokens.offset is not None:  # the network is the residual of a fixed base score (module docstring)
        score = score + tokens.offset
    return jnp.mean(jnp.sum(score**2, axis=-1) + 2.0 * jnp.sum(divergence, axis=-1))


def dsm_loss(
    apply: ApplyFn,
    params,
    tokens: ParticleTokens,
    key: jax.Array,
    sigma: jax.Array,
    predict_x: bool,
    angle: bool = False,
    zeta: jax.Array | None = None,
) -> jax.Array:
    """Antithetic denoising score matching per particle, averaged over the batch (physics.md §6):

        Σ_± |s_i(Z ± σζ)|² ± (2/σ) s_i(Z ± σζ)·ζ_i,    ζ ~ N(0, I) on every noisy coordinate.

    ``sigma`` is (B,), one noise level per particle. Its minimiser is 2× the Fisher distance to the score of
    the σ-smoothed density ρ * N(0, σ²I) plus a constant. Only particle i's loss term uses its tokens, so the
    noise of each token can be drawn independently: the expectation of every term is that of one shared
    snapshot-wide draw.

    With ``angle`` (ABPs) the noise on the propulsion turns θ by σζ (unwrapped ζ; the network sees only
    (cos, sin)). Convolving the periodic density with N(0, σ²) on the line is convolving it with the wrapped
    Gaussian on the circle, so the minimiser is exactly the score of the density smoothed by the wrapped Gaussian:
    no approximation in σ, which only sets the smoothing (σ ≪ 2π for a small bias, as on x).

    ``zeta`` (B, k, dim): the standard normal noise itself (None: drawn from ``key`` with that shape), so that a
    batch computed in parts (token tiers) sees the noise the whole batch would.
    """
    if tokens.offset is not None:
        raise ValueError("a network on the residual of a base score is trained by the implicit loss, not by denoising")
    dim = (2 if predict_x else 0) + (1 if angle else 2)
    batch, k = tokens.g.shape[:2]
    if zeta is None:
        zeta = jax.random.normal(key, (batch, k, dim), tokens.g.dtype)
    scaled = sigma[:, None, None] * zeta
    plus = apply(params, perturb_all(tokens, scaled, predict_x, angle))
    minus = apply(params, perturb_all(tokens, -scaled, predict_x, angle))
    zeta_self = zeta[:, 0, :]
    cross = jnp.sum((plus - minus) * zeta_self, axis=-1) * (2.0 / sigma)
    return jnp.mean(jnp.sum(plus**2, axis=-1) + jnp.sum(minus**2, axis=-1) + cross)


# The objectives the loss records of :mod:`.settings` name: one signature for every loss, so the training step
# reads the record instead of the loss's name. The tokens carry log σ per particle (denoising's noise levels).


def implicit_objective(apply: ApplyFn, params, tokens: ParticleTokens, key, zeta, predict_x: bool, angle: bool):
    """:func:`implicit_loss` (draws no noise: ``key`` and ``zeta`` are unused)."""
    return implicit_loss(apply, params, tokens, predict_x, angle)


def dsm_objective(apply: ApplyFn, params, tokens: ParticleTokens, key, zeta, predict_x: bool, angle: bool):
    """:func:`dsm_loss` at the tokens' noise levels exp(log σ)."""
    return dsm_loss(apply, params, tokens, key, jnp.exp(tokens.log_sigma), predict_x, angle, zeta)
