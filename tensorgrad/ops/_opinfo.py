"""What a registry entry is: ``OpInfo``, its default dtypes and tolerances, and how its
formulas are read from a Function's docstring (``FORWARD;   VJP``)."""
import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["FLOAT_DTYPES", "TOLERANCES", "OpInfo"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Value tolerances (rtol, atol) against the numpy reference, which computes in the inputs'
# dtype: float32 is loose (numpy and our kernels round differently), float64 nearly exact.
TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-10, 1e-12)}


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """Everything about one public op: its formulas, implementation and how to test it.

    ``sample_inputs(dtype, rng, big=False)`` yields ``Sample``s; with ``big=True`` it yields
    inputs large enough for the kernels to run their parallel loops (the thread-invariance
    test); ``error_inputs(dtype, rng)`` yields ``BadCall``s. ``ref`` is the numpy reference,
    called with ndarrays in place of Tensors; it computes in the inputs' dtype, so its result
    also gives the expected dtype.
    ``thread_ulps`` is 0 when results must be bitwise equal under any thread count (our own
    kernels); for BLAS-backed ops (BLAS may split sums by thread count) it is the tolerance,
    in units of eps times the largest magnitude; None for ops that run no threaded code
    (numpy views and copies).
    ``seed``: for ops that draw random numbers (dropout), the generic tests call
    ``tg.manual_seed(seed)`` before every call of the op and of its reference, so both see
    the same draws; None for deterministic ops.
    """
    name: str
    family: str
    forward: str
    vjp: str
    function: type | None
    kernel: str
    op: Callable
    sample_inputs: Callable
    ref: Callable
    dtypes: tuple = FLOAT_DTYPES
    supports_grad: bool = True
    supports_gradgrad: bool = True
    thread_ulps: float | None = 0
    error_inputs: Callable | None = None
    note: str = ""
    tolerances: dict = dataclasses.field(default_factory=lambda: dict(TOLERANCES))
    seed: int | None = None


# ---------------------------------------------------------------------------------------------
# formulas from docstrings
# ---------------------------------------------------------------------------------------------
def _formulas(name, text):
    """(forward, vjp) from ``"FORWARD;   VJP"``: the first paragraph, split at its first ';'."""
    first = " ".join(text.strip().split("\n\n")[0].split())
    forward, sep, vjp = first.partition(";")
    if not sep:
        raise ValueError(f"registry: the formula of {name!r} is not 'FORWARD;   VJP': {first!r}")
    return forward.strip(), vjp.strip()
