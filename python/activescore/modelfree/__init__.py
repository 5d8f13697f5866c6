"""Entropy production from trajectories alone (physics.md §8): tracked positions, with or without an observed
propulsion, and no model of the drift.

* :func:`estimate_model_free`: the probability-flow velocity fitted to consecutive frames by the Stratonovich loss
  (one linear solve on model-free features, or with ``velocity="network"`` a network trained with the same loss,
  :class:`NetworkSettings`), and EPR = E[v·D⁻¹v] over the noisy coordinates;
* :func:`tur_lower_bound`: with the positions alone, the short-time thermodynamic-uncertainty lower bound on the
  entropy production of the positions (a coarse-grained quantity, never the EPR);
* importers: :func:`tracks_from_dataframe` (trackpy), :func:`tracks_from_csv`, :func:`tracks_from_arrays`,
  :func:`tracks_from_trajectory`.
"""

from .estimator import ModelFreeEPR, estimate_model_free
from .network import NetworkSettings
from .tracks import Tracks, tracks_from_arrays, tracks_from_csv, tracks_from_dataframe, tracks_from_trajectory
from .tur import TURBound, tur_lower_bound

__all__ = [
    "ModelFreeEPR",
    "NetworkSettings",
    "TURBound",
    "Tracks",
    "estimate_model_free",
    "tracks_from_arrays",
    "tracks_from_csv",
    "tracks_from_dataframe",
    "tracks_from_trajectory",
    "tur_lower_bound",
]
