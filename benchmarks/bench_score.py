"""Score-learning throughput: training and inference particles per second, small and paper-size networks.

    python benchmarks/bench_score.py [--quick]
    python benchmarks/bench_score.py --baseline REV [--rounds 10]

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


def start_worker(python_path: str):
    import subprocess

    env = {**os.environ, "PYTHONPATH": python_path}
    process = subprocess.Popen(
        [os.sys.executable, os.path.abspath(__file__), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return process


def ask(process, name: str, steps: int) -> dict:
    process.stdin.write(f"{name} {steps}\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def compare_with(revision: str, rounds: int, steps: int, out: str | None):
    import subprocess
    import tempfile

    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as directory:
        this_tree = os.path.dirname(os.path.dirname(activescore.__file__))
        workers = {"new": start_worker(this_tree), "old": start_worker(baseline_tree(revision, directory))}
        for process in workers.values():
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a benchmark worker failed to start")
        rows = {}
        for name in COMPARED:
            times = {"new": [], "old": []}
            for round_index in range(rounds):
                order = ("new", "old") if round_index % 2 == 0 else ("old", "new")
                for version in order:
                    times[version].append(ask(workers[version], name, steps))
            wall_ratio = [o["wall"] / n["wall"] for n, o in zip(times["new"], times["old"], strict=True)]
            cpu_ratio = [o["cpu"] / n["cpu"] for n, o in zip(times["new"], times["old"], strict=True)]
            particles = COMPARED_BATCH * steps
            rows[name] = {
                "particles_per_s": {v: particles / float(np.median([t["wall"] for t in times[v]])) for v in times},
                "particles_per_cpu_s": {v: particles / float(np.median([t["cpu"] for t in times[v]])) for v in times},
                "speedup_wall": {
                    "median": float(np.median(wall_ratio)),
                    "min": min(wall_ratio),
                    "max": max(wall_ratio),
                },
                "speedup_cpu": {"median": float(np.median(cpu_ratio)), "min": min(cpu_ratio), "max": max(cpu_ratio)},
                "rounds": times,
            }
            r = rows[name]
            print(
                f"{name}: {r['particles_per_s']['old']:.0f} -> {r['particles_per_s']['new']:.0f} particles/s, "
                f"speedup {r['speedup_wall']['median']:.2f} (wall, rounds {min(wall_ratio):.2f}-{max(wall_ratio):.2f})"
                f", {r['speedup_cpu']['median']:.2f} (CPU time)",
                flush=True,
            )
        for process in workers.values():
            process.stdin.close()
            process.wait()
    load = os.getloadavg()
    results = {
        "baseline": commit,
        "head": head.stdout.strip(),
        "command": f"python benchmarks/bench_score.py --baseline {revision} --rounds {rounds} --steps {steps}",
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "batch_particles": COMPARED_BATCH,
        "steps_per_round": steps,
        "load_average_after": load,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cases": rows,
    }
    machine = (
        "cpu"
        if jax.default_backend() == "cpu"
        else "".join(c if c.isalnum() else "_" for c in jax.devices()[0].device_kind.lower())
    )
    path = out or os.path.join(os.path.dirname(__file__), "results", f"score_training_vs_{commit}_{machine}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)
    print(
        f"\n| case (batch {COMPARED_BATCH}) | {commit}, particles/s | {results['head']}, particles/s | speedup (wall, median [min, max]) | speedup (CPU time) |"
    )
    print("|---|---:|---:|---|---:|")
    for name, r in rows.items():
        w = r["speedup_wall"]
        print(
            f"| {name} | {r['particles_per_s']['old']:.0f} | {r['particles_per_s']['new']:.0f} | "
            f"{w['median']:.2f}× [{w['min']:.2f}, {w['max']:.2f}] | {r['speedup_cpu']['median']:.2f}× |"
        )
    print("wrote", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=None, help="output JSON (default benchmarks/results/score_<machine>.json)")
    parser.add_argument("--baseline", default=None, help="git revision to compare training throughput with")
    parser.add_argument("--rounds", type=int, default=10, help="--baseline: alternating rounds per case")
    parser.add_argument("--steps", type=int, default=20, help="--baseline: training steps timed per round")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.baseline:
        return compare_with(args.baseline, args.rounds, args.steps, args.out)
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
