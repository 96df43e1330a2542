"""Convolution workloads (issue 13): conv2d forward + backward (input, weight and bias
gradients) on the three layer shapes of a small CIFAR-style CNN, padding 1; max_pool2d
forward + backward; batch_norm (training) then max_pool2d, forward + backward. tensorgrad
and PyTorch run the very same code (``autograd_engine``: ``lib.nn.functional.conv2d`` exists
in both), numpy the course assignments' im2col version with numpy views and GEMMs. Each conv
row also reports GFLOP/s against the machine's sgemm peak (a conv2d forward is
2·N·O·OH·OW·(C/groups)·kh·kw FLOP, and its backward twice that: the input and the weight
gradient).
"""
import numpy as np

from tensorgrad.benchmarks.base import Workload, autograd_engine
from tensorgrad.benchmarks.wl_norm import ag_bn, np_bn_backward, np_bn_forward


def _out(p, axis):
    return p[axis] + 2 * p["pad"] - p["k"] + 1          # stride 1


def _conv_data(p, rng):
    x = rng.standard_normal((p["n"], p["c"], p["h"], p["h"]), dtype=np.float32)
    fan_in = p["c"] * p["k"] * p["k"]
    w = (rng.standard_normal((p["o"], p["c"], p["k"], p["k"])) / np.sqrt(fan_in))
    b = 0.1 * rng.standard_normal(p["o"])
    oh = _out(p, "h")
    g = rng.standard_normal((p["n"], p["o"], oh, oh), dtype=np.float32)
    return {"x": x, "w": w.astype(np.float32), "b": b.astype(np.float32), "g": g}


def _ag_conv(engine):
    def make(d, p):
        lib = autograd_engine(engine)
        x, w, b = (lib.from_numpy(d[k]).requires_grad_() for k in ("x", "w", "b"))
        g = lib.from_numpy(d["g"])
        conv2d = lib.nn.functional.conv2d

        def run():
            x.grad = w.grad = b.grad = None
            y = conv2d(x, w, b, padding=p["pad"])
            y.backward(g)
            return {"y": y.detach().numpy(), "gx": x.grad.numpy(), "gw": w.grad.numpy(),
                    "gb": b.grad.numpy()}
        return run
    return make


def _np_conv(d, p):
    """The course assignment's way: im2col with numpy views, one GEMM per pass, col2im by
    adding the kh·kw shifted slices back."""
    x, w, b, g = d["x"], d["w"], d["b"], d["g"]
    k, pad = p["k"], p["pad"]

    def run():
        n, c, h, wd = x.shape
        o = w.shape[0]
        oh, ow = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        col = win.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * oh * ow)   # [C·k·k, N·L]
        w2 = w.reshape(o, -1)
        y = (w2 @ col).reshape(o, n, oh, ow).transpose(1, 0, 2, 3) + b[:, None, None]
        g2 = g.transpose(1, 0, 2, 3).reshape(o, -1)                               # [O, N·L]
        gw = (g2 @ col.T).reshape(w.shape)
        gb = g.sum(axis=(0, 2, 3))
        gcol = (w2.T @ g2).reshape(c, k, k, n, oh, ow)
        gxp = np.zeros_like(xp)
        for i in range(k):
            for j in range(k):
                gxp[:, :, i:i + oh, j:j + ow] += gcol[:, i, j].transpose(1, 0, 2, 3)
        gx = gxp[:, :, pad:pad + h, pad:pad + wd]
        return {"y": np.ascontiguousarray(y), "gx": gx, "gw": gw, "gb": gb}
    return run


def _np_pool(d, p):
    """2×2 max pooling with a reshape, and its backward through the argmax mask."""
    x, g = d["x"], d["g"]

    def run():
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        y = blocks.max(axis=(3, 5))
        mask = blocks == y[:, :, :, None, :, None]          # no ties in random inputs
        gx = (mask * g[:, :, :, None, :, None]).reshape(x.shape)
        return {"y": y, "gx": gx}
    return run


