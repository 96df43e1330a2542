"""Optimizer base class: parameter groups, zero_grad, state_dict (as torch.optim.Optimizer)."""
import numbers
from collections.abc import Mapping

import numpy as np

from tensorgrad._kernels import optim as OK
from tensorgrad._tensor import Tensor, _wrap

__all__ = ["Optimizer", "UpdatePlan"]


class Optimizer:
    """Holds ``param_groups`` (a list of dicts: "params" plus hyper-parameters, defaults
    filled in) and per-parameter ``state``; subclasses implement ``step()``.

    ``params`` is an iterable of Tensors, or of dicts that each define a group with its own
    hyper-parameters, e.g. ``[{"params": a}, {"params": b, "lr": 1e-3}]``.
    """

    # What a subclass keeps per parameter: name -> "array" (shaped like the parameter) or
    # "count" (an int >= 0); load_state_dict checks a loaded state against it. None accepts
    # any names (arrays must still match the parameter's shape).
    _state_spec = None

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}             # id(param) -> dict of state arrays/counters
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            f"or dicts, got a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        if not isinstance(group, dict):
            raise TypeError(f"add_param_group: a group must be a dict, got "
                            f"{type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a "
                                f"{type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape "
                                 f"{tuple(p.shape)}) does not require grad")
            if p.grad_fn is not None:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor "
                                 f"(parameter {i}, shape {tuple(p.shape)})")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape "
                                 f"{tuple(p.shape)}) appears in more than one group")
            seen.add(id(p))
        new = dict(self.defaults)
        new.update({k: v for k, v in group.items() if k != "params"})
        new["params"] = params
        self._validate(new)
        self.param_groups.append(new)

    def _validate(self, group):
        """Check a group's hyper-parameters (subclasses extend)."""
        lr = group.get("lr")
        if not isinstance(lr, numbers.Real) or not lr >= 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr!r} "
                             f"(must be >= 0)")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {wd!r} "
                             f"(must be >= 0)")

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    g = p.grad
                    if g.grad_fn is not None:
                        g = p.grad = _wrap(np.array(g._data))
                    g._data[...] = 0
                    g._version[0] += 1

    def step(self, closure=None):
        raise NotImplementedError(f"{type(self).__name__} must implement step(); use "
                                  f"tg.optim.SGD or tg.optim.Adam, or subclass Optimizer")

    # -- planned updates (tg.Graph.step) ----------------------------------------------------
    # A subclass whose update kernels can run from a plan sets ``_planned_step`` to its own
    # ``step`` (a subclass overriding step() again is then not planned) and implements:
    #   _plan_kind(group)    -> the update kind (optim.pyx: SGD ... ADAMW), None if unplannable
    #   _plan_state(p, kind) -> the state arrays the kernel updates, None if not there yet
    #   _plan_hyper(group, kind, params, h) -> write the group's hyper-parameters into h for
    #                            the next step (and advance counters)
    # and may extend _plan_check(group, kind, params) -> False when a group cannot run planned.
    _planned_step = None

    def _plan_check(self, group, kind, params):
        return True

    def _plan_update(self):
        """This optimizer's next update as kernel records (an ``UpdatePlan``), planned from
        its current gradients and state (after an eager ``step()``); None when it cannot be
        planned, and ``tg.Graph.step`` then calls ``step()``."""
        cls = type(self)
        if cls._planned_step is None or cls.step is not cls._planned_step:
            return None
        groups, unplanned = [], []
        for group in self.param_groups:
            live = [p for p in group["params"] if p.grad is not None]
            unplanned += [p for p in group["params"] if p.grad is None]
            kind = self._plan_kind(group) if live else None
            if live and (kind is None or not self._plan_check(group, kind, live)):
                return None
            hyper = np.zeros(8)
            entries = []
            for p in live:
                d, g = p._data, p.grad._data
                state = self._plan_state(p, kind)
                if state is None or g.dtype != d.dtype or g.shape != d.shape:
                    return None
                try:
                    rec = OK.update_record(kind, d, g, state, hyper)
                except (TypeError, ValueError):     # not contiguous, not float, read-only
                    return None
                entries.append((p, d, p.grad, state, rec))
            groups.append((group, len(group["params"]), kind, hyper, entries, live))
        if not any(g[4] for g in groups):
            return None
        return UpdatePlan(self, groups, unplanned)

    def _state(self, p):
        st = self.state.get(id(p))
        if st is None:
            st = self.state[id(p)] = {}
        return st

    # -- serialisation (parameters are referred to by their position, as in PyTorch) -------
    def state_dict(self):
        """The optimizer's state as plain data, which ``tg.save`` can write::

            {"state": {index: {name: value}},       # per parameter, e.g. "exp_avg", "step"
             "param_groups": [{"lr": ..., ..., "params": [index, ...]}]}

        Parameters are numbered by position across the groups, so the dict loads into an
        optimizer built over the same parameters in the same order. State arrays are copies,
        as Tensors; counters stay ints.
        """
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[k]: {n: (_wrap(v.copy()) if isinstance(v, np.ndarray) else v)
                            for n, v in st.items()}
                 for k, st in self.state.items() if k in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state from ``state_dict()`` (or from ``tg.load`` of a saved one).

        This optimizer must have the same number of parameter groups, parameters per group
        and parameter shapes as the one that was saved; the hyper-parameters of each group
        (lr, betas, momentum ...) are replaced by the saved ones. Everything is checked
        before anything changes: on an error the optimizer is left as it was.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{who}: expected the dict of Optimizer.state_dict(), got "
                            f"{type(state_dict).__name__}")
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{who}: the dict lacks 'state' and 'param_groups', so it is not "
                             f"an optimizer's state dict (a model's?)")
        groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not (isinstance(groups, (list, tuple))
                and all(isinstance(g, Mapping) for g in groups)):
            raise TypeError(f"{who}: 'param_groups' must be a list of dicts")
        if not isinstance(saved_state, Mapping):
            raise TypeError(f"{who}: 'state' must be a dict, got {type(saved_state).__name__}")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{who}: the state dict has {len(groups)} parameter group(s), "
                             f"this optimizer has {len(self.param_groups)}")
        by_index = {}
        new_groups = []
        for i, (mine, theirs) in enumerate(zip(self.param_groups, groups)):
            ids = theirs.get("params")
            if not isinstance(ids, (list, tuple)):
                raise TypeError(f"{who}: parameter group {i} has no 'params' list")
            if len(ids) != len(mine["params"]):
                raise ValueError(f"{who}: parameter group {i} has {len(ids)} parameter(s) in "
                                 f"the state dict, {len(mine['params'])} in this optimizer")
            missing = [k for k in self.defaults if k not in theirs]
            if missing:
                raise ValueError(f"{who}: parameter group {i} lacks "
                                 f"{', '.join(map(repr, missing))} (is it the state of "
                                 f"another kind of optimizer?)")
            by_index.update(zip(ids, mine["params"]))
            new = {k: v for k, v in theirs.items() if k != "params"}
            new["params"] = mine["params"]
            self._validate(new)
            new_groups.append(new)
        state = {}
        for i, st in saved_state.items():
            p = by_index.get(i)
            if p is None:
                raise ValueError(f"{who}: the state dict has state for parameter {i!r}, "
                                 f"which no parameter group lists")
            state[id(p)] = self._load_param_state(who, i, st, p)
        self.state = state
        for mine, new in zip(self.param_groups, new_groups):
            mine.clear()
            mine.update(new)

    def _load_param_state(self, who, i, st, p):
        """A checked copy of one parameter's loaded state, arrays in the parameter's dtype."""
        where = f"{who}: state of parameter {i}"
        if not isinstance(st, Mapping):
            raise TypeError(f"{where} is a {type(st).__name__}, not a dict")
        spec = self._state_spec
        if spec is not None and set(st) != set(spec):
            raise ValueError(f"{where} has entries {sorted(map(str, st))}; "
                             f"{type(self).__name__} keeps {sorted(spec)}")
        new = {}
        for n, v in st.items():
            is_array = isinstance(v, (Tensor, np.ndarray))
            kind = spec[n] if spec is not None else "array" if is_array else None
            if kind == "array":
                if not is_array:
                    raise TypeError(f"{where}: '{n}' must be a Tensor, got {type(v).__name__}")
                arr = v._data if isinstance(v, Tensor) else v
                if arr.dtype.kind != "f":
                    raise TypeError(f"{where}: '{n}' must be a float Tensor, got dtype "
                                    f"{arr.dtype}")
                if arr.shape != p.shape:
                    raise ValueError(f"{where}: '{n}' has shape {tuple(arr.shape)}, the "
                                     f"parameter has shape {tuple(p.shape)}")
                v = np.array(arr, dtype=p._data.dtype, order="C")
            elif kind == "count":
                if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                    raise TypeError(f"{where}: '{n}' must be an int, got {v!r}")
                if v < 0:
                    raise ValueError(f"{where}: '{n}' must be >= 0, got {v}")
                v = int(v)
            new[n] = v
        return new

    # -- pickling: ``state`` is keyed by id(param), which unpickled parameters do not keep,
    # so it travels keyed by the parameter's position in the groups
    def __getstate__(self):
        params = [p for g in self.param_groups for p in g["params"]]
        d = dict(self.__dict__)
        d["state"] = {i: self.state[id(p)] for i, p in enumerate(params) if id(p) in self.state}
        return d

    def __setstate__(self, d):
        params = [p for g in d["param_groups"] for p in g["params"]]
        d["state"] = {id(params[i]): st for i, st in d["state"].items()}
        self.__dict__.update(d)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def flat_param(p, opname):
    """(flat view of p's data, flat contiguous grad) for a kernel; the view writes through.

    A non-contiguous parameter gets a contiguous copy that the caller writes back with
    ``np.copyto`` (returned as the third item, else None).
    """
    g = p.grad._data
    d = p._data
    if g.shape != d.shape:
        raise RuntimeError(f"{opname}: gradient of shape {g.shape} for a parameter of shape "
                           f"{d.shape}")
    if g.dtype != d.dtype:
        g = g.astype(d.dtype)
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)     # e.g. a broadcast view from a sum's backward
    if d.flags.c_contiguous:
        return d.reshape(-1), g.reshape(-1), None
    tmp = np.ascontiguousarray(d)
    return tmp.reshape(-1), g.reshape(-1), tmp


