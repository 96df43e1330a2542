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
__version__ = "0.1.0"

import os as _os

# Thread policy, part 1 (see _runtime.py): idle OpenMP threads sleep instead of spinning.
# Our kernels' parallel regions alternate with OpenBLAS calls, whose own idle threads spin
# too; on a 2-core machine the two spinning pools starve each other (a training step went
# from 3 ms to 18 ms). Must be set before the OpenMP runtime loads; a user's value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from tensorgrad import _blas, autograd, random, testing
from tensorgrad._runtime import (
    _init_threads,
    get_num_threads,
    memory_allocated,
    set_num_threads,
    show_config,
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
from tensorgrad.graph import Graph, grad
from tensorgrad.ops import *
from tensorgrad.ops import __all__ as _ops_all
from tensorgrad.random import manual_seed
from tensorgrad.tensor import (
    Tensor,
    bool_,
    float16,
    float32,
    float64,
    from_numpy,
    int8,
    int16,
    int32,
    int64,
    is_tensor,
    tensor,
    uint8,
)

_init_threads()
# The GEMM library (numpy's OpenBLAS, else scipy's; $TENSORGRAD_BLAS overrides): _blas.py.
_blas.select()


def _optional(modname, names):
    """Import subpackages that may not exist yet in a partial build without failing."""
    import importlib
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        if e.name != modname:
            raise
        return None
    g = globals()
    for n in names:
        g[n] = getattr(mod, n)
    return mod


_optional("tensorgrad.ops.distance", ["cdist"])
_optional("tensorgrad.serialization", ["save", "load"])
nn = _optional("tensorgrad.nn", [])
optim = _optional("tensorgrad.optim", [])
data = _optional("tensorgrad.data", [])
neighbors = _optional("tensorgrad.neighbors", [])

__all__ = ["Tensor", "tensor", "from_numpy", "Function", "Context", "Graph", "grad",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "manual_seed",
           "set_num_threads", "get_num_threads", "show_config", "memory_allocated",
           "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "randn", "rand",
           "randint", "zeros_like", "ones_like", "full_like", "empty_like", "randn_like",
           "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "bool_", "is_tensor", "autograd", "testing", "random"] + list(_ops_all)
