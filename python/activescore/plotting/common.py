"""Pictures of configurations and what every figure shares: units and axis labels, titles from the system, the
map-bin rule, saving."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..io.files import atomic_file

#: Particle-snapshots per map cell, on average, that :func:`bins_for` aims at: fewer make maps of noise.
PARTICLES_PER_BIN = 20


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive session chose its backend already
            pass
    import matplotlib.pyplot as plt

    return plt


def bins_for(n_particles: int, n_frames: int = 1, *, per_bin: int = PARTICLES_PER_BIN, most: int = 64) -> int:
    """Cells per side of a square map with about ``per_bin`` particle-snapshots per cell on average.

    ``n_particles`` particles in each of ``n_frames`` snapshots spread over bins² cells give N·F/bins² per cell,
    so bins = ⌊√(N F / per_bin)⌋. Example: N = 256 on 8 snapshots gives 10 × 10 cells (20.5 per cell), where a
    fixed 48 × 48 grid would hold under one.

    Parameters
    ----------
    n_particles, n_frames : int
        Particles per snapshot and snapshots binned.
    per_bin : int
        Particle-snapshots wanted per cell, on average.
    most : int
        Largest number of cells per side returned.

    Returns
    -------
    int
        Cells per side, in [1, most].
    """
    n = int(n_particles) * int(n_frames)
    if n < 1 or per_bin < 1:
        raise ValueError(f"need n_particles * n_frames >= 1 and per_bin >= 1, got {n_particles}, {n_frames}, {per_bin}")
    return max(1, min(int(most), math.isqrt(n // int(per_bin))))


def coarsen_map(field_map, per_bin: int = PARTICLES_PER_BIN):
    """The same map on a coarser grid, with about ``per_bin`` particle-snapshots per cell on average.

    Blocks of f × f cells are merged, f the smallest divisor of the cells per side that reaches :func:`bins_for`'s
    grid. Sums, counts and areas add, so every mean, density and integral of the coarse map is that of the
    particles in its larger cells.

    Parameters
    ----------
    field_map : activescore.estimation.SpatialMap
        A map of bins × bins cells (``result.map``).
    per_bin : int
        Particle-snapshots wanted per cell, on average.

    Returns
    -------
    SpatialMap
        A map of (bins/f) × (bins/f) cells; ``field_map`` itself when it is already that coarse.
    """
    bins = len(field_map.edges) - 1
    total = int(np.sum(field_map.count))
    target = bins_for(max(total, 1), 1, per_bin=per_bin, most=bins)
    factor = next(f for f in range(1, bins + 1) if bins % f == 0 and bins // f <= target)
    if factor == 1:
        return field_map
    coarse = bins // factor

    def merge(values):
        return values.reshape(coarse, factor, coarse, factor, *values.shape[2:]).sum(axis=(1, 3))

    return dataclasses.replace(
        field_map,
        measure=merge(field_map.measure),
        count=merge(field_map.count),
        sums={k: merge(v) for k, v in field_map.sums.items()},
        sumsq={k: merge(v) for k, v in field_map.sumsq.items()},
        edges=field_map.edges[::factor],
    )


def length_unit(system) -> str:
    """The unit of the axes: "R" when every radius is 1 (lengths are then in particle radii), else the
    simulation's length unit."""
    radius = np.asarray(system.radius)
    return "R" if np.all(radius == 1.0) else "length unit"


def _axis_labels(ax, system) -> None:
    unit = length_unit(system)
    if unit == "R":
        ax.set_xlabel("x / R")
        ax.set_ylabel("y / R")
    else:
        ax.set_xlabel(f"x [{unit}]")
        ax.set_ylabel(f"y [{unit}]")


