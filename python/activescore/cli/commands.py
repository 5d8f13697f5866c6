"""The commands of the command line, one function each (``cmd_NAME(args) -> exit status``): each resolves the
sections it reads, checks every value and input before any output is made, and runs its stages of
:mod:`.pipeline` in a :class:`~.run.Run`."""

from __future__ import annotations

import math
import time
from pathlib import Path

from .. import config as cfg
from .._version import __version__
from . import inputs, pipeline
from .pipeline import say
from .run import Run

#: Keys of a section a command reads that it does not use, with what sets that instead.
_UNUSED = {
    "dataset": {
        "simulation.n_steps": "dataset.n_frames and dataset.spacing set the run's length",
        "simulation.burn_in": "dataset.burn_in sets it",
        "simulation.save_every": "dataset.spacing sets it",
        "simulation.dtype": "a data set is simulated in float64",
    },
}
_UNUSED["demo"] = _UNUSED["dataset"]  # the demo simulates through a data set too


def _resolve(args, sections, command: str | None = None, *, data_system=None, data=None):
    """The resolved configuration of the requested sections, every value checked before anything is created.

    ``--set`` keys the command does not use are refused (a [system] key given to ``train`` or ``estimate`` is
    compared with the system of the data, ``data_system``, and refused when it differs); so are [system] keys of a
    CONFIG file that differ from the data's. Other sections of a CONFIG file are left to the commands that read
    them (one file can hold a whole pipeline)."""
    config = cfg.resolve(args.config, args.set or (), sections)
    if command is None or sections is None:
        cfg.validate(config)
        return config
    in_file, in_set = cfg.given_keys(args.config, args.set or ())
    unused = _UNUSED.get(command, {})
    for key, value in in_set.items():
        if key in unused:
            raise ValueError(f"--set {key}={value}: `activescore {command}` does not use it ({unused[key]})")
        section = key.split(".")[0]
        if section not in sections and not (section == "system" and data_system is not None):
            reads = ", ".join(f"[{name}]" for name in sections)
            raise ValueError(
                f"--set {key}={value}: `activescore {command}` does not use [{section}] (it reads {reads}"
                + (", and the system of --data)" if "system" not in sections else ")")
            )
    cfg.validate(config)
    if data_system is not None:
        given = {k: v for k, v in {**in_file, **in_set}.items() if k.startswith("system.")}
        _compare_system(given, data_system, command, data)
    return config


def _compare_system(given: dict, system, command: str, data) -> None:
    """Refuse [system] keys that differ from the system of the data a command reads (it takes its system from
    there: such a key would be ignored)."""
    defaults = cfg.system_defaults(system.model)
    for key, value in given.items():
        name = key.split(".", 1)[1]
        if name in ("box_length", "packing_fraction") and value == 0:
            continue  # unused (the other one sizes the box)
        if name == "packing_fraction":
            have = system.packing_fraction
        elif name == "radius":
            have = float(system.radius[0]) if len(set(system.radius.tolist())) == 1 else "polydisperse"
        else:
            have = getattr(system, name, None)
        if have is None:
            if value == defaults.get(name):
                continue  # the other model's key at its default (a config.toml holds both)
            raise ValueError(
                f"config key {key} = {value!r}: the {system.model.upper()} system of --data {data} has no {name}; "
                f"`activescore {command}` takes its system from the data: remove the key"
            )
        same = value == have or (
            isinstance(value, (int, float))
            and isinstance(have, (int, float))
            and math.isclose(float(value), float(have), rel_tol=1e-9)
        )
        if not same:
            raise ValueError(
                f"config key {key} = {value!r}: --data {data} holds a system with {name} = {have!r}; "
                f"`activescore {command}` takes its system from the data: remove the key or give data of that system"
            )


def cmd_config(args) -> int:
    print(cfg.dumps(_resolve(args, None)), end="")
    return 0


def cmd_simulate(args) -> int:
    c = _resolve(args, ("system", "simulation"), "simulate")
    system = cfg.make_system(c["system"])
    with Run(args.out, "simulate", c) as run:
        pipeline.simulate(run, system, cfg.SimulationConfig.from_section(c["simulation"]))
    return 0


def cmd_dataset(args) -> int:
    c = _resolve(args, ("system", "simulation", "dataset"), "dataset")
    system = cfg.make_system(c["system"])
    with Run(args.out, "dataset", c) as run:
        pipeline.build_dataset(run, system, cfg.SimulationConfig.from_section(c["simulation"]), c["dataset"])
    return 0


def cmd_train(args) -> int:
    c = cfg.resolve(args.config, args.set or (), ("train",))  # bad values first, then the data
    _, system = inputs.input_samples("--data", args.data)
    c = _resolve(args, ("train",), "train", data_system=system, data=args.data)
    if c["train"]["network"] == "linear" and (system.model != "aoup" or system.eps > 0):
        raise ValueError(
            f"config key train.network = 'linear': the drift-response score models AOUPs with eps = 0, but --data "
            f"{args.data} holds {system!r}; use train.network = 'small' or 'paper'"
        )
    with Run(args.out, "train", {**c, "data": str(args.data)}) as run:
        pipeline.train(run, Path(args.data), c["train"])
    return 0


