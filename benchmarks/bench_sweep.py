"""A sweep's wall time on a local Dask cluster against the same points run one after another, and the per-point
overhead of running points as Dask tasks; optionally the small-N phase diagram shown in the README.

Two grids of the paper's AOUPs (MIPS preset, N particles):

* ``work``: points that each simulate a few seconds. Sequential: the points one after another in this (warm)
  process, each simulator on all cores (the alternative a user has without a cluster), and again on one thread.
  Sweep: the same points as Dask tasks on a local cluster (workers x threads = cores), started and warmed
  beforehand (both timed apart).
  The speed-up is sequential / sweep, also quoted with the cluster's start and warm-up added.
* ``overhead``: points of a few steps, where the work is negligible: sweep wall time x workers / points - the
  sequential time per point = what a Dask task, its result file and the checkpoints cost.

Every point is computed afresh (new output folders); the variants are interleaved over ``--rounds`` rounds and the
medians kept (the cores may be shared with other work). Results: ``benchmarks/results/sweep.json``.

    python benchmarks/bench_sweep.py                     # the timings
    python benchmarks/bench_sweep.py --figure            # + docs/figures/sweep_phase_diagram.png
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activescore as a  # noqa: E402
import common  # noqa: E402
from activescore.sweeps import engine, grid  # noqa: E402
from activescore.sweeps.point import run_point  # noqa: E402

FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "sweep_phase_diagram.png"


def sequential(base, over, seeds, run: dict, folder: Path, threads: int) -> float:
    """Seconds to run every point one after another in this process (the sweep's own point function)."""
    sections = grid.base_sections(base)
    sections["simulation"].update(run)
    points, _, _ = grid.expand(sections, over, seeds, grid.Measures())
    start = time.perf_counter()
    for point in points:
        record = run_point(point, str(folder), grid.Measures(), n_threads=threads)
        assert record["status"] == "done", record.get("error")
    return time.perf_counter() - start


def _warm() -> None:
    """Imports and first calls a worker pays once (the extension, freud, the first simulation)."""
    import freud  # noqa: F401

    a.simulate(a.mips(64, 0.5), 10, a.MIPS_DT, seed=0, progress=False, n_threads=1)


def start_cluster(workers: int):
    """A local Dask cluster of single-task workers, as a sweep starts one: (cluster, client, start seconds, warm-up
    seconds)."""
    import logging

    import distributed

    start = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = distributed.Client(cluster)
    started = time.perf_counter() - start
    client.run(_warm)
    return cluster, client, started, time.perf_counter() - start - started


def on_cluster(address: str, base, over, seeds, run: dict, folder: Path, threads: int) -> float:
    """Seconds of a sweep on the running cluster at ``address`` (points as Dask tasks)."""
    result = a.sweep(
        base, over, seeds=seeds, out=folder, scheduler=address, threads=threads, quiet=True, figures=False, **run
    )
    assert result.failed == 0 and result.computed == len(result.table)
    return result.seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="particles per point")
    parser.add_argument("--steps", type=int, default=30_000, help="steps per point of the work grid")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the medians are kept)")
    parser.add_argument("--figure", action="store_true", help="also run the phase-diagram sweep for the docs")
    args = parser.parse_args(argv)

    cores = engine.cores()
    workers, threads = engine.plan_workers(8, n_cores=cores)
    base = a.mips(args.n, 0.5)
    over = {"phi": [0.3, 0.5, 0.7, 0.8]}
    seeds = 2
    work = dict(n_steps=args.steps, dt=a.MIPS_DT, burn_in=0, save_every=max(1, args.steps // 20))
    tiny = dict(n_steps=20, dt=a.MIPS_DT, burn_in=0, save_every=10)
    out = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    try:
        # Warm this process (imports, the extension, freud) so the sequential runs time the points only.
        sequential(base, {"phi": [0.5]}, 1, tiny, out / "warm", cores)
        tiny_over = {"phi": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9]}
        cluster, client, start_seconds, warm_seconds = start_cluster(workers)
        rounds: dict[str, list[float]] = {
            "sequential": [],
            "sequential_1": [],
            "sweep": [],
            "seq_tiny": [],
            "sweep_tiny": [],
        }
        try:
            address = cluster.scheduler_address
            # The cores are shared with other work: interleave the variants over rounds and keep the medians.
            for r in range(args.rounds):
                rounds["sequential"].append(sequential(base, over, seeds, work, out / f"seq{r}", cores))
                rounds["sequential_1"].append(sequential(base, over, seeds, work, out / f"seq1_{r}", 1))
                rounds["sweep"].append(on_cluster(address, base, over, seeds, work, out / f"sweep{r}", threads))
                rounds["seq_tiny"].append(sequential(base, tiny_over, 2, tiny, out / f"seqt{r}", cores))
                rounds["sweep_tiny"].append(on_cluster(address, base, tiny_over, 2, tiny, out / f"sweept{r}", threads))
        finally:
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    median = {key: statistics.median(values) for key, values in rounds.items()}
    seq_work, seq_work_1, sweep_work = median["sequential"], median["sequential_1"], median["sweep"]
    seq_tiny, sweep_tiny = median["seq_tiny"], median["sweep_tiny"]
    n_work, n_tiny = 4 * seeds, 16
    start_work = start_seconds + warm_seconds
    overhead = sweep_tiny * workers / n_tiny - seq_tiny / n_tiny
    payload = {
        "machine": common.machine(),
        "workers": workers,
        "threads_per_point": threads,
        "n_particles": args.n,
        "rounds": {key: [round(v, 3) for v in values] for key, values in rounds.items()},
        "work": {
            "points": n_work,
            "steps_per_point": args.steps,
            "particle_steps": n_work * args.steps * args.n,
            "sequential_seconds": round(seq_work, 3),
            "sequential_1_thread_seconds": round(seq_work_1, 3),
            "sweep_seconds": round(sweep_work, 3),
            "speedup_on_a_running_cluster": round(seq_work / sweep_work, 3),
            "speedup_over_the_faster_sequential": round(min(seq_work, seq_work_1) / sweep_work, 3),
            "speedup_with_cluster_start": round(seq_work / (sweep_work + start_work), 3),
        },
        "cluster": {"start_seconds": round(start_seconds, 3), "worker_warm_up_seconds": round(warm_seconds, 3)},
        "overhead": {
            "points": n_tiny,
            "sequential_seconds": round(seq_tiny, 3),
            "sweep_seconds": round(sweep_tiny, 3),
            "overhead_per_point_seconds": round(overhead, 4),
        },
    }
    print(f"{cores} cores: {workers} workers x {threads} threads per point, N = {args.n}")
    print(f"cluster start {start_seconds:.1f} s, worker warm-up (imports, first simulation) {warm_seconds:.1f} s")
    print(
        f"work grid, {n_work} points of {args.steps} steps: sequential {seq_work:.1f} s (each point on {cores} "
        f"threads; {seq_work_1:.1f} s on 1 thread), sweep {sweep_work:.1f} s on the running cluster: speed-up "
        f"{seq_work / sweep_work:.2f}x ({min(seq_work, seq_work_1) / sweep_work:.2f}x over the faster sequential "
        f"run, {seq_work / (sweep_work + start_work):.2f}x counting the cluster start and warm-up)"
    )
    print(
        f"overhead grid, {n_tiny} points of 20 steps: sequential {seq_tiny:.2f} s, sweep {sweep_tiny:.2f} s: "
        f"{overhead * 1e3:.0f} ms of Dask and bookkeeping per point (per worker)"
    )

    if args.figure:
        figure_out = Path(tempfile.mkdtemp(prefix="bench_sweep_figure_"))
        try:
            result = a.sweep(
                a.mips(args.n),
                {"phi": [0.3, 0.5, 0.7], "v0": [0.0125, 0.025, 0.05]},
                seeds=2,
                out=figure_out,
                n_steps=20_000,
                dt=a.MIPS_DT,
                burn_in=100_000,
                save_every=1000,
                n_workers=workers,
                threads=threads,
                quiet=True,
            )
            FIGURE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(figure_out / "phase_diagram.png", FIGURE)
            summary = a.sweeps.seed_summary(result.table, result.axes)
            payload["figure"] = {
                "points": len(result.table),
                "seconds": round(result.seconds, 1),
                "n_particles": args.n,
                "burn_in": 100_000,
                "n_steps": 20_000,
                "dt": a.MIPS_DT,
                "summary": summary.round(5).to_dict(orient="records"),
            }
            print(summary.to_string(index=False))
            print(f"figure: {FIGURE} ({len(result.table)} points in {result.seconds:.0f} s)")
        finally:
            shutil.rmtree(figure_out, ignore_errors=True)
    previous = common.RESULTS / "sweep.json"
    if not args.figure and previous.exists():  # keep the figure run's record when only the timings were rerun
        import json

        figure = json.loads(previous.read_text()).get("figure")
        if figure is not None:
            payload["figure"] = figure
    print(f"wrote {common.write_json('sweep', payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
