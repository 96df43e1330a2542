"""Losses: the course's flat vectorised formulas, gradchecks, reductions, label validation,
numerical stability, kernels vs threads, and graph replay."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad._kernels import runtime
from tensorgrad.nn import functional as F
from tensorgrad.testing import gradcheck, gradgradcheck


# ------------------------------------------------------------------ reference formulas
def softmax_loss_vectorized(scores, y):
    """CS231n's softmax loss and its gradient w.r.t. the scores (flat, vectorised)."""
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(n), y]).sum() / n
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1
    return loss, dscores / n


def svm_loss_vectorized(scores, y, margin=1.0):
    """CS231n's multiclass SVM loss and its gradient w.r.t. the scores."""
    n = scores.shape[0]
    correct = scores[np.arange(n), y][:, None]
    margins = np.maximum(0, scores - correct + margin)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    binary = (margins > 0).astype(scores.dtype)
    binary[np.arange(n), y] = -binary.sum(axis=1)
    return loss, binary / n


LOSSES = {"softmax": (F.cross_entropy, softmax_loss_vectorized),
          "svm": (F.multiclass_hinge_loss, svm_loss_vectorized)}


def _case(rng, n, c, scale=3.0, dtype=np.float64):
    s = (rng.standard_normal((n, c)) * scale).astype(dtype)
    y = rng.integers(0, c, n)
    return s, y


# ------------------------------------------------------------------ course formulas
@pytest.mark.parametrize("name", ["softmax", "svm"])
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 24), c=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_loss_and_grad_match_course_formula(name, n, c, seed):
    fn, ref = LOSSES[name]
    s, y = _case(np.random.default_rng(seed), n, c)
    t = tg.tensor(s, requires_grad=True)
    loss = fn(t, y)
    loss.backward()
    ref_loss, ref_grad = ref(s, y)
    assert loss.dtype == tg.float64 and loss.shape == ()
    np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), ref_grad, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_linear_classifier_with_l2_matches_flat_backprop(name, rng):
    # the assignment's loss(W) = L(X·W) + reg·ΣW², dW = Xᵀ·dscores + 2·reg·W
    fn, ref = LOSSES[name]
    X = rng.standard_normal((40, 7))
    y = rng.integers(0, 5, 40)
    W0 = rng.standard_normal((7, 5)) * 0.1
    reg = 0.05
    W = tg.tensor(W0, requires_grad=True)
    loss = fn(tg.matmul(tg.tensor(X), W), y) + reg * (W * W).sum()
    loss.backward()
    data_loss, dscores = ref(X @ W0, y)
    np.testing.assert_allclose(loss.item(), data_loss + reg * np.sum(W0 * W0), atol=1e-9)
    np.testing.assert_allclose(W.grad.numpy(), X.T @ dscores + 2 * reg * W0, atol=1e-9)


def test_hinge_is_not_divided_by_number_of_classes():
    s = tg.tensor([[0.0, 0.0, 0.0, 0.0]], dtype=tg.float64)
    # three wrong classes, each with margin 0 - 0 + 1 = 1
    assert F.multiclass_hinge_loss(s, [2]).item() == pytest.approx(3.0)
    assert F.multiclass_hinge_loss(s, [2], margin=0.5).item() == pytest.approx(1.5)


def test_hinge_margin_exactly_zero_is_inactive():
    # s_j − s_y + margin == 0 exactly: the loss term is 0 and so is its gradient (a kink)
    s = tg.tensor([[1.0, 2.0, 0.5]], dtype=tg.float64, requires_grad=True)
    loss = F.multiclass_hinge_loss(s, [1], margin=1.0)
    loss.backward()
    assert loss.item() == 0.0        # margins: 1 − 2 + 1 = 0 and 0.5 − 2 + 1 = −0.5
    np.testing.assert_array_equal(s.grad.numpy(), [[0.0, 0.0, 0.0]])


# ------------------------------------------------------------------ reductions
@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_reductions_agree(name, rng):
    fn, ref = LOSSES[name]
    s, y = _case(rng, 9, 6)
    rows = fn(tg.tensor(s), y, reduction="none")
    total = fn(tg.tensor(s), y, reduction="sum")
    mean = fn(tg.tensor(s), y, reduction="mean")
    assert rows.shape == (9,)
    np.testing.assert_allclose(rows.numpy().sum(), total.item(), rtol=1e-12)
    np.testing.assert_allclose(total.item() / 9, mean.item(), rtol=1e-12)
    np.testing.assert_allclose(mean.item(), ref(s, y)[0], rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_none_reduction_backward_weights_rows(name, rng):
    fn, ref = LOSSES[name]
    s, y = _case(rng, 7, 4)
    g = rng.standard_normal(7)
    t = tg.tensor(s, requires_grad=True)
    fn(t, y, reduction="none").backward(tg.tensor(g))
    _, per_mean = ref(s, y)
    np.testing.assert_allclose(t.grad.numpy(), per_mean * 7 * g[:, None], atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "svm"])
