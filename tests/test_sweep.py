"""Sweeps: a grid of tiny systems on Dask's synchronous scheduler, and the defaults on a two-worker local Dask
cluster and synchronously, checked against learning_free_epr on the same seeds; reruns, a killed sweep, failing
points; the structure measures on configurations with known answers; the command line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd  # the [test] extra installs the sweep's dependencies (dask, distributed, freud, pandas)
import pytest

import activescore as a
from activescore import cli
from activescore.sweeps import engine, grid, structure

BASE = a.AOUP(16, packing_fraction=0.3, v0=0.5, gamma=0.5)
RUN = dict(n_steps=200, dt=0.01, burn_in=100, save_every=20)
OVER = {"phi": [0.2, 0.35], "v0": [0.5, 1.0]}
NUMBERS = [
    "epr",
    "epr_stderr",
    "epr_per_particle",
    "epr_per_particle_stderr",
    "stationarity_z",
    "largest_cluster_fraction",
    "largest_cluster_fraction_stderr",
    "local_packing_fraction_mean",
    "local_packing_fraction_std",
    "n_frames",
]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A 2 × 2 grid, two seeds each, on Dask's synchronous scheduler (the local cluster: the defaults' test)."""
    out = tmp_path_factory.mktemp("sweep") / "grid"
    result = a.sweep(BASE, OVER, seeds=2, out=out, scheduler="synchronous", threads=1, quiet=True, **RUN)
    return out, result


def _direct(row):
    """The row's point simulated in one call and measured with learning_free_epr."""
    common = dict(packing_fraction=row.packing_fraction, v0=row.v0, eps=row.eps, k=row.k, trap=row.trap)
    common.update(beta=row.beta, radius=row.radius)
    if getattr(row, "model", "aoup") == "abp":
        system = a.ABP(int(row.n_particles), rotational_diffusion=row.rotational_diffusion, **common)
    else:
        system = a.AOUP(int(row.n_particles), gamma=row.gamma, **common)
    traj = a.simulate(
        system,
        int(row.n_steps),
        row.dt,
        seed=int(row.seed),
        burn_in=int(row.burn_in),
        save_every=int(row.save_every),
        n_threads=1,
        progress=False,
    )
    return a.learning_free_epr(system, traj, progress=False), traj


def test_sweep_table_identities_equal_learning_free_epr(grid_sweep):
    out, result = grid_sweep
    table = result.table
    assert result.computed == 8 and result.failed == 0 and len(table) == 8
    assert (table["status"] == "done").all()
    assert set(table.columns) >= {"packing_fraction", "v0", "seed", "gamma", "n_particles", "dt", "burn_in"}
    assert sorted(table["seed"].unique()) == [1, 2]
    for row in table.itertuples():
        identity, traj = _direct(row)
        assert row.epr_per_particle == identity.per_particle.value
        assert row.epr_per_particle_stderr == identity.per_particle.stderr
        assert row.epr == identity.total.value
        # ε = 0: the finite-dt ceiling of the same frames (physics.md §5)
        assert identity.finite_dt is not None and row.ceiling == identity.finite_dt.ceiling.value
        assert row.ceiling_stderr == identity.finite_dt.ceiling.stderr
        assert row.n_frames == len(traj)
        cluster = structure.largest_cluster_fractions(traj.system, traj.x, row.cluster_cutoff)
        assert row.largest_cluster_fraction == pytest.approx(cluster.mean(), rel=1e-12)
    # Different seeds give different numbers (the seed reaches the simulator).
    assert table.groupby(["packing_fraction", "v0"])["epr"].nunique().eq(2).all()
    on_disk = a.sweeps.load_table(out)
    assert len(on_disk) == 8 and np.allclose(on_disk["epr"], table["epr"])
    hist = result.histograms
    assert len(hist) == 8 * 24
    np.testing.assert_allclose(hist.groupby("point_id")["fraction"].sum(), 1.0)
    assert {p.name for p in result.figures} == {"phase_diagram.png", "local_density.png"}
    assert all((out / "points" / pid / "final.gsd").exists() for pid in table["point_id"])
    assert not any((out / "points" / pid / "frames.gsd").exists() for pid in table["point_id"])


