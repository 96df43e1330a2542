"""pytest-benchmark suite over the workload registry of ``tensorgrad.benchmarks``.

    pytest bench/ --benchmark-only                  # full sizes
    pytest bench/ --benchmark-only --tg-quick       # the sizes of `bench --quick`
    pytest bench/ --benchmark-only --tg-threads 1 -k matmul

Each (workload, engine) pair is one test; ``benchmark.group`` is the workload, so the
tensorgrad, numpy, torch and scikit-learn timings sit side by side. Before timing, every
engine's results are asserted equal to the numpy reference (to float32 tolerance), so a
fast wrong implementation fails instead of reporting a good time. torch and scikit-learn
cases skip with the reason when the library is missing.
"""
import pytest

from tensorgrad.benchmarks import registry, runner


def pytest_addoption(parser):
    group = parser.getgroup("tensorgrad benchmarks")
    group.addoption("--tg-quick", action="store_true",
                    help="use the small sizes of `python -m tensorgrad bench --quick`")
    group.addoption("--tg-threads", type=int, default=None,
                    help="threads for every engine (default: tensorgrad's current count)")


@pytest.fixture(scope="session")
def tg_settings(request):
    import tensorgrad as tg
    threads = request.config.getoption("--tg-threads") or tg.get_num_threads()
    runner.set_threads(threads)
    return {"quick": request.config.getoption("--tg-quick"), "threads": threads}


class _Inputs:
    """Inputs and numpy reference results of the current workload. One entry only: the
    full-size inputs of all workloads together would take more than a gigabyte."""

    def __init__(self):
        self.key = None
        self.value = None

    def get(self, wl, quick):
        import numpy as np
        key = (wl.name, quick)
        if self.key != key:
            self.key, self.value = None, None
            params = wl.sizes(quick)
            data = wl.data(params, np.random.default_rng(0))
            ref_fn = wl.impls["numpy"](data, params)
            ref = [runner.snapshot(ref_fn()) for _ in range(wl.check_calls)]
            self.key, self.value = key, (params, data, ref)
        return self.value


_inputs = _Inputs()


@pytest.fixture
def bench_case(benchmark, tg_settings):
    """``bench_case(name, engine)``: check the engine against numpy, then benchmark it."""
    def run(name, engine):
        wl = registry.get_workload(name)
        missing = wl.missing()
        if missing:
            pytest.skip(missing)
        params, data, ref = _inputs.get(wl, tg_settings["quick"])
        try:
            fn = wl.impls[engine](data, params)
        except registry.Skip as e:
            pytest.skip(str(e))
        for call, expected in enumerate(ref, 1):
            got = runner.snapshot(fn())
            msg = registry.compare(got, expected, wl.rtol, wl.atol, wl.int_mismatch)
            assert msg is None, f"{name}: {engine} disagrees with numpy (call {call}): {msg}"
        benchmark.group = f"{name}: {wl.size(params)}"
        benchmark.extra_info.update(engine=engine, size=wl.size(params),
                                    threads=tg_settings["threads"], ops_per_call=wl.per)
        benchmark(fn)
    return run
