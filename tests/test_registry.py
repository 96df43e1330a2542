"""Generic op tests, generated from the op registry (``tensorgrad/ops/registry.py``).

Every entry is checked on its own samples: values against its numpy reference (float32 and
float64), gradcheck and gradgradcheck in float64 when it declares them, and the same results
under 1 and 2 threads on inputs above the kernels' parallel threshold. A public op missing
from the registry fails ``test_every_public_op_is_registered``; a stale ``docs/ops.md`` fails
``test_docs_ops_md_is_generated_from_the_registry``.

Defects found by these tests are strict xfails in ``DEFECTS`` (the op modules are fixed
elsewhere); a fix turns the xfail into a failure, and its line here is then removed.
"""
import os

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad.ops import registry

TABLE = registry.table()
BY_NAME = {info.name: info for info in TABLE}
FLOAT32, FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)

# (test, op, sample desc or None for every sample) -> the defect, as found by the test. The
# known defects (narrow with a negative start, clamp with min > max, zero-size chunk, ...)
# were fixed in the op modules while these tests were written; none is open.
DEFECTS = {
}


def _marks(test, info, desc):
    reason = DEFECTS.get((test, info.name, desc)) or DEFECTS.get((test, info.name, None))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def _cases(test, dtypes, keep=lambda info, sample: True, big=False):
    """pytest params (info, dtype, sample) over every entry's samples, named op-dtype-sample."""
    params = []
    for info in TABLE:
        for dtype in dtypes:
            if dtype not in info.dtypes:
                continue
            rng = np.random.default_rng(0)
            for sample in info.sample_inputs(dtype, rng, big=big):
                if keep(info, sample):
                    params.append(pytest.param(
                        info, dtype, sample, id=f"{info.name}-{dtype.name}-{sample.desc}",
                        marks=_marks(test, info, sample.desc)))
    return params


# ---------------------------------------------------------------------------------- helpers
def _numpy(v):
    """The sample's arguments as the numpy reference takes them: Tensors become ndarrays."""
    if isinstance(v, tg.Tensor):
        return v.numpy()
    if isinstance(v, (list, tuple)):
        return type(v)(_numpy(u) for u in v)
    return v


def _assert_matches(out, expected, tolerances, path="output"):
    if isinstance(expected, (tuple, list)):
        assert isinstance(out, (tuple, list)) and len(out) == len(expected), \
            f"{path}: expected {len(expected)} outputs, got {out!r}"
        for i, (o, e) in enumerate(zip(out, expected)):
            _assert_matches(o, e, tolerances, f"{path}[{i}]")
        return
    assert isinstance(out, tg.Tensor), f"{path}: expected a Tensor, got {type(out).__name__}"
    actual, expected = out.numpy(), np.asarray(expected)
    assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
    rtol, atol = tolerances
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=path)


class _Slot(int):
    """Where a differentiable Tensor sat in a sample's arguments."""


def _template(v, leaves):
    """v with each float Tensor replaced by a _Slot; the Tensors (detached, in their own
    layout), requiring grad, are appended to ``leaves``."""
    if isinstance(v, tg.Tensor) and v.is_floating_point():
        leaves.append(v.detach().requires_grad_(True))
        return _Slot(len(leaves) - 1)
    if isinstance(v, (list, tuple)):
        return type(v)(_template(u, leaves) for u in v)
    return v


def _fill(v, tensors):
    if isinstance(v, _Slot):
        return tensors[v]
    if isinstance(v, (list, tuple)):
        return type(v)(_fill(u, tensors) for u in v)
    return v


def _seed(info):
    """Seed the generator before a call of an op that draws random numbers (dropout)."""
    if info.seed is not None:
        tg.manual_seed(info.seed)


def _as_function(info, sample):
    """(fn, leaves): the op as a function of the sample's float Tensors, returning its float
    outputs (max's indices and the like are dropped). A random op is reseeded at each call."""
    leaves = []
    args = _template(sample.args, leaves)

    def fn(*tensors):
        _seed(info)
        out = info.op(*_fill(args, tensors), **sample.kwargs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o for o in outs if o.is_floating_point())
    return fn, leaves


