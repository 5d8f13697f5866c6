"""What limits the learned EPR in the paper's regime: learned/identity on held-out snapshots against γ, the
receptive field, the data volume and the function class.

    python benchmarks/study_paper_regime.py [--n 4096] [--gammas 1e-2 1e-3 1e-4] [--frames 160]
                                            [--orders 1 2 3 4] [--recipe-steps S]

For each γ (AOUP, φ = 0.5, the paper's other parameters, dt = 0.1) it simulates to stationarity (4/γ time units)
and records ``frames`` snapshots 0.1/γ time units apart (at most 200), the last quarter held out. On them it fits the drift-response score
(:mod:`activescore.learning.linear`) of each order m: features M^j b_x up to j = m, so m is the receptive field in
contact hops. The fit is the implicit loss's exact minimiser in that class, so learned/identity is what the class can
capture, free of optimisation error. It also refits the order-3 score on 1/8, 1/4 and 1/2 of the fit frames
(data volume), and with ``--recipe-steps S`` runs ``train_score`` through its defaults for S steps (0: the
defaults' own number) on the same frames: for these systems the network alone, then refitted together with the
order-3 features in closed form (activescore.learning.stacking); both are reported.
Writes benchmarks/results/paper_regime_n<N>.json (and .png: the captured fraction against the order) and prints a Markdown table with the hardware and times.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

import activescore as a
from activescore.learning.linear import fit_linear_score
from common import machine, machine_label, write_json


def stationary_snapshots(n, gamma, n_frames, seed):
    system = a.mips(n, 0.5, gamma=gamma)
    dt = a.MIPS_DT
    burn_in = int(round(4.0 / gamma / dt))
    spacing = int(min(2000, max(200, round(0.1 / gamma / dt))))  # 0.1/γ time units, at most 200
    start = time.perf_counter()
    traj = a.simulate(system, n_frames * spacing, dt, seed=seed, save_every=spacing, burn_in=burn_in, progress=True)
    x, g = np.asarray(traj.x)[1:], np.asarray(traj.g)[1:]  # frame 0 is the end of the burn-in
    return system, x, g, dict(burn_in=burn_in, spacing=spacing, seconds=time.perf_counter() - start)


def held_out_row(score) -> dict:
    v = score.validation
    return dict(
        quadratic=v.ratio("quadratic"),
        divergence=v.ratio("divergence"),
        identity=v["identity"],
        lower_bound=v["lower_bound"],
    )


def fit_row(system, x, g, order, n_held, fit_frames=None) -> dict:
    """Fit on ``fit_frames`` frames before the held-out block (all of them when None); validate on the block."""
    fit_end = len(x) - n_held
    first = 0 if fit_frames is None else fit_end - fit_frames
    frames = np.r_[first:fit_end, fit_end : len(x)]
    holdout = n_held / len(frames)
    start = time.perf_counter()
    score = fit_linear_score(system, (x[frames], g[frames]), order=order, holdout=holdout)
    row = dict(
        order=order,
        fit_frames=fit_end - first,
        particle_samples=(fit_end - first) * system.n_particles,
        seconds=time.perf_counter() - start,
    )
    return {**row, **held_out_row(score)}


def recipe_row(system, x, g, n_held, steps) -> dict:
    """``train_score`` through its defaults (the network alone, then refitted together with the order-3 features in
    closed form: activescore.learning.stacking), ``steps`` steps (0: the defaults' own number). Both the stacked
    score and the network alone are validated on the held-out snapshots."""
    from activescore.learning import TrainConfig, train_score

    start = time.perf_counter()
    train = TrainConfig(n_steps=steps or None, holdout=n_held / len(x))
    score = train_score(system, (x, g), train=train, progress=True)
    alone = score.info["network_validation"]
    return dict(
        steps=score.info["n_steps"],
        seconds=time.perf_counter() - start,
        network=dict(quadratic=alone["ratio"]["quadratic"], divergence=alone["ratio"]["divergence"]),
        stack=score.info["stack"],
        heldout_history=score.info["heldout_history"],
        **held_out_row(score),
    )


def figure(results: dict, path: Path) -> None:
    """Captured fraction against the receptive field (order = contact shells), one line per γ and form."""
    from activescore import plotting

    plt = plotting._pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for colour, point in enumerate(results["points"]):
        orders = [row["order"] for row in point["orders"]]
        for form, style in (("quadratic", "-o"), ("divergence", "--s")):
            values = [row[form][0] for row in point["orders"]]
            errors = [row[form][1] for row in point["orders"]]
            label = f"γ = {point['gamma']:g}, {form}"
            ax.errorbar(orders, values, errors, fmt=style, color=f"C{colour}", capsize=3, label=label)
    ax.set_xlabel("order m (contact shells in the features M^m b_x)")
    ax.set_ylabel("learned EPR / identity (held-out)")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(sorted({row["order"] for point in results["points"] for row in point["orders"]}))
    ax.set_title(f"drift-response score, N = {results['n_particles']}, φ = 0.5")
    ax.legend(fontsize=7)
    plotting.save(fig, path)


def save(results, args) -> Path:
    if args.out is None:
        return write_json(f"paper_regime_n{args.n}", results)
    args.out.write_text(json.dumps(results, indent=1))
    return args.out


def fmt(pair) -> str:
    value, se = pair
    return f"{value:.3f} ± {se:.3f}" if math.isfinite(se) else f"{value:.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--gammas", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4])
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument(
        "--recipe-steps",
        type=int,
        default=None,
        help="also run train_score's default recipe for this many steps (0: the defaults' own number)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="score validation")  # the table reports every ratio

    results = dict(machine=machine(), n_particles=args.n, frames=args.frames, points=[])
    for gamma in args.gammas:
        system, x, g, sim = stationary_snapshots(args.n, gamma, args.frames, args.seed)
        n_held = max(2, len(x) // 4)
        point = dict(gamma=gamma, simulation=sim, orders=[], data_volume=[], recipe=None)
        for order in args.orders:
            point["orders"].append(fit_row(system, x, g, order, n_held))
            print(f"gamma={gamma:g} order={order}: {point['orders'][-1]}", flush=True)
        n_fit = len(x) - n_held
        for fraction in (8, 4, 2):
            if n_fit // fraction >= 2:
                point["data_volume"].append(fit_row(system, x, g, 3, n_held, fit_frames=n_fit // fraction))
        if args.recipe_steps is not None:
            point["recipe"] = recipe_row(system, x, g, n_held, args.recipe_steps)
            print(f"gamma={gamma:g} recipe: {point['recipe']['quadratic']} {point['recipe']['divergence']}", flush=True)
        results["points"].append(point)
        save(results, args)  # after every point: a long run keeps what it measured

    out = save(results, args)
    figure(results, out.with_suffix(".png"))
    label = machine_label(results["machine"])
    print(f"\nN = {args.n}, φ = 0.5, {args.frames} snapshots per γ (last quarter held out); {label}")
    print("| γ | model | fit particle samples | quadratic / identity | divergence / identity | fit time |")
    print("|---|---|---|---|---|---|")
    for point in results["points"]:
        for row in point["orders"] + point["data_volume"]:
            print(
                f"| {point['gamma']:g} | linear, order {row['order']} | {row['particle_samples']} | "
                f"{fmt(row['quadratic'])} | {fmt(row['divergence'])} | {row['seconds']:.0f} s |"
            )
        if point.get("recipe"):
            row = point["recipe"]
            print(
                f"| {point['gamma']:g} | the network alone, {row['steps']} steps | | "
                f"{fmt(row['network']['quadratic'])} | {fmt(row['network']['divergence'])} | |"
            )
            print(
                f"| {point['gamma']:g} | default recipe: that network and the order-3 features, refitted together | "
                f"| {fmt(row['quadratic'])} | {fmt(row['divergence'])} | {row['seconds']:.0f} s |"
            )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