def test_the_sweep_through_its_defaults_on_a_local_cluster_and_synchronously(tmp_path, monkeypatch):
    # Nothing chosen here but the swept values and the folder: the base is the configuration's defaults, made small
    # by ACTIVESCORE_QUICK=1 (README: 64 particles, 2000 steps saving every 200), on the default local cluster (two
    # points on two cores: two workers); then the same on Dask's synchronous scheduler, the same numbers.
    monkeypatch.setenv("ACTIVESCORE_QUICK", "1")
    result = a.sweep({}, {"phi": [0.3, 0.5]}, out=tmp_path / "cluster")
    assert result.computed == 2 and result.engine.startswith("local Dask cluster: 2 worker processes")
    for row in result.table.itertuples():
        assert row.status == "done"
        assert (row.n_particles, row.n_steps, row.save_every, row.dt, row.burn_in) == (64, 2000, 200, 0.1, 0)
        identity, traj = _direct(row)
        assert row.n_frames == len(traj) == 11
        assert row.epr_per_particle == identity.per_particle.value
        assert row.epr_per_particle_stderr == identity.per_particle.stderr
    assert {p.name for p in result.figures} == {"phase_diagram.png", "local_density.png"}
    local = a.sweep({}, {"phi": [0.3, 0.5]}, out=tmp_path / "local", scheduler="synchronous", figures=False)
    assert local.computed == 2
    pd.testing.assert_frame_equal(local.table[["point_id", *NUMBERS]], result.table[["point_id", *NUMBERS]])


