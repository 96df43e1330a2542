"""tensorgrad: a CPU tensor engine with reverse-mode automatic differentiation.

A small Tensor class records a computational graph as you compute; ``tg.Graph`` sorts it
topologically and runs forward and backward passes over it without forming a Jacobian; the
numeric work runs in typed Cython kernels (``tensorgrad._kernels``), multi-threaded with OpenMP.

    >>> import tensorgrad as tg
    >>> x = tg.tensor([-1.0, -2.0], requires_grad=True)
    >>> w = tg.tensor([2.0, -3.0], requires_grad=True)
    >>> f = tg.sigmoid(w @ x - 3.0)
    >>> f.backward()
"""
import os as _os

# Thread policy, part 1 (see _runtime.py): idle OpenMP threads sleep instead of spinning.
# Our kernels' parallel regions alternate with OpenBLAS calls, whose own idle threads spin
# too; on a 2-core machine the two spinning pools starve each other (a training step went
# from 3 ms to 18 ms). Must be set before the OpenMP runtime loads; a user's value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def _check_built():
    """Fail with one clear message when imported from a source tree whose kernels are unbuilt.

    ``python -m ...`` and ``python -c`` put the current directory first on ``sys.path``, so
    from the root of a clone they find this source tree rather than the installed package.
    """
    import importlib.machinery
    import pathlib

    kernels = pathlib.Path(__file__).parent / "_kernels"
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    if any((kernels / ("runtime" + s)).exists() for s in suffixes):
        return
    raise ImportError(
        f"tensorgrad is being imported from its source tree ({pathlib.Path(__file__).parent}), "
        "whose compiled kernels are not built. To use an installed tensorgrad, run Python "
        "from outside the source tree (or use the `tensorgrad` command); to work on the "
        "source, build it in place with: pip install -e .")


_check_built()
del _check_built

from tensorgrad import _blas, autograd, data, neighbors, nn, optim, random, testing
from tensorgrad._runtime import __version__ as __version__  # (re-exported)
from tensorgrad._runtime import (
    _init_threads,
    get_num_threads,
    memory_allocated,
    set_num_threads,
    show_config,
)
from tensorgrad._tensor import (
    Tensor,
    bool_,
    float32,
    float64,
    from_dlpack,
    from_numpy,
    int8,
    int16,
    int32,
    int64,
    is_tensor,
    tensor,
    uint8,
)
from tensorgrad.factory import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from tensorgrad.function import (
    Context,
    Function,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tensorgrad.graph import grad
from tensorgrad.replay import Graph
from tensorgrad.ops import *
from tensorgrad.ops import __all__ as _ops_all
from tensorgrad.random import manual_seed
from tensorgrad.serialization import load, save

_init_threads()
# The GEMM library (numpy's OpenBLAS, else scipy's; $TENSORGRAD_BLAS overrides): _blas.py.
_blas.select()

__all__ = ["Tensor", "tensor", "from_numpy", "from_dlpack", "Function", "Context", "Graph",
           "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "manual_seed",
           "set_num_threads", "get_num_threads", "show_config", "memory_allocated",
           "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "randn", "rand",
           "randint", "zeros_like", "ones_like", "full_like", "empty_like", "randn_like",
           "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "bool_", "is_tensor", "autograd", "testing", "random", "save", "load",
           "nn", "optim", "data", "neighbors"] + list(_ops_all)
