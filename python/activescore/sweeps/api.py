"""``activescore.sweep``: a grid of state points × seeds run on Dask, gathered into one tidy table and phase
diagrams."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _validate as check
from .._version import __version__
from ..io.files import atomic_file, atomic_write
from . import engine as engines
from .deps import available, require
from .grid import Measures, Point, expand
from .point import KEEP, RUNNING, read_result

TABLE = "sweep.csv"
PARQUET = "sweep.parquet"
HISTOGRAMS = "local_density.csv"


@dataclass
class SweepResult:
    """What :func:`sweep` produced.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per point and seed (every parameter a column; ``status`` "done" or "failed" with the ``error``);
        also in ``out/sweep.csv`` (and ``sweep.parquet`` with pyarrow).
    histograms : pandas.DataFrame
        The local packing-fraction histograms in long form (point_id, seed, swept values, bin_low, bin_high,
        fraction); also in ``out/local_density.csv``.
    axes : list
        The swept keys, in the order given.
    out : Path
        The output folder.
    figures : list
        Paths of the figures written.
    computed, skipped, failed : int
        Points computed in this call, found finished, and failed (all calls).
    engine : str
        How the points ran.
    dashboard : str or None
        The Dask dashboard link (None without bokeh or a cluster).
    seconds : float
        The wall time of the call.
    """

    table: Any
    histograms: Any
    axes: list
    out: Path
    figures: list = field(default_factory=list)
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    engine: str = ""
    dashboard: str | None = None
    seconds: float = 0.0

    def __repr__(self) -> str:
        return (
            f"SweepResult({len(self.table)} rows over {self.axes}, computed {self.computed}, skipped "
            f"{self.skipped}, failed {self.failed}, out={str(self.out)!r})"
        )


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def sweep(
    base,
    over: dict,
    *,
    seeds=1,
    out,
    n_steps: int | None = None,
    dt: float | None = None,
    burn_in: int | None = None,
    save_every: int | None = None,
    score=None,
    keep: str = "final",
    scheduler: str | None = None,
    n_workers: int = 0,
    threads: int = 0,
    cluster: dict | None = None,
    retry_failed: bool = False,
    checkpoint_every: int = 0,
    cluster_cutoff: float | None = None,
    density_radius: float | None = None,
    figures: bool = True,
    progress: bool | None = None,
    quiet: bool = False,
) -> SweepResult:
    """Simulate every point of a grid of parameters × seeds to stationarity and measure it, on Dask.

    Each point runs ``burn_in`` steps, then ``n_steps`` more saving a frame every ``save_every``, and records the
    learning-free EPR (total and per particle, with batch-means errors, and a stationarity check), the largest
    cluster fraction, the local packing-fraction histogram (freud), and optionally the EPR of a trained ``score``
    applied to it (transfer). A rerun with the same ``out`` skips finished points and continues interrupted ones
    from their checkpoints; a failing point is recorded with its error and the others go on.

    Parameters
    ----------
    base
        The common configuration: an :class:`~activescore.AOUP` / :class:`~activescore.ABP`, a resolved
        configuration dict with ``system`` and ``simulation`` sections, or a TOML file (as for the CLI).
    over
        Swept key -> values, e.g. ``{"packing_fraction": [0.3, 0.5], "v0": [0.01, 0.025]}``; keys of the system
        (``phi`` is ``packing_fraction``, ``N`` is ``n_particles``) or the simulation (``dt``, ``n_steps``,
        ``burn_in``...). The grid is every combination.
    seeds
        How many seeds per point (the base seed onwards) or a list of seeds.
    out
        The output folder (points/, sweep.csv, figures).
    n_steps, dt, burn_in, save_every
        Override the base's simulation section.
    score
        A trained score (a file from ``activescore train`` or a score object) whose EPR is estimated on every
        point with ``transfer=True``.
    keep
        "final" (the final state of each point, ``points/<id>/final.gsd``), "frames" (also every measured frame,
        ``frames.gsd``) or "none".
    scheduler, cluster
        None (a local Dask cluster sized to the machine), a scheduler address ``"tcp://host:8786"``,
        ``"jobqueue"`` with ``cluster={"kind": "slurm", "jobs": 4, "cores": 16, "memory": "32GB", ...}``
        (dask-jobqueue), or ``"synchronous"`` (Dask's synchronous scheduler in this process).
    n_workers, threads
        Local cluster size and simulator (OpenMP) threads per point (0: workers × threads = the cores, as many
        workers as points allow).
    retry_failed
        Run failed points again (by default a failed point keeps its recorded error).
    checkpoint_every
        Steps between burn-in checkpoints (0: ``save_every``).
    cluster_cutoff, density_radius
        See :class:`~activescore.sweeps.grid.Measures`.
    figures
        Write the phase-diagram figures.
    progress
        A progress bar (default: on a terminal).
    quiet
        Print nothing (by default the plan, the engine and a summary are printed).

    Returns
    -------
    SweepResult
        The table (pandas) and the paths written.
    """
    require("dask", "activescore sweeps")
    pd = require("pandas", "the sweep table")
    require("freud", "the structure measures of a sweep")
    start_time = time.perf_counter()
    run = dict(n_steps=n_steps, dt=dt, burn_in=burn_in, save_every=save_every)  # over the base's [simulation]
    base, over, n_workers, threads = _check_arguments(base, over, run, keep, checkpoint_every, n_workers, threads)
    measures = Measures(cluster_cutoff=cluster_cutoff, density_radius=density_radius, score=score)
    points, axes, sections = expand(base, over, seeds, measures)
    out = Path(out).resolve()  # workers elsewhere (another cwd, another host on a shared file system) find it
    _write_plan(out, points, axes, sections, keep, measures)
    records, todo = _pending(out, points, retry_failed)
    skipped = len(records)
    _announce(out, points, axes, skipped, len(todo), quiet)
    bar, show = _progress_bar(len(points), records, progress, quiet)
    engine = dict(scheduler=scheduler, n_points=len(todo), n_workers=n_workers, threads=threads, cluster=cluster)
    point_options = dict(keep=keep, checkpoint_every=checkpoint_every)
    engine_text, dashboard = _run_points(todo, out, measures, records, bar, engine, point_options, quiet, show)
    return _gather(pd, out, points, records, axes, figures, quiet, skipped, engine_text, dashboard, start_time)


def _check_arguments(base, over, simulation: dict, keep: str, checkpoint_every: int, n_workers, threads):
    """Check :func:`sweep`'s arguments: (the base as :func:`~activescore.sweeps.grid.expand` takes it, with the
    ``simulation`` keywords given (not None) over its simulation section, the grid, the worker and thread
    counts)."""
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {list(KEEP)}, got {keep!r}")
    overrides = {k: v for k, v in simulation.items() if v is not None}
    over = dict(over)
    if isinstance(base, (str, Path, dict)) or overrides:
        from .grid import base_sections

        sections = base_sections(base)
        sections["simulation"].update(overrides)
        base = sections
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    # Counts as everywhere (simulation.n_threads, the CLI's --threads/--workers): 0 is automatic, negatives refused.
    n_workers = check.integer("n_workers", n_workers, low=0)
    threads = check.integer("threads", threads, low=0)
    return base, over, n_workers, threads


def _announce(out: Path, points, axes, skipped: int, n_todo: int, quiet: bool) -> None:
    """The sweep's first line: the grid, the seeds, the output folder and what is left to run."""
    shape = " x ".join(f"{len(v)} {k}" for k, v in zip(axes, _axis_values(points, axes), strict=True))
    _say(
        f"sweep: {len(points)} points ({shape} x {len({p.seed for p in points})} seeds) -> {out}/; "
        f"{skipped} already finished, {n_todo} to run",
        quiet,
    )


