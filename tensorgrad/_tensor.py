"""The Tensor: a numpy ndarray plus what autograd needs.

Storage, strides and views are numpy's: ``transpose``, ``permute``, ``expand`` and basic
slicing are numpy views and share memory. The Tensor adds ``requires_grad``, ``grad``,
``grad_fn`` (the node that produced it) and a version counter shared with its views, which
in-place operations bump so that backward can refuse stale saved values.

Ops and most methods live in ``tensorgrad.ops`` and are installed on the class there, and
``tensorgrad.graph`` installs ``backward``: this module is the lowest layer of the package
and imports none of them. It keeps what is intrinsic to the data structure, and the grad
mode flag, which in-place methods check.
"""
import threading
import weakref

import numpy as np

from tensorgrad._inplace import _GRAD_DTYPES, InplaceOps

__all__ = [
    "Tensor",
    "bool_",
    "float32",
    "float64",
    "from_dlpack",
    "from_numpy",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_tensor",
    "tensor",
    "uint8",
]

float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool_ = np.bool_

_DEFAULT_FLOAT = np.dtype(np.float32)
_DEFAULT_INT = np.dtype(np.int64)
_DLPACK_CPU = 1             # DLPack's kDLCPU device type


class _GradMode(threading.local):
    """Grad mode, per thread as in PyTorch: whether ops record graph nodes. The switches
    (``no_grad``, ``set_grad_enabled`` ...) are in function.py."""
    enabled = True


_mode = _GradMode()

# Post-accumulate-grad hooks, by id(tensor): {id: (weakref to the tensor, [hooks])}. They
# live outside the slots so that tensors without hooks carry nothing; the engine (graph.py)
# calls them once per backward pass, after a leaf's last gradient of the pass is summed.
_post_accumulate_hooks = {}


