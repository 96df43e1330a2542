"""Planned Graph replay: bitwise equal to eager steps, allocation-free, and its rules.

(Every registered op is also checked by tests/test_registry.py::
test_planned_replay_equals_eager_bitwise.)"""
import resource
import tracemalloc

import numpy as np
import pytest

import tensorgrad as tg

F = tg.nn.functional


def _mlp(seed, d=20, h=16, c=4, dtype=np.float32):
    tg.manual_seed(seed)
    model = tg.nn.Sequential(tg.nn.Linear(d, h), tg.nn.ReLU(), tg.nn.Linear(h, c))
    return model if dtype == np.float32 else model.double()


def _batches(n_steps, n=8, d=20, c=4, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n))
            for _ in range(n_steps)]


def _loss(model, X, y):
    reg = sum((p * p).sum() for p in model.parameters() if p.ndim == 2)
    return F.cross_entropy(model(X), y) + 1e-3 * reg


def _one_step(g, opt, use_step):
    """A training step through Graph g: ``g.step(opt)``, or the four calls it stands for."""
    if use_step:
        return g.step(opt)
    opt.zero_grad()
    g.forward()
    g.backward()
    opt.step()
    return g.root


def _train(batches, planned, momentum=0.9, make_opt=None, dtype=np.float32, between=None):
    """Parameters (and the optimizer) after training over ``batches``: through a planned
    Graph (``planned=True``: the four calls; ``"step"``: ``Graph.step``), or eagerly.
    ``between(i, opt)`` runs before step i (e.g. an lr change)."""
    model = _mlp(0, dtype=dtype)
    opt = (make_opt or (lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=momentum)))(
        model.parameters())
    if planned:
        X = tg.from_numpy(batches[0][0].copy())
        y = tg.from_numpy(batches[0][1].copy())
        g = tg.Graph(_loss(model, X, y))
        for i, (xb, yb) in enumerate(batches):
            X.copy_(xb)
            y.copy_(yb)
            if between is not None:
                between(i, opt)
            _one_step(g, opt, planned == "step")
        assert g.planned and g.plan_info()["unplanned_reason"] is None
    else:
        for i, (xb, yb) in enumerate(batches):
            if between is not None:
                between(i, opt)
            opt.zero_grad()
            _loss(model, tg.from_numpy(xb), tg.from_numpy(yb)).backward()
            opt.step()
    params = [p.numpy().copy() for p in model.parameters()]
    return (params, opt) if make_opt is not None else params


def test_training_through_a_planned_graph_equals_eager_training_bitwise():
    batches = _batches(6)
    for a, b in zip(_train(batches, True), _train(batches, False), strict=True):
        np.testing.assert_array_equal(a, b)


def _chain(x, w, b, steps=33):
    h = x
    for _ in range(steps):
        h = tg.tanh(h * w + b)
    return h.sum()


def test_a_chain_of_elementwise_ops_is_planned_into_kernel_calls_only():
    rng = np.random.default_rng(0)
    x, w, b = (tg.tensor(rng.standard_normal((4, 4)), requires_grad=True) for _ in range(3))
    g = tg.Graph(_chain(x, w, b))
    g.forward()
    g.backward()
    info = g.plan_info()
    assert info["forward"] == (100, 0)          # 99 elementwise kernels + the sum
    assert info["backward"][1] == 0 and info["backward"][0] > 100


def test_gradients_are_the_graphs_buffers_handed_out_at_every_step():
    batches = _batches(3)
    model = _mlp(0)
    X, y = tg.from_numpy(batches[0][0].copy()), tg.from_numpy(batches[0][1].copy())
    g = tg.Graph(_loss(model, X, y))
    seen = []
    for _ in range(3):
        model.zero_grad()
        g.forward()
        g.backward()
        seen.append([p.grad for p in model.parameters()])
    # from the first planned backward on, the same tensors (the plan's buffers)
    assert all(a is b for a, b in zip(seen[1], seen[2]))


