"""The score network's structure: size of the paper preset, symmetries, continuity at the cutoff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from activescore.learning import ScoreNet, ScoreNetConfig, count_params, init_params
from activescore.learning.data import gather_tokens, make_snapshots
from activescore.learning.network import ParticleTokens

BOX = 12.0
CONFIGS = {
    "plain": ScoreNetConfig.small(),
    "x head, cutoff, skip, pre-LN": ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True, norm="pre"),
}


def snapshot_scores(config, params, x, g, box_length=BOX):
    """Network output for every particle of one snapshot, via the same gather as training."""
    k = min(config.k, len(x))
    snapshots = make_snapshots(x[None], g[None], box_length, k, np.float32)
    n = len(x)
    tokens = gather_tokens(
        jax.tree_util.tree_map(jnp.asarray, snapshots), jnp.zeros(n, jnp.int32), jnp.arange(n), box_length, jnp.zeros(n)
    )
    return np.asarray(ScoreNet(config).apply(params, tokens))


def random_snapshot(seed, n=40):
    rng = np.random.default_rng(seed)
    return rng.uniform(-BOX / 2, BOX / 2, (n, 2)), rng.normal(size=(n, 2))


def test_paper_preset_has_the_papers_size():
    # §7: two embedding MLPs 2 → 4×256 → 128, four post-LN blocks (4 heads, feed-forward 256), readout
    # 256 → 4×256 → 2. Counted by hand: 2 × 231 040 + 4 × 395 776 + 263 682 = 2 308 866.
    params = init_params(ScoreNetConfig.paper(), jax.random.PRNGKey(0))
    assert count_params(params) == 2_308_866


@pytest.mark.parametrize("name", CONFIGS)
def test_translation_invariance(name):
    config = CONFIGS[name]
    params = init_params(config, jax.random.PRNGKey(1))
    x, g = random_snapshot(2)
    shift = np.array([3.7, -5.1])
    shifted = (x + shift + BOX / 2) % BOX - BOX / 2
    # float32 network, displacements rounded differently after the shift: agreement to ~1e-5 relative.
    np.testing.assert_allclose(
        snapshot_scores(config, params, shifted, g), snapshot_scores(config, params, x, g), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_permutation_equivariance(name):
    config = CONFIGS[name]
    params = init_params(config, jax.random.PRNGKey(3))
    x, g = random_snapshot(4)  # random positions: no distance ties, so the neighbour sets do not depend on labels
    order = np.random.default_rng(5).permutation(len(x))
    np.testing.assert_allclose(
        snapshot_scores(config, params, x[order], g[order]),
        snapshot_scores(config, params, x, g)[order],
        rtol=1e-5,
        atol=1e-5,
    )


def test_neighbour_order_does_not_matter():
    config = CONFIGS["x head, cutoff, skip, pre-LN"]
    params = init_params(config, jax.random.PRNGKey(6))
    rng = np.random.default_rng(7)
    displacement = rng.normal(size=(5, 8, 2))
    displacement[:, 0] = 0.0
    g = rng.normal(size=(5, 8, 2))
    tokens = ParticleTokens(
        jnp.asarray(displacement, jnp.float32), jnp.asarray(g, jnp.float32), jnp.zeros((5, 2)), jnp.zeros(5)
    )
    order = np.r_[0, 1 + rng.permutation(7)]  # self stays first
    shuffled = tokens._replace(displacement=tokens.displacement[:, order], g=tokens.g[:, order])
    net = ScoreNet(config)
    np.testing.assert_allclose(net.apply(params, shuffled), net.apply(params, tokens), rtol=1e-5, atol=1e-5)


def test_a_token_beyond_the_cutoff_has_no_influence():
    # Continuity of the network when a neighbour leaves the k-nearest set requires exactly this.
    config = ScoreNetConfig.small(predict_x=True, cutoff=2.0, cutoff_width=0.5, readout_skip=True)
    params = init_params(config, jax.random.PRNGKey(8))
    rng = np.random.default_rng(9)
    displacement = rng.uniform(-1.2, 1.2, size=(3, 8, 2))
    displacement[:, 0] = 0.0
    g = rng.normal(size=(3, 8, 2))
    base = ParticleTokens(
        jnp.asarray(displacement, jnp.float32), jnp.asarray(g, jnp.float32), jnp.zeros((3, 2)), jnp.zeros(3)
    )
    outputs = []
    for far in ([2.0, 0.0], [0.0, -3.0], [5.0, 5.0]):  # the last token anywhere at distance >= cutoff
        d = displacement.copy()
        d[:, -1] = far
        gg = g.copy()
        gg[:, -1] = rng.normal(size=(3, 2)) * 10
        outputs.append(
            np.asarray(
                ScoreNet(config).apply(
                    params, base._replace(displacement=jnp.asarray(d, jnp.float32), g=jnp.asarray(gg, jnp.float32))
                )
            )
        )
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(outputs[2], outputs[0], rtol=1e-6, atol=1e-6)


def test_absolute_position_breaks_translation_invariance_only_when_asked():
    config = ScoreNetConfig.small(absolute_position=True)
    params = init_params(config, jax.random.PRNGKey(10))
    x, g = random_snapshot(11)
    shifted = (x + np.array([2.0, 1.0]) + BOX / 2) % BOX - BOX / 2
    assert not np.allclose(
        snapshot_scores(config, params, shifted, g), snapshot_scores(config, params, x, g), atol=1e-3
    )


def test_config_validation_and_round_trip():
    config = ScoreNetConfig.small(predict_x=True, cutoff=3.0, sigma_conditioning=True)
    assert ScoreNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        ScoreNetConfig(width=30, heads=4)
    with pytest.raises(ValueError):
        ScoreNetConfig(cutoff=1.0, cutoff_width=2.0)
    with pytest.raises(ValueError):
        ScoreNetConfig(norm="middle")


def test_force_tokens_carry_each_neighbours_compiled_force():
    import activescore as a

    system = a.mips(40, 40 * np.pi / BOX**2)
    x, g = random_snapshot(12)
    snapshots = make_snapshots(x[None], g[None], BOX, 8, np.float64, system=system)
    n = len(x)
    tokens = gather_tokens(
        jax.tree_util.tree_map(jnp.asarray, snapshots), jnp.zeros(n, jnp.int32), jnp.arange(n), BOX, jnp.zeros(n)
    )
    force = a.forces(system, x)
    # JAX without x64 stores float32: equal to rounding.
    np.testing.assert_allclose(
        np.asarray(tokens.force), force[np.asarray(snapshots.neighbours[0])], rtol=1e-6, atol=1e-7
    )


def test_force_input_of_another_size_uses_that_box():
    # A score applied to other N / φ (transfer) must see the forces of the snapshot's own box.
    import activescore as a
    from activescore.learning.data import interaction_forces

    system = a.mips(40, 40 * np.pi / BOX**2)
    other = system.with_size(60, packing_fraction=0.3)
    x = np.random.default_rng(13).uniform(-other.box_length / 2, other.box_length / 2, (2, 60, 2))
    np.testing.assert_array_equal(interaction_forces(system, x, other.box_length)[1], a.forces(other, x[1]))


def test_gaussian_baseline_and_output_scale():
    rng = np.random.default_rng(14)
    tokens = ParticleTokens(
        jnp.asarray(rng.normal(size=(5, 8, 2)), jnp.float32),
        jnp.asarray(rng.normal(size=(5, 8, 2)), jnp.float32),
        jnp.zeros((5, 2)),
        jnp.zeros(5),
        jnp.asarray(rng.normal(size=(5, 8, 2)), jnp.float32),
    )
    plain = ScoreNetConfig.small(force_input=True)
    params = init_params(plain, jax.random.PRNGKey(15))
    correction = np.asarray(ScoreNet(plain).apply(params, tokens))
    scaled = ScoreNet(plain.replace(gaussian_baseline=True, output_scale=4.0)).apply(params, tokens)
    np.testing.assert_allclose(np.asarray(scaled), 4.0 * correction - np.asarray(tokens.g[:, 0]), rtol=1e-5, atol=1e-5)
    # The correction really depends on the force input.
    moved = ScoreNet(plain).apply(params, tokens._replace(force=tokens.force + 1.0))
    assert not np.allclose(np.asarray(moved), correction, atol=1e-3)


def test_force_input_and_scale_validation():
    with pytest.raises(ValueError, match="force_input"):
        ScoreNetConfig.small(force_input=True, predict_x=True)
    with pytest.raises(ValueError, match="output_scale"):
        ScoreNetConfig.small(output_scale=0.0)
    with pytest.raises(ValueError, match="force_unit"):
        ScoreNetConfig.small(force_unit=-1.0)


def test_default_network_gives_mips_its_hypoelliptic_inputs():
    import activescore as a
    from activescore.learning.defaults import default_network

    def frames(system):
        return (
            a.exact.gaussian_samples(system, 2, seed=0)[0]
            if system.k == 0
            else np.random.default_rng(0).uniform(-system.box_length / 2, system.box_length / 2, (2, 64, 2))
        )

    mips = default_network(a.mips(64, 0.5), frames(a.mips(64, 0.5)))
    assert mips.force_input and mips.gaussian_baseline and mips.force_unit == 0.025
    assert abs(mips.output_scale - 100.0) < 1e-9  # 1/√γ
    for other in (
        a.AOUP(64, box_length=40.0, k=0.0, trap=1.0, eps=0.0),  # no interactions: Gaussian
        a.AOUP(64, packing_fraction=0.3, eps=0.1),  # translational noise
        a.ABP(64, packing_fraction=0.3, eps=0.1),
    ):
        config = default_network(other, frames(other))
        assert not (config.force_input or config.gaussian_baseline) and config.output_scale == 1.0
