"""Functional autograd: grad, Hessian-vector and Jacobian-vector products.

``hvp`` differentiates the backward pass: H·v = d/dx [(dL/dx) · v]. ``jvp`` is forward mode
built from two reverse passes (the double-vjp trick): g(u) = Jᵀu is linear in a dummy u, so
the vjp of g with v gives J·v.
"""
import numpy as np

from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import Function, enable_grad, no_grad, set_grad_enabled
from tensorgrad.graph import backward, grad

__all__ = [
    "Function",
    "backward",
    "enable_grad",
    "grad",
    "hvp",
    "jvp",
    "no_grad",
    "set_grad_enabled",
    "vhp",
    "vjp",
]


def _tuple(x, what):
    if isinstance(x, Tensor):
        return (x,), True
    x = tuple(x)
    if not all(isinstance(t, Tensor) for t in x):
        raise TypeError(f"{what}: expected a Tensor or a tuple of Tensors")
    return x, False


def _fresh_inputs(inputs):
    out = []
    for t in inputs:
        if t._data.dtype.kind != "f":
            raise TypeError("autograd: inputs must be float tensors")
        d = _wrap(t._data)
        d.requires_grad_(True)
        out.append(d)
    return tuple(out)


def _check_like(vs, xs, what):
    for v, x in zip(vs, xs):
        if v.shape != x.shape:
            raise ValueError(f"{what}: v has shape {v.shape} but the input has shape {x.shape}")
    if len(vs) != len(xs):
        raise ValueError(f"{what}: got {len(vs)} vectors for {len(xs)} inputs")


def _or_zeros(grads, like):
    """``grads`` with each None (an input the output does not depend on) replaced by zeros
    shaped like the matching tensor of ``like``."""
    return tuple(g if g is not None else _wrap(np.zeros_like(t._data))
                 for g, t in zip(grads, like))


def vjp(func, inputs, v=None):
    """(func(inputs), vᵀ·J)."""
    xs, single = _tuple(inputs, "vjp")
    xs = _fresh_inputs(xs)
    with enable_grad():
        out = func(*xs)
    gs = grad(out, xs, grad_outputs=v, allow_unused=True)
    gs = _or_zeros(gs, xs)
    return out.detach(), (gs[0] if single else gs)


def hvp(func, inputs, v):
    """(func(inputs), H·v) for a scalar-valued ``func``, by double backward."""
    xs, single = _tuple(inputs, "hvp")
    vs, _ = _tuple(v, "hvp")
    _check_like(vs, xs, "hvp")
    xs = _fresh_inputs(xs)
    with enable_grad():
        out = func(*xs)
        if out.numel() != 1:
            raise ValueError(f"hvp: func must return a scalar, got shape {out.shape}")
        gs = grad(out, xs, create_graph=True, allow_unused=True)
        dot = None
        for g, vv in zip(gs, vs):
            if g is None:
                continue
            term = (g * vv).sum()
            dot = term if dot is None else dot + term
    if dot is None or not dot.requires_grad:
        hv = _or_zeros((None,) * len(xs), xs)
    else:
        hv = grad(dot, xs, allow_unused=True)
        hv = _or_zeros(hv, xs)
    return out.detach(), (hv[0] if single else hv)


vhp = hvp   # the Hessian of a scalar function is symmetric


def jvp(func, inputs, v):
    """(func(inputs), J·v): forward mode by two reverse passes."""
    xs, _ = _tuple(inputs, "jvp")
    vs, _ = _tuple(v, "jvp")
    _check_like(vs, xs, "jvp")
    xs = _fresh_inputs(xs)
    with enable_grad():
        out = func(*xs)
        outs, out_single = _tuple(out, "jvp")
        us = tuple(_wrap(np.zeros_like(o._data)).requires_grad_(True) for o in outs)
        gs = grad(outs, xs, grad_outputs=us, create_graph=True, allow_unused=True)
        pairs = [(g, vv) for g, vv in zip(gs, vs) if g is not None and g.requires_grad]
        if not pairs:
            jv = _or_zeros((None,) * len(outs), outs)
        else:
            jv = grad([g for g, _ in pairs], us, grad_outputs=[vv for _, vv in pairs],
                      allow_unused=True)
            jv = _or_zeros(jv, outs)
    outs = tuple(o.detach() for o in outs)
    return (outs[0] if out_single else outs), (jv[0] if out_single else jv)