def test_gradcheck_takes_non_contiguous_inputs():
    # The numerical gradient once perturbed a flattened copy of a transposed input (all 0),
    # so a right gradient failed and a zero one passed.
    x = tg.from_numpy(np.random.default_rng(0).standard_normal((3, 2)).T)
    assert tg.testing.gradcheck(tg.exp, (x.requires_grad_(True),))

    class ZeroGradExp(tg.Function):
        @staticmethod
        def forward(ctx, t):
            return tg.exp(t)

        @staticmethod
        def backward(ctx, g):
            return g * 0

    with pytest.raises(tg.testing.GradcheckError):
        tg.testing.gradcheck(ZeroGradExp.apply, (x,))


def _gradable(info, sample):
    return info.supports_grad and sample.grad


# ----------------------------------------------------------------------------------- values
@pytest.mark.parametrize("info, dtype, sample", _cases("values", (FLOAT32, FLOAT64)))
def test_values_match_the_numpy_reference(info, dtype, sample):
    _seed(info)
    out = info.op(*sample.args, **sample.kwargs)
    _seed(info)
    expected = info.ref(*_numpy(sample.args), **sample.kwargs)
    _assert_matches(out, expected, info.tolerances[dtype])


# -------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("info, dtype, sample", _cases("gradcheck", (FLOAT64,), _gradable))
def test_gradcheck(info, dtype, sample):
    fn, leaves = _as_function(info, sample)
    assert tg.testing.gradcheck(fn, tuple(leaves))


def _gradgradable(info, sample):
    return info.supports_gradgrad and sample.grad


@pytest.mark.parametrize("info, dtype, sample",
                         _cases("gradgradcheck", (FLOAT64,), _gradgradable))
def test_gradgradcheck(info, dtype, sample):
    fn, leaves = _as_function(info, sample)
    assert tg.testing.gradgradcheck(fn, tuple(leaves))


# ------------------------------------------------------------------------------- bad calls
def _bad_calls():
    params = []
    for info in TABLE:
        if info.error_inputs is not None:
            for bad in info.error_inputs(FLOAT64, np.random.default_rng(0)):
                params.append(pytest.param(info, bad, id=f"{info.name}-{bad.desc}",
                                           marks=_marks("errors", info, bad.desc)))
    return params


@pytest.mark.parametrize("info, bad", _bad_calls())
def test_bad_calls_raise_errors_naming_the_op(info, bad):
    with pytest.raises(bad.error, match=f"^{info.name}: "):
        info.op(*bad.args)


# ---------------------------------------------------------------------------------- threads
def _run(info, sample, threads):
    """Outputs and (for differentiable entries) gradients, as ndarrays, under ``threads``."""
    tg.set_num_threads(threads)
    fn, leaves = _as_function(info, sample)
    with tg.enable_grad():
        outs = fn(*leaves)
    results = [o.numpy().copy() for o in outs]
    if _gradable(info, sample) and leaves:
        rng = np.random.default_rng(1)
        gouts = [tg.from_numpy(rng.standard_normal(o.shape).astype(o.numpy().dtype))
                 for o in outs]
        results += [g.numpy().copy() for g in tg.grad(outs, leaves, grad_outputs=gouts)]
    return results


@pytest.mark.parametrize("info, dtype, sample",
                         _cases("threads", (FLOAT32, FLOAT64),
                                lambda info, sample: info.thread_ulps is not None, big=True))
def test_same_results_with_one_and_two_threads(info, dtype, sample):
    one, two = _run(info, sample, 1), _run(info, sample, 2)
    for a, b in zip(one, two, strict=True):
        if info.thread_ulps == 0:
            np.testing.assert_array_equal(a, b)     # bitwise (nan equals nan)
        else:
            scale = np.max(np.abs(b), initial=0.0) * np.finfo(b.dtype).eps
            np.testing.assert_allclose(a, b, rtol=0, atol=info.thread_ulps * scale)


