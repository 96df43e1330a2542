"""Everything API.md lists under "Tensors": constructors, factories, attributes, methods,
view-vs-reshape semantics, in-place ops and their version checks, indexing, chunk / split /
cat / stack / gather, comparisons, and each op being available as a Tensor method.
"""
import numpy as np
import pytest

import tensorgrad as tg


# ----------------------------------------------------------------------------------------------
# construction
# ----------------------------------------------------------------------------------------------
def test_tensor_from_python_data_and_default_dtypes():
    assert tg.tensor(3.0).dtype == tg.float32 and tg.tensor(3.0).shape == ()
    assert tg.tensor(3).dtype == tg.int64
    assert tg.tensor([True, False]).dtype == tg.bool_
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.shape == (2, 2) and t.dtype == tg.float32
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert tg.tensor([1, 2.5]).dtype == tg.float32
    assert tg.tensor([1, 2], dtype=tg.float64).dtype == tg.float64
    assert tg.tensor([1.0], dtype="float64").dtype == tg.float64
    assert tg.tensor(np.ones(2)).dtype == tg.float64          # an ndarray keeps its dtype
    assert tg.tensor(np.ones(2, np.float32)).dtype == tg.float32


def test_tensor_copies_and_from_numpy_shares():
    a = np.ones(3, np.float32)
    t = tg.tensor(a)
    a[0] = 7.0
    assert t.tolist() == [1.0, 1.0, 1.0]
    s = tg.from_numpy(a)
    a[1] = 9.0
    assert s.tolist() == [7.0, 9.0, 1.0]
    s.numpy()[2] = -1.0
    assert a[2] == -1.0
    assert np.shares_memory(s.numpy(), a)
    u = tg.tensor(s)                            # from a Tensor: a copy
    assert not np.shares_memory(u.numpy(), a)
    with pytest.raises(TypeError):
        tg.from_numpy([1.0, 2.0])


def test_tensor_requires_grad_flag():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None
    f = tg.tensor([1.0], dtype=tg.float64, requires_grad=True)
    assert f.requires_grad and f.dtype == tg.float64


def test_numpy_shares_memory_with_the_tensor():
    t = tg.ones(2, 3)
    n = t.numpy()
    n[0, 0] = 5.0
    assert t[0, 0].item() == 5.0
    assert np.shares_memory(t.T.numpy(), n)
    assert np.asarray(t) is n or np.shares_memory(np.asarray(t), n)


