"""Graph: a recorded step, replayed, and planned into a flat sequence of kernel calls.

``tg.Graph(loss)`` takes the nodes that produced ``loss`` in topological order (the
lectures' ComputationalGraph). ``forward()`` recomputes every node from the current values of
its inputs into the same output buffers; ``backward()`` runs the reverse pass into the
leaves' ``.grad``.

Planning. The first ``forward()`` runs the nodes one by one, as eager code would, while the
kernels *tape* their calls: each taped call leaves a record of its operands' memory layout
and arguments (see ``_kernels/_driver.pxi``). The first ``backward()`` after it runs the
backward engine the same way. What cannot be taped becomes a Python step at the same place:
a custom Function, an op that computes with numpy, a backward that reads values to decide
what to compute. From then on ``forward()`` and ``backward()`` run those steps
(``_kernels/plan.pyx``): the same kernels on the same memory, in the same order, so the
values are bitwise those of the eager step, with no graph building, no dispatch and no
allocation for the taped part.

``step(optimizer)`` is a whole training step (``zero_grad``, ``forward``, ``backward``,
``optimizer.step()``). Planned, the optimizer's update joins the backward steps as kernel
records (``optim.UpdatePlan``), fused with the last pass over each gradient where it can be.

Which ops tape: a Function says so with ``tape_forward`` (its forward computes only through
taped kernels) and ``tape_backward`` (its backward is made only of op calls). A node whose
backward is replayed from Python also replays its forward from Python, so that what it saves
for backward is current.

Rules that follow (see the README):
- Feed new data by writing into the recorded inputs (``X.copy_(xb)``) and update parameters
  in place (optimisers do). An input or leaf that was *replaced* (``t.data = ...``) makes
  ``forward()``/``backward()`` raise: the plan reads the memory it recorded. A Graph is
  recorded for one set of input shapes; record another for another shape.
- The plan owns every buffer, ``.grad`` included: after ``opt.zero_grad()`` (gradients set
  to None), ``backward()`` hands out the same gradient tensors at every step, overwritten by
  the next one. A gradient left in place is accumulated into, as eagerly.
- A planned replay does not check saved tensors' versions (an in-place change between
  ``forward()`` and ``backward()`` is not reported).
"""
import numpy as np

from tensorgrad import function as _fn
from tensorgrad._fuse import fuse
from tensorgrad._kernels import elementwise as _EK
from tensorgrad._kernels.plan import Steps
from tensorgrad._tape import Capture, _as_tuple, _redo_node, _views_of
from tensorgrad._tensor import Tensor, _post_accumulate_hooks
from tensorgrad.function import _finish_saved
from tensorgrad.graph import _root_grads, _run, _toposort

__all__ = ["Graph"]

def _mode_off():
    prev = _fn._mode.enabled
    _fn._mode.enabled = False
    return prev


