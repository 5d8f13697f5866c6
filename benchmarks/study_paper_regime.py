"""What limits the learned EPR in the paper's regime: learned/identity on held-out snapshots against γ, the
receptive field, the data volume and the function class.

    python benchmarks/study_paper_regime.py [--n 4096] [--gammas 1e-2 1e-3 1e-4] [--frames 160]
                                            [--orders 1 2 3 4] [--recipe-steps S]
    python benchmarks/study_paper_regime.py --dt-study [--n 1024] [--gammas ...] [--dts 0.1 0.05 0.025]
                                            [--seeds 3] [--frames 64]

For each γ (AOUP, φ = 0.5, the paper's other parameters, dt = 0.1) it simulates to stationarity (4/γ time units)
and records ``frames`` snapshots 0.1/γ time units apart (at most 200), the last quarter held out. On them it fits the drift-response score
(:mod:`activescore.learning.linear`) of each order m: features M^j b_x up to j = m, so m is the receptive field in
contact hops. The fit is the implicit loss's exact minimiser in that class, so learned/identity is what the class can
capture, free of optimisation error. It also refits the order-3 score on 1/8, 1/4 and 1/2 of the fit frames
(data volume), and with ``--recipe-steps S`` runs ``train_score`` through its defaults for S steps (0: the
defaults' own number) on the same frames: for these systems the network alone, then refitted together with the
order-3 features in closed form (activescore.learning.stacking); both are reported.
Writes benchmarks/results/paper_regime_n<N>.json (and .png: the captured fraction against the order) and prints a Markdown table with the hardware and times.
The table of the documentation page docs/studies/paper_regime.md (marker paper-regime) is drawn from the JSON of
N = 4096 and N = 512 (the network rows); ``--from-json`` redraws it without rerunning anything:

    python benchmarks/study_paper_regime.py --from-json [--study-json results/paper_regime_n4096.json ...]

``--dt-study``: the finite time step's share of the gap (physics.md §5). For each γ and dt (the same physical
burn-in, 4/γ, and spacing, min(200, max(20, 0.1/γ)) time units, for every dt) and seed, the order-3 drift-response
score fitted on the first three quarters of the frames and estimated on the last: learned/identity, the ceiling
(what a perfect score of the chain reaches), learned/ceiling (the score's share) and the corrected EPR / identity;
the dense control φ = 0.9, N = 256, γ = 1e-2 first (its whole gap is the time step's). Means ± standard errors over
seeds; writes benchmarks/results/paper_regime_dt.json, docs/figures/paper_regime_dt.png and the table of
docs/studies/paper_regime.md (marker paper-regime-dt); with ``--from-json`` it redraws both from the JSON.
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
from activescore.samples import ArraySamples
from common import PAPER_REGIME_PAGE, RESULTS, machine, machine_label, update_page, write_json

RESULTS_DT = RESULTS / "paper_regime_dt.json"
#: The runs behind the page's study table, largest N first (the N = 512 run adds the network rows).
STUDY_JSON = [RESULTS / "paper_regime_n4096.json", RESULTS / "paper_regime_n512.json"]
FIGURE_DT = Path(__file__).resolve().parent.parent / "docs" / "figures" / "paper_regime_dt.png"


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
    """The held-out numbers of a score's validation block, with the finite-dt ceiling (learned/ceiling and the
    corrected EPR) where the block has it (ε = 0, the frames' dt known)."""
    v = score.validation
    return dict(
        quadratic=v.ratio("quadratic"),
        divergence=v.ratio("divergence"),
        identity=v["identity"],
        lower_bound=v["lower_bound"],
        finite_dt=v.get("finite_dt"),
    )


def fit_row(system, x, g, order, n_held, fit_frames=None) -> dict:
    """Fit on ``fit_frames`` frames before the held-out block (all of them when None); validate on the block."""
    fit_end = len(x) - n_held
    first = 0 if fit_frames is None else fit_end - fit_frames
    frames = np.r_[first:fit_end, fit_end : len(x)]
    holdout = n_held / len(frames)
    start = time.perf_counter()
    # The snapshots' time step travels with them, so the validation block reports the finite-dt ceiling.
    samples = ArraySamples(x[frames], g[frames], system, dt=a.MIPS_DT)
    score = fit_linear_score(system, samples, order=order, holdout=holdout)
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
    score = train_score(system, ArraySamples(x, g, system, dt=a.MIPS_DT), train=train, progress=True)
    alone = score.info["network_validation"]
    return dict(
        steps=score.info["n_steps"],
        seconds=time.perf_counter() - start,
        network=dict(quadratic=alone["ratio"]["quadratic"], divergence=alone["ratio"]["divergence"]),
        stack=score.info["stack"],
        heldout_history=score.info["heldout_history"],
        **held_out_row(score),
    )


def time_step_row(n, phi, gamma, dt, seed, n_frames, order=3) -> dict:
    """One seed of the dt study (module docstring)."""
    system = a.mips(n, phi, gamma=gamma)
    spacing = int(round(min(200.0, max(20.0, 0.1 / gamma)) / dt))
    start = time.perf_counter()
    traj = a.simulate(
        system,
        n_frames * spacing,
        dt,
        seed=seed,
        save_every=spacing,
        burn_in=int(round(4.0 / gamma / dt)),
        progress=False,
    )
    x, g = np.asarray(traj.x)[1:], np.asarray(traj.g)[1:]
    simulated = time.perf_counter() - start
    n_held = max(2, len(x) // 4)
    score = fit_linear_score(system, (x[:-n_held], g[:-n_held]), order=order, holdout=0.0)
    result = a.estimate(score, (x[-n_held:], g[-n_held:]), system=system, dt=dt, keep_fields=False, bins=1)
    c = result.finite_dt
    forms = ("quadratic", "divergence")
    return dict(
        n=n,
        phi=phi,
        gamma=gamma,
        dt=dt,
        seed=seed,
        identity=list(result.identity.per_particle),
        ceiling=list(c.ceiling),
        ratio={f: list(result.ratio[f]) for f in forms},
        of_ceiling={f: list(c.of_ceiling[f]) for f in forms},
        corrected_ratio={f: list(c.corrected_ratio[f]) for f in forms},
        simulation_seconds=simulated,
        seconds=time.perf_counter() - start,
    )


def over_seeds(rows: list, key: str, form: str | None = None) -> tuple[float, float]:
    """Mean over seeds of a row quantity and its standard error (seed scatter; the single run's own error when
    there is one seed)."""
    values = np.array([(row[key][form] if form else row[key])[0] for row in rows])
    if len(values) < 2:
        return float(values[0]), float((rows[0][key][form] if form else rows[0][key])[1])
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def time_step_study(args) -> int:
    cases = [(256, 0.9, 1e-2)] + [(args.n, 0.5, gamma) for gamma in args.gammas]
    results = dict(machine=machine(), frames=args.frames, seeds=args.seeds, dts=args.dts, rows=[])
    out = RESULTS_DT if args.out is None else args.out
    if args.from_json:  # redraw the table and figure of a finished (or interrupted) run
        results, cases = json.loads(out.read_text()), []
    for n, phi, gamma in cases:
        for dt in args.dts:
            for seed in range(1, args.seeds + 1):
                row = time_step_row(n, phi, gamma, dt, seed, args.frames)
                results["rows"].append(row)
                print(
                    f"N={n} phi={phi} gamma={gamma:g} dt={dt} seed={seed}: learned/identity "
                    f"{fmt(row['ratio']['quadratic'])}, ceiling {fmt(row['ceiling'])}, corrected "
                    f"{fmt(row['corrected_ratio']['quadratic'])} ({row['seconds']:.0f} s)",
                    flush=True,
                )
                out.write_text(json.dumps(results, indent=1))  # a long run keeps what it measured
    time_step_figure(results, FIGURE_DT if args.out is None else out.with_suffix(".png"))
    table = time_step_table(results)
    print(table)
    if args.out is None:
        update_page(PAPER_REGIME_PAGE, "paper-regime-dt", table)
    print(f"wrote {out}")
    return 0


def study_table(runs: list) -> str:
    """The page's table of the study (marker paper-regime) from the results of runs at several N, largest first:
    per γ the drift-response orders and the order-3 fit on 1/8 of the snapshots, then, where a run has them, the
    network alone and its refit together with the order-3 features."""
    fit_frames = runs[0]["points"][0]["orders"][0]["fit_frames"]
    lines = [
        f"| γ | score (fitted on the first {fit_frames} snapshots) | particle samples | quadratic / identity | "
        "divergence / identity | fit time |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        n = run["n_particles"]
        for point in run["points"]:
            samples = point["orders"][0]["particle_samples"]
            rows = [(f"drift-response, order {row['order']}", row) for row in point["orders"]]
            rows += [
                (f"order {row['order']} on 1/{fit_frames // row['fit_frames']} of the snapshots", row)
                for row in point["data_volume"][:1]
            ]
            if point.get("network"):
                rows.append((f"default network, {point['network']['steps']} steps", point["network"]))
            if point.get("stacked"):
                rows.append((f"order {point['stacked']['order']} + that network, refitted together", point["stacked"]))
            for name, row in rows:
                lines.append(
                    f"| {point['gamma']:g} | N = {n}: {name} | {row.get('particle_samples', samples):,} | "
                    f"{fmt(row['quadratic'])} | {fmt(row['divergence'])} | {row['seconds']:.0f} s |"
                )
    identities = []
    for k, run in enumerate(runs):
        values = [f"{point['orders'][0]['identity'][0]:#.3g}" for point in run["points"]]
        if k == 0:
            values = [
                f"{v} ({'γ = ' if j == 0 else ''}1e{round(math.log10(point['gamma']))})"
                for j, (v, point) in enumerate(zip(values, run["points"], strict=True))
            ]
        identities.append(f"N = {run['n_particles']}: " + ", ".join(values))
    seconds = [f"{point['simulation']['seconds']:.0f} s" for point in runs[0]["points"]]
    lines += [
        "",
        f"Measured on {machine_label(runs[0]['machine'])}, shared with other jobs (times are upper bounds). Identity "
        f"per particle on the held-out snapshots: {'; '.join(identities)}. Simulation: "
        f"{', '.join(seconds[:-1])} and {seconds[-1]} at N = {runs[0]['n_particles']}.",
    ]
    return "\n".join(lines)


def time_step_groups(results: dict) -> dict:
    groups: dict = {}
    for row in results["rows"]:
        groups.setdefault((row["n"], row["phi"], row["gamma"]), {}).setdefault(row["dt"], []).append(row)
    return groups


def time_step_table(results: dict) -> str:
    """The dt study's Markdown table: means ± standard errors over seeds."""
    lines = [
        f"{results['seeds']} seeds, {results['frames']} snapshots each (last quarter held out), order-3 "
        f"drift-response score; {machine_label(results['machine'])}",
        "",
        "| N | φ | γ | dt | identity / particle | learned/identity | ceiling | learned/ceiling | corrected/identity |",
        "|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for (n, phi, gamma), by_dt in time_step_groups(results).items():
        for dt, rows in sorted(by_dt.items(), reverse=True):
            cells = [
                over_seeds(rows, "identity"),
                over_seeds(rows, "ratio", "quadratic"),
                over_seeds(rows, "ceiling"),
                over_seeds(rows, "of_ceiling", "quadratic"),
                over_seeds(rows, "corrected_ratio", "quadratic"),
            ]
            text = " | ".join(fmt(c) for c in cells)
            lines.append(f"| {n} | {phi:g} | {gamma:g} | {dt:g} | {text} |")
    lines.append("")
    lines.append("Quadratic form; the divergence form is in the JSON.")
    return "\n".join(lines)


def time_step_figure(results: dict, path: Path) -> None:
    """learned/identity (solid), the ceiling (dashed) and corrected/identity (dotted) against dt, per case."""
    from activescore import plotting

    plt = plotting._pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for colour, ((n, phi, gamma), by_dt) in enumerate(time_step_groups(results).items()):
        dts = sorted(by_dt)
        for key, form, style in (
            ("ratio", "quadratic", "-o"),
            ("ceiling", None, "--"),
            ("corrected_ratio", "quadratic", ":s"),
        ):
            points = [over_seeds(by_dt[dt], key, form) for dt in dts]
            label = f"N={n}, φ={phi:g}, γ={gamma:g}" if key == "ratio" else None
            ax.errorbar(
                dts,
                [p[0] for p in points],
                [p[1] for p in points],
                fmt=style,
                color=f"C{colour}",
                capsize=3,
                label=label,
            )
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xlabel("time step dt")
    ax.set_ylabel("fraction of the identity (held-out)")
    ax.set_title("learned (solid), ceiling (dashed), corrected (dotted)")
    ax.legend(fontsize=7)
    plotting.save(fig, path)


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
    p.add_argument("--dt-study", action="store_true", help="the finite time step's share (module docstring)")
    p.add_argument("--dts", type=float, nargs="+", default=[0.1, 0.05, 0.025])
    p.add_argument("--seeds", type=int, default=3, help="seeds per case of the dt study")
    p.add_argument(
        "--from-json",
        action="store_true",
        help="redraw the page's table (with --dt-study: the dt study's table and figure) from the JSON, run nothing",
    )
    p.add_argument(
        "--study-json", type=Path, nargs="+", default=STUDY_JSON, help="--from-json: the runs, largest N first"
    )
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="score validation")  # the table reports every ratio
    warnings.filterwarnings("ignore", message=".*held-out.*")
    if args.dt_study:
        return time_step_study(args)
    if args.from_json:
        table = study_table([json.loads(path.read_text()) for path in args.study_json])
        print(table)
        if args.study_json == STUDY_JSON:
            update_page(PAPER_REGIME_PAGE, "paper-regime", table)
        return 0

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
    print(
        "| γ | model | fit particle samples | quadratic / identity | divergence / identity | "
        "quadratic / ceiling | fit time |"
    )
    print("|---|---|---|---|---|---|---|")
    for point in results["points"]:
        for row in point["orders"] + point["data_volume"]:
            ceiling = row.get("finite_dt")
            of_ceiling = fmt(ceiling["of_ceiling"]["quadratic"]) if ceiling else "-"
            print(
                f"| {point['gamma']:g} | linear, order {row['order']} | {row['particle_samples']} | "
                f"{fmt(row['quadratic'])} | {fmt(row['divergence'])} | {of_ceiling} | {row['seconds']:.0f} s |"
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
