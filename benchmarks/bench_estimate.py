"""Seconds per snapshot of ``activescore.estimate`` and ``learning_free_epr`` against N (should grow linearly).

Three workloads on the same kind of samples (uniform positions, g ~ N(0, I), φ = 0.5):

* ``estimate/equilibrium``: interacting soft disks (β = 7.5, v0 = 0, ε = 0.1) with the exact equilibrium score
  (s_x = forces/ε, so the score itself costs one force and one divergence evaluation): the estimator with all its
  bookkeeping (both forms, x/g split, identity, 64² map) plus the drift kernels, without a network;
* ``estimate/gaussian``: non-interacting trapped AOUPs with the exact Gaussian score: the estimator's own
  overhead (no pair kernels at all);
* ``identity``: ``learning_free_epr`` on the interacting samples (one force and one divergence evaluation).

A learned score adds the network's cost, which the learning benchmarks measure. The machine is shared: the
kernels run on ``--threads`` threads (default 1), workloads are interleaved over ``--rounds`` and the median kept.

    python benchmarks/bench_estimate.py
    python benchmarks/bench_estimate.py --sizes 1024 4096 --frames 2 --rounds 2
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activescore as a  # noqa: E402
import common  # noqa: E402
from activescore import exact  # noqa: E402
from activescore.estimation import estimate, learning_free_epr  # noqa: E402

SIZES = (1024, 4096, 16384, 65536)


def samples(system, n_frames: int, seed: int, trapped: bool):
    rng = np.random.default_rng(seed)
    n = system.n_particles
    if trapped:
        return exact.gaussian_samples(system, n_frames, seed=rng)
    half = system.box_length / 2
    x = rng.uniform(-half, half, size=(n_frames, n, 2))
    return x, rng.standard_normal((n_frames, n, 2))


def workloads(n: int, n_frames: int, threads: int):
    interacting = a.AOUP(n, packing_fraction=0.5, v0=0.0, eps=0.1, gamma=1.0, k=1.0)
    x, g = samples(interacting, n_frames, 1, trapped=False)
    gaussian = a.AOUP(n, box_length=1000.0, k=0.0, trap=1.0, eps=0.5, gamma=1.0, v0=1.0)
    xg, gg = samples(gaussian, n_frames, 2, trapped=True)
    eq_score = exact.EquilibriumScore(interacting, n_threads=threads)
    ga_score = exact.GaussianScore(gaussian)
    return {
        "estimate/equilibrium": lambda: estimate(
            eq_score, (x, g), system=interacting, progress=False, n_threads=threads
        ),
        "estimate/gaussian": lambda: estimate(ga_score, (xg, gg), system=gaussian, progress=False, n_threads=threads),
        "identity": lambda: learning_free_epr(interacting, (x, g), progress=False, n_threads=threads),
    }


def slope(ns, ts) -> float:
    """Exponent p of t ∝ N^p (least squares in log-log)."""
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--frames", type=int, default=4, help="snapshots per timed call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads of the drift kernels (0: all)")
    parser.add_argument("--name", default=None, help="results file name (default: estimate_<host>)")
    args = parser.parse_args(argv)

    info = common.machine()
    print(f"machine: {common.machine_label(info)}", flush=True)
    jobs = {n: workloads(n, args.frames, args.threads) for n in args.sizes}
    for work in jobs.values():  # warm up (imports, first calls)
        for fn in work.values():
            fn()
    times = {(n, name): [] for n, work in jobs.items() for name in work}
    for r in range(args.rounds):
        for n, work in jobs.items():
            for name, fn in work.items():
                start = time.perf_counter()
                fn()
                per = (time.perf_counter() - start) / args.frames
                times[(n, name)].append(per)
                print(
                    f"round {r}: N={n:>6} {name:<22} {per * 1e3:9.2f} ms/snapshot ({per / n * 1e9:7.1f} ns/particle)",
                    flush=True,
                )

    rows = []
    for (n, name), ts in times.items():
        t = statistics.median(ts)
        rows.append(
            {
                "workload": name,
                "n_particles": n,
                "seconds_per_snapshot": t,
                "rounds": ts,
                "ns_per_particle": t / n * 1e9,
            }
        )
    exponents = {}
    for name in next(iter(jobs.values())):
        pts = sorted((r["n_particles"], r["seconds_per_snapshot"]) for r in rows if r["workload"] == name)
        if len(pts) >= 2:
            exponents[name] = slope([p[0] for p in pts], [p[1] for p in pts])
    payload = {
        "benchmark": "estimate",
        "machine": info,
        "frames_per_call": args.frames,
        "threads": args.threads,
        "samples": "uniform positions at φ = 0.5 (interacting) / exact Gaussian (trapped), g ~ N(0, I)",
        "results": rows,
        "exponent_t_vs_N": exponents,
    }
    path = common.write_json(args.name or f"estimate_{info['host']}", payload)
    print(markdown_table(rows, info, exponents, args.threads))
    print(f"wrote {path}")


def markdown_table(rows, info, exponents, threads) -> str:
    names = sorted({r["workload"] for r in rows})
    sizes = sorted({r["n_particles"] for r in rows})
    by = {(r["workload"], r["n_particles"]): r for r in rows}
    lines = [
        f"Machine: {common.machine_label(info)}, {threads} kernel thread(s); {info['date']}.",
        "",
        "| workload | " + " | ".join(f"N={n}" for n in sizes) + " | exponent |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for name in names:
        cells = [
            f"{by[(name, n)]['seconds_per_snapshot'] * 1e3:.2f} ms ({by[(name, n)]['ns_per_particle']:.0f} ns/p)"
            if (name, n) in by
            else ""
            for n in sizes
        ]
        exp = exponents.get(name, math.nan)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {exp:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
