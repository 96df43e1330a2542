"""Fusing neighbouring kernel records of a plan (planned replay, see replay.py).

A taped step runs each op's kernel by itself, so an intermediate array that one kernel writes
and the next reads goes through memory in between. Once a Graph has taped both passes, this
pass rewrites the two step lists where one fused kernel does the work of two with the same
arithmetic (bitwise the same values: each product is rounded to the dtype before it is
summed, as when it was stored; the build turns FMA contraction off):

- square, then sum of everything (an L2 penalty ``(w * w).sum()``): one pass that sums the
  rounded squares (``reduce.sum_all_into(..., squares=True)``); the squares are not written;
- ``g = a * b`` followed later by ``g += u`` (a scaled gradient, then another contribution
  accumulated into it, as a weight's L2 gradient and its matmul gradient): one pass
  ``g = a * b + u`` at the place of the accumulation (``elementwise.muladd``);
- that pass followed later by an optimiser's update of the parameter from ``g``
  (``Graph.step``, ``optim.update_record``): one pass that computes ``g`` and updates the
  parameter, at the place of the first.

A rewrite needs proof that nothing else sees the difference: no Python step anywhere in
either list (it could read any array), the intermediate touched by no other record of
either pass, the operands moved later not written in between, and what an update moved
earlier writes (the parameter, its state, its gradient) touched by nothing in between.
The square buffer of the first rewrite then keeps the value of the step that was taped: a
planned replay does not refresh an intermediate that only feeds a fused sum (see the
README's aliasing rules).
"""
import numpy as np

from tensorgrad._kernels import elementwise as _EK
from tensorgrad._kernels import optim as _OK
from tensorgrad._kernels import reduce as _RK
from tensorgrad._tape import _owner as _base

__all__ = ["fuse"]

_MUL, _ADD = _EK.MUL, _EK.ADD


def _owner(a):
    """The id of the array owning ``a``'s memory (the identity kept() also reasons with)."""
    return id(_base(a))


def _arrays(step):
    """Every array a kernel step points into (its output first)."""
    out = []
    for x in step[2]:
        if isinstance(x, np.ndarray):
            out.append(x)
        elif isinstance(x, tuple):
            out.extend(a for a in x if isinstance(a, np.ndarray))
    return out


def _touches(step):
    return {_owner(a) for a in _arrays(step)}


def _writes(step):
    """Owners a step may write: its output and any buffers it keeps alive (loss records)."""
    keep = step[2]
    w = {_owner(keep[0])}
    for x in keep[1:]:
        if isinstance(x, tuple):
            w.update(_owner(a) for a in x if isinstance(a, np.ndarray))
    return w


def _contiguous(a):
    return a.flags.c_contiguous


def _is_binary(step, op):
    if step[0] != _EK.RUN_PREPARED:
        return False
    kind, code, flat = _EK.record_info(step[1])
    return kind == _EK.BINARY_KIND and code == op and flat


def _square(step):
    """(out, a) of a record that writes out = a * a elementwise, else None."""
    if step[0] != _EK.RUN_PREPARED:
        return None
    kind, code, flat = _EK.record_info(step[1])
    keep = step[2]
    if flat and kind == _EK.UNARY_KIND and code == _EK.SQUARE and len(keep) == 2:
        return keep
    if flat and kind == _EK.BINARY_KIND and code == _MUL and len(keep) == 3 \
            and _same_memory(keep[1], keep[2]):
        return keep[:2]
    return None


