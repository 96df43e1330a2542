"""Training workloads (issue 3 and the optimiser update of issue 5): softmax and SVM loss
forward+backward, one SGD step of the assignments' two-layer net (eager, Graph replay, and
Graph.step with the update planned in), and SGD-momentum / Adam updates over 10M parameters.

The numpy versions are the course's vectorised formulas, written flat: the forward pass,
then one line per gradient, in reverse.
"""
import numpy as np

from tensorgrad.benchmarks.base import Workload, autograd_engine, need_torch

LOSS_API = {"softmax": "nn.functional.cross_entropy",
            "svm": "nn.functional.multiclass_hinge_loss"}


# --- losses ----------------------------------------------------------------------------------
def _loss_data(p, rng):
    n, c = p["n"], p["c"]
    return {"s": (2.0 * rng.standard_normal((n, c))).astype(np.float32),
            "y": rng.integers(0, c, n).astype(np.int64)}


def _loss_size(p):
    return f"scores {p['n']}×{p['c']}"


def _tg_loss(kind):
    def make(d, p):
        import tensorgrad as tg
        F = tg.nn.functional
        fn = F.cross_entropy if kind == "softmax" else F.multiclass_hinge_loss
        s = tg.from_numpy(d["s"]).requires_grad_()
        y = tg.from_numpy(d["y"])

        def run():
            s.grad = None
            loss = fn(s, y)
            loss.backward()
            return {"loss": loss.item(), "ds": s.grad.numpy()}
        return run
    return make


def _torch_loss(kind):
    def make(d, p):
        torch = need_torch()
        F = torch.nn.functional
        c = d["s"].shape[1]
        s = torch.from_numpy(d["s"]).requires_grad_()
        y = torch.from_numpy(d["y"])

        def run():
            s.grad = None
            if kind == "softmax":
                loss = F.cross_entropy(s, y)
            else:   # multi_margin_loss divides by the number of classes; the course does not
                loss = F.multi_margin_loss(s, y) * c
            loss.backward()
            return {"loss": loss.item(), "ds": s.grad.numpy()}
        return run
    return make


def _np_softmax_loss(d, p):
    s, y = d["s"], d["y"]
    n = s.shape[0]
    rows = np.arange(n)

    def run():
        shifted = s - s.max(axis=1, keepdims=True)       # stable: exp never overflows
        e = np.exp(shifted)
        sums = e.sum(axis=1, keepdims=True)
        loss = -(shifted[rows, y] - np.log(sums[:, 0])).mean()
        ds = e / sums                                    # softmax - one-hot, over N
        ds[rows, y] -= 1
        ds /= n
        return {"loss": float(loss), "ds": ds}
    return run


def _np_svm_loss(d, p):
    s, y = d["s"], d["y"]
    n = s.shape[0]
    rows = np.arange(n)

    def run():
        correct = s[rows, y][:, None]
        margins = np.maximum(0, s - correct + 1)
        margins[rows, y] = 0
        loss = margins.sum() / n
        mask = (margins > 0).astype(s.dtype)             # each active margin: +1 for j,
        mask[rows, y] = -mask.sum(axis=1)                # -1 for the correct class
        ds = mask / n
        return {"loss": float(loss), "ds": ds}
    return run


def _loss_workload(kind, label, n, c, quick_n):
    np_impl = _np_softmax_loss if kind == "softmax" else _np_svm_loss
    what = "softmax (cross-entropy)" if kind == "softmax" else "multiclass SVM (hinge)"
    return Workload(f"{kind}_loss_{label}", "loss", f"{what} loss, forward + backward",
                    {"n": n, "c": c}, {"n": quick_n, "c": c}, _loss_data,
                    {"tensorgrad": _tg_loss(kind), "numpy": np_impl,
                     "torch": _torch_loss(kind)},
                    _loss_size, rtol=1e-4, atol=1e-5, requires=(LOSS_API[kind],))


# --- the two-layer net: one SGD step ---------------------------------------------------------
REG, LR = 1e-3, 1e-3