def test_a_gradient_left_in_place_is_accumulated_into():
    rng = np.random.default_rng(1)
    x, w, b = (tg.tensor(rng.standard_normal((3, 3)), requires_grad=True) for _ in range(3))
    g = tg.Graph(_chain(x, w, b, steps=3))
    g.forward()
    g.backward()                        # taped
    first = w.grad.numpy().copy()
    g.forward()
    g.backward()                        # planned, into the plan's own buffer: 2x
    np.testing.assert_allclose(w.grad.numpy(), 2 * first, rtol=1e-12)
    mine = w.grad
    w.grad = tg.zeros(3, 3, dtype=tg.float64) + 1.0      # someone else's tensor: added to
    g.backward()
    np.testing.assert_allclose(w.grad.numpy(), 1.0 + first, rtol=1e-12)
    assert w.grad is not mine


def test_replaying_after_an_input_was_replaced_raises_naming_it():
    model = _mlp(0)
    (xb, yb), = _batches(1)
    X, y = tg.from_numpy(xb.copy()), tg.from_numpy(yb.copy())
    g = tg.Graph(_loss(model, X, y))
    g.forward()
    g.backward()
    X.data = np.zeros_like(xb)          # a new array: the plan reads the old one
    with pytest.raises(RuntimeError, match=r"Graph\.forward: input \d+ \(an input, recorded "
                                           r"with shape \(8, 20\), now \(8, 20\)\).*replaced"):
        g.forward()
    X.data = xb.copy()
    with pytest.raises(RuntimeError, match="replaced"):
        g.forward()                     # still not the recorded memory
    X = tg.from_numpy(xb.copy())
    g = tg.Graph(_loss(model, X, y))
    g.forward()
    g.backward()
    w = next(iter(model.parameters()))
    w.data = w.numpy() * 1.0
    with pytest.raises(RuntimeError, match=r"Graph\.backward: input \d+ \(a leaf, recorded "
                                           r"with shape \(16, 20\)"):
        g.backward()


def test_custom_functions_run_as_python_steps_inside_a_plan():
    class Cube(tg.Function):
        """z = x³;   gx = 3 x² g"""
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return tg.from_numpy(x.numpy() ** 3)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    rng = np.random.default_rng(2)
    x = tg.tensor(rng.standard_normal(5), requires_grad=True)
    g = tg.Graph((Cube.apply(x) * 2.0).sum())
    for k in range(3):
        with tg.no_grad():
            x.copy_(tg.tensor(rng.standard_normal(5)))
        x.grad = None
        loss = g.forward()
        g.backward()
        want = x.numpy() ** 3 * 2.0
        np.testing.assert_allclose(loss.item(), want.sum(), rtol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), 6.0 * x.numpy() ** 2, rtol=1e-12)
    assert g.plan_info()["forward"][1] >= 1 and g.plan_info()["backward"][1] >= 1


def test_backward_before_any_forward_uses_the_recorded_step():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    g = tg.Graph((x * x).sum())
    g.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert not g.planned


def test_planning_can_be_switched_off():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    g = tg.Graph((x * x).sum(), plan=False)
    g.forward()
    g.backward()
    assert not g.planned and g.plan_info()["unplanned_reason"] == "planning is off"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def _step_loop(n_steps, d=3072, h=100, c=10, n=128, use_step=False):
    """A planned MLP step as users write it (the four calls, or ``Graph.step``); yields
    after each step."""
    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(d, h), tg.nn.ReLU(), tg.nn.Linear(h, c))
    opt = tg.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    xb = rng.standard_normal((n, d), dtype=np.float32)
    yb = rng.integers(0, c, n)
    X, y = tg.from_numpy(xb.copy()), tg.from_numpy(yb.copy())
    g = tg.Graph(_loss(model, X, y))
    for _ in range(n_steps):
        X.copy_(xb)
        y.copy_(yb)
        _one_step(g, opt, use_step)
        yield


