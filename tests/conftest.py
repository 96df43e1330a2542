"""Shared test setup: report which tensorgrad is under test; optional guard for CI."""
import os

import numpy as np
import pytest

import tensorgrad as tg


def pytest_report_header(config):
    from tensorgrad._kernels import runtime
    return (f"tensorgrad {tg.__version__} from {os.path.dirname(tg.__file__)}; "
            f"openmp={'on' if runtime.openmp_enabled() else 'off'}, "
            f"threads={tg.get_num_threads()}")


def pytest_configure(config):
    if os.environ.get("TENSORGRAD_REQUIRE_INSTALLED"):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if os.path.abspath(tg.__file__).startswith(os.path.join(here, "tensorgrad")):
            raise pytest.UsageError("tests must run against the installed wheel, but "
                                    f"tensorgrad was imported from {tg.__file__}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    tg.manual_seed(0)
    n = tg.get_num_threads()
    yield
    if tg.get_num_threads() != n:
        tg.set_num_threads(n)
