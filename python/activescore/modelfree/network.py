"""The network option of the model-free estimator (physics.md §8, *The network option*): a velocity field trained
with the same Stratonovich loss on the same features as the linear solve, ``estimate_model_free(…,
velocity="network")``.

Per particle i and noisy block b, v_b,i = Σ_k (c_b,k + h_b,k(ψ_i)) φ_b,ik: the linear velocity's coefficients c
plus a small MLP h (GELU, as :class:`activescore.learning.network.MLP`) of rotation-invariant descriptors ψ_i of the
particle's features (the length |φ_ik| of every vector feature column, and the scalar turning features of an
angle), standardised. The MLP's last layer starts at zero and c at the linear solve of the training pairs, so
training starts from the linear estimator and moves only where the loss, evaluated on held-out pairs, can gain.
Equivariance is kept: every term is a feature vector times an invariant.

The loss per particle and pair is Σ_b [½(|v_b(z)|² + |v_b(z')|²) − (v_b(z) + v_b(z'))·Δz_b/Δt] / D_b, whose
expectation is E|v − v*|²_{D⁻¹} − E|v*|²_{D⁻¹}: minus it is a lower bound on the EPR that is tight at v = v*.
The bound is evaluated by two-fold cross-fitting: the batches of frame pairs are split by parity, a network is
trained on each half and evaluated on the other, so the EPR carries no overfitting bias (no correction is
subtracted) and its batch-means standard error covers every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..estimation.statistics import Estimate, series_estimate
from .pairs import FrameCache, block_increment, pair_rows
from .solve import Moments, solve_normal, total

#: Descriptor and feature arrays are kept in float32 up to this many bytes (the network's samples).
SAMPLE_BYTES = 1 << 30
#: Training steps between checks of the held-out-of-training loss (early stopping).
CHECK_EVERY = 25
#: Rows per evaluation call (one compiled shape).
CHUNK = 16384


@dataclass(frozen=True)
class NetworkSettings:
    """Training of the network option (defaults: about a second per fold for 10⁵ particle-pairs on one core).

    Attributes
    ----------
    hidden, layers : int
        The MLP's width and number of hidden GELU layers.
    steps, batch : int
        Adam steps per fold; particle-pairs per step.
    learning_rate : float
        Adam's step size (cosine-decayed to 10 % of it).
    weight_decay : float
        L2 penalty on the MLP's weights (the linear coefficients are not penalised).
    seed : int
        Of the initial weights and the minibatches.
    """

    hidden: int = 32
    layers: int = 2
    steps: int = 300
    batch: int = 4096
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0

    @classmethod
    def of(cls, value) -> NetworkSettings:
        """Settings from None (defaults), a NetworkSettings or a dict of its fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(
                    f"network settings must be among {sorted(cls.__dataclass_fields__)}, got {sorted(unknown)}"
                )
            value = cls(**value)
            for name in ("hidden", "layers", "steps", "batch"):
                check.integer(f"network[{name!r}]", getattr(value, name), low=0 if name == "layers" else 1)
            check.real("network['learning_rate']", value.learning_rate, low=0.0, low_open=True)
            check.real("network['weight_decay']", value.weight_decay, low=0.0)
            return value
        raise ValueError(f"network must be None, a dict or NetworkSettings, got {type(value).__name__}")


@dataclass
class Samples:
    """Every particle-pair of the fit: descriptors ψ at z and z', per block the features at z and z' and Δz, and
    the batch and pair of each row."""

    psi0: np.ndarray  # (S, q)
    psi1: np.ndarray
    phi0: list[np.ndarray]  # per block (S, c, p)
    phi1: list[np.ndarray]
    dz: list[np.ndarray]  # per block (S, c)
    batch: np.ndarray  # (S,)
    pair: np.ndarray  # (S,)
    track: np.ndarray  # (S,)


def descriptors(features: dict) -> np.ndarray:
    """ψ of one frame's particles: |φ_ik| of every vector column and the angle's turning features, (n, q)."""
    parts = [np.sqrt(np.einsum("ncp,ncp->np", features["vector"], features["vector"]))]
    if "angle" in features:
        parts.append(features["angle"][:, 0, :])
    return np.concatenate(parts, axis=1)


