"""A score linear in its parameters and fitted in closed form by score matching: the drift-response score.

For an AOUP without translational noise (ε = 0) the propulsion score is written

    s_g = −g + Σ_m c_m φ_m(x, g),

on features built from the drift b_x = v0 g + F(x) (F: interaction plus trap force) and its Jacobian
M = ∂b_x/∂x (2N × 2N, sparse: one 2 × 2 block per interacting pair, −A on the diagonal):

    φ_0 = g,   φ_1 = F / v0,   φ_{m+1} = M^m b_x / (γ v0),  m = 1 … order.

Every feature is linear in g, so the divergences are exact: ∇_{g_i}·φ_{m+1,i} = tr[(M^m)_ii] / γ. The implicit
(Hyvärinen) loss E Σ_i [|s_g,i|² + 2 ∇_{g_i}·s_g,i] is then quadratic in c,

    c^T A c − 2 c^T r + const,   A_kl = E Σ_i φ_k,i·φ_l,i,   r_k = E Σ_i (g_i·φ_k,i − ∇_{g_i}·φ_k,i),

and its minimiser c = A⁻¹ r is found by one linear solve: no training, no step size, no early stopping. The EPR
it implies, γ E Σ_i |s_g,i + g_i|² = γ r^T A⁻¹ r, is a lower bound on the true EPR (the projection of s_g + g on
the span of the features).

Why these features: for the linear (trapped, non-interacting) AOUP the exact score is in the span of φ_0 … φ_2
(physics.md §5); for interacting particles at small γ, the multi-hop terms M^m b_x carry the response of a
particle's contacts to its neighbours' motion, which a local pair closure misses (docs/studies/paper_regime.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import scipy.sparse as sparse

from ..estimation.inputs import check_aoup, estimation_inputs
from ..io.files import atomic_write
from ..observables import drift_jacobian as pair_jacobian
from ..systems import AOUP, system_from_dict
from .cache import LastSnapshot
from .data import sized
from .validation import Validation, validate

_KIND = "activescore.LinearScore"
#: Powers of the drift Jacobian used by default (measured on MIPS: the captured EPR saturates by 3-4).
DEFAULT_ORDER = 3


def response_features(system: AOUP, x: np.ndarray, g: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(phi, divergence)``: the features φ_0 … φ_{order+1} of one snapshot, (order + 2, N, 2), and their
    per-particle divergences ∇_{g_i}·φ_m,i, (order + 2, N) (module docstring)."""
    n = system.n_particles
    force, jacobian = pair_jacobian(system, x)
    v0, gamma = float(system.v0), float(system.gamma)
    unit = v0 if v0 > 0 else 1.0
    phi = [g, force / unit]
    divergence = [np.full(n, 2.0), np.zeros(n)]
    response = (v0 * g + force).ravel()
    power = sparse.identity(2 * n, format="csr")
    for _ in range(order):
        response = jacobian @ response
        power = (power @ jacobian).tocsr()
        diagonal = power.diagonal()
        phi.append(response.reshape(n, 2) / (gamma * unit))
        divergence.append(v0 * (diagonal[0::2] + diagonal[1::2]) / (gamma * unit))
    return np.stack(phi), np.stack(divergence)