# ---------------------------------------------------------------------------------------------
# Graph: the lectures' ComputationalGraph object
# ---------------------------------------------------------------------------------------------
class Graph:
    """The topologically sorted graph that produced ``root``, replayable.

    ``nodes`` lists the graph's nodes inputs-first. ``forward()`` recomputes every node from
    the current values of the leaves (writing into the same buffers) and returns the root;
    ``backward()`` runs the reverse pass, accumulating into the leaves' ``.grad``;
    ``step(opt)`` is a whole training step. The Graph keeps every node's saved tensors, so
    it can be replayed and differentiated repeatedly.

    With ``plan=True`` (the default, unless ``keep_grads``) the first ``forward()`` and the
    first ``backward()`` after it tape their kernel calls, and later calls run that plan:
    bitwise the same values, without Python per node and without allocating (see the module
    docstring for the rules). ``planned`` tells whether a plan is in use, ``plan_info()``
    what it holds.
    """

    def __init__(self, root, keep_grads=False, plan=True):
        if not isinstance(root, Tensor):
            raise TypeError(f"Graph expects a Tensor, got {type(root).__name__}")
        if root.grad_fn is None:
            raise ValueError("Graph: the root has no grad_fn (it is a leaf, or it was computed "
                             "without any input requiring grad / under no_grad)")
        self.root = root
        self.keep_grads = bool(keep_grads)
        self.plan = bool(plan) and not self.keep_grads
        self.unplanned_reason = None if self.plan else "planning is off"
        self.nodes = _toposort([root.grad_fn], replay=True)
        self._index = {id(n): i for i, n in enumerate(self.nodes)}
        # Output tensors of every node: the ones still alive now (the root, intermediates the
        # caller holds); replay fills in the rest and keeps them.
        self._values = []
        for n in self.nodes:
            outs = list(n.outputs())
            self._values.append(outs if any(o is not None for o in outs) else None)
        self._leaves = []
        seen = set()
        for n in self.nodes:
            for e in n.next_edges:
                if isinstance(e, Tensor) and id(e) not in seen:
                    seen.add(id(e))
                    self._leaves.append(e)
        self._fwd = None            # Steps of the planned forward
        self._fwd_taped = ()        # its steps as taped (fused again whenever backward is)
        self._fused = 0             # pairs of kernel records fused into one (tensorgrad/_fuse.py)
        self._bwd = None            # Steps of the planned backward
        self._bwd_taped = ()        # its steps as taped
        self._step = None           # step(): (optimizer, the _bwd it was planned with,
                                    #   its UpdatePlan or None, backward+update Steps, fused)
        self._inputs = ()           # (tensor, array) the plan reads: checked before each run
        self._root_grad = None      # the plan's root gradient buffer
        self._grads = ()            # the gradient tensors the plan hands out, per leaf
        self._spare = {}            # leaf index -> buffer for accumulating into our own .grad
        self._hooked_at_tape = ()

    @property
    def leaves(self):
        """The leaf tensors that require grad, in first-use order."""
        return list(self._leaves)

    @property
    def planned(self):
        """True once ``forward()`` runs a plan (after the first call)."""
        return self._fwd is not None

    def __len__(self):
        return len(self.nodes)

    def plan_info(self):
        """What the plan holds: ``{"forward": (kernel steps, Python steps), "backward":
        (...), "fused": pairs of kernel calls fused into one, "update": what ``step()``
        planned of its optimizer's update ({"records": parameters updated by kernel records,
        "fused": records fused with the pass that writes their gradient}, or None),
        "unplanned_reason": str or None}``."""
        def counts(steps):
            return None if steps is None else (steps.n_kernel, len(steps) - steps.n_kernel)
        st = self._step
        update = None
        if st is not None and st[2] is not None and st[1] is self._bwd:
            update = {"records": len(st[2].steps), "fused": st[4] - self._fused}
        return {"forward": counts(self._fwd), "backward": counts(self._bwd),
                "fused": self._fused if self._bwd is not None else 0,
                "update": update, "unplanned_reason": self.unplanned_reason}

    # --- forward ------------------------------------------------------------------------------
    def _input_value(self, node, k):
        e = node.next_edges[k]
        if e is None:
            a = node.args[k]
            if isinstance(a, Tensor) and a.grad_fn is not None \
                    and id(a.grad_fn) in self._index:
                e = (a.grad_fn, a._out_nr)      # a recorded mask/index: use its new value
        if type(e) is tuple:
            child, j = e
            outs = self._values[self._index[id(child)]]
            if outs is None or outs[j] is None:
                raise RuntimeError("Graph.forward: an intermediate value is missing")
            return outs[j]
        if e is not None:
            return e
        return node.args[k]

    def _replay_node(self, i, node, cap):
        """Recompute node i into its buffers; with ``cap``, also plan how to redo it."""
        args = [self._input_value(node, k) for k in range(len(node.next_edges))]
        old = self._values[i]
        bufs = None
        if old is not None:
            bufs = [o._data if o is not None else None for o in old]
            for o in old:
                if o is not None:
                    o._version[0] += 1
        node._out_bufs = bufs
        node._saved = None
        node._released = False
        fn = node.fn
        taped = cap is not None and fn.tape_forward and fn.tape_backward
        try:
            if cap is None:
                result = fn.forward(node, *args)
            else:
                result = cap.unit(taped, lambda: fn.forward(node, *args))
        finally:
            node._out_bufs = None
        outs = _as_tuple(result)
        if old is None:
            old = [None] * len(outs)
        final = []
        for j, o in enumerate(outs):
            keep = old[j]
            if keep is None:
                keep = o
                keep.grad_fn = node
                keep._out_nr = j
                keep._requires_grad = o._data.dtype.kind == "f" and \
                    (node._non_diff is None or id(o) not in node._non_diff)
            elif keep._data is not o._data:
                keep._data = o._data      # forward allocated anew (e.g. a view): adopt it
            final.append(keep)
        # the forward saved its fresh output objects; point them at the kept tensors
        saved = node._saved
        if saved is not None:
            remap = {id(o): k for o, k in zip(outs, final)}
            node._saved = tuple(None if s is None else remap.get(id(s), s) for s in saved)
        _finish_saved(node, final)
        self._values[i] = final
        if cap is not None and not (taped and cap.kept(result, args)):
            arrays = tuple(k._data for k in final)
            # a view needs no step, unless its backward (from Python) unpacks saved tensors
            if not (fn.tape_backward and _views_of(arrays, args)):
                cap.step(_redo_node, node, tuple(args), arrays, tuple(final))

    def _recorded_inputs(self):
        """(tensor, array) for every tensor the plan reads that no node computes."""
        pairs, seen = [], set()
        for node in self.nodes:
            for k, e in enumerate(node.next_edges):
                t = e if isinstance(e, Tensor) else None
                if e is None:
                    a = node.args[k]
                    if isinstance(a, Tensor) and (a.grad_fn is None
                                                  or id(a.grad_fn) not in self._index):
                        t = a
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    pairs.append((t, t._data))
        return tuple(pairs)

    def _check_inputs(self, what):
        for k, (t, arr) in enumerate(self._inputs):
            if t._data is not arr:
                kind = "a leaf" if t._requires_grad else "an input"
                raise RuntimeError(
                    f"{what}: input {k} ({kind}, recorded with shape {arr.shape}, now "
                    f"{t.shape}) is not the memory the graph was recorded with: it was "
                    f"replaced rather than modified in place. Write new values into it "
                    f"(t.copy_(new)), or record a new Graph for new shapes (e.g. a partial "
                    f"last batch)")

    def forward(self):
        """Recompute every node in order from the current leaf values; return the root."""
        if self._fwd is not None:
            self._check_inputs("Graph.forward")
            prev = _mode_off()
            try:
                self._fwd.run()
            finally:
                _fn._mode.enabled = prev
            return self.root
        cap = Capture() if self.plan else None
        prev = _mode_off()
        try:
            if cap is None:
                for i, node in enumerate(self.nodes):
                    self._replay_node(i, node, None)
            else:
                with cap:
                    for i, node in enumerate(self.nodes):
                        self._replay_node(i, node, cap)
        finally:
            _fn._mode.enabled = prev
        if cap is not None:
            if cap.failed:
                self._give_up(cap.failed)
            else:
                self._fwd_taped = tuple(cap.steps)
                self._fwd = Steps(self._fwd_taped)
                self._inputs = self._recorded_inputs()
                self._bwd = None            # taped against these buffers at the next backward
        return self.root

    def _give_up(self, reason):
        self.plan = False
        self.unplanned_reason = reason
        self._fwd = self._bwd = None

    # --- backward -----------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=True):
        """Reverse pass from the root into the leaves' ``.grad`` (keeps the graph by default).

        With ``keep_grads=True`` every intermediate value the Graph holds also gets its
        ``.grad`` (the lectures' ComputationalGraph, and what ``to_dot`` then shows).
        """
        if self._fwd is not None:
            if self._bwd is None or self._hooked() != self._hooked_at_tape:
                self._tape_backward(gradient)
            else:
                self._run_backward(gradient)
            return
        grads = _root_grads((self.root,), None if gradient is None else (gradient,),
                            "Graph.backward")
        if self.keep_grads:
            for outs in self._values:
                for o in outs or ():
                    if o is not None and o is not self.root and o._requires_grad:
                        o.grad = None
                        o.retain_grad()
        _run((self.root,), grads, retain_graph, False)
        if self.keep_grads and self.root.grad is None:
            self.root.grad = grads[0]

    def _tape_backward(self, gradient):
        grads = _root_grads((self.root,), None if gradient is None else (gradient,),
                            "Graph.backward")
        before = [leaf.grad for leaf in self._leaves]
        for leaf in self._leaves:
            leaf.grad = None                # taped as the first gradient of each leaf
        cap = Capture()
        prev = _mode_off()
        try:
            with cap:
                _run((self.root,), grads, True, False)
        finally:
            _fn._mode.enabled = prev
        fresh = [leaf.grad for leaf in self._leaves]
        if not cap.failed:
            self._bwd_taped = tuple(cap.steps)
            fwd, bwd, self._fused = fuse(self._fwd_taped, self._bwd_taped)
            self._fwd = Steps(fwd)
        for leaf, old, new in zip(self._leaves, before, fresh):
            if old is not None and new is not None:
                _EK.accumulate(old._data, new._data)
                old._version[0] += 1
            leaf.grad = old if old is not None else new
        if cap.failed:
            self._give_up(cap.failed)
            return
        self._bwd = Steps(bwd)
        self._hooked_at_tape = self._hooked()
        self._root_grad = grads[0]._data
        self._grads = tuple(fresh)
        self._spare = {}

    def _hooked(self):
        """Which leaves have post-accumulate-grad hooks (taped into the plan)."""
        return tuple(id(leaf) in _post_accumulate_hooks for leaf in self._leaves)

    def _run_backward(self, gradient):
        self._check_inputs("Graph.backward")
        if gradient is not None:
            g = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient)
            if g.shape != self._root_grad.shape:
                raise RuntimeError(f"Graph.backward: gradient has shape {g.shape} but the "
                                   f"root has shape {self._root_grad.shape}")
            np.copyto(self._root_grad, g, casting="unsafe")
        self._run_planned(self._hand_out(), self._bwd)

    def _hand_out(self):
        """Give every leaf without a gradient the plan's gradient tensor (before the steps
        run: hooks they call see it); returns the accumulations to do after the steps."""
        # A gradient already in .grad is added to, as eagerly: kept aside, added back after.
        after = []
        for i, (leaf, mine) in enumerate(zip(self._leaves, self._grads)):
            cur = leaf.grad
            if cur is None or mine is None:
                continue
            if cur is mine:
                spare = self._spare.get(i)
                if spare is None:
                    spare = self._spare[i] = np.empty_like(mine._data)
                np.copyto(spare, mine._data)
                after.append((mine, spare))
            else:
                after.append((cur, mine._data))
        for leaf, mine in zip(self._leaves, self._grads):
            if leaf.grad is None:
                leaf.grad = mine
        return after

    def _run_planned(self, after, steps):
        prev = _mode_off()
        try:
            steps.run()
        finally:
            _fn._mode.enabled = prev
        for dst, src in after:
            _EK.accumulate(dst._data, src)
            dst._version[0] += 1

    # --- a whole training step ----------------------------------------------------------------
    def step(self, optimizer):
        """One training step: ``optimizer.zero_grad()``, ``forward()``, ``backward()``,
        ``optimizer.step()``, with bitwise the same results; returns the root (the loss).

        Planned, the optimizer's update joins the plan: after the first step (run as
        written above) each parameter's update is a kernel record in the backward steps, and
        where the backward's last pass over a gradient is an elementwise one (e.g. an L2
        term's gradient added to a matmul's) that pass also updates the parameter, so the
        parameter and its gradient go through memory once. This needs an optimizer whose
        update has kernel records (``tg.optim.SGD``, ``Adam``, ``AdamW``; another optimizer
        is called as ``optimizer.step()``) and parameters whose gradients this Graph hands
        out. Changing hyper-parameters between steps (an lr schedule) is fine; anything
        else between ``backward()`` and ``optimizer.step()`` (gradient clipping, hooks on
        the optimizer) needs the four calls written out.
        """
        zero = getattr(optimizer, "zero_grad", None)
        if not callable(zero) or not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"Graph.step: expected an optimizer (with zero_grad() and "
                            f"step()), got {type(optimizer).__name__}")
        zero()
        self.forward()
        st = self._step
        if st is not None and (st[0] is not optimizer or st[1] is not self._bwd
                               or self._hooked() != self._hooked_at_tape):
            st = None                   # planned for another optimizer or backward
        if st is None or st[2] is None or any(p.grad is not None for p in st[2].params):
            # as written out: not planned yet (then plan now), not plannable, or a
            # gradient was left in place (accumulated into before the update)
            self.backward()
            optimizer.step()
            if st is None:
                self._plan_step(optimizer)
            return self.root
        after = self._hand_out()       # (forward() has checked the inputs)
        if not st[2].ready():           # something was replaced: step eagerly, plan again
            self._run_planned(after, self._bwd)
            optimizer.step()
            self._plan_step(optimizer)
            return self.root
        self._run_planned(after, st[3])
        st[2].done()
        return self.root

    def _plan_step(self, optimizer):
        """Plan step()'s backward with the optimizer's update (after an eager step)."""
        if self._bwd is None:
            self._step = None
            return
        make = getattr(optimizer, "_plan_update", None)
        upd = make() if callable(make) else None
        if upd is not None:
            mine = {id(g) for g in self._grads if g is not None}
            if any(id(p.grad) not in mine for p in upd.params):
                upd = None              # a parameter this Graph does not compute
        if upd is None:
            self._step = (optimizer, self._bwd, None, None, 0)
            return
        _, bwd, fused = fuse(self._fwd_taped, self._bwd_taped + tuple(upd.steps))
        self._step = (optimizer, self._bwd, upd, Steps(bwd), fused)

    # --- display ------------------------------------------------------------------------------
    def to_dot(self, max_values=16):
        """Graphviz DOT text: one box per node (op, shape, small values, gradient)."""
        lines = ["digraph tensorgrad {", '  rankdir="LR";',
                 '  node [shape=record, fontname="Helvetica", fontsize=10];']
        leaf_ids = {}

        def fmt(arr):
            if arr is None:
                return ""
            if arr.size <= max_values:
                return np.array2string(np.asarray(arr), precision=4, separator=",",
                                       suppress_small=True).replace("\n", "")
            return f"[{arr.size} values]"

        def esc(s):
            return (s.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
                    .replace("|", "\\|").replace("<", "\\<").replace(">", "\\>")
                    .replace('"', '\\"'))

        def record(fields):
            return " | ".join(esc(f) for f in fields)

        for leaf in self._leaves:
            lid = f"leaf{len(leaf_ids)}"
            leaf_ids[id(leaf)] = lid
            g = leaf.grad._data if leaf.grad is not None else None
            fields = ["leaf", f"shape {leaf.shape}", f"value {fmt(leaf._data)}",
                      f"grad {fmt(g)}"]
            lines.append(f'  {lid} [label="{{{record(fields)}}}", style=filled, '
                         f'fillcolor="#dde8f7"];')
        for i, node in enumerate(self.nodes):
            outs = self._values[i]
            out = outs[0] if outs else None
            shape, _ = node.out_meta[0]
            val = fmt(out._data) if out is not None else "(freed; call forward())"
            g = out.grad._data if out is not None and out.grad is not None else None
            fields = [node.fn.__name__, f"shape {shape}", f"value {val}"]
            if g is not None:
                fields.append(f"grad {fmt(g)}")
            lines.append(f'  n{i} [label="{{{record(fields)}}}"];')
            for e in node.next_edges:
                if type(e) is tuple:
                    lines.append(f"  n{self._index[id(e[0])]} -> n{i};")
                elif isinstance(e, Tensor):
                    lines.append(f"  {leaf_ids[id(e)]} -> n{i};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"Graph({len(self.nodes)} nodes, {len(self._leaves)} leaves, root shape " \
               f"{self.root.shape})"
