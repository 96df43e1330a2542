"""Interop with numpy and PyTorch, both ways: the array protocol (NumPy 2's ``copy=``),
DLPack (zero-copy, strided tensors included), numpy's reduction functions on a Tensor,
torch.tensor / torch.as_tensor of a Tensor, dtype rules for foreign data, pickling, and
foreign memory used as an ordinary autograd leaf.

Every test runs with warnings as errors: a conversion that warns (e.g. about ``__array__``'s
``copy`` keyword) is a bug here. The torch tests skip when torch is not installed.
"""
import pickle

import numpy as np
import pytest

import tensorgrad as tg

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def shares(a, b):
    """a and b (Tensors, ndarrays or torch tensors) use the same memory."""
    def arr(x):
        if isinstance(x, tg.Tensor):
            return x.numpy()
        return x if isinstance(x, np.ndarray) else x.numpy()
    return np.shares_memory(arr(a), arr(b))


# ----------------------------------------------------------------------------------------------
# numpy: __array__ (NumPy 2 semantics)
# ----------------------------------------------------------------------------------------------
def test_asarray_shares_memory_and_array_copies():
    t = tg.arange(6.0).reshape(2, 3)
    a = np.asarray(t)
    assert shares(a, t) and a.dtype == np.float32
    a[0, 0] = 7.0
    assert t[0, 0].item() == 7.0
    assert not shares(np.array(t), t)                        # np.array copies by default
    assert shares(np.array(t, copy=False), t)
    assert shares(np.asarray(t.T), t)                         # strided: still no copy


def test_array_copy_keyword_follows_numpy2():
    t = tg.ones(2, 3)
    with pytest.raises(ValueError, match="float64.*copy=False"):
        np.array(t, dtype=np.float64, copy=False)
    c = np.array(t, dtype=np.float64, copy=None)              # a copy is needed: made
    assert c.dtype == np.float64 and not shares(c, t)
    assert shares(np.array(t, dtype=np.float32, copy=None), t)   # not needed: not made
    assert not shares(t.__array__(copy=True), t)              # copy=True always copies
    assert not shares(t.__array__(np.float32, copy=True), t)
    assert shares(t.__array__(), t)
    np.testing.assert_array_equal(np.asarray(t, dtype=np.int64), np.ones((2, 3), np.int64))


# ----------------------------------------------------------------------------------------------
# numpy: reduction functions on a Tensor (numpy calls t.sum(axis=..., out=None, ...))
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [np.sum, np.mean, np.max, np.min, np.argmax, np.argmin])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1}, {"axis": -1, "keepdims": True},
                                {"keepdims": True}])
def test_numpy_reductions_on_a_tensor_match_numpy(fn, kw):
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    r = fn(tg.from_numpy(a), **kw)
    assert isinstance(r, tg.Tensor)          # numpy hands back what the method returns
    expected = fn(a, **kw)
    assert r.shape == np.shape(expected) and r.dtype == expected.dtype.type
    np.testing.assert_allclose(r.numpy(), expected, rtol=1e-5)


def test_numpy_reductions_on_integer_tensors_and_with_dtype():
    a = np.arange(12).reshape(3, 4)
    t = tg.from_numpy(a)
    assert np.sum(t).item() == 66 and np.sum(t).dtype == tg.int64
    assert np.max(t, axis=0).tolist() == [8, 9, 10, 11]
    assert np.max(t, keepdims=True).shape == (1, 1)
    assert np.mean(t).item() == pytest.approx(5.5)
    s = np.sum(tg.ones(3), dtype=np.float64)
    assert s.dtype == tg.float64 and s.item() == 3.0
    assert np.mean(t, dtype=np.float64).dtype == tg.float64


def test_numpy_reductions_stay_differentiable():
    x = tg.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    np.mean(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 0.25))
    x.grad = None
    np.max(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0], [1.0, 0.0]])


