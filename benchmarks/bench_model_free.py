"""The model-free EPR from trajectories alone against exact values, the model-based identity and the peer,
StochasticForceInference (SFI, ``pip install StochasticForceInference``; its rows are skipped with a message when it
is missing), on the same simulated trajectories, accuracy and time side by side.

Cases (each simulated once at Δt = dt, frames saved every step):

* ``trapped_aoup``: non-interacting trapped AOUPs with ε > 0, exact EPR d v0² γ / (ε (A + γ)) per particle, and the
  correlation of the per-particle fields e_i with the exact ones (the chain's Gaussian score);
* ``free_abp``: free ABPs with ε > 0, exact EPR v0²/ε per particle;
* ``soft_disks``: interacting active soft disks (AOUP, harmonic, ε = 0.1, γ = 1, φ = 0.5, v0 = 0.5), against the
  learning-free identity on the same frames, with the model-free rows at Δt = 2, 5, 10 dt (every lag-th frame)
  showing the frame-spacing bias;
* ``soft_disk_maps`` (``--cases soft_disk_maps``, not in the default run: it trains a score, minutes): the same
  soft disks at ``--maps-n`` (256) particles, the model-based path (a score learned through the defaults of
  ``train_score`` on independent frames, then ``estimate`` with its per-particle fields) against the model-free path
  (the linear solve) on the same 400 consecutive frames: the correlation of the per-particle EPR e_i = v_i·D⁻¹v_i
  over every particle-snapshot (the map of physics.md §8, per-particle maps), and of the velocities v_x, v_g component by component.

activescore's model-free path is :func:`activescore.modelfree.estimate_model_free` with its defaults (D estimated
from the increments). SFI gets the same information: the full state ((x, g) or (x, θ)) as an overdamped process, a
constant diffusion matrix estimated from the increments (``WeakNoise``), a linear basis of the same kind (constants,
the state's linear terms or the heading, pair terms r̂_ij φ_k(r) on compact kernels within the same cutoff, for
AOUPs also in the g-components) and its Frishman–Ronceray entropy production with the 2N_b/τ bias removed
(``Sdot_debiased``). SFI needs fixed neighbour lists: the frames are cut into chunks of ``--chunk`` frames with a
list (cutoff + skin) built at each chunk's start; positions are unwrapped for it.

    python benchmarks/bench_model_free.py                      # N = 1024 (the speed target), a few minutes
    python benchmarks/bench_model_free.py --n 256 --frames 1000 --cases soft_disks
    python benchmarks/bench_model_free.py --cases soft_disk_maps --name model_free_maps_n256   # ~10 min
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import activescore as a  # noqa: E402
import common  # noqa: E402
from activescore.modelfree import estimate_model_free, tracks_from_trajectory  # noqa: E402

DT = 0.005
CASES = ("trapped_aoup", "free_abp", "soft_disks")
#: Not in the default run (it trains a score): the per-particle maps of the model-free and model-based paths.
MAPS = "soft_disk_maps"
LAGS = (1, 2, 5, 10)


def system_for(case: str, n: int):
    if case == "trapped_aoup":
        return a.AOUP(n, box_length=400.0, k=0.0, trap=1.0, eps=0.25, gamma=2.0, v0=3.0)
    if case == "free_abp":
        return a.ABP(n, packing_fraction=0.1, v0=3.0, rotational_diffusion=1.0, eps=0.25, k=0.0)
    return a.AOUP(n, packing_fraction=0.5, eps=0.1, gamma=1.0, v0=0.5, beta=None)


def exact_epr(case: str, system) -> float | None:
    if case == "trapped_aoup":
        return 2 * system.v0**2 * system.gamma / (system.eps * (system.trap + system.gamma))
    if case == "free_abp":
        return system.v0**2 / system.eps
    return None


def chain_value(case: str, system) -> float | None:
    """The model-free estimator's large-data value on the simulated chain at Δt = dt (physics.md §8): the exact
    cases' reference for the finite time step (trapped AOUPs by the chain's discrete Lyapunov covariance, free ABPs
    from the trapezoid's average heading)."""
    if case == "free_abp":
        return exact_epr(case, system) * ((1 + math.exp(-system.rotational_diffusion * DT)) / 2) ** 2
    if case != "trapped_aoup":
        return None
    decay = math.exp(-system.gamma * DT)
    update = np.array([[1 - system.trap * DT, system.v0 * DT], [0.0, decay]])
    noise = np.diag([2 * system.eps * DT, 1 - decay**2])
    cov = np.linalg.solve(np.eye(4) - np.kron(update, update), noise.ravel()).reshape(2, 2)
    step = update - np.eye(2)
    r = 0.5 * (cov @ step.T + update @ cov @ step.T + noise)
    return 2 * sum(r[:, b] @ np.linalg.solve(cov, r[:, b]) / (DT * noise[b, b] / 2) for b in (0, 1))