def cmd_estimate(args) -> int:
    from ..learning import load_score

    cfg.resolve(args.config, args.set or (), ("estimate",))
    score_path = inputs.input_file("--score", args.score, "saved Score")
    samples, system = inputs.input_samples("--data", args.data)
    c = _resolve(args, ("estimate",), "estimate", data_system=system, data=args.data)
    with inputs.opening("--score", score_path):
        score = load_score(score_path)  # read once here, so that a foreign or corrupt file leaves no --out behind
    if type(system) is not type(score.system):
        raise ValueError(
            f"--score {args.score}: is the score of an {type(score.system).__name__} system, but --data "
            f"{args.data} holds an {type(system).__name__} data set (train a score on this data set)"
        )
    if score.system != system:
        raise ValueError(
            f"--score {args.score}: is the score of {score.system!r}, but --data {args.data} holds {system!r}; "
            "the command line applies a score to the system it was trained on (train one on this data with "
            f"`activescore train --data {args.data}`)"
        )
    if samples is not None:
        frames = len(samples)
    else:
        from ..io.gsd import read_header

        frames = read_header(args.data)[2]  # a GSD trajectory: its frames are read whole by the stage
    _check_estimate_memory(system, frames, c["estimate"])
    with Run(args.out, "estimate", {**c, "score": str(args.score), "data": str(args.data)}) as run:
        pipeline.estimate(run, score_path, Path(args.data), c["estimate"])
    return 0


def _check_estimate_memory(system, frames: int, est: dict) -> None:
    """Refuse an estimate whose snapshots do not fit in memory (they are loaded at once), before any output."""
    from ..simulation.memory import check_memory

    used = frames if est["frames"] <= 0 else min(est["frames"], frames)
    # positions and propulsion (float64), with the score's outputs and the per-particle fields: about 8 such arrays
    need = used * system.n_particles * 8 * 4 * 8
    check_memory(need, f"estimate on {used} snapshots of {system.n_particles} particles", "set estimate.frames lower")


def cmd_plot(args) -> int:
    from .. import plotting
    from ..io.gsd import read_frame, read_header

    if (args.gsd is None) == (args.data is None):
        raise ValueError("give exactly one of --gsd FILE and --data DIR")
    out = inputs.output_file("--out", args.out)
    try:
        plotting.image_format(out)
    except ValueError as err:
        raise ValueError(f"--out {err}") from None
    if args.gsd is not None:  # the one frame drawn is read, not the whole file
        gsd = inputs.input_file("--gsd", args.gsd, "GSD trajectory")
        with inputs.opening("--gsd", args.gsd):
            n_frames = read_header(gsd)[2]
        k = inputs.frame_index(args.frame, n_frames, args.gsd)
        with inputs.opening("--gsd", args.gsd):
            meta, system, x, q, step = read_frame(gsd, k)
        g, t = system.propulsion_direction(q), step * meta["dt"]
    else:
        ds, _ = inputs.input_samples("--data", args.data)
        if ds is None:
            raise ValueError(f"--data {args.data}: is a file; give a data set folder (or the file as --gsd)")
        k = inputs.frame_index(args.frame, len(ds), args.data)
        system, (x, g), t = ds.system, ds[k], ds.step[k] * ds.dt
    pipeline.plot_configuration(system, x, g, t, out)
    say(f"plot: wrote {out}")
    return 0


def cmd_physics(args) -> int:
    """Print the physics reference (models, units, conventions) that summaries cite as "physics.md §n"."""
    from ..reference import physics_reference

    path = physics_reference()
    print(path if args.path else path.read_text(encoding="utf-8"), end="\n" if args.path else "")
    return 0


#: The demo's paper-regime system size: the paper's training size.
PAPER_N = 4096


def cmd_demo(args) -> int:
    """Simulate active soft disks, train a score through the defaults, estimate its EPR beside the learning-free
    check and write the maps; then report the paper's MIPS regime beside it (identity and what the closed-form
    drift-response score captures there). The whole pipeline on the CPU, with the embedded defaults."""
    c = cfg.resolve(args.config, args.set or (), None, demo=True)
    for key, value in cfg.given_keys(None, args.set or ())[1].items():
        if key in _UNUSED["demo"]:
            raise ValueError(f"--set {key}={value}: `activescore demo` does not use it ({_UNUSED['demo'][key]})")
    cfg.validate(c)
    system = cfg.make_system(c["system"])
    paper = cfg.defaults()
    with Run(args.out, "demo", c) as run:
        say(f"activescore {__version__} demo: simulate -> data set -> train -> estimate, outputs in {run.out}/")
        start = time.perf_counter()
        data = pipeline.build_dataset(run, system, cfg.SimulationConfig.from_section(c["simulation"]), c["dataset"])
        score = pipeline.train(run, data, c["train"])
        from ..io.dataset import SnapshotDataset

        ds = SnapshotDataset(data)
        x, g = ds[-1]
        pipeline.plot_configuration(system, x, g, ds.step[-1] * ds.dt, run.out / "configuration.png")
        pipeline.estimate(run, score, data, c["estimate"])
        # At the paper's training size, 4096, where MIPS clusters form (docs/studies/paper_regime.md); with
        # ACTIVESCORE_QUICK=1 at the quick size.
        paper_n = paper["system"]["n_particles"] if cfg.quick() else PAPER_N
        paper_system = cfg.make_system({**paper["system"], "n_particles": paper_n})
        pipeline.paper_regime(
            run, paper_system, cfg.SimulationConfig.from_section(paper["simulation"]), paper["dataset"]
        )
    say(
        f"demo: done in {time.perf_counter() - start:.0f} s; see {run.out}/summary.txt (the trained score), "
        "paper_regime.txt, paper_regime_epr.png, epr.png, configuration.png"
    )
    return 0
