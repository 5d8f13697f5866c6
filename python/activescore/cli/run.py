"""The record of one command's run in its output folder: ``config.toml`` (the resolved configuration) and
``run.json`` (version, status, stages done, timings), with the folder locked while the command runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .._version import __version__
from ..config import dumps, flatten, system_defaults
from ..io.files import FolderLock, atomic_write
from . import errors
from .pipeline import say


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
            if previous and _differing_keys(previous.get("config"), config):
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
            atomic_write(self.out / "config.toml", dumps(config))
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
        say(f"{stage}: redone: {why}")

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


def _differing_keys(old, new) -> list[str]:
    """The keys whose values differ between two resolved configurations. A [system] key that the older record
    lacks (a model parameter added since) counts only when set off its model's default, so that a folder made by
    an earlier version reruns and resumes."""
    flat_old = flatten(old) if isinstance(old, dict) else {}
    flat_new = flatten(new)
    added = {}
    if flat_old and "system" in new:
        defaults = system_defaults(new["system"].get("model"))
        added = {f"system.{k}": v for k, v in defaults.items() if f"system.{k}" not in flat_old}
    return [
        k
        for k in {**flat_old, **flat_new}
        if flat_old.get(k) != flat_new.get(k) and not (k in added and flat_new.get(k) == added[k])
    ]


def _differences(old, new) -> str:
    """The keys whose values differ between two resolved configurations, as ``key: old -> new``."""
    flat_old = flatten(old) if isinstance(old, dict) else {}
    flat_new = flatten(new)
    keys = _differing_keys(old, new)
    shown = ", ".join(f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}" for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