def test_sum_reduction_backward_scales_by_upstream(name, rng):
    fn, ref = LOSSES[name]
    s, y = _case(rng, 5, 3)
    t = tg.tensor(s, requires_grad=True)
    (fn(t, y, reduction="sum") * 2.5).backward()
    np.testing.assert_allclose(t.grad.numpy(), ref(s, y)[1] * 5 * 2.5, atol=1e-12)


def test_empty_batch():
    s = tg.zeros(0, 3, dtype=tg.float64, requires_grad=True)
    y = np.zeros(0, np.int64)
    assert F.cross_entropy(s, y, reduction="sum").item() == 0.0
    assert np.isnan(F.cross_entropy(s, y).item())
    assert F.multiclass_hinge_loss(s, y, reduction="none").shape == (0,)


# ------------------------------------------------------------------ gradchecks
LOSS_FNS = [
    ("ce-mean", lambda s, y: F.cross_entropy(s, y)),
    ("ce-sum", lambda s, y: F.cross_entropy(s, y, reduction="sum")),
    ("ce-none", lambda s, y: F.cross_entropy(s, y, reduction="none")),
    ("hinge-mean", lambda s, y: F.multiclass_hinge_loss(s, y)),
    ("hinge-none", lambda s, y: F.multiclass_hinge_loss(s, y, margin=0.5, reduction="none")),
]