def _progress_bar(n_points: int, records: dict, progress: bool | None, quiet: bool):
    """(the sweep's progress bar, counting the points already finished and failed; whether it shows: by
    default on a terminal unless ``quiet``)."""
    show = progress if progress is not None else (not quiet and _is_terminal())
    failed_before = sum(r["status"] == "failed" for r in records.values())
    return engines.Progress(n_points, len(records) - failed_before, failed_before, show), show


def _write_plan(out: Path, points, axes, sections: dict, keep: str, measures: Measures) -> None:
    """``out/sweep.json``: the grid, the seeds, the base sections and what each point keeps and measures."""
    (out / "points").mkdir(parents=True, exist_ok=True)
    atomic_write(
        out / "sweep.json",
        json.dumps(
            {
                "activescore_version": __version__,
                "over": dict(zip(axes, _axis_values(points, axes), strict=True)),
                "seeds": sorted({p.seed for p in points}),
                "base": sections,
                "keep": keep,
                "measures": measures.identity(),
                "points": [p.point_id for p in points],
            },
            indent=1,
            default=str,
        )
        + "\n",
    )


def _pending(out: Path, points, retry_failed: bool) -> tuple[dict[str, dict], list]:
    """(the records of the points already finished, the points to run): a failed point is run again only with
    ``retry_failed``; the marker of a point a killed run left is removed."""
    records: dict[str, dict] = {}
    todo = []
    for point in points:
        record = read_result(out / "points" / point.point_id)
        if record is not None and not (retry_failed and record["status"] == "failed"):
            records[point.point_id] = {**record, "computed": False}
        else:
            if record is not None:
                (out / "points" / point.point_id / "result.json").unlink()
            # A marker left by a killed run: the point is not running until a worker starts it again.
            (out / "points" / point.point_id / RUNNING).unlink(missing_ok=True)
            todo.append(point)
    return records, todo


