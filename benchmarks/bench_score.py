"""Score-learning throughput: training and inference particles per second, small and paper-size networks.

    python benchmarks/bench_score.py [--quick]

Runs unchanged on CPU or GPU (JAX picks the device). Writes benchmarks/results/score_<machine>.json with the
platform, CPU model and JAX devices. Compilation is excluded (one warm-up call); every timing blocks on the
result. Training: one optimiser step on ``batch`` particles (tokens gathered on the device). Inference: a whole
snapshot of N particles through :class:`activescore.learning.Score` (neighbour lists on the host included) and
the jitted network alone.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=None, help="output JSON (default benchmarks/results/score_<machine>.json)")
    args = parser.parse_args()
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
