"""activescore: simulate active matter, learn its score, and measure its probability currents and entropy
production (Boffi & Vanden-Eijnden, PNAS 2024).

The models, units and conventions ("physics.md §n" in summaries and docstrings) ship with the package:
``activescore.physics_reference()`` is the path of physics.md, ``python -m activescore physics`` prints it."""

import os as _os

from ._version import __version__

# libgomp's default wait (spin 300000 iterations, then sleep) makes every per-step barrier of the compiled simulator
# wait a whole scheduler slice when the cores are shared with other work: 20-50x slower runs on 2-core machines.
# A short bounded spin (1000 iterations, a few microseconds, then sleep) degrades as gracefully (as fast
# as OMP_WAIT_POLICY=PASSIVE with two busy processes beside it) and, on idle cores, catches most barriers before
# sleeping: up to 15 % faster than PASSIVE at 4096 particles, close to ACTIVE. Set before the extension loads
# libgomp; a user's own setting (either variable) wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "1000"

from . import exact
from .estimation import EPRResult, Estimate, LearningFreeEPR, estimate, learning_free_epr, local_epr
from .modelfree import ModelFreeEPR, Tracks, estimate_model_free, tracks_from_dataframe, tur_lower_bound
from .observables import drift, drift_divergence, forces
from .reference import physics_reference
from .simulation.simulate import SimulationError, simulate
from .simulation.trajectory import State, Trajectory, load_state, load_trajectory
from .systems import ABP, AOUP, MIPS_DT, MIPS_PARAMETERS, mips, system_from_dict

# Score learning pulls in JAX: loaded on first use, so simulating alone stays light. Sweeps likewise (Dask, pandas).
_LEARNING = ("Score", "ScoreNet", "ScoreNetConfig", "TrainConfig", "train_score")
_SWEEPS = ("SweepResult", "sweep")


def __getattr__(name):
    if name in _LEARNING:
        from . import learning

        return getattr(learning, name)
    if name in _SWEEPS:
        from . import sweeps

        return getattr(sweeps, name)
    raise AttributeError(f"module 'activescore' has no attribute {name!r}")


__all__ = [
    "__version__",
    *_LEARNING,
    *_SWEEPS,
    "EPRResult",
    "Estimate",
    "LearningFreeEPR",
    "estimate",
    "exact",
    "learning_free_epr",
    "local_epr",
    "ModelFreeEPR",
    "Tracks",
    "estimate_model_free",
    "tracks_from_dataframe",
    "tur_lower_bound",
    "ABP",
    "AOUP",
    "MIPS_DT",
    "MIPS_PARAMETERS",
    "SimulationError",
    "State",
    "Trajectory",
    "drift",
    "drift_divergence",
    "forces",
    "load_state",
    "load_trajectory",
    "mips",
    "physics_reference",
    "simulate",
    "system_from_dict",
]
