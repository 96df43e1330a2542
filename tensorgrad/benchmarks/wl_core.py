"""Core-engine workloads (issue 2): elementwise add/mul and ReLU forward+backward, matmul
forward+backward, and the per-op cost of a chain of tiny ops.

tensorgrad and PyTorch run the very same workload code (``autograd_engine``); numpy runs
the hand-written flat version. Every implementation produces the same results: the forward
output and one gradient buffer per input (``.grad`` never aliases the upstream gradient, so
the numpy versions copy where the gradient passes through unchanged).
"""
import numpy as np

from tensorgrad.benchmarks.base import Workload, autograd_engine

M = 1024 * 1024


def _count(n):
    return f"{n // M}M float32" if n % M == 0 else f"{n:,} float32"


def _vectors(names):
    def data(p, rng):
        return {k: rng.standard_normal(p["n"], dtype=np.float32) for k in names}
    return data


# --- elementwise z = x (+|*) y ---------------------------------------------------------------
def _ag_binary(engine, op):
    """tensorgrad and torch run the same code (see ``autograd_engine``)."""
    def make(d, p):
        lib = autograd_engine(engine)
        x = lib.from_numpy(d["x"]).requires_grad_()
        y = lib.from_numpy(d["y"]).requires_grad_()
        g = lib.from_numpy(d["g"])

        def run():
            x.grad = y.grad = None
            z = x + y if op == "add" else x * y
            z.backward(g)
            return {"z": z.detach().numpy(), "gx": x.grad.numpy(), "gy": y.grad.numpy()}
        return run
    return make


def _np_add(d, p):
    x, y, g = d["x"], d["y"], d["g"]

    def run():
        z = x + y
        dx = g.copy()           # add gate: the gradient passes through unchanged
        dy = g.copy()
        return {"z": z, "gx": dx, "gy": dy}
    return run


def _np_mul(d, p):
    x, y, g = d["x"], d["y"], d["g"]

    def run():
        z = x * y
        dx = g * y              # mul gate: the gradients swap the inputs
        dy = g * x
        return {"z": z, "gx": dx, "gy": dy}
    return run


# --- ReLU ------------------------------------------------------------------------------------
def _ag_relu(engine):
    def make(d, p):
        lib = autograd_engine(engine)
        x = lib.from_numpy(d["x"]).requires_grad_()
        g = lib.from_numpy(d["g"])

        def run():
            x.grad = None
            y = lib.relu(x)
            y.backward(g)
            return {"y": y.detach().numpy(), "gx": x.grad.numpy()}
        return run
    return make


def _np_relu(d, p):
    x, g = d["x"], d["g"]

    def run():
        y = np.maximum(x, 0)
        dx = g * (y > 0)        # the diagonal Jacobian applied as a mask
        return {"y": y, "gx": dx}
    return run


# --- matmul y = x @ W ------------------------------------------------------------------------
def _mm_data(p, rng):
    n, k, m = p["n"], p["k"], p["m"]
    return {"x": rng.standard_normal((n, k), dtype=np.float32),
            "w": rng.standard_normal((k, m), dtype=np.float32),
            "g": rng.standard_normal((n, m), dtype=np.float32)}


def _mm_size(p):
    return f"{p['n']}×{p['k']} · {p['k']}×{p['m']}"


def _ag_mm(engine):
    def make(d, p):
        lib = autograd_engine(engine)
        x = lib.from_numpy(d["x"]).requires_grad_()
        w = lib.from_numpy(d["w"]).requires_grad_()
        g = lib.from_numpy(d["g"])

        def run():
            x.grad = w.grad = None
            y = x @ w
            y.backward(g)
            return {"y": y.detach().numpy(), "gx": x.grad.numpy(), "gw": w.grad.numpy()}
        return run
    return make


def _np_mm(d, p):
    x, w, g = d["x"], d["w"], d["g"]

    def run():
        y = x @ w
        dx = g @ w.T            # dL/dx = dL/dy · Wᵀ
        dw = x.T @ g            # dL/dW = xᵀ · dL/dy
        return {"y": y, "gx": dx, "gw": dw}
    return run


# --- tiny-op chain: 33 × (mul, add, tanh) + sum = 100 ops on 4×4 -----------------------------
CHAIN_STEPS = 33
CHAIN_OPS = 3 * CHAIN_STEPS + 1


def _chain_data(p, rng):
    s = p["side"]
    return {"x": rng.standard_normal((s, s), dtype=np.float32),
            "w": (0.5 * rng.standard_normal((s, s))).astype(np.float32),
            "b": (0.1 * rng.standard_normal((s, s))).astype(np.float32)}


