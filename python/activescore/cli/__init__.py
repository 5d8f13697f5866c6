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
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

from .._version import __version__
from ..io.files import FolderLock, atomic_write, existing_file
from ..sweeps.cli import add_parser as add_sweep_parser
from . import config as cfg
from . import errors, pipeline
from .model_free import add_parser as add_model_free_parser


class Run:
    """The record written beside a command's outputs: resolved config, version, status, timings.

    An output folder belongs to one run of one command: the folder is locked for the whole run
    (:class:`~activescore.io.files.FolderLock`), so a second command into it stops at once naming the holder; a
    folder holding another command's outputs (its ``run.json``) is refused, as is one holding a run of the same
    command with another configuration. A run that ends with a usage error (exit status 2) takes back what it
    wrote: the folder when it made it, else ``config.toml`` and ``run.json`` as they were.

    Parameters
    ----------
    out : path
        The output folder (made when missing).
    command : str
        The command writing into it (``"simulate"``, ``"demo"``, ...).
    config : dict
        The resolved configuration, written to ``config.toml`` and ``run.json``.
    """

    def __init__(self, out: Path, command: str, config: dict):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out}: is a file, expected a folder for the outputs")
        self.made = _make_folder(self.out)
        self.command, self.config = command, config
        self.record_path = self.out / "run.json"
        self.lock = FolderLock(self.out, f"`activescore {command}`")
        try:
            self.lock.acquire()
            self._before = {name: _read(self.out / name) for name in ("run.json", "config.toml")}
            previous = _previous_record(self.record_path)
            record_name = "run.json"
            if (self.out / "sweep.json").exists():
                previous, record_name = {"command": "sweep", **previous}, "sweep.json"
            if previous and previous.get("command") != command:
                raise ValueError(
                    f"--out {self.out}: holds the outputs of `activescore {previous.get('command')}` (its "
                    f"{record_name}); "
                    f"a folder holds one command's outputs: choose another folder for `activescore {command}`"
                )
            if previous and previous.get("config") != config:
                raise ValueError(
                    f"--out {self.out}: holds a {command} run with another configuration "
                    f"({_differences(previous.get('config'), config)}); choose another folder or remove it"
                )
            self.record = {
                "command": command,
                "activescore_version": __version__,
                "config": config,
                "status": "started",
                "stages": previous.get("stages", {}),
            }
            self._start = time.perf_counter()
            atomic_write(self.out / "config.toml", cfg.dumps(config))
            self.save()
        except BaseException:
            self._take_back()
            raise

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Record how the command ended: done, interrupted (Ctrl-C) or failed with the one-line message; a usage
        error (exit status 2: nothing was done) takes back what the run wrote."""
        try:
            if exc is None:
                self.close("done")
            elif isinstance(exc, KeyboardInterrupt):
                self.close("interrupted")
            else:
                message, status = errors.describe(exc)
                if status == errors.USAGE:
                    self._take_back()
                    return
                self.close("failed", message)
        finally:
            self.lock.release()

    def _take_back(self) -> None:
        """Leave the folder as it was before this run: removed when the run made it, else its record restored."""
        try:
            if not self.lock.held:
                return  # another command holds the folder (even one this run made an instant before): not ours
            if self.made:
                shutil.rmtree(self.out, ignore_errors=True)
            else:
                for name, text in getattr(self, "_before", {}).items():
                    if text is None:
                        (self.out / name).unlink(missing_ok=True)
                    else:
                        atomic_write(self.out / name, text)
        finally:
            self.lock.release(remove=True)

    def close(self, status: str, message: str | None = None) -> None:
        self.record["status"] = status
        self.record.pop("error", None)
        if message is not None:
            self.record["error"] = message
        self.record["seconds"] = round(time.perf_counter() - self._start, 2)
        self.save()

    def done(self, stage: str) -> bool:
        return self.record["stages"].get(stage, {}).get("status") == "done"

    def redo(self, stage: str, why: str) -> None:
        """Forget that ``stage`` was done (its output is missing or not this configuration's), saying why."""
        self.record["stages"].pop(stage, None)
        self.save()
        _say(f"{stage}: redone: {why}")

    def finish(self, stage: str, seconds: float, **info) -> None:
        self.record["stages"][stage] = {"status": "done", "seconds": round(seconds, 2), **info}
        self.save()

    def save(self) -> None:
        atomic_write(self.record_path, json.dumps(self.record, indent=2, default=str) + "\n")


def _make_folder(path: Path) -> bool:
    """Make ``path`` (and missing parents); True when this call made it."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return False
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _previous_record(path: Path) -> dict:
    """The run record of an earlier run in the folder ({} when there is none)."""
    text = _read(path)
    if text is None:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        raise ValueError(
            f"--out {path.parent}: its run.json is not a run record (not JSON); choose another folder"
        ) from None
    if not isinstance(record, dict) or "command" not in record:
        raise ValueError(f"--out {path.parent}: its run.json is not an activescore run record; choose another folder")
    return record


def _differences(old, new) -> str:
    """The keys whose values differ between two resolved configurations, as ``key: old -> new``."""
    flat_old = cfg._flatten(old) if isinstance(old, dict) else {}
    flat_new = cfg._flatten(new)
    keys = [k for k in {**flat_old, **flat_new} if flat_old.get(k) != flat_new.get(k)]
    shown = ", ".join(f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}" for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------------- commands


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
    import math

    defaults = cfg.DEFAULTS["system"]
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


@contextlib.contextmanager
def _opening(option: str, path):
    """Errors while reading an input name the option and the file: a foreign or corrupt file otherwise surfaces as
    a bare KeyError or decoder message."""
    try:
        yield
    except OSError:
        raise  # carries its file name
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{option} {path}: {err}") from err
    except Exception as err:
        detail = f"{type(err).__name__}: {err}"
        raise ValueError(f"{option} {path}: cannot be read as an activescore file ({detail})") from err


def _input_file(option: str, path, what: str) -> Path:
    """An input file given on the command line, which must exist and be a file (``what``: its kind)."""
    try:
        return existing_file(path, what)
    except ValueError as err:
        raise ValueError(f"{option} {err}") from None


def _input_samples(option: str, path):
    """Check the samples given on the command line before any output is made: ``(data set, system)`` for a data
    set folder (its manifest read), ``(None, system)`` for a GSD trajectory (its first frame read; the stage reads
    it whole)."""
    from ..io.files import GSD_MAGIC, describe_foreign, read_head
    from ..io.gsd import read_frame

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{option} {path}: no such file or folder")
    if not path.is_dir():
        if read_head(path, len(GSD_MAGIC)) != GSD_MAGIC and path.suffix != ".gsd":
            raise ValueError(
                f"{option}: {path} is neither a GSD trajectory nor a data set folder{describe_foreign(path)}"
            )
        with _opening(option, path):
            return None, read_frame(path, 0)[1]
    if not (path / "manifest.json").exists() and (path / "dataset" / "manifest.json").exists():
        raise ValueError(
            f"{option} {path}: is the output folder of `activescore dataset`; the data set is {path / 'dataset'}"
        )
    with _opening(option, path):
        samples, system = pipeline.read_samples(path)
    return samples, system


def _output_file(option: str, path) -> Path:
    """An output file whose folder must exist (it is not created for a single file)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"{option} {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder, expected a file name")
    return path


