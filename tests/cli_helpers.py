"""Shared by the command-line tests: a tiny system's settings and a runner that reads the one error line."""

from activescore import cli

#: A 24-particle system on one thread: every CLI test's smallest run.
TINY = [
    "--set",
    "system.n_particles=24",
    "--set",
    "system.packing_fraction=0.3",
    "--set",
    "system.gamma=0.5",
    "--set",
    "system.v0=0.5",
    "--set",
    "simulation.n_threads=1",
]


def run_cli(capsys, *args):
    """(exit status, the one error line or None, stdout)."""
    status = cli.main([str(x) for x in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("activescore")]
    assert len(lines) <= 1, lines
    return status, (lines[0] if lines else None), out