def _same_memory(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def _taped(run, out):
    """The record of ``run()``, a kernel call writing ``out``: run once with the tapes on,
    then ``out`` is given back its value (it may hold more than the call computes, e.g.
    later accumulations)."""
    before = out.copy()
    tape = []
    for m in (_EK, _RK):
        m.set_tape(tape)
    try:
        run()
    finally:
        for m in (_EK, _RK):
            m.set_tape(None)
        np.copyto(out, before)
    assert len(tape) == 1 and tape[0] is not None
    return tape[0]


def _next_touch(steps, i, owner):
    for j in range(i + 1, len(steps)):
        if owner in _touches(steps[j]):
            return j
    return None


def _written_between(steps, i, j, owners):
    return any(_writes(steps[k]) & owners for k in range(i + 1, j))


def _square_sums(fwd, refs):
    out = list(fwd)
    for i, st in enumerate(fwd):
        sq = _square(st)
        if sq is None:
            continue
        t, a = sq
        if not (_contiguous(a) and _contiguous(t) and a.size == t.size):
            continue
        ot = _owner(t)
        if refs.get(ot) != 2:           # written here, read by the sum: nowhere else
            continue
        j = _next_touch(fwd, i, ot)
        if j is None or fwd[j][0] != _RK.RUN_SUM:
            continue
        total, x = fwd[j][2]
        every, squares, scale = _RK.sum_record_info(fwd[j][1])
        if not (every and not squares and _same_memory(x, t)) or \
                _written_between(fwd, i, j, {_owner(a)}):
            continue
        out[i] = None
        out[j] = _taped(lambda: _RK.sum_all_into(a, total, scale, squares=True), total)
    return [s for s in out if s is not None]


def _scaled_accumulations(bwd):
    out = list(bwd)
    for i, st in enumerate(bwd):
        if out[i] is None or not _is_binary(st, _MUL) or len(st[2]) != 3:
            continue
        g, a, b = st[2]
        j = _next_touch(bwd, i, _owner(g))
        if j is None or not _is_binary(bwd[j], _ADD) or len(bwd[j][2]) != 2:
            continue
        acc, u = bwd[j][2]      # accumulate(acc, u): acc += u
        if not _same_memory(acc, g) or _owner(u) == _owner(g) or \
                _written_between(bwd, i, j, {_owner(a), _owner(b)}):
            continue
        out[i] = None
        out[j] = _taped(lambda: _EK.muladd(a, b, u, g), g)
    return [s for s in out if s is not None]


def _is_muladd(step):
    if step[0] != _EK.RUN_PREPARED:
        return False
    kind, _, flat = _EK.record_info(step[1])
    return kind == _EK.MULADD_KIND and flat


def _prev_touch(steps, i, owner):
    for j in range(i - 1, -1, -1):
        if steps[j] is not None and owner in _touches(steps[j]):
            return j
    return None


def _fused_updates(bwd):
    out = list(bwd)
    for i, st in enumerate(bwd):
        if st[0] != _OK.RUN_UPDATE:
            continue
        kind, fused = _OK.update_record_info(st[1])
        if fused:
            continue
        p, state, g, hyper = st[2]
        j = _prev_touch(out, i, _owner(g))
        if j is None or not _is_muladd(out[j]):
            continue
        gm, a, b, u = out[j][2]
        written = {_owner(p), _owner(g)} | {_owner(x) for x in state}
        if not _same_memory(gm, g) or \
                any(out[k] is not None and _touches(out[k]) & written for k in range(j + 1, i)):
            continue
        # a, b, u are read at each element before it is written: each is p itself (same
        # element) or nothing the record writes
        if any(_owner(x) in written and not _same_memory(x, p) for x in (a, b, u)):
            continue
        try:
            rec = _OK.update_record(kind, p, g, state, hyper, fused=(a, b, u))
        except (TypeError, ValueError):      # an operand neither flat like p nor one value
            continue
        out[j], out[i] = rec, None
    return [s for s in out if s is not None]


def fuse(fwd, bwd):
    """``(forward steps, backward steps, rewrites)``: the two lists rewritten (new lists;
    the inputs are kept) and how many pairs of records became one.

    Nothing is rewritten when either list holds a Python step. A rewrite runs its fused
    kernel once to tape it and then restores the output's values.
    """
    fwd, bwd = list(fwd), list(bwd)
    if any(type(s) is not tuple for s in fwd + bwd):
        return fwd, bwd, 0
    refs = {}
    for st in fwd + bwd:
        for o in _touches(st):
            refs[o] = refs.get(o, 0) + 1
    new_fwd, new_bwd = _square_sums(fwd, refs), _fused_updates(_scaled_accumulations(bwd))
    return new_fwd, new_bwd, len(fwd) + len(bwd) - len(new_fwd) - len(new_bwd)