@pytest.mark.parametrize("use_step", [False, True], ids=["four-calls", "graph-step"])
def test_a_planned_training_step_allocates_at_most_64_kb(use_step):
    steps = _step_loop(40, use_step=use_step)
    for _ in range(5):                  # record, tape, and settle
        next(steps)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in steps:
            pass
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before <= 64 * 1024, f"a step allocated up to {peak - before} bytes"
    assert after - before <= 64 * 1024


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"),
                    reason="needs /proc (Linux) to read the resident set size")
@pytest.mark.parametrize("use_step", [False, True], ids=["four-calls", "graph-step"])
def test_resident_memory_stays_flat_over_10000_planned_steps(use_step):
    steps = _step_loop(10_000, d=64, h=32, c=4, n=16, use_step=use_step)
    for _ in range(1000):
        next(steps)
    rss = _rss_kb()
    for _ in steps:
        pass
    grown = _rss_kb() - rss
    assert grown < 1024, f"RSS grew by {grown} KB over 9000 steps"


# --- fusion across ops (tensorgrad/_fuse.py) and the taped losses ------------------------------
def _planned(loss):
    g = tg.Graph(loss)
    g.forward()
    g.backward()
    return g


def test_an_l2_penalty_is_fused_both_ways_and_training_stays_bitwise():
    """(w * w).sum() becomes one sum-of-squares pass; the penalty's gradient and the matmul
    gradient of the same weight one multiply-add pass. _train compares with eager."""
    model = _mlp(0)
    (xb, yb), = _batches(1)
    g = _planned(_loss(model, tg.from_numpy(xb), tg.from_numpy(yb)))
    info = g.plan_info()
    assert info["forward"][1] == 0 and info["backward"][1] == 0
    assert info["fused"] == 4           # 2 weight matrices: square+sum, mul+accumulate
    batches = _batches(4, seed=3)
    for a, b in zip(_train(batches, True), _train(batches, False), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_square_read_elsewhere_is_not_fused_and_stays_current():
    rng = np.random.default_rng(4)
    w = tg.tensor(rng.standard_normal((30, 40)), requires_grad=True)
    sq = w * w
    g = _planned(sq.sum() + (sq * 0.5).sum())
    for _ in range(2):
        with tg.no_grad():
            w.mul_(1.5)
        loss = g.forward()
        want = w.numpy() * w.numpy()
        np.testing.assert_array_equal(sq.numpy(), want)
        eager = (w * w).sum() + ((w * w) * 0.5).sum()
        assert loss.item() == eager.item()


def test_a_python_step_anywhere_turns_fusion_off():
    class Twice(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return tg.from_numpy(x.numpy() * 2.0)

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    w = tg.tensor(np.random.default_rng(5).standard_normal((8, 8)), requires_grad=True)
    g = _planned((w * w).sum() + Twice.apply(w).sum())
    assert g.plan_info()["fused"] == 0 and g.plan_info()["forward"][1] == 1


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.multiclass_hinge_loss])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_losses_are_kernel_steps_reading_the_recorded_labels(loss_fn, reduction):
    rng = np.random.default_rng(6)
    s = tg.tensor(rng.standard_normal((9, 5)).astype(np.float32), requires_grad=True)
    y = tg.from_numpy(rng.integers(0, 5, 9))
    out = loss_fn(s, y, reduction=reduction)
    g = _planned((out * out).sum() if reduction == "none" else out * 3.0)
    assert g.plan_info()["forward"][1] == 0 and g.plan_info()["backward"][1] == 0
    for _ in range(2):
        y.copy_(tg.from_numpy(rng.integers(0, 5, 9)))
        with tg.no_grad():
            s.copy_(tg.tensor(rng.standard_normal((9, 5)).astype(np.float32)))
        s.grad = None
        got = g.forward().numpy().copy()
        g.backward()
        s2 = s.detach().requires_grad_()
        e = loss_fn(s2, y, reduction=reduction)
        e = (e * e).sum() if reduction == "none" else e * 3.0
        e.backward()
        np.testing.assert_array_equal(got, e.numpy())
        np.testing.assert_array_equal(s.grad.numpy(), s2.grad.numpy())


