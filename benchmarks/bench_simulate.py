"""Simulator throughput in particle-steps per second: every backend side by side in one run.

MIPS preset (v0 = 0.025, γ = 1e-4, ε = 0, β = 7.5, dt = 0.1) at φ = 0.5 in a clustered state (init="cluster":
a dense disk, then a burn-in), so each particle has the neighbour count of a MIPS cluster. Backends are timed in
interleaved rounds and the median is kept, since the machines are shared and noisy: compare ratios within a run.

    python benchmarks/bench_simulate.py                      # CPU: cpp (1 and 2 threads) and numba
    python benchmarks/bench_simulate.py --cuda               # adds CUDA float32/float64 at large N
    python benchmarks/bench_simulate.py --sizes 1024 4096 --seconds 0.5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import activescore as a  # noqa: E402
from activescore import backends  # noqa: E402

CPU_SIZES = (1024, 4096, 16384, 65536)
CUDA_SIZES = (4096, 32768, 262144, 1048576)


def clustered_state(n: int, burn_in: int):
    system = a.mips(n, 0.5)
    traj = a.simulate(system, burn_in, a.MIPS_DT, seed=1, init="cluster", save_every=max(burn_in, 1),
                      backend="cpp" if backends.is_available("cpp") else "auto", progress=False)
    return system, traj.final_state


def time_run(system, state, backend, dtype, n_threads, seconds) -> float:
    """Particle-steps per second of one timed run, sized to last about `seconds`."""
    run = lambda steps: a.simulate(system, steps, a.MIPS_DT, init=state, save_every=steps, backend=backend,  # noqa: E731
                                   dtype=dtype, n_threads=n_threads, progress=False)
    run(2)  # compile / warm up
    steps = 4
    while True:
        start = time.perf_counter()
        run(steps)
        elapsed = time.perf_counter() - start
        if elapsed > 0.2 * seconds or steps > 10**6:
            break
        steps *= 4
    steps = max(1, int(steps * seconds / elapsed))
    start = time.perf_counter()
    run(steps)
    return system.n_particles * steps / (time.perf_counter() - start)


def configurations(use_cuda: bool):
    cpu = []
    if backends.is_available("cpp"):
        cpu += [("cpp", "float64", 1), ("cpp", "float64", 2)]
    if backends.is_available("numba"):
        cpu += [("numba", "float64", 2)]
    cuda = [("cuda", "float32", 0), ("cuda", "float64", 0)] if use_cuda and backends.is_available("cuda") else []
    return cpu, cuda


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(CPU_SIZES))
    parser.add_argument("--cuda", action="store_true", help="also time the CUDA backend (at --cuda-sizes)")
    parser.add_argument("--cuda-sizes", type=int, nargs="+", default=list(CUDA_SIZES))
    parser.add_argument("--cpu-on-cuda-sizes", action="store_true", help="time cpp at the CUDA sizes too")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="target length of one timed run")
    parser.add_argument("--burn-in", type=int, default=1000)
    parser.add_argument("--name", default=None, help="results file name (default: simulate_<host>)")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)

    cpu, cuda = configurations(args.cuda)
    jobs = [(n, c) for n in args.sizes for c in cpu]
    if cuda:
        jobs += [(n, c) for n in args.cuda_sizes for c in cuda]
        if args.cpu_on_cuda_sizes:
            jobs += [(n, ("cpp", "float64", 2)) for n in args.cuda_sizes if n not in args.sizes]
    info = common.machine()
    print(f"machine: {common.machine_label(info)}", flush=True)

    states = {n: clustered_state(n, args.burn_in) for n in sorted({n for n, _ in jobs})}
    samples = {job: [] for job in jobs}
    for r in range(args.rounds):  # interleaved, so slow spells of a shared machine hit every backend alike
        for n, (backend, dtype, threads) in jobs:
            system, state = states[n]
            rate = time_run(system, state, backend, dtype, threads, args.seconds)
            samples[(n, (backend, dtype, threads))].append(rate)
            print(f"round {r}: N={n:>8} {backend:>5} {dtype} threads={threads}: {rate / 1e6:9.2f} M particle-steps/s",
                  flush=True)

    rows = []
    for (n, (backend, dtype, threads)), rates in samples.items():
        rows.append({"n_particles": n, "backend": backend, "dtype": dtype, "threads": threads,
                     "particle_steps_per_s": statistics.median(rates), "rounds": rates,
                     "ns_per_particle_step": 1e9 / statistics.median(rates)})
    by = {(r["n_particles"], r["backend"], r["dtype"], r["threads"]): r["particle_steps_per_s"] for r in rows}
    ratios = {n: by[(n, "cpp", "float64", 2)] / by[(n, "numba", "float64", 2)]
              for n in args.sizes if (n, "cpp", "float64", 2) in by and (n, "numba", "float64", 2) in by}
    payload = {"benchmark": "simulate", "machine": info, "system": "mips(N, 0.5), dt=0.1, init=cluster",
               "burn_in": args.burn_in, "results": rows, "cpp2_over_numba2": ratios}
    name = args.name or f"simulate_{info['host']}"
    path = common.write_json(name, payload)

    table = markdown_table(rows, info, ratios)
    print(table)
    print(f"wrote {path}")
    if not args.no_readme:
        marker = "bench-simulate-gpu" if cuda else "bench-simulate-cpu"
        if common.update_readme(marker, table):
            print(f"updated README table {marker}")


def markdown_table(rows, info, ratios) -> str:
    lines = [f"Machine: {common.machine_label(info)}; {info['date']}.", "",
             "| N | backend | dtype | threads | M particle-steps/s | ns / particle-step |",
             "|---:|---|---|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["backend"] != "cuda", r["n_particles"], r["backend"], r["dtype"], r["threads"])):
        threads = r["threads"] if r["backend"] != "cuda" else "GPU"
        lines.append(f"| {r['n_particles']} | {r['backend']} | {r['dtype']} | {threads} | "
                     f"{r['particle_steps_per_s'] / 1e6:.2f} | {r['ns_per_particle_step']:.1f} |")
    if ratios:
        lines += ["", "cpp (2 threads) / numba (2 threads): " +
                  ", ".join(f"N={n}: {v:.2f}×" for n, v in sorted(ratios.items()))]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
