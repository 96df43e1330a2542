"""tg.optim: SGD and Adam against hand-written numpy updates (PyTorch's formulas), the
fused kernels vs thread count, validation, schedules, state dicts, and real training."""
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorgrad._kernels.plan import Steps

import tensorgrad as tg
from tensorgrad import nn, optim
from tensorgrad._kernels import optim as OK
from tensorgrad.nn import functional as F


# ------------------------------------------------------------------ numpy references
def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    p = p.copy()
    buf = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_reference(p, grads, lr, b1, b2, eps, weight_decay=0.0, decoupled=False):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat_step = lr / (1 - b1 ** t)
        denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
        p = p - m_hat_step * m / denom
    return p


def run(opt_factory, p0, grads, dtype=np.float64):
    p = tg.tensor(p0.astype(dtype), requires_grad=True)
    opt = opt_factory([p])
    for g in grads:
        p.grad = tg.tensor(g.astype(dtype))
        opt.step()
    return p.numpy()


SGD_CASES = [{"lr": 0.1}, {"lr": 0.05, "weight_decay": 0.1}, {"lr": 0.1, "momentum": 0.9},
             {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01},
             {"lr": 0.1, "momentum": 0.8, "nesterov": True},
             {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}]


@pytest.mark.parametrize("kw", SGD_CASES, ids=[str(k) for k in SGD_CASES])
def test_sgd_matches_reference(kw, rng):
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    out = run(lambda ps: optim.SGD(ps, **kw), p0, grads)
    np.testing.assert_allclose(out, sgd_reference(p0, grads, **kw), rtol=1e-13, atol=1e-14)
    out32 = run(lambda ps: optim.SGD(ps, **kw), p0, grads, np.float32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, sgd_reference(p0, grads, **kw), rtol=1e-5, atol=1e-5)


ADAM_CASES = [{"lr": 1e-3}, {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6},
              {"lr": 0.01, "weight_decay": 0.1}, {"lr": 0.05, "betas": (0.0, 0.5)}]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=[str(k) for k in ADAM_CASES])
def test_adam_matches_reference(kw, rng):
    p0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(8)]
    full = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    full.update(kw)
    ref = adam_reference(p0, grads, full["lr"], *full["betas"], full["eps"],
                         full["weight_decay"])
    np.testing.assert_allclose(run(lambda ps: optim.Adam(ps, **kw), p0, grads), ref,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(run(lambda ps: optim.Adam(ps, **kw), p0, grads, np.float32),
                               ref, rtol=1e-5, atol=1e-6)


def test_adamw_decouples_weight_decay(rng):
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    out = run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), p0, grads)
    ref = adam_reference(p0, grads, 0.01, 0.9, 0.999, 1e-8, 0.1, decoupled=True)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert not np.allclose(out, adam_reference(p0, grads, 0.01, 0.9, 0.999, 1e-8, 0.1))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 1000),
       which=st.sampled_from(["sgd", "momentum", "nesterov", "adam"]))
def test_kernels_on_random_sizes(n, seed, which):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(3)]
    if which == "adam":
        out = run(lambda ps: optim.Adam(ps, lr=0.01), p0, grads)
        ref = adam_reference(p0, grads, 0.01, 0.9, 0.999, 1e-8)
    else:
        kw = {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.1, "momentum": 0.9},
              "nesterov": {"lr": 0.1, "momentum": 0.9, "nesterov": True}}[which]
        out = run(lambda ps: optim.SGD(ps, **kw), p0, grads)
        ref = sgd_reference(p0, grads, **kw)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01)], ids=["sgd", "adam"])
def test_large_update_does_not_depend_on_thread_count(make, rng):
    p0 = rng.standard_normal(100_000).astype(np.float32)    # above the serial threshold
    grads = [rng.standard_normal(100_000).astype(np.float32) for _ in range(2)]
    outs = []
    for n in (1, 2):
        tg.set_num_threads(n)
        outs.append(run(make, p0, grads, np.float32))
    np.testing.assert_array_equal(outs[0], outs[1])


