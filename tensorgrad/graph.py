"""The backward engine: topological order and the reverse pass.

Nodes are ``Context`` objects (see function.py). Edges go from a node to what produced each
of its inputs: another node (``(node, output_index)``), a leaf Tensor, or None.

Backward: collect the nodes reachable from the roots with an explicit stack (no recursion, so
100,000-op chains work), order them inputs-first, then walk that order in reverse. Each node
receives the sum of the gradients sent to its outputs (the copy gate: fan-out adds) and calls
its Function's backward for one gradient per input. Every gradient sum (fan-out, a leaf's
``.grad``, a retained or captured gradient, with or without ``create_graph``) goes through
one routine, ``_accumulate``: in place into a buffer the engine owns, else a new tensor.
A leaf's post-accumulate-grad hooks (``Tensor.register_post_accumulate_grad_hook``) run once
per pass, right after the last node that can send that leaf a gradient (data-parallel
training starts its gradient all-reduces from them while backward goes on).

``Graph`` (replaying a recorded step, planned or not) is in replay.py.

Importing this module installs ``Tensor.backward`` (the Tensor layer imports no engine).
"""
import itertools

import numpy as np

from tensorgrad import function as _fn
from tensorgrad._kernels.elementwise import accumulate as _ek_accumulate
from tensorgrad._kernels.elementwise import copy as _ek_copy
from tensorgrad._tensor import _GRAD_DTYPES, Tensor, _post_accumulate_hooks, _wrap
from tensorgrad.ops._util import shape_str
from tensorgrad.ops.elementwise import add

__all__ = ["backward", "grad"]

_epoch = [0]


def _replay_edges(node):
    """Edges plus producers of recorded non-differentiable inputs (masks, indices): replay
    must recompute those too, backward need not visit them."""
    edges = list(node.next_edges)
    for k, a in enumerate(node.args):
        if edges[k] is None and isinstance(a, Tensor) and a.grad_fn is not None:
            edges[k] = (a.grad_fn, a._out_nr)
    return edges


def _toposort(root_nodes, replay=False):
    """Nodes reachable from ``root_nodes``, inputs first (post-order DFS, explicit stack)."""
    _epoch[0] += 1
    mark = _epoch[0]
    order = []
    for root in root_nodes:
        if root is None or root._mark == mark:
            continue
        root._mark = mark
        stack = [(root, 0)]
        while stack:
            node, i = stack[-1]
            edges = _replay_edges(node) if replay else node.next_edges
            n = len(edges)
            while i < n:
                e = edges[i]
                i += 1
                if type(e) is tuple:
                    child = e[0]
                    if child._mark != mark:
                        child._mark = mark
                        stack[-1] = (node, i)
                        stack.append((child, 0))
                        break
            else:
                stack.pop()
                order.append(node)
    return order


def _as_grad_tensor(g, like, what):
    if isinstance(g, Tensor):
        arr = g._data
    else:
        arr = np.asarray(g, dtype=like._data.dtype)
    if arr.shape != like.shape:
        raise RuntimeError(f"{what}: gradient has shape {arr.shape} but the output has shape "
                           f"{like.shape}")
    if arr.dtype != like._data.dtype:
        arr = arr.astype(like._data.dtype)
        return _wrap(arr)
    return g if isinstance(g, Tensor) else _wrap(arr)


def _copy(arr):
    """A C-contiguous copy (the OpenMP copy kernel for float arrays)."""
    out = np.empty(arr.shape, arr.dtype)
    if arr.dtype.kind == "f":
        _ek_copy(arr, out)
    else:
        np.copyto(out, arr)
    return out


