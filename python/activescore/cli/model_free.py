"""``activescore model-free``: the EPR from tracked trajectories alone, no model (physics.md §8).

Reads a trackpy-style CSV (columns ``frame``, ``particle``, ``x``, ``y``, optional ``angle``) or a GSD trajectory
written by activescore, and writes the model-free estimate (or, with ``--positions-only``, the short-time TUR lower
bound of the positions) to ``model_free.txt`` and ``model_free.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..io.files import GSD_MAGIC, atomic_write, existing_file, read_head

COMMAND = "model-free"
HELP = "entropy production from tracked trajectories alone (no model; trackpy CSV or GSD)"


def add_parser(subparsers, parents=()) -> argparse.ArgumentParser:
    """The ``model-free`` command's parser."""
    p = subparsers.add_parser(COMMAND, help=HELP, description=__doc__, parents=list(parents))
    p.add_argument(
        "--tracks", required=True, help="trackpy-style CSV file or GSD trajectory (from `activescore simulate`)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--frame-interval", type=float, help="time between frames (a CSV needs it; a GSD file carries it)")
    p.add_argument("--pixel-size", type=float, default=1.0, help="length unit per pixel of the CSV (default 1)")
    p.add_argument("--angle-unit", choices=("rad", "deg"), default="rad", help="unit of the CSV's angle column")
    geometry = p.add_mutually_exclusive_group()
    geometry.add_argument("--box-length", type=float, help="side of a periodic square box (CSV; default open space)")
    geometry.add_argument(
        "--field-of-view", help="xmin,xmax,ymin,ymax of an open field of view (CSV): edge particles leave the fit"
    )
    p.add_argument("--length-unit", default="", help="name of the length unit (labels only)")
    p.add_argument("--time-unit", default="", help="name of the time unit (labels only)")
    p.add_argument(
        "--diffusion", default="estimate", help='"estimate" (default: from the increments) or the diffusion coefficient'
    )
    p.add_argument("--lag", type=int, default=1, help="frames between the two states of a pair (default 1)")
    p.add_argument(
        "--velocity",
        default="linear",
        help='"linear" (default: one linear solve) or "network" (a network trained with the same loss; JAX)',
    )
    p.add_argument(
        "--positions-only",
        action="store_true",
        help="the short-time TUR lower bound of the positions' EPR (when the propulsion is not observed)",
    )
    p.set_defaults(func=cmd_model_free)
    return p


def read_tracks(args):
    """The tracks named by ``--tracks``, with the options that apply to its kind; one-line errors naming them."""
    from .. import modelfree
    from ..simulation.trajectory import load_trajectory

    path = existing_file(args.tracks, "--tracks file (trackpy CSV or GSD trajectory)")
    if read_head(path, len(GSD_MAGIC)) == GSD_MAGIC:
        given = [name for name in ("frame_interval", "box_length", "field_of_view") if getattr(args, name) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{flag}: a GSD trajectory carries its own frame spacing and box; leave {flag} out")
        return modelfree.tracks_from_trajectory(load_trajectory(path))
    if args.frame_interval is None:
        raise ValueError(f"--frame-interval: required for the CSV file {path} (the time between its frames)")
    field_of_view = None
    if args.field_of_view is not None:
        try:
            field_of_view = tuple(float(v) for v in args.field_of_view.split(","))
        except ValueError:
            raise ValueError(f"--field-of-view: expected xmin,xmax,ymin,ymax, got {args.field_of_view!r}") from None
    return modelfree.tracks_from_csv(
        path,
        frame_interval=args.frame_interval,
        pixel_size=args.pixel_size,
        angle_unit=args.angle_unit,
        box_length=args.box_length,
        field_of_view=field_of_view,
        length_unit=args.length_unit,
        time_unit=args.time_unit,
    )


def diffusion_of(text: str):
    """``--diffusion``: "estimate" or a positive number."""
    if text == "estimate":
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'--diffusion: expected "estimate" or a number, got {text!r}') from None


def cmd_model_free(args) -> int:
    """Read the tracks, estimate, write ``model_free.txt`` and ``model_free.json``."""
    from .. import modelfree
    from . import Run
    from .pipeline import say

    if args.velocity not in ("linear", "network"):
        raise ValueError(f'--velocity: expected "linear" or "network", got {args.velocity!r}')
    tracks = read_tracks(args)  # every input check before the output folder is made
    diffusion = diffusion_of(args.diffusion)
    config = {
        "tracks": str(args.tracks),
        "diffusion": args.diffusion,
        "lag": args.lag,
        "velocity": args.velocity,
        "positions_only": args.positions_only,
    }
    start = time.perf_counter()
    result: modelfree.TURBound | modelfree.ModelFreeEPR
    if args.positions_only:
        result = modelfree.tur_lower_bound(tracks, lag=args.lag)
    else:
        result = modelfree.estimate_model_free(tracks, diffusion=diffusion, lag=args.lag, velocity=args.velocity)
    with Run(Path(args.out), COMMAND, config) as run:
        text = result.summary()
        atomic_write(run.out / "model_free.txt", text + "\n")
        atomic_write(run.out / "model_free.json", json.dumps(result.to_dict(), indent=2, default=float) + "\n")
        run.finish(COMMAND, time.perf_counter() - start, files=["model_free.txt", "model_free.json"])
    say(text)
    return 0