def normal_equations(
    system: AOUP, x: np.ndarray, g: np.ndarray, order: int, extra=None
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, r)`` of the implicit loss over frames ``x``, ``g`` (F, N, 2), averaged per frame (module docstring).
    ``extra(x, g) -> (feature (N, 2), its divergences (N,))`` of one snapshot adds one more feature as the last
    column (a trained network's correction: :mod:`.stacking`)."""
    size = order + 2 + (extra is not None)
    gram, rhs = np.zeros((size, size)), np.zeros(size)
    for xf, gf in zip(x, g, strict=True):
        phi, divergence = response_features(system, xf, gf, order)
        if extra is not None:
            feature, feature_divergence = extra(xf, gf)
            phi = np.concatenate([phi, feature[None]])
            divergence = np.concatenate([divergence, feature_divergence[None]])
        flat = phi.reshape(size, -1)
        gram += flat @ flat.T
        rhs += flat @ gf.ravel() - divergence.sum(axis=1)
    return gram / len(x), rhs / len(x)


def solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """c = A⁻¹ r, with the features scaled to unit norm first (their sizes span many decades) and a
    least-squares solve so that a feature that vanishes on the data (e.g. M b_x without interactions) gets 0."""
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    coefficients, *_ = np.linalg.lstsq(gram / np.outer(scale, scale), rhs / scale, rcond=1e-12)
    return coefficients / scale


class LinearScore:
    """The drift-response score of an AOUP with ε = 0 (module docstring): ``score(x, g) -> (None, s_g)`` and
    ``divergence_g(x, g)`` for one snapshot, so :func:`activescore.estimate` takes it like a learned network."""

    sigma = None  # fitted on the unsmoothed density

    def __init__(self, system: AOUP, coefficients, order: int, validation: Validation | None = None):
        self.system = system
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.order = int(order)
        self.validation = validation
        self._last = LastSnapshot()
        if self.coefficients.shape != (self.order + 2,):
            raise ValueError(f"coefficients: expected {self.order + 2} values for order {order}")

    def __call__(self, x, g, box_length: float | None = None):
        phi, _ = self._features(x, g, box_length)
        return None, -np.asarray(g, np.float64) + np.tensordot(self.coefficients, phi, axes=1)

    def divergence_g(self, x, g, box_length: float | None = None) -> np.ndarray:
        _, divergence = self._features(x, g, box_length)
        return -2.0 + self.coefficients @ divergence

    def _features(self, x, g, box_length):
        """The snapshot's features and divergences, computed once for the score and its divergence (the
        estimators ask for both); the features are local, so the score applies at any size."""
        x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
        length = self.system.box_length if box_length is None else float(box_length)
        cached = self._last.get(length, x, g)
        if cached is None:
            cached = response_features(sized(self.system, len(x), length), x, g, self.order)
            self._last.put(length, x, g, cached)
        return cached

    def to_dict(self) -> dict:
        """Everything that defines the score, as plain JSON values (also kept inside a residual network's file)."""
        return {
            "kind": _KIND,
            "system": self.system.to_dict(),
            "order": self.order,
            "coefficients": self.coefficients.tolist(),
            "validation": self.validation.to_dict() if self.validation is not None else None,
        }

    @classmethod
    def from_dict(cls, record: dict) -> LinearScore:
        if record.get("kind") != _KIND:
            raise ValueError("not a saved LinearScore")
        validation = Validation(record["validation"]) if record.get("validation") else None
        system = check_aoup(system_from_dict(record["system"]))
        return cls(system, record["coefficients"], record["order"], validation)

    def save(self, path) -> Path:
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())
        return path

    @classmethod
    def load(cls, path) -> LinearScore:
        record = json.loads(Path(path).read_text())
        if record.get("kind") != _KIND:
            raise ValueError(f"{path}: not a saved LinearScore")
        return cls.from_dict(record)

    def __repr__(self) -> str:
        return f"LinearScore(order={self.order}, system={self.system!r})"


def fit_linear_score(
    system: AOUP | None, samples, *, order: int = DEFAULT_ORDER, holdout: float = 0.1, progress: bool = False
) -> LinearScore:
    """Fit the drift-response score of ``system`` to ``samples`` by implicit score matching, in closed form.

    Parameters
    ----------
    system : AOUP with eps = 0, or None (the samples' own)
    samples : anything :func:`activescore.samples.as_samples` takes (a Trajectory, a data set, ``(x, g)`` arrays)
    order : int >= 1
        Powers of the drift Jacobian in the features (module docstring).
    holdout : float in [0, 1)
        Fraction of frames (the last ones, at least two) kept out of the fit for the validation block; 0: none.

    Returns
    -------
    LinearScore, with ``.validation`` (learned EPR in both forms against the learning-free identity on the
    held-out frames) unless ``holdout == 0``.
    """
    given, x, g, dt = estimation_inputs(samples, system)
    system = check_aoup(given)  # the features are built on the Ornstein–Uhlenbeck propulsion
    if system.eps > 0:
        raise ValueError(
            "system: the linear drift-response score models s_g for eps = 0 only (with eps > 0 the EPR needs s_x "
            "too): use activescore.learning.train_score"
        )
    if not (isinstance(order, (int, np.integer)) and order >= 1):
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1) (0: no validation), got {holdout}")
    n_held = 0 if holdout == 0 else max(2, math.ceil(holdout * len(x)))
    if len(x) - n_held < 1:
        raise ValueError(f"samples: {len(x)} frames leave none to fit after holding out {n_held}; pass more frames")
    fit_x, fit_g = x[: len(x) - n_held], g[: len(x) - n_held]
    gram, rhs = normal_equations(system, fit_x, fit_g, order)
    score = LinearScore(system, solve(gram, rhs), order)
    if n_held:
        held_gram, held_rhs = normal_equations(system, x[-n_held:], g[-n_held:], order)
        c = score.coefficients
        # The implicit loss per particle, up to its constant E|g|² − 2d (the normal equations sum over particles).
        loss = float(c @ held_gram @ c - 2 * c @ held_rhs) / x.shape[1]
        record = dict(loss=loss, loss_name="implicit (closed-form fit)", best_step=0, steps=0, stopped_early=False)
        advice = (
            "the features miss part of the score here (see docs/studies/paper_regime.md): a higher order, or a "
            "trained network (activescore.learning.train_score)"
        )
        score.validation = validate(system, score, x[-n_held:], g[-n_held:], record, advice, dt)
    return score