def _accumulate(cur, g, create_graph, owned):
    """The engine's one gradient sum: ``cur + g`` (just ``g`` when ``cur`` is None).

    ``owned`` says no one outside the engine holds ``cur`` (a fan-out sum the engine made, a
    leaf's ``.grad``): then, unless a graph is being built or either side carries one, ``g``
    is added into ``cur`` in place (cast to its dtype) and its version bumped. Otherwise the
    sum is a new tensor, recorded exactly when ``create_graph`` is set.
    """
    if cur is None:
        return g
    if owned and not create_graph and cur.grad_fn is None and g.grad_fn is None:
        a = cur._data
        gd = g._data
        if a.shape != gd.shape:
            raise RuntimeError(f"accumulate: gradient shapes {shape_str(a.shape, gd.shape)} "
                               f"differ")
        if gd.dtype is not a.dtype:
            gd = gd.astype(a.dtype)
            if _fn._capture is not None:
                _fn._capture.fail("a gradient of another dtype is accumulated")
        if a.flags.c_contiguous and a.dtype in _GRAD_DTYPES:
            _ek_accumulate(a, gd)
        else:
            np.add(a, gd, out=a)
            if _fn._capture is not None:
                _fn._capture.fail("a gradient is accumulated into a non-contiguous buffer")
        cur._version[0] += 1
        return cur
    mode = _fn._mode
    prev = mode.enabled
    mode.enabled = bool(create_graph)
    try:
        return add(cur, g)
    finally:
        mode.enabled = prev


def _accumulate_leaf(leaf, g, create_graph, fresh):
    """leaf.grad += g. The first gradient becomes ``.grad`` as it is when it is ``fresh``
    (no one else can see it) or a graph is being built, else as a copy the engine owns."""
    if g.shape != leaf.shape:
        raise RuntimeError(f"backward: gradient of shape {g.shape} for a leaf of shape "
                           f"{leaf.shape} (a Function returned a gradient of the wrong shape)")
    cur = leaf.grad
    if cur is None and not (create_graph or fresh):
        g = _wrap(_copy(g._data))
    leaf.grad = _accumulate(cur, g, create_graph, True)


def _send(node, j, g, create_graph):
    """Add gradient g to output j of node (fan-out: the copy gate sums). The first gradient
    is kept as it is; a sum is the engine's own buffer, updated in place from then on."""
    buf = node._gbuf
    if buf is None:
        buf = node._gbuf = [None] * node.n_outputs
        node._gown = 0
    cur = buf[j]
    buf[j] = _accumulate(cur, g, create_graph, node._gown >> j & 1)
    if cur is not None:
        node._gown |= 1 << j


_trusted = {}


def _stealable(node, g, gins, stamp):
    """Can ``g`` become a leaf's .grad without a copy (and later be accumulated in place)?

    Only when nobody else can see it: a built-in op's backward produced it as a new buffer
    (not a view, not a graph-carrying tensor), it was not handed anywhere else in this pass
    (``g._sent`` is not this pass's ``stamp``: a mark on the object itself, as an id could
    belong to a freed tensor of the same pass) and the backward did not return it for two
    inputs. User Functions' gradients are always copied: they may return a tensor the user
    still holds.
    """
    fn = node.fn
    trusted = _trusted.get(fn)
    if trusted is None:
        trusted = _trusted[fn] = fn.__module__.startswith("tensorgrad.")
    if not trusted or g.grad_fn is not None or g._data.base is not None \
            or getattr(g, "_sent", None) == stamp:
        return False
    seen = 0
    for h in gins:
        if h is g:
            seen += 1
    return seen == 1


def _capture(capture, key, g, create_graph):
    """Add g to the tg.grad result kept under ``key`` (a leaf's id, or (id(node), index))."""
    slot = capture.get(key)
    if slot is not None:
        slot[0] = _accumulate(slot[0], g, create_graph, False)


def _hook_schedule(order):
    """{index in ``order``: [hooked leaves whose last possible gradient comes from that node]}
    (the node nearest the leaves in the reverse walk, i.e. the smallest index)."""
    fire_at = {}
    seen = set()
    for idx, node in enumerate(order):
        for e in node.next_edges:
            if isinstance(e, Tensor) and id(e) in _post_accumulate_hooks and id(e) not in seen:
                seen.add(id(e))
                fire_at.setdefault(idx, []).append(e)
    return fire_at