# ------------------------------------------------------------------ planned updates
# The records tg.Graph.step runs (optim.update_record): the eager kernels' arithmetic,
# optionally computing the gradient g = a·b + u in the same pass (elementwise.muladd).
_KINDS = {   # kind -> (state arrays, hyper-parameters, the eager kernel call)
    "sgd": (0, [0.1, 0.01, 0, 0], lambda p, g, s: OK.sgd_step(p, g, 0.1, 0.01)),
    "momentum": (1, [0.1, 0.01, 0.9, 0.2], lambda p, g, s: OK.sgd_momentum_step(
        p, g, s[0], 0.1, 0.9, 0.2, 0.01, False, False)),
    "nesterov": (1, [0.1, 0.01, 0.9, 0.0], lambda p, g, s: OK.sgd_momentum_step(
        p, g, s[0], 0.1, 0.9, 0.0, 0.01, True, False)),
    "adam": (2, [1e-3, 0.01, 0.9, 0.999, 1e-8, 1 - 0.9 ** 3, 1 - 0.999 ** 3],
             lambda p, g, s: OK.adam_step(p, g, s[0], s[1], 1e-3, 0.9, 0.999, 1e-8, 0.01,
                                          1 - 0.9 ** 3, 1 - 0.999 ** 3, False)),
    "adamw": (2, [1e-3, 0.01, 0.9, 0.999, 1e-8, 1 - 0.9 ** 3, 1 - 0.999 ** 3],
              lambda p, g, s: OK.adam_step(p, g, s[0], s[1], 1e-3, 0.9, 0.999, 1e-8, 0.01,
                                           1 - 0.9 ** 3, 1 - 0.999 ** 3, True)),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [1, 37, 300_001])         # 300_001: the parallel path
@pytest.mark.parametrize("fused", [None, "scalar", "scalar-first", "array"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(_KINDS))
def test_update_records_are_bitwise_the_eager_kernels(kind, dtype, fused, n, threads):
    rng = np.random.default_rng(n)
    nstate, hyper, eager = _KINDS[kind]
    p0 = rng.standard_normal(n).astype(dtype)
    state0 = [rng.random(n).astype(dtype) for _ in range(nstate)]
    a, u = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    b = np.array(0.37, dtype) if fused != "array" else rng.standard_normal(n).astype(dtype)
    g0 = rng.standard_normal(n).astype(dtype)
    # eager: the gradient pass (multiply, accumulate), then the optimizer's kernel
    p1, s1, g1 = p0.copy(), [s.copy() for s in state0], g0.copy()
    if fused is not None:
        g1 = a * b
        g1 += u
    eager(p1, g1, s1)
    p2, s2, g2 = p0.copy(), [s.copy() for s in state0], g0.copy()
    operands = None if fused is None else (b, a, u) if fused == "scalar-first" else (a, b, u)
    tg.set_num_threads(threads)
    Steps([OK.update_record(getattr(OK, kind.upper()), p2, g2, tuple(s2), np.array(hyper),
                            fused=operands)]).run()
    for x, y in zip([p1, g1, *s1], [p2, g2, *s2], strict=True):
        np.testing.assert_array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}"))