def test_big_samples_cross_the_parallel_threshold():
    from tensorgrad._kernels import runtime
    for family in ("elementwise", "reduce", "activation"):
        for info in (i for i in TABLE if i.family == family and i.thread_ulps is not None):
            sample = next(iter(info.sample_inputs(FLOAT64, np.random.default_rng(0), big=True)))
            sizes = [a.numel() for a in sample.args if isinstance(a, tg.Tensor)]
            assert max(sizes) > runtime.par_min(), info.name


# ---------------------------------------------------------------------------- the registry
# Public names that are not ops (so have no entry), each with why:
NOT_OPS = {
    # modules and classes
    # (data: the module tg.data, and Tensor.data, the detached view)
    "autograd", "data", "neighbors", "nn", "optim", "random", "testing",
    "Tensor", "Function", "Context", "Graph",
    # dtypes
    "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
    # factories and random numbers (no inputs to differentiate)
    "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "empty", "eye", "arange",
    "linspace", "rand", "randn", "randint", "zeros_like", "ones_like", "full_like",
    "empty_like", "randn_like", "manual_seed", "one_hot",
    # autograd machinery and runtime settings
    "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "is_tensor",
    "set_num_threads", "get_num_threads", "show_config", "memory_allocated", "save", "load",
    "backward", "detach", "detach_", "requires_grad_", "retain_grad",
    # Tensor attributes and queries
    "T", "mT", "dtype", "grad_fn", "is_leaf", "requires_grad", "shape", "ndim",
    "dim", "size", "stride", "numel", "nelement", "element_size", "nbytes", "data_ptr",
    "is_contiguous", "is_floating_point",
    # in-place updates (not recorded in the graph)
    "add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_", "clamp_",
    # conversions out of tensorgrad, and dtype conversions (aliases of the cast op)
    "numpy", "tolist", "item", "float", "double", "long", "int", "bool", "to", "type",
}


def _public_names():
    tensor_members = {n for n in dir(tg.Tensor) if not n.startswith("_")}
    return set(tg.__all__) | tensor_members | set(F.__all__)


def test_every_public_op_is_registered():
    names = _public_names()
    missing = sorted(names - set(BY_NAME) - NOT_OPS)
    assert not missing, f"public ops without a registry entry: {missing}"
    assert not NOT_OPS & set(BY_NAME), "a registered op is also listed as not an op"
    assert NOT_OPS <= names, f"NOT_OPS lists names that are gone: {NOT_OPS - names}"


def test_entries_are_the_public_ops():
    assert len(BY_NAME) == len(TABLE), "an op is registered twice"
    for info in TABLE:
        public = getattr(tg, info.name, None) or getattr(F, info.name)
        assert info.op is public, info.name
        assert info.family in registry.FAMILIES, info.name
        assert info.forward and info.vjp and info.kernel, info.name
        if not info.supports_grad:
            assert not info.supports_gradgrad, info.name


def test_formulas_come_from_the_function_docstrings():
    info = BY_NAME["mul"]
    assert (info.forward, info.vjp) == ("z = x * y", "gx = g * y, gy = g * x (the swap gate)")
    assert info.function.__doc__.startswith(info.forward)


def test_table_records():
    records = tg.ops.table()
    assert [r.name for r in records] == [info.name for info in TABLE]
    assert {"name", "family", "forward", "vjp", "kernel"} <= set(vars(records[0]))


DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


@pytest.mark.skipif(not os.path.isdir(DOCS), reason="no docs/ next to tests/")
def test_docs_ops_md_is_generated_from_the_registry():
    with open(os.path.join(DOCS, "ops.md"), encoding="utf-8") as f:
        assert f.read() == registry.markdown(), \
            "docs/ops.md is stale: run `python -m tensorgrad ops --markdown > docs/ops.md`"
