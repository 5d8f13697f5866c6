"""The stages behind the command line, one call each: simulate, build a data set, train, estimate.

Each stage takes the run record of its output folder (``run.out``, ``run.done(stage)``, ``run.finish(stage, ...)``)
and the resolved configuration section(s), skips itself when the record says it is done, resumes what an
interrupted run left, prints what it does, and returns the path (or result) the next stage needs. Samples are read
with :func:`activescore.samples.as_samples`, so a stage that reads them takes a GSD trajectory or a data set.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import plotting
from ..config import SimulationConfig, train_config
from ..estimation import estimate as estimate_epr
from ..io.files import atomic_write
from ..io.gsd import GSDSink
from ..samples import Samples, as_samples
from ..simulation.dataset import DatasetPlan
from ..simulation.dataset import build_dataset as write_dataset
from ..simulation.simulate import simulate_into
from ..systems import ParticleSystem


def say(text: str) -> None:
    print(text, flush=True)


def read_samples(data: Path) -> tuple[Samples, ParticleSystem]:
    """The samples at ``data`` (a data set folder or a GSD trajectory) and their system."""
    samples = as_samples(data, name="--data")
    if samples.system is None:  # pragma: no cover (files always carry their system)
        raise ValueError(f"--data: {data} does not say which system it holds")
    return samples, samples.system


def already_done(run, stage: str, path: Path, differs) -> bool:
    """Whether ``stage`` finished with its output ``path`` as this configuration's (``differs()``: how the file on
    disk differs, None when it matches). A differing file is refused; a missing one is redone, saying why."""
    if not run.done(stage):
        return False
    why = differs()
    if why is None:
        say(f"{stage}: already done ({path})")
        return True
    if path.exists():
        raise ValueError(f"--out {run.out}: {why}; remove {path.name} or choose another folder")
    run.redo(stage, why)
    return False


def simulate(run, system, sim: SimulationConfig) -> Path:
    """Simulate to ``trajectory.gsd``, streaming frames; an interrupted run's file is continued."""
    path = run.out / "trajectory.gsd"
    frames = sim.frames
    if already_done(run, "simulate", path, lambda: _trajectory_differs(path, system, frames)):
        return path
    say(
        f"simulate: {system}\n  {sim.burn_in} burn-in + {sim.n_steps} steps of dt={sim.dt} "
        f"({sim.backend} backend, seed {sim.seed}), a frame every {sim.save_every} steps -> {path}"
    )
    start = time.perf_counter()
    try:
        _simulate_to(path, system, sim)
    except ValueError as err:  # the API's remedy (overwrite=True) in the command line's terms
        raise ValueError(
            str(err).replace("choose another file or pass overwrite=True", "remove it or choose another --out")
        ) from None
    run.finish("simulate", time.perf_counter() - start, frames=frames, file=path.name)
    say(f"simulate: wrote {frames} frames to {path}")
    return path


def _simulate_to(path: Path, system, sim: SimulationConfig) -> None:
    """Stream the run of a ``[simulation]`` section to the GSD file ``path``, resuming the frames it holds."""
    simulate_into(
        [GSDSink(path)],
        system,
        sim.n_steps,
        sim.dt,
        **sim.keywords(),
        progress=True,
        resume=True,
        desc="simulate",
        log=lambda text: say(f"  {text}"),
    )


def _trajectory_differs(path: Path, system, frames: int) -> str | None:
    """Why the trajectory a run record calls done is not this configuration's (None when it is)."""
    from ..io.gsd import read_header

    if not path.exists():
        return f"{path.name} is missing"
    try:
        _, held, n_frames = read_header(path)
    except ValueError as err:
        return str(err)
    if held != system:
        return f"{path.name} holds {held!r}, the configuration {system!r}"
    if n_frames != frames:
        return f"{path.name} holds {n_frames} frames, the configuration {frames}"
    return None


def _dataset_differs(path: Path, system, n_frames: int) -> str | None:
    """Why the data set a run record calls done is not this configuration's (None when it is)."""
    from ..io.dataset import SnapshotDataset

    try:
        held = SnapshotDataset(path)
    except (OSError, ValueError) as err:
        return f"{path.name} cannot be opened ({err})"
    if held.system != system:
        return f"{path.name} holds {held.system!r}, the configuration {system!r}"
    if len(held) != n_frames:
        return f"{path.name} holds {len(held)} frames, the configuration {n_frames}"
    return None


