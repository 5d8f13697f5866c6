"""The README and the tutorials run as written: their Python blocks, top to bottom in one process, and the TOML
example of the command-line page.

The README is a front page: its tour (simulate, train, estimate) is its one Python block, and the blocks that were
in it before (simulating, the drift, the exact-score and ABP checks, the model-free example, the sweep) live in the
tutorials of the documentation site. ``PAGES`` lists the pages whose blocks run, in order, in one namespace, as
the README's did; a block that repeats an earlier one verbatim (the tour, shown again in the learning tutorial)
runs once. ``SMALL`` lists the literal sizes replaced for a quick run (each must be found, so an edit that changes
a size also updates this list). The default run executes every block that does not train a network at those small
sizes, and checks statically that every name a block reads was defined by an earlier block or line; training
costs about a minute of JIT compilation whatever the size, so all the blocks run under ``-m slow``: at small
sizes (about 1.5 minutes on 2 cores) and as written (several minutes).
"""

import ast
import builtins
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The pages whose Python blocks run, in this order, in one namespace: the front page, then the tutorials.
PAGES = [
    README,
    ROOT / "docs" / "tutorials" / "simulate.md",
    ROOT / "docs" / "tutorials" / "learn.md",
    ROOT / "docs" / "tutorials" / "estimate.md",
    ROOT / "docs" / "tutorials" / "sweeps.md",
]
#: The page with the configuration-file example (the TOML block).
COMMANDS = ROOT / "docs" / "commands.md"
#: The README stays a front page that leads into the documentation.
FRONT_PAGE_LINES = 250

#: (literal text in the README, its small replacement): sizes only, never the calls.
SMALL = [
    ("a.mips(4096, packing_fraction=0.5)", "a.mips(256, packing_fraction=0.5)"),
    (
        "n_steps=20_000, dt=a.MIPS_DT, seed=1, save_every=1000, burn_in=10_000",
        "n_steps=200, dt=a.MIPS_DT, seed=1, save_every=100, burn_in=100",
    ),
    (
        "a.simulate(system, 10_000, a.MIPS_DT, init=traj.final_state)",
        "a.simulate(system, 100, a.MIPS_DT, init=traj.final_state)",
    ),
    (
        "a.simulate(system, 100_000, 0.005, seed=1, burn_in=20_000, save_every=200)",
        "a.simulate(system, 800, 0.005, seed=1, burn_in=200, save_every=50)",
    ),
    ("gaussian_samples(system, 300, seed=1)", "gaussian_samples(system, 20, seed=1)"),
    (
        'over={"phi": [0.3, 0.5, 0.7], "v0": [0.0125, 0.025, 0.05]},\n        seeds=2,\n        n_steps=20_000,\n'
        "        dt=a.MIPS_DT,\n        burn_in=100_000,\n        save_every=1000,",
        'over={"phi": [0.3, 0.5]},\n        seeds=1,\n        n_steps=200,\n        dt=a.MIPS_DT,\n'
        "        burn_in=100,\n        save_every=100,",
    ),
]


def fenced_blocks(language: str, pages=PAGES) -> list[str]:
    """The fenced blocks of a language on the pages, in order; a block that repeats an earlier one is left out."""
    blocks = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M):
            if m.group(1) not in blocks:
                blocks.append(m.group(1))
    return blocks


def block_labels() -> list[str]:
    """'README block 1', 'docs/tutorials/simulate.md block 2', ...: where each of fenced_blocks("python") is."""
    labels, seen = [], []
    for page in PAGES:
        number = 0
        for m in re.finditer(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M):
            number += 1
            if m.group(1) not in seen:
                seen.append(m.group(1))
                name = "README" if page == README else page.relative_to(ROOT).as_posix()
                labels.append(f"{name} block {number}")
    return labels


def small(source: str) -> str:
    for literal, replacement in SMALL:
        if literal in source:
            source = source.replace(literal, replacement)
    return source


def test_small_sizes_all_apply():
    source = "\n".join(fenced_blocks("python"))
    missing = [literal for literal, _ in SMALL if literal not in source]
    assert not missing, f"sizes in the README or the tutorials changed; update SMALL in tests/test_readme.py: {missing}"