def unwrap(x: np.ndarray, box_length: float) -> np.ndarray:
    """Positions (F, N, 2) without the periodic jumps: cumulative minimum-image increments."""
    step = np.diff(x, axis=0)
    step -= box_length * np.round(step / box_length)
    return np.concatenate([x[:1], x[:1] + np.cumsum(step, axis=0)])


def sfi_epr(traj, cutoff: float, chunk: int, skin: float) -> dict:
    """SFI's entropy production per particle of the full state (x, g) or (x, θ) (module docstring)."""
    import jax.numpy as jnp
    from SFI.bases.constants import unit_vector_basis
    from SFI.bases.linear import linear_basis
    from SFI.bases.pairs import compact_kernels, heading_vector, pair_direction, scalar_pair_basis
    from SFI.inference.overdamped import OverdampedLangevinInference
    from SFI.statefunc import Basis
    from SFI.trajectory import TrajectoryCollection
    from SFI.utils.neighbors import build_neighbor_csr, pad_neighbor_csr

    system = traj.system
    box = float(system.box_length)
    x = unwrap(traj.x, box)
    if traj.theta is not None:
        state, dim = np.concatenate([x, traj.theta[..., None]], axis=2), 3
        own = heading_vector(dim, 2)
        embeddings = [[0, 1]]
    else:
        state, dim = np.concatenate([x, traj.g], axis=2), 4
        # Every state component in every velocity component (the Cartesian product of the scalar monomials and the
        # unit vectors): v0 g, −γ g, a trap.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            own = linear_basis(dim) * unit_vector_basis(dim)
        embeddings = [[0, 1], [2, 3]]
    radial = scalar_pair_basis(compact_kernels([0, 1, 2], cutoff), dim=dim, box="extras", spatial_dims=slice(0, 2))
    pairs = [
        (
            radial * pair_direction(dim=dim, box="extras", spatial_dims=slice(0, 2), embed_dim=dim, embed_axes=e)
        ).dispatch_pairs_from_extras(indptr_key="indptr", indices_key="indices", return_as="basis")
        for e in embeddings
    ]
    basis = Basis.stack([unit_vector_basis(dim), own, *pairs])
    start = time.perf_counter()
    lists = []
    for s in range(0, len(state) - 1, chunk):
        wrapped = state[s, :, :2] - box * np.floor(state[s, :, :2] / box)
        lists.append((s, *build_neighbor_csr(wrapped, cutoff + skin, np.array([box, box]))))
    width = max(len(ind) for _, _, ind in lists)
    datasets = []
    for s, indptr, indices in lists:
        indptr, indices = pad_neighbor_csr(indptr, indices, width)
        extras = {"box": jnp.array([box, box]), "indptr": jnp.array(indptr), "indices": jnp.array(indices)}
        piece = state[s : min(s + chunk + 1, len(state))]
        datasets.append(TrajectoryCollection.from_arrays(X=piece, dt=traj.dt, extras_global=extras).datasets[0])
    collection = TrajectoryCollection(datasets=datasets, weights=jnp.ones(len(datasets))).with_weights("pool")
    inference = OverdampedLangevinInference(collection)
    inference.compute_diffusion_constant(method="WeakNoise")
    inference.infer_force_linear(basis)
    result = inference.compute_entropy_production()
    seconds = time.perf_counter() - start
    return {
        "epr_per_particle": float(result["Sdot_debiased"]),
        "stderr": float(result["Sdot_error"]),
        "bias_removed": float(result["Sdot_bias"]),
        "n_features": int(result["Nb"]),
        "seconds": seconds,
    }


