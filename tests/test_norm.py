"""batch_norm, layer_norm and dropout against PyTorch (float64 values and gradients, running
statistics after several training steps, float32 within tolerance), the fused backward
against the differentiable (create_graph) one, and dropout's mask and seeding."""
import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad.ops._references import dropout_keep

torch = pytest.importorskip("torch")
TF = torch.nn.functional

BN_SHAPES = [(5, 3), (8, 4, 7), (3, 2, 4, 5), (2, 3, 2, 2, 3), (600, 5), (4, 16, 9, 9)]


def _pair(a, requires_grad=True):
    return (tg.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _close(ours, theirs, rtol=1e-10, atol=1e-12):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch_float64(shape, training, affine):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x, tx = _pair(rng.standard_normal(shape) * 3 + 2)
    rm, trm = _pair(rng.standard_normal(c), False)
    rv, trv = _pair(rng.uniform(0.5, 2, c), False)
    w, tw = _pair(rng.standard_normal(c)) if affine else (None, None)
    b, tb = _pair(rng.standard_normal(c)) if affine else (None, None)
    g = rng.standard_normal(shape)
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-4)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.3, eps=1e-4)
    _close(y, ty)
    _close(rm, trm)
    _close(rv, trv)
    y.backward(tg.tensor(g))
    ty.backward(torch.tensor(g))
    _close(x.grad, tx.grad, atol=1e-11)
    if affine:
        _close(w.grad, tw.grad, atol=1e-11)
        _close(b.grad, tb.grad, atol=1e-11)


def test_batch_norm_running_stats_follow_torch_over_several_steps():
    rng = np.random.default_rng(1)
    rm, trm = _pair(np.zeros(4), False)
    rv, trv = _pair(np.ones(4), False)
    for step in range(6):
        x = rng.standard_normal((10, 4, 3)) * (step + 1) + step
        F.batch_norm(tg.tensor(x), rm, rv, training=True, momentum=0.25)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.25)
    _close(rm, trm)
    _close(rv, trv)          # the unbiased variance goes into the running variance
    xe = rng.standard_normal((6, 4, 3))
    _close(F.batch_norm(tg.tensor(xe), rm, rv), TF.batch_norm(torch.tensor(xe), trm, trv))


