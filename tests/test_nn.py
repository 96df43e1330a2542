"""tg.nn: Module registration and traversal, Linear and F.linear(_relu), state dicts,
tg.save/tg.load, pickling, repr, containers and init."""
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F
from tensorgrad.testing import gradcheck, gradgradcheck


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tg.ones(3))
        self.shift = tg.zeros(3, requires_grad=True)     # a leaf requiring grad registers too
        self.constant = tg.ones(3)                       # a plain tensor does not
        self.inner = nn.Linear(3, 2)
        self.missing = None

    def forward(self, x):
        return self.inner(x * self.scale + self.shift)


def mlp(dtype=np.float32):
    return nn.Sequential(nn.Linear(4, 8, dtype=dtype), nn.ReLU(), nn.Linear(8, 3, dtype=dtype))


# ------------------------------------------------------------------ Parameter / Module
def test_parameter_is_a_leaf_tensor_sharing_memory():
    arr = np.zeros(3, np.float32)
    p = nn.Parameter(arr)
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    arr[0] = 5
    assert p.numpy()[0] == 5
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(tg.ones(2), requires_grad=False)
    assert not q.requires_grad
    with pytest.raises(TypeError, match="only float32/float64"):
        nn.Parameter(np.zeros(2, np.int64))


def test_parameter_discovery_and_order():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    assert names == ["scale", "shift", "inner.weight", "inner.bias"]
    assert [p.shape for p in b.parameters()] == [(3,), (3,), (2, 3), (2,)]
    assert list(b.children()) == [b.inner]
    assert [type(m).__name__ for m in b.modules()] == ["Block", "Linear"]
    assert [n for n, _ in b.named_modules()] == ["", "inner"]
    assert isinstance(b.constant, tg.Tensor) and "constant" not in dict(b.named_parameters())
    assert b.missing is None
    assert list(b.named_parameters(recurse=False)) == [("scale", b.scale), ("shift", b.shift)]


def test_reassignment_and_deletion_update_registries():
    b = Block()
    b.scale = 3.0                       # replacing a parameter by a plain value unregisters it
    assert "scale" not in dict(b.named_parameters()) and b.scale == 3.0
    del b.inner
    assert [n for n, _ in b.named_parameters()] == ["shift"]
    assert not hasattr(b, "inner")


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_assignment_before_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tg.ones(1))

    with pytest.raises(AttributeError, match=r"before Bad.__init__\(\) called "
                                             r"super\(\).__init__\(\)"):
        Bad()


def test_train_eval_recursive():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Tanh()))
    assert m.training and all(c.training for c in m.modules())
    assert m.eval() is m
    assert not any(c.training for c in m.modules())
    m.train()
    assert all(c.training for c in m.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    m = mlp()
    F.cross_entropy(m(tg.randn(5, 4)), [0, 1, 2, 0, 1]).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=set_to_none)
    for p in m.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad.shape == p.shape and not np.any(p.grad.numpy())


def test_module_to_float64_and_gradcheck_through_a_model():
    tg.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid()).double()
    assert all(p.dtype == tg.float64 for p in m.parameters())
    x = tg.randn(5, 3, dtype=tg.float64)
    w1 = m[0].weight

    def f(w):
        m[0].weight = w
        return m(x)

    assert gradcheck(f, (w1,))
    m[0].weight = w1


# ------------------------------------------------------------------ Linear / F.linear
def test_linear_convention_and_default_init():
    tg.manual_seed(123)
    lin = nn.Linear(50, 7)
    assert lin.weight.shape == (7, 50) and lin.bias.shape == (7,)
    assert lin.weight.dtype == tg.float32
    bound = 1 / math.sqrt(50)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert np.all(np.abs(w) <= bound) and np.all(np.abs(b) <= bound)
    assert w.std() > 0.8 * bound / math.sqrt(3)          # U(−a, a) has std a/√3
    x = np.random.default_rng(0).standard_normal((4, 50)).astype(np.float32)
    np.testing.assert_allclose(lin(tg.tensor(x)).numpy(), x @ w.T + b, rtol=1e-5, atol=1e-5)
    tg.manual_seed(123)
    again = nn.Linear(50, 7)
    np.testing.assert_array_equal(again.weight.numpy(), w)
    assert nn.Linear(3, 2, bias=False).bias is None
    assert [n for n, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck_and_gradgradcheck(fused, bias, rng):
    fn = F.linear_relu if fused else F.linear
    x = tg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = tg.tensor(rng.standard_normal(4), requires_grad=True) if bias else None
    inputs = (x, w, b) if bias else (x, w)
    f = (lambda x, w, b: fn(x, w, b)) if bias else (lambda x, w: fn(x, w))
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_linear_matches_flat_backprop(rng):
    x = rng.standard_normal((6, 5))
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(3)
    g = rng.standard_normal((6, 3))
    xt, wt, bt = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.linear(xt, wt, bt)
    np.testing.assert_allclose(y.numpy(), x @ w.T + b, atol=1e-12)
    y.backward(tg.tensor(g))
    np.testing.assert_allclose(xt.grad.numpy(), g @ w, atol=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), g.T @ x, atol=1e-12)
    np.testing.assert_allclose(bt.grad.numpy(), g.sum(0), atol=1e-12)