def run_case(case: str, n: int, n_frames: int, seed: int, with_sfi: bool, chunk: int, threads: int) -> dict:
    system = system_for(case, n)
    burn_in = 10_000 if case == "soft_disks" else 2000
    t0 = time.perf_counter()
    traj = a.simulate(system, n_frames, DT, seed=seed, save_every=1, burn_in=burn_in, n_threads=threads)
    row: dict = {"case": case, "n": n, "frames": n_frames + 1, "dt": DT, "simulate_s": time.perf_counter() - t0}
    exact = exact_epr(case, system)
    if exact is None:
        t0 = time.perf_counter()
        identity = a.learning_free_epr(system, traj, n_threads=threads).per_particle
        row["identity"] = {"value": identity.value, "stderr": identity.stderr, "seconds": time.perf_counter() - t0}
        reference = identity.value
    else:
        row["exact"] = exact
        row["chain_value"] = chain_value(case, system)
        reference = exact
    tracks = tracks_from_trajectory(traj)
    rows = []
    for lag in LAGS if case == "soft_disks" else (1,):
        t0 = time.perf_counter()
        result = estimate_model_free(tracks, lag=lag, n_threads=threads)
        seconds = time.perf_counter() - t0
        est = result.epr_per_particle
        rows.append(
            {
                "lag": lag,
                "dt": result.dt,
                "epr_per_particle": est.value,
                "stderr": est.stderr,
                "ratio": est.value / reference,
                "lambda_dt": result.relaxation_rate * result.dt,
                "split": {b: e.value for b, e in result.split.items()},
                "diffusion": result.diffusion,
                "seconds": seconds,
                "warning": result.warning,
            }
        )
        print(
            f"  {case} N={n} lag {lag}: model-free {est.value:.5g} ± {est.stderr:.2g} "
            f"(ratio {est.value / reference:.4f}, λΔt {result.relaxation_rate * result.dt:.3f}) in {seconds:.1f} s",
            flush=True,
        )
        if lag == 1:
            cutoff = result.cutoff
            if case == "trapped_aoup":
                # The exact per-particle field of the chain (its Gaussian score): model-free against model-based.
                score = a.exact.GaussianScore(system, dt=DT)
                exact_fields = a.estimate(score, (traj.x, traj.g), system=system, keep_fields=True).quadratic
                # Untimed: the fields of all frames exceed the feature cache, so they take a second pass.
                free = estimate_model_free(tracks, keep_fields=True, n_threads=threads).quadratic
                row["field_correlation"] = float(np.corrcoef(free.ravel(), exact_fields[: len(free)].ravel())[0, 1])
                print(f"  per-particle field correlation with the exact one: {row['field_correlation']:.4f}")
    row["model_free"] = rows
    if with_sfi:
        try:
            sfi = sfi_epr(traj, cutoff, chunk, skin=1.0)
        except ImportError as error:
            print(f"  SFI skipped: {error} (pip install StochasticForceInference)", flush=True)
            row["sfi"] = None
        else:
            sfi["ratio"] = sfi["epr_per_particle"] / reference
            row["sfi"] = sfi
            print(
                f"  {case} N={n} SFI: {sfi['epr_per_particle']:.5g} ± {sfi['stderr']:.2g} (ratio {sfi['ratio']:.4f}) "
                f"in {sfi['seconds']:.1f} s",
                flush=True,
            )
    return row