def test_update_record_rejects_what_it_cannot_run():
    p, g = np.zeros(6, np.float32), np.zeros(6, np.float32)
    h = np.zeros(8)
    with pytest.raises(ValueError, match="unknown kind"):
        OK.update_record(99, p, g, (), h)
    with pytest.raises(TypeError, match="parameter dtype int64"):
        OK.update_record(OK.SGD, np.zeros(6, np.int64), g, (), h)
    with pytest.raises(TypeError, match="the gradient has dtype float64"):
        OK.update_record(OK.SGD, p, g.astype(np.float64), (), h)
    with pytest.raises(ValueError, match="C-contiguous"):
        OK.update_record(OK.SGD, np.zeros((6, 2), np.float32)[:, 0], g, (), h)
    with pytest.raises(ValueError, match="keeps 1 state arrays, got 0"):
        OK.update_record(OK.MOMENTUM, p, g, (), h)
    with pytest.raises(ValueError, match="at least 7 values"):
        OK.update_record(OK.ADAM, p, g, (p.copy(), p.copy()), np.zeros(4))
    with pytest.raises(ValueError, match="neither C-contiguous"):
        OK.update_record(OK.SGD, p, g[:3], (), h)
    with pytest.raises(ValueError, match="a fused gradient needs"):
        OK.update_record(OK.SGD, p, g, (), h, fused=(np.float32(1) * np.ones(1, np.float32),
                                                     np.ones(1, np.float32), g))


# ------------------------------------------------------------------ mechanics
def test_step_updates_in_place_and_bumps_version():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    arr, v0 = p.numpy(), p._version[0]
    y = (p * p).sum()
    opt = optim.SGD([p], lr=0.5)
    y.backward()
    opt.step()
    assert p.numpy() is arr and arr.tolist() == [0.0, 0.0]
    assert p._version[0] == v0 + 1


def test_params_without_grad_are_skipped_and_groups_have_own_lr():
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([1.0], requires_grad=True)
    c = tg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}, {"params": c}], lr=0.1)
    a.grad = tg.tensor([1.0])
    b.grad = tg.tensor([1.0])
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)
    assert c.item() == 1.0


def test_broadcast_and_non_contiguous_grads(rng):
    p = tg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    p0 = p.numpy().copy()
    opt = optim.SGD([p], lr=0.1)
    (p.sum() * 2.0).backward()          # the gradient may arrive as a broadcast view
    opt.step()
    p.grad = tg.from_numpy(np.broadcast_to(np.float64(2.0), (3, 4)))
    opt.step()
    np.testing.assert_allclose(p.numpy(), p0 - 0.4)
    q = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    q0 = q.numpy().copy()
    g = rng.standard_normal((3, 4))
    q.grad = tg.from_numpy(g).T
    optim.Adam([q], lr=0.1).step()
    np.testing.assert_allclose(q.numpy(), adam_reference(q0, [g.T], 0.1, 0.9, 0.999, 1e-8))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p])
    (p * 3).sum().backward()
    opt.zero_grad(set_to_none=set_to_none)
    assert p.grad is None if set_to_none else p.grad.tolist() == [0.0, 0.0]


def test_validation():
    p = tg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="SGD: invalid learning rate -0.1"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="invalid momentum"):
        optim.SGD([p], lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="invalid weight_decay"):
        optim.SGD([p], lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="invalid beta parameter at index 1: 1.0"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="invalid beta parameter at index 0"):
        optim.Adam([p], betas=(-0.1, 0.9))
    with pytest.raises(ValueError, match="invalid epsilon"):
        optim.Adam([p], eps=-1e-8)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="got a single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([tg.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_step_lr():
    p = tg.zeros(1, requires_grad=True)
    opt = optim.SGD([p], lr=1.0, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert sched.get_last_lr() == [0.125]
    with pytest.raises(ValueError, match="StepLR: step_size must be >= 1, got 0"):
        optim.lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="StepLR: step_size must be an integer, got 2.5"):
        optim.lr_scheduler.StepLR(opt, step_size=2.5)
    with pytest.raises(TypeError, match="StepLR: step_size must be an integer, got True"):
        optim.lr_scheduler.StepLR(opt, step_size=True)


