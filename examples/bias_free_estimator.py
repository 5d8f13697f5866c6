"""A learned MIPS EPR that agrees with the learning-free identity: the implicit loss (no σ), the MIPS inputs of the
network, and enough training; beside it the paper's denoising score at σ = 0.01 (README, *The MIPS study*).

    python examples/bias_free_estimator.py          # nearby set γ = 1e-2, N = 512 (about 40 min on 2 cores)

Writes ``<out>/bias_free_estimator.json`` and ``<out>/smoothing_maps.png`` (the local EPR of one held-out snapshot
from both scores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import activescore as a
from activescore import plotting
from activescore.learning import train_score


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bias_free_estimator")
    p.add_argument("--gamma", type=float, default=1e-2)
    p.add_argument("--implicit-steps", type=int, default=12_000)
    p.add_argument("--dsm-steps", type=int, default=3_000)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    system = a.mips(512, 0.5, gamma=args.gamma)
    spacing = int(0.5 / args.gamma / a.MIPS_DT)  # half a persistence time between snapshots
    traj = a.simulate(
        system,
        159 * spacing + 1,
        a.MIPS_DT,
        seed=7,
        init="uniform",
        burn_in=int(20 / args.gamma / a.MIPS_DT),
        save_every=spacing,
    )
    train, test = (traj.x[:-32], traj.g[:-32]), (traj.x[-32:], traj.g[-32:])

    record, local = {}, {}
    for name, loss, steps in (("implicit", "implicit", args.implicit_steps), ("dsm_0.01", "dsm", args.dsm_steps)):
        start = time.perf_counter()
        score = train_score(
            system,
            train,
            None,
            loss=loss,
            sigma=0.01,
            n_steps=steps,
            batch_particles=512,
            checkpoint=out / f"{name}.ckpt",
        )
        train_s = time.perf_counter() - start
        result = a.estimate(score, test, system=system, keep_fields=True)
        print(result)
        record[name] = {
            "steps": steps,
            "train_s": train_s,
            "final_loss": score.info["history"][-1][1],
            **{f"{form}_ratio": result.ratio[form].value for form in ("quadratic", "divergence")},
            **{f"{form}_ratio_err": result.ratio[form].stderr for form in ("quadratic", "divergence")},
            # The implicit loss J = E|s - s*|² - E|s*|² makes γ(-J - d) a lower bound on the EPR.
            "loss_lower_bound_pp": system.gamma * (-score.info["history"][-1][1] - 2) if loss == "implicit" else None,
            "identity_pp": result.identity.per_particle.value,
        }
        local[name] = (result.positions(-1), result.local.quadratic[-1], result.local.quadratic)
        (out / "bias_free_estimator.json").write_text(json.dumps(record, indent=2))

    # How the two local fields compare over all held-out particles: rank correlation, and what the σ = 0.01
    # score gives the particles with the top 5 % of the implicit local EPR against the rest.
    smoothed, exact = local["dsm_0.01"][2].ravel(), local["implicit"][2].ravel()
    top = exact > np.quantile(exact, 0.95)
    record["comparison"] = {
        "rank_correlation": float(np.corrcoef(np.argsort(np.argsort(smoothed)), np.argsort(np.argsort(exact)))[0, 1]),
        "top5_share_of_implicit_total": float(exact[top].sum() / exact.sum()),
        "top5_dsm_over_implicit": float(smoothed[top].mean() / exact[top].mean()),
        "rest_dsm_over_implicit": float(smoothed[~top].mean() / exact[~top].mean()),
    }
    (out / "bias_free_estimator.json").write_text(json.dumps(record, indent=2))

    plt = plotting._pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.3))
    x, values, _ = local["dsm_0.01"]
    plotting.plot_local_epr(
        system, x, values, sigma=0.01, ax=axes[0], title=f"denoising σ = 0.01, {args.dsm_steps} steps"
    )
    x, values, _ = local["implicit"]
    plotting.plot_local_epr(system, x, values, ax=axes[1], title=f"implicit, {args.implicit_steps} steps")
    plotting.save(fig, out / "smoothing_maps.png")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
