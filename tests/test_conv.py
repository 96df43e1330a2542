"""Convolutions and pooling against torch (skipped without torch): values and gradients in
float64 for random shapes, strides, paddings, dilations and groups, float32 within
tolerance; double backward; the bounded im2col workspace; bad arguments.

The generic registry tests (tests/test_registry.py) check the same ops against the numpy
references, with gradcheck, gradgradcheck and thread invariance.
"""
import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F
from tensorgrad.ops import conv as conv_ops

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _random_conv_case(rng, transposed=False):
    """Random (x shape, w shape, kwargs) of a valid conv2d / conv_transpose2d call."""
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin = groups * int(rng.integers(1, 4))
        cout = groups * int(rng.integers(1, 4))
        kh, kw = (int(k) for k in rng.integers(1, 4, 2))
        stride = tuple(int(s) for s in rng.integers(1, 4, 2))
        padding = tuple(int(p) for p in rng.integers(0, 3, 2))
        dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
        n = int(rng.integers(1, 4))
        h, w = (int(s) for s in rng.integers(1, 9, 2))
        if transposed:
            out_pad = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
            size = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, s, p, d, k, op in
                    zip((h, w), stride, padding, dilation, (kh, kw), out_pad)]
            if min(size) < 1:
                continue
            kwargs = {"stride": stride, "padding": padding, "output_padding": out_pad,
                      "groups": groups, "dilation": dilation}
            return (n, cin, h, w), (cin, cout // groups, kh, kw), cout, kwargs
        if (h + 2 * padding[0] < dilation[0] * (kh - 1) + 1
                or w + 2 * padding[1] < dilation[1] * (kw - 1) + 1):
            continue
        kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        return (n, cin, h, w), (cout, cin // groups, kh, kw), cout, kwargs


def _compare(tg_fn, torch_fn, arrays, kwargs, rtol, atol, rng):
    """Values and the gradients of every input (with a random upstream gradient)."""
    ours = [tg.from_numpy(a).requires_grad_(True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = tg_fn(*ours, **kwargs)
    ty = torch_fn(*theirs, **kwargs)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(tuple(ty.shape)).astype(arrays[0].dtype)
    grads = tg.grad([y], ours, grad_outputs=[tg.from_numpy(g)])
    ty.backward(torch.tensor(g))
    for ours_g, t in zip(grads, theirs):
        np.testing.assert_allclose(ours_g.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


TOL = {np.float64: (1e-10, 1e-11), np.float32: (2e-4, 2e-4)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(12))
def test_conv2d_matches_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    xs, ws, cout, kwargs = _random_conv_case(rng)
    arrays = [rng.standard_normal(s).astype(dtype) for s in (xs, ws, (cout,))]
    _compare(F.conv2d, TF.conv2d, arrays, kwargs, *TOL[dtype], rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(12))
def test_conv_transpose2d_matches_torch(seed, dtype):
    rng = np.random.default_rng(100 + seed)
    xs, ws, cout, kwargs = _random_conv_case(rng, transposed=True)
    arrays = [rng.standard_normal(s).astype(dtype) for s in (xs, ws, (cout,))]
    _compare(F.conv_transpose2d, TF.conv_transpose2d, arrays, kwargs, *TOL[dtype], rng)


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(8))
def test_pooling_matches_torch(seed, dtype, pool):
    rng = np.random.default_rng(200 + seed)
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2)) if seed % 2 else None
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(k[0], 10)),
             int(rng.integers(k[1], 10)))
    x = rng.standard_normal(shape).astype(dtype)
    _compare(getattr(F, pool), getattr(TF, pool), [x],
             {"kernel_size": k, "stride": stride, "padding": padding}, *TOL[dtype], rng)


def test_conv2d_unbatched_and_noncontiguous_match_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(tg.from_numpy(x), tg.from_numpy(w), padding=1)
    np.testing.assert_allclose(y.numpy(), TF.conv2d(torch.tensor(x), torch.tensor(w),
                                                    padding=1).numpy(), rtol=1e-12, atol=1e-12)
    xt = rng.standard_normal((2, 3, 5, 6)).transpose(0, 1, 3, 2)      # H and W swapped
    y = F.conv2d(tg.from_numpy(xt), tg.from_numpy(w), stride=2)
    ref = TF.conv2d(torch.tensor(np.ascontiguousarray(xt)), torch.tensor(w), stride=2)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


