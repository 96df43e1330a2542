"""The Tensor: a numpy ndarray plus what autograd needs.

Storage, strides and views are numpy's: ``transpose``, ``permute``, ``expand`` and basic
slicing are numpy views and share memory. The Tensor adds ``requires_grad``, ``grad``,
``grad_fn`` (the node that produced it) and a version counter shared with its views, which
in-place operations bump so that backward can refuse stale saved values.

Ops and most methods live in ``tensorgrad.ops`` and are installed on the class there; this
module keeps what is intrinsic to the data structure.
"""
import numpy as np

__all__ = [
    "Tensor",
    "bool_",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "int32",
    "int64",
    "is_tensor",
    "tensor",
    "uint8",
]

float16 = np.float16
float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool_ = np.bool_

_DEFAULT_FLOAT = np.dtype(np.float32)
_GRAD_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Create one with ``tg.tensor``, ``tg.from_numpy`` or a factory (``tg.zeros`` ...).
    """
    __slots__ = (
        "__weakref__",
        "_data",
        "_out_nr",
        "_requires_grad",
        "_retains_grad",
        "_version",
        "grad",
        "grad_fn",
    )

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
        return self._data.shape

    def size(self, dim=None):
        """Shape tuple, or the length of one dimension (PyTorch's ``size``)."""
        if dim is None:
            return self._data.shape
        return self._data.shape[dim]

    @property
    def dtype(self):
        return self._data.dtype.type

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op that carries gradient."""
        return self.grad_fn is None or not self._requires_grad

    @property
    def requires_grad(self):
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
            import weakref
            node = self.grad_fn
            if node._retain is None:
                node._retain = {}
            node._retain[self._out_nr] = weakref.ref(self)
        self._retains_grad = True
        return self

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

    @property
    def T(self):
        """Reverse all dimensions (a view)."""
        from tensorgrad.ops.shape import permute
        return permute(self, tuple(range(self._data.ndim - 1, -1, -1)))

    @property
    def mT(self):
        """Transpose the last two dimensions (a view)."""
        from tensorgrad.ops.shape import transpose
        return transpose(self, -2, -1)

    # -- conversion --------------------------------------------------------------------------
    def numpy(self):
        """The values as an ndarray (the same memory: no copy)."""
        if self._requires_grad and self.grad_fn is not None:
            # PyTorch refuses here; numpy() of a non-leaf is useful and harmless in read-only
            # use, so we allow it, like .detach().numpy().
            pass
        return self._data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        if copy:
            return self._data.copy()
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python "
                             f"scalar, got shape {self._data.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def element_size(self):
        """Bytes per element."""
        return self._data.itemsize

    def nelement(self):
        return self._data.size

    numel = nelement

    def nbytes(self):
        return self._data.nbytes

    def is_contiguous(self):
        return self._data.flags.c_contiguous

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def stride(self, dim=None):
        """Strides in elements, as in PyTorch."""
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def data_ptr(self):
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
        body = np.array2string(self._data, separator=", ", precision=4, prefix="tensor(")
        extra = []
        if self._data.dtype != _DEFAULT_FLOAT and self._data.dtype.kind == "f" \
                or self._data.dtype.kind not in "fi":
            extra.append(f"dtype={self._data.dtype}")
        if self.grad_fn is not None and self._requires_grad:
            extra.append(f"grad_fn=<{self.grad_fn.fn.__name__}Backward>")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # -- autograd ----------------------------------------------------------------------------
    def detach(self):
        """A new leaf Tensor on the same memory that does not require grad."""
        t = _wrap(self._data)
        t._version = self._version
        return t

    def detach_(self):
        self.grad_fn = None
        self._requires_grad = False
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is required unless self has one element. The graph's saved tensors are
        freed afterwards unless ``retain_graph=True``; ``create_graph=True`` records the
        backward pass so the gradients can be differentiated again.
        """
        from tensorgrad.graph import backward as _backward
        _backward((self,), None if gradient is None else (gradient,),
                  retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def _check_inplace(self, op):
        from tensorgrad.function import is_grad_enabled
        if self._requires_grad and is_grad_enabled():
            kind = "a leaf tensor" if self.grad_fn is None else "a tensor that is part of a graph"
            raise RuntimeError(
                f"{op}: in-place operation on {kind} that requires grad is not recorded by "
                f"autograd; wrap it in `with tg.no_grad():` (as optimisers do) or use the "
                f"out-of-place op")

    # -- in-place ops (not recorded; they bump the version counter) --------------------------
    def zero_(self):
        self._check_inplace("zero_")
        self._data[...] = 0
        self._version[0] += 1
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._data[...] = value
        self._version[0] += 1
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        arr = src._data if isinstance(src, Tensor) else np.asarray(src)
        try:
            np.copyto(self._data, np.broadcast_to(arr, self._data.shape), casting="unsafe")
        except ValueError:
            raise ValueError(f"copy_: cannot copy shape {arr.shape} into shape "
                             f"{self._data.shape}") from None
        self._version[0] += 1
        return self

    def _inplace_binary(self, op, other, alpha=None):
        self._check_inplace(op)
        from tensorgrad.ops.elementwise import _inplace
        _inplace(self, op, other, alpha)
        self._version[0] += 1
        return self

    def add_(self, other, alpha=1):
        return self._inplace_binary("add_", other, alpha)

    def sub_(self, other, alpha=1):
        return self._inplace_binary("sub_", other, alpha)

    def mul_(self, other):
        return self._inplace_binary("mul_", other)

    def div_(self, other):
        return self._inplace_binary("div_", other)

    def clamp_(self, min=None, max=None):
        self._check_inplace("clamp_")
        np.clip(self._data, min, max, out=self._data)
        self._version[0] += 1
        return self


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


def is_tensor(obj):
    return isinstance(obj, Tensor)


def _as_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str):
        return np.dtype(dtype)
    return np.dtype(dtype)


def tensor(data, dtype=None, requires_grad=False):
    """Build a Tensor from a Python scalar, nested list, ndarray or Tensor (always copies).

    Float data defaults to float32, integer data to int64, booleans stay bool.
    """
    dt = _as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = np.array(data._data, dtype=dt, copy=True)
    else:
        arr = np.array(data, dtype=dt, copy=True)
        if dt is None:
            kind = arr.dtype.kind
            if kind == "f" and not isinstance(data, np.ndarray):
                arr = arr.astype(_DEFAULT_FLOAT)
            elif kind in "iu" and not isinstance(data, np.ndarray):
                arr = arr.astype(np.int64)
            elif kind not in "fiub":
                raise TypeError(f"tensor(): unsupported data of dtype {arr.dtype}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a):
    """A Tensor sharing memory with the ndarray ``a`` (no copy)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects an ndarray, got {type(a).__name__}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: unsupported dtype {a.dtype}")
    return _wrap(a)
