"""The ``activescore`` command line (also ``python -m activescore``).

    activescore simulate [CONFIG] [--set key=value ...] --out DIR     trajectory.gsd
    activescore dataset  [CONFIG] [--set ...] --out DIR               dataset/ (stationary snapshots)
    activescore train    [CONFIG] [--set ...] --data DATA --out DIR   score.msgpack
    activescore estimate [CONFIG] [--set ...] --score FILE --data DATA --out DIR  EPR summary + maps
    activescore plot     (--gsd FILE | --data DIR) [--frame I] --out FILE.png
    activescore demo     [--out DIR]                                  all of it, small, on the CPU
    activescore config   [CONFIG] [--set ...]                         print the resolved configuration
    activescore physics  [--path]                                     the physics reference (physics.md)
    activescore sweep    [CONFIG] --over phi=0.3,0.5 --seeds 4 --out DIR   a grid of points on Dask
    activescore model-free --tracks FILE [--frame-interval DT] --out DIR   EPR from tracked trajectories alone

DATA is a data set folder (from ``dataset``) or a GSD trajectory (from ``simulate``). Each command reads the
embedded defaults, then CONFIG (TOML), then the ``--set`` overrides, rejects unknown keys, bad values and settings
it would ignore before any work, prints what it will do, and writes ``config.toml`` (the resolved configuration)
and ``run.json`` (version, status, timings) beside its outputs. An output folder belongs to one run of one command
(locked while it runs). Interrupted commands resume when rerun with the same --out; finished stages are not redone.
With ``ACTIVESCORE_QUICK=1`` in the environment every default is small (64 particles, short runs).

A mistake (a bad value, a missing or foreign file, a run that blows up) ends the command with one line,
``activescore CMD: error: ...``, naming the key, file or value and what is allowed, and a non-zero exit status
(2: nothing was done, and --out is left as it was; 1: the run failed, what it finished is kept; 130: interrupted).
``run.json`` records ``"status"`` as ``"done"``, ``"failed"`` (with the message) or ``"interrupted"``. ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..sweeps.cli import add_parser as add_sweep_parser
from . import errors
from .commands import (
    PAPER_N,
    cmd_config,
    cmd_dataset,
    cmd_demo,
    cmd_estimate,
    cmd_physics,
    cmd_plot,
    cmd_simulate,
    cmd_train,
)
from .model_free import add_parser as add_model_free_parser
from .run import Run

__all__ = ["PAPER_N", "Run", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="activescore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"activescore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="on an error, show the Python traceback")

    def command(name, func, help_text, out_default=None):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.add_argument("config", nargs="?", default=None, help="TOML configuration file (optional)")
        p.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a configuration key, e.g. --set system.n_particles=1024",
        )
        if out_default is not False:
            p.add_argument("--out", required=out_default is None, default=out_default, help="output folder")
        p.set_defaults(func=func)
        return p

    command("config", cmd_config, "print the resolved configuration (defaults + file + overrides)", out_default=False)
    command("simulate", cmd_simulate, "simulate a system to a GSD trajectory")
    command("dataset", cmd_dataset, "build a data set of stationary snapshots")
    p = command("train", cmd_train, "train a score network on a data set")
    p.add_argument(
        "--data",
        required=True,
        help="data set folder (from `activescore dataset`) or GSD trajectory (from `activescore simulate`)",
    )
    p = command("estimate", cmd_estimate, "estimate EPR, velocities and currents with a trained score")
    p.add_argument("--score", required=True, help="score file (from `activescore train`)")
    p.add_argument("--data", required=True, help="data set folder or GSD trajectory")
    command("demo", cmd_demo, cmd_demo.__doc__, out_default="demo_output")
    add_sweep_parser(sub, parents=[common])
    add_model_free_parser(sub, parents=[common])

    physics = sub.add_parser("physics", help=cmd_physics.__doc__, description=cmd_physics.__doc__, parents=[common])
    physics.add_argument("--path", action="store_true", help="print where physics.md is instead of its text")
    physics.set_defaults(func=cmd_physics)

    plot = sub.add_parser(
        "plot",
        help="draw a configuration",
        description="Draw one frame of a GSD trajectory or a data set: the particles coloured by |g|², titled with "
        "the system's parameters and the time, written to an image file.",
        parents=[common],
    )
    plot.add_argument("--gsd", help="trajectory file (from `activescore simulate`)")
    plot.add_argument("--data", help="data set folder (from `activescore dataset`)")
    plot.add_argument("--frame", type=int, default=-1, help="frame index (default -1: the last; negative from the end)")
    plot.add_argument("--out", required=True, help="image file; its suffix sets the format (.png, .pdf, .svg, .jpg)")
    plot.set_defaults(func=cmd_plot)
    return parser


def main(argv=None) -> int:
    """Run one command; every error becomes one line on stderr and a non-zero exit status (see the module doc)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (Exception, KeyboardInterrupt) as err:
        if getattr(args, "debug", False) and not isinstance(err, KeyboardInterrupt):
            raise
        message, status = errors.describe(err)
        print(errors.one_line(args.command, message), file=sys.stderr)
        return status