@pytest.mark.parametrize("name,fn", LOSS_FNS, ids=[n for n, _ in LOSS_FNS])
def test_gradcheck_and_gradgradcheck(name, fn, rng):
    s, y = _case(rng, 6, 5, scale=2.0)
    if name.startswith("hinge"):
        # keep every margin away from its kink so central differences are valid
        s = np.round(s * 4) / 4 + 0.1 * np.arange(5)
    t = tg.tensor(s, requires_grad=True)
    assert gradcheck(lambda a: fn(a, y), (t,))
    assert gradgradcheck(lambda a: fn(a, y), (t,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_gradcheck_and_gradgradcheck(reduction, rng):
    x = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    fn = lambda a, b: F.mse_loss(a, b, reduction=reduction)
    assert gradcheck(fn, (x, t))
    assert gradgradcheck(fn, (x, t))


@pytest.mark.parametrize("name,fn", LOSS_FNS, ids=[n for n, _ in LOSS_FNS])
def test_create_graph_gradient_equals_kernel_gradient(name, fn, rng):
    s, y = _case(rng, 5, 4)
    a = tg.tensor(s, requires_grad=True)
    out = fn(a, y)
    g = tg.full(out.shape, 0.7, dtype=tg.float64, requires_grad=True)
    (fast,) = tg.grad(out, a, grad_outputs=g)
    (graph,) = tg.grad(fn(a, y), a, grad_outputs=g, create_graph=True)
    assert graph.requires_grad and not fast.requires_grad
    np.testing.assert_allclose(graph.numpy(), fast.numpy(), atol=1e-12)


def test_hessian_vector_product_of_softmax_loss(rng):
    # H·v of the mean softmax loss w.r.t. scores: row-wise (diag(p) − p pᵀ)·v / N
    s, y = _case(rng, 3, 4)
    v = rng.standard_normal((3, 4))
    _, hv = tg.autograd.hvp(lambda a: F.cross_entropy(a, y), tg.tensor(s), tg.tensor(v))
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = (p * v - p * (p * v).sum(1, keepdims=True)) / 3
    np.testing.assert_allclose(hv.numpy(), expected, atol=1e-12)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("fn", [F.cross_entropy, F.multiclass_hinge_loss])
def test_label_validation(fn):
    s = tg.randn(4, 3)
    name = fn.__name__
    with pytest.raises(TypeError, match=f"{name}: labels must be an integer"):
        fn(s, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\).*\(4, 3\).*\(2, 2\)"):
        fn(s, np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"shape \(4,\).*got shape \(3,\)"):
        fn(s, [0, 1, 2])
    with pytest.raises(ValueError, match=r"label 3 at index 2 is out of range \[0, 3\)"):
        fn(s, [0, 1, 3, 0])
    with pytest.raises(ValueError, match=r"label -1 at index 0"):
        fn(s, tg.tensor([-1, 0, 0, 0]))
    with pytest.raises(ValueError, match=f"{name}: scores must be 2-D"):
        fn(tg.randn(4), [0, 1, 2, 0])
    with pytest.raises(TypeError, match=f"{name}: scores must be float"):
        fn(tg.tensor([[1, 2], [3, 4]]), [0, 1])
    with pytest.raises(ValueError, match="reduction must be"):
        fn(s, [0, 1, 2, 0], reduction="avg")


@pytest.mark.parametrize("labels", [np.array([2, 0, 1], np.int32), [2, 0, 1],
                                    tg.tensor([2, 0, 1]), np.array([2, 0, 1], np.uint8)])
def test_labels_accepted_as_any_integer_array(labels):
    s = tg.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=tg.float64)
    expected = softmax_loss_vectorized(s.numpy(), np.array([2, 0, 1]))[0]
    assert F.cross_entropy(s, labels).item() == pytest.approx(expected, rel=1e-12)


def test_mse_validation_and_values(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = rng.standard_normal((3, 4)).astype(np.float32)
    xt = tg.tensor(x, requires_grad=True)
    loss = F.mse_loss(xt, tg.tensor(t))
    np.testing.assert_allclose(loss.item(), np.mean((x - t) ** 2), rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(xt.grad.numpy(), 2 * (x - t) / 12, rtol=1e-5)
    np.testing.assert_allclose(F.mse_loss(xt, t, reduction="none").numpy(), (x - t) ** 2,
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"mse_loss: .*same shape.*\(3, 4\) and \(4, 3\)"):
        F.mse_loss(xt, tg.tensor(t.T))
    # mixed dtypes promote to float64
    assert F.mse_loss(xt, tg.tensor(t.astype(np.float64))).dtype == tg.float64


def test_mse_target_gradient(rng):
    x = tg.tensor(rng.standard_normal(5), requires_grad=True)
    t = tg.tensor(rng.standard_normal(5), requires_grad=True)
    F.mse_loss(x, t, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy(), -2 * (x.numpy() - t.numpy()), atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (x.numpy() - t.numpy()), atol=1e-12)


# ------------------------------------------------------------------ numerics
@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_huge_logits_stay_finite(dtype):
    s = tg.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, 5e3, -1e4]], dtype=dtype,
                  requires_grad=True)
    y = [1, 2, 0]
    loss = F.cross_entropy(s, y, reduction="none")
    assert np.all(np.isfinite(loss.numpy()))
    np.testing.assert_allclose(loss.numpy(), [2e4, 0.0, np.log(2)], rtol=1e-6, atol=1e-6)
    loss.sum().backward()
    g = s.grad.numpy()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)
    h = F.multiclass_hinge_loss(s.detach(), y, reduction="none")
    np.testing.assert_allclose(h.numpy(), [2e4 + 1 + 1e4 + 1, 0.0, 1.0], rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), c=st.integers(1, 700), seed=st.integers(0, 1000))
def test_float32_kernels_match_float64(n, c, seed):
    # the float32 path uses its own vectorised exp; check it against float64 on odd sizes
    s, y = _case(np.random.default_rng(seed), n, c, scale=5.0)
    for fn in (F.cross_entropy, F.multiclass_hinge_loss):
        a32 = tg.tensor(s.astype(np.float32), requires_grad=True)
        a64 = tg.tensor(s.astype(np.float32).astype(np.float64), requires_grad=True)
        l32, l64 = fn(a32, y, reduction="sum"), fn(a64, y, reduction="sum")
        l32.backward()
        l64.backward()
        np.testing.assert_allclose(l32.item(), l64.item(), rtol=2e-6, atol=1e-5)
        np.testing.assert_allclose(a32.grad.numpy(), a64.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_result_does_not_depend_on_thread_count(dtype, rng):
    s, y = _case(rng, 300, 200, dtype=dtype)     # 60 000 elements: above the serial threshold
    results = []
    for n in (1, 2):
        tg.set_num_threads(n)
        for fn in (F.cross_entropy, F.multiclass_hinge_loss):
            a = tg.tensor(s, requires_grad=True)
            loss = fn(a, y)
            loss.backward()
            results.append((loss.item(), a.grad.numpy().copy()))
    for (l1, g1), (l2, g2) in zip(results[:2], results[2:]):
        assert l1 == pytest.approx(l2, rel=1e-6)
        np.testing.assert_array_equal(g1, g2)


# ------------------------------------------------------------------ graph mechanics
@pytest.mark.parametrize("fn", [F.cross_entropy, F.multiclass_hinge_loss])
def test_second_backward_with_retain_graph_accumulates(fn, rng):
    s, y = _case(rng, 4, 3)
    a = tg.tensor(s, requires_grad=True)
    loss = fn(a, y)
    loss.backward(retain_graph=True)
    first = a.grad.numpy().copy()
    loss.backward()          # the forward's fused gradient was handed over: recomputed now
    np.testing.assert_allclose(a.grad.numpy(), 2 * first, atol=1e-12)


def test_non_contiguous_scores(rng):
    s, y = _case(rng, 5, 4)
    base = tg.tensor(np.ascontiguousarray(s.T), requires_grad=True)
    loss = F.cross_entropy(base.T, y)
    loss.backward()
    ref_loss, ref_grad = softmax_loss_vectorized(s, y)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(base.grad.numpy(), ref_grad.T, atol=1e-12)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.multiclass_hinge_loss])
