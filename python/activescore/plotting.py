"""Pictures of configurations and fields (matplotlib, saved as PNG by the callers)."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive session chose its backend already
            pass
    import matplotlib.pyplot as plt

    return plt


def plot_configuration(system, x, *, color=None, ax=None, cmap="viridis", label=None, title=None, colorbar=True,
                       arrows=None):
    """Draw the particles as disks of their true radius in the periodic box.

    ``color``: per-particle values (e.g. local EPR) mapped through ``cmap`` with a colour bar; default: one colour.
    ``arrows``: optional (N, 2) vectors (e.g. the propulsion g) drawn from each centre.
    Returns the matplotlib Axes.
    """
    from matplotlib.collections import EllipseCollection

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6), dpi=150)
    x = np.asarray(x)
    d = 2.0 * np.asarray(system.radius)
    disks = EllipseCollection(d, d, np.zeros_like(d), units="xy", offsets=x, offset_transform=ax.transData,
                              linewidths=0.2, edgecolors="k")
    if color is None:
        disks.set_facecolor("tab:orange")
    else:
        disks.set_array(np.asarray(color, dtype=float))
        disks.set_cmap(cmap)
    ax.add_collection(disks)
    if arrows is not None:
        arrows = np.asarray(arrows)
        ax.quiver(x[:, 0], x[:, 1], arrows[:, 0], arrows[:, 1], angles="xy", scale_units="xy",
                  scale=1.0 / np.mean(system.radius), width=0.002, color="k")
    half = system.box_length / 2
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if color is not None and colorbar:
        ax.figure.colorbar(disks, ax=ax, shrink=0.8, label=label)
    return ax


def save(fig_or_ax, path) -> None:
    """Save a figure (or an Axes' figure) as PNG atomically."""
    import os

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    tmp = f"{path}.partial.png"
    fig.savefig(tmp, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)
