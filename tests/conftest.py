import numpy as np
import pytest

from activescore import backends

CPU_BACKENDS = [b for b in ("cpp", "numba") if backends.is_available(b)]


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)
