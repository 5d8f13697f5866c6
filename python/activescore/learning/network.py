"""The per-particle score network (physics.md §7): a transformer over each particle's k nearest neighbours.

For particle i the tokens are its neighbours j (self first): ``[MLP_g(g_j), MLP_x((x_i - x_j)/ℓ)]``. Post-LayerNorm
encoder blocks mix them; the self token's output is read out to ``s_g,i`` (and ``s_x,i`` by a second head when
the system has translational noise). Only displacements enter, so the network is translation invariant; it sees
a set of tokens without positional encoding, so it is permutation equivariant and independent of N.

Two optional inputs, both added to every token:
- the absolute position ``x_i`` (trapped systems break translation invariance);
- ``log σ`` when one network is trained for several noise levels of denoising score matching.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class ScoreNetConfig:
    """Architecture of :class:`ScoreNet` (everything needed to rebuild it from saved weights).

    Attributes
    ----------
    k : int
        Tokens per particle (nearest neighbours, self included); fewer are used when N < k.
    width : int
        Token width; the two embedding MLPs output ``width // 2`` each.
    depth : int
        Number of post-LayerNorm encoder blocks.
    heads : int
        Attention heads (must divide ``width``).
    ff_width : int
        Hidden width of each block's feed-forward layer.
    embed_hidden, embed_layers : int
        Hidden width and number of hidden GELU layers of MLP_g and MLP_x.
    readout_hidden, readout_layers : int
        The same for the readout MLP(s).
    predict_x : bool
        Also output ``s_x`` (systems with ε > 0).
    absolute_position : bool
        Feed ``x_i`` itself (for trapped systems).
    sigma_conditioning : bool
        Feed ``log σ`` (one network for several noise levels).
    length_scale : float
        Displacements and positions are divided by it (≈ particle diameter / 2 keeps inputs O(1)).
    cutoff, cutoff_width : float or None, float
        If ``cutoff`` is set, a neighbour at distance r has attention weight w(r): 1 below ``cutoff - cutoff_width``, 0
        beyond ``cutoff``, C² in between. The network is then a continuous function of the configuration as long as
        fewer than k particles lie within ``cutoff`` (neighbours leave the k-nearest set only beyond it). Required for
        the x-score with a truncated neighbour set (k < N): without it the set of k nearest moves with x_i and both
        losses learn that artefact.
    readout_skip : bool
        The readout also sees, unnormalised, the self token's embedding and the sum of the other tokens' embeddings
        (weighted by the cutoff envelope). The blocks end in a LayerNorm that removes the scale of the token, and
        softmax attention averages rather than sums; scores that grow linearly in z_i (trapped particles) or add up pair
        forces (interacting particles with ε > 0) are learned several times faster with this path. Off in the paper's
        network.
    norm : str
        ``"post"`` (post-LayerNorm blocks, the paper) or ``"pre"`` (pre-LayerNorm: the residual stream keeps its scale,
        which helps regress scores that are sums over neighbours).
    gaussian_baseline : bool
        Output ``s_g = -g_i + correction``. Every AOUP propulsion is exactly N(0, I) in the steady state, so ``-g_i`` is
        the score of the g-marginal and the network learns only what the interactions add (zero for an ideal gas).
    force_input : bool
        Every token also carries its particle's interaction force F_j (x-only: k Σ F − A x) divided by ``force_unit``.
        With ε = 0 a particle's velocity b_x,j = v0 g_j + F_j is slaved to its neighbours' along every contact
        (physics.md §6), so the g-score depends on F to a precision of order √γ; computing F from displacements to that
        precision is what a network finds hardest, and the compiled core gives it exactly. Not with ``predict_x`` (DSM
        would have to recompute F at perturbed positions).
    force_unit : float
        The force scale; v0 makes g_j + F_j/v0 the velocity in units of v0.
    output_scale : float
        The readouts' outputs are multiplied by it. With ε = 0 the g-score's correction is of order 1/√γ (≈ 100 for the
        paper's MIPS; physics.md §6), far beyond the O(1) outputs of a fresh network; scaling the output keeps the
        trained weights O(1).
    dtype : str
        Parameter and computation dtype, ``"float32"`` or ``"float64"`` (the latter needs JAX x64).
    residual : bool
        The network is the correction to a fixed base score (``train_score(..., base=...)``): its readouts start at
        exactly zero, so training starts from the base and moves away only where the loss improves, and it holds no
        Gaussian baseline (the base does).
    propulsion : str
        The coordinates of the propulsion score: ``"vector"`` (s_g, 2 columns: AOUPs) or ``"angle"`` (s_θ, 1 column:
        ABPs). The tokens carry g = (cos θ, sin θ) in both cases, so that the network is periodic in θ.
    """

    k: int = 16
    width: int = 64
    depth: int = 2
    heads: int = 4
    ff_width: int = 64
    embed_hidden: int = 64
    embed_layers: int = 2
    readout_hidden: int = 64
    readout_layers: int = 2
    predict_x: bool = False
    absolute_position: bool = False
    sigma_conditioning: bool = False
    length_scale: float = 1.0
    cutoff: float | None = None
    cutoff_width: float = 0.5
    readout_skip: bool = False
    norm: str = "post"
    gaussian_baseline: bool = False
    output_scale: float = 1.0
    force_input: bool = False
    force_unit: float = 1.0
    dtype: str = "float32"
    propulsion: str = "vector"
    residual: bool = False

    def __post_init__(self):
        if self.propulsion not in ("vector", "angle"):
            raise ValueError(f"propulsion must be 'vector' (AOUP) or 'angle' (ABP), got {self.propulsion!r}")
        if self.residual and self.gaussian_baseline:
            raise ValueError("a residual network has no gaussian_baseline: its base score holds the baseline")
        if self.gaussian_baseline and self.propulsion == "angle":
            raise ValueError("gaussian_baseline is the N(0, I) marginal of an AOUP's g; an ABP's θ is uniform")
        if self.k < 1 or self.depth < 0 or self.width < 2 or self.width % 2:
            raise ValueError(f"need k >= 1, depth >= 0 and an even width >= 2, got {self}")
        if self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
        if self.norm not in ("post", "pre"):
            raise ValueError(f"norm must be 'post' or 'pre', got {self.norm!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.force_input and self.predict_x:
            raise ValueError("force_input is for ε = 0 networks (g-score only), not with predict_x")
        if not self.force_unit > 0:
            raise ValueError(f"force_unit must be > 0, got {self.force_unit}")
        if not self.output_scale > 0:
            raise ValueError(f"output_scale must be > 0, got {self.output_scale}")
        if not self.length_scale > 0:
            raise ValueError(f"length_scale must be > 0, got {self.length_scale}")
        if self.cutoff is not None and not 0 < self.cutoff_width <= self.cutoff:
            raise ValueError(f"need 0 < cutoff_width <= cutoff, got {self.cutoff_width} and {self.cutoff}")

    @classmethod
    def paper(cls, **overrides) -> ScoreNetConfig:
        """The paper's network (Boffi & Vanden-Eijnden 2024): k = 64, width 256, 4 blocks of 4 heads, MLPs of
        4 × 256 GELU layers; ≈ 2.31 M parameters with the s_g head alone."""
        base = dict(
            k=64,
            width=256,
            depth=4,
            heads=4,
            ff_width=256,
            embed_hidden=256,
            embed_layers=4,
            readout_hidden=256,
            readout_layers=4,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides) -> ScoreNetConfig:
        """A network for CPU tests and small systems (≈ 27 k parameters with the s_g head alone)."""
        base = dict(
            k=8,
            width=32,
            depth=2,
            heads=2,
            ff_width=64,
            embed_hidden=32,
            embed_layers=2,
            readout_hidden=64,
            readout_layers=2,
        )
        return cls(**{**base, **overrides})

    def replace(self, **changes) -> ScoreNetConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScoreNetConfig:
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def propulsion_dim(self) -> int:
        """Components of the propulsion score: 2 (s_g) or 1 (s_θ)."""
        return 1 if self.propulsion == "angle" else 2

    @property
    def angle(self) -> bool:
        """Whether the propulsion score is taken in the angle θ (ABPs)."""
        return self.propulsion == "angle"

    @property
    def output_dim(self) -> int:
        """Components of the per-particle score: (s_x, s_g) or s_g alone (s_θ, one column, for ABPs)."""
        return (2 if self.predict_x else 0) + self.propulsion_dim

    @property
    def jnp_dtype(self):
        return jnp.dtype(self.dtype)


class ParticleTokens(NamedTuple):
    """The network's input for a batch of B particles, each with its k neighbour tokens (self first).

    ``displacement`` (B, k, 2) is ``x_i - x_j`` under the minimum image, ``g`` (B, k, 2) the neighbours'
    propulsions, ``position`` (B, 2) the absolute ``x_i`` (used only with ``absolute_position``) and
    ``log_sigma`` (B,) the noise level (used only with ``sigma_conditioning``), ``force`` (B, k, 2) the
    neighbours' interaction forces (used only with ``force_input``; None otherwise) and ``offset`` (B, output_dim)
    the value of a fixed base score at each particle, which the losses add to the network's output when it is
    trained on the base's residual (the network itself never reads it; None otherwise).
    """

    displacement: jax.Array
    g: jax.Array
    position: jax.Array
    log_sigma: jax.Array
    force: jax.Array | None = None
    offset: jax.Array | None = None


class MLP(nn.Module):
    """``layers`` hidden GELU layers of width ``hidden``, then a linear map to ``out``."""

    hidden: int
    layers: int
    out: int
    dtype: jnp.dtype
    zero_output: bool = False  # the last layer starts at zero: the MLP outputs 0 until trained

    @nn.compact
    def __call__(self, h):
        for _ in range(self.layers):
            h = nn.gelu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=self.dtype)(h))
        init = nn.initializers.zeros if self.zero_output else nn.linear.default_kernel_init
        return nn.Dense(self.out, dtype=self.dtype, param_dtype=self.dtype, kernel_init=init)(h)


def cutoff_envelope(distance, cutoff: float, width: float):
    """1 below ``cutoff - width``, 0 beyond ``cutoff``, a C² smoothstep between."""
    t = jnp.clip((distance - (cutoff - width)) / width, 0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2)


class Attention(nn.Module):
    """Multi-head dot-product attention of ``query`` tokens over ``tokens``, optionally with key weights.

    With ``key_weight`` (..., K) the attention of every query on key l is ∝ w_l exp(q·k_l / √d): a key of weight
    0 has no influence at all, so tokens can enter and leave the set continuously. (Same parameters as
    ``flax.linen.MultiHeadDotProductAttention``.)
    """

    width: int
    heads: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, query, tokens, key_weight=None):
        head_dim = self.width // self.heads
        dense = partial(nn.DenseGeneral, features=(self.heads, head_dim), dtype=self.dtype, param_dtype=self.dtype)
        q = dense(name="query")(query)
        k = dense(name="key")(tokens)
        v = dense(name="value")(tokens)
        logits = jnp.einsum("...qhd,...khd->...hqk", q, k) / jnp.sqrt(head_dim).astype(self.dtype)
        if key_weight is None:
            attention = jax.nn.softmax(logits, axis=-1)
        else:
            weight = key_weight[..., None, None, :]
            # Shift by the largest logit among keys that count (the self token always does): no overflow.
            shift = jax.lax.stop_gradient(jnp.max(jnp.where(weight > 0, logits, -jnp.inf), axis=-1, keepdims=True))
            unnormalised = weight * jnp.exp(jnp.where(weight > 0, logits - shift, -jnp.inf))
            attention = unnormalised / jnp.sum(unnormalised, axis=-1, keepdims=True)
        mixed = jnp.einsum("...hqk,...khd->...qhd", attention, v)
        return nn.DenseGeneral(self.width, axis=(-2, -1), dtype=self.dtype, param_dtype=self.dtype, name="out")(mixed)


class EncoderBlock(nn.Module):
    """Transformer block. ``norm="post"`` (the paper): h ← LN(h + Attn(h)); h ← LN(h + FF(h)).
    ``norm="pre"``: h ← h + Attn(LN(h)); h ← h + FF(LN(h)), whose residual stream keeps its scale.

    With ``self_only`` the block returns only the first (self) token, attending with that single query: the
    last block needs nothing else, and its output is identical to the full block's first row.
    """

    width: int
    heads: int
    ff_width: int
    dtype: jnp.dtype
    norm: str = "post"
    self_only: bool = False

    @nn.compact
    def __call__(self, h, key_weight=None):
        layer_norm = partial(nn.LayerNorm, dtype=self.dtype, param_dtype=self.dtype)
        attention = Attention(self.width, self.heads, self.dtype)
        feed = nn.Sequential(
            [
                nn.Dense(self.ff_width, dtype=self.dtype, param_dtype=self.dtype),
                nn.gelu,
                nn.Dense(self.width, dtype=self.dtype, param_dtype=self.dtype),
            ]
        )
        if self.norm == "post":
            query = h[..., :1, :] if self.self_only else h
            h = layer_norm()(query + attention(query, h, key_weight))
            return layer_norm()(h + feed(h))
        normed = layer_norm()(h)
        query, residual = (normed[..., :1, :], h[..., :1, :]) if self.self_only else (normed, h)
        h = residual + attention(query, normed, key_weight)
        return h + feed(layer_norm()(h))


class ScoreNet(nn.Module):
    """Per-particle score ``tokens -> (B, output_dim)``: columns ``(s_x, s_g)`` when ``predict_x`` else ``s_g``
    (``s_g`` is the single column s_θ when ``config.propulsion == "angle"``).

    Apply with ``ScoreNet(config).apply(params, tokens)`` where ``tokens`` is a :class:`ParticleTokens`.
    """

    config: ScoreNetConfig

    @nn.compact
    def __call__(self, tokens: ParticleTokens) -> jax.Array:
        c = self.config
        dt = c.jnp_dtype
        half = c.width // 2
        displacement = tokens.displacement.astype(dt) / c.length_scale
        propulsion = tokens.g.astype(dt)
        if c.force_input:
            if tokens.force is None:
                raise ValueError("tokens: a network with force_input needs the tokens' forces")
            propulsion = jnp.concatenate([propulsion, tokens.force.astype(dt) / c.force_unit], axis=-1)
        h = jnp.concatenate(
            [
                MLP(c.embed_hidden, c.embed_layers, half, dt, name="embed_g")(propulsion),
                MLP(c.embed_hidden, c.embed_layers, half, dt, name="embed_x")(displacement),
            ],
            axis=-1,
        )
        if c.absolute_position:
            position = tokens.position.astype(dt) / c.length_scale
            h = h + MLP(c.embed_hidden, c.embed_layers, c.width, dt, name="embed_position")(position)[..., None, :]
        if c.sigma_conditioning:
            log_sigma = tokens.log_sigma.astype(dt)[..., None]
            h = h + MLP(c.embed_hidden, 1, c.width, dt, name="embed_sigma")(log_sigma)[..., None, :]
        embedded = h
        key_weight = None
        if c.cutoff is not None:
            distance = jnp.sqrt(jnp.sum(tokens.displacement.astype(dt) ** 2, axis=-1) + 1e-30)  # smooth at 0
            key_weight = cutoff_envelope(distance, c.cutoff, c.cutoff_width)
        for block in range(c.depth):
            h = EncoderBlock(
                c.width, c.heads, c.ff_width, dt, c.norm, self_only=block == c.depth - 1, name=f"block_{block}"
            )(h, key_weight)
        self_token = h[..., 0, :]
        if c.readout_skip:
            neighbour_weight = jnp.ones(embedded.shape[:-1], dt) if key_weight is None else key_weight
            neighbour_sum = jnp.sum(neighbour_weight[..., 1:, None] * embedded[..., 1:, :], axis=-2)
            self_token = jnp.concatenate([self_token, embedded[..., 0, :], neighbour_sum], axis=-1)
        s_g = c.output_scale * MLP(
            c.readout_hidden, c.readout_layers, c.propulsion_dim, dt, c.residual, name="readout_g"
        )(self_token)
        if c.gaussian_baseline:
            s_g = s_g - tokens.g[..., 0, :].astype(dt)
        if not c.predict_x:
            return s_g
        s_x = c.output_scale * MLP(c.readout_hidden, c.readout_layers, 2, dt, c.residual, name="readout_x")(self_token)
        return jnp.concatenate([s_x, s_g], axis=-1)


def init_params(config: ScoreNetConfig, key: jax.Array):
    """Fresh parameters for ``config``, in one compiled call (initialised operation by operation, every layer's
    draws and scalings compile separately: seconds per network, the same numbers)."""
    k = config.k
    dt = config.jnp_dtype
    dummy = ParticleTokens(
        jnp.zeros((1, k, 2), dt),
        jnp.zeros((1, k, 2), dt),
        jnp.zeros((1, 2), dt),
        jnp.zeros((1,), dt),
        jnp.zeros((1, k, 2), dt) if config.force_input else None,
    )
    return jax.jit(ScoreNet(config).init)(key, dummy)


def param_shapes(config: ScoreNetConfig):
    """The structure, shapes and dtypes of ``config``'s parameters, computed without creating them."""
    return jax.eval_shape(lambda key: init_params(config, key), jax.random.PRNGKey(0))


def count_params(params) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
