"""Losses and divergences checked in float64 against finite differences and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activescore.learning import ScoreNet, ScoreNetConfig, init_params
from activescore.learning.data import Snapshots, gather_tokens, neighbour_lists
from activescore.learning.losses import (
    dsm_loss,
    implicit_loss,
    perturb_all,
    perturb_self,
    score_and_self_divergence,
    self_divergence,
)

BOX = 8.0


def snapshot(seed, n=24):
    rng = np.random.default_rng(seed)
    return rng.uniform(-BOX / 2, BOX / 2, (n, 2)), rng.normal(size=(n, 2))


def tokens_of(x, g, neighbours, log_sigma=0.0):
    """All particles' tokens for positions x with a fixed neighbour index set."""
    n = len(x)
    snaps = Snapshots(jnp.asarray(x)[None], jnp.asarray(g)[None], jnp.asarray(neighbours)[None])
    return gather_tokens(snaps, jnp.zeros(n, jnp.int32), jnp.arange(n), BOX, jnp.full(n, log_sigma))


def network_and_tokens(config, key, seed, n):
    """Fresh weights from PRNGKey(``key``), the network's apply and every particle's tokens of one random
    snapshot of ``n`` particles (seed ``seed``)."""
    x, g = snapshot(seed, n=n)
    tokens = tokens_of(x, g, neighbour_lists(x[None], BOX, config.k)[0])
    return init_params(config, jax.random.PRNGKey(key)), ScoreNet(config).apply, tokens


@pytest.mark.parametrize("predict_x", [False, True])
def test_self_divergence_matches_finite_differences_of_the_snapshot_function(predict_x):
    # Differentiate s_i(X, G) through the real gather (minimum image, fixed neighbour set) by central
    # differences in x_i and g_i: an independent check that z_i enters exactly where perturb_self says.
    with jax.enable_x64(True):
        config = ScoreNetConfig.small(
            predict_x=predict_x,
            cutoff=2.5 if predict_x else None,
            absolute_position=True,
            readout_skip=True,
            dtype="float64",
        )
        params = init_params(config, jax.random.PRNGKey(0))
        apply = jax.jit(ScoreNet(config).apply)
        x, g = snapshot(1)
        neighbours = neighbour_lists(x[None], BOX, config.k)[0]
        divergence = np.asarray(self_divergence(apply, params, tokens_of(x, g, neighbours), predict_x))
        h = 1e-5
        for i in (0, 7, 19):
            expected_g = expected_x = 0.0
            for a in range(2):
                for name in ("g", "x") if predict_x else ("g",):
                    plus_x, minus_x, plus_g, minus_g = x.copy(), x.copy(), g.copy(), g.copy()
                    if name == "g":
                        plus_g[i, a] += h
                        minus_g[i, a] -= h
                    else:
                        plus_x[i, a] += h
                        minus_x[i, a] -= h
                    column = a + (2 if (name == "g" and predict_x) else 0)
                    up = np.asarray(apply(params, tokens_of(plus_x, plus_g, neighbours)))[i, column]
                    down = np.asarray(apply(params, tokens_of(minus_x, minus_g, neighbours)))[i, column]
                    if name == "g":
                        expected_g += (up - down) / (2 * h)
                    else:
                        expected_x += (up - down) / (2 * h)
            # Central differences in float64 with h = 1e-5: truncation O(h²) and rounding O(1e-16/h) ~ 1e-10.
            np.testing.assert_allclose(divergence[i, -1], expected_g, rtol=1e-6, atol=1e-7)
            if predict_x:
                np.testing.assert_allclose(divergence[i, 0], expected_x, rtol=1e-6, atol=1e-7)


