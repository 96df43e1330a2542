"""nn.BatchNorm1d/2d, nn.LayerNorm, nn.Dropout: train/eval behaviour, buffers in state dicts
(and tg.save/tg.load), dtype conversion, and equality with the torch modules."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn


def _from_torch(module, tmodule):
    """Copy a torch module's state (parameters and buffers) into ours."""
    module.load_state_dict({k: v.detach().numpy() for k, v in tmodule.state_dict().items()})


def _randomise(tmodule, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tmodule.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


def _check(ours, theirs, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind, shape, momentum", [
    ("BatchNorm2d", (6, 3, 5, 4), 0.1), ("BatchNorm1d", (7, 4), 0.3),
    ("BatchNorm1d", (5, 4, 6), None), ("BatchNorm2d", (4, 3, 3, 3), None)])
def test_batch_norm_modules_match_torch_in_training_and_eval(kind, shape, momentum):
    torch = pytest.importorskip("torch")
    c = shape[1]
    ours = getattr(nn, kind)(c, momentum=momentum, dtype=tg.float64)
    theirs = getattr(torch.nn, kind)(c, momentum=momentum, dtype=torch.float64)
    _randomise(theirs, 0)
    _from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    for step in range(4):
        xa = rng.standard_normal(shape) * (1 + step) - step
        x, tx = tg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
        y, ty = ours(x), theirs(tx)
        _check(y, ty)
        ga = rng.standard_normal(shape)
        y.backward(tg.tensor(ga))
        ty.backward(torch.tensor(ga))
        _check(x.grad, tx.grad, atol=1e-11)
    _check(ours.weight.grad, theirs.weight.grad, atol=1e-10)
    _check(ours.bias.grad, theirs.bias.grad, atol=1e-10)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        _check(getattr(ours, name), getattr(theirs, name))
    assert int(ours.num_batches_tracked.item()) == 4
    ours.eval()
    theirs.eval()
    xa = rng.standard_normal(shape)
    _check(ours(tg.tensor(xa)), theirs(torch.tensor(xa)))
    assert int(ours.num_batches_tracked.item()) == 4      # eval leaves the buffers alone


@pytest.mark.parametrize("track, affine", [(False, True), (True, False), (False, False)])
def test_batch_norm_options_match_torch(track, affine):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, track_running_stats=track, affine=affine, dtype=tg.float64)
    theirs = torch.nn.BatchNorm2d(3, track_running_stats=track, affine=affine,
                                  dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    rng = np.random.default_rng(1)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        xa = rng.standard_normal((4, 3, 2, 3)) + 2
        _check(ours(tg.tensor(xa)), theirs(torch.tensor(xa)))


def test_layer_norm_module_matches_torch():
    torch = pytest.importorskip("torch")
    for kwargs in ({}, {"bias": False}, {"elementwise_affine": False}, {"eps": 1e-2}):
        ours = nn.LayerNorm((3, 4), dtype=tg.float64, **kwargs)
        theirs = torch.nn.LayerNorm((3, 4), dtype=torch.float64, **kwargs)
        _randomise(theirs, 1)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        _from_torch(ours, theirs)
        xa = np.random.default_rng(2).standard_normal((5, 3, 4))
        x, tx = tg.tensor(xa, requires_grad=True), torch.tensor(xa, requires_grad=True)
        y, ty = ours(x), theirs(tx)
        _check(y, ty)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        _check(x.grad, tx.grad, atol=1e-11)
        for (_, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            _check(p.grad, tp.grad, atol=1e-11)


def test_module_defaults_follow_torch():
    bn = nn.BatchNorm2d(4)
    assert bn.weight.dtype == tg.float32 and bn.weight.requires_grad
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(4))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4))
    assert bn.num_batches_tracked.dtype == tg.int64 and bn.num_batches_tracked.shape == ()
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    assert not any(b.requires_grad for b in bn.buffers())
    assert repr(bn) == ("BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, "
                        "track_running_stats=True)")
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"
    assert repr(nn.LayerNorm(5)) == "LayerNorm((5,), eps=1e-05, elementwise_affine=True)"


def _model():
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(8, 3), nn.LayerNorm(3))


def test_train_and_eval_switch_dropout_and_batch_norm():
    tg.manual_seed(0)
    model = _model()
    x = tg.randn(16, 6)
    model.train()
    a, b = model(x).numpy(), model(x).numpy()
    assert not np.array_equal(a, b)                     # a new dropout mask each call
    stats = model[1].running_mean.numpy().copy()
    model.eval()
    assert not model[3].training and not model[1].training
    c, d = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(c, d)                 # deterministic in evaluation
    np.testing.assert_array_equal(model[1].running_mean.numpy(), stats)   # not updated
    assert int(model[1].num_batches_tracked.item()) == 2
    np.testing.assert_array_equal(nn.Dropout(0.9).eval()(x).numpy(), x.numpy())


def test_state_dict_round_trip_with_buffers(tmp_path):
    tg.manual_seed(1)
    model = _model()
    for _ in range(3):
        model(tg.randn(10, 6))
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                        "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias",
                        "5.weight", "5.bias"]
    path = tmp_path / "model.npz"
    tg.save(sd, path)
    tg.manual_seed(2)
    other = _model()
    other.load_state_dict(tg.load(path))
    for (k, v), (k2, v2) in zip(model.state_dict().items(), other.state_dict().items()):
        assert k == k2 and v.dtype == v2.dtype
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
    assert int(other[1].num_batches_tracked.item()) == 3
    model.eval()
    other.eval()
    x = tg.randn(4, 6)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


def test_load_a_torch_state_dict():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.BatchNorm1d(5)
    _randomise(theirs, 3)
    theirs(torch.randn(8, 5))
    ours = nn.BatchNorm1d(5)
    _from_torch(ours, theirs)
    assert int(ours.num_batches_tracked.item()) == 1
    ours.eval()
    theirs.eval()
    xa = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(tg.tensor(xa)).numpy(),
                               theirs(torch.tensor(xa)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_double_and_float_convert_parameters_and_buffers():
    model = _model()
    assert model.double() is model
    bn = model[1]
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var, model[5].weight):
        assert t.dtype == tg.float64
    assert bn.num_batches_tracked.dtype == tg.int64
    assert bn.weight.requires_grad and not bn.running_mean.requires_grad
    y = model(tg.randn(8, 6, dtype=tg.float64))
    assert y.dtype == tg.float64
    y.sum().backward()
    assert bn.weight.grad.dtype == tg.float64
    assert model.float() is model
    assert bn.running_var.dtype == tg.float32 and bn.weight.dtype == tg.float32
    assert model(tg.randn(8, 6)).dtype == tg.float32


def test_bad_inputs_and_arguments():
    with pytest.raises(ValueError, match="^BatchNorm2d: expected 4D input, got 2D"):
        nn.BatchNorm2d(3)(tg.randn(4, 3))
    with pytest.raises(ValueError, match="^BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(3)(tg.randn(4, 3, 2, 2))
    with pytest.raises(ValueError, match=r"^BatchNorm1d: expected 3 channels \(dim 1\)"):
        nn.BatchNorm1d(3)(tg.randn(4, 5))
    with pytest.raises(ValueError, match=r"^Dropout: p must be in \[0, 1\]"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="^LayerNorm: normalized_shape"):
        nn.LayerNorm(0)
    with pytest.raises(TypeError, match="^BatchNorm1d: num_features must be an integer"):
        nn.BatchNorm1d(2.5)
