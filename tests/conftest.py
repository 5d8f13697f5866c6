"""Shared fixtures.

The compiled core (activescore._core) is part of the package: CI builds it, and a test that needs it FAILS when
it does not import, so that a broken build cannot pass as a shorter run. Where the core is deliberately absent
(a Numba-only install), say so with ``ACTIVESCORE_NO_CORE=1``: those tests then skip, naming the variable.
Numba is a required dependency: its backend missing is a failure. The CUDA cases carry the ``cuda`` marker and
skip without a GPU.
"""

import os

import numpy as np
import pytest

from activescore import backends

#: Set to 1 where the compiled core is deliberately not built: the tests that need it skip instead of failing.
NO_CORE = os.environ.get("ACTIVESCORE_NO_CORE") == "1"


def require_backend(name: str) -> None:
    """Fail (skip for cpp under ACTIVESCORE_NO_CORE=1, and for cuda without a GPU) when backend ``name`` is missing."""
    why = backends.BACKENDS[name].unavailable_reason()
    if why is None:
        return
    if name == "cuda":
        pytest.skip(f"backend cuda is not available here: {why}")
    if name == "cpp" and NO_CORE:
        pytest.skip("ACTIVESCORE_NO_CORE=1: the compiled core is deliberately absent")
    pytest.fail(f"backend {name} is missing: {why} (set ACTIVESCORE_NO_CORE=1 if the core is deliberately not built)")


@pytest.fixture
def core():
    """The compiled extension activescore._core (a failure when it does not import, unless ACTIVESCORE_NO_CORE=1)."""
    require_backend("cpp")
    return backends._core()


@pytest.fixture(params=["cpp", "numba"])
def cpu_backend(request):
    require_backend(request.param)
    return request.param


@pytest.fixture(params=["cpp", "numba", pytest.param("cuda", marks=pytest.mark.cuda)])
def any_backend(request):
    """Every backend; cuda skips without a GPU, a missing cpu backend fails (see the module docstring)."""
    require_backend(request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)
