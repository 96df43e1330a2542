"""The engine against the lectures: worked examples, gate patterns, the modular Function API,
flat backprop vs the engine, higher order (HVP, gradient penalty) and forward mode (jvp)."""
import math

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.testing import gradcheck, gradgradcheck


def close(t, expected, tol=1e-4):
    np.testing.assert_allclose(np.asarray(t.numpy() if isinstance(t, tg.Tensor) else t,
                                          dtype=np.float64), expected, atol=tol, rtol=0)


# --------------------------------------------------------------------------------------------
# MISSION.md worked examples
# --------------------------------------------------------------------------------------------
def test_add_mul_example():
    x = tg.tensor(-2.0, requires_grad=True)
    y = tg.tensor(5.0, requires_grad=True)
    z = tg.tensor(-4.0, requires_grad=True)
    f = (x + y) * z
    f.backward()
    close(f, -12)
    close(x.grad, -4)
    close(y.grad, -4)
    close(z.grad, 3)


def test_sigmoid_neuron_scalars():
    w0, x0, w1, x1, w2 = (tg.tensor(v, requires_grad=True) for v in (2.0, -1.0, -3.0, -2.0, -3.0))
    f = tg.sigmoid(w0 * x0 + w1 * x1 + w2)
    f.backward()
    close(f, 0.7311)
    for t, g in zip((w0, x0, w1, x1, w2), (-0.1966, 0.3932, -0.3932, -0.5898, 0.1966)):
        close(t.grad, g)


def test_sigmoid_neuron_vectors():
    x = tg.tensor([-1.0, -2.0], requires_grad=True)
    w = tg.tensor([2.0, -3.0], requires_grad=True)
    b = tg.tensor(-3.0, requires_grad=True)
    f = tg.sigmoid(w @ x + b)
    f.backward()
    close(f, 0.7311)
    close(w.grad, [-0.1966, -0.3932])
    close(x.grad, [0.3932, -0.5898])
    close(b.grad, 0.1966)


def test_sigmoid_neuron_flat_backprop_matches_engine():
    """The lectures' "flat" style: the forward pass reversed, one line per intermediate."""
    w0, x0, w1, x1, w2 = 2.0, -1.0, -3.0, -2.0, -3.0
    s0 = w0 * x0
    s1 = w1 * x1
    s2 = s0 + s1
    s3 = s2 + w2
    L = 1.0 / (1.0 + math.exp(-s3))
    grad_L = 1.0
    grad_s3 = grad_L * (1 - L) * L
    grad_w2 = grad_s3
    grad_s2 = grad_s3
    grad_s0 = grad_s2
    grad_s1 = grad_s2
    grad_w1 = grad_s1 * x1
    grad_x1 = grad_s1 * w1
    grad_w0 = grad_s0 * x0
    grad_x0 = grad_s0 * w0
    ts = [tg.tensor(v, dtype=tg.float64, requires_grad=True) for v in (w0, x0, w1, x1, w2)]
    f = tg.sigmoid(ts[0] * ts[1] + ts[2] * ts[3] + ts[4])
    f.backward()
    assert f.item() == pytest.approx(L, abs=1e-15)
    for t, g in zip(ts, (grad_w0, grad_x0, grad_w1, grad_x1, grad_w2)):
        assert t.grad.item() == pytest.approx(g, abs=1e-15)


def test_relu_mask_example():
    x = tg.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
    tg.relu(x).backward(tg.tensor([4.0, -1.0, 5.0, 9.0]))
    close(x.grad, [4, 0, 5, 0])


def test_matmul_example():
    x = tg.tensor([[2.0, 1, -3], [-3, 4, 2]], requires_grad=True)
    W = tg.tensor([[3.0, 2, 1, -1], [2, 1, 3, 2], [3, 2, 1, -2]], requires_grad=True)
    y = x @ W
    close(y, [[-1, -1, 2, 6], [5, 2, 11, 7]])
    y.backward(tg.tensor([[2.0, 3, -3, 9], [-8, 1, 4, 6]]))
    close(x.grad, [[0, 16, -9], [-24, 9, -30]])
    close(W.grad, [[28, 3, -18, 0], [-30, 7, 13, 33], [-22, -7, 17, -15]])


