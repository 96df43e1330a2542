"""Function and Context: the modular forward/backward API and the graph node.

A ``Function`` subclass pairs ``forward(ctx, *inputs)`` with ``backward(ctx, *grads)``.
``Function.apply`` runs forward with grad mode off and, when grad mode is on and some input
requires grad, turns the ``Context`` into the output's ``grad_fn``: the node of the graph.
Built-in ops use exactly this machinery, so user-defined Functions mix freely with them.

Saved outputs are stored as (index, buffer, version) rather than as the output Tensor itself,
so a node never holds a reference cycle through its own output; ``saved_tensors`` rebuilds a
Tensor whose ``grad_fn`` is the node, which keeps double backward correct.

``dispatch`` is the one rule every op follows: record a node through ``Function.apply``, or,
when nothing would be recorded, call the kernel directly.
"""
from weakref import ref as _weakref

import numpy as np

from tensorgrad._tensor import Tensor, _mode, _wrap

__all__ = [
    "Context",
    "Function",
    "dispatch",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]


# ---------------------------------------------------------------------------------------------
# Grad mode (the thread-local flag itself is in _tensor.py, where in-place methods check it)
# ---------------------------------------------------------------------------------------------
def is_grad_enabled():
    """True when operations are being recorded for autograd."""
    return _mode.enabled


class set_grad_enabled:
    """Set grad mode: usable as a plain call, a context manager or a decorator."""

    def __init__(self, mode):
        self.prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode
        _mode.enabled = self.prev  # decorator use: do not change the mode at decoration time

        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class _ModeContext:
    _mode_value = True

    def __enter__(self):
        self.prev = _mode.enabled
        _mode.enabled = self._mode_value
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, fn):
        cls = type(self)

        def wrapper(*args, **kwargs):
            with cls():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(_ModeContext):
    """Context manager / decorator: operations inside record no graph."""
    _mode_value = False


class enable_grad(_ModeContext):
    """Context manager / decorator: re-enable recording inside a no_grad block."""
    _mode_value = True


# ---------------------------------------------------------------------------------------------
# Context: one node of the graph
# ---------------------------------------------------------------------------------------------
class _SavedOutput:
    """A saved output of the node itself, stored without the Tensor (no reference cycle)."""
    __slots__ = ("data", "index", "version")

    def __init__(self, index, data, version):
        self.index = index
        self.data = data
        self.version = version


_RELEASED_MSG = (
    "Trying to backward through the graph a second time (or to access saved tensors after "
    "they have been freed) in {op}. Saved tensors are freed after backward; pass "
    "retain_graph=True to the first backward() if you need to backward twice.")