def _fire_hooks(leaves, pending):
    """Run the post-accumulate-grad hooks of those ``leaves`` that got a gradient this pass
    (while a Graph plan is taped, also at this place of every planned replay)."""
    fired = [leaf for leaf in leaves if pending.pop(id(leaf), None) is not None]
    if fired and _fn._capture is not None:
        _fn._capture.call(_run_hooks, fired)
    else:
        _run_hooks(fired)


def _run_hooks(leaves):
    for leaf in leaves:
        entry = _post_accumulate_hooks.get(id(leaf))
        if entry is not None:
            for hook in tuple(entry[1]):
                hook(leaf)


_passes = itertools.count(1)


def _retain(t, g, create_graph, snapshot):
    """An intermediate's ``retain_grad()``: its gradient into ``t.grad``. A planned Graph
    rewrites ``g``'s buffer at every replay, so there (``snapshot``) a copy is kept."""
    if snapshot and t.grad is None:
        g = _wrap(g._data.copy())       # (numpy's copy: not taped into the plan)
    t.grad = _accumulate(t.grad, g, create_graph, False)


def _run(roots, grads, retain_graph, create_graph, capture=None):
    """The engine. ``capture`` maps id(leaf) / (id(node), index) -> slot for tg.grad.

    Leaves with post-accumulate-grad hooks (``pending`` holds those that got a gradient and
    whose hooks have not run yet) fire right after the last node that can send them one."""
    pending = {} if _post_accumulate_hooks and capture is None else None
    root_nodes = []
    for t, g in zip(roots, grads):
        fn = t.grad_fn
        if fn is None:
            if capture is not None:
                _capture(capture, id(t), g, create_graph)
            elif t._requires_grad:
                _accumulate_leaf(t, g, create_graph, fresh=False)
                if pending is not None and id(t) in _post_accumulate_hooks:
                    pending[id(t)] = t
            continue
        _send(fn, t._out_nr, g, create_graph)
        root_nodes.append(fn)
    order = _toposort(root_nodes)
    fire_at = _hook_schedule(order) if pending is not None else None
    stamp = next(_passes)               # marks the gradients sent somewhere in this pass
    for g in grads:
        g._sent = stamp
    prev_mode = _fn._mode.enabled
    _fn._mode.enabled = bool(create_graph)
    try:
        for idx in range(len(order) - 1, -1, -1):
            node = order[idx]
            buf = node._gbuf
            if buf is None:          # nothing flowed here (output unused by the roots)
                if not retain_graph:
                    node.release()
                if fire_at and idx in fire_at:
                    _fire_hooks(fire_at[idx], pending)
                continue
            node._gbuf = None
            if node.n_outputs > 1:
                for j in range(len(buf)):
                    if buf[j] is None:
                        shape, dt = node.out_meta[j]
                        buf[j] = _wrap(np.zeros(shape, dt))
                        if _fn._capture is not None:        # a replay zeroes it again
                            _fn._capture.step(buf[j]._data.fill, 0)
            if node._retain is not None:
                for j, ref in node._retain.items():
                    t = ref()
                    if t is not None:
                        planned = _fn._capture is not None
                        _retain(t, buf[j], create_graph, planned)
                        if planned:                         # a replay retains it again
                            _fn._capture.step(_retain, t, buf[j], False, True)
            if capture is not None:
                for j in range(len(buf)):
                    _capture(capture, (id(node), j), buf[j], create_graph)
            cap = _fn._capture
            gins = node.fn.backward(node, *buf) if cap is None else cap.backward(node, buf)
            del buf
            if not retain_graph:
                node.release()
            edges = node.next_edges
            if type(gins) is not tuple:
                gins = (gins,) if not isinstance(gins, list) else tuple(gins)
            if len(gins) != len(edges):
                raise RuntimeError(f"{node.fn.__name__}.backward returned {len(gins)} "
                                   f"gradients, expected {len(edges)} (one per forward input)")
            for k in range(len(edges)):
                e = edges[k]
                if e is None:
                    continue
                g = gins[k]
                if g is None:
                    continue
                if not isinstance(g, Tensor):
                    raise TypeError(f"{node.fn.__name__}.backward must return Tensors or "
                                    f"None, got {type(g).__name__}")
                if type(e) is tuple:
                    child = e[0]
                    if child._gbuf is None and child.n_outputs == 1:
                        child._gbuf = [g]           # first gradient for a single output
                        child._gown = 0
                    else:
                        _send(child, e[1], g, create_graph)
                elif capture is not None:
                    _capture(capture, id(e), g, create_graph)
                else:
                    cur = e.grad
                    if cur is None or g._data.shape != e._data.shape:
                        _accumulate_leaf(e, g, create_graph,
                                         cur is None and _stealable(node, g, gins, stamp))
                    else:           # the common case of a leaf used again: straight to the sum
                        e.grad = _accumulate(cur, g, create_graph, True)
                    if pending is not None and id(e) in _post_accumulate_hooks:
                        pending[id(e)] = e
                g._sent = stamp
            if fire_at and idx in fire_at:
                _fire_hooks(fire_at[idx], pending)
        if pending:
            _fire_hooks(list(pending.values()), pending)
    except BaseException:
        for node in order:          # leave no half-summed buffers behind
            node._gbuf = None
        raise
    finally:
        _fn._mode.enabled = prev_mode


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``gradient`` is required unless self has one element. The graph's saved tensors are
    freed afterwards unless ``retain_graph=True``; ``create_graph=True`` records the
    backward pass so the gradients can be differentiated again.
    """
    backward((self,), None if gradient is None else (gradient,),
             retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


_tensor_backward.__name__ = "backward"
_tensor_backward.__qualname__ = "Tensor.backward"
Tensor.backward = _tensor_backward


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the sum of gradients of ``tensors`` w.r.t. the leaves; accumulate in ``.grad``."""
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    grads = _root_grads(tensors, grad_tensors, "backward")
    if inputs is not None:
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        res = grad(tensors, inputs, grads, retain_graph=retain_graph,
                   create_graph=create_graph, allow_unused=True)
        for t, g in zip(inputs, res):
            if g is not None:
                _accumulate_leaf(t, g, create_graph, fresh=False)
                if t.grad_fn is None and id(t) in _post_accumulate_hooks:
                    _fire_hooks((t,), {id(t): t})
        return
    _run(tensors, grads, retain_graph, create_graph)


