"""Every engine test module that says `pytestmark = pytest.mark.usefixtures("backend")`
runs once per array module: numpy, and cupy where a GPU is (skipped with the reason
elsewhere). Session scope groups each backend's tests together, so CuPy compiles a kernel
once for all of them."""

from __future__ import annotations

import pytest

from . import helpers
from .backends import cupy_missing, module

BACKENDS = [pytest.param("numpy"),
            pytest.param("cupy", marks=pytest.mark.skipif(cupy_missing() is not None,
                                                          reason=str(cupy_missing())))]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    previous = helpers.XP
    helpers.XP = module(request.param)
    yield request.param
    helpers.XP = previous
