"""Where the points run: Dask (a local cluster sized to the machine, a named scheduler, a dask-jobqueue cluster,
or one of Dask's single-machine schedulers), with progress as points done / running / failed."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.progress import progress_bar
from .deps import require
from .guard import refuse_unguarded_script
from .point import RUNNING, parameter_columns, run_point

#: Dask's single-machine scheduler that runs the points one after another in this process (no cluster): for
#: debugging, and the reference a cluster's numbers must equal.
LOCAL_SCHEDULERS = ("synchronous",)
#: The Dask worker resource a point takes whole on the workers a sweep starts itself (one point per worker).
POINT_RESOURCE = "activescore_point"
#: dask-jobqueue cluster kinds of a ``cluster`` section.
JOBQUEUE = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
}


def cores() -> int:
    """Cores this process may use (the affinity mask where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan_workers(n_points: int, n_workers: int = 0, threads: int = 0, n_cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per point) for a local cluster on ``n_cores`` cores: as many single-task worker
    processes as points or cores, each point's simulator getting the cores left over (workers × threads ≤ cores,
    so the OpenMP threads of concurrent points never oversubscribe the machine). Explicit values win."""
    n_cores = n_cores or cores()
    if n_workers <= 0:
        n_workers = max(1, min(n_points, n_cores if threads <= 0 else max(1, n_cores // threads)))
    if threads <= 0:
        threads = max(1, n_cores // n_workers)
    return n_workers, threads


@dataclass
class Engine:
    """A running Dask client (or a local scheduler name) and the threads each point uses."""

    kind: str
    threads: int
    client: Any = None
    cluster: Any = None
    description: str = ""
    dashboard: str | None = None
    resources: dict | None = None  # what each point task asks of its worker

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _dashboard(client) -> str | None:
    try:
        import bokeh  # noqa: F401  (the dashboard needs it)
    except ImportError:
        return None
    return client.dashboard_link


def jobqueue_cluster(cluster: dict, threads: int, *, scale: bool = True):
    """A dask-jobqueue cluster from a ``cluster`` section (``kind``, ``jobs`` and the cluster class's keyword
    arguments), its jobs split into single-task workers of ``threads`` cores each: (cluster, description)."""
    jobqueue = require("dask_jobqueue", "a dask-jobqueue cluster")
    spec = dict(cluster)
    kind = spec.pop("kind")
    jobs = int(spec.pop("jobs", 1))
    cls = getattr(jobqueue, JOBQUEUE[kind])
    cores_per_job = int(spec.get("cores", 1))
    # One worker process per `threads` cores of each job, running one point at a time (a Dask resource each point
    # takes whole), so the points' OpenMP threads fill the job without oversubscribing it.
    spec.setdefault("processes", max(1, cores_per_job // threads))
    spec["worker_extra_args"] = [*spec.get("worker_extra_args", []), "--resources", f"{POINT_RESOURCE}=1"]
    spec.setdefault("memory", "4GB")
    job_cluster = cls(**spec)
    if scale:
        job_cluster.scale(jobs=jobs)
    return job_cluster, f"{kind} cluster ({jobs} jobs of {cores_per_job} cores)"


def start(
    scheduler: str | None, *, n_points: int, n_workers: int = 0, threads: int = 0, cluster: dict | None = None
) -> Engine:
    """The engine for ``scheduler``: None or "local" (a LocalCluster sized by :func:`plan_workers`), a Dask
    scheduler address ("tcp://host:8786"), "synchronous" (Dask's single-machine
    scheduler, one point after another in this process), or "jobqueue" with a ``cluster`` section ``{"kind": "slurm" | "pbs" | ..., "jobs": n, "cores":
    ..., "memory": ..., "queue": ..., "walltime": ..., "account": ...}`` (dask-jobqueue keyword arguments)."""
    require("dask", "activescore sweeps")
    if scheduler in LOCAL_SCHEDULERS:
        _, per_point = plan_workers(n_points, 1, threads)
        return Engine(
            scheduler,
            per_point,
            description=f"Dask {scheduler} scheduler in this process, "
            f"{per_point} simulator thread{'s' if per_point > 1 else ''} per point",
        )
    distributed = require("distributed", "activescore sweeps on a Dask cluster")
    if scheduler in (None, "", "local"):
        refuse_unguarded_script()
        workers, per_point = plan_workers(n_points, n_workers, threads)
        local = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
        )
        client = distributed.Client(local)
        return Engine(
            "local",
            per_point,
            client,
            local,
            f"local Dask cluster: {workers} worker processes x 1 task, {per_point} simulator "
            f"thread{'s' if per_point > 1 else ''} per point ({cores()} cores)",
            _dashboard(client),
        )
    if scheduler == "jobqueue":
        if not cluster or cluster.get("kind") not in JOBQUEUE:
            raise ValueError(f"cluster: a jobqueue scheduler needs a cluster section with kind in {sorted(JOBQUEUE)}")
        per_point = threads or 1
        job_cluster, text = jobqueue_cluster(cluster, per_point)
        client = distributed.Client(job_cluster)
        return Engine("jobqueue", per_point, client, job_cluster, text, _dashboard(client), {POINT_RESOURCE: 1})
    if not isinstance(scheduler, str) or "://" not in scheduler:
        raise ValueError(
            f"scheduler must be 'local', a Dask address such as 'tcp://host:8786', 'jobqueue' or one "
            f"of {LOCAL_SCHEDULERS}, got {scheduler!r}"
        )
    client = distributed.Client(scheduler)
    per_point = threads or 1
    return Engine(
        "address",
        per_point,
        client,
        None,
        f"Dask scheduler {scheduler}, {per_point} simulator thread{'s' if per_point > 1 else ''} per point",
        _dashboard(client),
    )


class Progress:
    """Points done / running / failed, on the package's progress bar (silent when not shown)."""

    def __init__(self, total: int, done: int, failed: int, show: bool):
        self.total, self.done, self.failed = total, done, failed
        self.bar = progress_bar(show, total, desc="sweep", unit="point", initial=done + failed)
        self.update(0)

    def update(self, running: int, new_done: int = 0, new_failed: int = 0) -> None:
        self.done += new_done
        self.failed += new_failed
        self.bar.update(new_done + new_failed)
        self.bar.set_postfix(done=self.done, running=running, failed=self.failed)

    def close(self) -> None:
        self.bar.close()