def _ag_chain(engine):
    def make(d, p):
        lib = autograd_engine(engine)
        x, w, b = (lib.from_numpy(d[k]).requires_grad_() for k in ("x", "w", "b"))

        def run():
            x.grad = w.grad = b.grad = None
            h = x
            for _ in range(CHAIN_STEPS):
                h = lib.tanh(h * w + b)
            loss = h.sum()
            loss.backward()
            return {"loss": loss.item(), "gx": x.grad.numpy(), "gw": w.grad.numpy(),
                    "gb": b.grad.numpy()}
        return run
    return make


def _tg_chain_replay(d, p):
    """The chain recorded once as a tg.Graph, then replayed (planned) at every call."""
    import tensorgrad as tg
    x, w, b = (tg.from_numpy(d[k].copy()).requires_grad_() for k in ("x", "w", "b"))
    h = x
    for _ in range(CHAIN_STEPS):
        h = tg.tanh(h * w + b)
    graph = tg.Graph(h.sum())

    def run():
        x.grad = w.grad = b.grad = None
        loss = graph.forward()
        graph.backward()
        return {"loss": loss.item(), "gx": x.grad.numpy(), "gw": w.grad.numpy(),
                "gb": b.grad.numpy()}
    return run


def _np_chain(d, p):
    x, w, b = d["x"], d["w"], d["b"]

    def run():
        hs = [x]
        for _ in range(CHAIN_STEPS):             # forward, keeping each tanh output
            hs.append(np.tanh(hs[-1] * w + b))
        loss = hs[-1].sum()
        dh = np.ones_like(x)                     # dL/dh for the sum
        dw = np.zeros_like(w)
        db = np.zeros_like(b)
        for i in range(CHAIN_STEPS, 0, -1):      # backward: the forward reversed
            dc = dh * (1 - hs[i] * hs[i])        # tanh' = 1 - tanh²
            db += dc                             # add gate; fan-out of b sums
            dw += dc * hs[i - 1]                 # mul gate, swapped
            dh = dc * w
        return {"loss": float(loss), "gx": dh, "gw": dw, "gb": db}
    return run


WORKLOADS = [
    Workload("add", "elementwise", "z = x + y, forward + backward",
             {"n": 16 * M}, {"n": 2 * M}, _vectors("xyg"),
             {"tensorgrad": _ag_binary("tensorgrad", "add"), "numpy": _np_add,
              "torch": _ag_binary("torch", "add")},
             lambda p: _count(p["n"]), rtol=1e-6, atol=0.0),
    Workload("mul", "elementwise", "z = x * y, forward + backward",
             {"n": 16 * M}, {"n": 2 * M}, _vectors("xyg"),
             {"tensorgrad": _ag_binary("tensorgrad", "mul"), "numpy": _np_mul,
              "torch": _ag_binary("torch", "mul")},
             lambda p: _count(p["n"]), rtol=1e-6, atol=0.0),
    Workload("relu", "elementwise", "y = relu(x), forward + backward",
             {"n": 16 * M}, {"n": 2 * M}, _vectors("xg"),
             {"tensorgrad": _ag_relu("tensorgrad"), "numpy": _np_relu, "torch": _ag_relu("torch")},
             lambda p: _count(p["n"]), rtol=0.0, atol=0.0),
    Workload("matmul_64x4096", "matmul", "y = x @ W, forward + backward (3 GEMMs)",
             {"n": 64, "k": 4096, "m": 4096}, {"n": 64, "k": 2048, "m": 2048}, _mm_data,
             {"tensorgrad": _ag_mm("tensorgrad"), "numpy": _np_mm, "torch": _ag_mm("torch")},
             _mm_size, memory=True),
    Workload("matmul_1024", "matmul", "y = x @ W, forward + backward (3 GEMMs)",
             {"n": 1024, "k": 1024, "m": 1024}, {"n": 512, "k": 512, "m": 512}, _mm_data,
             {"tensorgrad": _ag_mm("tensorgrad"), "numpy": _np_mm, "torch": _ag_mm("torch")},
             _mm_size),
    Workload("tiny_chain", "overhead", f"{CHAIN_OPS}-op chain (mul, add, tanh) + sum on 4×4, "
             "forward + backward, time per op",
             {"side": 4}, {"side": 4}, _chain_data,
             {"tensorgrad": _ag_chain("tensorgrad"), "numpy": _np_chain,
              "torch": _ag_chain("torch")},
             lambda p: f"{CHAIN_OPS} ops, {p['side']}×{p['side']}", rtol=1e-4, atol=1e-5,
             per=CHAIN_OPS, per_unit="op"),
    Workload("tiny_chain_replay", "overhead", "the same chain, tensorgrad replaying "
             "tg.Graph(loss) (planned: kernel calls only) against numpy and torch eager",
             {"side": 4}, {"side": 4}, _chain_data,
             {"tensorgrad": _tg_chain_replay, "numpy": _np_chain,
              "torch": _ag_chain("torch")},
             lambda p: f"{CHAIN_OPS} ops, {p['side']}×{p['side']}", rtol=1e-4, atol=1e-5,
             per=CHAIN_OPS, per_unit="op", requires=("Graph",)),
]
