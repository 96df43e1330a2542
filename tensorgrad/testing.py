"""Gradient checks: analytic vector-Jacobian products against float64 central differences.

``gradcheck`` projects the outputs on a random vector u (so no Jacobian is ever formed) and
compares the analytic uᵀJ with central differences of ⟨u, f(x)⟩, entry by entry for inputs up
to ``max_entries`` elements (this locates a wrong entry), and along random directions w
(⟨uᵀJ, w⟩ against the directional difference) for larger inputs. ``gradgradcheck`` applies
the same check to the backward pass itself (create_graph=True).
"""
import numpy as np

from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import enable_grad, no_grad
from tensorgrad.graph import grad

__all__ = ["GradcheckError", "assert_close", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def _as_tuple(x):
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _outputs(fn, inputs):
    with enable_grad():
        out = fn(*inputs)
    outs = _as_tuple(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(o).__name__}")
    return outs


def _prepare(inputs):
    """float64 copies of the inputs, in their own layout (non-float inputs and non-Tensors
    pass through)."""
    prepared = []
    for x in inputs:
        if isinstance(x, Tensor) and x._data.dtype.kind == "f":
            t = _wrap(np.array(x._data, dtype=np.float64))
            if x.requires_grad:
                t.requires_grad_(True)
            prepared.append(t)
        else:
            prepared.append(x)
    return prepared


def _phi(fn, inputs, us):
    """⟨u, f(inputs)⟩ in float64, without recording."""
    with no_grad():
        outs = _as_tuple(fn(*inputs))
    return float(sum(np.sum(o._data.astype(np.float64) * u) for o, u in zip(outs, us)))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, *, seed=0, max_entries=400,
              n_directions=3, raise_exception=True):
    """Check fn's analytic gradients against central differences in float64.

    ``inputs``: a Tensor or a tuple (non-Tensors are passed through unchanged). Float inputs
    are copied to float64; those with ``requires_grad=True`` are checked. Returns True or
    raises ``GradcheckError`` naming the worst mismatching entry.
    """
    inputs = _prepare(_as_tuple(inputs))
    idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not idx:
        raise ValueError("gradcheck: no input requires grad")
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    us = [rng.standard_normal(o.shape) for o in outs]
    diff_outs = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
    if not diff_outs:
        raise GradcheckError("gradcheck: no output requires grad (is fn differentiable?)")
    before = [inputs[i]._data.copy() for i in idx]
    analytic = grad([o for o, _ in diff_outs], [inputs[i] for i in idx],
                    grad_outputs=[_wrap(u.astype(o._data.dtype)) for o, u in diff_outs],
                    allow_unused=True)
    for i, b in zip(idx, before):
        if not np.array_equal(inputs[i]._data, b, equal_nan=True):
            raise GradcheckError(f"gradcheck: backward modified input {i} in place")
    worst = None
    for k, i in enumerate(idx):
        x = inputs[i]
        a = analytic[k]
        a = np.zeros(x.shape) if a is None else a._data.astype(np.float64)
        if a.shape != x.shape:
            raise GradcheckError(f"gradcheck: gradient for input {i} has shape {a.shape}, "
                                 f"expected {x.shape}")
        data = x._data
        if data.size <= max_entries:
            num = np.zeros(data.shape)
            # Index the input itself: it keeps the caller's layout (a transposed input stays
            # transposed), so a flattened view of it could be a copy.
            for loc in np.ndindex(data.shape):
                orig = data[loc]
                data[loc] = orig + eps
                fp = _phi(fn, inputs, us)
                data[loc] = orig - eps
                fm = _phi(fn, inputs, us)
                data[loc] = orig
                num[loc] = (fp - fm) / (2 * eps)
            err = np.abs(a - num) - (atol + rtol * np.abs(num))
            j = int(np.argmax(err)) if err.size else 0
            if err.size and (err.reshape(-1)[j] > 0 or not np.isfinite(a.reshape(-1)[j])):
                loc = np.unravel_index(j, data.shape)
                cand = (float(err.reshape(-1)[j]), f"input {i}, entry {tuple(map(int, loc))}: "
                        f"analytic {a.reshape(-1)[j]:.8g}, numerical {num.reshape(-1)[j]:.8g}")
                worst = cand if worst is None or cand[0] > worst[0] else worst
        else:
            orig = data.copy()
            for _ in range(n_directions):
                w = rng.standard_normal(data.shape)
                data[...] = orig + eps * w
                fp = _phi(fn, inputs, us)
                data[...] = orig - eps * w
                fm = _phi(fn, inputs, us)
                data[...] = orig
                num = (fp - fm) / (2 * eps)
                ana = float(np.sum(a * w))
                e = abs(ana - num) - (atol * np.sqrt(data.size) + rtol * abs(num))
                if e > 0 or not np.isfinite(ana):
                    cand = (e, f"input {i}, random direction: analytic {ana:.8g}, "
                               f"numerical {num:.8g}")
                    worst = cand if worst is None or cand[0] > worst[0] else worst
    if worst is not None:
        if raise_exception:
            raise GradcheckError("gradcheck failed: worst mismatch at " + worst[1])
        return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, *, seed=1,
                  max_entries=200, raise_exception=True):
    """Check the second derivatives: gradcheck of (inputs, v) -> vᵀ·J built with
    create_graph=True, so every op's backward must itself be differentiable."""
    inputs = _prepare(_as_tuple(inputs))
    idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not idx:
        raise ValueError("gradgradcheck: no input requires grad")
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        gouts = [_wrap(rng.standard_normal(o.shape)).requires_grad_(True) for o in outs
                 if o.requires_grad]
    else:
        gouts = [_wrap(np.array(g._data if isinstance(g, Tensor) else g, np.float64))
                 .requires_grad_(True) for g in _as_tuple(grad_outputs)]
    n_in = len(inputs)

    def first_order(*args):
        xs = list(args[:n_in])
        vs = args[n_in:]
        with enable_grad():
            o = [t for t in _as_tuple(fn(*xs)) if t.requires_grad]
            gs = grad(o, [xs[i] for i in idx], grad_outputs=list(vs), create_graph=True,
                      allow_unused=True)
        res = tuple(g for g in gs if g is not None and g.requires_grad)
        if not res:
            raise GradcheckError("gradgradcheck: the first derivatives do not depend on the "
                                 "inputs or grad_outputs (backward is not differentiable?)")
        return res

    return gradcheck(first_order, tuple(inputs) + tuple(gouts), eps=eps, atol=atol,
                     rtol=rtol, seed=seed, max_entries=max_entries,
                     raise_exception=raise_exception)


def assert_close(actual, expected, rtol=None, atol=None, msg=""):
    """Compare tensors/arrays with per-dtype tolerances (float32 ~1e-5, float64 ~1e-10)."""
    a = actual._data if isinstance(actual, Tensor) else np.asarray(actual)
    e = expected._data if isinstance(expected, Tensor) else np.asarray(expected)
    if rtol is None or atol is None:
        tight = a.dtype == np.float64 and e.dtype == np.float64
        rtol = rtol if rtol is not None else (1e-10 if tight else 1.3e-5)
        atol = atol if atol is not None else (1e-12 if tight else 1e-6)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=msg)