def test_labels_of_another_integer_type_are_converted_at_every_replay():
    rng = np.random.default_rng(7)
    s = tg.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    y = tg.from_numpy(rng.integers(0, 4, 6).astype(np.int32))
    g = _planned(F.cross_entropy(s, y))
    assert g.plan_info()["forward"][1] == 1         # the conversion: a Python step
    y.copy_(tg.from_numpy(np.array([3, 2, 1, 0, 3, 2], np.int32)))
    assert g.forward().item() == F.cross_entropy(s.detach(), y.numpy().astype(np.int64)).item()


def test_a_bad_label_written_into_a_planned_graph_gives_nan_not_a_crash():
    s = tg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = tg.from_numpy(np.array([0, 1, 2]))
    g = _planned(F.cross_entropy(s, y))
    y.copy_(tg.from_numpy(np.array([0, 7, -1])))
    assert np.isnan(g.forward().item())
    g.backward()
    assert np.isnan(s.grad.numpy()[1:]).all() and np.isfinite(s.grad.numpy()[0]).all()


def test_retained_gradients_of_intermediates_are_refreshed_as_eagerly():
    w = tg.tensor(np.arange(4.0), requires_grad=True)
    h = w * 2.0
    h.retain_grad()
    g = tg.Graph((h * h).sum())
    kept = []
    for k in range(3):
        with tg.no_grad():
            w.add_(1.0)
        w.grad = None
        if k < 2:
            h.grad = None           # the third step accumulates into the second's, as eagerly
        g.forward()
        g.backward()
        kept.append(h.grad)
    assert g.planned
    np.testing.assert_array_equal(kept[0].numpy(), [4.0, 8.0, 12.0, 16.0])   # not overwritten
    np.testing.assert_array_equal(kept[1].numpy(), [8.0, 12.0, 16.0, 20.0])
    np.testing.assert_array_equal(kept[2].numpy(), [20.0, 28.0, 36.0, 44.0])


# --- Graph.step: the optimizer's update planned into the backward pass ------------------------
OPTIMIZERS = {
    "sgd": lambda ps: tg.optim.SGD(ps, lr=0.1),
    "sgd-wd": lambda ps: tg.optim.SGD(ps, lr=0.1, weight_decay=1e-2),
    "momentum-dampening": lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.3,
                                                  weight_decay=1e-3),
    "nesterov": lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda ps: tg.optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: tg.optim.AdamW(ps, lr=1e-2),
}


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _step_equals_eager(batches, make, between=None):
    """Train with Graph.step and eagerly: the same parameters and optimizer state, bit for
    bit; returns the Graph.step run's optimizer."""
    a, opt_a = _train(batches, "step", make_opt=make, between=between)
    b, opt_b = _train(batches, False, make_opt=make, between=between)
    _same(a, b)
    _same(_state_arrays(opt_a), _state_arrays(opt_b))
    return opt_a