# --------------------------------------------------------------------------------------------
# gate patterns
# --------------------------------------------------------------------------------------------
def test_x_times_x_is_one_square_node_with_the_same_gradient():
    x = tg.tensor([1.5, -2.0], dtype=tg.float64, requires_grad=True)
    y = x * x
    assert y.grad_fn.name == "Square"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, -4.0])


def test_copy_gate_sums_fanout():
    a = tg.tensor(3.0, requires_grad=True)
    b = a + a
    c = b * b           # c = 4a², dc/da = 8a
    c.backward()
    assert a.grad.item() == pytest.approx(24.0)


def test_max_gate_routes_to_winner():
    x = tg.tensor(4.0, requires_grad=True)
    y = tg.tensor(2.0, requires_grad=True)
    tg.maximum(x, y).backward()
    assert x.grad.item() == 1.0 and y.grad.item() == 0.0


def test_mul_gate_swaps():
    x = tg.tensor(3.0, requires_grad=True)
    y = tg.tensor(-5.0, requires_grad=True)
    (x * y).backward(tg.tensor(2.0))
    assert x.grad.item() == -10.0 and y.grad.item() == 6.0


# --------------------------------------------------------------------------------------------
# Function API (the modular style)
# --------------------------------------------------------------------------------------------
class Multiply(tg.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return tg.from_numpy(x.numpy() * y.numpy())

    @staticmethod
    def backward(ctx, grad_z):
        x, y = ctx.saved_tensors
        return grad_z * y, grad_z * x


def test_function_api_multiply_matches_builtin(rng):
    xa = rng.standard_normal((3, 4))
    ya = rng.standard_normal((3, 4))
    x1, y1 = tg.tensor(xa, requires_grad=True), tg.tensor(ya, requires_grad=True)
    x2, y2 = tg.tensor(xa, requires_grad=True), tg.tensor(ya, requires_grad=True)
    (Multiply.apply(x1, y1).sigmoid().sum()).backward()
    ((x2 * y2).sigmoid().sum()).backward()
    np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())
    np.testing.assert_array_equal(y1.grad.numpy(), y2.grad.numpy())
    assert gradcheck(Multiply.apply, (x1, y1))
    assert gradgradcheck(Multiply.apply, (x1, y1))


def test_function_needs_input_grad_and_non_tensor_args():
    seen = {}

    class Scale(tg.Function):
        @staticmethod
        def forward(ctx, x, y, k):
            ctx.k = k
            seen["needs"] = ctx.needs_input_grad
            return tg.from_numpy(x.numpy() * y.numpy() * k)

        @staticmethod
        def backward(ctx, g):
            return None, None, None

    x = tg.tensor([1.0], requires_grad=True)
    Scale.apply(x, tg.tensor([2.0]), 3.0)
    assert seen["needs"] == (True, False, False)


def test_function_wrong_number_of_grads_raises():
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return tg.from_numpy(x.numpy() * 2)

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Bad.backward returned 2 gradients"):
        Bad.apply(x).sum().backward()


def test_function_wrong_grad_shape_raises():
    class BadShape(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return tg.from_numpy(x.numpy() * 2)

        @staticmethod
        def backward(ctx, g):
            return tg.ones(5)

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="shape"):
        BadShape.apply(x).sum().backward()


# --------------------------------------------------------------------------------------------
# tg.grad, higher order, forward mode
# --------------------------------------------------------------------------------------------
def test_grad_does_not_touch_dot_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = tg.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2, 4])
    assert x.grad is None


def test_grad_wrt_intermediate():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    gh, gx = tg.grad(y, (h, x))
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.numpy())


def test_hvp_quadratic(rng):
    A = rng.standard_normal((4, 4))
    A = A + A.T
    At = tg.tensor(A)

    def f(x):
        return 0.5 * (x @ (At @ x))

    x = tg.tensor(rng.standard_normal(4))
    v = tg.tensor(rng.standard_normal(4))
    val, hv = tg.autograd.hvp(f, x, v)
    np.testing.assert_allclose(hv.numpy(), A @ v.numpy(), rtol=1e-10)
    assert val.item() == pytest.approx(0.5 * x.numpy() @ A @ x.numpy())


