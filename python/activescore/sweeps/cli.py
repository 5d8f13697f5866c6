"""The ``activescore sweep`` command: a grid of points × seeds on Dask (see :func:`activescore.sweep`).

    activescore sweep [CONFIG] [--set key=value ...] --over phi=0.1,0.3,0.5 --over v0=0.01:0.05:3 --seeds 4
                      --out DIR [--scheduler tcp://host:8786 | synchronous | jobqueue] [--score FILE]

CONFIG is a TOML file with the usual [system] and [simulation] sections and optionally a [sweep] section
(``over``, ``seeds``, ``keep``, ``scheduler``, ``workers``, ``threads``, ``score``, ...) with a [sweep.cluster]
table for a dask-jobqueue cluster (``kind = "slurm"``, ``jobs``, ``cores``, ``memory``, ``queue``, ``walltime``...).
Command-line options win over the file.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .. import _validate as check
from .. import config as cfg
from ..io.files import FolderLock


def add_parser(subparsers, parents=()) -> argparse.ArgumentParser:
    """Register ``sweep`` on the CLI's subparsers (``parents``: the options every command shares)."""
    p = subparsers.add_parser(
        "sweep",
        help="run a grid of state points x seeds on Dask: EPR, clusters, figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    p.add_argument("config", nargs="?", default=None, help="TOML configuration file (optional)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a [system]/[simulation] key, e.g. --set system.n_particles=256",
    )
    p.add_argument(
        "--over",
        action="append",
        metavar="KEY=VALUES",
        help="a swept key: phi=0.1,0.3,0.5 or v0=0.01:0.05:5 (start:stop:count); repeat for a grid",
    )
    p.add_argument("--seeds", help="seeds per point (a count from simulation.seed on, or a list 3,7,11)")
    p.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    p.add_argument(
        "--scheduler",
        help="'local' (default: a Dask cluster on this machine), tcp://host:8786, "
        "'synchronous', or 'jobqueue' (needs [sweep.cluster] in CONFIG)",
    )
    p.add_argument("--workers", type=int, help="local cluster worker processes (default 0: from the cores)")
    p.add_argument("--threads", type=int, help="simulator threads per point (default 0: cores / workers)")
    p.add_argument("--score", help="a trained score (score.msgpack): also estimate its EPR on every point")
    p.add_argument(
        "--keep",
        choices=["final", "frames", "none"],
        help="keep each point's final state (default), its frames too, or nothing",
    )
    p.add_argument("--retry-failed", action="store_true", default=None, help="run failed points again")
    p.add_argument(
        "--no-figures", dest="figures", action="store_false", default=None, help="skip the phase-diagram figures"
    )
    p.set_defaults(func=cmd_sweep)
    return p


def cmd_sweep(args) -> int:
    from .api import sweep
    from .grid import parse_over, seed_list

    base, settings = cfg.read_sweep_file(args.config, args.set or ())
    over = {str(k): v for k, v in dict(settings["over"]).items()}
    for text in args.over or ():
        name, values = parse_over(text)
        over[name] = values
    if not over:
        raise ValueError("sweep: give at least one --over key=values (or [sweep] over in CONFIG)")
    for key, value in cfg.given_keys(None, args.set or ())[1].items():
        if key.split(".")[0] not in ("system", "simulation"):
            raise ValueError(
                f"--set {key}={value}: `activescore sweep` does not use it (it reads [system], [simulation])"
            )
    seeds = settings["seeds"]
    if args.seeds is not None:
        parts = [s for s in args.seeds.split(",") if s.strip()]
        try:
            seeds = int(parts[0]) if len(parts) == 1 else [int(s) for s in parts]
        except ValueError:
            raise ValueError(
                f"--seeds: expected a count or a comma-separated list of integers, got {args.seeds!r}"
            ) from None
    seed_list(seeds, base["simulation"]["seed"])
    pick = {
        name: getattr(args, name)
        for name in ("scheduler", "workers", "threads", "score", "keep", "retry_failed", "figures")
    }
    settings.update({k: v for k, v in pick.items() if v is not None})
    for name, option in (("workers", "--workers"), ("threads", "--threads")):
        # As simulation.n_threads: a count, 0 for automatic (from the cores), never negative.
        try:
            check.integer(option, settings[name], low=0)
        except ValueError as err:
            raise ValueError(f"{err} (0: automatic, from the cores; sweep.{name} in CONFIG)") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, expected a folder for the outputs")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out, "`activescore sweep`")
    lock.acquire()  # a folder in use is refused, and left to the command holding it (even one made just now)
    if (out / "run.json").exists():  # the record of another command's run
        lock.release()
        raise ValueError(
            f"--out {out}: holds the outputs of another activescore command (its run.json); a folder holds one "
            "command's outputs: choose another folder for `activescore sweep`"
        )
    try:
        _run_sweep(sweep, base, over, seeds, out, settings)
    except ValueError:
        if made:  # a usage error (exit status 2) leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        lock.release(remove=True)
        raise
    finally:
        lock.release()
    return 0


def _run_sweep(sweep, base, over, seeds, out, settings) -> None:
    """``sweep`` with the command's settings; a missing optional dependency is a usage error."""
    from .deps import MissingDependency

    try:
        sweep(
            base,
            over,
            seeds=seeds,
            out=out,
            score=settings["score"] or None,
            keep=settings["keep"],
            scheduler=settings["scheduler"] or None,
            n_workers=settings["workers"],
            threads=settings["threads"],
            cluster=dict(settings["cluster"]) or None,
            retry_failed=settings["retry_failed"],
            checkpoint_every=settings["checkpoint_every"],
            cluster_cutoff=settings["cluster_cutoff"] or None,
            density_radius=settings["density_radius"] or None,
            figures=settings["figures"],
        )
    except MissingDependency as err:  # an optional extra is missing: one line, as for bad input
        raise ValueError(str(err)) from None
