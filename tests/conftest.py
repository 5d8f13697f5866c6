import numpy as np
import pytest

from activescore import backends

CPU_BACKENDS = [b for b in ("cpp", "numba") if backends.is_available(b)]


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    return request.param


@pytest.fixture(params=["cpp", "numba", "cuda"])
def any_backend(request):
    """Every backend; those not available here are skipped (cuda without a GPU)."""
    if not backends.is_available(request.param):
        pytest.skip(f"backend {request.param} is not available here")
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)
