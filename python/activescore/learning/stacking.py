"""A trained network and the drift-response features, combined by one closed-form refit: the default score of
interacting AOUPs with ε = 0 (docs/studies/paper_regime.md).

A network trained on the whole score, s_g = −g + corr(z), and the drift-response score (:mod:`.linear`) capture
different parts of the score: on the paper's MIPS system at N = 512 each alone captures 0.80 of the EPR at
γ = 1e-2, and together 0.90. The combination

    s_g = −g + Σ_m c_m φ_m + c_net corr,          corr = s_g,net + g,

is linear in its coefficients, and every piece's divergence is exact (the network's by forward mode), so the
implicit loss stays quadratic: one more column in the normal equations of :mod:`.linear` and one linear solve.
Its minimiser is at least as good on the fit frames as either piece alone (each is a point of the family).

The result is an ordinary :class:`Score` whose base is the refitted :class:`LinearScore` and whose network is the
trained one with its readout scaled by c_net and its Gaussian baseline handed to the base: a residual network
whose output is exactly c_net · corr, saved, loaded and estimated like any other score.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from .linear import DEFAULT_ORDER, LinearScore, normal_equations, solve
from .score import Score
from .validation import validate

#: What the validation of a stacked score advises when it finds it inconsistent.
STACKED_ADVICE = (
    "the network and the drift-response features together miss part of the score here "
    "(docs/studies/paper_regime.md): train on more frames and for more steps, or use a larger network"
)


def network_correction(network: Score, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(corr, divergence)`` of one snapshot: the network's s_g + g (N, 2) and its exact ∇_{g_i}·, (N,)."""
    s_g = network(x, g)[1]
    return s_g + g, network.divergence_g(x, g) + 2.0


def stacked_normal_equations(system, network: Score, x, g, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, r)`` of the implicit loss over frames ``x``, ``g`` (F, N, 2) for the features φ_0 … φ_{order+1} and
    the network's correction as the last column."""
    return normal_equations(system, x, g, order, extra=functools.partial(network_correction, network))


def _scaled_readout(params, weight: float):
    """The network's parameters with the last layer of its s_g readout multiplied by ``weight``."""
    params = jax.tree_util.tree_map(np.array, params)  # host copies, ours to change
    readout = params["params"]["readout_g"]
    last = max(readout, key=lambda name: int(name.rsplit("_", 1)[1]))  # Dense_0 … Dense_L: the output layer
    readout[last] = {name: value * weight for name, value in readout[last].items()}
    return params


def stack(system, network: Score, x: np.ndarray, g: np.ndarray, order: int) -> Score:
    """The network and the drift-response features of ``order`` refitted together on frames ``x``, ``g`` (F, N, 2)
    (module docstring). The returned Score carries ``info["stack"]``: the coefficients as solved (the base's are the
    feature ones, with the network's +g folded into φ_0's when the network has no Gaussian baseline)."""
    config = network.config
    if network.base is not None or config.predict_x or config.propulsion != "vector":
        raise ValueError("stack: needs a network alone for the g-score of an AOUP (no base, no x head)")
    gram, rhs = stacked_normal_equations(system, network, x, g, order)
    coefficients = solve(gram, rhs)
    features, weight = coefficients[:-1].copy(), float(coefficients[-1])
    if not config.gaussian_baseline:  # corr = s_net + g: the +g part moves to the base's coefficient of φ_0 = g
        features[0] += weight
    base = LinearScore(system, features, order)
    residual = config.replace(gaussian_baseline=False, residual=True)
    info = {
        **network.info,
        "stack": {
            "order": int(order),
            "coefficients": coefficients.tolist(),  # of φ_0 … φ_{order+1} and corr, as solved
            "fit_frames": int(len(x)),
        },
    }
    return Score(
        system,
        residual,
        _scaled_readout(network.params, weight),
        sigmas=network.sigmas,
        info=info,
        chunk_size=network.chunk_size,
        base=base,
    )


def stacked_score(
    system,
    network: Score,
    fit: tuple[np.ndarray, np.ndarray],
    heldout: tuple[np.ndarray, np.ndarray] | None,
    order: int = DEFAULT_ORDER,
    dt: float | None = None,
) -> Score:
    """The default for interacting AOUPs with ε = 0 (:func:`activescore.learning.defaults.stacked_recipe`): the
    trained ``network`` refitted together with the drift-response features of ``order`` on the frames ``fit``
    (``(x, g)``, each (F, N, 2): a sample of the training frames) and validated on the held-out frames ``heldout``
    (``(x, g)``, or None: not validated; ``dt``: their time step, for the finite-dt ceiling). The network's own
    validation is kept as ``info["network_validation"]``."""
    x_fit, g_fit = fit
    score = stack(system, network, x_fit, g_fit, order)
    network_validation = network.info.get("validation")
    if network_validation is not None:
        score.info["network_validation"] = network_validation
    if heldout is None:
        return score
    x_held, g_held = heldout
    gram, rhs = stacked_normal_equations(system, network, x_held, g_held, order)
    c = np.asarray(score.info["stack"]["coefficients"])
    record = dict(network_validation or {})
    loss = {
        # The implicit loss per particle, up to its constant E|g|² − 2d (the normal equations sum over particles).
        "loss": float(c @ gram @ c - 2 * c @ rhs) / x_held.shape[1],
        "loss_name": "implicit (network and features refitted in closed form)",
        "best_step": record.get("best_step", 0),
        "steps": record.get("steps", 0),
        "stopped_early": record.get("stopped_early", False),
    }
    score.info["validation"] = validate(system, score, x_held, g_held, loss, STACKED_ADVICE, dt).to_dict()
    return score
