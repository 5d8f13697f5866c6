"""A trained score: evaluate s(x, g) and its per-particle divergences on snapshots of any size; save and load."""

from __future__ import annotations

import functools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .cache import LastSnapshot
from .checkpoint import read_metadata_and_state, restore_tree, save_tree
from .data import gather_tokens, make_snapshots
from .linear import LinearScore
from .losses import self_divergence
from .network import ScoreNet, ScoreNetConfig, param_shapes
from .validation import Validation, validation_block

#: A Score with ``token_tiers=None`` evaluates in token tiers once it has evaluated this many particles plainly:
#: then it has spent on plain evaluation about what the tiers' compilations cost (the rent-or-buy rule, at most
#: twice the better of the two choices in hindsight). Measured on the MIPS default network, N = 4096, 2 cores:
#: 0.59 s per snapshot plainly, 0.34 s in tiers, about 9 s more compilation.
TIERS_AFTER_PARTICLES = 65536

_FORMAT = "activescore.Score"
_VERSION = 1


def _system_from_dict(d: dict):
    from activescore.systems import system_from_dict

    return system_from_dict(d)


@functools.lru_cache(maxsize=16)
def _compiled_evaluators(config: ScoreNetConfig):
    """Jitted ``(score, divergence)`` of one snapshot's particles, shared by every Score of this architecture."""
    apply = ScoreNet(config).apply

    def tokens(snapshots, particles, log_sigma, box_length, n_tokens):
        return gather_tokens(snapshots, jnp.zeros_like(particles), particles, box_length, log_sigma, n_tokens)

    @partial(jax.jit, static_argnames=("box_length", "n_tokens"))
    def evaluate(params, snapshots, particles, log_sigma, box_length, n_tokens=None):
        return apply(params, tokens(snapshots, particles, log_sigma, box_length, n_tokens))

    @partial(jax.jit, static_argnames=("box_length", "n_tokens"))
    def divergence(params, snapshots, particles, log_sigma, box_length, n_tokens=None):
        return self_divergence(
            apply,
            params,
            tokens(snapshots, particles, log_sigma, box_length, n_tokens),
            config.predict_x,
            config.angle,
        )

    return evaluate, divergence


