"""Score learning in JAX/Flax (issue 4): neighbour lists, the per-particle transformer, losses, training.

Typical use::

    score = train_score(system, trajectory, loss="dsm", sigma=0.01, n_steps=20_000)
    s_x, s_g = score(x, g)              # one snapshot, (N, 2) each (s_x is None when eps = 0)
    div_g = score.divergence_g(x, g)    # (N,) exact ∇_{g_i}·s_g,i
    score.save("score.msgpack"); score = Score.load("score.msgpack")
"""

from .losses import dsm_loss, implicit_loss, self_divergence
from .neighbours import knn
from .network import ParticleTokens, ScoreNet, ScoreNetConfig, count_params, init_params
from .score import Score
from .train import TrainConfig, train_score

__all__ = [
    "ParticleTokens", "Score", "ScoreNet", "ScoreNetConfig", "TrainConfig", "count_params", "dsm_loss",
    "implicit_loss", "init_params", "knn", "self_divergence", "train_score",
]
