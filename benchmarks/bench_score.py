"""Score-learning throughput: training and inference particles per second, small and paper-size networks.

    python benchmarks/bench_score.py [--quick]
    python benchmarks/bench_score.py --baseline REV [--rounds 10]
    python benchmarks/bench_score.py --cores [--rounds 10]
    python benchmarks/bench_score.py --profile [--loss dsm]

Runs unchanged on CPU or GPU (JAX picks the device). Writes benchmarks/results/score_<machine>.json with the
platform, CPU model and JAX devices. Compilation is excluded (one warm-up call); every timing blocks on the
result. Training: one optimiser step on ``batch`` particles (tokens gathered on the device), as ``train_score``
takes it (in token tiers planned from the data for a network with a cutoff). Inference: a whole
snapshot of N particles through a fresh :class:`activescore.learning.Score` (neighbour lists on the host included) and
the jitted network alone.

``--baseline REV`` compares training throughput side by side with the package as it was at git revision REV
(its ``python/activescore`` from ``git archive``, with this checkout's compiled extension): one worker process
per version, each compiling its steps once, asked in turn (A B B A ...) to time the same number of steps on the
same data, so that both see the same machine load; the ratio is taken round by round. The cases: the small
networks on uniform snapshots, and the network ``default_network`` picks for clustered MIPS snapshots (simulated
first, at γ = 1e-2) with both losses. Writes
benchmarks/results/score_training_vs_<REV>_<machine>.json and prints a Markdown table.

``--cores`` runs the same comparison between two workers of this checkout, one confined to a single core and one
on all cores: what the other cores add to a training step (benchmarks/results/score_training_cores_<machine>.json).

``--profile`` traces the loss and gradients of one training batch of the MIPS default network (plain, at its k
tokens) with ``jax.profiler`` and sums the time of XLA's operations by the network module that emitted them (from
the compiled HLO's metadata), forward (with the linearisation that the gradient keeps) and backward apart; it also
times the same computation with parts of the network removed (ablations). Written to
benchmarks/results/score_profile_<machine>.json: where a training step's time goes.

Each worker compiles its six steps before the first round: about 5 minutes per worker on a 2-core Xeon VM (the
tiered implicit step of the MIPS network is the largest), one worker after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import activescore
from activescore.learning import Score, ScoreNet, ScoreNetConfig, count_params, init_params
from activescore.learning.data import gather_tokens, make_snapshots
from activescore.learning.settings import TrainConfig
from activescore.learning.step import device_mesh, init_state, make_train_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
import side_by_side  # noqa: E402


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
    run = training_step(config, loss, x, g, box, batch=batch)
    seconds = best_time(lambda: run(1), repeats)
    return {"loss": loss, "batch_particles": batch, "seconds_per_step": seconds, "particles_per_s": batch / seconds}


def bench_inference(config, n_particles, repeats):
    box, x, g = random_snapshots(n_particles, 1, seed=1)
    system = activescore.AOUP(n_particles, box_length=box, v0=0.025, gamma=1e-4, eps=0.1 if config.predict_x else 0.0)
    params = init_params(config, jax.random.PRNGKey(0))
    n = x.shape[1]
    out = {"n_particles": n}

    def fresh():
        """A Score with nothing cached (it keeps the last snapshot's neighbours and divergences), in token tiers
        from the first snapshot for a network with a cutoff: the steady state of a long estimate."""
        return Score(system, config, params, token_tiers=True)

    out["score_seconds"] = best_time(lambda: fresh()(x[0], g[0]), repeats)
    out["divergence_seconds"] = best_time(lambda: fresh().divergence(x[0], g[0]), repeats)
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


def bench_inference_tiers(rounds):
    """A snapshot's score and divergence by the MIPS default network (:func:`mips_snapshots`), evaluated plainly
    and in token tiers, in turn on the same frames: seconds per snapshot (medians) and the speed-up, median of
    the rounds' ratios."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        data = mips_snapshots(os.path.join(directory, "mips.npz"))
    config = config_from_json(data["config"])
    system = activescore.AOUP(data["x"].shape[1], box_length=data["box"], gamma=MIPS_GAMMA)
    params = init_params(config, jax.random.PRNGKey(0))
    seconds: dict = {False: [], True: []}
    for round_index in range(rounds + 1):  # round 0 compiles
        for tiers in (False, True) if round_index % 2 else (True, False):
            frame = round_index % len(data["x"])
            x, g = data["x"][frame], data["g"][frame]
            score = Score(system, config, params, token_tiers=tiers)  # fresh: nothing cached from a round before
            start = time.perf_counter()
            score(x, g)
            score.divergence(x, g)
            if round_index:
                seconds[tiers].append(time.perf_counter() - start)
    ratios = np.array(seconds[False]) / np.array(seconds[True])
    return {
        "n_particles": int(data["x"].shape[1]),
        "k": config.k,
        "plain_seconds_per_snapshot": float(np.median(seconds[False])),
        "tiered_seconds_per_snapshot": float(np.median(seconds[True])),
        "speedup": {"median": float(np.median(ratios)), "min": float(ratios.min()), "max": float(ratios.max())},
    }


# ---- side by side with an earlier revision (--baseline) -------------------------------------------------------

#: Training cases compared side by side: name -> (network, loss), on uniform snapshots (1024 particles, φ = 0.5).
#: Batch 256, as the package's default.
COMPARED = {
    "small dsm": (ScoreNetConfig.small(), "dsm"),
    "small implicit": (ScoreNetConfig.small(), "implicit"),
    "small_x_head dsm": (ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True), "dsm"),
    "small_x_head implicit": (ScoreNetConfig.small(predict_x=True, cutoff=2.5, readout_skip=True), "implicit"),
}
#: Cases on clustered MIPS snapshots with the network ``default_network`` picks for them (cutoff, k within reach
#: of the most crowded particle, force inputs): what ``train_score`` trains in the paper's regime. The network
#: is chosen once by this checkout and handed to both versions, so they train the same network.
MIPS_LOSSES = ("dsm", "implicit")
MIPS_PARTICLES, MIPS_GAMMA, MIPS_FRAMES = 2048, 1e-2, 4
COMPARED_BATCH = 256