def test_step_lr_state_dict_is_checked_before_it_is_applied():
    opt = optim.SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    sd = sched.state_dict()
    assert sd == {"step_size": 2, "gamma": 0.5, "base_lrs": [1.0], "last_epoch": 3}
    other_opt = optim.SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    other = optim.lr_scheduler.StepLR(other_opt, step_size=5)
    other.load_state_dict(sd)
    assert other_opt.param_groups[0]["lr"] == 0.5 and other.get_last_lr() == [0.5]
    other.step()
    assert other_opt.param_groups[0]["lr"] == 0.25
    two_groups = optim.SGD([{"params": [tg.zeros(1, requires_grad=True)]},
                            {"params": [tg.zeros(1, requires_grad=True)]}], lr=1.0)
    fresh = optim.lr_scheduler.StepLR(two_groups, step_size=5)
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: base_lrs must be 2 "
                                         r"number\(s\), one per parameter group"):
        fresh.load_state_dict(sd)
    with pytest.raises(ValueError, match="StepLR.load_state_dict: the state dict lacks "
                                         "'last_epoch'"):
        fresh.load_state_dict({k: v for k, v in sd.items() if k != "last_epoch"})
    assert fresh.state_dict() == {"step_size": 5, "gamma": 0.1, "base_lrs": [1.0, 1.0],
                                  "last_epoch": 0}


def test_optimizer_state_dict_round_trip(rng):
    p0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(4)]
    p = tg.tensor(p0, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    for g in grads[:2]:
        p.grad = tg.tensor(g)
        opt.step()
    sd = opt.state_dict()
    q = tg.tensor(p.numpy().copy(), requires_grad=True)
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    for g in grads[2:]:
        for t, o in ((p, opt), (q, opt2)):
            t.grad = tg.tensor(g)
            o.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())
    np.testing.assert_allclose(p.numpy(), adam_reference(p0, grads, 0.1, 0.9, 0.999, 1e-8))


def _copy_state_dict(sd):
    return {"state": {i: dict(st) for i, st in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def test_state_dict_holds_tensor_copies_ints_and_hyper_parameters():
    a, b = tg.zeros(2, 3, requires_grad=True), tg.zeros(3, requires_grad=True)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], betas=(0.8, 0.9))
    a.grad = tg.ones(2, 3)
    opt.step()
    sd = opt.state_dict()
    assert list(sd["state"]) == [0]                 # b had no gradient: no state yet
    st = sd["state"][0]
    assert st["step"] == 1 and type(st["step"]) is int
    assert isinstance(st["exp_avg"], tg.Tensor) and st["exp_avg"].shape == (2, 3)
    assert not np.shares_memory(st["exp_avg"].numpy(), opt.state[id(a)]["exp_avg"])
    assert sd["param_groups"] == [
        {"lr": 0.001, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0.0, "params": [0]},
        {"lr": 0.5, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0.0, "params": [1]}]


