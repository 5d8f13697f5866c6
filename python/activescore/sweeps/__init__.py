"""Parameter sweeps on Dask: a grid of state points × seeds, each simulated to stationarity and measured
(learning-free EPR, largest cluster fraction, local-density histogram, optionally a trained score's EPR), gathered
into one tidy table and phase-diagram figures. Needs the ``sweep`` extra: ``pip install "activescore[sweep]"``.
"""

from .api import SweepResult, load_table, sweep
from .deps import MissingDependency
from .summary import seed_summary

__all__ = ["MissingDependency", "SweepResult", "load_table", "seed_summary", "sweep"]
