"""Conversions and checks shared by the data loaders: array-likes in, Tensors out."""
import numpy as np

from tensorgrad._tensor import from_numpy


def to_tensor(arr):
    """Wrap an ndarray as a Tensor sharing its memory (made C-contiguous first if needed)."""
    return from_numpy(np.ascontiguousarray(arr))


def as_array(x):
    """The ndarray behind a Tensor (no copy), or np.asarray of anything else."""
    numpy = getattr(x, "numpy", None)
    if numpy is not None and not isinstance(x, np.ndarray):
        return numpy()
    return np.asarray(x)


def check_labels(y, n, where):
    """Validate a label vector: 1-D, integer-valued, non-negative, n entries; return int64."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{where}: {n} samples but {y.shape[0]} labels")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{where}: labels must be whole numbers, got dtype {y.dtype} "
                             "with fractional or non-finite values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{where}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, found {int(y.min())}")
    return y


def _position(index, ndim):
    if ndim == 1:
        return f"index {index[0]}"
    if ndim == 2:
        return f"row {index[0]}, column {index[1]}"
    return f"index {index}"


def check_finite(x, name="array"):
    """Return ``x`` (a Tensor or array-like) unchanged if it holds no NaN or infinity, else
    raise ``ValueError`` saying how many there are and where the first one is, e.g.
    ``"X contains 3 NaN and 1 inf values; the first is at row 7, column 2"``.

    ``name`` starts the message; the position is the row and column for 2-D data, the
    full index otherwise. Integer and boolean data are always finite.
    """
    a = as_array(x)
    if a.dtype.kind not in "fc":
        return x
    bad = ~np.isfinite(a)
    if not bad.any():
        return x
    n_bad = int(np.count_nonzero(bad))
    n_nan = int(np.count_nonzero(np.isnan(a)))
    counts = " and ".join(f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_bad - n_nan, "inf"))
                          if n)
    first = tuple(int(i) for i in np.unravel_index(np.argmax(bad), a.shape))
    raise ValueError(f"{name} contains {counts} value{'s' if n_bad > 1 else ''}; the first is "
                     f"at {_position(first, a.ndim)}")
