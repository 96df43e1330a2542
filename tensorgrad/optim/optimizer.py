"""Optimizer base class: parameter groups, zero_grad, state_dict (as torch.optim.Optimizer)."""
import numbers

import numpy as np

from tensorgrad.tensor import Tensor, _wrap

__all__ = ["Optimizer"]


class Optimizer:
    """Holds ``param_groups`` (a list of dicts: "params" plus hyper-parameters, defaults
    filled in) and per-parameter ``state``; subclasses implement ``step()``.

    ``params`` is an iterable of Tensors, or of dicts that each define a group with its own
    hyper-parameters, e.g. ``[{"params": a}, {"params": b, "lr": 1e-3}]``.
    """

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

    def _state(self, p):
        st = self.state.get(id(p))
        if st is None:
            st = self.state[id(p)] = {}
        return st

    # -- serialisation (parameters are referred to by their position, as in PyTorch) -------
    def state_dict(self):
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[k]: {n: (v.copy() if isinstance(v, np.ndarray) else v)
                            for n, v in st.items()}
                 for k, st in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: {len(groups)} parameter groups in the state "
                             f"dict, the optimizer has {len(self.param_groups)}")
        params = []
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError("load_state_dict: a parameter group has a different number "
                                 "of parameters than the state dict")
            params.extend(mine["params"])
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            new = {}
            for n, v in st.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(f"load_state_dict: state '{n}' of parameter {i} has "
                                         f"shape {v.shape}, the parameter {tuple(p.shape)}")
                    v = np.array(v, dtype=p._data.dtype, order="C")
                new[n] = v
            self.state[id(p)] = new
        for mine, theirs in zip(self.param_groups, groups):
            mine.update({k: v for k, v in theirs.items() if k != "params"})

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
