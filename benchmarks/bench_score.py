"""Score-learning throughput: training and inference particles per second, small and paper-size networks.

    python benchmarks/bench_score.py [--quick]
    python benchmarks/bench_score.py --baseline REV [--rounds 10]
    python benchmarks/bench_score.py --cores [--rounds 10]

Runs unchanged on CPU or GPU (JAX picks the device). Writes benchmarks/results/score_<machine>.json with the
platform, CPU model and JAX devices. Compilation is excluded (one warm-up call); every timing blocks on the
result. Training: one optimiser step on ``batch`` particles (tokens gathered on the device). Inference: a whole
snapshot of N particles through :class:`activescore.learning.Score` (neighbour lists on the host included) and
the jitted network alone.

``--baseline REV`` compares training throughput side by side with the package as it was at git revision REV
(its ``python/activescore`` from ``git archive``, with this checkout's compiled extension): one worker process
per version, each compiling its steps once, asked in turn (A B B A ...) to time the same number of steps on the
same data, so that both see the same machine load; the ratio is taken round by round. Writes
benchmarks/results/score_training_vs_<REV>_<machine>.json and prints a Markdown table.

``--cores`` runs the same comparison between two workers of this checkout, one confined to a single core and one
on all cores: what the other cores add to a training step (benchmarks/results/score_training_cores_<machine>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time

import jax
import jax.numpy as jnp
import numpy as np

import activescore
from activescore.learning import Score, ScoreNet, ScoreNetConfig, count_params, init_params
from activescore.learning.data import gather_tokens, make_snapshots
from activescore.learning.settings import TrainConfig
from activescore.learning.step import device_mesh, init_state, make_train_step


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def random_snapshots(n_particles, n_frames, packing_fraction=0.5, seed=0):
    """Uniform positions at the given packing fraction (R = 1) and unit Gaussian propulsions."""
    box = float(np.sqrt(n_particles * np.pi / packing_fraction))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-box / 2, box / 2, (n_frames, n_particles, 2))
    return box, x, rng.normal(size=x.shape)


def best_time(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up (compilation)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_training(config, loss, batch, box, x, g, repeats):
    train_config = TrainConfig(loss=loss, sigmas=(0.01,), n_steps=10_000, batch_particles=batch)
    snapshots = jax.device_put(make_snapshots(x, g, box, config.k, config.jnp_dtype))
    step = make_train_step(config, train_config, box, device_mesh(None))
    state = [init_state(config, train_config)]

    def run():
        state[0], loss_value = step(state[0], snapshots)
        loss_value.block_until_ready()

    seconds = best_time(run, repeats)
    return {"loss": loss, "batch_particles": batch, "seconds_per_step": seconds, "particles_per_s": batch / seconds}


def bench_inference(config, n_particles, repeats):
    box, x, g = random_snapshots(n_particles, 1, seed=1)
    system = activescore.AOUP(n_particles, box_length=box, v0=0.025, gamma=1e-4, eps=0.1 if config.predict_x else 0.0)
    params = init_params(config, jax.random.PRNGKey(0))
    score = Score(system, config, params)
    n = x.shape[1]
    out = {"n_particles": n}
    out["score_seconds"] = best_time(lambda: score(x[0], g[0]), repeats)
    out["divergence_seconds"] = best_time(lambda: score.divergence(x[0], g[0]), repeats)
    out["score_particles_per_s"] = n / out["score_seconds"]
    out["divergence_particles_per_s"] = n / out["divergence_seconds"]
    # The network alone on device-resident tokens (what a fused EPR pipeline would pay).
    snapshots = jax.device_put(make_snapshots(x[:1], g[:1], box, config.k, config.jnp_dtype))
    apply = jax.jit(
        lambda p, s: ScoreNet(config).apply(
            p, gather_tokens(s, jnp.zeros(n, jnp.int32), jnp.arange(n), box, jnp.zeros(n))
        )
    )
    seconds = best_time(lambda: apply(params, snapshots).block_until_ready(), repeats)
    out["network_only_particles_per_s"] = n / seconds
    return out


# ---- side by side with an earlier revision (--baseline) -------------------------------------------------------

#: Training cases compared side by side: name -> (network, loss). Batch 256, as the package's default.
COMPARED = {
    "small dsm": (ScoreNetConfig.small(), "dsm"),
    "small implicit": (ScoreNetConfig.small(), "implicit"),
    "small_x_head dsm": (ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True), "dsm"),
    "small_x_head implicit": (ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True), "implicit"),
}
COMPARED_BATCH = 256


def worker():
    """Compile every compared step, print ``ready``, then answer ``NAME STEPS`` lines with the wall and CPU
    seconds of STEPS steps (JSON), until end of input."""
    box, x, g = random_snapshots(1024, 4)
    runs = {}
    for name, (config, loss) in COMPARED.items():
        train_config = TrainConfig(loss=loss, sigmas=(0.01,), n_steps=10_000, batch_particles=COMPARED_BATCH)
        snapshots = jax.device_put(make_snapshots(x, g, box, config.k, config.jnp_dtype))
        step = make_train_step(config, train_config, box, device_mesh(None))
        state = [init_state(config, train_config)]

        def run(n, step=step, state=state, snapshots=snapshots):
            for _ in range(n):
                state[0], loss_value = step(state[0], snapshots)
            loss_value.block_until_ready()

        run(2)  # compile and warm up
        runs[name] = run
    print("ready", flush=True)
    for line in iter(input_line, None):
        name, n = line.rsplit(" ", 1)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        runs[name](int(n))
        print(
            json.dumps({"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu}), flush=True
        )


def input_line():
    import sys

    line = sys.stdin.readline()
    return line.strip() or None


def baseline_tree(revision: str, directory: str) -> str:
    """``python/`` of ``revision`` unpacked under ``directory``, with this checkout's compiled extension."""
    import glob
    import shutil
    import subprocess
    import tarfile

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(
        ["git", "-C", repo, "archive", revision, "python/activescore"], check=True, capture_output=True
    ).stdout
    import io

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    package = os.path.dirname(activescore.__file__)
    for extension in glob.glob(os.path.join(package, "_core*.so")):
        shutil.copy(extension, os.path.join(directory, "python", "activescore"))
    return os.path.join(directory, "python")