def _token_pieces(needed: np.ndarray, k: int, size: int):
    """``(pieces, order)``: the particles sorted by the tokens they need (``order``) and cut into pieces of ``size``
    (the last wrapping around), each ``(start, size, tokens)`` with its most crowded particle's tokens rounded up
    to a multiple of k/8 (at most k)."""
    order = np.argsort(needed, kind="stable")
    step = max(1, -(-k // 8))
    n = len(order)
    pieces = []
    for start in range(0, n, size):
        most = int(needed[order[np.arange(start, start + size) % n]].max())
        tokens = min(k, -(-most // step) * step)
        pieces.append((start, size, None if tokens == k else tokens))  # None: all k, the plain shape
    return pieces, order


class Score:
    """A learned per-particle score s_i = (s_x,i, s_g,i) ≈ ∇_{z_i} log ρ of a system's stationary density.

    ``score(x, g)`` returns ``(s_x, s_g)`` for one snapshot, each (N, 2) (``s_x`` is None when the network has no
    x head, i.e. ε = 0). For ABPs g is (cos θ, sin θ) and ``s_g`` is s_θ, (N, 1). A score learned by denoising at
    noise level σ approximates the score of the σ-smoothed density; ``score.sigmas`` records the levels (empty for
    the implicit loss, which has no smoothing).

    Particles are evaluated in chunks of ``chunk_size``, so memory stays bounded for any N. A network with a cutoff
    can be evaluated in token tiers, as it is trained (:mod:`~activescore.learning.tiers`): the particles sorted by
    the neighbours they have within the cutoff, each piece of ``chunk_size / 4`` gathering only as many tokens as
    its most crowded particle needs (rounded up to a multiple of k/8, so that few shapes are compiled). A neighbour
    beyond the cutoff has attention weight 0, so the numbers are those of every particle at k tokens, for less
    work (1.7× on the MIPS default network at N = 4096), but the extra shapes cost compilations (about 9 s there,
    as much as 16 snapshots' plain evaluation). ``token_tiers``: True, always; False, never; None (default), once
    the score has evaluated :data:`TIERS_AFTER_PARTICLES` particles plainly, so that a few snapshots cost no extra
    compilation and a long estimate runs cheaper.

    Attributes
    ----------
    system : ParticleSystem
        The system the score was learned for (its box length is used for neighbour lists).
    config : ScoreNetConfig
        The network's architecture.
    params : pytree
        Network weights (the EMA weights after training).
    sigmas : tuple of float
        Denoising noise levels trained on (empty for the implicit loss).
    info : dict
        Training record (loss name, steps, seed, loss history, held-out losses, the validation, ...).
    base : score or None
        A fixed score the network corrects (None: the network is the whole score). With a base the score is
        ``base + network`` and so are its divergences: the network was trained on the base's residual
        (``train_score(..., base=...)``; for AOUPs with ε = 0 the default base is the drift-response
        :class:`~activescore.learning.linear.LinearScore`).
    """

    def __init__(
        self,
        system,
        config: ScoreNetConfig,
        params,
        *,
        sigmas=(),
        info: dict | None = None,
        chunk_size: int = 4096,
        base=None,
        token_tiers: bool | None = None,
    ):
        self.system = system
        self.config = config
        self.base = base
        self.params = jax.tree_util.tree_map(jnp.asarray, params)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.info = dict(info or {})
        self.chunk_size = int(chunk_size)
        self.token_tiers = token_tiers if config.cutoff is not None else False
        self._evaluated = 0  # particles evaluated so far (score and divergence alike)
        self._evaluate, self._divergence = _compiled_evaluators(config)
        # The last snapshot's device arrays and divergences: estimate asks for the score and both divergences of
        # one snapshot in turn, and the kNN lists and forces (or the forward-mode pass) need computing only once.
        self._last_snapshot = LastSnapshot()
        self._last_divergence = LastSnapshot()

    @property
    def validation(self) -> Validation | None:
        """The report on frames held out of training: ``print(score.validation)`` shows the held-out loss, the
        learned EPR against the learning-free identity and the implicit-loss lower bound. None when training held
        no frames out by choice (``holdout=0``); a :class:`~activescore.learning.validation.NotValidated` saying
        why when ``holdout`` > 0 found too few frames to hold any out."""
        record = self.info.get("validation")
        return None if record is None else validation_block(record)

    # ----------------------------------------------------------------------------------------- evaluation
    def __call__(self, x, g, *, sigma: float | None = None, box_length: float | None = None):
        """``(s_x or None, s_g)`` at one snapshot ``x``, ``g`` (N, 2), each (N, 2) float64 (s_g: (N, 1) s_θ for ABPs).

        ``sigma`` selects the noise level of a σ-conditioned network (default: the smallest trained);
        ``box_length`` overrides the system's (to apply the score to another box).
        """
        out = self._run(self._evaluate, x, g, sigma, box_length)
        if self.base is not None:
            base_x, base_g = self.base(x, g, box_length=box_length)
            out = out + (base_g if base_x is None else np.concatenate([base_x, base_g], axis=-1))
        if self.config.predict_x:
            return out[:, :2], out[:, 2:]
        return None, out

    def divergence(self, x, g, *, sigma: float | None = None, box_length: float | None = None):
        """``(∇_{x_i}·s_x,i or None, ∇_{g_i}·s_g,i)`` per particle, each (N,), exact (forward mode)."""
        key = (self._log_sigma(sigma), box_length)
        out = self._last_divergence.get(key, x, g)
        if out is None:
            out = self._run(self._divergence, x, g, sigma, box_length)
            if self.base is not None:
                out = out + self._base_divergence(x, g, box_length)
            self._last_divergence.put(key, x, g, out)
        out = out.copy()  # the cached array stays ours: what the caller gets is theirs to change
        if self.config.predict_x:
            return out[:, 0], out[:, 1]
        return None, out[:, 0]

    def divergence_g(self, x, g, **kwargs) -> np.ndarray:
        """Per-particle ∇_{g_i}·s_g,i (ABPs: ∂_{θ_i} s_θ,i), shape (N,)."""
        return self.divergence(x, g, **kwargs)[1]

    def divergence_x(self, x, g, **kwargs) -> np.ndarray:
        """Per-particle ∇_{x_i}·s_x,i, shape (N,) (only for networks with an x head, ε > 0)."""
        if not self.config.predict_x:
            raise ValueError("this score has no x head (the system has eps = 0)")
        return self.divergence(x, g, **kwargs)[0]

    def _base_divergence(self, x, g, box_length) -> np.ndarray:
        """The base's divergences in the columns of :meth:`_divergence` ((∇_x·, ∇_g·) or ∇_g·)."""
        div_g = self.base.divergence_g(x, g, box_length=box_length)
        if not self.config.predict_x:
            return div_g[:, None]
        return np.stack([self.base.divergence_x(x, g, box_length=box_length), div_g], axis=1)

    def _log_sigma(self, sigma) -> float:
        if not self.config.sigma_conditioning:
            return 0.0
        if sigma is None:
            if not self.sigmas:
                raise ValueError("a sigma-conditioned score needs sigma=")
            sigma = min(self.sigmas)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        return math.log(sigma)

    def _run(self, fn, x, g, sigma, box_length) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 2 or g.shape != x.shape:
            raise ValueError(f"x and g must both have shape (N, 2), got {x.shape} and {g.shape}")
        box_length = float(self.system.box_length if box_length is None else box_length)
        n = x.shape[0]
        k = min(self.config.k, n)
        dtype = self.config.jnp_dtype
        snapshots = self._snapshots(x, g, box_length, k, dtype)
        # A power-of-two chunk no larger than needed: few distinct shapes, so few compilations.
        chunk = min(self.chunk_size, 1 << max(0, (n - 1).bit_length()))
        if snapshots.needed is None:
            pieces = [(start, chunk, None) for start in range(0, n, chunk)]
            order = np.arange(n)
        else:
            pieces, order = _token_pieces(np.asarray(snapshots.needed[0]), k, max(1, chunk // 4))
        outputs = None
        for start, size, n_tokens in pieces:
            rows = order[np.arange(start, start + size) % n]  # the last piece wraps around; extra rows dropped
            log_sigma = jnp.full((size,), self._log_sigma(sigma), dtype)
            out = fn(self.params, snapshots, jnp.asarray(rows, jnp.int32), log_sigma, box_length, n_tokens)
            kept = min(size, n - start)
            if outputs is None:
                outputs = np.empty((n, *out.shape[1:]), np.float64)
            outputs[rows[:kept]] = np.asarray(out[:kept], dtype=np.float64)
        assert outputs is not None  # n >= 1: at least one piece
        self._evaluated += n
        return outputs

    def _tiered(self) -> bool:
        """Whether the next snapshot is evaluated in token tiers (class docstring)."""
        if self.token_tiers is None:
            return self._evaluated >= TIERS_AFTER_PARTICLES
        return self.token_tiers

    def _snapshots(self, x, g, box_length, k, dtype):
        """One snapshot's device arrays (kNN lists and, for force-input networks, forces), reused while the same
        snapshot comes back."""
        key = (box_length, k, dtype, self._tiered())
        snapshots = self._last_snapshot.get(key, x, g)
        if snapshots is None:
            host = make_snapshots(
                x[None],
                g[None],
                box_length,
                k,
                dtype,
                system=self.system if self.config.force_input else None,
                reach=self.config.cutoff if self._tiered() else None,
            )
            snapshots = jax.tree_util.tree_map(jnp.asarray, host)
            self._last_snapshot.put(key, x, g, snapshots)
        return snapshots

    # ------------------------------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write weights, architecture, system and training record to one msgpack file (atomically)."""
        metadata = {
            "format": _FORMAT,
            "version": _VERSION,
            "system": self.system.to_dict(),
            "network": self.config.to_dict(),
            "sigmas": list(self.sigmas),
            "info": self.info,
        }
        if self.base is not None:
            metadata["base"] = self.base.to_dict()
        save_tree(path, self.params, metadata)

    @classmethod
    def load(cls, path, *, system_from_dict=None, chunk_size: int = 4096) -> Score:
        """Read a file written by :meth:`save`. ``system_from_dict`` rebuilds the system (default:
        :func:`activescore.systems.system_from_dict`)."""
        metadata, state = read_metadata_and_state(path, "a saved Score")
        if metadata.get("format") != _FORMAT:
            kind = " (it is a training checkpoint)" if "training" in metadata else ""
            raise ValueError(f"{path} is not a saved Score{kind}")
        if metadata.get("version") != _VERSION:
            raise ValueError(f"{path}: Score format version {metadata.get('version')} is not supported")
        try:
            config = ScoreNetConfig.from_dict(metadata["network"])
            system = (system_from_dict or _system_from_dict)(metadata["system"])
            sigmas, info = metadata["sigmas"], metadata["info"]
            base = None if metadata.get("base") is None else LinearScore.from_dict(metadata["base"])
        except Exception as err:  # a file edited by hand or written by an incompatible version
            raise ValueError(f"{path}: its Score metadata cannot be read ({type(err).__name__}: {err})") from None
        params = restore_tree(path, state, param_shapes(config), "a saved Score")
        return cls(system, config, params, sigmas=sigmas, info=info, chunk_size=chunk_size, base=base)

    def __repr__(self) -> str:
        sig = f", sigmas={self.sigmas}" if self.sigmas else ""
        base = f", base={self.base!r}" if self.base is not None else ""
        config = self.config
        return f"Score({self.system!r}, k={config.k}, width={config.width}, depth={config.depth}{sig}{base})"