class _HookHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters."""
    __slots__ = ("_hook", "_key")

    def __init__(self, key, hook):
        self._key = key
        self._hook = hook

    def remove(self):
        """Unregister the hook (a no-op when it is already removed)."""
        entry = _post_accumulate_hooks.get(self._key)
        if entry is None:
            return
        hooks = entry[1]
        for i, h in enumerate(hooks):
            if h is self._hook:
                del hooks[i]
                break
        if not hooks:
            del _post_accumulate_hooks[self._key]


def _check_dtype(dt, op):
    """``dt`` if a Tensor can hold it, else a TypeError naming the dtype and the fix.

    Tensors hold float32/float64 (the kernels' types), integers and bool, in native byte
    order. Other floats (float16, longdouble) would fail in the first op or silently change
    dtype, and the kernels refuse big-endian arrays with an internal message, so both are
    refused where a tensor is made.
    """
    if dt in _GRAD_DTYPES or (dt.kind in "iub" and dt.isnative):
        return dt
    if dt.kind == "f" and dt.newbyteorder("=") not in _GRAD_DTYPES:
        raise TypeError(f"{op}: dtype {dt.name} is not supported (tensorgrad computes in "
                        f"float32 and float64); convert it first, e.g. a.astype(np.float32)")
    if dt.kind in "fiu":
        raise TypeError(f"{op}: dtype {dt.str} ({dt.name}) is not in the machine's byte "
                        f"order; convert it first with a.astype(a.dtype.newbyteorder('='))")
    raise TypeError(f"{op}: unsupported dtype {dt} (tensors hold float32, float64, integers "
                    f"and bool)")


class Tensor(InplaceOps):
    """An n-dimensional array that can record the operations applied to it.

    Create one with ``tg.tensor``, ``tg.from_numpy`` or a factory (``tg.zeros`` ...).
    """
    # (a dict: the values are the docstrings of the public slots)
    __slots__ = {
        "__weakref__": None,
        "_data": None,
        "_out_nr": None,
        "_requires_grad": None,
        "_retains_grad": None,
        "_sent": None,          # the backward pass that last sent this tensor somewhere
        "_version": None,
        "grad": "The gradient accumulated by backward(): a Tensor of this tensor's shape, or "
                "None.",
        "grad_fn": "The node (Context) of the op that produced this tensor, or None for a "
                   "leaf.",
    }

    # numpy must defer to our reflected operators (ndarray + Tensor -> Tensor.__radd__)
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad=False):
        t = tensor(data, dtype=dtype, requires_grad=requires_grad)
        self._data = t._data
        self._requires_grad = t._requires_grad
        self.grad = None
        self.grad_fn = None
        self._version = [0]
        self._out_nr = 0
        self._retains_grad = False

    # -- basic attributes -------------------------------------------------------------------
    @property
    def shape(self):
        """The size of each dimension, as a tuple of ints."""
        return self._data.shape

    def size(self, dim=None):
        """Shape tuple, or the length of one dimension (PyTorch's ``size``)."""
        if dim is None:
            return self._data.shape
        return self._data.shape[dim]

    @property
    def dtype(self):
        """The element type, a numpy scalar type (``tg.float32 is np.float32``)."""
        return self._data.dtype.type

    @property
    def ndim(self):
        """The number of dimensions."""
        return self._data.ndim

    def dim(self):
        """The number of dimensions (PyTorch's name for ``ndim``)."""
        return self._data.ndim

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op that carries gradient."""
        return self.grad_fn is None or not self._requires_grad

    @property
    def requires_grad(self):
        """True when ops on this tensor are recorded so that gradients reach it."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place on a leaf; only float tensors can require grad."""
        requires_grad = bool(requires_grad)
        if requires_grad and self._data.dtype not in _GRAD_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require gradients, "
                            f"got dtype {self._data.dtype}")
        if not requires_grad and self.grad_fn is not None and self._requires_grad:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; "
                               "use detach() on a non-leaf")
        self._requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self.grad_fn is not None and not self._retains_grad:
            node = self.grad_fn
            if node._retain is None:
                node._retain = {}
            node._retain[self._out_nr] = weakref.ref(self)
        self._retains_grad = True
        return self

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` once per backward pass, after the pass's last gradient for this
        leaf has been accumulated into ``self.grad`` (PyTorch's hook of the same name).

        Only for leaves that require grad; a pass that sends this leaf no gradient does not
        call it, and neither does ``tg.grad`` (it leaves ``.grad`` alone). Hooks run in
        registration order; the returned handle's ``remove()`` unregisters the hook.
        """
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                            f"{type(hook).__name__}")
        if not self._requires_grad or self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that "
                               "require grad accumulate a gradient")
        key = id(self)
        entry = _post_accumulate_hooks.get(key)
        if entry is None or entry[0]() is not self:
            def forget(_ref, key=key, hooks=_post_accumulate_hooks):   # (also at shutdown)
                e = hooks.get(key)
                if e is not None and e[0] is _ref:
                    del hooks[key]
            entry = _post_accumulate_hooks[key] = (weakref.ref(self, forget), [])
        entry[1].append(hook)
        return _HookHandle(key, hook)

    @property
    def data(self):
        """A detached Tensor on the same memory (and version counter)."""
        t = _wrap(self._data)
        t._version = self._version
        return t

    @data.setter
    def data(self, value):
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        if arr.shape != self._data.shape or arr.dtype != self._data.dtype:
            raise ValueError(f"data: cannot assign shape {arr.shape} {arr.dtype} to a tensor "
                             f"of shape {self._data.shape} {self._data.dtype}")
        self._data = arr

    # -- conversion --------------------------------------------------------------------------
    def numpy(self):
        """The values as an ndarray (the same memory: no copy).

        Unlike PyTorch, this also works on a tensor that requires grad, as
        ``.detach().numpy()`` would: the array is outside autograd.
        """
        return self._data

    def __array__(self, dtype=None, copy=None):
        """NumPy's conversion protocol (NumPy 2 semantics), used by ``np.asarray(t)``.

        The tensor's own memory unless a copy is needed (another ``dtype``) or asked for
        (``copy=True``); ``copy=False`` raises ValueError when a copy would be needed.
        """
        d = self._data
        if dtype is not None and np.dtype(dtype) != d.dtype:
            if copy is False:
                raise ValueError(f"__array__: converting a {d.dtype} tensor to "
                                 f"{np.dtype(dtype)} needs a copy, but copy=False was given")
            return d.astype(dtype)
        return d.copy() if copy else d

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export the tensor through DLPack, sharing memory: ``torch.from_dlpack(t)``,
        ``np.from_dlpack(t)`` (and ``torch.tensor(t)`` / ``torch.as_tensor(t)``, which look
        for this method).

        As in PyTorch, a tensor that requires grad is refused (the consumer would see its
        memory outside autograd): export ``t.detach()``, which shares the same memory.
        Negative strides (a reversed view such as ``t[::-1]``) are refused too: some
        consumers abort the process on them; export ``t.contiguous()`` instead.
        """
        d = self._data
        if self._requires_grad:
            raise BufferError("__dlpack__: cannot export a tensor that requires grad; export "
                              "t.detach() instead (it shares the same memory)")
        if any(st < 0 for st in d.strides):
            raise BufferError(f"__dlpack__: cannot export a tensor with negative strides "
                              f"{self.stride()} (a reversed view); export t.contiguous() "
                              f"instead (a copy)")
        if not d.flags.writeable and not copy and (max_version is None or max_version < (1,)):
            # numpy exports read-only memory only through DLPack >= 1.0, which can flag it
            raise BufferError("__dlpack__: this tensor's memory is read-only (an expand()ed "
                              "view, or from_numpy() of a read-only array) and the consumer "
                              "only understands DLPack < 1.0, which cannot mark memory "
                              "read-only; export t.clone() (a writable copy) instead")
        # pass on only what the consumer gave: numpy < 2.1 knows no keyword but ``stream``,
        # and DLPack consumers retry without ``max_version`` when it is refused
        kw = {k: v for k, v in (("stream", stream), ("max_version", max_version),
                                ("dl_device", dl_device), ("copy", copy)) if v is not None}
        return d.__dlpack__(**kw)

    def __dlpack_device__(self):
        """The DLPack device of the memory: ``(1, 0)``, the CPU."""
        return self._data.__dlpack_device__()

    def __reduce__(self):
        """Pickle support: the values, dtype and requires_grad (and a subclass's __dict__).

        ``.grad`` and the graph are not pickled (as in PyTorch); a non-leaf that requires
        grad is refused, since its graph cannot be pickled: pickle ``t.detach()``.
        """
        if self.grad_fn is not None and self._requires_grad:
            raise RuntimeError(f"pickle: cannot pickle a non-leaf tensor that requires grad "
                               f"(made by {self.grad_fn!r}): its graph cannot be pickled; "
                               f"pickle t.detach() to keep the values")
        state = getattr(self, "__dict__", None)
        args = (type(self), self._data, self._requires_grad)
        return (_rebuild, args, state) if state else (_rebuild, args)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python "
                             f"scalar, got shape {self._data.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        """The values as (nested lists of) Python numbers."""
        return self._data.tolist()

    def element_size(self):
        """Bytes per element."""
        return self._data.itemsize

    def nelement(self):
        """The number of elements (the product of the shape)."""
        return self._data.size

    numel = nelement

    def nbytes(self):
        """The size of the values in bytes (nelement() * element_size())."""
        return self._data.nbytes

    def is_contiguous(self):
        """True when the elements lie in memory in row-major (C) order without gaps."""
        return self._data.flags.c_contiguous

    def is_floating_point(self):
        """True for float32/float64 tensors."""
        return self._data.dtype.kind == "f"

    def stride(self, dim=None):
        """Strides in elements, as in PyTorch."""
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def data_ptr(self):
        """The address of the first element, as an int."""
        return self._data.__array_interface__["data"][0]

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield self[i]

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements "
                               f"is ambiguous")
        return bool(self._data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self._data.reshape(()))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        d = self._data
        body = np.array2string(d, separator=", ", precision=4, prefix="tensor(")
        extra = []
        if d.size == 0 and d.shape != (0,):
            extra.append(f"size={d.shape}")     # "[]" alone would hide the shape
        if d.dtype != _DEFAULT_FLOAT and (d.dtype != _DEFAULT_INT or d.size == 0):
            extra.append(f"dtype={d.dtype}")    # int64 shows in the values ("1" vs "1.")
        if self.grad_fn is not None and self._requires_grad:
            extra.append(f"grad_fn=<{self.grad_fn.fn.__name__}Backward>")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def __format__(self, spec):
        """``f"{t:.3f}"``: a 0-d tensor formats as its Python number (also with an empty spec,
        as in PyTorch), a one-element tensor too when a spec is given; other tensors only
        with an empty spec (their str)."""
        d = self._data
        if d.ndim == 0 or (spec and d.size == 1):
            return format(d.item(), spec)
        if not spec:
            return str(self)
        raise TypeError(f"unsupported format string {spec!r} for a tensor of shape {d.shape}: "
                        f"only one-element tensors format as numbers (format t.item(), or "
                        f"the elements of t.tolist())")

    # -- autograd ----------------------------------------------------------------------------
    def detach(self):
        """A new leaf Tensor on the same memory that does not require grad."""
        t = _wrap(self._data)
        t._version = self._version
        return t

    def detach_(self):
        """Detach in place: drop grad_fn and requires_grad, making this tensor a leaf."""
        self.grad_fn = None
        self._requires_grad = False
        return self

    def _check_inplace(self, op):
        if self._requires_grad and _mode.enabled:
            kind = "a leaf tensor" if self.grad_fn is None else "a tensor that is part of a graph"
            raise RuntimeError(
                f"{op}: in-place operation on {kind} that requires grad is not recorded by "
                f"autograd; wrap it in `with tg.no_grad():` (as optimisers do) or use the "
                f"out-of-place op")


def _wrap(arr, requires_grad=False):
    """Internal constructor: a Tensor around ``arr`` with no copy and no checks."""
    t = Tensor.__new__(Tensor)
    t._data = arr
    t._requires_grad = requires_grad
    t.grad = None
    t.grad_fn = None
    t._version = [0]
    t._out_nr = 0
    t._retains_grad = False
    return t


def _rebuild(cls, data, requires_grad):
    """Unpickle a tensor (the inverse of ``Tensor.__reduce__``)."""
    t = _wrap(data, requires_grad)
    if cls is not Tensor:
        t.__class__ = cls   # not cls(...), whose constructor may copy or check; subclasses
    return t                # such as nn.Parameter add no slots


def is_tensor(obj):
    """True if ``obj`` is a tensorgrad Tensor."""
    return isinstance(obj, Tensor)


def tensor(data, dtype=None, requires_grad=False):
    """Build a Tensor from a Python scalar, nested list, ndarray, Tensor or any array-like
    (a torch tensor, a DLPack exporter, an object with ``__array__``); always copies.

    Data that has a dtype keeps it (a float64 ndarray or torch tensor gives float64); Python
    floats default to float32, Python ints to int64, booleans stay bool. Big-endian arrays
    are converted to native byte order; float16 is refused (convert it, or pass ``dtype=``).
    The copy of a tensor that requires grad (tensorgrad's or torch's) is a new leaf.
    """
    dt = None if dtype is None else np.dtype(dtype)
    if isinstance(data, Tensor):
        src = data._data
    elif isinstance(data, np.ndarray):
        src = data
    elif hasattr(data, "__dlpack__"):           # not __array__: torch's warns about copy=
        if getattr(data, "requires_grad", False) is True:
            data = data.detach()                # a copy leaves the graph behind anyway
        src = _import_dlpack(data, "tensor")
    else:
        src = np.asarray(data)
        if dt is None and not hasattr(data, "dtype"):     # Python data: PyTorch's defaults
            if src.dtype.kind == "f":
                dt = _DEFAULT_FLOAT
            elif src.dtype.kind in "iu":
                dt = _DEFAULT_INT
    if dt is None:
        dt = src.dtype if src.dtype.isnative else src.dtype.newbyteorder("=")
    arr = np.array(src, dtype=_check_dtype(dt, "tensor"), order="C", copy=True)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a):
    """A Tensor sharing memory with the ndarray ``a`` (no copy, any strides).

    ``a`` must be float32/float64, integer or bool in native byte order: a float16 or a
    big-endian array raises TypeError naming the conversion to apply first.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects an ndarray, got {type(a).__name__}")
    _check_dtype(a.dtype, "from_numpy")
    return _wrap(a)


def _import_dlpack(x, op):
    """The ndarray that np.from_dlpack makes of ``x`` (same memory), with clear errors."""
    kind = f"{type(x).__module__.partition('.')[0]}.{type(x).__name__}"    # torch.Tensor
    if getattr(x, "requires_grad", False) is True:
        raise BufferError(f"{op}: the {kind} requires grad, and sharing its memory would take "
                          f"it out of its autograd graph; pass x.detach() (same memory)")
    device = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else _DLPACK_CPU
    if device != _DLPACK_CPU:
        raise BufferError(f"{op}: the {kind} lives on DLPack device type {device}, not on the "
                          f"CPU (device type 1); tensorgrad runs on the CPU: copy it there "
                          f"first (torch: x.cpu())")
    return np.from_dlpack(x)


def from_dlpack(x):
    """A Tensor sharing memory with ``x``, any DLPack exporter on the CPU: a torch tensor, an
    ndarray, a tensorgrad Tensor, ... (strided views included; writes show on both sides).

    The result is an ordinary leaf (``requires_grad_()`` works on it). Its dtype must be one
    that tensors hold (float32/float64, integers, bool): float16 raises TypeError. A torch
    tensor that requires grad is refused, as torch's own exporter does: pass ``x.detach()``.
    """
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ (a torch tensor, an "
                        f"ndarray, ...), got {type(x).__name__}")
    arr = _import_dlpack(x, "from_dlpack")
    _check_dtype(arr.dtype, "from_dlpack")
    return _wrap(arr)