def brute_force_implicit_terms(apply, params, tokens, predict_x):
    """Scores and self divergences particle by particle: the full Jacobian of s_i in z_i by jax.jacfwd of a
    one-particle batch (vmapped over particles, so no particle sees another's tangent)."""
    dim = 4 if predict_x else 2

    def one_particle(own):
        own = jax.tree_util.tree_map(lambda a: a[None], own)

        def score_of_own_coordinates(delta):
            return apply(params, perturb_self(own, delta[None], predict_x))[0]

        zero = jnp.zeros(dim, own.g.dtype)
        jacobian = jax.jacfwd(score_of_own_coordinates)(zero)  # (dim, dim)
        return score_of_own_coordinates(zero), jnp.diagonal(jacobian).reshape(dim // 2, 2).sum(-1)

    return jax.vmap(one_particle)(tokens)


@pytest.mark.parametrize("predict_x", [False, True])
def test_one_pass_scores_divergences_and_loss_equal_the_brute_force_ones(predict_x):
    # The batched linearisation must give each particle exactly its own Jacobian diagonal (no leakage between
    # particles of the batch), the plain forward scores and the same implicit loss.
    with jax.enable_x64(True):
        config = ScoreNetConfig.small(
            k=5, predict_x=predict_x, cutoff=2.5 if predict_x else None, readout_skip=True, dtype="float64"
        )
        params, apply, tokens = network_and_tokens(config, key=1, seed=4, n=9)

        def one_pass(params):
            score, divergence = score_and_self_divergence(apply, params, tokens, predict_x)
            return score, divergence, apply(params, tokens), implicit_loss(apply, params, tokens, predict_x)

        score, divergence, forward, loss = jax.jit(one_pass)(params)
        expected_score, expected_divergence = jax.jit(brute_force_implicit_terms, static_argnums=(0, 3))(
            apply, params, tokens, predict_x
        )
        np.testing.assert_allclose(score, forward, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(score, expected_score, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(divergence, expected_divergence, rtol=1e-10, atol=1e-12)
        expected_loss = jnp.mean(jnp.sum(expected_score**2, -1) + 2.0 * jnp.sum(expected_divergence, -1))
        assert float(loss) == pytest.approx(float(expected_loss), rel=1e-12)


def test_implicit_loss_gradient_equals_the_gradient_of_the_brute_force_loss():
    # The parameter gradient differentiates through the linearisation (second derivatives): the same as through
    # the per-particle Jacobians.
    with jax.enable_x64(True):
        config = ScoreNetConfig.small(k=4, depth=1, dtype="float64")
        params, apply, tokens = network_and_tokens(config, key=2, seed=5, n=6)

        def brute_force_loss(params):
            score, divergence = brute_force_implicit_terms(apply, params, tokens, False)
            return jnp.mean(jnp.sum(score**2, -1) + 2.0 * jnp.sum(divergence, -1))

        gradient = jax.jit(jax.grad(lambda p: implicit_loss(apply, p, tokens, False)))(params)
        expected_gradient = jax.jit(jax.grad(brute_force_loss))(params)
        leaves, expected_leaves = jax.tree_util.tree_leaves(gradient), jax.tree_util.tree_leaves(expected_gradient)
        for got, want in zip(leaves, expected_leaves, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_noisy_tokens_equal_the_tokens_of_the_noisy_snapshot():
    # perturb_all moves displacements by noise_i - noise_j: the same as recomputing them from noisy positions.
    with jax.enable_x64(True):
        x, g = snapshot(2)
        neighbours = neighbour_lists(x[None], BOX, 6)[0]
        noise = 0.05 * np.random.default_rng(3).normal(size=(len(x), 4))
        per_token = jnp.asarray(noise[neighbours])  # (N, k, 4): each token carries its particle's noise
        moved = perturb_all(tokens_of(x, g, neighbours), per_token, predict_x=True)
        direct = tokens_of(x + noise[:, :2], g + noise[:, 2:], neighbours)
        for a, b in zip(moved[:3], direct[:3], strict=False):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)


def gaussian_tokens(n, seed):
    """Self tokens only, z = (x, g) ~ N(0, I) in 2 + 2 dimensions."""
    rng = np.random.default_rng(seed)
    from activescore.learning.network import ParticleTokens

    return ParticleTokens(
        jnp.zeros((n, 1, 2)),
        jnp.asarray(rng.normal(size=(n, 1, 2))),
        jnp.asarray(rng.normal(size=(n, 2))),
        jnp.zeros(n),
    )


def linear_score(c):
    return lambda params, tokens: -c * jnp.concatenate([tokens.position, tokens.g[:, 0]], axis=-1)


def test_implicit_loss_of_a_linear_score_is_exact():
    # s = -c z has ∇·s = -4c, so the loss is c² mean|z|² - 8c exactly; minimised at c = 1 for N(0, I).
    with jax.enable_x64(True):
        tokens = gaussian_tokens(1000, 4)
        z2 = float(jnp.mean(jnp.sum(tokens.position**2, -1) + jnp.sum(tokens.g[:, 0] ** 2, -1)))
        for c in (0.5, 1.0, 2.0):
            loss = float(implicit_loss(linear_score(c), None, tokens, predict_x=True))
            assert loss == pytest.approx(c * c * z2 - 8 * c, rel=1e-12)


def test_dsm_minimiser_is_the_smoothed_score():
    # For s = -c z, the antithetic loss is exactly quadratic in c: L(c) = A c² - B c with
    # A = 2 mean(|z|² + σ²|ζ|²), B = 4 mean|ζ|²; its minimiser B / 2A → 1/(1 + σ²), the score of the smoothed
    # N(0, (1+σ²)I).
    # With 2e5 samples of 4 dimensions the ratio has relative standard error ≈ 0.2 %; tolerance 1 % (≈ 5 SE).
    with jax.enable_x64(True):
        tokens = gaussian_tokens(200_000, 5)
        sigma = 0.5
        key = jax.random.PRNGKey(6)
        sig = jnp.full(200_000, sigma)
        losses = [float(dsm_loss(linear_score(c), None, tokens, key, sig, predict_x=True)) for c in (0.0, 1.0, 2.0)]
        a = (losses[2] - 2 * losses[1] + losses[0]) / 2
        b = a - (losses[1] - losses[0])
        assert losses[0] == pytest.approx(0.0, abs=1e-12)
        assert b / (2 * a) == pytest.approx(1 / (1 + sigma**2), rel=0.01)