def _state_arrays(opt):
    return [v.numpy() if isinstance(v, tg.Tensor) else v
            for st in opt.state_dict()["state"].values() for v in st.values()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_graph_step_trains_bitwise_as_the_four_calls_and_as_eager(name, dtype):
    batches = _batches(5, dtype=dtype)
    runs = [_train(batches, how, make_opt=OPTIMIZERS[name], dtype=dtype)
            for how in ("step", True, False)]
    for params, opt in runs[1:]:
        _same(runs[0][0], params)
        _same(_state_arrays(runs[0][1]), _state_arrays(opt))


def test_graph_step_plans_the_update_and_fuses_it_with_the_l2_gradient_pass():
    model = _mlp(0)
    (xb, yb), = _batches(1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = tg.Graph(_loss(model, tg.from_numpy(xb), tg.from_numpy(yb)))
    assert g.plan_info()["update"] is None
    w = model[0].weight
    for _ in range(3):
        version = w._version[0]
        loss = g.step(opt)
        assert loss is g.root and w._version[0] > version
    info = g.plan_info()
    # 4 parameters; the 2 weights' updates join their L2 + matmul gradient pass
    assert info["update"] == {"records": 4, "fused": 2}
    assert info["backward"][1] == 0
    handed = w.grad                     # the Graph's buffer, handed out at every step
    g.step(opt)
    assert w.grad is handed


def test_a_changing_learning_rate_and_momentum_switched_on_stay_bitwise():
    def between(i, opt):
        opt.param_groups[0]["lr"] = 0.1 / (i + 1)       # a schedule
        if i == 3:
            opt.param_groups[0]["momentum"] = 0.9        # another kernel: planned anew

    def make(ps):
        return tg.optim.SGD(ps, lr=0.1)

    batches = _batches(6)
    _same(_train(batches, "step", make_opt=make, between=between)[0],
          _train(batches, False, make_opt=make, between=between)[0])


def test_a_loaded_optimizer_state_is_planned_anew():
    """load_state_dict replaces the state arrays the records pointed at."""
    saved = {}

    def between(i, opt):
        if i == 2:
            saved["sd"] = opt.state_dict()
        if i == 4:
            opt.load_state_dict(saved["sd"])

    def make(ps):
        return tg.optim.Adam(ps, lr=1e-2)

    opt = _step_equals_eager(_batches(7), make, between)
    assert [st["step"] for st in opt.state_dict()["state"].values()] == [5] * 4


def test_graph_step_calls_an_optimizer_it_cannot_plan():
    class Halving(tg.optim.SGD):
        def step(self, closure=None):
            for p in self.param_groups[0]["params"]:
                p.data[...] *= 0.5
            return super().step(closure)

    batches = _batches(3)
    a, opt = _train(batches, "step", make_opt=lambda ps: Halving(ps, lr=0.1))
    b, _ = _train(batches, False, make_opt=lambda ps: Halving(ps, lr=0.1))
    _same(a, b)


def test_graph_step_leaves_parameters_outside_the_graph_alone():
    model = _mlp(0)
    extra = tg.zeros(3, requires_grad=True)
    opt = tg.optim.SGD([*model.parameters(), extra], lr=0.1, weight_decay=0.5)
    (xb, yb), = _batches(1)
    extra.data[...] = 1.0
    g = tg.Graph(_loss(model, tg.from_numpy(xb), tg.from_numpy(yb)))
    for _ in range(3):
        g.step(opt)
    assert g.plan_info()["update"]["records"] == 4
    np.testing.assert_array_equal(extra.numpy(), 1.0)
    assert extra.grad is None


def test_graph_step_with_a_python_step_in_the_plan_updates_unfused():
    class Twice(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    def run(planned):
        model = _mlp(0)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        xs = [tg.from_numpy(xb) for xb, _ in _batches(3)]
        X = tg.from_numpy(xs[0].numpy().copy())
        y = tg.from_numpy(np.arange(8) % 4)

        def loss(x):                    # a Python step in both passes
            reg = sum((p * p).sum() for p in model.parameters() if p.ndim == 2)
            return F.cross_entropy(Twice.apply(model(x)), y) + 1e-3 * reg
        if planned:
            g = tg.Graph(loss(X))
            for x in xs:
                X.copy_(x)
                g.step(opt)
            assert g.plan_info()["update"] == {"records": 4, "fused": 0}
        else:
            for x in xs:
                opt.zero_grad()
                loss(x).backward()
                opt.step()
        return [p.numpy().copy() for p in model.parameters()]

    _same(run(True), run(False))


def test_graph_step_needs_an_optimizer():
    model = _mlp(0)
    (xb, yb), = _batches(1)
    g = tg.Graph(_loss(model, tg.from_numpy(xb), tg.from_numpy(yb)))
    with pytest.raises(TypeError, match="Graph.step: expected an optimizer .* got list"):
        g.step(list(model.parameters()))


def _records(*calls):
    """The kernel records of elementwise calls, taped."""
    from tensorgrad._kernels import elementwise as EK
    tape = []
    EK.set_tape(tape)
    try:
        for call in calls:
            call(EK)
    finally:
        EK.set_tape(None)
    return tape


@pytest.mark.parametrize("reads_p_between", [False, True])
def test_an_update_is_fused_only_when_nothing_between_touches_the_parameter(reads_p_between):
    from tensorgrad._kernels.plan import Steps

    from tensorgrad._fuse import fuse
    from tensorgrad._kernels import optim as OK
    rng = np.random.default_rng(0)
    p0, u = rng.standard_normal((2, 50)).astype(np.float32)
    s, g, other = np.array(0.5, np.float32), np.empty(50, np.float32), np.empty(50, np.float32)
    h = np.array([0.1, 0.0, 0.0, 0.0])

    def steps(p):
        recs = _records(lambda EK: EK.muladd(s, p, u, g),
                        *([lambda EK: EK.binary(EK.ADD, p, p, other)] if reads_p_between
                          else []))
        return recs + [OK.update_record(OK.SGD, p, g, (), h)]

    p = p0.copy()
    _, bwd, fused = fuse([], steps(p))
    assert fused == (0 if reads_p_between else 1)
    Steps(bwd).run()
    ref = p0.copy()                     # the unfused order: other = 2p before the update
    Steps(steps(ref)).run()
    np.testing.assert_array_equal(p, ref)
    if reads_p_between:
        np.testing.assert_array_equal(other, p0 + p0)


@pytest.mark.parametrize("kw", [{"plan": False}, {"keep_grads": True}])
def test_graph_step_without_a_plan_is_the_four_calls(kw):
    def run(use_step):
        model = _mlp(0)
        opt = tg.optim.Adam(model.parameters(), lr=1e-2)
        batches = _batches(3)
        X, y = (tg.from_numpy(a.copy()) for a in batches[0])
        g = tg.Graph(_loss(model, X, y), **kw)
        for xb, yb in batches:
            X.copy_(xb)
            y.copy_(yb)
            assert _one_step(g, opt, use_step) is g.root
        assert not g.planned and g.plan_info()["update"] is None
        return [p.numpy().copy() for p in model.parameters()]

    _same(run(True), run(False))


def test_adam_with_parameters_at_different_steps_is_not_planned_and_stays_bitwise():
    """One bias correction per group needs one step count: otherwise Graph.step calls
    opt.step() (the state here is loaded with the first weight one step ahead)."""
    def between(i, opt):
        if i == 1:
            sd = opt.state_dict()
            sd["state"][0]["step"] += 1
            opt.load_state_dict(sd)

    def make(ps):
        return tg.optim.Adam(ps, lr=1e-2)

    _step_equals_eager(_batches(4), make, between)


def test_gradients_zeroed_in_place_are_stepped_as_written_out():
    """An optimizer whose zero_grad keeps the gradient tensors (zeroed in place): the
    backward adds into them, so Graph.step runs the update after it, as written out."""
    class KeepGrads(tg.optim.SGD):
        def zero_grad(self, set_to_none=False):
            super().zero_grad(set_to_none=set_to_none)

    def make(ps):
        return KeepGrads(ps, lr=0.1, momentum=0.9)

    batches = _batches(4)
    _same(_train(batches, "step", make_opt=make)[0], _train(batches, True, make_opt=make)[0])
    _same(_train(batches, "step", make_opt=make)[0], _train(batches, False, make_opt=make)[0])
