"""Runtime: one thread policy for OpenMP kernels and the BLAS pool, config and memory.

Default threads = the cores available to the process (its CPU affinity), or
``OMP_NUM_THREADS`` when set; ``show_config`` reports the two apart. ``import tensorgrad``
sets ``OMP_WAIT_POLICY=passive`` unless the user set it: idle OpenMP threads then sleep
instead of spinning, so they do not starve the BLAS pool's threads between calls.
``set_num_threads(n)`` sets both the OpenMP team size of our kernels and the BLAS pool
(through threadpoolctl).
The pools never nest: GEMMs called from Python use the BLAS pool, and the kernels that call
BLAS inside an OpenMP loop (the tiled distances of ``cdist`` and the kNN search) run under
``blas_guard``, which holds BLAS at one thread for the duration of the call, as
scikit-learn does.
"""
import gc
import os
import platform
import sys
import threading
from contextlib import contextmanager, nullcontext

import numpy as np

from tensorgrad import _blas
from tensorgrad._kernels import blas as BK
from tensorgrad._kernels import runtime as _rt
from tensorgrad._tensor import Tensor
from tensorgrad.function import _SavedOutput

__version__ = "0.1.0"       # the package's version, exported as tensorgrad.__version__

_state = {"threads": None, "limiter": None}


def cores_available():
    """CPU cores this process may run on (its affinity mask), whatever OMP_NUM_THREADS says."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # no affinity API (macOS, Windows): all the machine's cores
        return max(1, os.cpu_count() or 1)


def _default_threads():
    """The default thread count: ``OMP_NUM_THREADS`` when set, else the cores available."""
    env = os.environ.get("OMP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env.split(",")[0]))
        except ValueError:
            pass
    return cores_available()


def set_num_threads(n):
    """Use ``n`` threads for tensorgrad's OpenMP kernels and for BLAS."""
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _rt.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        _state["limiter"] = threadpool_limits(limits=n, user_api="blas")
    except Exception:   # threadpoolctl missing or no BLAS found: OpenMP part still applies
        _state["limiter"] = None
    _state["threads"] = n


def get_num_threads():
    """Threads used by the OpenMP kernels (and the BLAS pool)."""
    if _state["threads"] is None:
        return _rt.get_num_threads()
    return _state["threads"]


_blas_lock = threading.Lock()
_blas_state = {"depth": 0, "saved": (), "controllers": None, "gemm": None}


def _blas_controllers():
    """threadpoolctl's controllers of every loaded BLAS pool, listed once per GEMM library:
    ``_blas.select`` can switch it to one loaded after the list was made."""
    gemm = BK.gemm_provider()
    if _blas_state["controllers"] is None or _blas_state["gemm"] != gemm:
        try:
            from threadpoolctl import ThreadpoolController
            ctl = ThreadpoolController().select(user_api="blas")
            _blas_state["controllers"] = list(ctl.lib_controllers)
        except (ImportError, OSError):   # no threadpoolctl: nothing we can limit
            _blas_state["controllers"] = []
        _blas_state["gemm"] = gemm
    return _blas_state["controllers"]


@contextmanager
def blas_single_thread():
    """Hold every BLAS pool at one thread while a kernel that calls BLAS from inside its
    OpenMP loop runs: a multi-threaded BLAS there would oversubscribe the cores
    (OpenBLAS#3187). Nested and concurrent uses are counted, and the previous thread counts
    are restored at the end.
    """
    with _blas_lock:
        if _blas_state["depth"] == 0:
            saved = []
            for c in _blas_controllers():
                n = c.get_num_threads()
                if n != 1:
                    c.set_num_threads(1)
                    saved.append((c, n))
            _blas_state["saved"] = tuple(saved)
        _blas_state["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["depth"] -= 1
            if _blas_state["depth"] == 0:
                for c, n in _blas_state["saved"]:
                    c.set_num_threads(n)
                _blas_state["saved"] = ()


def blas_guard(n, m, d):
    """``blas_single_thread()`` when a distance kernel on [n, d] x [m, d] may run its
    OpenMP loop (the kernels' own threshold), else nothing: tiny calls skip the cost."""
    if n * m * (d + 1) >= _rt.par_min():
        return blas_single_thread()
    return nullcontext()


def _blas_info():
    try:
        from threadpoolctl import threadpool_info
        return [f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')}, "
                f"{i.get('num_threads')} threads) from {os.path.basename(i.get('filepath', ''))}"
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception as e:  # pragma: no cover - informational only
        return [f"unknown ({e})"]


def config_text():
    import scipy

    lines = [
        f"tensorgrad {__version__}",
        f"python     {sys.version.split()[0]} ({platform.platform()})",
        f"numpy      {np.__version__}",
        f"scipy      {scipy.__version__}",
        f"gemm       {_blas.provider()}",
        (f"blas idle  workers spin {_blas.idle_policy() or 'as their library decides'}, "
         "then sleep"),
        f"compiler   {_rt.compiler()}",
        f"openmp     {'on' if _rt.openmp_enabled() else 'OFF (kernels are single-threaded)'}",
        (f"threads    {get_num_threads()} (cores available: {cores_available()}, "
         f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
         f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"),
        f"parallel   loops above {_rt.par_min()} elements",
    ]
    for b in _blas_info():
        lines.append(f"blas       {b}")
    return "\n".join(lines)


def show_config():
    """Print version, compiler, OpenMP on/off, BLAS in use and thread counts."""
    print(config_text())


def memory_allocated():
    """Bytes currently held by live tensor buffers (each buffer counted once, views free).

    Counts the numpy buffers behind every live Tensor (values, gradients, saved tensors).
    It walks the live objects, so call it for diagnostics, not in a hot loop.
    """
    seen = set()
    total = 0
    for obj in gc.get_objects():
        # type(), not isinstance: isinstance reads obj.__class__, which some objects in
        # other libraries' modules answer with a warning (torch's deprecated proxies).
        if issubclass(type(obj), (Tensor, _SavedOutput)):
            arr = obj._data if isinstance(obj, Tensor) else obj.data
            base = arr
            while isinstance(base.base, np.ndarray):
                base = base.base
            key = id(base)
            if key not in seen:
                seen.add(key)
                total += base.nbytes
    return total


def _init_threads():
    n = _default_threads()
    if n != _rt.get_num_threads():
        _rt.set_num_threads(n)
