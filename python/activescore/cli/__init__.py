"""The ``activescore`` command line (also ``python -m activescore``).

    activescore simulate [CONFIG] [--set key=value ...] --out DIR     trajectory.gsd
    activescore dataset  [CONFIG] [--set ...] --out DIR               dataset/ (stationary snapshots)
    activescore train    [CONFIG] [--set ...] --data DATA --out DIR   score.msgpack
    activescore estimate [CONFIG] [--set ...] --score FILE --data DATA --out DIR  EPR summary + maps
    activescore plot     (--gsd FILE | --data DIR) [--frame I] --out FILE.png
    activescore demo     [--out DIR]                                  all of it, small, on the CPU
    activescore config   [CONFIG] [--set ...]                         print the resolved configuration
    activescore sweep    [CONFIG] --over phi=0.3,0.5 --seeds 4 --out DIR   a grid of points on Dask

DATA is a data set folder (from ``dataset``) or a GSD trajectory (from ``simulate``). Each command reads the
embedded defaults, then CONFIG (TOML), then the ``--set`` overrides, rejects unknown keys
and bad values before any work, prints what it will do, and writes ``config.toml`` (the resolved configuration)
and ``run.json`` (version, status, timings) beside its outputs. Interrupted commands resume when rerun with the
same --out; finished stages are not redone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .._version import __version__
from ..io.files import atomic_write
from ..sweeps.cli import add_parser as add_sweep_parser
from . import config as cfg
from . import pipeline


class Run:
    """The record written beside a command's outputs: resolved config, version, status, timings."""

    def __init__(self, out: Path, command: str, config: dict):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.command, self.config = command, config
        self.record_path = self.out / "run.json"
        previous = json.loads(self.record_path.read_text()) if self.record_path.exists() else {}
        if previous and previous.get("config") != config and previous.get("command") == command:
            raise ValueError(f"--out: {self.out} holds a {command} run with another configuration; choose another "
                             "folder or remove it")
        self.record = {"command": command, "activescore_version": __version__, "config": config,
                       "status": previous.get("status", "started"), "stages": previous.get("stages", {})}
        atomic_write(self.out / "config.toml", cfg.dumps(config))
        self.save()

    def done(self, stage: str) -> bool:
        return self.record["stages"].get(stage, {}).get("status") == "done"

    def finish(self, stage: str, seconds: float, **info) -> None:
        self.record["stages"][stage] = {"status": "done", "seconds": round(seconds, 2), **info}
        self.save()

    def save(self) -> None:
        atomic_write(self.record_path, json.dumps(self.record, indent=2, default=str) + "\n")


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------------- commands

def _resolve(args, sections):
    return cfg.resolve(args.config, args.set or (), sections)


def cmd_config(args) -> int:
    print(cfg.dumps(_resolve(args, None)), end="")
    return 0


def cmd_simulate(args) -> int:
    c = _resolve(args, ("system", "simulation"))
    system = cfg.make_system(c["system"])
    pipeline.simulate(Run(args.out, "simulate", c), system, c["simulation"])
    return 0


def cmd_dataset(args) -> int:
    c = _resolve(args, ("system", "simulation", "dataset"))
    system = cfg.make_system(c["system"])
    pipeline.build_dataset(Run(args.out, "dataset", c), system, c["simulation"], c["dataset"])
    return 0


def cmd_train(args) -> int:
    c = _resolve(args, ("train",))
    pipeline.train(Run(args.out, "train", {**c, "data": str(args.data)}), Path(args.data), c["train"])
    return 0


def cmd_estimate(args) -> int:
    c = _resolve(args, ("estimate",))
    run = Run(args.out, "estimate", {**c, "score": str(args.score), "data": str(args.data)})
    pipeline.estimate(run, Path(args.score), Path(args.data), c["estimate"])
    return 0