def test_hvp_through_nonlinear_net(rng):
    """H·v of a tanh/softmax net against finite differences of the gradient."""
    W = tg.tensor(rng.standard_normal((3, 5)))

    def loss(x):
        return tg.log_softmax(tg.tanh(x @ W), dim=-1).sum()

    x0 = rng.standard_normal((2, 3))
    v = rng.standard_normal((2, 3))
    _, hv = tg.autograd.hvp(loss, tg.tensor(x0), tg.tensor(v))
    eps = 1e-6

    def gradient(xa):
        x = tg.tensor(xa, requires_grad=True)
        loss(x).backward()
        return x.grad.numpy()

    fd = (gradient(x0 + eps * v) - gradient(x0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-5, atol=1e-7)


def test_gradient_penalty_wgan_style(rng):
    """R(W) = ||dL/dW||² is differentiable (create_graph=True) and matches finite differences."""
    X = tg.tensor(rng.standard_normal((6, 3)))

    def penalty(Wa):
        W = tg.tensor(Wa, requires_grad=True)
        L = tg.sigmoid(X @ W).sum()
        (gW,) = tg.grad(L, W, create_graph=True)
        R = (gW * gW).sum()
        return R, W

    W0 = rng.standard_normal((3, 2))
    R, W = penalty(W0)
    R.backward()
    eps = 1e-6
    num = np.zeros_like(W0)
    for idx in np.ndindex(W0.shape):
        Wp, Wm = W0.copy(), W0.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        num[idx] = (penalty(Wp)[0].item() - penalty(Wm)[0].item()) / (2 * eps)
    np.testing.assert_allclose(W.grad.numpy(), num, rtol=1e-5, atol=1e-8)


def test_jvp_matches_jacobian(rng):
    A = rng.standard_normal((3, 4))

    def f(x):
        return tg.tanh(tg.tensor(A) @ x)

    x0 = rng.standard_normal(4)
    v = rng.standard_normal(4)
    out, jv = tg.autograd.jvp(f, tg.tensor(x0), tg.tensor(v))
    J = (1 - np.tanh(A @ x0) ** 2)[:, None] * A
    np.testing.assert_allclose(jv.numpy(), J @ v, rtol=1e-10)
    np.testing.assert_allclose(out.numpy(), np.tanh(A @ x0))


def test_backward_create_graph_second_derivative():
    x = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    y = x ** 3
    (g,) = tg.grad(y, x, create_graph=True)
    (g2,) = tg.grad(g, x)
    assert g.item() == pytest.approx(12.0)
    assert g2.item() == pytest.approx(12.0)


# --------------------------------------------------------------------------------------------
# grad modes and errors
# --------------------------------------------------------------------------------------------
def test_no_grad_records_nothing():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    with tg.no_grad(), tg.enable_grad():
        z = x * 2
    assert z.grad_fn is not None
    tg.set_grad_enabled(False)
    try:
        assert (x * 2).grad_fn is None
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()

    @tg.no_grad()
    def f(t):
        return t * 2

    assert f(x).grad_fn is None and tg.is_grad_enabled()


def test_backward_non_scalar_needs_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.tensor([1.0]).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="float"):
        tg.tensor([1, 2, 3], requires_grad=True)


def test_inplace_modification_of_saved_tensor_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y * x               # Mul saves y (and x)
    with tg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="Mul.*modified by an in-place operation"):
        z.sum().backward()


def test_inplace_through_view_is_detected():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * 1.0
    z = tg.exp(y)           # Exp saves its output z
    with tg.no_grad():
        z[0].mul_(2.0)      # write through a view of z
    with pytest.raises(RuntimeError, match="Exp"):
        z.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    w = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="add_.*no_grad"):
        w.add_(1.0)
    with tg.no_grad():
        w.add_(1.0)
    assert w.item() == 2.0


def test_second_backward_raises_then_retain_graph_works():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    x.grad = None
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())


def test_gradients_accumulate_across_backward_calls():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    for _ in range(3):
        (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [15.0, 15.0])


def test_grads_of_aliased_leaves_are_independent():
    """add passes the same gradient to both inputs; .grad must not be shared memory."""
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).backward(tg.tensor([1.0, 1.0]))
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    (x * 2.0 + y).backward(tg.tensor([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 2.0])


def test_user_gradient_is_not_mutated():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    g = tg.tensor([1.0, 1.0])
    (x * 1.0).backward(g)
    (x * 1.0).backward(g)
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_retain_grad_on_intermediate():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3.0).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())