def test_axis_and_keepdims_are_aliases_of_dim_and_keepdim():
    a = np.random.default_rng(1).standard_normal((2, 3, 4))
    t = tg.from_numpy(a)
    for name in ["sum", "mean"]:
        by_dim = getattr(t, name)(dim=1, keepdim=True)
        by_axis = getattr(t, name)(axis=1, keepdims=True)
        assert by_axis.shape == (2, 1, 4)
        np.testing.assert_array_equal(by_axis.numpy(), by_dim.numpy())
    np.testing.assert_allclose(tg.logsumexp(t, axis=2).numpy(),
                               tg.logsumexp(t, dim=2).numpy())
    assert tg.argmax(t, axis=0).tolist() == np.argmax(a, axis=0).tolist()
    # PyTorch's max(dim=) gives (values, indices); numpy's spelling gives numpy's result
    values, indices = t.max(dim=2)
    assert indices.tolist() == np.argmax(a, axis=2).tolist()
    np.testing.assert_array_equal(t.max(axis=2).numpy(), values.numpy())
    np.testing.assert_array_equal(t.min(axis=0).numpy(), a.min(axis=0))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "argmax", "argmin",
                                  "logsumexp"])
def test_dim_and_axis_together_is_a_clear_error(name):
    t = tg.ones(2, 3)
    with pytest.raises(TypeError, match=f"{name}: got both dim=0 and axis=1"):
        getattr(tg, name)(t, dim=0, axis=1)
    with pytest.raises(TypeError, match=f"{name}: got keepdim=True and keepdims=False"):
        getattr(tg, name)(t, 0, keepdim=True, keepdims=False)


def test_out_is_refused_unless_none():
    with pytest.raises(TypeError, match="sum: out= is not supported"):
        np.sum(tg.ones(3), out=np.empty(()))
    with pytest.raises(TypeError, match="max: out= is not supported"):
        tg.ones(3).max(out=tg.zeros(()))


# ----------------------------------------------------------------------------------------------
# DLPack with numpy
# ----------------------------------------------------------------------------------------------
def test_np_from_dlpack_shares_memory_both_ways():
    t = tg.arange(12.0).reshape(3, 4)
    assert t.__dlpack_device__() == (1, 0)
    for view in [t, t.T, t[:, 1::2], t[1]]:
        a = np.from_dlpack(view)
        assert shares(a, t) and a.shape == view.shape and a.strides == view.numpy().strides
        a[0, ...] = -1.0                     # a write through numpy shows in the tensor
        np.testing.assert_array_equal(view[0].numpy(), -1.0)
    a = np.arange(12.0).reshape(4, 3)
    for view in [a, a.T, a[::2, 1:]]:
        u = tg.from_dlpack(view)
        assert shares(u, a) and u.shape == view.shape and u.dtype == tg.float64
        u[0] = 5.0                           # a write through the tensor shows in numpy
        assert (view[0] == 5.0).all()


def test_from_dlpack_of_a_tensor_and_of_non_exporters():
    t = tg.ones(3, dtype=tg.int32)
    u = tg.from_dlpack(t)
    assert shares(u, t) and u.dtype == tg.int32 and u is not t
    with pytest.raises(TypeError, match="from_dlpack expects an object with __dlpack__"):
        tg.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="from_dlpack: dtype float16.*astype"):
        tg.from_dlpack(np.ones(2, np.float16))


def test_dlpack_export_refusals_are_clear():
    with pytest.raises(BufferError, match="requires grad.*detach"):
        np.from_dlpack(tg.ones(2, requires_grad=True))
    p = tg.ones(2, requires_grad=True)
    assert shares(np.from_dlpack(p.detach()), p)
    with pytest.raises(BufferError, match="negative strides.*contiguous"):
        np.from_dlpack(tg.arange(4.0)[::-1])
    np.testing.assert_array_equal(np.from_dlpack(tg.arange(4.0)[::-1].contiguous()),
                                  [3.0, 2.0, 1.0, 0.0])


class _LegacyConsumer:
    """An exporter wrapper that asks for DLPack < 1.0 (no max_version), like old consumers."""

    def __init__(self, t):
        self.t = t

    def __dlpack__(self, stream=None):
        return self.t.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()


def test_read_only_tensors_export_through_dlpack_1_or_refuse_clearly():
    e = tg.arange(3.0).expand(2, 3)          # a broadcast view: read-only memory
    a = np.from_dlpack(e)                    # numpy asks for DLPack 1.0: flagged read-only
    assert shares(a, e) and not a.flags.writeable and a.strides[0] == 0
    with pytest.raises(BufferError, match="read-only.*DLPack < 1.0.*clone"):
        np.from_dlpack(_LegacyConsumer(e))
    np.testing.assert_array_equal(np.from_dlpack(_LegacyConsumer(e.clone())), a)


