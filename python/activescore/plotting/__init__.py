"""Pictures of configurations and fields (matplotlib, saved as PNG by the callers).

Units: lengths in the simulation's unit, which is the particle radius R for the default R = 1 (axes read
"x / R"); time in the simulation's unit (1/γ of the propulsion is ``1/system.gamma`` of them); EPR in k_B per
unit time. Every axis, colour bar and arrow key says what it shows and in which unit; titles describe the system
by its parameters (model, N, φ, v0, γ or D_r, ε), not by a phase.
"""

from .common import (
    PARTICLES_PER_BIN,
    bins_for,
    coarsen_map,
    image_format,
    length_unit,
    plot_configuration,
    save,
    system_title,
)
from .common import (
    _pyplot as _pyplot,  # noqa: PLC0414 (the tests draw through it)
)
from .epr import (
    MIN_PARTICLES_PER_CELL,
    plot_current,
    plot_epr_map,
    plot_epr_overview,
    plot_local_epr,
    plot_radial_profile,
)
from .epr import (
    _round_scale as _round_scale,
)

__all__ = [
    "MIN_PARTICLES_PER_CELL",
    "PARTICLES_PER_BIN",
    "bins_for",
    "coarsen_map",
    "image_format",
    "length_unit",
    "plot_configuration",
    "plot_current",
    "plot_epr_map",
    "plot_epr_overview",
    "plot_local_epr",
    "plot_radial_profile",
    "save",
    "system_title",
]
