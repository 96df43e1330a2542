"""Module and Parameter: the containers of tg.nn, with PyTorch's behaviour and names.

A Module registers what is assigned to its attributes: a ``Parameter`` (or any leaf Tensor
with requires_grad=True) becomes a parameter, a Module becomes a submodule; other values are
plain attributes. Registration order is kept, so ``named_parameters()`` and ``state_dict()``
list names like ``"0.weight"`` in a stable, PyTorch-compatible order.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from tensorgrad._tensor import Tensor, _wrap, tensor
from tensorgrad.function import no_grad

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A leaf Tensor that requires grad and that a Module registers as a parameter.

    ``Parameter(data)`` shares memory with ``data`` when it is a Tensor or an ndarray (like
    PyTorch); other data (lists, numbers) is copied. It is a Tensor in every other respect.
    """
    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            arr = np.empty(0, np.float32)
        elif isinstance(data, Tensor):
            arr = data._data
        elif isinstance(data, np.ndarray):
            arr = data
        else:
            arr = tensor(data)._data
        if requires_grad and arr.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter: only float32/float64 data can require grad, got "
                            f"dtype {arr.dtype}")
        p = Tensor.__new__(cls)
        p._data = arr
        p._requires_grad = bool(requires_grad)
        p.grad = None
        p.grad_fn = None
        # share the version counter with the tensor we wrap: in-place writes to either count
        p._version = data._version if isinstance(data, Tensor) else [0]
        p._out_nr = 0
        p._retains_grad = False
        return p

    def __init__(self, data=None, requires_grad=True):
        pass    # everything happens in __new__ (Tensor.__init__ would copy the data)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        # Pickles (and deep-copies) as a Parameter of the same values and requires_grad,
        # whatever Tensor does; as in PyTorch, the gradient is not part of it.
        return Parameter, (self._data, self._requires_grad)


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(text, n):
    lines = text.split("\n")
    return lines[0] + "".join("\n" + " " * n + line for line in lines[1:])


class Module:
    """Base class of every layer and model: subclass it, assign Parameters and submodules
    in ``__init__`` (after ``super().__init__()``), and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ----------------------------------------------------------------------
    def _registry(self, name):
        try:
            return object.__getattribute__(self, name)
        except AttributeError:
            raise AttributeError(f"cannot assign parameters or submodules before "
                                 f"{type(self).__name__}.__init__() called "
                                 f"super().__init__()") from None

    def __setattr__(self, name, value):
        is_param = isinstance(value, Parameter) or (
            isinstance(value, Tensor) and value._requires_grad and value.grad_fn is None)
        if is_param:
            params = self._registry("_parameters")
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            mods = self._registry("_modules")
            self._forget(name)
            mods[name] = value
        elif value is None and name in self.__dict__.get("_parameters", ()):
            self._parameters[name] = None
        elif value is None and name in self.__dict__.get("_modules", ()):
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                f"(Tensor or None expected)")
            self._buffers[name] = value
        else:
            if name in self.__dict__.get("_parameters", ()) and isinstance(value, Tensor):
                raise TypeError(f"cannot assign a Tensor that is not a leaf requiring grad "
                                f"as parameter '{name}' (use Parameter(...) or "
                                f"`with tg.no_grad(): m.{name}.copy_(...)`)")
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                del r[name]
        d.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                return r[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                del r[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, a leaf Tensor requiring grad, or None)."""
        if param is not None and not (isinstance(param, Tensor) and param._requires_grad
                                      and param.grad_fn is None):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or a leaf "
                            f"Tensor with requires_grad=True")
        self._forget(name)
        self._registry("_parameters")[name] = param

    def register_buffer(self, name, value):
        """Register a Tensor that is saved in state_dict but is not a parameter."""
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"register_buffer: '{name}' must be a Tensor or None")
        self._forget(name)
        self._registry("_buffers")[name] = value

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module, got "
                            f"{type(module).__name__}")
        self._forget(name)
        self._registry("_modules")[name] = module

    register_module = add_module

    # -- traversal -------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix=""):
        """(name, module) for this module and every descendant, each module once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, t in getattr(m, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield mprefix + ("." if mprefix else "") + name, t

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call fn on every submodule (children first) and on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ---------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode on this module and all submodules; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    def to(self, dtype):
        """Convert every parameter and float buffer to ``dtype`` (in place); returns self."""
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"to: only float32/float64 modules are supported, got {dt}")
        for t in list(self.parameters()) + [b for b in self.buffers()
                                            if b._data.dtype.kind == "f"]:
            if t._data.dtype != dt:
                t._data = t._data.astype(dt)
                t._version[0] += 1
                if t.grad is not None:
                    t.grad = _wrap(t.grad._data.astype(dt))
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def num_parameters(self):
        """Total number of scalar parameters."""
        return sum(p._data.size for p in self.parameters())

    # -- state -----------------------------------------------------------------------------
    def state_dict(self, prefix=""):
        """An ordered dict name -> Tensor (parameters, then buffers, module by module); the
        Tensors are detached views of the live values (no copy)."""
        out = OrderedDict()
        for mprefix, m in self.named_modules(prefix=prefix):
            p = mprefix + ("." if mprefix else "")
            for name, t in m._parameters.items():
                if t is not None:
                    out[p + name] = t.detach()
            for name, t in m._buffers.items():
                if t is not None:
                    out[p + name] = t.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` (name -> Tensor or ndarray) into the parameters and
        buffers, in place. Shapes must match; with ``strict`` the names must match exactly.
        Nothing is modified when an error is raised. Returns (missing_keys, unexpected_keys).
        """
        own = OrderedDict()
        for mprefix, m in self.named_modules():
            p = mprefix + ("." if mprefix else "")
            for reg in (m._parameters, m._buffers):
                for name, t in reg.items():
                    if t is not None:
                        own[p + name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        values = {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = v._data if isinstance(v, Tensor) else np.asarray(v)
            if arr.shape != t.shape:
                mismatched.append(f"size mismatch for {k}: copying a param with shape "
                                  f"{tuple(arr.shape)} from checkpoint, the shape in current "
                                  f"model is {tuple(t.shape)}")
            elif arr.dtype.kind not in "fiub":
                mismatched.append(f"dtype mismatch for {k}: cannot copy dtype {arr.dtype}")
            else:
                values[k] = arr
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(map(repr, unexpected)))
        errors.extend(mismatched)
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                               + "".join("\n\t" + e for e in errors))
        with no_grad():
            for k, arr in values.items():
                t = own[k]
                np.copyto(t._data, arr, casting="unsafe")
                t._version[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # -- calling and printing --------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define it in the "
                                  f"subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(m), 2))
        name = type(self).__name__
        if not self._modules:
            return f"{name}({extra})"
        return name + "(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        keys = list(super().__dir__())
        for reg in ("_parameters", "_buffers", "_modules"):
            keys.extend(self.__dict__.get(reg, {}).keys())
        return sorted(set(keys))


def _zero_grad(p, set_to_none):
    if set_to_none:
        p.grad = None
    elif p.grad is not None:
        g = p.grad
        if g.grad_fn is not None:       # a graph-carrying grad (create_graph): detach first
            g = p.grad = _wrap(np.array(g._data))
        g._data[...] = 0
        g._version[0] += 1