def mips_snapshots(path: str) -> dict:
    """MIPS snapshots (AOUP, the paper's parameters at γ = MIPS_GAMMA, N = MIPS_PARTICLES, φ = 0.5) after a burn-in
    of 4/γ from a uniform start, and the default network for them, saved to ``path`` for the workers."""
    from activescore.learning.defaults import default_network

    system = activescore.mips(MIPS_PARTICLES, 0.5, gamma=MIPS_GAMMA)
    spacing = 100
    trajectory = activescore.simulate(
        system, MIPS_FRAMES * spacing, 0.1, seed=3, save_every=spacing, burn_in=int(4 / MIPS_GAMMA / 0.1)
    )
    config = default_network(system, trajectory.x)
    data = {"x": trajectory.x, "g": trajectory.g, "box": float(system.box_length), "config": config.to_json()}
    np.savez(path, **data)
    return data


def token_plan(config, loss, x, box, batch=COMPARED_BATCH):
    """``(reach, tiers)``: the token reach and tiers ``train_score`` would use for this network on frames ``x``,
    or ``(None, None)`` where it trains plainly or this version of the package has no token tiers."""
    try:  # absent from earlier versions
        from activescore.learning.tiers import training_tiers
    except ImportError:
        return None, None
    return training_tiers(config, loss, (0.01,), x, box, batch, config.k)


def training_step(config, loss, x, g, box, system=None, batch=COMPARED_BATCH):
    """``run(n)``: n steps of the compiled training step of this version of the package, as ``train_score`` runs
    it (in token tiers where :func:`token_plan` gives them)."""
    train_config = TrainConfig(loss=loss, sigmas=(0.01,), n_steps=10_000, batch_particles=batch)
    reach, tiers = token_plan(config, loss, x, box, batch)
    extra = {} if reach is None else {"reach": reach}
    force_system = system if config.force_input else None
    snapshots = make_snapshots(x, g, box, config.k, config.jnp_dtype, system=force_system, **extra)
    mesh = device_mesh(None)
    step = make_train_step(config, train_config, box, mesh, *(() if tiers is None else (tiers,)))
    snapshots = jax.device_put(snapshots)
    # Replicated, as train_score places it (step.replicated, spelt out: the --baseline workers run this file on
    # earlier versions of the package): otherwise the step compiles a second time.
    state = [jax.device_put(init_state(config, train_config), NamedSharding(mesh, PartitionSpec()))]

    def run(n):
        for _ in range(n):
            state[0], loss_value = step(state[0], snapshots)
        loss_value.block_until_ready()

    return run