def _frame_index(frame: int, n_frames: int, source) -> int:
    if not -n_frames <= frame < n_frames:
        raise ValueError(
            f"--frame {frame}: {source} has {n_frames} frames, so the index must be in "
            f"[0, {n_frames - 1}] (or [-{n_frames}, -1] counting from the end)"
        )
    return frame % n_frames


def cmd_config(args) -> int:
    print(cfg.dumps(_resolve(args, None)), end="")
    return 0


def cmd_simulate(args) -> int:
    c = _resolve(args, ("system", "simulation"), "simulate")
    system = cfg.make_system(c["system"])
    with Run(args.out, "simulate", c) as run:
        pipeline.simulate(run, system, c["simulation"])
    return 0


def cmd_dataset(args) -> int:
    c = _resolve(args, ("system", "simulation", "dataset"), "dataset")
    system = cfg.make_system(c["system"])
    with Run(args.out, "dataset", c) as run:
        pipeline.build_dataset(run, system, c["simulation"], c["dataset"])
    return 0


def cmd_train(args) -> int:
    c = cfg.resolve(args.config, args.set or (), ("train",))  # bad values first, then the data
    _, system = _input_samples("--data", args.data)
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
    score_path = _input_file("--score", args.score, "saved Score")
    samples, system = _input_samples("--data", args.data)
    c = _resolve(args, ("estimate",), "estimate", data_system=system, data=args.data)
    with _opening("--score", score_path):
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
    out = _output_file("--out", args.out)
    try:
        plotting.image_format(out)
    except ValueError as err:
        raise ValueError(f"--out {err}") from None
    if args.gsd is not None:  # the one frame drawn is read, not the whole file
        gsd = _input_file("--gsd", args.gsd, "GSD trajectory")
        with _opening("--gsd", args.gsd):
            n_frames = read_header(gsd)[2]
        k = _frame_index(args.frame, n_frames, args.gsd)
        with _opening("--gsd", args.gsd):
            meta, system, x, q, step = read_frame(gsd, k)
        g, t = system.propulsion_direction(q), step * meta["dt"]
    else:
        ds, _ = _input_samples("--data", args.data)
        if ds is None:
            raise ValueError(f"--data {args.data}: is a file; give a data set folder (or the file as --gsd)")
        k = _frame_index(args.frame, len(ds), args.data)
        system, (x, g), t = ds.system, ds[k], ds.step[k] * ds.dt
    ax = plotting.plot_configuration(
        system,
        x,
        color=g[:, 0] ** 2 + g[:, 1] ** 2,
        label="|g|² (propulsion)",
        title=plotting.system_title(system, t=t, two_lines=True),
    )
    plotting.save(ax, out)
    _say(f"plot: wrote {out}")
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
        _say(f"activescore {__version__} demo: simulate -> data set -> train -> estimate, outputs in {run.out}/")
        start = time.perf_counter()
        data = pipeline.build_dataset(run, system, c["simulation"], c["dataset"])
        score = pipeline.train(run, data, c["train"])
        from .. import plotting
        from ..io.dataset import SnapshotDataset

        ds = SnapshotDataset(data)
        x, g = ds[-1]
        plotting.save(
            plotting.plot_configuration(
                system,
                x,
                color=g[:, 0] ** 2 + g[:, 1] ** 2,
                label="|g|² (propulsion)",
                title=plotting.system_title(system, t=ds.step[-1] * ds.dt, two_lines=True),
            ),
            run.out / "configuration.png",
        )
        pipeline.estimate(run, score, data, c["estimate"])
        # At the paper's training size, 4096, where MIPS clusters form (README, The paper's regime); with
        # ACTIVESCORE_QUICK=1 at the quick size.
        paper_n = paper["system"]["n_particles"] if cfg.quick() else PAPER_N
        paper_system = cfg.make_system({**paper["system"], "n_particles": paper_n})
        pipeline.paper_regime(run, paper_system, paper["simulation"], paper["dataset"])
    _say(
        f"demo: done in {time.perf_counter() - start:.0f} s; see {run.out}/summary.txt (the trained score), "
        "paper_regime.txt, paper_regime_epr.png, epr.png, configuration.png"
    )
    return 0


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
