"""Building a snapshot data set: simulate a system into the shards of a data set folder (the format is
:mod:`activescore.io.dataset`), resumably."""

from __future__ import annotations

from dataclasses import dataclass

from .. import _validate as check
from ..io.dataset import ShardSink, SnapshotDataset
from .simulate import simulate_into


@dataclass(frozen=True)
class DatasetPlan:
    """What ``build_dataset`` will do: burn-in steps, then `n_frames` snapshots `spacing` steps apart."""

    n_frames: int
    spacing: int
    burn_in: int
    dt: float
    seed: int
    shard_frames: int = 16

    def __post_init__(self):
        check.integer("n_frames", self.n_frames, low=1)
        check.integer("spacing", self.spacing, low=1)
        check.integer("burn_in", self.burn_in, low=0)
        check.real("dt", self.dt, low=0.0, low_open=True)
        check.integer("seed", self.seed, low=0, high=2**64 - 1)
        check.integer("shard_frames", self.shard_frames, low=1)


def build_dataset(
    system,
    plan: DatasetPlan,
    path,
    *,
    init="uniform",
    backend="auto",
    n_threads=0,
    progress=True,
    overwrite: bool = False,
    log=None,
) -> SnapshotDataset:
    """Simulate ``system`` and write a snapshot data set to the folder ``path``: :func:`simulate_into` a
    :class:`ShardSink`. A folder holding a partial data set built with the same system and plan is resumed (an
    interrupted build continues exactly where it stopped); ``overwrite=True`` starts afresh instead. ``log``
    receives the resume line, if any."""
    simulate_into(
        [ShardSink(path, plan.shard_frames)],
        system,
        (plan.n_frames - 1) * plan.spacing,
        plan.dt,
        seed=plan.seed,
        save_every=plan.spacing,
        burn_in=plan.burn_in,
        init=init,
        backend=backend,
        n_threads=n_threads,
        progress=progress,
        resume=not overwrite,
        overwrite=overwrite,
        desc="data set",
        log=log,
    )
    return SnapshotDataset(path)
