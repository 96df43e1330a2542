"""Tensor.register_post_accumulate_grad_hook: once per backward pass, after the leaf's last
gradient of the pass (what data-parallel training starts its all-reduces from)."""
import gc

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad._tensor import _post_accumulate_hooks


def _recorder(log, name):
    return lambda t: log.append((name, t.grad.numpy().copy()))


def test_hook_sees_the_final_gradient_once_per_pass():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0], requires_grad=True)
    log = []
    w.register_post_accumulate_grad_hook(_recorder(log, "w"))
    b.register_post_accumulate_grad_hook(_recorder(log, "b"))
    # w is used three times, b twice: each hook still runs once, with the summed gradient
    y = (w * w).sum() + (w * b).sum() + b.sum() + w.sum()
    y.backward()
    assert [name for name, _ in log] == ["b", "w"] or [name for name, _ in log] == ["w", "b"]
    got = dict(log)
    assert np.array_equal(got["w"], [6.0, 8.0]) and np.array_equal(got["b"], [4.0])
    y = (w * 2.0).sum()
    y.backward()                        # accumulates: the hook sees the running .grad
    assert np.array_equal(log[-1][1], [8.0, 10.0]) and len(log) == 3


def test_hook_runs_before_backward_reaches_earlier_layers():
    # the last layer's hook must run while the first layer's gradient is not there yet
    w1 = tg.randn(3, 4, requires_grad=True)
    w2 = tg.randn(4, 2, requires_grad=True)
    seen = []
    w2.register_post_accumulate_grad_hook(lambda t: seen.append(w1.grad is None))
    ((tg.ones(5, 3) @ w1).relu() @ w2).sum().backward()
    assert seen == [True] and w1.grad is not None


def test_hook_not_called_without_a_gradient_and_on_tg_grad():
    w = tg.tensor([1.0], requires_grad=True)
    u = tg.tensor([1.0], requires_grad=True)
    calls = []
    u.register_post_accumulate_grad_hook(calls.append)
    (w * 3.0).sum().backward()           # u is not in this graph
    tg.grad((u * 3.0).sum(), u)          # .grad untouched, so no hook
    assert calls == []
    (u * 3.0).sum().backward(inputs=[u])
    assert calls == [u]
    u.sum().backward()                   # a leaf as the root
    assert calls == [u, u] and u.grad.tolist() == [4.0]


def test_hook_with_graph_replay_and_removal():
    w = tg.tensor([2.0], requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.item()))
    g = tg.Graph((w * w).sum())
    g.backward()
    w.grad = None
    with tg.no_grad():
        w.mul_(2.0)
    g.forward()
    g.backward()
    assert calls == [4.0, 8.0]
    handle.remove()
    handle.remove()                      # idempotent
    g.backward()
    assert calls == [4.0, 8.0] and id(w) not in _post_accumulate_hooks


def test_hooks_are_forgotten_with_their_tensor_and_errors():
    w = tg.tensor([1.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    key = id(w)
    assert key in _post_accumulate_hooks
    del w
    gc.collect()
    assert key not in _post_accumulate_hooks
    with pytest.raises(RuntimeError, match="only leaf tensors that require grad"):
        tg.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (tg.tensor([1.0], requires_grad=True) * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="must be callable"):
        tg.tensor([1.0], requires_grad=True).register_post_accumulate_grad_hook(3)


def test_exception_in_a_hook_propagates_and_leaves_the_engine_clean():
    w = tg.tensor([1.0], requires_grad=True)

    def boom(t):
        raise KeyError("from the hook")

    h = w.register_post_accumulate_grad_hook(boom)
    with pytest.raises(KeyError, match="from the hook"):
        (w * 2.0).sum().backward()
    h.remove()
    w.grad = None
    (w * 2.0).sum().backward()
    assert w.grad.tolist() == [2.0]