def _root_grads(tensors, grad_tensors, what):
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    grads = []
    for t, g in zip(tensors, grad_tensors):
        if not t._requires_grad:
            raise RuntimeError(f"{what}: element of tensors does not require grad and does "
                               f"not have a grad_fn (shape {t.shape})")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(f"{what}: grad can be implicitly created only for scalar "
                                   f"outputs; got shape {t.shape}: pass gradient=")
            g = _wrap(np.ones(t.shape, t._data.dtype))
        else:
            g = _as_grad_tensor(g, t, what)
        grads.append(g)
    return grads


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` as a tuple; ``.grad`` is left untouched."""
    single = isinstance(outputs, Tensor)
    outputs = (outputs,) if single else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if retain_graph is None:
        retain_graph = create_graph
    grads = _root_grads(outputs, grad_outputs, "grad")
    capture = {}
    slots = []
    for t in inputs:
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError("grad: every input must be a Tensor that requires grad")
        key = id(t) if t.grad_fn is None else (id(t.grad_fn), t._out_nr)
        slot = capture.get(key)
        if slot is None:
            slot = capture[key] = [None]
        slots.append(slot)
    _run(outputs, grads, retain_graph, create_graph, capture=capture)
    result = []
    for t, slot in zip(inputs, slots):
        g = slot[0]
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: one of the inputs (shape {t.shape}) was not used to "
                               f"compute the outputs; pass allow_unused=True")
        result.append(g)
    return tuple(result)
