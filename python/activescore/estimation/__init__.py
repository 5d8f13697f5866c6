"""Probability-flow velocity, currents and entropy production from a score, and the learning-free check
(physics.md §4).

One front door, :func:`estimate`, takes a score and stationary samples and returns an :class:`EPRResult` with

* per snapshot and particle (kept when they fit in memory): v_x, v_g and the local EPR in both forms,
  the quadratic e_i = |v_x,i|²/ε + |v_g,i|²/γ and the divergence c_i = ∇_{g_i}·v_g,i + v_x,i·b_x,i/ε + ∇_{x_i}·v_x,i
  (x terms dropped when ε = 0), split into the x and g degrees of freedom (for ABPs the angle θ takes g's place:
  v_θ = −D_r s_θ, e_θ = v_θ²/D_r, c_θ = ∂_θ v_θ);
* the totals (EPR per particle and for the whole system) in both forms with batch-means standard errors;
* the learning-free identity (:func:`learning_free_epr`) on the same samples, the ratio learned/identity and the
  difference, printed prominently by :meth:`EPRResult.summary`;
* spatial maps on a grid (density, per-particle mean and density-weighted EPR, the current ρ v_x) and, for trapped
  systems, radial profiles.

Every number is an :class:`Estimate` labelled with its form and the σ of the score it came from. The score
protocol is :class:`ScoreProtocol`.

Modules: ``statistics`` (errors), ``inputs`` (checks), ``score_protocol``, ``local`` (one snapshot), ``binned``
(maps, profiles), ``identity`` (learning-free EPR), ``result`` (report), ``front`` (:func:`estimate`).
"""

from .binned import BinnedField, RadialProfile, SpatialMap
from .front import estimate
from .identity import LearningFreeEPR, learning_free_epr
from .local import LocalEPR, local_epr
from .result import EPRResult
from .score_protocol import ScoreProtocol
from .statistics import FORMS, Estimate

__all__ = [
    "FORMS",
    "BinnedField",
    "EPRResult",
    "Estimate",
    "LearningFreeEPR",
    "LocalEPR",
    "RadialProfile",
    "ScoreProtocol",
    "SpatialMap",
    "estimate",
    "learning_free_epr",
    "local_epr",
]