class Context:
    """The ``ctx`` handed to ``forward``/``backward``; after ``apply`` it is the graph node.

    Attributes used by the engine (not part of the public API): ``fn`` the Function class,
    ``next_edges`` one entry per forward argument (None, a leaf Tensor, or a
    ``(node, output_index)`` tuple), ``args`` the forward arguments kept for replay (None in
    the position of a non-leaf Tensor, whose value replay recomputes), ``n_outputs``.
    """
    __slots__ = ("fn", "next_edges", "args", "needs_input_grad", "n_outputs", "out_meta",
                 "_saved", "_versions", "_released", "_out_bufs", "_gbuf", "_gown", "_mark",
                 "_non_diff", "_retain", "_out_ref",
                 # for the built-in ops (slots spare them a dict per node): ``meta`` holds
                 # what backward needs besides saved tensors (shapes, dims, scalar operands),
                 # ``scratch`` buffers a node reuses when a Graph replays it
                 "meta", "scratch",
                 "__dict__")     # custom Functions may set any attribute, as in PyTorch

    def __init__(self):
        self._out_ref = None
        self._saved = None
        self._released = False
        self._out_bufs = None
        self._non_diff = None
        self._retain = None

    @property
    def name(self):
        """The name of the Function class this node belongs to (e.g. ``"Mul"``)."""
        return self.fn.__name__

    def save_for_backward(self, *tensors):
        """Keep tensors (or None) for backward; their versions are checked when unpacked."""
        self._saved = tensors

    def mark_non_differentiable(self, *tensors):
        """Outputs listed here never require grad (e.g. argmax indices)."""
        self._non_diff = {id(t) for t in tensors}

    @property
    def saved_tensors(self):
        """The tensors given to save_for_backward, as a tuple; raises if the graph was freed
        or one of them was modified in place since."""
        saved = self._saved
        if self._released:
            raise RuntimeError(_RELEASED_MSG.format(op=self.fn.__name__))
        if saved is None:
            return ()
        versions = self._versions
        out = []
        for i, s in enumerate(saved):
            if s is None:
                out.append(None)
                continue
            if type(s) is _SavedOutput:
                if s.version[0] != versions[i]:
                    self._raise_modified(i, versions[i], s.version[0])
                t = _wrap(s.data)
                t._version = s.version
                if self.next_edges is not None:   # recorded node: reattach for double backward
                    t.grad_fn = self
                    t._out_nr = s.index
                    t._requires_grad = s.data.dtype.kind == "f"
                out.append(t)
            else:
                if versions is not None and s._version[0] != versions[i]:
                    self._raise_modified(i, versions[i], s._version[0])
                out.append(s)
        return tuple(out)

    def _raise_modified(self, i, old, new):
        raise RuntimeError(
            f"{self.fn.__name__}: one of the tensors saved for backward (saved tensor {i}) "
            f"has been modified by an in-place operation (version {old} -> {new}); its "
            f"gradient would be wrong. Avoid modifying it in place, or clone it first.")

    def empty(self, shape, dtype, index=0):
        """Allocate output ``index``; during Graph replay, reuse that output's old buffer."""
        bufs = self._out_bufs
        if bufs is not None and index < len(bufs):
            b = bufs[index]
            if b is not None and b.shape == tuple(shape) and b.dtype == dtype \
                    and b.flags.c_contiguous:
                return b
        return np.empty(shape, dtype)

    def outputs(self):
        """The node's output tensors that are still alive (None for freed ones)."""
        r = self._out_ref
        if r is None:
            return ()
        if type(r) is tuple:
            return tuple(x() for x in r)
        return (r(),)

    def release(self):
        """Drop saved tensors (after backward without retain_graph)."""
        if self._saved is not None:
            self._saved = None
            self._released = True

    def __repr__(self):
        return f"<{self.fn.__name__}Backward>"


# ---------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------
def _finish_saved(ctx, outs):
    """Record saved versions; replace saved outputs by _SavedOutput (no cycles)."""
    saved = ctx._saved
    if saved is None:
        ctx._versions = None
        return
    versions = []
    new = None
    for i, s in enumerate(saved):
        if s is None:
            versions.append(0)
            continue
        if not isinstance(s, Tensor):
            raise TypeError(f"{ctx.fn.__name__}: save_for_backward takes Tensors or None, "
                            f"got {type(s).__name__}")
        versions.append(s._version[0])
        if s.grad_fn is ctx:        # one of this node's own outputs
            if new is None:
                new = list(saved)
            j = s._out_nr
            new[i] = _SavedOutput(j, outs[j]._data, outs[j]._version)
    if new is not None:
        ctx._saved = tuple(new)
    ctx._versions = versions


class Function:
    """Base class for differentiable operations.

    Subclass it with ``@staticmethod forward(ctx, *args)`` returning a Tensor (or a tuple of
    Tensors) and ``@staticmethod backward(ctx, *grad_outputs)`` returning one gradient (or
    None) per forward argument, then call ``MyOp.apply(*args)``.

    Two class attributes tell a planned ``Graph`` how to replay the op (see replay.py);
    the defaults, for any Function, replay it by calling it from Python:
    ``tape_forward`` is True when ``forward`` computes only through taped kernels (the
    elementwise, activation, GEMM, sum and fused-loss kernels: ``_tape._TAPED_MODULES``),
    so a plan replays their calls directly;
    ``tape_backward`` is True when ``backward`` is made only of op calls, with no numpy
    on the values and no branch on them, so a plan replays those op calls.
    """
    tape_forward = False
    tape_backward = False

    @staticmethod
    def forward(ctx, *args):
        """Compute the output(s) from the inputs (grad mode is off here); override it."""
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """Return one gradient (or None) per forward argument, given the gradients of the
        outputs: the vector-Jacobian product; override it."""
        raise NotImplementedError("Function subclasses must implement backward(ctx, ...)")

    @classmethod
    def apply(cls, *args):
        """Run ``forward`` and, when grad mode is on and an input requires grad, record the
        node so that backward reaches the inputs."""
        ctx = _new_context(Context)
        ctx.fn = cls
        ctx._saved = None
        ctx._out_bufs = None
        ctx._non_diff = None
        if _mode.enabled:
            edges = []
            kept = []
            needs = []
            record = False
            for a in args:
                if isinstance(a, Tensor) and a._requires_grad:
                    fn = a.grad_fn
                    if fn is None:
                        edges.append(a)
                        kept.append(a)
                    else:
                        edges.append((fn, a._out_nr))
                        kept.append(None)   # replay recomputes it; do not keep it alive
                    needs.append(True)
                    record = True
                else:
                    edges.append(None)
                    kept.append(a)
                    needs.append(False)
            if record:
                ctx.next_edges = tuple(edges)
                ctx.needs_input_grad = tuple(needs)
                ctx.args = kept
                ctx._released = False
                ctx._retain = None
                _mode.enabled = False
                try:
                    result = cls.forward(ctx, *args)
                finally:
                    _mode.enabled = True
                return _attach(ctx, result)
            try:
                ctx.next_edges = None
                ctx.needs_input_grad = (False,) * len(args)
                _mode.enabled = False
                return cls.forward(ctx, *args)
            finally:
                _mode.enabled = True
        ctx.next_edges = None
        ctx.needs_input_grad = (False,) * len(args)
        if _capture is not None:
            return _capture.op(cls, None, args, ctx)
        return cls.forward(ctx, *args)