def test_load_state_dict_validates_and_changes_nothing_on_error():
    a, b = tg.zeros(2, 3, requires_grad=True), tg.zeros(3, requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = tg.ones(2, 3), tg.ones(3)
    opt.step()
    good = opt.state_dict()
    momentum = optim.SGD([a, b], lr=0.1, momentum=0.9)
    momentum.step()
    bad_step = _copy_state_dict(good)
    bad_step["param_groups"][0]["lr"] = 0.5
    bad_step["state"][1]["step"] = 1.5
    no_sq = _copy_state_dict(good)
    del no_sq["state"][0]["exp_avg_sq"]
    stray = _copy_state_dict(good)
    stray["state"][7] = stray["state"][0]
    negative_lr = _copy_state_dict(good)
    negative_lr["param_groups"][0]["lr"] = -1.0
    c, d = tg.zeros(3, 2, requires_grad=True), tg.zeros(3, requires_grad=True)
    cases = [
        (optim.Adam([a, b]), [1, 2], TypeError,
         "Adam.load_state_dict: expected the dict of Optimizer.state_dict(), got list"),
        (optim.Adam([a, b]), nn.Linear(2, 2).state_dict(), ValueError,
         ("Adam.load_state_dict: the dict lacks 'state' and 'param_groups', so it is not an "
          "optimizer's state dict (a model's?)")),
        (optim.Adam([{"params": [a]}, {"params": [b]}]), good, ValueError,
         "Adam.load_state_dict: the state dict has 1 parameter group(s), this optimizer has 2"),
        (optim.Adam([a]), good, ValueError,
         ("Adam.load_state_dict: parameter group 0 has 2 parameter(s) in the state dict, 1 in "
          "this optimizer")),
        (optim.Adam([c, d]), good, ValueError,
         ("Adam.load_state_dict: state of parameter 0: 'exp_avg' has shape (2, 3), the "
          "parameter has shape (3, 2)")),
        (optim.Adam([a, b]), momentum.state_dict(), ValueError,
         ("Adam.load_state_dict: parameter group 0 lacks 'betas', 'eps' (is it the state of "
          "another kind of optimizer?)")),
        (optim.SGD([a, b], lr=0.1), good, ValueError,
         ("SGD.load_state_dict: parameter group 0 lacks 'momentum', 'dampening', 'nesterov' "
          "(is it the state of another kind of optimizer?)")),
        (optim.Adam([a, b]), no_sq, ValueError,
         ("Adam.load_state_dict: state of parameter 0 has entries ['exp_avg', 'step']; Adam "
          "keeps ['exp_avg', 'exp_avg_sq', 'step']")),
        (optim.Adam([a, b]), bad_step, TypeError,
         "Adam.load_state_dict: state of parameter 1: 'step' must be an int, got 1.5"),
        (optim.Adam([a, b]), stray, ValueError,
         ("Adam.load_state_dict: the state dict has state for parameter 7, which no parameter "
          "group lists")),
        (optim.Adam([a, b]), negative_lr, ValueError, "Adam: invalid learning rate -1.0"),
    ]
    for target, sd, error, message in cases:
        before = target.state_dict()
        with pytest.raises(error) as e:
            target.load_state_dict(sd)
        assert str(e.value).startswith(message)
        after = target.state_dict()
        assert after["param_groups"] == before["param_groups"] and after["state"] == {}


def test_loaded_state_takes_the_parameters_dtype():
    p64 = tg.zeros(3, dtype=tg.float64, requires_grad=True)
    opt = optim.SGD([p64], lr=0.1, momentum=0.9)
    p64.grad = tg.ones(3, dtype=tg.float64)
    opt.step()
    p32 = tg.zeros(3, requires_grad=True)
    opt32 = optim.SGD([p32], lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[id(p32)]["momentum_buffer"].dtype == np.float32


# ------------------------------------------------------------------ checkpoint and resume
def _sgd_with_step_lr(params, **kw):
    opt = optim.SGD(params, **kw)
    return opt, optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)


RESUME_CASES = {
    "adam": lambda ps: (optim.Adam(ps, lr=0.01, weight_decay=1e-3), None),
    "adamw": lambda ps: (optim.AdamW(ps, lr=0.01, betas=(0.8, 0.95)), None),
    "sgd-momentum-steplr": lambda ps: _sgd_with_step_lr(ps, lr=0.1, momentum=0.9,
                                                        weight_decay=1e-3),
    "sgd-nesterov-steplr": lambda ps: _sgd_with_step_lr(ps, lr=0.1, momentum=0.8,
                                                        nesterov=True),
}


def _setup(kind, dtype, seed):
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16, dtype=dtype), nn.ReLU(),
                          nn.Linear(16, 3, dtype=dtype))
    opt, sched = RESUME_CASES[kind](list(model.parameters()))
    return model, opt, sched


