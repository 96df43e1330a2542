"""Normalisation workloads (issue 13): batch norm in training mode, forward + backward, at
the shape of a CIFAR-style CNN's first block, (64, 32, 32, 32) float32.

tensorgrad and PyTorch run the same code (``autograd_engine``: both have
``nn.functional.batch_norm``); numpy runs the textbook formulas. Results: the output and the
gradients of the input, weight and bias.
"""
import numpy as np

from tensorgrad.benchmarks.base import Workload, autograd_engine


def _bn_data(p, rng):
    shape = (p["n"], p["c"], p["h"], p["w"])
    return {"x": rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5,
            "g": rng.standard_normal(shape, dtype=np.float32),
            "w": rng.uniform(0.5, 1.5, p["c"]).astype(np.float32),
            "b": rng.standard_normal(p["c"], dtype=np.float32)}


def ag_bn(engine, after=None):
    """Batch norm in training mode, forward + backward, for ``engine``; ``after(F, y)``, if
    given, is applied to its output first (the bn + max-pool workload of wl_conv)."""
    def make(d, p):
        lib = autograd_engine(engine)
        x = lib.from_numpy(d["x"]).requires_grad_()
        w = lib.from_numpy(d["w"]).requires_grad_()
        b = lib.from_numpy(d["b"]).requires_grad_()
        g = lib.from_numpy(d["g"])
        rm = lib.from_numpy(np.zeros(p["c"], np.float32))
        rv = lib.from_numpy(np.ones(p["c"], np.float32))
        F = lib.nn.functional

        def run():
            x.grad = w.grad = b.grad = None
            y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
            if after is not None:
                y = after(F, y)
            y.backward(g)
            return {"y": y.detach().numpy(), "gx": x.grad.numpy(), "gw": w.grad.numpy(),
                    "gb": b.grad.numpy()}
        return run
    return make


_AXES = (0, 2, 3)


def np_bn_forward(x, w, b):
    """The textbook batch norm of x [N, C, H, W] in training mode: (y, what backward needs)."""
    mu = x.mean(axis=_AXES, keepdims=True)
    xc = x - mu
    r = 1 / np.sqrt((xc * xc).mean(axis=_AXES, keepdims=True) + np.float32(1e-5))
    xh = xc * r
    return xh * w[:, None, None] + b[:, None, None], (xh, r)


def np_bn_backward(g, w, saved):
    """The gradients of np_bn_forward's input, weight and bias for the output gradient g."""
    xh, r = saved
    m = g.size // g.shape[1]
    gb = g.sum(axis=_AXES)
    gw = (g * xh).sum(axis=_AXES)
    gx = (w[:, None, None] * r) * (g - gb[:, None, None] / m - xh * gw[:, None, None] / m)
    return {"gx": gx, "gw": gw, "gb": gb}


def _np_bn(d, p):
    x, g, w, b = d["x"], d["g"], d["w"], d["b"]

    def run():
        y, saved = np_bn_forward(x, w, b)
        return {"y": y, **np_bn_backward(g, w, saved)}
    return run


def _bn_size(p):
    return f"{p['n']}×{p['c']}×{p['h']}×{p['w']} float32"


WORKLOADS = [
    Workload("batch_norm_train", "norm", "batch_norm (training), forward + backward",
             {"n": 64, "c": 32, "h": 32, "w": 32}, {"n": 16, "c": 32, "h": 16, "w": 16},
             _bn_data, {"tensorgrad": ag_bn("tensorgrad"), "numpy": _np_bn,
                        "torch": ag_bn("torch")},
             _bn_size, rtol=1e-3, atol=1e-4, requires=("nn.functional.batch_norm",)),
]
