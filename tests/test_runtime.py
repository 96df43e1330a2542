"""Runtime: threads, configuration report, memory accounting, the `info` command."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad._kernels import runtime


def test_set_get_num_threads_governs_openmp_and_blas():
    n0 = tg.get_num_threads()
    tg.set_num_threads(1)
    assert tg.get_num_threads() == 1
    assert runtime.get_num_threads() == 1
    from threadpoolctl import threadpool_info
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)
    tg.set_num_threads(n0)
    assert tg.get_num_threads() == n0


def test_set_num_threads_rejects_zero():
    with pytest.raises(ValueError, match="set_num_threads"):
        tg.set_num_threads(0)


def test_results_do_not_depend_on_thread_count(rng):
    a = tg.tensor(rng.standard_normal((300, 400)), requires_grad=True)   # above the threshold
    b = tg.tensor(rng.standard_normal((400,)))
    out = []
    for n in (1, 2):
        tg.set_num_threads(n)
        a.grad = None
        y = tg.relu(a * b + 1.0).sum()
        y.backward()
        out.append((y.item(), a.grad.numpy().copy()))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-12)
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_show_config_reports_openmp_blas_threads(capsys):
    tg.show_config()
    text = capsys.readouterr().out
    assert f"tensorgrad {tg.__version__}" in text
    assert "openmp" in text and ("on" in text or "OFF" in text)
    assert "blas" in text and "threads" in text and "compiler" in text


def test_memory_allocated_counts_live_buffers_once():
    base = tg.memory_allocated()
    x = tg.zeros(1000, 1000, dtype=tg.float64)          # 8 MB
    assert tg.memory_allocated() - base == 8_000_000
    v = x.view(-1)                                        # a view costs nothing
    t = x.T
    assert tg.memory_allocated() - base == 8_000_000
    y = x + 1.0                                           # a new buffer
    assert tg.memory_allocated() - base == 16_000_000
    del x, v, t, y
    assert tg.memory_allocated() - base == 0


def _run(args, cwd, **env):
    """Run python with ``args`` outside the source tree (so ``-m`` imports the tensorgrad the
    tests import: installed wheel or dev checkout), with extra environment variables."""
    environ = dict(os.environ, **env)
    environ["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=environ, check=False)


def test_info_command_runs(tmp_path):
    r = _run(["-m", "tensorgrad", "info"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "openmp" in r.stdout


def test_show_config_reports_cores_available_apart_from_omp_num_threads(tmp_path):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    r = _run(["-c", "import tensorgrad as tg; tg.show_config()"], tmp_path,
             OMP_NUM_THREADS=str(cores + 1))            # never the number of cores
    assert r.returncode == 0, r.stderr
    threads = next(line for line in r.stdout.splitlines() if line.startswith("threads"))
    assert threads.startswith(f"threads    {cores + 1} (cores available: {cores}, "
                              f"OMP_NUM_THREADS={cores + 1}, "), threads


def test_unknown_command_exits_2(tmp_path):
    r = _run(["-m", "tensorgrad", "frobnicate"], tmp_path)
    assert r.returncode == 2
    assert "unknown command" in r.stderr