def test_linear_relu_equals_unfused_pair(rng):
    x = rng.standard_normal((7, 4))
    w = rng.standard_normal((5, 4))
    b = rng.standard_normal(5)
    g = rng.standard_normal((7, 5))
    grads = []
    for fused in (True, False):
        xt, wt, bt = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.linear_relu(xt, wt, bt) if fused else F.relu(F.linear(xt, wt, bt))
        y.backward(tg.tensor(g))
        grads.append([y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()])
    for a, b_ in zip(*grads):
        np.testing.assert_allclose(a, b_, atol=1e-12)


def test_sequential_fusion_gives_the_same_gradients(rng):
    tg.manual_seed(3)
    seq = mlp(np.float64)
    x = tg.tensor(rng.standard_normal((6, 4)))
    y = [0, 1, 2, 0, 1, 2]
    F.cross_entropy(seq(x), y).backward()
    fused = [p.grad.numpy().copy() for p in seq.parameters()]
    seq.zero_grad()
    h = seq[1](seq[0](x))                # the modules one by one: no fusion
    F.cross_entropy(seq[2](h), y).backward()
    for a, b in zip(fused, [p.grad.numpy() for p in seq.parameters()]):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_linear_accepts_batched_and_1d_inputs(rng):
    lin = nn.Linear(4, 3, dtype=np.float64)
    x = rng.standard_normal((2, 5, 4))
    w, b = lin.weight.numpy(), lin.bias.numpy()
    np.testing.assert_allclose(lin(tg.tensor(x)).numpy(), x @ w.T + b, atol=1e-12)
    np.testing.assert_allclose(lin(tg.tensor(x[0, 0])).numpy(), x[0, 0] @ w.T + b, atol=1e-12)


def test_linear_errors():
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\) does not match "
                                         r"weight of shape \(3, 4\)"):
        lin(tg.randn(2, 5))
    with pytest.raises(TypeError, match="linear: input and weight must have the same float "
                                        "dtype, got float64 and float32"):
        lin(tg.randn(2, 4, dtype=tg.float64))
    with pytest.raises(ValueError, match=r"bias of shape \(4,\)"):
        F.linear(tg.randn(2, 4), lin.weight, tg.zeros(4))


@pytest.mark.parametrize("args, error, message", [
    ((4.5, 2), TypeError, "Linear: in_features must be an integer, got 4.5 (float)"),
    ((4, 2.0), TypeError, "Linear: out_features must be an integer, got 2.0 (float)"),
    ((True, 2), TypeError, "Linear: in_features must be an integer, got True (bool)"),
    (("4", 2), TypeError, "Linear: in_features must be an integer, got '4' (str)"),
    ((-1, 2), ValueError, "Linear: in_features must be >= 0, got -1"),
    ((4, np.int64(-3)), ValueError, "Linear: out_features must be >= 0, got -3"),
])
def test_linear_rejects_sizes_that_are_not_counts(args, error, message):
    with pytest.raises(error) as e:
        nn.Linear(*args)
    assert str(e.value) == message


def test_size_and_dim_arguments_take_any_integer_type_and_nothing_else():
    lin = nn.Linear(np.int64(4), np.uint8(0))
    assert (lin.in_features, lin.out_features) == (4, 0)
    assert type(lin.in_features) is int and lin.weight.shape == (0, 4)
    assert nn.Flatten(np.int32(0)).start_dim == 0
    with pytest.raises(TypeError, match=r"Flatten: start_dim must be an integer, got 1.0"):
        nn.Flatten(1.0)
    with pytest.raises(TypeError, match=r"Flatten: end_dim must be an integer, got None"):
        nn.Flatten(1, None)
    with pytest.raises(TypeError, match=r"Softmax: dim must be an integer, got 0.5"):
        nn.Softmax(0.5)
    with pytest.raises(TypeError, match=r"LogSoftmax: dim must be an integer, got '1'"):
        nn.LogSoftmax("1")


# ------------------------------------------------------------------ containers and repr
def test_sequential_container():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(TypeError, match="Sequential: indices must be integers or slices, "
                                        "got float"):
        seq[1.5]
    assert seq[np.int64(2)] is c
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    with pytest.raises(TypeError, match="argument 1 is a int, not a Module"):
        nn.Sequential(a, 3)
    ml = nn.ModuleList([a, c])
    assert len(ml) == 2 and ml[1] is c
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_repr_like_pytorch():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
                      nn.Sequential(nn.Linear(8, 3, bias=False), nn.Tanh()))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=8, out_features=3, bias=False)\n"
        "    (1): Tanh()\n"
        "  )\n"
        ")")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"