def test_double_backward_matches_torch():
    # d/dx of Σ (dL/dW)²: goes through Conv2dWeightGrad's own VJP and ConvTranspose2d's
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((6, 2, 3, 2))
    kwargs = {"stride": (2, 1), "padding": 1, "dilation": (1, 2), "groups": 2}
    xs = tg.from_numpy(x).requires_grad_(True)
    ws = tg.from_numpy(w).requires_grad_(True)
    y = F.max_pool2d(F.conv2d(xs, ws, **kwargs), 2, 1)
    gx, gw = tg.grad([(y * y).sum()], [xs, ws], create_graph=True)
    hx, hw = tg.grad([(gw * gw).sum() + (gx * gx).sum()], [xs, ws])
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = TF.max_pool2d(TF.conv2d(tx, tw, **kwargs), 2, 1)
    tgx, tgw = torch.autograd.grad((ty * ty).sum(), [tx, tw], create_graph=True)
    thx, thw = torch.autograd.grad((tgw * tgw).sum() + (tgx * tgx).sum(), [tx, tw])
    np.testing.assert_allclose(hx.numpy(), thx.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(hw.numpy(), thw.numpy(), rtol=1e-9, atol=1e-9)


def test_avg_pool_double_backward_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    xs = tg.from_numpy(x).requires_grad_(True)
    y = F.avg_pool2d(xs * xs, 3, 2, 1)
    (gx,) = tg.grad([(y * y).sum()], [xs], create_graph=True)
    (hx,) = tg.grad([(gx * gx * gx).sum()], [xs])
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.avg_pool2d(tx * tx, 3, 2, 1)
    (tgx,) = torch.autograd.grad((ty * ty).sum(), [tx], create_graph=True)
    (thx,) = torch.autograd.grad((tgx * tgx * tgx).sum(), [tx])
    np.testing.assert_allclose(hx.numpy(), thx.numpy(), rtol=1e-9, atol=1e-9)


def test_batch_tiles_give_the_same_result(monkeypatch):
    # A workspace that holds one image forces one batch tile per image; the results (and the
    # weight gradient accumulated over tiles) must not change.
    rng = np.random.default_rng(5)
    x = tg.from_numpy(rng.standard_normal((5, 3, 6, 6))).requires_grad_(True)
    w = tg.from_numpy(rng.standard_normal((4, 3, 3, 3))).requires_grad_(True)

    def run():
        y = F.conv2d(x, w, padding=1)
        return [y.numpy().copy()] + [g.numpy() for g in tg.grad([(y * y).sum()], [x, w])]

    whole = run()
    assert conv_ops.CK.tile_images(5, 3, 9, 36, conv_ops.WORKSPACE // 8) == 5
    monkeypatch.setattr(conv_ops, "WORKSPACE", 3 * 9 * 36 * 8)         # bytes of float64
    assert conv_ops.CK.tile_images(5, 3, 9, 36, conv_ops.WORKSPACE // 8) == 1
    for a, b in zip(run(), whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 2])
def test_large_images_match_torch(groups):
    # 17×16 outputs: at least DIRECT_L pixels per image, so conv_forward and conv_input run
    # one GEMM per image in place (the small samples above take the batch-tile path)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 17, 16))
    w = rng.standard_normal((6, 4 // groups, 3, 3))
    b = rng.standard_normal(6)
    _compare(F.conv2d, TF.conv2d, [x, w, b], {"padding": 1, "groups": groups},
             *TOL[np.float64], rng)
    wt = rng.standard_normal((4, 6 // groups, 3, 3))
    _compare(F.conv_transpose2d, TF.conv_transpose2d, [x, wt, b],
             {"padding": 1, "groups": groups}, *TOL[np.float64], rng)


def test_workspace_is_bounded():
    assert conv_ops.CK.tile_images(1000, 64, 9, 256, 1 << 20) == (1 << 20) // (64 * 9 * 256)
    assert conv_ops.CK.tile_images(1000, 512, 9, 4096, 1 << 20) == 1     # at least one image
    assert conv_ops.CK.tile_images(3, 1, 1, 1, 1 << 20) == 3              # at most the batch


def test_max_pool_propagates_nan_and_ignores_padding():
    x = np.full((1, 1, 2, 2), -5.0)
    x[0, 0, 1, 1] = np.nan
    y = F.max_pool2d(tg.from_numpy(x), 2, 1, 1).numpy()
    ref = TF.max_pool2d(torch.tensor(x), 2, 1, 1).numpy()
    np.testing.assert_array_equal(y, ref)           # -5 where the window holds no NaN


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(tg.zeros(1, 3, 5, 5), tg.zeros(2, 2, 3, 3)), r"conv2d: .*\(1, 3, 5, 5\)"),
    (lambda: F.conv2d(tg.zeros(1, 1, 2, 2), tg.zeros(1, 1, 3, 3)), "conv2d: kernel .* larger"),
    (lambda: F.conv2d(tg.zeros(1, 1, 5, 5), tg.zeros(1, 1, 3, 3), stride=1.5),
     "conv2d: stride"),
    (lambda: F.conv2d(tg.zeros(1, 1, 5, 5), tg.zeros(1, 1, 3, 3), stride=0), "conv2d: stride"),
    (lambda: F.conv2d(tg.zeros(1, 1, 5, 5), tg.zeros(1, 1, 3, 3).double()), "conv2d: .*dtype"),
    (lambda: F.conv_transpose2d(tg.zeros(1, 2, 5, 5), tg.zeros(3, 1, 3, 3)),
     r"conv_transpose2d: .*\(3, 1, 3, 3\)"),
    (lambda: F.max_pool2d(tg.zeros(1, 1, 2, 2), 3), "max_pool2d: kernel_size"),
    (lambda: F.avg_pool2d(tg.zeros(1, 1, 6, 6), 2, 2, 2), "avg_pool2d: padding"),
])
def test_errors_name_the_op_and_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# ------------------------------------------------------------------------------------ modules
def test_conv_modules_match_torch_with_the_same_parameters():
    rng = np.random.default_rng(8)
    ours = tg.nn.Sequential(tg.nn.Conv2d(3, 6, 3, padding=1, dtype="float64"),
                            tg.nn.MaxPool2d(2),
                            tg.nn.ConvTranspose2d(6, 4, (2, 3), stride=2, padding=(0, 1),
                                                  output_padding=1, dtype="float64"),
                            tg.nn.AvgPool2d(3, 1, 1),
                            tg.nn.Conv2d(4, 4, 3, groups=2, dilation=2, bias=False,
                                         dtype="float64"))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1),
                                 torch.nn.MaxPool2d(2),
                                 torch.nn.ConvTranspose2d(6, 4, (2, 3), stride=2,
                                                          padding=(0, 1), output_padding=1),
                                 torch.nn.AvgPool2d(3, 1, 1),
                                 torch.nn.Conv2d(4, 4, 3, groups=2, dilation=2, bias=False)
                                 ).double()
    sd = ours.state_dict()
    assert set(sd) == set(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert tuple(sd[k].shape) == tuple(v.shape), k
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd.items()})
    x = rng.standard_normal((2, 3, 8, 9))
    y = ours(tg.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-10)


def test_conv_init_follows_torch_bounds():
    tg.manual_seed(0)
    conv = tg.nn.Conv2d(8, 16, 3, groups=2)
    fan_in = 4 * 9
    bound = 1 / np.sqrt(fan_in)            # kaiming_uniform_(a=√5) gives U(±1/√fan_in)
    w = conv.weight.numpy()
    assert w.dtype == np.float32 and w.shape == (16, 4, 3, 3)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(conv.bias.numpy()).max() <= bound
    convt = tg.nn.ConvTranspose2d(6, 4, 2)
    assert convt.weight.shape == (6, 4, 2, 2)
    assert np.abs(convt.weight.numpy()).max() <= 1 / np.sqrt(4 * 4)
    assert conv.double().weight.numpy().dtype == np.float64
    with pytest.raises(ValueError, match="Conv2d: .*divisible by groups"):
        tg.nn.Conv2d(3, 4, 3, groups=2)