def build_dataset(run, system, sim: SimulationConfig, ds: dict) -> Path:
    """Simulate to the data set folder ``dataset/`` (shards of snapshots); an interrupted build is continued."""
    path = run.out / "dataset"
    if already_done(run, "dataset", path, lambda: _dataset_differs(path, system, ds["n_frames"])):
        return path
    plan = DatasetPlan(
        n_frames=ds["n_frames"],
        spacing=ds["spacing"],
        burn_in=ds["burn_in"],
        dt=sim.dt,
        seed=sim.seed,
        shard_frames=ds["shard_frames"],
    )
    steps = plan.burn_in + (plan.n_frames - 1) * plan.spacing
    say(
        f"dataset: {system}\n  burn-in {plan.burn_in} steps, then {plan.n_frames} snapshots {plan.spacing} steps "
        f"apart (dt={plan.dt}, seed {plan.seed}): {steps * system.n_particles:.3g} particle-steps -> {path}"
    )
    start = time.perf_counter()
    write_dataset(
        system,
        plan,
        path,
        init=sim.init,
        backend=sim.backend,
        n_threads=sim.n_threads,
        log=lambda text: say(f"  {text}"),
    )
    run.finish("dataset", time.perf_counter() - start, frames=plan.n_frames)
    return path


def paper_regime(run, system, sim: SimulationConfig, ds: dict, n_frames: int = 32) -> dict:
    """The paper's regime beside a demo: snapshots of ``system`` (the embedded MIPS defaults), the drift-response
    score fitted in closed form (:mod:`activescore.learning.linear`) on the first three quarters, and on the last
    quarter its EPR against the learning-free identity and the finite-dt ceiling (physics.md §5), written to
    ``paper_regime.txt``, with the local EPR of the clustered state in ``paper_regime_epr.png``."""
    from ..learning.linear import fit_linear_score
    from ..simulation.simulate import simulate as run_simulation

    path = run.out / "paper_regime.txt"
    if run.done("paper_regime"):
        say(f"paper regime: already done ({path})")
        return json.loads((run.out / "paper_regime.json").read_text())
    steps = ds["burn_in"] + n_frames * ds["spacing"]
    say(f"paper regime: {system}\n  {steps * system.n_particles:.3g} particle-steps, {n_frames} snapshots")
    start = time.perf_counter()
    traj = run_simulation(
        system,
        n_frames * ds["spacing"],
        sim.dt,
        seed=sim.seed,
        save_every=ds["spacing"],
        burn_in=ds["burn_in"],
        init=sim.init,
        backend=sim.backend,
        n_threads=sim.n_threads,
        progress=True,
    )
    n_held = max(2, n_frames // 4)
    x, g = traj.x[1:], traj.g[1:]  # frame 0 is the end of the burn-in
    score = fit_linear_score(system, (x[:-n_held], g[:-n_held]), holdout=0.0)
    result = estimate_epr(score, (x[-n_held:], g[-n_held:]), system=system, dt=sim.dt, keep_fields=True)
    record = {"system": system.to_dict(), "frames": n_held, **result.to_dict()}
    text = paper_regime_text(result)
    plotting.plot_epr_overview(result, run.out / "paper_regime_epr.png")
    atomic_write(path, text + "\n")
    atomic_write(run.out / "paper_regime.json", json.dumps(record, indent=2, default=float) + "\n")
    files = [path.name, "paper_regime.json", "paper_regime_epr.png"]
    run.finish("paper_regime", time.perf_counter() - start, files=files)
    say(text)
    return record


def plot_configuration(system, x, g, t: float, path: Path) -> None:
    """Draw one configuration, the particles coloured by |g|² and titled with the system and the time ``t``, to
    the image file ``path``."""
    ax = plotting.plot_configuration(
        system,
        x,
        color=g[:, 0] ** 2 + g[:, 1] ** 2,
        label="|g|² (propulsion)",
        title=plotting.system_title(system, t=t, two_lines=True),
    )
    plotting.save(ax, path)


def paper_regime_text(result) -> str:
    """The paper-regime lines of the demo: what the closed-form score captures, of the identity and of the ceiling."""
    system, ident = result.system, result.identity.per_particle
    ratio = result.ratio["divergence"]
    lines = [
        f"paper's regime (MIPS, N = {system.n_particles}, gamma = {system.gamma:g}, eps = 0), "
        f"{result.n_snapshots} held-out snapshots: identity {ident:.4g} per particle;",
        f"  the drift-response score (fitted in closed form) captures {ratio:.3g} of it (divergence form; a lower "
        "bound by construction)",
    ]
    c = result.finite_dt
    if c is not None:
        lines += [
            f"  the time step (dt = {c.dt:g}) allows {c.ceiling:.3g} (the ceiling): the score reaches "
            f"{c.of_ceiling['divergence']:.3g} of what it allows;",
            f"  corrected for the time step: {c.corrected_ratio['divergence']:.3g} of the identity",
        ]
    lines.append(
        "  train_score's default recipe adds a trained network refitted with it, which takes longer than this demo "
        "(docs/studies/paper_regime.md); the local EPR of the clustered state: paper_regime_epr.png"
    )
    return "\n".join(lines)


def checkpoint_step(path: Path) -> int | None:
    """The training step a checkpoint holds (None when it cannot be read: training then reports the file)."""
    from ..learning.checkpoint import read_metadata_and_state

    try:
        return int(read_metadata_and_state(path)[1]["step"])
    except Exception:
        return None


def train(run, data: Path, tr: dict) -> Path:
    """Train a score on the samples at ``data`` (a data set folder or a GSD trajectory) to ``score.msgpack``, or
    with ``network = "linear"`` fit the drift-response score to ``score.json``."""
    path = run.out / ("score.json" if tr["network"] == "linear" else "score.msgpack")
    samples, system = read_samples(data)  # before importing JAX: a bad --data is reported at once
    if run.done("train") and path.exists():
        from ..learning import load_score

        held = load_score(path).system
        if held != system:
            raise ValueError(
                f"--out {run.out}: {path.name} is the score of {held!r}, but --data {data} holds {system!r}; "
                f"remove {path.name} or choose another folder"
            )
        say(f"train: already done ({path})")
        return path
    if tr["network"] == "linear":
        return fit_linear(run, samples, system, tr, path)
    from ..learning import train_score
    from ..learning.defaults import stacked_recipe

    training = train_config(tr)
    frames_in_memory = tr["frames_in_memory"] or None  # 0: automatic
    steps = "steps from the data" if training.n_steps is None else f"{training.n_steps} steps"
    say(
        f"train: {training.loss} loss"
        + (f", sigma={list(training.effective_sigmas)}" if training.effective_sigmas else "")
        + (", then refitted with the drift-response features" if stacked_recipe(system) else "")
        + f", {tr['network']} network, {steps} of {training.batch_particles} particles, "
        f"on {len(samples)} snapshots of {system.n_particles} particles"
        + (f" (at most {frames_in_memory} in memory)" if frames_in_memory else "")
        + f" -> {path}"
    )
    checkpoint = run.out / "checkpoint.msgpack"
    if checkpoint.exists():
        step = checkpoint_step(checkpoint)
        say(
            f"  resuming from {checkpoint}"
            if step is None
            else f"train: resuming from step {step} of {tr['n_steps']} ({checkpoint})"
        )
    start = time.perf_counter()
    # The samples themselves, not their frames: a data set larger than memory is streamed from its shards. The
    # preset's heads, inputs and neighbours follow the system and the data (learning/defaults.py).
    score = train_score(
        system,
        samples,
        tr["network"],
        training,
        checkpoint=checkpoint,
        checkpoint_every=tr["checkpoint_every"],
        progress=True,
        frames_in_memory=frames_in_memory,
        steps_per_window=tr["steps_per_window"] or None,
    )
    score.save(path)
    windows = score.info.get("windows")
    if windows is not None:
        say(f"train: streamed windows of {windows['window_frames']} frames, {windows['steps_per_window']} steps each")
    validation = score.validation
    run.finish(
        "train",
        time.perf_counter() - start,
        file=path.name,
        windows=windows,
        steps=score.info["n_steps"],
        validation=None if validation is None else validation.to_dict(),
    )
    return path


def fit_linear(run, samples, system, tr: dict, path: Path) -> Path:
    """The drift-response score of ``system`` fitted to ``samples`` in closed form (no steps, no checkpoints)."""
    from ..learning.linear import fit_linear_score

    say(f"train: drift-response score (closed form) on {len(samples)} snapshots of {system.n_particles} -> {path}")
    start = time.perf_counter()
    score = fit_linear_score(system, samples, holdout=tr["holdout"])
    score.save(path)
    validation = score.validation
    run.finish(
        "train",
        time.perf_counter() - start,
        file=path.name,
        validation=None if validation is None else validation.to_dict(),
    )
    if validation is not None:
        say(str(validation))
    return path


def estimate(run, score_path: Path, data: Path, est: dict) -> dict:
    """EPR summary (``summary.txt``, ``summary.json``) and maps (``epr.png``) of a score on the samples at
    ``data`` (a data set folder or a GSD trajectory)."""
    from ..learning import load_score

    score = load_score(score_path)
    samples, system = read_samples(data)
    frames = range(len(samples)) if est["frames"] <= 0 else range(min(est["frames"], len(samples)))
    say(f"estimate: score {score_path} on {len(frames)} snapshots of {data} -> {run.out}")
    start = time.perf_counter()
    x, g = samples.load(frames)
    bins = est["bins"] or plotting.bins_for(system.n_particles, len(frames))  # 0: about 20 particles per cell
    result = estimate_epr(score, (x, g), system=system, bins=bins, progress=True)
    summary = str(result)
    atomic_write(run.out / "summary.txt", summary + "\n")
    atomic_write(run.out / "summary.json", json.dumps(result.to_dict(), indent=2, default=float) + "\n")
    plotting.plot_epr_overview(result, run.out / "epr.png")
    run.finish("estimate", time.perf_counter() - start, files=["summary.txt", "summary.json", "epr.png"])
    say(summary)
    return result.to_dict()