def _running(out: Path, point_ids) -> int:
    return sum((out / "points" / pid / RUNNING).exists() for pid in point_ids)


def _crash_record(point, err: BaseException) -> dict:
    """A point whose task raised (a worker killed, an unexpected error): recorded here, retried on a rerun."""
    row = {**parameter_columns(point), "status": "failed", "error": f"{type(err).__name__}: {err}"}
    return {"point_id": point.point_id, "status": "failed", "error": row["error"], "row": row, "computed": True}


def run(
    engine: Engine, points, out: Path, measures, *, keep: str, checkpoint_every: int, progress: Progress, on_result
) -> None:
    """Run ``points`` on ``engine``; ``on_result(point, record)`` for each as it finishes."""
    kwargs = dict(n_threads=engine.threads, keep=keep, checkpoint_every=checkpoint_every)
    if engine.client is None:
        import dask

        # Dask's synchronous scheduler, one point at a time so progress and failures are per point.
        for point in points:
            progress.update(1)
            task = dask.delayed(run_point, pure=False)(point, str(out), measures, **kwargs)
            try:
                (record,) = dask.compute(task, scheduler="synchronous")
            except Exception as err:  # noqa: BLE001 - recorded, the others go on
                record = _crash_record(point, err)
            on_result(point, record)
        return
    distributed = require("distributed", "activescore sweeps on a Dask cluster")
    by_key = {}
    futures = []
    for point in points:
        future = engine.client.submit(
            run_point,
            point,
            str(out),
            measures,
            pure=False,
            key=f"point-{point.point_id}",
            resources=engine.resources,
            **kwargs,
        )
        by_key[future.key] = point
        futures.append(future)
    pending = set(futures)
    try:
        while pending:
            try:
                finished, pending = distributed.wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in this half second: refresh the running count
                finished = set()
            for future in finished:
                point = by_key[future.key]
                try:
                    record = future.result()
                except Exception as err:  # noqa: BLE001 - a crashed task is recorded, the others go on
                    record = _crash_record(point, err)
                on_result(point, record)
            progress.update(_running(out, [by_key[f.key].point_id for f in pending]))
    finally:
        if pending:
            engine.client.cancel(list(pending))


@contextlib.contextmanager
def started(*args, **kwargs):
    engine = start(*args, **kwargs)
    try:
        yield engine
    finally:
        engine.close()
