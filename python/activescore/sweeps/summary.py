"""Summaries of a sweep table: the numbers of each point over its seeds."""

from __future__ import annotations


def seed_summary(table, axes):
    """Mean and spread over seeds of the main numbers, one row per point (finished rows only)."""
    done = table[table["status"] == "done"]
    cols = [c for c in ("epr_per_particle", "largest_cluster_fraction", "transfer_epr_per_particle") if c in done]
    if not cols or done.empty:
        return done.iloc[0:0]
    grouped = done.groupby(list(axes), sort=False)[cols]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_seed_std"))
    summary["n_seeds"] = grouped.size()
    return summary.reset_index()
