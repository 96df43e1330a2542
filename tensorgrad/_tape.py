"""Taping one pass of a Graph (its forward nodes, or the backward engine) into plan steps.

While a ``Capture`` is active it is ``function._capture``: op calls that record no node (all
of backward's) come to ``Capture.op``, the engine's per-node backward to
``Capture.backward``, and the taped kernel modules append a record of every call to its
``tape``. ``replay.Graph`` turns the steps into a ``plan.Steps``. See replay.py for what is
taped and why, and docs/internals.md ("Planned replay").
"""
import functools

import numpy as np

from tensorgrad import function as _fn
from tensorgrad._kernels import activation as _AK
from tensorgrad._kernels import blas as _BK
from tensorgrad._kernels import elementwise as _EK
from tensorgrad._kernels import loss as _LK
from tensorgrad._kernels import reduce as _RK
from tensorgrad._tensor import Tensor
from tensorgrad.function import _finish_saved

__all__ = ["Capture"]

_TAPED_MODULES = (_EK, _AK, _BK, _RK, _LK)


def _set_tapes(tape):
    for m in _TAPED_MODULES:
        m.set_tape(tape)


def _owner(a):
    """The array that owns ``a``'s memory."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _as_tuple(result):
    if type(result) is tuple:
        return result
    return tuple(result) if isinstance(result, list) else (result,)


def _arrays(result):
    return tuple(r._data if isinstance(r, Tensor) else None for r in _as_tuple(result))


def _refill(targets, result):
    """Put a Python step's values where the plan reads them (when it made new arrays)."""
    for t, r in zip(targets, _arrays(result)):
        if t is None or r is None or r is t:
            continue
        if t.flags.writeable:
            np.copyto(t, r)
        else:               # a read-only view (a broadcast): refresh the memory it shows
            owner, fresh = _owner(t), _owner(r)
            if owner is not fresh:
                np.copyto(owner, fresh)


def _views_of(outs, args):
    """True when every output shares the memory of an input (a view: nothing to redo)."""
    owners = {id(_owner(a._data)) for a in args if isinstance(a, Tensor)}
    return all(o is None or id(_owner(o)) in owners for o in outs)


# --- Python steps ------------------------------------------------------------------------------
def _redo_direct(fn, direct, args, outs):
    _refill(outs, direct(fn, *args))


def _redo_forward(fn, ctx, args, outs):
    ctx._out_bufs = list(outs)
    try:
        result = fn.forward(ctx, *args)
    finally:
        ctx._out_bufs = None
    _refill(outs, result)


def _redo_node(node, args, outs, kept):
    """Re-run a recorded node's forward into its buffers and refresh what it saved."""
    node._out_bufs = list(outs)
    node._saved = None
    node._released = False
    try:
        result = node.fn.forward(node, *args)
    finally:
        node._out_bufs = None
    res = _as_tuple(result)
    _refill(outs, res)
    saved = node._saved
    if saved is not None:
        remap = {id(r): k for r, k in zip(res, kept)}
        node._saved = tuple(None if s is None else remap.get(id(s), s) for s in saved)
    _finish_saved(node, kept)


def _redo_backward(node, grads, outs):
    _refill(outs, node.fn.backward(node, *grads))


class Capture:
    """Tapes one pass (the forward nodes, or the backward engine) into plan steps.

    While active it is ``function._capture``: op calls made inside the pass (all of
    backward's) come to ``op``, the engine's per-node backward to ``backward``. Kernel calls
    land in ``tape`` and are moved to ``steps`` in order; a Python step is appended where
    something must be redone from Python.
    """

    def __init__(self):
        self.steps = []
        self.tape = []
        self.failed = None
        self.depth = 0          # > 0 while an op runs: ops it calls are part of it

    def __enter__(self):
        _set_tapes(self.tape)
        _fn._capture = self
        return self

    def __exit__(self, *exc):
        _fn._capture = None
        _set_tapes(None)
        self._flush()

    def _flush(self):
        if self.tape:
            if any(r is None for r in self.tape):
                self.fail("a kernel call that cannot be taped ran outside any op")
            self.steps.extend(self.tape)
            del self.tape[:]

    def fail(self, reason):
        """Give up planning (the Graph then replays node by node): ``reason`` says why."""
        if self.failed is None:
            self.failed = reason

    def step(self, fn, *args):
        """A Python step: ``fn(*args)`` at this point of every replay."""
        self._flush()
        self.steps.append(functools.partial(fn, *args))

    def call(self, fn, *args):
        """``fn(*args)`` now (untaped: what it computes is its own business) and as a Python
        step at this place of every replay (post-accumulate-grad hooks)."""
        self.unit(False, lambda: fn(*args))
        self.step(fn, *args)

    def unit(self, tape, run):
        """``run()`` as one unit, its kernel calls taped (``tape``) or not."""
        self._flush()
        self.depth += 1
        if not tape:
            _set_tapes(None)
        try:
            return run()
        finally:
            self.depth -= 1
            if not tape:
                _set_tapes(self.tape)

    def kept(self, result, args):
        """Keep the kernel records of the unit that just ran if they cover all it did: each
        record reads only the unit's inputs (or their views) and what earlier records of the
        unit wrote. A record that reads a copy the op made on the side would replay stale
        values; then the unit is redone from Python instead (the caller adds that step)."""
        tape = self.tape
        known = {id(_owner(a._data)) for a in args if isinstance(a, Tensor)}
        ok = bool(tape)
        for r in tape:
            if r is None:
                ok = False
                break
            out, *ins = r[2]        # (what it writes, what it reads...[, (kept alive)])
            if any(isinstance(x, np.ndarray) and id(_owner(x)) not in known for x in ins):
                ok = False
                break
            known.add(id(_owner(out)))
        if ok:
            self._flush()
            return True
        del tape[:]
        return _views_of(_arrays(result), args)

    def op(self, fn, direct, args, ctx):
        """An op call that records no node (``direct`` None: ``fn.forward(ctx, *args)``)."""
        if direct is None:
            def run():
                return fn.forward(ctx, *args)
        else:
            def run():
                return direct(fn, *args)
        if self.depth:
            return run()
        result = self.unit(fn.tape_forward, run)
        if fn.tape_forward and self.kept(result, args):
            return result
        outs = _arrays(result)
        if not _views_of(outs, args):
            if direct is None:
                self.step(_redo_forward, fn, ctx, args, outs)
            else:
                self.step(_redo_direct, fn, direct, args, outs)
        return result

    def backward(self, node, grads):
        """The engine's call of one node's backward."""
        fn = node.fn
        if fn.tape_backward:
            return fn.backward(node, *grads)
        gins = self.unit(False, lambda: fn.backward(node, *grads))
        self.step(_redo_backward, node, tuple(grads), _arrays(gins))
        return gins