def _net_data(p, rng):
    n, d, h, c = p["n"], p["d"], p["h"], p["c"]
    f32 = np.float32
    return {"X": rng.standard_normal((n, d), dtype=f32),
            "y": rng.integers(0, c, n).astype(np.int64),
            "W1": (rng.standard_normal((d, h)) * np.sqrt(2.0 / d)).astype(f32),
            "b1": (0.01 * rng.standard_normal(h)).astype(f32),
            "W2": (rng.standard_normal((h, c)) * np.sqrt(2.0 / h)).astype(f32),
            "b2": (0.01 * rng.standard_normal(c)).astype(f32)}


def _net_size(p):
    return f"X {p['n']}×{p['d']}, hidden {p['h']}, {p['c']} classes"


def _tg_net(d):
    """Model, loss closure and optimiser, initialised from the shared weights.
    nn.Linear stores W as [out, in] (x·Wᵀ), so it gets W1ᵀ and W2ᵀ."""
    import tensorgrad as tg
    l1 = tg.nn.Linear(d["W1"].shape[0], d["W1"].shape[1])
    l2 = tg.nn.Linear(d["W2"].shape[0], d["W2"].shape[1])
    with tg.no_grad():
        for layer, w, b in ((l1, d["W1"], d["b1"]), (l2, d["W2"], d["b2"])):
            layer.weight.copy_(tg.from_numpy(np.ascontiguousarray(w.T)))
            layer.bias.copy_(tg.from_numpy(b))
    model = tg.nn.Sequential(l1, tg.nn.ReLU(), l2)
    X, y = tg.from_numpy(d["X"]), tg.from_numpy(d["y"])
    F = tg.nn.functional

    def loss_fn():
        reg = (l1.weight * l1.weight).sum() + (l2.weight * l2.weight).sum()
        return F.cross_entropy(model(X), y) + REG * reg

    opt = tg.optim.SGD(model.parameters(), lr=LR)
    return l1, l2, loss_fn, opt


def _net_results(loss, l1, l2):
    """The step's loss, gradients and updated parameters in the numpy layout ([in, out])."""
    return {"loss": loss, "dW1": l1.weight.grad.numpy().T, "db1": l1.bias.grad.numpy(),
            "dW2": l2.weight.grad.numpy().T, "db2": l2.bias.grad.numpy(),
            "W1": l1.weight.detach().numpy().T, "W2": l2.weight.detach().numpy().T,
            "b1": l1.bias.detach().numpy(), "b2": l2.bias.detach().numpy()}


def _tg_step(d, p):
    l1, l2, loss_fn, opt = _tg_net(d)

    def run():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        return _net_results(loss.item(), l1, l2)
    return run


def _tg_step_replay(d, p):
    """Build the graph once; each step re-runs it in place after the in-place SGD update."""
    import tensorgrad as tg
    l1, l2, loss_fn, opt = _tg_net(d)
    graph = tg.Graph(loss_fn())

    def run():
        opt.zero_grad()     # None: backward hands its fresh buffers over, no zero-fill + add
        loss = graph.forward()
        graph.backward()
        opt.step()
        return _net_results(loss.item(), l1, l2)
    return run


def _tg_step_planned(d, p):
    """The same, as one ``graph.step(opt)``: the SGD update planned into the backward."""
    import tensorgrad as tg
    l1, l2, loss_fn, opt = _tg_net(d)
    graph = tg.Graph(loss_fn())

    def run():
        loss = graph.step(opt)
        return _net_results(loss.item(), l1, l2)
    return run


def _torch_step(d, p):
    torch = need_torch()
    nn, F = torch.nn, torch.nn.functional
    l1 = nn.Linear(*d["W1"].shape)
    l2 = nn.Linear(*d["W2"].shape)
    with torch.no_grad():
        for layer, w, b in ((l1, d["W1"], d["b1"]), (l2, d["W2"], d["b2"])):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    model = nn.Sequential(l1, nn.ReLU(), l2)
    X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def run():
        opt.zero_grad()
        reg = (l1.weight * l1.weight).sum() + (l2.weight * l2.weight).sum()
        loss = F.cross_entropy(model(X), y) + REG * reg
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "dW1": l1.weight.grad.numpy().T,
                "db1": l1.bias.grad.numpy(), "dW2": l2.weight.grad.numpy().T,
                "db2": l2.bias.grad.numpy(), "W1": l1.weight.detach().numpy().T,
                "W2": l2.weight.detach().numpy().T, "b1": l1.bias.detach().numpy(),
                "b2": l2.bias.detach().numpy()}
    return run


