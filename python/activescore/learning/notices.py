"""Warnings of score learning, printed as one line.

Python prints a warning as two lines, the message after the file and line that raised it (a path inside
site-packages, of no use to a user) and the source line under it. Warnings of the category
:class:`TrainingWarning` are printed here as ``activescore: <message>`` instead; every other warning keeps the
format it had, and filters, ``pytest.warns`` and ``warnings.catch_warnings(record=True)`` see a plain
:class:`UserWarning` subclass.
"""

from __future__ import annotations

import warnings


class TrainingWarning(UserWarning):
    """Something about a training run or its score the user should know: printed as one line."""


def _format_one_line(previous):
    """A ``warnings.formatwarning`` that prints :class:`TrainingWarning` in one line and hands the others to
    ``previous``."""

    def formatwarning(message, category, filename, lineno, line=None):
        if isinstance(category, type) and issubclass(category, TrainingWarning):
            return f"activescore: {message}\n"
        return previous(message, category, filename, lineno, line)

    formatwarning.one_line_training_warnings = True
    return formatwarning


def warn(message: str) -> None:
    """Warn with ``message`` (one line: no newline inside) as a :class:`TrainingWarning`."""
    if not getattr(warnings.formatwarning, "one_line_training_warnings", False):
        warnings.formatwarning = _format_one_line(warnings.formatwarning)
    warnings.warn(message, TrainingWarning, stacklevel=2)