def gather(tracks, pairs, cache: FrameCache, blocks, which, cutoff: float, n_batches: int) -> Samples:
    """The samples of every frame pair (float32)."""
    n_pairs = len(pairs)
    batch_of = (np.arange(n_pairs) * n_batches) // n_pairs
    psi0, psi1, batch, pair, track = [], [], [], [], []
    phi0: list[list] = [[] for _ in blocks]
    phi1: list[list] = [[] for _ in blocks]
    dz: list[list] = [[] for _ in blocks]
    size = 0
    for p, (k0, k1) in enumerate(pairs):
        rows = pair_rows(tracks, k0, k1, cutoff)
        if len(rows) == 0:
            continue
        (slot0, f0), (slot1, f1) = cache(k0), cache(k1)
        i0, i1 = slot0[rows], slot1[rows]
        psi0.append(descriptors(f0)[i0].astype(np.float32))
        psi1.append(descriptors(f1)[i1].astype(np.float32))
        for j, b in enumerate(blocks):
            phi0[j].append(f0[which[b]][i0].astype(np.float32))
            phi1[j].append(f1[which[b]][i1].astype(np.float32))
            dz[j].append(block_increment(tracks, b, k0, k1, rows).astype(np.float32))
        batch.append(np.full(len(rows), batch_of[p]))
        pair.append(np.full(len(rows), p))
        track.append(rows)
        size += 2 * psi0[-1].nbytes + sum(2 * phi0[j][-1].nbytes for j in range(len(blocks)))
        if size > SAMPLE_BYTES:
            raise ValueError(
                f"the network option's samples exceed {SAMPLE_BYTES >> 20} MiB: use fewer frames (or the linear solve)"
            )
    cat = np.concatenate
    return Samples(
        cat(psi0), cat(psi1), [cat(a) for a in phi0], [cat(a) for a in phi1], [cat(a) for a in dz], cat(batch),
        cat(pair), cat(track),
    )  # fmt: skip


def _model(sizes: tuple[int, ...], hidden: int, layers: int):
    import flax.linen as nn
    import jax.numpy as jnp

    class VelocityNet(nn.Module):
        """v_b = Σ_k (c_b,k + h_b,k(ψ)) φ_b,k (module docstring)."""

        @nn.compact
        def __call__(self, psi, phis):
            h = psi
            for _ in range(layers):
                h = nn.gelu(nn.Dense(hidden)(h))
            h = nn.Dense(sum(sizes), kernel_init=nn.initializers.zeros, name="head")(h)
            out, start = [], 0
            for j, (phi, p) in enumerate(zip(phis, sizes, strict=True)):
                c = self.param(f"linear_{j}", nn.initializers.zeros, (p,))
                out.append(jnp.einsum("scp,sp->sc", phi, c[None, :] + h[:, start : start + p]))
                start += p
            return out

    return VelocityNet()


class Trainer:
    """The jitted pieces, compiled once for both folds: ``steps`` Adam steps on minibatches of training rows (with
    weight decay on the MLP only), the mean loss over given rows, and the velocities of given rows."""

    def __init__(self, model, params, data, weights, dt: float, settings: NetworkSettings):
        import jax
        import jax.numpy as jnp
        import optax

        self.data, self.settings = data, settings
        schedule = optax.cosine_decay_schedule(settings.learning_rate, settings.steps, alpha=0.1)
        mask = jax.tree_util.tree_map_with_path(lambda path, _: "linear" not in str(path[-1]), params)
        self.optimiser = optax.adamw(schedule, weight_decay=settings.weight_decay, mask=mask)

        def loss(params, data, rows):
            psi0, psi1, phi0, phi1, dz = jax.tree_util.tree_map(lambda a: a[rows], data)
            v0, v1 = model.apply(params, psi0, phi0), model.apply(params, psi1, phi1)
            value = 0.0
            for a, b, d, w in zip(v0, v1, dz, weights, strict=True):
                value += w * jnp.mean(jnp.sum(0.5 * (a * a + b * b) - (a + b) * d / dt, axis=1))
            return value

        def run(params, state, data, index):
            def step(carry, rows):
                params, state = carry
                grads = jax.grad(loss)(params, data, rows)
                updates, state = self.optimiser.update(grads, state, params)
                return (optax.apply_updates(params, updates), state), None

            (params, state), _ = jax.lax.scan(step, (params, state), index)
            return params, state

        self.run, self.loss = jax.jit(run), jax.jit(loss)
        self.apply = jax.jit(model.apply)

    def train(self, params, train: np.ndarray, check: np.ndarray, rng: np.random.Generator):
        """Train from ``params`` on rows ``train``; every ``CHECK_EVERY`` steps the loss on rows ``check`` (a fixed
        count) is measured and the best parameters (the start included) are returned."""
        import jax.numpy as jnp

        settings = self.settings
        state = self.optimiser.init(params)
        best, best_loss = params, float(self.loss(params, self.data, check))
        for _ in range(0, settings.steps, CHECK_EVERY):
            index = jnp.asarray(train[rng.integers(0, len(train), size=(CHECK_EVERY, settings.batch))])
            params, state = self.run(params, state, self.data, index)
            value = float(self.loss(params, self.data, check))
            if value < best_loss:
                best, best_loss = params, value
        return best

    def velocities(self, params, rows: np.ndarray, at: int) -> list[np.ndarray]:
        """The velocities of ``rows`` at z (``at`` = 0) or z' (1), float64, in chunks of a fixed size."""
        psi, phis = self.data[at], self.data[2 + at]
        out: list[list] = [[] for _ in phis]
        chunk = CHUNK
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            padded = np.concatenate([part, np.full(chunk - len(part), part[0])])
            v = self.apply(params, psi[padded], [p[padded] for p in phis])
            for j in range(len(phis)):
                out[j].append(np.asarray(v[j], dtype=np.float64)[: len(part)])
        return [np.concatenate(o) for o in out]


