"""Phase diagrams of a sweep: EPR per particle and largest cluster fraction over the swept axes (seed means,
seed spread as error bars), and the local packing-fraction histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import _pyplot, save
from .summary import seed_summary

#: (column, axis label): EPR in k_B per unit time of the simulation (plotting's units), the fraction without one.
_QUANTITIES = (
    ("epr_per_particle", "EPR per particle (identity) [k_B / time]"),
    ("largest_cluster_fraction", "largest cluster fraction"),
    ("transfer_epr_per_particle", "EPR per particle (trained score) [k_B / time]"),
)


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)


def phase_diagrams(table, histograms, axes, out: Path) -> list[Path]:
    """Write ``phase_diagram.png`` (and ``local_density.png``) in ``out``; return the paths."""
    plt = _pyplot()
    summary = seed_summary(table, axes)
    if summary.empty:
        return []
    quantities = [
        (c, label) for c, label in _QUANTITIES if f"{c}_mean" in summary and summary[f"{c}_mean"].notna().any()
    ]
    x_key = axes[0] if axes else None
    line_key = axes[1] if len(axes) > 1 else None
    heat = len(axes) == 2 and _numeric(summary[axes[0]]) and _numeric(summary[axes[1]])
    rows = 2 if heat else 1
    fig, grid = plt.subplots(rows, len(quantities), figsize=(4.6 * len(quantities), 3.8 * rows), squeeze=False)
    for j, (col, label) in enumerate(quantities):
        ax = grid[0, j]
        groups = [(None, summary)] if line_key is None else list(summary.groupby(line_key, sort=False))
        for value, part in groups:
            xs = part[x_key] if x_key else np.zeros(len(part))
            spread = part[f"{col}_seed_std"].fillna(0.0)
            ax.errorbar(
                xs,
                part[f"{col}_mean"],
                yerr=spread,
                marker="o",
                capsize=3,
                label=None
                if value is None
                else f"{line_key} = {value:g}"
                if isinstance(value, float)
                else f"{line_key} = {value}",
            )
        ax.set_xlabel(x_key or "")
        ax.set_ylabel(label)
        if line_key is not None:
            ax.legend(fontsize=8)
        ax.set_title(f"{label}\n(seed mean ± seed std)", fontsize=9)
        if heat:
            ax = grid[1, j]
            pivot = summary.pivot_table(index=axes[1], columns=axes[0], values=f"{col}_mean", sort=True)
            mesh = ax.imshow(pivot.values, origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(len(pivot.columns)), [f"{v:g}" for v in pivot.columns])
            ax.set_yticks(range(len(pivot.index)), [f"{v:g}" for v in pivot.index])
            ax.set_xlabel(axes[0])
            ax.set_ylabel(axes[1])
            fig.colorbar(mesh, ax=ax, label=label)
    if len(axes) > 2:
        fig.suptitle(f"averaged over {', '.join(axes[2:])} and seeds", fontsize=9)
    fig.tight_layout()
    paths = [Path(out) / "phase_diagram.png"]
    save(fig, paths[0])
    if not histograms.empty:
        paths.append(_histograms(plt, histograms, axes, Path(out) / "local_density.png"))
    return paths


def _histograms(plt, histograms, axes, path: Path) -> Path:
    keys = list(axes[:1])
    panels = list(histograms.groupby(list(axes[1:2]), sort=False)) if len(axes) > 1 else [(None, histograms)]
    fig, grid = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (value, part) in zip(grid[0], panels, strict=True):
        curves = (
            part.groupby(keys + ["bin_low", "bin_high"], sort=False)["fraction"].mean().reset_index()
            if keys
            else part.groupby(["bin_low", "bin_high"], sort=False)["fraction"].mean().reset_index()
        )
        for key_value, curve in curves.groupby(keys, sort=False) if keys else [(None, curves)]:
            centres = 0.5 * (curve["bin_low"] + curve["bin_high"])
            width = float((curve["bin_high"] - curve["bin_low"]).iloc[0])
            if isinstance(key_value, tuple):
                key_value = key_value[0]
            ax.step(
                centres,
                curve["fraction"] / width,
                where="mid",
                label=None
                if key_value is None
                else f"{keys[0]} = {key_value:g}"
                if isinstance(key_value, float)
                else f"{keys[0]} = {key_value}",
            )
        ax.set_xlabel("local packing fraction")
        ax.set_ylabel("probability density")
        if value is not None:
            if isinstance(value, tuple):
                value = value[0]
            ax.set_title(f"{axes[1]} = {value:g}" if isinstance(value, float) else f"{axes[1]} = {value}", fontsize=9)
        if keys:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)
    return path