def config_from_json(text: str) -> ScoreNetConfig:
    """A network saved by this checkout, for this worker's version of the package: fields it does not know are
    left out (they must be at their defaults, which the earlier version implies)."""
    import dataclasses

    known = {field.name for field in dataclasses.fields(ScoreNetConfig)}
    fields = json.loads(text)
    return ScoreNetConfig(**{name: value for name, value in fields.items() if name in known})


def compared_cases(mips_path: str | None):
    """Every compared case: name -> (config, loss, x, g, box, system)."""
    box, x, g = random_snapshots(1024, 4)
    cases = {name: (config, loss, x, g, box, None) for name, (config, loss) in COMPARED.items()}
    if mips_path:
        data = np.load(mips_path)
        config, box = config_from_json(str(data["config"])), float(data["box"])
        system = activescore.AOUP(data["x"].shape[1], box_length=box, gamma=MIPS_GAMMA)
        for loss in MIPS_LOSSES:
            cases[f"mips default network {loss}"] = (config, loss, data["x"], data["g"], box, system)
    return cases


def worker():
    """Compile every compared step, print ``ready``, then answer ``NAME STEPS`` lines with the wall and CPU
    seconds of STEPS steps (JSON), until end of input."""
    runs = {}
    for name, (config, loss, x, g, box, system) in compared_cases(os.environ.get(MIPS_DATA_VARIABLE)).items():
        runs[name] = training_step(config, loss, x, g, box, system)
        runs[name](2)  # compile and warm up
    print("ready", flush=True)
    for line in side_by_side.requests():
        name, n = line.rsplit(" ", 1)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        runs[name](int(n))
        print(
            json.dumps({"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu}), flush=True
        )


#: The environment variable that hands the MIPS snapshots to the workers.
MIPS_DATA_VARIABLE = "ACTIVESCORE_BENCH_MIPS"


def baseline_tree(revision: str, directory: str) -> str:
    """``python/`` of ``revision`` unpacked under ``directory``, with this checkout's compiled extension."""
    import glob
    import shutil

    side_by_side.unpack(revision, directory, ["python/activescore"])
    package = os.path.dirname(activescore.__file__)
    for extension in glob.glob(os.path.join(package, "_core*.so")):
        shutil.copy(extension, os.path.join(directory, "python", "activescore"))
    return os.path.join(directory, "python")


def start_worker(python_path: str, cpus: set[int] | None = None):
    return side_by_side.start_worker(__file__, python_path, cpus)


def prepare_cases(directory: str) -> dict:
    """The MIPS snapshots written under ``directory`` and handed to the workers (through the environment), and
    every compared case's network, loss and the token tiers this checkout trains it in (None: the whole batch)."""
    path = os.path.join(directory, "mips.npz")
    mips_snapshots(path)
    os.environ[MIPS_DATA_VARIABLE] = path
    described = {}
    for name, (config, loss, x, _, box, _) in compared_cases(path).items():
        tiers = token_plan(config, loss, x, box)[1]
        described[name] = {"network": config.to_dict(), "loss": loss, "token_tiers": tiers}
    return described


def compare_in_turn(workers: dict, cases: dict, rounds: int, steps: int) -> dict:
    """Every case of ``cases`` (:func:`prepare_cases`) timed by the two ``workers`` in turn
    (:func:`side_by_side.in_turn`), ``rounds`` rounds of ``steps`` steps each."""
    rows = {}
    for name, described in cases.items():
        row = side_by_side.in_turn(workers, f"{name} {steps}", rounds)
        times = row["rounds"]
        particles = COMPARED_BATCH * steps
        rows[name] = {
            **described,
            "particles_per_s": {v: particles / float(np.median([t["wall"] for t in times[v]])) for v in times},
            "particles_per_cpu_s": {v: particles / float(np.median([t["cpu"] for t in times[v]])) for v in times},
            **row,
        }
        r, w = rows[name], row["speedup_wall"]
        print(
            f"{name}: {r['particles_per_s']['reference']:.0f} -> {r['particles_per_s']['candidate']:.0f} particles/s, "
            f"speedup {w['median']:.2f} (wall, rounds {w['min']:.2f}-{w['max']:.2f})"
            f", {row['speedup_cpu']['median']:.2f} (CPU time)",
            flush=True,
        )
    side_by_side.stop(workers)
    return rows


def write_results(results: dict, name: str, out: str | None) -> str:
    """``results`` with the machine's description and load, to benchmarks/results/<name>_<machine>.json
    (atomically); returns the path."""
    results.update(
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        jax=jax.__version__,
        backend=jax.default_backend(),
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
    print("wrote", path)
    return path


def write_comparison(results: dict, name: str, out: str | None, reference: str, candidate: str) -> None:
    """The JSON under benchmarks/results (atomically, by :func:`write_results`) and the Markdown table of a
    side-by-side comparison."""
    results.update(batch_particles=COMPARED_BATCH)
    write_results(results, name, out)
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


def compare_with(revision: str, rounds: int, steps: int, out: str | None):
    """This checkout (candidate) against the package at git revision ``revision`` (reference)."""
    import tempfile

    commit, head = side_by_side.short_revision(revision), side_by_side.short_revision("HEAD")
    with tempfile.TemporaryDirectory() as directory:
        cases = prepare_cases(directory)
        this_tree = os.path.dirname(os.path.dirname(activescore.__file__))
        workers = {
            "candidate": start_worker(this_tree),
            "reference": start_worker(baseline_tree(revision, directory)),
        }
        rows = compare_in_turn(workers, cases, rounds, steps)
    results = {
        "baseline": commit,
        "head": head,
        "command": f"python benchmarks/bench_score.py --baseline {revision} --rounds {rounds} --steps {steps}",
        "steps_per_round": steps,
        "cases": rows,
    }
    write_comparison(results, f"score_training_vs_{commit}", out, commit, results["head"])


def compare_cores(rounds: int, steps: int, out: str | None):
    """This checkout on every core (candidate) against the same on one core (reference): what the other cores
    add to a training step."""
    import tempfile

    this_tree = os.path.dirname(os.path.dirname(activescore.__file__))
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as directory:
        cases = prepare_cases(directory)
        workers = {"candidate": start_worker(this_tree), "reference": start_worker(this_tree, {cores[0]})}
        rows = compare_in_turn(workers, cases, rounds, steps)
    results = {
        "command": f"python benchmarks/bench_score.py --cores --rounds {rounds} --steps {steps}",
        "cores": {"reference": 1, "candidate": len(cores)},
        "steps_per_round": steps,
        "cases": rows,
    }
    write_comparison(results, "score_training_cores", out, "1 core", f"{len(cores)} cores")


def profile_step(loss: str, repeats: int = 10) -> dict:
    """Where the time of a training batch goes (``--profile``, module docstring)."""
    import collections
    import glob
    import gzip
    import re
    import tempfile

    from activescore.learning.step import make_loss

    with tempfile.TemporaryDirectory() as directory:
        data = mips_snapshots(os.path.join(directory, "mips.npz"))
    config = config_from_json(data["config"])
    x, g, box = data["x"], data["g"], float(data["box"])
    system = activescore.AOUP(x.shape[1], box_length=box, gamma=MIPS_GAMMA)
    snapshots = jax.device_put(make_snapshots(x, g, box, config.k, config.jnp_dtype, system=system))
    rng = np.random.default_rng(0)
    batch = COMPARED_BATCH
    frames = jnp.asarray(rng.integers(0, x.shape[0], batch))
    particles = jnp.asarray(rng.integers(0, x.shape[1], batch))
    tokens = gather_tokens(snapshots, frames, particles, box, jnp.full((batch,), np.log(0.01), config.jnp_dtype))
    train_config = TrainConfig(loss=loss, sigmas=(0.01,), n_steps=10_000, batch_particles=batch)
    key = jax.random.PRNGKey(1)

    def timed(net_config) -> dict:
        params = init_params(net_config, jax.random.PRNGKey(0))
        loss_fn = make_loss(net_config, train_config)
        grad = jax.jit(jax.value_and_grad(lambda p, t: loss_fn(p, t, key)))
        forward = jax.jit(lambda p, t: ScoreNet(net_config).apply(p, t))
        return {
            "loss_and_gradients_ms": 1e3 * best_time(lambda: jax.block_until_ready(grad(params, tokens)), repeats),
            "forward_ms": 1e3 * best_time(lambda: forward(params, tokens).block_until_ready(), repeats),
        }

    ablations = {
        "network": config,
        "without the cutoff's key weights": config.replace(cutoff=None),
        "without readout_skip": config.replace(readout_skip=False),
        "one head": config.replace(heads=1),
        "feed-forward width 32": config.replace(ff_width=32),
        "pre-LayerNorm": config.replace(norm="pre"),
        "self-only block alone (depth 1)": config.replace(depth=1),
        "embeddings and readout alone (depth 0)": config.replace(depth=0),
    }
    timings = {name: timed(c) for name, c in ablations.items()}
    for name, row in timings.items():
        print(f"{name}: {row}", flush=True)

    params = init_params(config, jax.random.PRNGKey(0))
    loss_fn = make_loss(config, train_config)
    grad = jax.jit(jax.value_and_grad(lambda p, t: loss_fn(p, t, key)))
    jax.block_until_ready(grad(params, tokens))
    origin = {}  # HLO instruction -> the operation (with its module path) that emitted it
    for line in (grad.lower(params, tokens).compile().as_text() or "").splitlines():
        match = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]*)"', line)
        if match:
            origin[match.group(1)] = match.group(2)
    groups: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory, create_perfetto_trace=True):
            for _ in range(repeats):
                jax.block_until_ready(grad(params, tokens))
        (path,) = glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True)
        with gzip.open(path) as f:
            events = json.load(f)
    for event in events["traceEvents"] if isinstance(events, dict) else events:
        operation = origin.get(event.get("name", "")) if event.get("ph") == "X" else None
        if operation is None:
            continue
        parts = operation.split("/")
        module = next((p for p in parts if p.startswith(("block_", "embed_", "readout_"))), "loss, noise, gathers")
        if module.startswith("block_") and parts.index(module) + 1 < len(parts):
            part = re.sub(r"_\d+$", "", parts[parts.index(module) + 1])
            module += " " + {"Sequential": "feed-forward", "add": "residual add"}.get(part, part)
        groups[(module, "backward" if "transpose(" in operation else "forward")] += event.get("dur", 0)
    total = sum(groups.values())
    shares: dict[str, dict[str, float]] = {}
    for (module, direction), microseconds in groups.most_common():
        shares.setdefault(module, {"share": 0.0})
        shares[module][direction] = microseconds / total
        shares[module]["share"] += microseconds / total
    print(f"\n| part of the network ({loss}, batch {batch}, k = {config.k}) | share | forward | backward |")
    print("|---|---:|---:|---:|")
    for module, row in sorted(shares.items(), key=lambda kv: -kv[1]["share"]):
        print(f"| {module} | {row['share']:.1%} | {row.get('forward', 0):.1%} | {row.get('backward', 0):.1%} |")
    return {
        "loss": loss,
        "batch_particles": batch,
        "network": config.to_dict(),
        "traced_ms_per_batch": total / repeats / 1e3,
        "shares": shares,
        "ablations": timings,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", default=None, help="output JSON (default benchmarks/results/score_<machine>.json)")
    parser.add_argument("--baseline", default=None, help="git revision to compare training throughput with")
    parser.add_argument("--cores", action="store_true", help="training on all cores against one core, side by side")
    parser.add_argument("--rounds", type=int, default=10, help="--baseline, --cores: alternating rounds per case")
    parser.add_argument("--steps", type=int, default=20, help="--baseline, --cores: training steps timed per round")
    parser.add_argument("--profile", action="store_true", help="where a training batch's time goes (module docstring)")
    parser.add_argument("--loss", default="dsm", help="--profile: the loss")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if args.profile:
        results = {
            "profile": profile_step(args.loss),
            "command": f"python benchmarks/bench_score.py --profile --loss {args.loss}",
        }
        write_results(results, f"score_profile_{args.loss}", args.out)
        return None
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
    results["mips_inference_tiers"] = bench_inference_tiers(3 if args.quick else 6)
    print("mips inference", results["mips_inference_tiers"], flush=True)
    kind = jax.devices()[0].device_kind if on_accelerator else "cpu"
    machine = "".join(c if c.isalnum() else "_" for c in kind.lower())
    path = args.out or os.path.join(os.path.dirname(__file__), "results", f"score_{machine}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print("wrote", path)


if __name__ == "__main__":
    main()