def test_loss_modules_match_functions(rng):
    s = tg.tensor(rng.standard_normal((4, 3)))
    y = [0, 2, 1, 1]
    assert nn.CrossEntropyLoss()(s, y).item() == F.cross_entropy(s, y).item()
    assert nn.MultiClassHingeLoss(margin=2.0)(s, y).item() == \
        F.multiclass_hinge_loss(s, y, margin=2.0).item()
    assert nn.MSELoss(reduction="sum")(s, s * 2).item() == pytest.approx(
        float(np.sum(s.numpy() ** 2)))


# ------------------------------------------------------------------ state dicts, save/load
def test_state_dict_names_and_views():
    m = mlp()
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(not t.requires_grad for t in sd.values())
    with tg.no_grad():
        m[0].bias.add_(1.0)
    np.testing.assert_array_equal(sd["0.bias"].numpy(), m[0].bias.numpy())   # shares memory


def test_save_load_round_trip(tmp_path):
    tg.manual_seed(0)
    m = mlp()
    path = tmp_path / "model.weights"
    tg.save(m.state_dict(), path)
    assert path.exists() and not (tmp_path / "model.weights.npz").exists()
    sd = tg.load(path)
    assert isinstance(sd, OrderedDict) and list(sd) == list(m.state_dict())
    assert all(isinstance(v, tg.Tensor) for v in sd.values())
    tg.manual_seed(99)
    other = mlp()
    x = tg.randn(3, 4)
    assert not np.allclose(other(x).numpy(), m(x).numpy())
    result = other.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(other(x).numpy(), m(x).numpy())
    # a Module can be saved directly, and a plain dict of arrays too
    tg.save(m, tmp_path / "m.npz")
    assert list(tg.load(tmp_path / "m.npz")) == list(sd)
    tg.save({"a": tg.arange(3), "b": 2.5}, tmp_path / "d.npz")
    d = tg.load(tmp_path / "d.npz")
    assert d["a"].tolist() == [0, 1, 2] and d["b"] == 2.5 and type(d["b"]) is float


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    m = mlp()
    before = [p.numpy().copy() for p in m.parameters()]
    sd = OrderedDict(m.state_dict())
    del sd["2.bias"]
    sd["0.weight"] = tg.zeros(4, 8)
    sd["extra"] = tg.zeros(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert "Missing key(s) in state_dict: '2.bias'" in msg
    assert "Unexpected key(s) in state_dict: 'extra'" in msg
    assert ("size mismatch for 0.weight: copying a param with shape (4, 8) from checkpoint, "
            "the shape in current model is (8, 4)") in msg
    for a, p in zip(before, m.parameters()):
        np.testing.assert_array_equal(a, p.numpy())
    # strict=False tolerates names but reports them; shapes must still match
    sd["0.weight"] = np.ones((8, 4), np.float32)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == ["extra"]
    assert np.all(m[0].weight.numpy() == 1)


def test_load_bumps_versions_so_stale_graphs_fail():
    m = mlp()
    out = F.cross_entropy(m(tg.randn(2, 4)), [0, 1])
    m.load_state_dict(mlp().state_dict())
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()


# ------------------------------------------------------------------ pickling
def test_modules_pickle_and_the_copy_trains_like_the_original(rng):
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Tanh(), nn.Linear(4, 3)).double()
    model[3].eval()
    clone = pickle.loads(pickle.dumps(model))
    assert repr(clone) == repr(model)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    for p, q in zip(model.parameters(), clone.parameters()):
        assert type(q) is nn.Parameter and q.requires_grad and q.dtype == tg.float64
        np.testing.assert_array_equal(q.numpy(), p.numpy())
        assert not np.shares_memory(q.numpy(), p.numpy())
    assert clone[0] is clone[2]                     # a shared layer stays shared
    assert clone[0].training and not clone[3].training
    before = [p.numpy().copy() for p in model.parameters()]
    x, y = tg.tensor(rng.standard_normal((8, 4))), rng.integers(0, 3, 8)
    for m in (model, clone):
        opt = tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
    for b, p, q in zip(before, model.parameters(), clone.parameters()):
        assert not np.array_equal(p.numpy(), b)
        np.testing.assert_array_equal(q.numpy(), p.numpy())


# ------------------------------------------------------------------ init
def test_init_functions_follow_manual_seed_and_bounds():
    t = tg.empty(200, 100)
    tg.manual_seed(5)
    nn.init.xavier_uniform_(t)
    a = math.sqrt(6 / 300)
    assert np.abs(t.numpy()).max() <= a and np.abs(t.numpy()).max() > 0.9 * a
    first = t.numpy().copy()
    tg.manual_seed(5)
    nn.init.xavier_uniform_(t)
    np.testing.assert_array_equal(first, t.numpy())
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 100)) < 0.01
    nn.init.constant_(t, 0.5)
    assert np.all(t.numpy() == 0.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(tg.empty(3))
