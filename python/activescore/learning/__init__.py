"""Score learning in JAX/Flax: neighbour lists, the per-particle transformer, losses, training.

Typical use::

    score = train_score(system, trajectory, train=TrainConfig(loss="dsm", sigmas=(0.01,), n_steps=20_000))
    s_x, s_g = score(x, g)              # one snapshot, (N, 2) each (s_x is None when eps = 0; ABPs: s_g is s_θ, (N, 1))
    div_g = score.divergence_g(x, g)    # (N,) exact ∇_{g_i}·s_g,i (ABPs: ∂_{θ_i} s_θ,i)
    score.save("score.msgpack"); score = Score.load("score.msgpack")
"""

from importlib import import_module

from .settings import TrainConfig

# Everything else needs JAX and Flax: loaded on first use, so the command line can read TrainConfig without them.
_LAZY = {
    "dsm_loss": ".losses",
    "implicit_loss": ".losses",
    "self_divergence": ".losses",
    "knn": ".neighbours",
    "ParticleTokens": ".network",
    "ScoreNet": ".network",
    "ScoreNetConfig": ".network",
    "count_params": ".network",
    "init_params": ".network",
    "Score": ".score",
    "train_score": ".train",
    "LinearScore": ".linear",
    "fit_linear_score": ".linear",
}


def load_score(path):
    """A saved score, whichever kind the file holds: a network (:class:`Score`, msgpack) or a drift-response score
    (:class:`LinearScore`, JSON)."""
    from pathlib import Path

    with open(Path(path), "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        return import_module(".linear", __name__).LinearScore.load(path)
    return import_module(".score", __name__).Score.load(path)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LinearScore",
    "ParticleTokens",
    "Score",
    "ScoreNet",
    "ScoreNetConfig",
    "TrainConfig",
    "count_params",
    "dsm_loss",
    "fit_linear_score",
    "implicit_loss",
    "init_params",
    "knn",
    "load_score",
    "self_divergence",
    "train_score",
]