# ----------------------------------------------------------------------------------------------
# factories
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory,value", [(tg.zeros, 0.0), (tg.ones, 1.0)])
def test_zeros_ones_shapes_and_dtypes(factory, value):
    for args in [(2, 3), ((2, 3),), ([2, 3],)]:
        t = factory(*args)
        assert t.shape == (2, 3) and t.dtype == tg.float32
        assert np.all(t.numpy() == value)
    assert factory(()).shape == ()
    assert factory(4).shape == (4,)
    assert factory(2, dtype=tg.float64).dtype == tg.float64
    assert factory(2, dtype=tg.int64).dtype == tg.int64
    t = factory(2, 2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_full_empty_eye_arange():
    f = tg.full((2, 3), 1.5)
    assert f.shape == (2, 3) and f.dtype == tg.float32 and np.all(f.numpy() == 1.5)
    assert tg.full((2,), 3).dtype == tg.int64                   # as in PyTorch
    assert tg.full([2, 2], 0.5, dtype=tg.float64, requires_grad=True).requires_grad
    e = tg.empty(3, 4)
    assert e.shape == (3, 4) and e.dtype == tg.float32
    assert tg.empty((2, 2), dtype=tg.float64).dtype == tg.float64
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    assert tg.eye(2, 3).shape == (2, 3) and tg.eye(2, dtype=tg.float64).dtype == tg.float64
    assert tg.arange(5).tolist() == [0, 1, 2, 3, 4] and tg.arange(5).dtype == tg.int64
    assert tg.arange(2, 8, 3).tolist() == [2, 5]
    a = tg.arange(0, 1, 0.25)
    assert a.dtype == tg.float32 and a.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tg.arange(3, dtype=tg.float64).dtype == tg.float64


def test_random_factories_and_manual_seed():
    tg.manual_seed(123)
    a, b = tg.randn(3, 4), tg.rand(5)
    tg.manual_seed(123)
    c, d = tg.randn(3, 4), tg.rand(5)
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    np.testing.assert_array_equal(b.numpy(), d.numpy())
    assert a.dtype == tg.float32 and a.shape == (3, 4)
    assert tg.randn((2, 2)).shape == (2, 2)
    assert not np.array_equal(tg.randn(3, 4).numpy(), a.numpy())
    r = tg.rand(10000, dtype=tg.float64)
    assert r.dtype == tg.float64 and 0.0 <= r.numpy().min() and r.numpy().max() < 1.0
    n = tg.randn(20000).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    g = tg.randn(2, requires_grad=True)
    assert g.requires_grad and g.is_leaf


def test_like_factories():
    x = tg.randn(2, 3, dtype=tg.float64, requires_grad=True)
    z = tg.zeros_like(x)
    o = tg.ones_like(x)
    assert z.shape == o.shape == (2, 3) and z.dtype == o.dtype == tg.float64
    assert not z.requires_grad and np.all(z.numpy() == 0) and np.all(o.numpy() == 1)
    assert tg.ones_like(x, dtype=tg.float32).dtype == tg.float32
    assert tg.zeros_like(x, requires_grad=True).requires_grad


def test_factory_errors():
    with pytest.raises(ValueError, match="zeros"):
        tg.zeros(-1, 2)
    with pytest.raises(TypeError, match="ones"):
        tg.ones("a")
    with pytest.raises(TypeError, match="randn"):
        tg.randn(2.5)                               # a float is not a size (PyTorch agrees)


# ----------------------------------------------------------------------------------------------
# attributes
# ----------------------------------------------------------------------------------------------
def test_attributes():
    x = tg.randn(2, 3, 4, requires_grad=True)
    assert x.shape == (2, 3, 4) and isinstance(x.shape, tuple)
    assert x.dtype == tg.float32 and x.ndim == 3
    assert x.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(x.T.numpy(), x.numpy().T)
    assert tg.ones(3).T.shape == (3,)
    y = x * 2.0
    assert y.grad_fn is not None and not y.is_leaf and y.requires_grad
    assert x.grad_fn is None and x.is_leaf
    assert y.sum().grad_fn is not None


def test_data_is_detached_and_shares_memory():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert isinstance(d, tg.Tensor) and not d.requires_grad and d.grad_fn is None
    d.numpy()[0] = 10.0
    assert x.tolist() == [10.0, 2.0]
    y = (x * 3.0).data
    assert y.grad_fn is None and y.tolist() == [30.0, 6.0]


def test_grad_attribute_is_a_tensor_after_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert x.grad is None
    (x * x).sum().backward()
    assert isinstance(x.grad, tg.Tensor) and x.grad.tolist() == [2.0, 4.0]
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype


# ----------------------------------------------------------------------------------------------
# methods
# ----------------------------------------------------------------------------------------------
def test_item_tolist_sizes():
    assert tg.tensor(2.5).item() == 2.5 and isinstance(tg.tensor(2.5).item(), float)
    assert tg.tensor([[7]]).item() == 7 and isinstance(tg.tensor([[7]]).item(), int)
    with pytest.raises(ValueError, match="item"):
        tg.ones(2).item()
    assert tg.tensor([[1, 2]]).tolist() == [[1, 2]]
    assert tg.tensor(3.0).tolist() == 3.0
    t = tg.ones(3, 5)
    assert t.element_size() == 4 and tg.ones(1, dtype=tg.float64).element_size() == 8
    assert tg.ones(1, dtype=tg.int64).element_size() == 8
    assert t.nelement() == t.numel() == 15
    assert t.element_size() * t.nelement() == t.numpy().nbytes
    assert tg.ones(()).numel() == 1 and tg.ones(0, 3).numel() == 0


def test_contiguous():
    a = tg.arange(12.0).reshape(3, 4)
    assert a.is_contiguous()
    t = a.T
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.tolist() == t.tolist()
    assert not np.shares_memory(c.numpy(), a.numpy())
    assert a.contiguous() is a                               # already contiguous: no copy
    assert not a[:, 1:3].is_contiguous() and a[1:].is_contiguous()


def test_view_never_copies_and_raises_on_noncontiguous():
    a = tg.arange(24.0)
    v = a.view(2, 3, 4)
    assert v.shape == (2, 3, 4) and np.shares_memory(v.numpy(), a.numpy())
    assert a.view((4, 6)).shape == (4, 6) and a.view(-1, 8).shape == (3, 8)
    v.numpy()[0, 0, 0] = 100.0
    assert a[0].item() == 100.0
    with pytest.raises(RuntimeError, match="view"):
        v.transpose(0, 2).view(24)
    with pytest.raises(RuntimeError, match="reshape"):
        v[:, :2].view(-1)
    with pytest.raises(ValueError):
        a.view(5, 5)
    with pytest.raises(ValueError, match="-1"):
        a.view(-1, -1)


def test_reshape_copies_only_when_it_must():
    a = tg.arange(12.0).view(3, 4)
    r = a.reshape(4, 3)
    assert np.shares_memory(r.numpy(), a.numpy())
    assert np.shares_memory(a.reshape((2, -1)).numpy(), a.numpy())
    t = a.T.reshape(-1)
    assert not np.shares_memory(t.numpy(), a.numpy())
    assert t.tolist() == a.numpy().T.reshape(-1).tolist()
    assert a.reshape(3, 4) is a
    # a reshape that is a view follows later writes; a copy does not
    a.numpy()[0, 0] = -5.0
    assert r[0, 0].item() == -5.0 and t[0].item() == 0.0


def test_detach_and_requires_grad_():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), y.numpy())
    z = tg.tensor([1.0])
    assert z.requires_grad_() is z and z.requires_grad
    z.requires_grad_(False)
    assert not z.requires_grad
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)                  # only on leaves
    with pytest.raises(TypeError):
        tg.tensor([1, 2]).requires_grad_()