def system_title(system, *, t: float | None = None, two_lines: bool = False) -> str:
    """A title describing a system by its parameters, not by a phase.

    Parameters
    ----------
    system : AOUP or ABP
        The model: its name, N, φ, v0, propulsion rate (γ or D_r), persistence length v0/rate and ε are given
        (and the trap stiffness A when there is a trap).
    t : float, optional
        The time of the snapshot shown.
    two_lines : bool
        Model, N and φ on a first line, the rest on a second (for a single panel).

    Returns
    -------
    str
        For example ``"AOUP  N = 256, φ = 0.5, v0 = 0.025, γ = 0.0001, v0/γ = 250, ε = 0"``.
    """
    rate_name = system.propulsion_rate_symbol
    rate = system.propulsion_rate
    parts = [
        f"{system.model.upper()}  N = {system.n_particles}",
        f"φ = {system.packing_fraction:.3g}",
        f"v0 = {system.v0:.3g}",
        f"{rate_name} = {rate:.3g}",
    ]
    if rate > 0 and system.v0 > 0:
        parts.append(f"v0/{rate_name} = {system.v0 / rate:.3g}")
    parts.append(f"ε = {system.eps:.3g}")
    if system.trap > 0:
        parts.append(f"trap A = {system.trap:.3g}")
    if t is not None:
        parts.append(f"t = {t:g}")
    if two_lines:
        return ", ".join(parts[:2]) + "\n" + ", ".join(parts[2:])
    return ", ".join(parts)


def plot_configuration(
    system, x, *, color=None, ax=None, cmap="viridis", label=None, title=None, colorbar=True, arrows=None
):
    """Draw the particles as disks of their true radius in the periodic box, with labelled axes (x / R, y / R).

    ``color``: per-particle values (N,) (e.g. local EPR) mapped through ``cmap`` with a colour bar labelled
    ``label``; default: one colour. ``arrows``: optional (N, 2) vectors (e.g. the propulsion g) drawn from each
    centre, one unit of the vector as one radius. ``title``: default :func:`system_title`.
    Returns the matplotlib Axes.
    """
    from matplotlib.collections import EllipseCollection

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6), dpi=150)
    x = np.asarray(x)
    d = 2.0 * np.asarray(system.radius)
    disks = EllipseCollection(
        d, d, np.zeros_like(d), units="xy", offsets=x, offset_transform=ax.transData, linewidths=0.2, edgecolors="k"
    )
    if color is None:
        disks.set_facecolor("tab:orange")
    else:
        disks.set_array(np.asarray(color, dtype=float))
        disks.set_cmap(cmap)
    ax.add_collection(disks)
    if arrows is not None:
        arrows = np.asarray(arrows)
        ax.quiver(
            x[:, 0],
            x[:, 1],
            arrows[:, 0],
            arrows[:, 1],
            angles="xy",
            scale_units="xy",
            scale=1.0 / np.mean(system.radius),
            width=0.002,
            color="k",
        )
    half = system.box_length / 2
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    _axis_labels(ax, system)
    ax.set_title(system_title(system, two_lines=True) if title is None else title, fontsize="medium")
    if color is not None and colorbar:
        _colorbar(ax, disks, label or "")
    return ax


def image_format(path) -> str:
    """The image format a file name asks for: its suffix (``.png``, ``.pdf``, ``.svg``, ``.jpg``...), PNG when it
    has none.

    Raises
    ------
    ValueError
        For a suffix matplotlib cannot write, naming the file and the formats it can.
    """
    from pathlib import Path

    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(f"{path}: cannot write .{suffix} images (the suffix chooses one of: .{', .'.join(supported)})")
    return suffix


def save(fig_or_ax, path) -> None:
    """Save a figure (or an Axes' figure) atomically, in the format its suffix names (PNG without one)."""
    fmt = image_format(path)
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    with atomic_file(path) as f:
        fig.savefig(f, format=fmt, bbox_inches="tight")
    _pyplot().close(fig)


def _colorbar(ax, mappable, label: str):
    bar = ax.figure.colorbar(mappable, ax=ax, shrink=0.85)
    bar.set_label(label, fontsize="small")
    return bar