def cmd_plot(args) -> int:
    from .. import plotting
    from ..io.dataset import SnapshotDataset
    from ..simulation.trajectory import load_trajectory

    if (args.gsd is None) == (args.data is None):
        raise ValueError("plot: give exactly one of --gsd and --data")
    if args.gsd is not None:
        traj = load_trajectory(args.gsd)
        system, x, g, t = traj.system, traj.x[args.frame], traj.g[args.frame], traj.t[args.frame]
    else:
        ds = SnapshotDataset(args.data)
        system, (x, g), t = ds.system, ds[args.frame], ds.step[args.frame] * ds.dt
    ax = plotting.plot_configuration(system, x, color=g[:, 0] ** 2 + g[:, 1] ** 2, label="|g|²",
                                     title=f"N={system.n_particles}, φ={system.packing_fraction:.3g}, t={t:g}")
    plotting.save(ax, args.out)
    _say(f"plot: wrote {args.out}")
    return 0


def cmd_demo(args) -> int:
    """Simulate a small MIPS system, train a small score, estimate the EPR, and write the maps and a summary with
    the learning-free check: the whole pipeline on the CPU, with the embedded defaults and the demo's small values."""
    c = cfg.resolve(args.config, args.set or (), None, demo=True)
    system = cfg.make_system(c["system"])
    run = Run(args.out, "demo", c)
    _say(f"activescore {__version__} demo: simulate -> data set -> train -> estimate, outputs in {run.out}/")
    start = time.perf_counter()
    data = pipeline.build_dataset(run, system, c["simulation"], c["dataset"])
    score = pipeline.train(run, data, c["train"])
    from .. import plotting
    from ..io.dataset import SnapshotDataset

    ds = SnapshotDataset(data)
    x, g = ds[-1]
    plotting.save(plotting.plot_configuration(system, x, color=g[:, 0] ** 2 + g[:, 1] ** 2, label="|g|²",
                                              title=f"MIPS, N={system.n_particles}, t={ds.step[-1] * ds.dt:g}"),
                  run.out / "configuration.png")
    pipeline.estimate(run, score, data, c["estimate"])
    run.record["status"] = "done"
    run.record["seconds"] = round(time.perf_counter() - start, 1)
    run.save()
    _say(f"demo: done in {time.perf_counter() - start:.0f} s; see {run.out}/summary.txt, epr.png, configuration.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activescore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"activescore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_text, out_default=None):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("config", nargs="?", default=None, help="TOML configuration file (optional)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a configuration key, e.g. --set system.n_particles=1024")
        if out_default is not False:
            p.add_argument("--out", required=out_default is None, default=out_default, help="output folder")
        p.set_defaults(func=func)
        return p

    command("config", cmd_config, "print the resolved configuration (defaults + file + overrides)", out_default=False)
    command("simulate", cmd_simulate, "simulate a system to a GSD trajectory")
    command("dataset", cmd_dataset, "build a data set of stationary snapshots")
    p = command("train", cmd_train, "train a score network on a data set")
    p.add_argument("--data", required=True, help="data set folder (from `activescore dataset`) or GSD trajectory "
                   "(from `activescore simulate`)")
    p = command("estimate", cmd_estimate, "estimate EPR, velocities and currents with a trained score")
    p.add_argument("--score", required=True, help="score file (from `activescore train`)")
    p.add_argument("--data", required=True, help="data set folder or GSD trajectory")
    command("demo", cmd_demo, cmd_demo.__doc__, out_default="demo_output")
    add_sweep_parser(sub)

    plot = sub.add_parser("plot", help="draw a configuration")
    plot.add_argument("--gsd", help="trajectory file")
    plot.add_argument("--data", help="data set folder")
    plot.add_argument("--frame", type=int, default=-1)
    plot.add_argument("--out", required=True, help="PNG file")
    plot.set_defaults(func=cmd_plot)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad configuration or parameters: a clear message, no traceback, no work done
        print(f"activescore {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"activescore {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