def _np_step(d, p):
    X, y = d["X"], d["y"]
    params = {k: d[k].copy() for k in ("W1", "b1", "W2", "b2")}
    n = X.shape[0]
    rows = np.arange(n)

    def run():
        W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
        h = X @ W1 + b1                                  # forward
        a = np.maximum(h, 0)
        s = a @ W2 + b2
        shifted = s - s.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        sums = e.sum(axis=1, keepdims=True)
        data_loss = -(shifted[rows, y] - np.log(sums[:, 0])).mean()
        loss = data_loss + REG * (np.sum(W1 * W1) + np.sum(W2 * W2))
        ds = e / sums                                    # backward, the forward reversed
        ds[rows, y] -= 1
        ds /= n
        dW2 = a.T @ ds + 2 * REG * W2
        db2 = ds.sum(axis=0)
        dh = (ds @ W2.T) * (h > 0)
        dW1 = X.T @ dh + 2 * REG * W1
        db1 = dh.sum(axis=0)
        W1 -= LR * dW1                                   # SGD, in place
        b1 -= LR * db1
        W2 -= LR * dW2
        b2 -= LR * db2
        return {"loss": float(loss), "dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2,
                "W1": W1, "W2": W2, "b1": b1, "b2": b2}
    return run


NET = {"n": 128, "d": 3072, "h": 100, "c": 10}
NET_API = ("nn.Linear", "nn.Sequential", "nn.functional.cross_entropy", "optim.SGD")
NET_TOL = {"rtol": 1e-3, "atol": 1e-4, "check_calls": 2}


# --- optimiser updates -----------------------------------------------------------------------
SGD_HP = {"lr": 0.1, "momentum": 0.9}
ADAM_HP = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}


def _opt_data(p, rng):
    shapes = p["shapes"]
    # Tiny starting values, so the checked parameters are dominated by the updates.
    return {"p": [(1e-4 * rng.standard_normal(s)).astype(np.float32) for s in shapes],
            "g": [rng.standard_normal(s, dtype=np.float32) for s in shapes]}


def _opt_size(p):
    total = sum(int(np.prod(s)) for s in p["shapes"])
    return f"{total / 1e6:g}M params in {len(p['shapes'])} tensors"


def _ag_opt(engine, kind):
    """tensorgrad and torch run the same code (see ``autograd_engine``)."""
    def make(d, p):
        lib = autograd_engine(engine)
        params = []
        for w, g in zip(d["p"], d["g"]):
            t = lib.from_numpy(w.copy()).requires_grad_()
            t.grad = lib.from_numpy(g)
            params.append(t)
        opt = (lib.optim.SGD(params, **SGD_HP) if kind == "sgd"
               else lib.optim.Adam(params, **ADAM_HP))

        def run():
            opt.step()
            return {f"p{i}": t.detach().numpy() for i, t in enumerate(params)}
        return run
    return make


def _np_sgd(d, p):
    ws = [w.copy() for w in d["p"]]
    vs = [np.zeros_like(w) for w in ws]
    lr, mu = SGD_HP["lr"], SGD_HP["momentum"]

    def run():
        for w, g, v in zip(ws, d["g"], vs):    # the course's sgd_momentum, in place
            v *= mu
            v -= lr * g                         # v = mu·v - lr·dw
            w += v                              # w = w + v
        return {f"p{i}": w for i, w in enumerate(ws)}
    return run


def _np_adam(d, p):
    ws = [w.copy() for w in d["p"]]
    ms = [np.zeros_like(w) for w in ws]
    vs = [np.zeros_like(w) for w in ws]
    lr, (b1, b2), eps = ADAM_HP["lr"], ADAM_HP["betas"], ADAM_HP["eps"]
    t = [0]

    def run():
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for w, g, m, v in zip(ws, d["g"], ms, vs):   # the course's adam, in place
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            w -= (lr / c1) * m / (np.sqrt(v / c2) + eps)
        return {f"p{i}": w for i, w in enumerate(ws)}
    return run