def start_worker(python_path: str, cpus: set[int] | None = None):
    """A worker process on the package at ``python_path``, confined to the cores ``cpus`` (None: all of them)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": python_path}
    process = subprocess.Popen(
        [os.sys.executable, os.path.abspath(__file__), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        # Pinned before Python starts, so that XLA sizes its thread pool to the cores it may use.
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("a benchmark worker failed to start")
    return process


def ask(process, name: str, steps: int) -> dict:
    process.stdin.write(f"{name} {steps}\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def side_by_side(workers: dict, rounds: int, steps: int) -> dict:
    """Every compared case timed by the two ``workers`` ({"reference": process, "candidate": process}) in turn,
    ``rounds`` rounds of ``steps`` steps each, alternating which goes first; the speed-up of the candidate is taken
    round by round (reference time / candidate time) and summarised by its median."""
    rows = {}
    for name in COMPARED:
        times = {"candidate": [], "reference": []}
        for round_index in range(rounds):
            order = ("candidate", "reference") if round_index % 2 == 0 else ("reference", "candidate")
            for version in order:
                times[version].append(ask(workers[version], name, steps))
        pairs = list(zip(times["candidate"], times["reference"], strict=True))
        wall_ratio = [r["wall"] / c["wall"] for c, r in pairs]
        cpu_ratio = [r["cpu"] / c["cpu"] for c, r in pairs]
        particles = COMPARED_BATCH * steps
        rows[name] = {
            "particles_per_s": {v: particles / float(np.median([t["wall"] for t in times[v]])) for v in times},
            "particles_per_cpu_s": {v: particles / float(np.median([t["cpu"] for t in times[v]])) for v in times},
            "speedup_wall": {"median": float(np.median(wall_ratio)), "min": min(wall_ratio), "max": max(wall_ratio)},
            "speedup_cpu": {"median": float(np.median(cpu_ratio)), "min": min(cpu_ratio), "max": max(cpu_ratio)},
            "rounds": times,
        }
        r = rows[name]
        print(
            f"{name}: {r['particles_per_s']['reference']:.0f} -> {r['particles_per_s']['candidate']:.0f} particles/s, "
            f"speedup {r['speedup_wall']['median']:.2f} (wall, rounds {min(wall_ratio):.2f}-{max(wall_ratio):.2f})"
            f", {r['speedup_cpu']['median']:.2f} (CPU time)",
            flush=True,
        )
    for process in workers.values():
        process.stdin.close()
        process.wait()
    return rows


def write_comparison(results: dict, name: str, out: str | None, reference: str, candidate: str) -> None:
    """The JSON under benchmarks/results (atomically) and the Markdown table of a side-by-side comparison."""
    results.update(
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        jax=jax.__version__,
        backend=jax.default_backend(),
        batch_particles=COMPARED_BATCH,
        load_average_after=os.getloadavg(),
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )
    machine = (
        "cpu"
        if jax.default_backend() == "cpu"
        else "".join(c if c.isalnum() else "_" for c in jax.devices()[0].device_kind.lower())
    )
    path = out or os.path.join(os.path.dirname(__file__), "results", f"{name}_{machine}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)
    print(
        f"\n| case (batch {COMPARED_BATCH}) | {reference}, particles/s | {candidate}, particles/s | "
        "speed-up (wall, median [min, max]) | speed-up (CPU time) |"
    )
    print("|---|---:|---:|---|---:|")
    for case, r in results["cases"].items():
        w = r["speedup_wall"]
        print(
            f"| {case} | {r['particles_per_s']['reference']:.0f} | {r['particles_per_s']['candidate']:.0f} | "
            f"{w['median']:.2f}× [{w['min']:.2f}, {w['max']:.2f}] | {r['speedup_cpu']['median']:.2f}× |"
        )
    print("wrote", path)


def compare_with(revision: str, rounds: int, steps: int, out: str | None):
    """This checkout (candidate) against the package at git revision ``revision`` (reference)."""
    import subprocess
    import tempfile

    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as directory:
        this_tree = os.path.dirname(os.path.dirname(activescore.__file__))
        workers = {
            "candidate": start_worker(this_tree),
            "reference": start_worker(baseline_tree(revision, directory)),
        }
        rows = side_by_side(workers, rounds, steps)
    results = {
        "baseline": commit,
        "head": head.stdout.strip(),
        "command": f"python benchmarks/bench_score.py --baseline {revision} --rounds {rounds} --steps {steps}",
        "steps_per_round": steps,
        "cases": rows,
    }
    write_comparison(results, f"score_training_vs_{commit}", out, commit, results["head"])


def compare_cores(rounds: int, steps: int, out: str | None):
    """This checkout on every core (candidate) against the same on one core (reference): what the other cores
    add to a training step."""
    this_tree = os.path.dirname(os.path.dirname(activescore.__file__))
    cores = sorted(os.sched_getaffinity(0))
    workers = {"candidate": start_worker(this_tree), "reference": start_worker(this_tree, {cores[0]})}
    rows = side_by_side(workers, rounds, steps)
    results = {
        "command": f"python benchmarks/bench_score.py --cores --rounds {rounds} --steps {steps}",
        "cores": {"reference": 1, "candidate": len(cores)},
        "steps_per_round": steps,
        "cases": rows,
    }
    write_comparison(results, "score_training_cores", out, "1 core", f"{len(cores)} cores")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=None, help="output JSON (default benchmarks/results/score_<machine>.json)")
    parser.add_argument("--baseline", default=None, help="git revision to compare training throughput with")
    parser.add_argument("--cores", action="store_true", help="training on all cores against one core, side by side")
    parser.add_argument("--rounds", type=int, default=10, help="--baseline, --cores: alternating rounds per case")
    parser.add_argument("--steps", type=int, default=20, help="--baseline, --cores: training steps timed per round")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.baseline:
        return compare_with(args.baseline, args.rounds, args.steps, args.out)
    if args.cores:
        return compare_cores(args.rounds, args.steps, args.out)
    on_accelerator = jax.default_backend() != "cpu"
    repeats = 3 if args.quick else 10
    cases = {
        # name: (config, training batch, inference N)
        "small": (ScoreNetConfig.small(), 256, 4096),
        "small_x_head": (ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True), 256, 4096),
        "paper": (ScoreNetConfig.paper(), 1024 if on_accelerator else 32, 4096 if on_accelerator else 256),
    }
    results = {
        "machine": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cases": {},
    }
    for name, (config, batch, n_infer) in cases.items():
        box, x, g = random_snapshots(1024, 4)
        entry = {
            "parameters": count_params(init_params(config, jax.random.PRNGKey(0))),
            "k": config.k,
            "width": config.width,
            "depth": config.depth,
            "training": [],
        }
        losses = ("dsm", "implicit") if name != "paper" or on_accelerator else ("dsm",)
        for loss in losses:
            entry["training"].append(bench_training(config, loss, batch, box, x, g, repeats))
            print(name, entry["training"][-1], flush=True)
        entry["inference"] = bench_inference(config, n_infer, repeats)
        print(name, entry["inference"], flush=True)
        results["cases"][name] = entry
    kind = jax.devices()[0].device_kind if on_accelerator else "cpu"
    machine = "".join(c if c.isalnum() else "_" for c in kind.lower())
    path = args.out or os.path.join(os.path.dirname(__file__), "results", f"score_{machine}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print("wrote", path)


if __name__ == "__main__":
    main()
