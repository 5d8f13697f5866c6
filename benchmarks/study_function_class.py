"""The score network's function class at equal training time: what a cheaper or richer network captures in the
paper's regime, against the default recipe (issue 29, items 3 and 4).

    python benchmarks/study_function_class.py [--n 1024] [--gammas 1e-2 1e-3] [--frames 96] [--minutes 4]
                                              [--variants recipe one-block ...]

For each γ (AOUP, φ = 0.5, the paper's other parameters, dt = 0.1; the snapshots of study_paper_regime.py, last
quarter held out) every variant of the default network is trained through ``train_score`` (denoising, then refitted
together with the order-3 drift-response features, as the defaults do) for the same wall-clock budget: its steps
are the budget times its training rate, measured first on the same snapshots (``--minutes`` of the recipe's steps;
a variant may also be run at the recipe's number of steps, ``@steps``). Reported on the held-out snapshots: the
network alone and the refitted score, learned/identity and learned/ceiling in both forms, with the steps, the rate
and the seconds. Writes benchmarks/results/function_class_n<N>.json, prints a Markdown table with the hardware and
draws it on docs/studies/paper_regime.md (marker function-class); ``--from-json`` redraws it without rerunning:

    python benchmarks/study_function_class.py --from-json [--n 1024]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import jax

import activescore as a
from activescore.learning import TrainConfig, train_score
from activescore.learning.defaults import default_network, measured_neighbours, neighbour_cutoff
from activescore.samples import ArraySamples
from bench_score import training_step
from common import PAPER_REGIME_PAGE, RESULTS, machine, machine_label, update_page, write_json
from study_paper_regime import fmt, stationary_snapshots

#: name -> (network overrides, budget): "time" trains for the recipe's wall clock, "steps" for its steps.
VARIANTS = {
    "recipe": ({}, "time"),
    "one-block@steps": (dict(depth=1), "steps"),
    "one-block": (dict(depth=1), "time"),
    "lean": (dict(heads=1, ff_width=32), "time"),
    "far": (dict(reach_factor=2.0), "time"),
    "wide": (dict(width=64, embed_hidden=64, ff_width=128, readout_hidden=128), "time"),
}
LABELS = {
    "recipe": "default network (2 blocks of 2 heads, width 32)",
    "one-block@steps": "1 block (self token only: no token mixing), the recipe's steps",
    "one-block": "1 block (self token only: no token mixing)",
    "lean": "2 blocks, 1 head, feed-forward 32",
    "far": "2 blocks, cutoff ×2 (≈ 3 contact shells, more tokens)",
    "wide": "2 blocks, width 64",
}
RATE_STEPS = 30


def variant_network(system, x, overrides: dict):
    """The default network with ``overrides``; ``reach_factor`` scales the token cutoff and measures k for it."""
    overrides = dict(overrides)
    factor = overrides.pop("reach_factor", None)
    if factor is not None:
        cutoff, width = neighbour_cutoff(system)
        cutoff = factor * (cutoff - width) + width
        tokens, _ = measured_neighbours(x, float(system.box_length), cutoff)
        overrides.update(cutoff=cutoff, k=tokens)
    return default_network(system, x, **overrides)


def training_rate(system, config, x, g) -> float:
    """Steps per second of the compiled training step (compilation excluded), as train_score runs it."""
    run = training_step(config, "dsm", x, g, float(system.box_length), system=system)
    run(2)
    start = time.perf_counter()
    run(RATE_STEPS)
    return RATE_STEPS / (time.perf_counter() - start)


def variant_row(system, x, g, n_held, config, steps) -> dict:
    start = time.perf_counter()
    train = TrainConfig(n_steps=steps, holdout=n_held / len(x))
    score = train_score(system, ArraySamples(x, g, system, dt=a.MIPS_DT), network=config, train=train, progress=True)
    seconds = time.perf_counter() - start
    alone, stacked = score.info["network_validation"], score.validation
    ceiling = stacked.get("finite_dt")["ceiling"][0]
    forms = ("quadratic", "divergence")
    return dict(
        steps=steps,
        seconds=seconds,
        network={f: alone["ratio"][f] for f in forms},
        stacked={f: list(stacked.ratio(f)) for f in forms},
        ceiling=ceiling,
        identity=stacked["identity"],
        config=config.to_dict(),
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--gammas", type=float, nargs="+", default=[1e-2, 1e-3])
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--minutes", type=float, default=4.0, help="the recipe's training budget")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--from-json", action="store_true", help="redraw the page's table from the JSON, run nothing")
    p.add_argument("--merge", action="store_true", help="add the rows to the γ points of the existing JSON")
    args = p.parse_args(argv)
    if args.from_json:
        return show(json.loads((RESULTS / f"function_class_n{args.n}.json").read_text()))
    warnings.filterwarnings("ignore", message="score validation")
    warnings.filterwarnings("ignore", message=".*held-out.*")
    results = dict(machine=machine(), n_particles=args.n, frames=args.frames, minutes=args.minutes, points=[])
    earlier = {}
    if args.merge:
        earlier = {
            p["gamma"]: p for p in json.loads((RESULTS / f"function_class_n{args.n}.json").read_text())["points"]
        }
    for gamma in args.gammas:
        system, x, g, sim = stationary_snapshots(args.n, gamma, args.frames, args.seed)
        n_held = max(2, len(x) // 4)
        point = earlier.pop(gamma, None) or dict(gamma=gamma, simulation=sim, rows={})
        named = ["recipe"] + [name for name in args.variants if name != "recipe"]  # the recipe's rate sets the budget
        configs = {name: variant_network(system, x, VARIANTS[name][0]) for name in named}
        rates = {name: training_rate(system, config, x, g) for name, config in configs.items()}
        jax.clear_caches()
        recipe_steps = int(args.minutes * 60 * rates["recipe"])
        for name in args.variants:
            budget = VARIANTS[name][1]
            steps = recipe_steps if budget == "steps" else int(args.minutes * 60 * rates[name])
            row = variant_row(system, x, g, n_held, configs[name], steps)
            row.update(
                rate_steps_per_second=rates[name],
                particles_per_second=rates[name] * TrainConfig().batch_particles,
                budget=budget,
            )
            point["rows"][name] = row
            print(f"gamma={gamma:g} {name}: {row['network']} {row['stacked']} ({steps} steps)", flush=True)
            write_json(
                f"function_class_n{args.n}", {**results, "points": results["points"] + [point, *earlier.values()]}
            )
        results["points"].append(point)
    results["points"] += list(earlier.values())
    results["points"].sort(key=lambda p: -p["gamma"])
    print(f"wrote {write_json(f'function_class_n{args.n}', results)}")
    return show(results)


def show(results: dict) -> int:
    """Print the table and draw it on the paper's-regime page."""
    print(table(results))
    update_page(PAPER_REGIME_PAGE, "function-class", table(results))
    return 0


def table(results: dict) -> str:
    lines = [
        f"N = {results['n_particles']}, φ = 0.5, {results['frames']} snapshots (last quarter held out), "
        f"{results['minutes']:g} min of the recipe's training per row; {machine_label(results['machine'])}",
        "",
        "| γ | network | steps | particles/s | network alone / ceiling (quadratic, divergence) "
        "| refitted with the features / ceiling | training + evaluation |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for point in results["points"]:
        for name, row in point["rows"].items():
            c = row["ceiling"]
            alone = " / ".join(f"{row['network'][f][0] / c:.3f}" for f in ("quadratic", "divergence"))
            stacked = " / ".join(fmt((v / c, s / c)) for v, s in row["stacked"].values())
            lines.append(
                f"| {point['gamma']:g} | {LABELS[name]} | {row['steps']} | {row['particles_per_second']:,.0f} "
                f"| {alone} | {stacked} | {row['seconds'] / 60:.1f} min |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
