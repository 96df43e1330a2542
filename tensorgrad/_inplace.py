"""The in-place ops of Tensor: ``zero_ fill_ copy_ add_ sub_ mul_ div_ clamp_``.

They write into the tensor's memory and are not recorded by autograd (use them under
``tg.no_grad()`` on tensors that require grad, as optimisers do); each bumps the version
counter, so backward can tell that a saved tensor changed. ``Tensor`` inherits them.
"""
import numpy as np

from tensorgrad._kernels import elementwise as _EK

__all__ = ["InplaceOps"]

_GRAD_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_NUM = (int, float, np.floating, np.integer)
_INPLACE_CODE = {"add_": _EK.ADD, "sub_": _EK.SUB, "mul_": _EK.MUL, "div_": _EK.DIV}
_INPLACE_NP = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.true_divide}


class InplaceOps:
    """Mixin of Tensor's in-place ops (it relies on ``_data``, ``_version`` and
    ``_check_inplace``)."""
    __slots__ = ()

    def zero_(self):
        """Fill with zeros in place (not recorded; bumps the version counter)."""
        self._check_inplace("zero_")
        self._data[...] = 0
        self._version[0] += 1
        return self

    def fill_(self, value):
        """Fill with ``value`` in place (not recorded; bumps the version counter)."""
        self._check_inplace("fill_")
        self._data[...] = value
        self._version[0] += 1
        return self

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor's
        memory, in place (not recorded; bumps the version counter)."""
        self._check_inplace("copy_")
        arr = src._data if isinstance(src, InplaceOps) else np.asarray(src)
        try:
            np.copyto(self._data, np.broadcast_to(arr, self._data.shape), casting="unsafe")
        except ValueError:
            raise ValueError(f"copy_: cannot copy shape {arr.shape} into shape "
                             f"{self._data.shape}") from None
        self._version[0] += 1
        return self

    def _inplace_binary(self, op, other, alpha=None):
        """self (op)= alpha * other through the elementwise kernel when the operands allow,
        else numpy (same_kind casting); ``other`` must broadcast to self's shape."""
        self._check_inplace(op)
        a = self._data
        o = other._data if isinstance(other, InplaceOps) else other
        if alpha is not None and alpha != 1:
            o = np.multiply(o, alpha)
        if isinstance(o, np.ndarray):
            try:
                shape = np.broadcast_shapes(a.shape, o.shape)
            except ValueError:
                shape = None
            if shape != a.shape:
                raise ValueError(f"{op}: cannot broadcast shape {o.shape} into the in-place "
                                 f"target of shape {a.shape}")
            kernel = a.dtype in _GRAD_DTYPES and a.flags.c_contiguous and o.dtype == a.dtype
            if kernel:
                _EK.binary(_INPLACE_CODE[op], a, o, a)
        else:
            kernel = a.dtype in _GRAD_DTYPES and a.flags.c_contiguous and isinstance(o, _NUM)
            if kernel:
                _EK.binary_scalar(_INPLACE_CODE[op], a, float(o), a, False)
        if not kernel:
            _INPLACE_NP[op](a, o, out=a, casting="same_kind")
        self._version[0] += 1
        return self

    def add_(self, other, alpha=1):
        """self += alpha * other, in place (not recorded; bumps the version counter)."""
        return self._inplace_binary("add_", other, alpha)

    def sub_(self, other, alpha=1):
        """self -= alpha * other, in place (not recorded; bumps the version counter)."""
        return self._inplace_binary("sub_", other, alpha)

    def mul_(self, other):
        """self *= other, in place (not recorded; bumps the version counter)."""
        return self._inplace_binary("mul_", other)

    def div_(self, other):
        """self /= other, in place (not recorded; bumps the version counter)."""
        return self._inplace_binary("div_", other)

    def clamp_(self, min=None, max=None):
        """Clip into [min, max] in place (not recorded; bumps the version counter)."""
        self._check_inplace("clamp_")
        np.clip(self._data, min, max, out=self._data)
        self._version[0] += 1
        return self
