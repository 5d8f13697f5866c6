"""activescore: simulate active matter, learn its score, and measure its probability currents and entropy
production (Boffi & Vanden-Eijnden, PNAS 2024)."""

__version__ = "0.1.0"

from .gsd_io import load_state, load_trajectory
from .simulate import SimulationError, drift, drift_divergence, forces, simulate
from .systems import ABP, AOUP, MIPS_DT, MIPS_PARAMETERS, mips, system_from_dict
from .trajectory import State, Trajectory

__all__ = [
    "ABP", "AOUP", "MIPS_DT", "MIPS_PARAMETERS", "SimulationError", "State", "Trajectory", "drift",
    "drift_divergence", "forces", "load_state", "load_trajectory", "mips", "simulate", "system_from_dict",
]