@dataclass
class NetworkFit:
    """What the network option measured: per-sample values of the bound per block, the cross-fitted velocities at
    z of every sample, and the trained parameters of each fold."""

    samples: Samples
    values: dict[str, np.ndarray]  # block → per sample, minus the loss (k_B per unit time)
    velocity: dict[str, np.ndarray]  # block → (S, c) at z
    params: list
    settings: NetworkSettings


def fit_network(
    tracks,
    pairs,
    cache: FrameCache,
    blocks: list[str],
    which: dict[str, str],
    moments: dict[str, list[Moments]],
    diffusion: dict[str, float],
    dt: float,
    cutoff: float,
    settings: NetworkSettings,
) -> NetworkFit:
    """Two-fold cross-fitted networks (module docstring): for fold k the batches of parity k are held out; of the
    others, every fourth checks the training (early stopping) and the rest train it, from their linear solve."""
    import jax
    import jax.numpy as jnp

    n_batches = len(moments[blocks[0]])
    if n_batches < 8:
        raise ValueError(f"the network option needs at least 8 batches of frame pairs, got {n_batches} (more frames)")
    samples = gather(tracks, pairs, cache, blocks, which, cutoff, n_batches)
    # Descriptors standardised and features scaled to unit root mean square over all samples (no increments used).
    mean, std = samples.psi0.mean(axis=0), samples.psi0.std(axis=0)
    std = np.where(std > 1e-6 * max(float(std.max(initial=0.0)), 1e-30), std, np.inf).astype(np.float32)
    scale = [np.sqrt(np.mean(np.square(p, dtype=np.float64), axis=(0, 1))) for p in samples.phi0]
    scale = [np.where(c > 0, c, 1.0).astype(np.float32) for c in scale]
    data = (
        jnp.asarray((samples.psi0 - mean) / std), jnp.asarray((samples.psi1 - mean) / std),
        [jnp.asarray(p / c) for p, c in zip(samples.phi0, scale, strict=True)],
        [jnp.asarray(p / c) for p, c in zip(samples.phi1, scale, strict=True)],
        [jnp.asarray(d) for d in samples.dz],
    )  # fmt: skip
    sizes = tuple(p.shape[2] for p in samples.phi0)
    model = _model(sizes, settings.hidden, settings.layers)
    init = jax.jit(model.init)(jax.random.PRNGKey(settings.seed), samples.psi0[:2], [p[:2] for p in samples.phi0])
    trainer = Trainer(model, init, data, [1.0 / diffusion[b] for b in blocks], dt, settings)
    rng = np.random.default_rng(settings.seed)
    role = np.where(samples.batch % 2 == 0, 0, 1)  # the fold holding each sample out
    inner = (samples.batch // 2) % 4 == 0  # the early-stopping share of the training batches
    n_check = min(CHUNK, int(min(np.sum((role != k) & inner) for k in (0, 1))))
    values = {b: np.zeros(len(role)) for b in blocks}
    velocity = {b: np.zeros(d.shape) for b, d in zip(blocks, samples.dz, strict=True)}
    trained = []
    for k in (0, 1):
        train, test = np.flatnonzero((role != k) & ~inner), np.flatnonzero(role == k)
        check_rows = rng.permutation(np.flatnonzero((role != k) & inner))[:n_check]
        linear = {}
        for j, b in enumerate(blocks):
            t = total([m for i, m in enumerate(moments[b]) if i % 2 != k and (i // 2) % 4 != 0])
            c, _ = solve_normal(t.gram, t.rhs)
            linear[f"linear_{j}"] = (c / dt * scale[j]).astype(np.float32)
        params = {"params": {**init["params"], **linear}}
        params = trainer.train(params, train, check_rows, rng)
        v0, v1 = trainer.velocities(params, test, 0), trainer.velocities(params, test, 1)
        for j, b in enumerate(blocks):
            a, c, d = v0[j], v1[j], samples.dz[j][test].astype(np.float64)
            values[b][test] = np.sum((a + c) * d / dt - 0.5 * (a * a + c * c), axis=1) / diffusion[b]
            velocity[b][test] = a
        trained.append(jax.device_get(params))
    return NetworkFit(samples, values, velocity, trained, settings)


def network_estimates(fit: NetworkFit, n_batches: int, n_used: int, mean_particles: float):
    """Per block and in all, the per-particle EPR (the held-out bound) by batch means: ``(split, per, epr)``."""
    batch = fit.samples.batch
    count = np.bincount(batch, minlength=n_batches).astype(float)
    used = count > 0
    series = {}
    for b, v in fit.values.items():
        series[b] = np.bincount(batch, weights=v, minlength=n_batches)[used] / count[used]
    length = int(used.sum())
    split = {}
    for b, values in series.items():
        est = series_estimate(values, length, "model-free network", None)
        split[b] = Estimate(est.value, est.stderr, "model-free network", None, n_used)
    per = series_estimate(sum(series.values()), length, "model-free network", None)
    per = Estimate(per.value, per.stderr, "model-free network", None, n_used)
    epr = Estimate(per.value * mean_particles, per.stderr * mean_particles, "model-free network", None, n_used)
    return split, per, epr, length


def network_fields(fit: NetworkFit, n_pairs: int, n_tracks: int, diffusion: dict, tracks, pairs):
    """The cross-fitted per-particle fields: ``(quadratic (P, M), velocity {block: (P, M, c)}, positions)``."""
    s = fit.samples
    quadratic = np.full((n_pairs, n_tracks), np.nan)
    positions = np.full((n_pairs, n_tracks, 2), np.nan)
    velocity = {}
    e = np.zeros(len(s.pair))
    for b, v in fit.velocity.items():
        field = np.full((n_pairs, n_tracks, v.shape[1]), np.nan)
        field[s.pair, s.track] = v
        velocity[b] = field
        e += np.einsum("sc,sc->s", v, v) / diffusion[b]
    quadratic[s.pair, s.track] = e
    positions[s.pair, s.track] = tracks.x[pairs[s.pair, 0], s.track]
    return quadratic, velocity, positions


def apply_network(result, pairs, cache: FrameCache, which: dict, moments: dict, settings, keep_fields: bool) -> None:
    """Replace the linear solve's EPR in ``result`` by the cross-fitted network's (the linear value kept in
    ``result.linear``)."""
    blocks = list(result.diffusion)
    fit = fit_network(
        result.tracks, pairs, cache, blocks, which, moments, result.diffusion, result.dt, result.cutoff, settings
    )
    n_batches = len(moments[blocks[0]])
    split, per, epr, length = network_estimates(fit, n_batches, result.n_pairs, result.mean_particles)
    result.linear = result.epr_per_particle
    result.split, result.epr_per_particle, result.epr, result.n_batches = split, per, epr, length
    result.correction = {b: 0.0 for b in blocks}
    result.velocity_model, result.network = "network", fit.params
    result.network_settings = settings
    if keep_fields:
        fields = network_fields(fit, len(pairs), result.tracks.n_tracks, result.diffusion, result.tracks, pairs)
        result.quadratic, result.velocity, result.positions = fields
