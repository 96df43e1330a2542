"""OpenMP runtime control shared by all kernel modules.

Kernels use ``prange(..., use_threads_if=n >= TG_PAR_MIN)`` and take their team size from
the calling thread's OpenMP setting, which ``set_num_threads`` changes.
"""
from tensorgrad._kernels._openmp cimport (
    TG_HAVE_OPENMP, TG_PAR_MIN, TG_BUILD_COMPILER,
    omp_get_max_threads, omp_set_num_threads,
)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(TG_HAVE_OPENMP)


def compiler():
    """The C compiler the kernels were built with."""
    return TG_BUILD_COMPILER.decode()


def par_min():
    """Element count below which kernels stay serial."""
    return TG_PAR_MIN


def set_num_threads(int n):
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    omp_set_num_threads(n)


def get_num_threads():
    return omp_get_max_threads()