# ----------------------------------------------------------------------------------------------
# DLPack and conversions with torch
# ----------------------------------------------------------------------------------------------
def test_torch_from_dlpack_shares_memory_both_ways(torch):
    t = tg.arange(12.0).reshape(3, 4)
    for view in [t, t.T, t[:, 1::2], t[2], t[:1].expand(2, 4)]:
        x = torch.from_dlpack(view)
        assert x.shape == view.shape and x.stride() == view.stride() and shares(x, t)
    x = torch.from_dlpack(t.T)
    x[0, 1] = 100.0                              # torch writes, tensorgrad sees
    assert t[1, 0].item() == 100.0
    t[2, 3] = -3.0                               # tensorgrad writes, torch sees
    assert x[3, 2].item() == -3.0


def test_tg_from_dlpack_of_torch_shares_memory_both_ways(torch):
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    for view in [x, x.T, x[:, ::2], x[1]]:
        u = tg.from_dlpack(view)
        assert u.shape == tuple(view.shape) and u.stride() == view.stride()
        assert u.dtype == tg.float64 and shares(u, x)
    u = tg.from_dlpack(x.T)
    u[0, 2] = 50.0
    assert x[2, 0].item() == 50.0
    x[1, 3] = 7.0
    assert u[3, 1].item() == 7.0
    dtypes = {torch.float32: tg.float32, torch.int64: tg.int64, torch.int32: tg.int32,
              torch.bool: tg.bool_, torch.uint8: tg.uint8}
    for src, dst in dtypes.items():
        assert tg.from_dlpack(torch.zeros(2, dtype=src)).dtype == dst


def test_tg_from_dlpack_refuses_torch_tensors_that_require_grad_or_are_float16(torch):
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(BufferError, match="from_dlpack: the torch.Tensor requires grad.*"
                                          r"x\.detach\(\)"):
        tg.from_dlpack(w)
    assert shares(tg.from_dlpack(w.detach()), w.detach())
    with pytest.raises(TypeError, match="from_dlpack: dtype float16"):
        tg.from_dlpack(torch.ones(2, dtype=torch.float16))


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64, tg.int64, tg.int32, tg.bool_])
@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_torch_tensor_and_as_tensor_of_a_tensor(torch, shape, dtype):
    a = np.asarray(np.arange(int(np.prod(shape))).reshape(shape) % 3, dtype)
    t = tg.from_numpy(a)
    for convert in (torch.tensor, torch.as_tensor):
        x = convert(t)
        assert tuple(x.shape) == shape and x.numpy().dtype == a.dtype
        np.testing.assert_array_equal(x.numpy(), a)
    assert shares(torch.as_tensor(t), t)         # as_tensor: no copy
    assert not shares(torch.tensor(t), t)        # tensor: always a copy


def test_tg_tensor_of_torch_keeps_dtype_and_copies(torch):
    for src, dst in [(torch.float64, tg.float64), (torch.float32, tg.float32),
                     (torch.int32, tg.int32), (torch.int64, tg.int64)]:
        x = torch.arange(4, dtype=src)
        t = tg.tensor(x)
        assert t.dtype == dst and t.tolist() == x.tolist() and not shares(t, x)
    assert tg.tensor(torch.tensor(2.5, dtype=torch.float64)).dtype == tg.float64
    w = torch.ones(2, requires_grad=True)        # a copy: the graph stays behind
    t = tg.tensor(w)
    assert t.tolist() == [1.0, 1.0] and not t.requires_grad and not shares(t, w.detach())
    assert tg.tensor(torch.ones(2, dtype=torch.float64), dtype=tg.float32).dtype == tg.float32


# ----------------------------------------------------------------------------------------------
# dtype rules for foreign data
# ----------------------------------------------------------------------------------------------
def test_tensor_keeps_the_dtype_of_data_that_has_one():
    assert tg.tensor(np.ones(2)).dtype == tg.float64
    assert tg.tensor(np.float64(2.0)).dtype == tg.float64
    assert tg.tensor(np.int32(3)).dtype == tg.int32
    assert tg.tensor(tg.ones(2, dtype=tg.float64)).dtype == tg.float64
    assert tg.tensor([1.0, 2.0]).dtype == tg.float32          # Python data: the defaults
    assert tg.tensor([1, 2]).dtype == tg.int64