def test_readme_is_a_front_page():
    """At most FRONT_PAGE_LINES lines, the tour's one Python block, Layout and Developing last, and every link to a
    file of the repository (the documentation pages, figures) leads to one that exists."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= FRONT_PAGE_LINES
    assert len(fenced_blocks("python", [README])) == 1
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:2] == ["Two commands on a fresh machine", "A short tour: simulate → train → estimate"]
    assert headings[-2:] == ["Layout", "Developing"]
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert targets and not [t for t in targets if not (ROOT / t).exists()]


def _names_defined(tree) -> set:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def test_blocks_compile_and_read_only_names_defined_before():
    """Every name a block reads was bound by an earlier statement (of this block or an earlier one): no block
    depends on a variable the reader never saw defined."""
    defined = set(dir(builtins))
    blocks = fenced_blocks("python")
    assert len(blocks) >= 4
    for label, block in zip(block_labels(), blocks, strict=True):
        tree = ast.parse(block, filename=label)
        for statement in tree.body:
            # Names bound by this statement (targets of assignments, imports) become defined after it.
            reads = [n for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
            undefined = sorted({n.id for n in reads} - defined - _names_defined(statement))
            assert not undefined, f"{label}, line {statement.lineno}: {undefined} not defined before"
            defined |= _names_defined(statement)


def run_blocks(tmp_path, monkeypatch, transform, skip_training: bool = False) -> dict:
    """Run the Python blocks of PAGES in one namespace, as the main script (``__name__ == "__main__"``); returns
    {block number: the namespace after it} (shallow copies, so a name a later block rebinds can still be checked).
    The sweep block, which says it is a script of its own (Dask's worker processes import it again), runs as one:
    ``python phase.py`` in a fresh process. Nothing is dropped but the training blocks under ``skip_training``: the
    sweep block needs the [sweep] extra, which the [test] extra installs."""
    monkeypatch.chdir(tmp_path)  # the blocks write files (mips.gsd, score.msgpack) into the working folder
    namespace: dict = {"__name__": "__main__"}
    after = {}
    for number, (label, block) in enumerate(zip(block_labels(), fenced_blocks("python"), strict=True), 1):
        if skip_training and "train_score(" in block:
            continue
        if BLOCKS["sweep"] in block:
            run_as_script(tmp_path / "phase.py", transform(block))
        else:
            exec(compile(transform(block), label, "exec"), namespace)
        after[number] = dict(namespace)
    return after


def run_as_script(path: Path, source: str) -> None:
    """``python path`` in ``path``'s folder, as a user runs a script; its output on failure."""
    import activescore

    path.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(Path(activescore.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, path.name], cwd=path.parent, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout}\n{done.stderr}"


def check_results(after: dict, tmp_path, n_mips: int, sweep_rows: int, trained: bool) -> None:
    """What the pages say each block gives, at the sizes it ran with."""
    import gsd.hoomd

    from activescore.exact import gaussian_epr

    blocks = fenced_blocks("python")
    number = {name: next(i for i, b in enumerate(blocks, 1) if marker in b) for name, marker in BLOCKS.items()}
    simulated = after[number["simulate"]]
    with gsd.hoomd.open(str(tmp_path / "mips.gsd")) as f:
        assert len(f) == len(simulated["traj"]) and f[0].particles.N == n_mips
    assert simulated["more"].final_state.step > simulated["traj"].final_state.step
    assert after[number["drift"]]["div"].shape == (n_mips,)
    if trained:
        learned = after[number["train"]]
        assert (tmp_path / "score.msgpack").exists() and learned["s_g"].shape == (256, 2)
        assert learned["result"].epr_per_particle["quadratic"].value > 0
    gaussian = after[number["gaussian"]]
    value, stderr = gaussian["result"].epr_per_particle["quadratic"]
    assert abs(value - gaussian_epr(gaussian["system"])) <= 5 * stderr  # the exact score's estimate, in s.e.
    assert after[number["abp"]]["abp_result"].epr_per_particle["quadratic"].value == pytest.approx(7.5, rel=1e-9)
    import pandas as pd

    table = pd.read_csv(tmp_path / "phase" / "sweep.csv")  # written by the sweep script
    assert len(table) == sweep_rows and (table["status"] == "done").all()


#: A text that identifies each block, so that the checks follow the blocks when a page gains one.
BLOCKS = {
    "simulate": 'out="mips.gsd"',
    "drift": "a.drift_divergence(",
    "train": "train_score(",
    "gaussian": "GaussianScore(system)",
    "abp": "abp_result",
    "sweep": "a.sweep(",
}


def test_blocks_without_training_run_top_to_bottom_at_small_sizes(tmp_path, monkeypatch):
    after = run_blocks(tmp_path, monkeypatch, small, skip_training=True)
    check_results(after, tmp_path, n_mips=256, sweep_rows=2, trained=False)


@pytest.mark.slow
def test_blocks_run_top_to_bottom_at_small_sizes(tmp_path, monkeypatch):
    after = run_blocks(tmp_path, monkeypatch, small)
    check_results(after, tmp_path, n_mips=256, sweep_rows=2, trained=True)


@pytest.mark.slow
def test_blocks_run_top_to_bottom_as_written(tmp_path, monkeypatch):
    after = run_blocks(tmp_path, monkeypatch, lambda block: block)
    check_results(after, tmp_path, n_mips=4096, sweep_rows=18, trained=True)  # 3 × 3 points, 2 seeds each


def test_toml_example_is_a_valid_configuration(tmp_path):
    from activescore.cli import config as cfg

    (example,) = fenced_blocks("toml", [COMMANDS])
    path = tmp_path / "example.toml"
    path.write_text(example)
    config = cfg.resolve(path)
    cfg.validate(config)
    assert config["system"]["n_particles"] == 1024