def _train(run, x, y, steps):
    model, opt, sched = run
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(RESUME_CASES))
def test_resumed_training_equals_uninterrupted_training_bitwise(kind, dtype, tmp_path, rng):
    x = tg.tensor(rng.standard_normal((32, 5)).astype(dtype))
    y = rng.integers(0, 3, 32)
    n, k = 10, 4
    straight = _setup(kind, dtype, seed=0)
    _train(straight, x, y, n)

    model, opt, sched = first = _setup(kind, dtype, seed=0)
    _train(first, x, y, k)
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": None if sched is None else sched.state_dict(), "step": k},
            tmp_path / "checkpoint.npz")

    checkpoint = tg.load(tmp_path / "checkpoint.npz")
    model, opt, sched = resumed = _setup(kind, dtype, seed=1)  # other weights: all from file
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    if sched is not None:
        sched.load_state_dict(checkpoint["scheduler"])
    _train(resumed, x, y, n - checkpoint["step"])
    for p, q in zip(straight[0].parameters(), model.parameters()):
        assert q.dtype == p.dtype and np.array_equal(p.numpy(), q.numpy())

    # the comparison is sharp: the model's weights alone do not resume the run
    weights_only = _setup(kind, dtype, seed=1)
    weights_only[0].load_state_dict(checkpoint["model"])
    _train(weights_only, x, y, n - k)
    assert not all(np.array_equal(p.numpy(), q.numpy())
                   for p, q in zip(straight[0].parameters(), weights_only[0].parameters()))


def test_model_and_optimizer_pickled_together_resume_bitwise(rng):
    x, y = tg.tensor(rng.standard_normal((16, 5))), rng.integers(0, 3, 16)
    model = nn.Sequential(nn.Linear(5, 8, dtype=np.float64), nn.ReLU(),
                          nn.Linear(8, 3, dtype=np.float64))
    opt = optim.Adam(model.parameters(), lr=0.01)
    run = (model, opt, None)
    _train(run, x, y, 3)
    clone = pickle.loads(pickle.dumps(run))
    assert all(id(p) in clone[1].state for p in clone[0].parameters())
    _train(run, x, y, 3)
    _train(clone, x, y, 3)
    for p, q in zip(model.parameters(), clone[0].parameters()):
        assert np.array_equal(p.numpy(), q.numpy())


# ------------------------------------------------------------------ training
def _toy_problem(rng, n=300):
    """Three interleaved noisy rings in 2-D: not linearly separable."""
    y = rng.integers(0, 3, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 1.0 + y + 0.15 * rng.standard_normal(n)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1).astype(np.float32)
    return X, y


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    lambda ps: optim.Adam(ps, lr=0.02)], ids=["sgd-momentum", "adam"])
def test_two_layer_net_learns_toy_problem(make_opt, rng):
    X, y = _toy_problem(rng)
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = make_opt(list(model.parameters()))
    x = tg.tensor(X)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with tg.no_grad():
        acc = float(np.mean(model(x).numpy().argmax(1) == y))
    assert losses[-1] < 0.5 * losses[0]
    assert acc > 0.9


def test_svm_linear_classifier_trains(rng):
    # the course's linear SVM: s = x·Wᵀ + b, hinge loss + L2, plain SGD
    X = rng.standard_normal((200, 5)).astype(np.float32)
    W_true = rng.standard_normal((4, 5))
    y = np.argmax(X @ W_true.T, 1)
    model = nn.Linear(5, 4)
    opt = optim.SGD(model.parameters(), lr=0.05)
    x = tg.tensor(X)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = F.multiclass_hinge_loss(model(x), y) + 1e-3 * (model.weight ** 2).sum()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    acc = float(np.mean(model(x).numpy().argmax(1) == y))
    assert loss.item() < 0.3 * first and acc > 0.9


@pytest.mark.parametrize("nesterov", [False, True])
def test_first_momentum_step_ignores_uninitialised_buffer(nesterov, rng):
    # the buffer of a first step is fresh np.empty memory: garbage (even NaN) must not leak
    from tensorgrad._kernels import optim as OK
    p0 = rng.standard_normal(50)
    g = rng.standard_normal(50)
    p, buf = p0.copy(), np.full(50, np.nan)
    OK.sgd_momentum_step(p, g, buf, 0.1, 0.9, 0.0, 0.0, nesterov, True)
    np.testing.assert_allclose(buf, g)
    np.testing.assert_allclose(p, sgd_reference(p0, [g], 0.1, 0.9, nesterov=nesterov))