def test_backward_gradient_retain_and_create_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(tg.tensor([1.0, 0.5]), retain_graph=True)
    assert x.grad.tolist() == [2.0, 2.0]
    y.backward(gradient=tg.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [4.0, 6.0]                    # accumulates
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward(tg.tensor([1.0, 1.0]))
    s = tg.tensor(3.0, requires_grad=True)
    (s ** 3).backward(create_graph=True)
    g = s.grad
    assert g.item() == 27.0 and g.requires_grad
    s.grad = None
    g.backward()
    assert s.grad.item() == 18.0
    with pytest.raises(RuntimeError):
        tg.ones(2).sum().backward()                          # nothing requires grad


def test_inplace_ops_values():
    a = tg.ones(2, 3)
    assert a.add_(tg.tensor([1.0, 2.0, 3.0])) is a
    assert a.tolist() == [[2.0, 3.0, 4.0]] * 2
    a.sub_(1.0)
    assert a.tolist() == [[1.0, 2.0, 3.0]] * 2
    a.add_(tg.ones(2, 3), alpha=2.0)
    assert a.tolist() == [[3.0, 4.0, 5.0]] * 2
    a.sub_(tg.ones(3), alpha=3)
    a.mul_(2.0)
    assert a.tolist() == [[0.0, 2.0, 4.0]] * 2
    a.mul_(tg.tensor([[1.0], [-1.0]]))
    assert a.tolist() == [[0.0, 2.0, 4.0], [0.0, -2.0, -4.0]]
    assert a.zero_() is a and a.tolist() == [[0.0] * 3] * 2
    assert a.copy_(tg.tensor([1.0, 2.0, 3.0])) is a
    assert a.tolist() == [[1.0, 2.0, 3.0]] * 2
    a.copy_(tg.full((2, 3), 7, dtype=tg.int64))
    assert a.dtype == tg.float32 and a.tolist() == [[7.0] * 3] * 2
    with pytest.raises(ValueError):
        a.copy_(tg.ones(4))


def test_inplace_ops_through_views_and_on_noncontiguous():
    a = tg.zeros(3, 4)
    a.T.add_(tg.arange(3.0))                      # broadcast along the transposed rows
    assert a.tolist() == [[0.0] * 4, [1.0] * 4, [2.0] * 4]
    a[:, ::2].mul_(10.0)
    assert a.tolist()[1] == [10.0, 1.0, 10.0, 1.0]
    a[1].zero_()
    assert a.tolist()[1] == [0.0] * 4
    a.view(12)[:4].copy_(tg.full((4,), 5.0))
    assert a.tolist()[0] == [5.0] * 4
    f64 = tg.zeros(2, dtype=tg.float64)
    f64.add_(tg.ones(2))                          # float32 into float64 target
    assert f64.tolist() == [1.0, 1.0] and f64.dtype == tg.float64


def test_inplace_on_tensors_that_require_grad():
    w = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(1.0)
    with tg.no_grad():
        w.sub_(tg.tensor([0.5, 0.25]))            # an optimiser step
    assert w.tolist() == [0.5, 0.75] and w.requires_grad and w.is_leaf


def test_inplace_bumps_version_and_backward_refuses_stale_values():
    a = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    b = a * 1.0
    view = b.view(2, 2)
    c = b * b                                      # a Square node; saves b
    with tg.no_grad():
        view.mul_(2.0)                             # writes b through a view
    with pytest.raises(RuntimeError, match="Square.*modified by an in-place"):
        c.sum().backward()
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()                                    # saves its output
    with tg.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="Exp"):
        y.sum().backward()