class UpdatePlan:
    """An optimizer's update as kernel records, for a planned training step
    (``tg.Graph.step``): ``steps`` holds one ``optim.update_record`` per parameter that had a
    gradient, in the order ``step()`` visits them; ``params`` those parameters.

    The records point at the parameters' data, their gradients (the buffers a Graph hands
    out) and the optimizer's state arrays, and read the hyper-parameters from one array per
    group. ``ready()``, called before each planned run, checks that all of these are still
    the ones planned and writes the current hyper-parameters; ``done()`` after the run marks
    the parameters modified, as ``step()`` does.
    """

    def __init__(self, opt, groups, unplanned):
        self.opt = opt
        self._groups = groups
        self._unplanned = unplanned
        self.steps = [e[4] for g in groups for e in g[4]]
        self.params = [e[0] for g in groups for e in g[4]]

    def ready(self):
        """True when the records still do what ``step()`` would (then the hyper-parameters
        are written for this step); False, with nothing changed, when the optimizer must
        step eagerly and be planned again: a parameter's data, gradient or state array was
        replaced, another parameter has a gradient, or a hyper-parameter now selects another
        kernel (e.g. momentum switched on)."""
        opt = self.opt
        if len(opt.param_groups) != len(self._groups):
            return False
        for mine, (group, count, kind, _, entries, params) in zip(opt.param_groups,
                                                                  self._groups):
            if mine is not group or len(group["params"]) != count or \
                    (entries and (opt._plan_kind(group) != kind
                                  or not opt._plan_check(group, kind, params))):
                return False
            for p, d, g, state, _ in entries:
                if p._data is not d or p.grad is not g:
                    return False
                now = opt._plan_state(p, kind)
                if now is None or len(now) != len(state) or \
                        any(a is not b for a, b in zip(now, state)):
                    return False
        for p in self._unplanned:
            if p.grad is not None:
                return False
        for group, _, kind, hyper, entries, params in self._groups:
            if entries:
                opt._plan_hyper(group, kind, params, hyper)
        return True

    def done(self):
        for p in self.params:
            p._version[0] += 1