def test_rerun_computes_nothing(grid_sweep):
    out, first = grid_sweep
    results = sorted((out / "points").glob("*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    again = a.sweep(BASE, OVER, seeds=2, out=out, n_workers=2, threads=1, quiet=True, figures=False, **RUN)
    assert again.computed == 0 and again.skipped == 8 and again.engine == ""  # no cluster was even started
    assert [p.stat().st_mtime_ns for p in results] == stamps
    pd.testing.assert_frame_equal(again.table, first.table)


def test_failing_points_are_recorded_and_the_rest_finish(tmp_path):
    over = {"model": ["aoup", "abp"], "v0": [0.5, 1e5], "phi": [0.3, -0.1]}
    result = a.sweep(
        BASE, over, seeds=1, out=tmp_path, scheduler="synchronous", threads=1, quiet=True, figures=False, **RUN
    )
    table = result.table.set_index(["model", "v0", "packing_fraction"])
    assert len(table) == 8
    for model in ("aoup", "abp"):
        assert table.loc[(model, 0.5, 0.3), "status"] == "done"
        assert table.loc[(model, 0.5, 0.3), "largest_cluster_fraction"] > 0
        blow_up = table.loc[(model, 1e5, 0.3)]
        assert blow_up["status"] == "failed" and "blow-up at step" in blow_up["error"]
        for v0 in (0.5, 1e5):
            bad = table.loc[(model, v0, -0.1)]
            assert bad["status"] == "failed" and "packing_fraction must be in" in bad["error"]
    assert result.failed == 6
    # Both models' rows carry the learning-free identity (physics.md §4), the same number as a direct run, and no
    # note (the note is for a model the estimators do not cover).
    for model in ("aoup", "abp"):
        row = next(table.loc[[(model, 0.5, 0.3)]].reset_index().itertuples())
        identity, _ = _direct(row)
        assert row.epr_per_particle == identity.per_particle.value
        assert row.epr_per_particle_stderr == identity.per_particle.stderr
        assert row.epr_note == ""
    # Failures are final unless asked: a rerun skips them, retry_failed runs them (and fails) again.
    assert (
        a.sweep(BASE, over, seeds=1, out=tmp_path, scheduler="synchronous", quiet=True, figures=False, **RUN).computed
        == 0
    )
    retried = a.sweep(
        BASE, over, seeds=1, out=tmp_path, scheduler="synchronous", quiet=True, figures=False, retry_failed=True, **RUN
    )
    assert retried.computed == 6 and retried.failed == 6


def test_killed_sweep_resumes_to_the_unbroken_numbers(tmp_path):
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "activescore",
        "sweep",
        "--set",
        "system.n_particles=32",
        "--set",
        "system.packing_fraction=0.3",
        "--set",
        "system.v0=0.5",
        "--set",
        "system.gamma=0.5",
        "--set",
        "simulation.dt=0.01",
        "--set",
        "simulation.n_steps=2000",
        "--set",
        "simulation.save_every=20",
        "--set",
        "simulation.burn_in=1000",
        "--over",
        "v0=0.5",
        "--seeds",
        "2",
        "--scheduler",
        "synchronous",
        "--threads",
        "1",
        "--no-figures",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(a.__file__).parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # kill it in the middle of a point, after its first checkpoint
            if any((out / "points").glob("*/frames.gsd.partial")) and proc.poll() is None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    unfinished = [p for p in (out / "points").iterdir() if not (p / "result.json").exists()]
    assert unfinished, "the sweep finished before it was killed"
    assert cli.main(args[3:]) == 0
    table = a.sweeps.load_table(out)
    assert (table["status"] == "done").all() and len(table) == 2
    assert (table["resumed_from_step"] > 0).any()  # a point continued from its checkpoint
    for row in table.itertuples():
        identity, _ = _direct(row)
        assert row.epr_per_particle == pytest.approx(identity.per_particle.value, rel=1e-13)


def test_transfer_epr_of_a_given_score_on_every_point(tmp_path):
    base = a.AOUP(16, packing_fraction=0.3, v0=0.0, eps=0.5, gamma=0.5)
    score = BoxEquilibriumScore(base)
    result = a.sweep(
        base, {"phi": [0.2, 0.4]}, seeds=1, out=tmp_path, score=score, scheduler="synchronous", quiet=True, **RUN
    )
    table = result.table
    assert (table["status"] == "done").all()
    # Equilibrium: the exact score, applied at each point's box size, gives v = 0: the transferred EPR vanishes.
    np.testing.assert_allclose(table["transfer_epr_per_particle"], 0.0, atol=1e-12)
    assert (table["transfer_form"] == "quadratic").all() and (table["transfer_sigma"] == 0).all()


class BoxEquilibriumScore(a.exact.EquilibriumScore):
    """The exact equilibrium score, applicable at any box size (a size-transferable score)."""

    def _at(self, box_length):
        if box_length is None or box_length == self.system.box_length:
            return a.exact.EquilibriumScore(self.system)
        d = self.system.to_dict()
        for key in ("model", "n_particles", "box_length"):
            d.pop(key)
        return a.exact.EquilibriumScore(a.AOUP(self.system.n_particles, box_length=box_length, **d))

    def __call__(self, x, g, box_length=None):
        return self._at(box_length)(x, g)

    def divergence_g(self, x, g, box_length=None):
        return self._at(box_length).divergence_g(x, g)

    def divergence_x(self, x, g, box_length=None):
        return self._at(box_length).divergence_x(x, g)


# ------------------------------------------------------------------------------------------- structure measures
def test_cluster_fraction_of_separated_clumps():
    system = a.AOUP(10, box_length=40.0)
    clump5 = np.array([[0, 0], [2, 0], [4, 0], [6, 0], [8, 0]], float) - 10
    clump3 = np.array([[0, 0], [0, 2.1], [0, 4.2]], float) + 8
    loners = np.array([[-15.0, 15.0], [15.0, -15.0]])
    x = np.concatenate([clump5, clump3, loners])[None]
    assert structure.largest_cluster_fractions(system, x, 2.2)[0] == pytest.approx(0.5)
    assert structure.largest_cluster_fractions(system, x, 2.05)[0] == pytest.approx(0.5)  # 2.1 apart: split
    assert structure.largest_cluster_fractions(system, x, 1.9)[0] == pytest.approx(0.1)


def test_local_packing_fraction_of_a_square_lattice_and_a_gas():
    m = 12
    system = a.AOUP(m * m, box_length=2.0 * m)
    line = (np.arange(m) + 0.5) * 2.0 - m
    x = np.stack(np.meshgrid(line, line), -1).reshape(-1, 2)[None]
    local = structure.local_packing_fractions(system, x, 5.0)
    assert np.ptp(local) < 1e-6  # every particle has the same surroundings
    # freud weights a neighbour at distance d by its documented linear ramp min(1, max(0, (r + a − d)/(2a))) (a the
    # particle radius, r the counting radius): the lattice's value from that rule, to freud's float32 rounding.
    i = np.arange(-4, 5)
    d = 2.0 * np.hypot(i[:, None], i[None, :]).ravel()
    weights = np.clip((5.0 + 1.0 - d[d > 0]) / 2.0, 0.0, 1.0)
    assert local[0, 0] == pytest.approx((1 + weights.sum()) / 25, rel=1e-6)
    # The ramp approximates the exact overlap area: a systematic gap from π/4 of 0.83 % here (measured), so 1 %.
    assert local[0, 0] == pytest.approx(np.pi / 4, rel=0.01)
    n, phi, r = 400, 0.3, 5.0
    gas = a.AOUP(n, packing_fraction=phi)
    rng = np.random.default_rng(3)
    x = rng.uniform(-gas.box_length / 2, gas.box_length / 2, (40, n, 2))
    local = structure.local_packing_fractions(gas, x, r)
    # Uniform independent points: itself (a²/r² = 1/r²) plus the ramp-weighted neighbours, whose expected weight per
    # pair is π(r² + a²/3)/L² (the ramp integrated over the plane). The mean over a frame is (2/N) Σ_pairs w over
    # N(N − 1)/2 pairs, uncorrelated on the torus (E[w | one end] is the same everywhere), so its variance is
    # (2/N)² N(N − 1)/2 var(w) / r⁴, with E[w²] = π((r − a)² + (4r − 2a)a/3)/L² (a = 1).
    area = gas.box_length**2
    mean_w, mean_w2 = np.pi * (r**2 + 1 / 3) / area, np.pi * ((r - 1) ** 2 + (4 * r - 2) / 3) / area
    expected = (1 + (n - 1) * mean_w) / r**2
    assert expected == pytest.approx(1 / r**2 + phi * (n - 1) / n * (1 + 1 / (3 * r**2)), rel=1e-12)
    stderr = 2 / n * np.sqrt(n * (n - 1) / 2 * (mean_w2 - mean_w**2)) / r**2 / np.sqrt(len(x))
    assert abs(local.mean() - expected) <= 5 * stderr, (local.mean() - expected) / stderr
    hist = structure.histogram(np.array([0.01, 0.5, 5.0]), [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(hist, [1 / 3, 1 / 3, 1 / 3])


# ------------------------------------------------------------------------------------------- planning
def test_workers_and_threads_fill_the_cores_without_oversubscribing():
    assert engine.plan_workers(8, n_cores=2) == (2, 1)
    assert engine.plan_workers(1, n_cores=2) == (1, 2)
    assert engine.plan_workers(8, n_cores=16, threads=4) == (4, 4)
    assert engine.plan_workers(3, n_cores=16) == (3, 5)
    assert engine.plan_workers(100, n_workers=2, n_cores=16) == (2, 8)
    for points, cores in [(1, 1), (5, 2), (7, 16), (64, 48)]:
        workers, threads = engine.plan_workers(points, n_cores=cores)
        assert workers * threads <= cores and workers <= points


def test_grid_expansion_ids_and_parsing():
    points, axes, _ = grid.expand(BASE, {"phi": [0.2, 0.3], "simulation.dt": [0.01]}, [5, 9], grid.Measures())
    assert axes == ["packing_fraction", "dt"] and len(points) == 4
    assert len({p.point_id for p in points}) == 4
    again, _, _ = grid.expand(BASE, {"phi": [0.2, 0.3], "simulation.dt": [0.01]}, [5, 9], grid.Measures())
    assert [p.point_id for p in again] == [p.point_id for p in points]
    other, _, _ = grid.expand(
        BASE, {"phi": [0.2, 0.3], "simulation.dt": [0.01]}, [5, 9], grid.Measures(cluster_cutoff=3.0)
    )
    assert not {p.point_id for p in other} & {p.point_id for p in points}
    assert points[0].make_system().packing_fraction == pytest.approx(0.2)
    assert grid.parse_over("v0=0.1:0.3:3") == ("v0", [0.1, 0.2, 0.3])
    assert grid.parse_over("model=aoup,abp") == ("model", ["aoup", "abp"])
    assert grid.expand(BASE, {"N": [8.0]}, 1, grid.Measures())[0][0].system["n_particles"] == 8
    with pytest.raises(ValueError, match="unknown key 'vv0'"):
        grid.expand(BASE, {"vv0": [1]}, 1, grid.Measures())
    with pytest.raises(ValueError, match="seeds"):
        grid.expand(BASE, {"v0": [1]}, 0, grid.Measures())
    with pytest.raises(ValueError, match="set by the sweep"):
        grid.expand(BASE, {"seed": [1, 2]}, 1, grid.Measures())


def test_cli_sweep_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["sweep", "--over", "vv0=1,2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("activescore sweep: error: over: unknown key 'vv0'")
    assert cli.main(["sweep", "--out", str(tmp_path)]) == 2
    assert "at least one --over" in capsys.readouterr().err
    config = tmp_path / "bad.toml"
    config.write_text("[sweep]\nworkerz = 2\n")
    assert cli.main(["sweep", str(config), "--over", "v0=1", "--out", str(tmp_path)]) == 2
    assert "sweep.workerz" in capsys.readouterr().err


def test_a_base_system_is_carried_whole():
    # Harmonic disks (beta = None: inf in a configuration) and every parameter of the base, cutoff_tol included.
    base = a.ABP(16, packing_fraction=0.3, v0=0.5, beta=None, cutoff_tol=1e-8)
    (point,), _, _ = grid.expand(base, {"v0": [0.7]}, 1, grid.Measures())
    assert point.make_system() == a.ABP(16, packing_fraction=0.3, v0=0.7, beta=None, cutoff_tol=1e-8)
    # A key added to [system] since the first sweeps stays out of a point's identity at its default.
    (default,), _, _ = grid.expand(a.ABP(16, packing_fraction=0.3), {"v0": [0.7]}, 1, grid.Measures())
    assert "cutoff_tol" not in grid._system_identity(default.system)
    assert grid._system_identity(point.system)["cutoff_tol"] == 1e-8


def test_cli_sweep_values_of_the_wrong_type_are_one_line(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[sweep]\nthreads = "two"\n')
    assert cli.main(["sweep", str(config), "--over", "v0=1", "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "config key sweep.threads: expected int, got 'two'" in line and not (tmp_path / "out").exists()


def test_cli_sweep_from_a_config_file(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(
        "[system]\nn_particles = 16\nv0 = 0.5\ngamma = 0.5\n"
        "[simulation]\ndt = 0.01\nn_steps = 100\nsave_every = 20\nburn_in = 20\n"
        '[sweep]\nover = {phi = [0.2, 0.3]}\nseeds = 1\nscheduler = "synchronous"\nkeep = "frames"\n'
    )
    assert cli.main(["sweep", str(config), "--out", str(tmp_path / "out"), "--no-figures"]) == 0
    table = a.sweeps.load_table(tmp_path / "out")
    assert list(table["packing_fraction"]) == [0.2, 0.3] and (table["status"] == "done").all()
    assert all(
        len(a.load_trajectory(tmp_path / "out" / "points" / pid / "frames.gsd")) == 6 for pid in table["point_id"]
    )
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert record["over"] == {"packing_fraction": [0.2, 0.3]}


def test_missing_dask_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    from activescore.sweeps import deps

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith("dask."):
            raise ImportError("No module named 'dask'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    monkeypatch.delitem(sys.modules, "dask", raising=False)
    with pytest.raises(deps.MissingDependency, match=r"activescore\[sweep\]"):
        a.sweep(BASE, {"v0": [1.0]}, out=tmp_path, **RUN)


def test_jobqueue_cluster_from_a_config_section():
    pytest.importorskip("dask_jobqueue")
    section = {"kind": "slurm", "jobs": 3, "cores": 16, "memory": "32GB", "queue": "normal", "walltime": "01:00:00"}
    cluster, text = engine.jobqueue_cluster(section, threads=4, scale=False)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p normal" in script and "#SBATCH -t 01:00:00" in script
    # 4 workers of 4 threads, each running one point at a time (the point resource): 4 x 4 threads = 16 cores.
    assert "--nworkers 4" in script and "--nthreads 4" in script and "--resources activescore_point=1" in script
    assert text == "slurm cluster (3 jobs of 16 cores)"
    with pytest.raises(ValueError, match="kind"):
        engine.start("jobqueue", n_points=4, cluster={"kind": "nope"})


@pytest.mark.parametrize("key", ["threads", "n_workers"])
def test_sweep_counts_are_checked_as_everywhere(tmp_path, key):
    """0 is automatic, a negative count is refused before anything is written (as simulation.n_threads is)."""
    with pytest.raises(ValueError, match=rf"{key} must be in \[0, inf\], got -1"):
        a.sweep(BASE, OVER, seeds=1, out=tmp_path / "out", quiet=True, **{key: -1}, **RUN)
    assert not (tmp_path / "out").exists()