def _run_points(todo, out, measures, records, bar, engine_options, point_options, quiet, show):
    """Run the points ``todo`` on a started engine, each record put in ``records`` as it arrives; returns (the
    engine's description, the Dask dashboard link or None), ("", None) with nothing to run."""
    if not todo:
        bar.close()
        return "", None
    with engines.started(**engine_options) as engine:
        _say(f"sweep: {engine.description}", quiet)
        if engine.dashboard:
            _say(f"sweep: Dask dashboard {engine.dashboard}", quiet)
        elif engine.client is not None:
            _say("sweep: no Dask dashboard (pip install bokeh for it)", quiet)

        def on_result(point: Point, record: dict) -> None:
            records[point.point_id] = record
            failed = record["status"] == "failed"
            bar.update(0, new_done=int(not failed), new_failed=int(failed))
            if failed and not quiet and not show:
                print(f"sweep: point {point.point_id} failed: {record['error']}", flush=True)

        try:
            engines.run(engine, todo, out, measures, progress=bar, on_result=on_result, **point_options)
        finally:
            bar.close()
        return engine.description, engine.dashboard


def _gather(pd, out, points, records, axes, figures, quiet, skipped, engine_text, dashboard, start_time):
    """The table, histograms and figures of the points' records, written to ``out``, as a :class:`SweepResult`."""
    table, histograms = _tables(pd, points, records, axes)
    _write_tables(out, table, histograms)
    written = [out / TABLE] + ([out / PARQUET] if available("pyarrow") else []) + [out / HISTOGRAMS]
    figure_paths = []
    if figures and (table["status"] == "done").any():
        from . import figures as figs

        figure_paths = figs.phase_diagrams(table, histograms, axes, out)
    computed = sum(r.get("computed", False) for r in records.values())
    failed = int((table["status"] == "failed").sum())
    result = SweepResult(
        table,
        histograms,
        axes,
        out,
        figure_paths,
        computed,
        skipped,
        failed,
        engine_text,
        dashboard,
        time.perf_counter() - start_time,
    )
    _say(
        f"sweep: {computed} computed, {skipped} skipped, {failed} failed in {result.seconds:.1f} s; wrote "
        + ", ".join(str(p) for p in written + figure_paths),
        quiet,
    )
    for row in table[table["status"] == "failed"].itertuples():
        _say(f"  failed: {row.point_id}: {row.error}", quiet)
    return result


def _is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def _axis_values(points, axes) -> list[list]:
    values = []
    for key in axes:
        seen = []
        for p in points:
            if p.values[key] not in seen:
                seen.append(p.values[key])
        values.append(seen)
    return values


def _tables(pd, points, records, axes):
    rows, hist_rows = [], []
    for point in points:
        record = records.get(point.point_id)
        if record is None:  # cancelled (interrupted before it ran)
            continue
        rows.append(record["row"])
        hist = record.get("density_histogram")
        if hist:
            edges = record["density_edges"]
            for i, fraction in enumerate(hist):
                hist_rows.append(
                    {
                        "point_id": point.point_id,
                        "seed": point.seed,
                        **point.values,
                        "bin_low": edges[i],
                        "bin_high": edges[i + 1],
                        "fraction": fraction,
                    }
                )
    table = pd.DataFrame(rows)
    first = ["point_id", "status", *axes, "seed"]
    table = table[[c for c in first if c in table] + [c for c in table.columns if c not in first]]
    histograms = pd.DataFrame(hist_rows, columns=["point_id", "seed", *axes, "bin_low", "bin_high", "fraction"])
    return table, histograms


def _write_tables(out: Path, table, histograms) -> None:
    atomic_write(out / TABLE, table.to_csv(index=False))
    atomic_write(out / HISTOGRAMS, histograms.to_csv(index=False))
    if available("pyarrow"):
        with atomic_file(out / PARQUET, "wb") as f:
            table.to_parquet(f, index=False)


def load_table(out):
    """The table of a finished sweep folder (Parquet when present, else CSV) as a pandas DataFrame."""
    pd = require("pandas", "the sweep table")
    out = Path(out)
    if (out / PARQUET).exists() and available("pyarrow"):
        return pd.read_parquet(out / PARQUET)
    if not (out / TABLE).exists():
        raise ValueError(f"out: {out} holds no sweep table ({TABLE})")
    return pd.read_csv(out / TABLE)