def test_float16_and_big_endian_are_refused_at_creation_with_the_fix():
    with pytest.raises(TypeError, match=r"from_numpy: dtype float16.*a\.astype\(np\.float32\)"):
        tg.from_numpy(np.ones(3, np.float16))
    with pytest.raises(TypeError, match=r"from_numpy: dtype >f4 \(float32\).*byte order.*"
                                        r"newbyteorder\('='\)"):
        tg.from_numpy(np.ones(3, ">f4"))
    with pytest.raises(TypeError, match=r"from_numpy: dtype >i8"):
        tg.from_numpy(np.ones(3, ">i8"))
    with pytest.raises(TypeError, match="from_numpy: unsupported dtype complex64"):
        tg.from_numpy(np.ones(3, np.complex64))
    with pytest.raises(TypeError, match="tensor: dtype float16"):
        tg.tensor(np.ones(3, np.float16))
    with pytest.raises(TypeError, match="zeros: dtype float16"):
        tg.zeros(3, dtype=np.float16)
    with pytest.raises(TypeError, match="cast: dtype float16"):
        tg.ones(3).to(np.float16)
    assert tg.tensor(np.ones(3, np.float16), dtype=tg.float32).dtype == tg.float32


def test_tensor_converts_big_endian_data_to_native_order():
    a = np.arange(4.0, dtype=">f8")
    t = tg.tensor(a)
    assert t.dtype == tg.float64 and t.numpy().dtype.isnative
    assert (t * 2.0).tolist() == [0.0, 2.0, 4.0, 6.0]     # usable by the kernels
    assert tg.tensor(np.arange(3, dtype=">i4")).numpy().dtype == np.dtype(np.int32)
    u = tg.from_numpy(a.astype(a.dtype.newbyteorder("=")))   # the fix the error suggests
    assert u.sum().item() == 6.0


# ----------------------------------------------------------------------------------------------
# pickle
# ----------------------------------------------------------------------------------------------
def test_tensors_pickle_with_values_dtype_and_requires_grad():
    for t in [tg.tensor([[1.5, 2.0]], dtype=tg.float64, requires_grad=True),
              tg.arange(6).reshape(2, 3).T, tg.tensor(True), tg.ones(0, 3),
              tg.ones(2) > 0.0]:
        u = pickle.loads(pickle.dumps(t))
        assert type(u) is tg.Tensor and u.dtype == t.dtype and u.shape == t.shape
        assert u.requires_grad == t.requires_grad and u.is_leaf and u.grad_fn is None
        np.testing.assert_array_equal(u.numpy(), t.numpy())
        assert not shares(u, t)


def test_pickle_drops_grad_and_keeps_subclasses():
    w = tg.nn.Parameter(tg.ones(3))
    (w * 2.0).sum().backward()
    u = pickle.loads(pickle.dumps(w))
    assert type(u) is tg.nn.Parameter and u.requires_grad and u.grad is None
    (u * 3.0).sum().backward()                   # an ordinary leaf again
    assert u.grad.tolist() == [3.0, 3.0, 3.0]


def test_pickling_a_non_leaf_that_requires_grad_asks_for_detach():
    x = tg.ones(2, requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"pickle: cannot pickle a non-leaf.*MulBackward.*"
                                           r"t\.detach\(\)"):
        pickle.dumps(y)
    u = pickle.loads(pickle.dumps(y.detach()))
    assert u.tolist() == [2.0, 2.0] and not u.requires_grad


# ----------------------------------------------------------------------------------------------
# foreign memory is an ordinary leaf
# ----------------------------------------------------------------------------------------------
def test_from_numpy_float64_is_an_ordinary_leaf():
    a = np.arange(6.0).reshape(2, 3)
    x = tg.from_numpy(a.T).requires_grad_()      # strided, float64
    assert x.is_leaf and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * a.T)
    assert x.grad.dtype == tg.float64
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(2, 3))   # source untouched


def test_from_dlpack_of_torch_is_an_ordinary_leaf(torch):
    src = torch.tensor([[1.0, -2.0, 0.5], [-1.0, -1.0, 3.0]])
    x = tg.from_dlpack(src).requires_grad_()
    w = tg.tensor([[1.0, -1.0], [1.0, 1.0], [1.0, 0.0]], requires_grad=True)
    (x @ w).relu().sum().backward()
    xs, ws = src.numpy(), w.detach().numpy()
    mask = (xs @ ws > 0).astype(np.float32)
    np.testing.assert_allclose(x.grad.numpy(), mask @ ws.T)
    np.testing.assert_allclose(w.grad.numpy(), xs.T @ mask)
    assert not src.requires_grad and src[0, 0].item() == 1.0    # torch's side is untouched
