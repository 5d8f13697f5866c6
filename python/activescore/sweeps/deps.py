"""Optional dependencies of sweeps, with one clear message when one is missing."""

from __future__ import annotations

import importlib

#: pip package providing each module.
_PACKAGES = {
    "dask": "dask",
    "distributed": "distributed",
    "freud": "freud-analysis",
    "pandas": "pandas",
    "dask_jobqueue": "dask-jobqueue",
    "pyarrow": "pyarrow",
}


class MissingDependency(ImportError):
    """An optional dependency of sweeps is not installed (the message says what to install)."""


def require(module: str, purpose: str):
    """Import ``module`` or raise :class:`MissingDependency` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = _PACKAGES.get(module, module)
        extra = "" if module == "dask_jobqueue" else ' (or pip install "activescore[sweep]")'
        raise MissingDependency(
            f"{purpose} needs the {package} package: pip install {package}{extra}; import failed: {err}"
        ) from None


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
