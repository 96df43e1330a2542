"""Building blocks of the registry: ``Workload``, ``Skip``, the result check, library probes."""
import dataclasses
import importlib
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["ENGINES", "ENGINE_LABELS", "Skip", "Workload", "compare", "need_sklearn",
           "need_tg", "need_torch"]

# Column order of every table; tensorgrad is the engine every other one is compared with.
ENGINES = ("tensorgrad", "numpy", "torch", "sklearn", "scipy", "faiss")
ENGINE_LABELS = {"tensorgrad": "tensorgrad", "numpy": "numpy", "torch": "torch",
                 "sklearn": "scikit-learn", "scipy": "scipy", "faiss": "FAISS"}


class Skip(Exception):
    """Raised by an implementation's factory when it cannot run here (library or API missing)."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark: inputs made by ``data``, timed through each engine's factory.

    name, group   registry key and family (``--only`` accepts either)
    title         what is computed, e.g. "z = x*y, forward + backward"
    params/quick  size parameters of the full and the ``--quick`` run
    data          ``data(params, rng) -> dict`` of numpy inputs (untimed, never mutated)
    impls         ``{engine: make}``; ``make(data, params) -> run``, ``run() -> dict`` of
                  results (arrays or floats) with the same keys for every engine
    size          ``size(params) -> str`` label for the tables
    rtol, atol    float check: |got - ref| <= atol·max|ref| + rtol·|ref| elementwise
    int_mismatch  integer results (labels): largest tolerated fraction of differing entries
    per, per_unit report time per ``per`` units (the tiny-op chain reports µs per op)
    memory        also measure peak memory of one call
    check_calls   compare the results of this many consecutive calls (stateful workloads:
                  the second call checks state carried over, e.g. momentum buffers)
    requires      tensorgrad attributes needed (``"nn.functional.cross_entropy"``); if one
                  is missing the row is skipped with that reason
    floor         engines whose run is a cost floor rather than the same computation (the
                  GEMMs of a training step alone): timed, ratios reported, results not
                  compared
    flops         ``flops(params) -> float``: floating-point operations per call; the report
                  then gives each engine's GFLOP/s against the machine's sgemm peak
    """
    name: str
    group: str
    title: str
    params: Mapping
    quick: Mapping
    data: Callable
    impls: Mapping
    size: Callable
    rtol: float = 1e-3
    atol: float = 1e-4
    int_mismatch: float = 0.0
    per: int = 1
    per_unit: str = "call"
    memory: bool = False
    check_calls: int = 1
    requires: tuple = ()
    floor: tuple = ()
    flops: Callable | None = None

    def sizes(self, quick):
        return dict(self.quick if quick else self.params)

    def missing(self):
        """Why this workload cannot run with the installed tensorgrad (None if it can)."""
        for path in self.requires:
            try:
                need_tg(path)
            except Skip as e:
                return str(e)
        return None

    def with_params(self, **changes):
        """A copy whose full and quick sizes both get ``changes`` (tests use tiny sizes)."""
        return dataclasses.replace(self, params={**self.params, **changes},
                                   quick={**self.quick, **changes})

    def with_impl(self, engine, make):
        """A copy with one implementation replaced (tests plant a wrong one)."""
        return dataclasses.replace(self, impls={**self.impls, engine: make})


def compare(got, ref, rtol=1e-3, atol=1e-4, int_mismatch=0.0):
    """None when ``got`` matches ``ref`` (dicts of results), else a one-line description
    of the worst mismatch. Floats: elementwise |got - ref| <= atol·max|ref| + rtol·|ref|,
    and non-finite values must sit at the same places. Integers: at most a fraction
    ``int_mismatch`` of the entries may differ."""
    for key, r in ref.items():
        if key not in got:
            return f"{key}: missing from the results"
        a = np.asarray(got[key])
        b = np.asarray(r)
        if a.shape != b.shape:
            return f"{key}: shape {a.shape}, expected {b.shape}"
        if b.dtype.kind in "iub" and a.dtype.kind in "iub":
            bad = np.count_nonzero(a != b)
            if bad > int_mismatch * b.size:
                i = np.unravel_index(np.argmax(a != b), b.shape)
                return (f"{key}: {bad} of {b.size} entries differ (first at {tuple(i)}: "
                        f"{a[i]} vs {b[i]})")
            continue
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        fa, fb = np.isfinite(a), np.isfinite(b)
        if not np.array_equal(fa, fb):
            i = np.unravel_index(np.argmax(fa != fb), b.shape)
            return f"{key}: non-finite value at {tuple(i)}: {a[i]} vs {b[i]}"
        if not fb.any():
            continue
        a, b = np.where(fb, a, 0.0), np.where(fb, b, 0.0)
        err = np.abs(a - b)
        tol = atol * np.max(np.abs(b)) + rtol * np.abs(b)
        if np.any(err > tol):
            i = np.unravel_index(np.argmax(err - tol), b.shape)
            return (f"{key}: max |diff| {err.max():.3g} (at {tuple(i)}: {a[i]:.6g} vs "
                    f"{b[i]:.6g}, tolerance {tol[i]:.3g})")
    return None


def need_torch():
    """torch, with the thread count tensorgrad uses (raises Skip when torch is missing)."""
    try:
        import torch
    except ImportError as e:
        raise Skip(f"torch is not installed ({e}); add its CPU build (README, "
                   "Benchmarks)") from None
    import tensorgrad as tg
    torch.set_num_threads(tg.get_num_threads())
    return torch


def autograd_engine(name):
    """The module an autograd workload runs on: ``"tensorgrad"`` or ``"torch"``.

    Where the two APIs agree (from_numpy, requires_grad_, relu, tanh, @, backward, .grad,
    .detach().numpy(), optim.SGD/Adam), a workload is written once and run on both.
    """
    if name == "torch":
        return need_torch()
    import tensorgrad
    return tensorgrad


def need_sklearn():
    try:
        return importlib.import_module("sklearn")
    except ImportError as e:
        raise Skip(f"scikit-learn is not installed ({e})") from None


def need_tg(path):
    """The tensorgrad attribute at ``path`` ("nn.functional.cross_entropy"), or Skip."""
    import tensorgrad as tg
    obj = tg
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise Skip(f"this tensorgrad has no tg.{path}")
    return obj