def test_batch_norm_running_update_counts_as_an_in_place_write():
    rm, rv = tg.zeros(3), tg.ones(3)
    v = rm._version[0]
    F.batch_norm(tg.randn(4, 3), rm, rv, training=True)
    assert rm._version[0] == v + 1


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 5)])
def test_batch_norm_float32_within_tolerance(shape):
    rng = np.random.default_rng(2)
    c = shape[1]
    x32 = (rng.standard_normal(shape) * 2 + 50).astype(np.float32)   # a large mean
    w32, b32 = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(
        np.float32)
    x, tx = _pair(x32)
    w, tw = _pair(w32)
    b, tb = _pair(b32)
    rm, trm = _pair(np.zeros(c, np.float32), False)
    rv, trv = _pair(np.ones(c, np.float32), False)
    y = F.batch_norm(x, rm, rv, w, b, training=True)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True)
    assert y.dtype == tg.float32 and rm.dtype == tg.float32
    _close(y, ty, rtol=1e-4, atol=1e-4)
    _close(rm, trm, rtol=1e-5, atol=1e-5)
    _close(rv, trv, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(tg.tensor(g))
    ty.backward(torch.tensor(g))
    _close(x.grad, tx.grad, rtol=1e-3, atol=1e-3)
    _close(w.grad, tw.grad, rtol=1e-3, atol=1e-3)
    _close(b.grad, tb.grad, rtol=1e-4, atol=1e-4)
    assert x.grad.dtype == w.grad.dtype == tg.float32


def _first_order_grads(fn, args, g, create_graph):
    leaves = [a.detach().requires_grad_(True) for a in args]
    out = fn(*leaves)
    return tg.grad(out, leaves, grad_outputs=g, create_graph=create_graph)


@pytest.mark.parametrize("shape", [(7, 3), (3, 4, 5, 6)])
def test_batch_norm_fused_backward_equals_the_differentiable_one(shape):
    rng = np.random.default_rng(3)
    c = shape[1]
    args = [tg.tensor(rng.standard_normal(shape)), tg.tensor(rng.standard_normal(c)),
            tg.tensor(rng.standard_normal(c))]
    g = tg.tensor(rng.standard_normal(shape))

    def fn(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)
    fused = _first_order_grads(fn, args, g, False)
    ops = _first_order_grads(fn, args, g, True)
    assert ops[0].grad_fn is not None      # recorded: built from ops
    for a, b in zip(fused, ops):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_fused_backward_equals_the_differentiable_one():
    rng = np.random.default_rng(4)
    args = [tg.tensor(rng.standard_normal((5, 3, 4))), tg.tensor(rng.standard_normal((3, 4))),
            tg.tensor(rng.standard_normal((3, 4)))]
    g = tg.tensor(rng.standard_normal((5, 3, 4)))

    def fn(x, w, b):
        return F.layer_norm(x, (3, 4), w, b)
    for a, b in zip(_first_order_grads(fn, args, g, False),
                    _first_order_grads(fn, args, g, True)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_double_backward_matches_torch():
    rng = np.random.default_rng(5)
    xa, wa = rng.standard_normal((4, 3, 5)), rng.standard_normal(3)
    x, tx = _pair(xa)
    w, tw = _pair(wa)
    y = F.batch_norm(x, None, None, w, None, training=True)
    ty = TF.batch_norm(tx, None, None, tw, None, training=True)
    (gx,) = tg.grad((y * y * y).sum(), [x], create_graph=True)
    (tgx,) = torch.autograd.grad((ty ** 3).sum(), [tx], create_graph=True)
    gx2 = tg.grad((gx * gx).sum(), [x, w])
    tgx2 = torch.autograd.grad((tgx * tgx).sum(), [tx, tw])
    for a, b in zip(gx2, tgx2):
        _close(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shape, ns", [((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((6,), (6,)),
                                       ((300, 40), (40,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch_float64(shape, ns, affine):
    rng = np.random.default_rng(len(shape))
    x, tx = _pair(rng.standard_normal(shape) * 2 - 3)
    w, tw = _pair(rng.standard_normal(ns)) if affine else (None, None)
    b, tb = _pair(rng.standard_normal(ns)) if affine else (None, None)
    y = F.layer_norm(x, ns, w, b, eps=1e-3)
    ty = TF.layer_norm(tx, ns, tw, tb, eps=1e-3)
    _close(y, ty)
    g = rng.standard_normal(shape)
    y.backward(tg.tensor(g))
    ty.backward(torch.tensor(g))
    _close(x.grad, tx.grad, atol=1e-11)
    if affine:
        _close(w.grad, tw.grad, atol=1e-11)
        _close(b.grad, tb.grad, atol=1e-11)


def test_layer_norm_int_shape_and_float32():
    rng = np.random.default_rng(6)
    xa = rng.standard_normal((8, 16)).astype(np.float32)
    y = F.layer_norm(tg.tensor(xa), 16)
    assert y.dtype == tg.float32
    np.testing.assert_allclose(y.numpy(), TF.layer_norm(torch.tensor(xa), (16,)).numpy(),
                               rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------- dropout
def test_dropout_mask_is_the_documented_splitmix_stream_and_follows_the_seed():
    x = tg.tensor(np.arange(1, 2001, dtype=np.float64).reshape(40, 50), requires_grad=True)
    tg.manual_seed(7)
    y = F.dropout(x, 0.3)
    tg.manual_seed(7)
    key = tg.random.get_generator().integers(0, 2 ** 64, dtype=np.uint64)
    keep = dropout_keep(key, 2000, 0.3).reshape(40, 50)
    np.testing.assert_array_equal(y.numpy(), np.where(keep, x.numpy() * (1 / 0.7), 0.0))
    tg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), y.numpy())
    assert not np.array_equal(F.dropout(x, 0.3).numpy(), y.numpy())  # the stream moved on


def test_dropout_backward_reuses_the_mask():
    x = tg.ones(300, 200, requires_grad=True)
    y = F.dropout(x, 0.4)
    g = tg.randn(300, 200)
    y.backward(g)
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g.numpy() / 0.6, 0),
                               rtol=1e-6)
    assert 0.37 < 1 - kept.mean() < 0.43


def test_dropout_edges():
    x = tg.randn(50, 40)
    assert F.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((50, 40), np.float32))
    for bad in (-0.1, 1.01):
        with pytest.raises(ValueError, match="^dropout: p must be in"):
            F.dropout(x, bad)
    with pytest.raises(TypeError, match="^dropout: p"):
        F.dropout(x, "0.5")


def test_dropout_double_backward():
    x = tg.randn(6, 7, dtype=tg.float64, requires_grad=True)

    def fn(a):
        tg.manual_seed(11)
        return F.dropout(a, 0.35) ** 2
    assert tg.testing.gradgradcheck(fn, (x,))


def test_dropout_same_mask_for_one_and_two_threads():
    x = tg.randn(1200, 300)
    out = []
    for n in (1, 2):
        tg.set_num_threads(n)
        tg.manual_seed(3)
        out.append(F.dropout(x, 0.5).numpy())
    np.testing.assert_array_equal(*out)


# ---------------------------------------------------------------------------------- errors
def test_errors_name_the_op_and_the_shapes():
    x = tg.randn(4, 3)
    with pytest.raises(ValueError, match=r"^batch_norm: running_mean must have shape \(3,\)"):
        F.batch_norm(x, tg.zeros(2), tg.ones(2))
    with pytest.raises(ValueError, match="^batch_norm: expected more than 1 value"):
        F.batch_norm(tg.randn(1, 3, 1), None, None, training=True)
    with pytest.raises(TypeError, match="^batch_norm: momentum must be a number"):
        F.batch_norm(x, tg.zeros(3), tg.ones(3), training=True, momentum=None)
    with pytest.raises(ValueError, match=r"^layer_norm: normalized_shape \[4\] does not match"):
        F.layer_norm(x, (4,))
    with pytest.raises(TypeError, match="^batch_norm: expected a float"):
        F.batch_norm(tg.tensor([[1, 2], [3, 4]]), None, None, training=True)


@pytest.mark.parametrize("xd, wd", [(np.float64, np.float32), (np.float32, np.float64)])
@pytest.mark.parametrize("create_graph", [False, True])
def test_gradients_keep_each_input_dtype(xd, wd, create_graph):
    rng = np.random.default_rng(8)

    def t(*shape, dtype=wd, low=None):
        a = rng.standard_normal(shape) if low is None else rng.uniform(low, low + 1, shape)
        return tg.tensor(a.astype(dtype), requires_grad=True)
    x = t(4, 3, 5, dtype=xd)
    for training in (True, False):
        args = [x, t(3), t(3, low=0.5), t(3), t(3)]
        y = F.batch_norm(*args, training=training)
        assert y.dtype == x.dtype
        grads = tg.grad((y * y).sum(), args, create_graph=create_graph)
        assert [g.dtype for g in grads] == [a.dtype for a in args]
    args = [x, t(5), t(5)]
    y = F.layer_norm(args[0], (5,), args[1], args[2])
    grads = tg.grad((y * y).sum(), args, create_graph=create_graph)
    assert [g.dtype for g in grads] == [a.dtype for a in args]