def _np_step_gemms(d, p):
    """The step's five GEMMs alone, into preallocated outputs: the floor that a step at the
    speed of its kernels approaches. The same GEMMs as the step's: nn.Linear (tensorgrad's
    and torch's) stores W as [out, in], so forward is x·W1ᵀ, h·W2ᵀ and backward dsᵀ·a,
    ds·W2, dhᵀ·x (the course's W [in, out] layout runs other BLAS shapes: ±10% here)."""
    X = d["X"]
    W1t, W2t = np.ascontiguousarray(d["W1"].T), np.ascontiguousarray(d["W2"].T)
    n, h, c = X.shape[0], W1t.shape[0], W2t.shape[0]
    f32 = np.float32
    a, s = np.empty((n, h), f32), np.empty((n, c), f32)
    dW2, dh, dW1 = np.empty((c, h), f32), np.empty((n, h), f32), np.empty(W1t.shape, f32)

    def run():
        np.matmul(X, W1t.T, out=a)
        np.matmul(a, W2t.T, out=s)
        np.matmul(s.T, a, out=dW2)
        np.matmul(s, W2t, out=dh)
        np.matmul(dh.T, X, out=dW1)
        return {}
    return run


OPT_FULL = {"shapes": ((2500, 1000),) * 4}
OPT_QUICK = {"shapes": ((500, 1000),) * 4}

WORKLOADS = [
    _loss_workload("softmax", "small", 128, 10, 128),
    _loss_workload("softmax", "large", 4096, 1000, 1024),
    _loss_workload("svm", "small", 128, 10, 128),
    _loss_workload("svm", "large", 4096, 1000, 1024),
    Workload("train_step", "training", "two-layer net SGD step: forward, softmax loss + "
             "L2, backward, update (eager)", NET, NET, _net_data,
             {"tensorgrad": _tg_step, "numpy": _np_step, "torch": _torch_step}, _net_size,
             requires=NET_API, **NET_TOL),
    Workload("train_step_replay", "training", "the same step, tensorgrad replaying "
             "tg.Graph(loss) in place (numpy/torch as in train_step)", NET, NET, _net_data,
             {"tensorgrad": _tg_step_replay, "numpy": _np_step, "torch": _torch_step},
             _net_size, requires=NET_API + ("Graph",), **NET_TOL),
    Workload("train_step_replay_vs_gemm", "training", "the replayed step against its five "
             "GEMMs alone (numpy column: the GEMMs into preallocated outputs, a floor) and "
             "torch eager", NET, NET, _net_data,
             {"tensorgrad": _tg_step_replay, "numpy": _np_step_gemms, "torch": _torch_step},
             _net_size, requires=NET_API + ("Graph",), floor=("numpy",), **NET_TOL),
    Workload("train_step_planned_vs_gemm", "training", "the step as tg.Graph.step(opt), "
             "the SGD update planned into the backward pass, against its five GEMMs alone "
             "(numpy column, a floor) and torch eager", NET, NET, _net_data,
             {"tensorgrad": _tg_step_planned, "numpy": _np_step_gemms, "torch": _torch_step},
             _net_size, requires=NET_API + ("Graph",), floor=("numpy",), **NET_TOL),
    Workload("sgd_momentum", "optim", "SGD with momentum 0.9, one update",
             OPT_FULL, OPT_QUICK, _opt_data,
             {"tensorgrad": _ag_opt("tensorgrad", "sgd"), "numpy": _np_sgd,
              "torch": _ag_opt("torch", "sgd")},
             _opt_size, rtol=1e-4, atol=1e-5, check_calls=2, requires=("optim.SGD",)),
    Workload("adam", "optim", "Adam, one update", OPT_FULL, OPT_QUICK, _opt_data,
             {"tensorgrad": _ag_opt("tensorgrad", "adam"), "numpy": _np_adam,
              "torch": _ag_opt("torch", "adam")},
             _opt_size, rtol=1e-3, atol=1e-4, check_calls=2, requires=("optim.Adam",)),
]