def run_maps(n: int, seed: int, threads: int) -> dict:
    """The per-particle maps of the model-free and model-based paths on the same frames (module docstring)."""
    from activescore.learning import train_score

    system = system_for("soft_disks", n)
    t0 = time.perf_counter()
    train = a.simulate(system, int(250 / DT), DT, seed=seed, save_every=100, burn_in=10_000, n_threads=threads)
    test = a.simulate(system, 400, DT, seed=seed + 1, save_every=1, burn_in=10_000, n_threads=threads)
    row: dict = {"case": MAPS, "n": n, "frames": len(test.x), "dt": DT, "train_frames": len(train.x)}
    row["simulate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    score = train_score(system, train, progress=False)
    row["train_s"] = time.perf_counter() - t0
    based = a.estimate(score, test, keep_fields=True, progress=False)
    t0 = time.perf_counter()
    free = estimate_model_free(tracks_from_trajectory(test), keep_fields=True, n_threads=threads)
    row["model_free_s"] = time.perf_counter() - t0
    p = len(free.quadratic)

    def corr(u, v) -> float:
        return float(np.corrcoef(np.ravel(u), np.ravel(v))[0, 1])

    learned, identity = based.epr_per_particle["quadratic"], based.identity.per_particle
    row.update(
        {
            "model_based": {"value": learned.value, "stderr": learned.stderr},
            "identity": {"value": identity.value, "stderr": identity.stderr},
            "model_free": {"value": free.epr_per_particle.value, "stderr": free.epr_per_particle.stderr},
            "correlation": {
                "e_i": corr(free.quadratic, based.quadratic[:p]),
                "v_x": corr(free.velocity["x"], based.v_x[:p]),
                "v_g": corr(free.velocity["g"], based.v_g[:p]),
            },
        }
    )
    print(f"  {MAPS} N={n}: {row['correlation']} (score trained in {row['train_s']:.0f} s)", flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024, help="particles (default 1024, the speed target)")
    parser.add_argument("--frames", type=int, default=1000, help="frame pairs at Δt = dt (default 1000)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=(*CASES, MAPS))
    parser.add_argument("--maps-n", type=int, default=256, help="particles of soft_disk_maps (default 256)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-sfi", action="store_true", help="leave StochasticForceInference out")
    parser.add_argument("--chunk", type=int, default=20, help="frames per SFI neighbour list (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="threads of the simulator and neighbour search")
    parser.add_argument("--name", default=None, help="results/<name>.json (default model_free_<host>)")
    args = parser.parse_args(argv)
    with_sfi = not args.no_sfi
    if with_sfi:
        try:
            import SFI  # noqa: F401
        except ImportError:
            print(
                "StochasticForceInference is not installed: its rows are skipped (pip install StochasticForceInference)"
            )
            with_sfi = False
    info = common.machine()
    load_start = os.getloadavg()
    print(f"machine: {common.machine_label(info)}", flush=True)
    rows = [
        run_maps(args.maps_n, args.seed, args.threads)
        if c == MAPS
        else run_case(c, args.n, args.frames, args.seed, with_sfi, args.chunk, args.threads)
        for c in args.cases
    ]
    payload = {"machine": info, "n": args.n, "frames": args.frames, "dt": DT, "threads": args.threads, "rows": rows}
    # A shared machine: the load average (1, 5, 15 min) at the start and the end says how loaded the run was.
    payload["load_average"] = {"start": list(load_start), "end": list(os.getloadavg())}
    path = common.write_json(args.name or f"model_free_{info['host']}", payload)
    print(f"wrote {path}")
    print(table(rows))


def table(rows: list) -> str:
    """A Markdown table: per case, the reference, activescore's model-free rows and SFI's, with times."""
    lines = [
        "| case | N | reference | estimator | Δt/dt | EPR per particle | ratio | time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["case"] == MAPS:
            continue
        if "exact" in row:
            ref = f"exact {row['exact']:.4g} (chain at dt: {row['chain_value']:.4g})"
        else:
            ref = f"identity {row['identity']['value']:.4g} ± {row['identity']['stderr']:.2g}"
        for mf in row["model_free"]:
            lines.append(
                f"| {row['case']} | {row['n']} | {ref} | activescore model-free | {mf['lag']} | "
                f"{mf['epr_per_particle']:.4g} ± {mf['stderr']:.2g} | {mf['ratio']:.3f} | {mf['seconds']:.1f} |"
            )
        sfi = row.get("sfi")
        if sfi:
            value = sfi["epr_per_particle"]
            ratio = sfi["ratio"] if math.isfinite(sfi["ratio"]) else float("nan")
            lines.append(
                f"| {row['case']} | {row['n']} | {ref} | SFI 2.0.4 | 1 | {value:.4g} ± {sfi['stderr']:.2g} | "
                f"{ratio:.3f} | {sfi['seconds']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
