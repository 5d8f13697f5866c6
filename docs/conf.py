"""Sphinx configuration of the activescore documentation site.

Build: ``pip install ".[docs]" && sphinx-build -W docs docs/_build/html`` (warnings are errors, as in CI).
Pages are Markdown (myst-parser); the API reference is generated from the NumPy-style docstrings
(autodoc + napoleon); the physics is ``docs/physics.md`` itself. The README is the front page and leads here: the
tutorials, the studies and the performance page hold their own text (their tables between ``<!-- marker -->``
comments are written by the benchmark scripts from the JSON in ``benchmarks/results/``).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Document the installed package (pip install .); in a development tree run with PYTHONPATH=python, or fall back to
# the tree's sources.
try:
    import activescore  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "activescore"
author = "activescore contributors"
copyright = "2026, activescore contributors"
try:
    import activescore

    release = activescore.__version__
except ImportError:  # building without the compiled extension: the API pages then say so
    release = "0.1.0"
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "figures/README*", "Thumbs.db", ".DS_Store"]

# Markdown: $...$ maths is not used (the physics is plain text); fenced code, tables and heading anchors are.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Docstrings are NumPy style; the package is documented module by module (each object once).
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
# Cross references are not checked (other modules' docstrings change often); broken markup still fails the build.
nitpicky = False
# Pages name files of the repository (examples/, benchmarks/) rather than pages of this site, and headings of moved
# text may skip levels.
suppress_warnings = ["myst.header", "myst.xref_missing", "autodoc.import_object"]

html_theme = "alabaster"
html_title = f"activescore {release}"
html_theme_options = {
    "description": "Score-based entropy production for active matter",
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_static_path = []
# An "Attributes:" docstring section becomes :ivar: fields, so dataclass fields are not described twice.
napoleon_use_ivar = True

# The package's docstrings are plain text with physics in it (|v|², ``bins``², indented formulas after a colon);
# read them as such rather than as reStructuredText markup.
import re  # noqa: E402

_LITERAL_GLUED = re.compile(r"(``[^`]+``)(?=[^\s.,;:!?)\]}'\"/\\-])")


def _plain_text_docstring(app, what, name, obj, options, lines):
    text = []
    for i, line in enumerate(lines):
        line = line.replace("|", r"\|")  # |x|, |v_x|²: absolute values, not substitution references
        line = _LITERAL_GLUED.sub(r"\1\\ ", line)  # ``bins``²: a literal followed by a letter or superscript
        # "text:" + blank line + indented block: a formula or listing, shown as a literal block.
        if (
            line.rstrip().endswith(":")
            and not line.rstrip().endswith("::")
            and i + 2 < len(lines)
            and not lines[i + 1].strip()
            and lines[i + 2].startswith(" ")
            and len(lines[i + 2]) - len(lines[i + 2].lstrip()) > len(line) - len(line.lstrip())
        ):
            line = line.rstrip() + ":"
        text.append(line)
    lines[:] = text


def setup(app):
    app.connect("autodoc-process-docstring", _plain_text_docstring)