def test_setitem_writes_in_place():
    a = tg.zeros(2, 3)
    a[0, 1] = 5.0
    a[1] = tg.tensor([1.0, 2.0, 3.0])
    a[:, 2] = 9.0
    assert a.tolist() == [[0.0, 5.0, 9.0], [1.0, 2.0, 9.0]]


# ----------------------------------------------------------------------------------------------
# indexing, chunk / split / cat / stack / gather
# ----------------------------------------------------------------------------------------------
def test_basic_indexing_gives_views():
    a = tg.arange(12.0).view(3, 4)
    for key in [1, (slice(None), 2), (slice(1, None, 2),), (Ellipsis, slice(None, None, -1)),
                (None, 0)]:
        r = a[key]
        np.testing.assert_array_equal(r.numpy(), a.numpy()[key])
        assert np.shares_memory(r.numpy(), a.numpy())


def test_integer_indexing_gives_a_0d_view_usable_by_ops():
    a = tg.arange(6.0).view(2, 3)
    e = a[1, 2]
    assert e.shape == () and isinstance(e.numpy(), np.ndarray)
    assert np.shares_memory(e.numpy(), a.numpy())
    assert (e * 2.0).item() == 10.0 and e.exp().shape == ()
    assert a[-1, -1].item() == 5.0 and a[np.int64(0), 1].item() == 1.0
    assert a[tg.tensor(1), tg.tensor(2)].shape == ()          # 0-d integer tensors as indices
    assert a[tg.tensor(1)].tolist() == [3.0, 4.0, 5.0]
    x = tg.ones(2, 2, requires_grad=True)
    (x[0, 1] * 3.0 + x[0, 1]).backward()
    assert x.grad.tolist() == [[0.0, 4.0], [0.0, 0.0]]


def test_advanced_indexing_copies_and_accumulates_in_backward():
    a = tg.arange(12.0).view(3, 4)
    r = a[tg.tensor([2, 0, 2])]
    assert r.tolist() == [a.tolist()[2], a.tolist()[0], a.tolist()[2]]
    assert not np.shares_memory(r.numpy(), a.numpy())
    assert a[[0, 1], [3, 3]].tolist() == [3.0, 7.0]
    assert a[a > 9].tolist() == [10.0, 11.0]
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[tg.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    with pytest.raises(IndexError):
        a[tg.tensor([0.5])]
    with pytest.raises(IndexError):
        a[3]


def test_chunk_matches_pytorch_sizes_and_gives_views():
    a = tg.arange(10.0)
    parts = tg.chunk(a, 3)
    assert [p.tolist() for p in parts] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0],
                                           [8.0, 9.0]]
    assert all(np.shares_memory(p.numpy(), a.numpy()) for p in parts)
    assert [p.shape[0] for p in tg.arange(6).chunk(4)] == [2, 2, 2]
    assert [p.shape for p in tg.ones(2, 5).chunk(2, dim=1)] == [(2, 3), (2, 2)]
    assert len(tg.ones(3).chunk(5)) == 3
    with pytest.raises(ValueError, match="chunk"):
        tg.ones(3).chunk(0)


def test_split_sizes_and_sections():
    a = tg.arange(5)
    assert [p.tolist() for p in tg.split(a, 2)] == [[0, 1], [2, 3], [4]]
    assert [p.tolist() for p in a.split([1, 4])] == [[0], [1, 2, 3, 4]]
    assert [p.shape for p in tg.ones(2, 6).split(3, dim=-1)] == [(2, 3), (2, 3)]
    assert tg.split(a, 10)[0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="split"):
        tg.split(a, [2, 2])