def test_graph_replay_recomputes_loss_and_gradient(fn, rng):
    s, y = _case(rng, 6, 5)
    w = tg.tensor(rng.standard_normal((5, 5)), requires_grad=True)
    x = tg.tensor(s)
    loss = fn(x @ w, y)
    graph = tg.Graph(loss)
    new_w = rng.standard_normal((5, 5))
    with tg.no_grad():
        w.copy_(tg.tensor(new_w))
    graph.forward()
    ref = fn(tg.tensor(s @ new_w), y).item()
    assert loss.item() == pytest.approx(ref, rel=1e-12)
    graph.backward()
    w2 = tg.tensor(new_w, requires_grad=True)
    fn(x @ w2, y).backward()
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), atol=1e-12)


def test_inplace_change_of_scores_after_forward_is_detected(rng):
    s, y = _case(rng, 3, 3)
    a = tg.tensor(s, requires_grad=True)
    b = a * 1.0
    loss = F.cross_entropy(b, y)
    with tg.no_grad():
        b.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos", [0, 5, 12])
@pytest.mark.parametrize("negative_nan", [False, True])
def test_nan_scores_give_nan_losses_not_silently_finite(dtype, pos, negative_nan, rng):
    s = rng.standard_normal((3, 13)).astype(dtype)
    s[1, pos] = -np.nan if negative_nan else np.nan      # x86's default NaN is negative
    a = tg.tensor(s, requires_grad=True)
    ce = F.cross_entropy(a, [0, 1, 2], reduction="none")
    ce.sum().backward()
    hinge = F.multiclass_hinge_loss(tg.tensor(s), [0, 1, 2], reduction="none")
    for rows in (ce.numpy(), hinge.numpy()):
        assert np.isnan(rows[1]) and np.all(np.isfinite(rows[[0, 2]]))
    assert np.all(np.isnan(a.grad.numpy()[1])) and np.all(np.isfinite(a.grad.numpy()[[0, 2]]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_totals_are_bitwise_identical_for_any_thread_count(dtype, rng):
    """No OpenMP reduction in the loss kernels: fixed partial sums, added in a fixed order."""
    n_min = runtime.par_min()
    s, y = _case(rng, n_min // 100 + 1, 100, scale=10.0, dtype=dtype)
    x = rng.standard_normal(n_min * 3 + 7).astype(dtype) * 10
    t = rng.standard_normal(x.shape).astype(dtype)
    results = []
    before = tg.get_num_threads()
    try:
        for n in (1, 2):
            tg.set_num_threads(n)
            results.append([F.cross_entropy(tg.tensor(s), y, reduction="sum").item(),
                            F.multiclass_hinge_loss(tg.tensor(s), y, reduction="sum").item(),
                            F.mse_loss(tg.tensor(x), tg.tensor(t), reduction="sum").item(),
                            F.mse_loss(tg.tensor(x), tg.tensor(t)).item()])
    finally:
        tg.set_num_threads(before)
    assert results[0] == results[1]         # bitwise: == on floats, no tolerance
    expected = np.sum((x.astype(np.float64) - t) ** 2)
    assert results[0][2] == pytest.approx(expected, rel=1e-12 if dtype == np.float64 else 1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_0d_mse_gradients_accumulate_over_two_backward_calls(reduction):
    x = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    t = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    for _ in range(2):
        F.mse_loss(x, t, reduction=reduction).backward()
    assert isinstance(x.grad.numpy(), np.ndarray) and x.grad.shape == ()
    assert x.grad.item() == 4.0 and t.grad.item() == -4.0
    for fn in (lambda a: a.sum(), lambda a: a.mean(), lambda a: a.max(), lambda a: a.amax(),
               lambda a: a.logsumexp(0), lambda a: F.mse_loss(a, t) * a):
        a = tg.tensor(0.3, dtype=tg.float64, requires_grad=True)
        fn(a).backward()
        fn(a).backward()
        assert isinstance(a.grad.numpy(), np.ndarray) and a.grad.shape == ()


def _torch_ce_case(rng, n=9, c=5):
    s = rng.standard_normal((n, c)) * 2
    y = rng.integers(0, c, n)
    y[[1, n - 3]] = -100
    return s, y, rng.random(c) + 0.2


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_options_match_torch(reduction, weighted, smoothing, ignore, rng):
    torch = pytest.importorskip("torch")
    s, y, w = _torch_ce_case(rng)
    if not ignore:
        y = np.abs(y) % s.shape[1]
    ts = torch.tensor(s, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(
        ts, torch.tensor(y), weight=torch.tensor(w) if weighted else None, reduction=reduction,
        label_smoothing=smoothing)
    a = tg.tensor(s, requires_grad=True)
    out = F.cross_entropy(a, y, weight=tg.tensor(w) if weighted else None,
                          reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-13,
                               atol=1e-15)
    g = rng.standard_normal(ref.shape)
    (ref * torch.tensor(g)).sum().backward()
    (out * tg.tensor(g)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ts.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_nll_loss_matches_torch(reduction, weighted, ignore_index, rng):
    torch = pytest.importorskip("torch")
    s, y, w = _torch_ce_case(rng)
    logp = torch.log_softmax(torch.tensor(s), 1).requires_grad_()
    kw = {"reduction": reduction, "ignore_index": ignore_index}
    a = tg.tensor(logp.detach().numpy(), requires_grad=True)
    y_tg = np.where(y == -100, ignore_index, y)
    ref = torch.nn.functional.nll_loss(logp, torch.tensor(y_tg),
                                       weight=torch.tensor(w) if weighted else None, **kw)
    out = F.nll_loss(a, tg.tensor(y_tg), weight=w if weighted else None, **kw)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-14)
    ref.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), logp.grad.numpy(), rtol=1e-14)


def test_nll_loss_and_cross_entropy_options_gradcheck(rng):
    s, y, w = _torch_ce_case(rng, n=5, c=4)
    a = tg.tensor(s, requires_grad=True)
    for fn in (lambda a: F.cross_entropy(a, y, weight=w, label_smoothing=0.3),
               lambda a: F.cross_entropy(a, y, reduction="none", label_smoothing=0.1),
               lambda a: F.nll_loss(tg.log_softmax(a, 1), y, weight=w, reduction="sum")):
        assert gradcheck(fn, (a,)) and gradgradcheck(fn, (a,))


def test_cross_entropy_default_arguments_keep_the_fused_kernel(rng):
    s, y = _case(rng, 6, 4)
    from tensorgrad.ops.loss import CrossEntropy
    assert F.cross_entropy(tg.tensor(s, requires_grad=True), y).grad_fn.fn is CrossEntropy
    rows = F.cross_entropy(tg.tensor(s), y, reduction="none").numpy()
    for ignore_index in (-100, int(y[2])):      # the default, and a class index
        labels = np.where(np.arange(6) == 2, ignore_index, y)
        composite = F.cross_entropy(tg.tensor(s), labels, ignore_index=ignore_index,
                                    reduction="none").numpy()
        kept = labels != ignore_index
        assert not composite[2] and np.all(composite[~kept] == 0)
        np.testing.assert_allclose(composite[kept], rows[kept], rtol=1e-14)


def test_nll_loss_and_cross_entropy_option_errors():
    s = tg.randn(3, 4)
    with pytest.raises(ValueError, match=r"nll_loss: label 4 at index 1 is out of range"):
        F.nll_loss(s, [0, 4, -100])
    with pytest.raises(ValueError, match=r"cross_entropy: weight must be a 1-D tensor of 4"):
        F.cross_entropy(s, [0, 1, 2], weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(s, [0, 1, 2], label_smoothing=1.5)