def _conv_flops(p):
    oh = _out(p, "h")
    return 3 * 2.0 * p["n"] * p["o"] * oh * oh * p["c"] * p["k"] * p["k"]


def _conv_size(p):
    return f"({p['n']},{p['c']},{p['h']},{p['h']})∗({p['o']},{p['c']},{p['k']},{p['k']})"


def _pool_data(p, rng):
    shape = (p["n"], p["c"], p["h"], p["h"])
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape[:2] + (p["h"] // 2, p["h"] // 2), dtype=np.float32)
    return {"x": x, "g": g}


def _ag_pool(engine):
    def make(d, p):
        lib = autograd_engine(engine)
        x = lib.from_numpy(d["x"]).requires_grad_()
        g = lib.from_numpy(d["g"])
        pool = lib.nn.functional.max_pool2d

        def run():
            x.grad = None
            y = pool(x, 2)
            y.backward(g)
            return {"y": y.detach().numpy(), "gx": x.grad.numpy()}
        return run
    return make


def _pool_after(F, y):
    return F.max_pool2d(y, 2)


def _bn_pool_data(p, rng):
    d = _pool_data(p, rng)
    d["w"] = rng.uniform(0.5, 1.5, p["c"]).astype(np.float32)
    d["b"] = rng.standard_normal(p["c"], dtype=np.float32)
    return d


def _np_bn_pool(d, p):
    """The textbook batch norm formulas, then the reshape max-pool, and back."""
    x, g, w, b = d["x"], d["g"], d["w"], d["b"]

    def run():
        z, saved = np_bn_forward(x, w, b)
        pooled = _np_pool({"x": z, "g": g}, p)()
        return {"y": pooled["y"], **np_bn_backward(pooled["gx"], w, saved)}
    return run


def _conv(name, n, c, h, o, quick_n):
    impls = {"tensorgrad": _ag_conv("tensorgrad"), "numpy": _np_conv,
             "torch": _ag_conv("torch")}
    params = {"n": n, "c": c, "h": h, "o": o, "k": 3, "pad": 1}
    return Workload(name, "conv", "y = conv2d(x, W, b, padding=1), forward + backward "
                    "(gx, gW, gb)", params, {**params, "n": quick_n}, _conv_data, impls,
                    _conv_size, rtol=1e-3, atol=1e-4, flops=_conv_flops,
                    requires=("nn.functional.conv2d",))


WORKLOADS = [
    _conv("conv2d_3x32x32", 64, 3, 32, 32, 16),
    _conv("conv2d_32x16x16", 64, 32, 16, 64, 16),
    _conv("conv2d_64x8x8", 64, 64, 8, 128, 16),
    Workload("max_pool2d_32x32x32", "conv", "y = max_pool2d(x, 2), forward + backward",
             {"n": 64, "c": 32, "h": 32}, {"n": 16, "c": 32, "h": 32}, _pool_data,
             {"tensorgrad": _ag_pool("tensorgrad"), "numpy": _np_pool,
              "torch": _ag_pool("torch")},
             lambda p: f"({p['n']},{p['c']},{p['h']},{p['h']})", rtol=0.0, atol=0.0,
             requires=("nn.functional.max_pool2d",)),
    Workload("bn_pool_32x32x32", "conv", "y = max_pool2d(batch_norm(x, training=True), 2), "
             "forward + backward (gx, gW, gb)",
             {"n": 64, "c": 32, "h": 32}, {"n": 16, "c": 32, "h": 32}, _bn_pool_data,
             {"tensorgrad": ag_bn("tensorgrad", _pool_after), "numpy": _np_bn_pool,
              "torch": ag_bn("torch", _pool_after)},
             lambda p: f"({p['n']},{p['c']},{p['h']},{p['h']})", rtol=1e-3, atol=1e-4,
             requires=("nn.functional.batch_norm", "nn.functional.max_pool2d")),
]