_new_context = object.__new__

# While a Graph's plan is taped (tensorgrad._tape.Capture), the op calls that record no node
# (every op inside a backward pass) go through it: ``_capture.op(fn, direct, args, ctx)``
# runs the op and notes how a replay redoes it. None otherwise (one test per op call).
_capture = None


def dispatch(fn, direct, x, y=None):
    """Run an op of one argument ``x`` or two, ``x`` and ``y``: record a node, or call the
    kernel directly.

    When grad mode is on and a Tensor argument requires grad, ``fn.apply`` runs the Function
    ``fn`` and records its node. Otherwise nothing would be recorded (grad mode is off, as
    inside backward unless ``create_graph=True``, or no input requires grad) and
    ``direct(fn, x[, y])`` returns the same values from the same kernel without building a
    Context: the per-op fast path. Every op with such a fast path goes through here; ops
    without one call ``fn.apply``, which records only when needed. (Two fixed arguments,
    ``y`` None for one, rather than ``*args``: this call is on every tiny op's path.)
    """
    if _mode.enabled and (isinstance(x, Tensor) and x._requires_grad
                          or isinstance(y, Tensor) and y._requires_grad):
        return fn.apply(x) if y is None else fn.apply(x, y)
    if _capture is not None:
        return _capture.op(fn, direct, (x,) if y is None else (x, y), None)
    return direct(fn, x) if y is None else direct(fn, x, y)


def _attach(ctx, result):
    """Make ctx the grad_fn of the forward's outputs."""
    non_diff = ctx._non_diff
    if type(result) is Tensor and non_diff is None:       # the common single-output case
        if result.grad_fn is not None or result._requires_grad:
            result = _alias(result)   # forward returned an input or a tensor with history
        # Non-float outputs (masks, indices) get the node too, without requiring grad: they
        # carry no gradient, but Graph.forward() must know how to recompute them.
        result.grad_fn = ctx
        result._out_nr = 0
        result._requires_grad = result._data.dtype.kind == "f"
        ctx.n_outputs = 1
        ctx._out_ref = _weakref(result)
        ctx.out_meta = ((result._data.shape, result._data.dtype),)
        _finish_saved(ctx, (result,))
        ctx._gbuf = None
        ctx._mark = 0
        return result
    single = isinstance(result, Tensor)
    outs = [result] if single else list(result)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{ctx.fn.__name__}.forward must return Tensors, "
                            f"got {type(o).__name__}")
        if o.grad_fn is not None or o._requires_grad:
            o = outs[i] = _alias(o)
        o.grad_fn = ctx
        o._out_nr = i
        o._requires_grad = o._data.dtype.kind == "f" and (non_diff is None
                                                          or id(o) not in non_diff)
    ctx.n_outputs = len(outs)
    ctx._out_ref = tuple(_weakref(o) for o in outs)
    ctx.out_meta = tuple((o._data.shape, o._data.dtype) for o in outs)
    _finish_saved(ctx, outs)
    ctx._gbuf = None
    ctx._mark = 0
    return outs[0] if single else tuple(outs)


def _alias(t):
    """A new Tensor on the same memory and version counter (for forwards returning inputs)."""
    a = _wrap(t._data)
    a._version = t._version
    return a
