"""A sweep on a local cluster started from a script without the main guard: one line saying what to do, before any
worker process is spawned (Dask's workers import the script again)."""

import subprocess
import sys
from pathlib import Path

import activescore

PYTHONPATH = str(Path(activescore.__file__).resolve().parents[1])

SITE = """
from activescore.sweeps.guard import unguarded_call_site

def where():
    return unguarded_call_site()

{body}
"""


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "user_script.py"
    script.write_text(SITE.format(body=body))
    env = {"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)


def test_call_site_found_at_the_top_level_and_not_under_the_guard(tmp_path):
    body = (
        'print("top", where())\n'
        'if __name__ == "__main__":\n    print("guarded", where())\n'
        'if "__main__" == __name__:\n    print("reversed", where())\n'
        'def main():\n    print("function", where())\n'
        "main()\n"
    )
    result = run_script(tmp_path, body)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["top"].endswith("user_script.py', 7)")  # the script's line of the call
    assert lines["guarded"] == "None" and lines["reversed"] == "None"
    assert lines["function"].endswith("user_script.py', 14)")  # a top-level call of a function is unguarded too


def test_unguarded_sweep_is_refused_in_one_line(tmp_path):
    body = (
        "import activescore as a\n"
        f"a.sweep(a.AOUP(16, packing_fraction=0.3), {{'phi': [0.2]}}, out={str(tmp_path / 'out')!r}, quiet=True,\n"
        "        n_steps=20, dt=0.01, save_every=10)"
    )
    result = run_script(tmp_path, body)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: ") and 'if __name__ == "__main__":' in last and "user_script.py" in last
    assert "Nanny" not in result.stderr