def test_cat_and_stack():
    a, b = tg.ones(2, 3), tg.zeros(1, 3)
    c = tg.cat([a, b])
    assert c.shape == (3, 3) and c.tolist()[2] == [0.0, 0.0, 0.0]
    assert tg.cat((a, a), dim=1).shape == (2, 6)
    assert tg.cat([a, a], -1).shape == (2, 6)
    s = tg.stack([a, a * 2.0])
    assert s.shape == (2, 2, 3) and s[1].tolist() == (a * 2.0).tolist()
    assert tg.stack([a, a], dim=2).shape == (2, 3, 2)
    assert tg.stack([tg.tensor(1.0), tg.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert tg.cat([tg.tensor([1, 2]), tg.tensor([3])]).tolist() == [1, 2, 3]
    one = tg.cat([a])                     # a new tensor, never an alias of its input
    assert one.tolist() == a.tolist() and not np.shares_memory(one.numpy(), a.numpy())
    assert not np.shares_memory(tg.stack([a]).numpy(), a.numpy())
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (tg.cat([x]) * tg.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_gather_values():
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert tg.gather(x, 1, tg.tensor([[2, 0], [1, 1]])).tolist() == [[3.0, 1.0], [5.0, 5.0]]
    assert x.gather(0, tg.tensor([[1, 0, 1]])).tolist() == [[4.0, 2.0, 6.0]]
    scores = tg.tensor([[0.1, 0.9], [0.8, 0.2]], requires_grad=True)
    labels = tg.tensor([1, 0])
    picked = scores.gather(1, labels.unsqueeze(1))
    assert picked.tolist() == [[pytest.approx(0.9)], [pytest.approx(0.8)]]
    picked.sum().backward()
    assert scores.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_comparisons_as_operators_and_functions():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (x > 2).tolist() == [False, False, True]
    assert tg.ge(x, 2.0).tolist() == [False, True, True]
    assert tg.eq(x, tg.tensor([1.0, 0.0, 3.0])).tolist() == [True, False, True]
    m = x <= 2
    # a mask carries no gradient; it records its producer only so Graph replay can rerun it
    assert m.dtype == tg.bool_ and not m.requires_grad and m.is_leaf
    assert x.lt(2).tolist() == [True, False, False] and x.ne(2).tolist() == [True, False, True]
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x > 0)
    assert bool(tg.tensor(1.0) > 0)


# ----------------------------------------------------------------------------------------------
# every op as tg.NAME and as a method, the operators
# ----------------------------------------------------------------------------------------------
API_OPS = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sigmoid",
           "tanh", "relu", "maximum", "minimum", "clamp", "where", "sum", "mean", "max", "min",
           "logsumexp", "softmax", "log_softmax", "matmul", "transpose", "permute", "squeeze",
           "unsqueeze", "expand", "chunk", "split", "cat", "stack", "gather"]
NOT_METHODS = {"cat", "stack"}          # as in PyTorch: functions of a sequence


def test_every_api_op_is_a_function_and_a_method():
    for name in API_OPS:
        assert callable(getattr(tg, name)), name
        if name not in NOT_METHODS:
            assert callable(getattr(tg.Tensor, name, None)), name
    for name in ["view", "reshape", "contiguous", "detach", "requires_grad_", "backward",
                 "add_", "sub_", "mul_", "zero_", "copy_", "item", "tolist", "numpy",
                 "element_size", "nelement", "numel", "is_contiguous"]:
        assert callable(getattr(tg.Tensor, name, None)), name


def test_methods_equal_functions():
    rng = np.random.default_rng(0)
    x = tg.from_numpy(rng.uniform(0.5, 2.0, (3, 4)))
    y = tg.from_numpy(rng.uniform(0.5, 2.0, (3, 4)))
    pairs = [
        (x.add(y), tg.add(x, y)), (x.sub(y), x - y), (x.mul(y), x * y), (x.div(y), x / y),
        (x.pow(y), x ** y), (x.pow(2), x * x), (x.neg(), -x), (x.exp(), tg.exp(x)),
        (x.log(), tg.log(x)), (x.sqrt(), tg.sqrt(x)), (x.abs(), abs(x)),
        (x.sigmoid(), tg.sigmoid(x)), (x.tanh(), tg.tanh(x)), (x.relu(), tg.relu(x)),
        (x.maximum(y), tg.maximum(x, y)), (x.minimum(y), tg.minimum(x, y)),
        (x.clamp(0.7, 1.5), tg.clamp(x, 0.7, 1.5)), (x.where(x > y, y), tg.where(x > y, x, y)),
        (x.sum(1), tg.sum(x, 1)), (x.mean(), tg.mean(x)), (x.max(), tg.max(x)),
        (x.min(0)[0], tg.min(x, 0)[0]), (x.max(y), tg.maximum(x, y)),
        (x.logsumexp(1), tg.logsumexp(x, 1)), (x.softmax(0), tg.softmax(x, 0)),
        (x.log_softmax(-1), tg.log_softmax(x, -1)), (x.matmul(y.T), x @ y.T),
        (x.transpose(0, 1), x.T), (x.permute(1, 0), x.T), (x.unsqueeze(0).squeeze(0), x),
        (x[:1].expand(3, 4), tg.expand(x[:1], (3, 4))),
        (x.gather(1, tg.tensor([[0], [1], [2]])), tg.gather(x, 1, tg.tensor([[0], [1], [2]]))),
        (x.chunk(2, 1)[1], tg.chunk(x, 2, 1)[1]), (x.split(1)[2], tg.split(x, 1)[2]),
        (2.0 - x, tg.sub(2.0, x)), (2.0 / x, tg.div(2.0, x)), (2.0 ** x, tg.pow(2.0, x)),
        (1 + x, x + 1), (3 * x, x * 3),
    ]
    for i, (m, f) in enumerate(pairs):
        np.testing.assert_allclose(m.numpy(), f.numpy(), rtol=1e-14, err_msg=str(i))


def test_numpy_array_on_the_left_defers_to_tensor_operators():
    x = tg.ones(3)
    r = np.full(3, 2.0, np.float32) + x
    assert isinstance(r, tg.Tensor) and r.tolist() == [3.0, 3.0, 3.0]
    r = np.ones((2, 3), np.float32) @ tg.ones(3, 1)
    assert isinstance(r, tg.Tensor) and r.shape == (2, 1)


def test_repr_mentions_dtype_and_grad():
    assert "requires_grad=True" in repr(tg.ones(2, requires_grad=True))
    assert "float64" in repr(tg.ones(2, dtype=tg.float64))
    assert "grad_fn" in repr(tg.ones(2, requires_grad=True) * 2.0)


def test_repr_shows_the_shape_of_empty_tensors_and_non_default_dtypes():
    assert repr(tg.zeros(0, 3)) == "tensor([], size=(0, 3))"        # as in PyTorch
    assert repr(tg.zeros(2, 0, dtype=tg.float64)) == "tensor([], size=(2, 0), dtype=float64)"
    assert repr(tg.zeros(0)) == "tensor([])"
    assert repr(tg.zeros(0, dtype=tg.int64)) == "tensor([], dtype=int64)"   # "[]": no hint
    assert repr(tg.tensor([1, 2])) == "tensor([1, 2])"              # int64: the default
    assert repr(tg.tensor([1, 2], dtype=tg.int32)) == "tensor([1, 2], dtype=int32)"
    assert repr(tg.tensor([1, 2], dtype=tg.uint8)) == "tensor([1, 2], dtype=uint8)"
    assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.])"


def test_format_spec_formats_one_element_tensors_as_numbers():
    t = tg.tensor(3.14159)
    assert f"{t:.2f}" == "3.14" and f"{t:>8.3f}" == "   3.142"
    assert f"{tg.tensor(2.5)}" == "2.5"                            # 0-d: as in PyTorch
    assert f"{tg.tensor(7):03d}" == "007"
    assert f"{tg.tensor([[2.5]]):.1f}" == "2.5"                    # one element, any rank
    assert f"{tg.tensor([1.0, 2.0])}" == str(tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"format string '\.2f' for a tensor of shape \(2,\)"):
        f"{tg.tensor([1.0, 2.0]):.2f}"
    loss = tg.tensor([1.0, 3.0], requires_grad=True).mean()
    assert f"loss {loss:.3f}" == "loss 2.000"
