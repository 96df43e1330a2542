"""tg.save / tg.load: state dicts as plain ``.npz`` files (numbers only, never pickled code).

The file is numpy's zip of ``.npy`` arrays, one per entry, in the state dict's order, so it
can also be read with ``np.load(path)``. Loading uses ``allow_pickle=False``: a file that
would need unpickling is refused instead of executing anything.
"""
import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from tensorgrad.tensor import Tensor, _wrap

__all__ = ["load", "save"]


def _to_arrays(obj):
    if hasattr(obj, "state_dict") and callable(obj.state_dict) and not isinstance(obj, Mapping):
        obj = obj.state_dict()          # a Module: save its state dict
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a state dict (a mapping name -> Tensor/array) or a "
                        f"Module, got {type(obj).__name__}")
    arrays = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {k!r}")
        if isinstance(v, Tensor):
            arr = v._data
        elif isinstance(v, (np.ndarray, np.generic, int, float, bool)):
            arr = np.asarray(v)
        else:
            raise TypeError(f"save: value for '{k}' is a {type(v).__name__}; only Tensors, "
                            f"arrays and numbers can be saved")
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"save: value for '{k}' has dtype {arr.dtype}; only numeric "
                            f"arrays can be saved")
        arrays[k] = arr
    return arrays


def save(obj, path):
    """Write a state dict (name -> Tensor/ndarray/number), or a Module's state dict, to
    ``path`` as an uncompressed .npz file (the name is used exactly as given)."""
    arrays = _to_arrays(obj)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


def load(path):
    """Read a file written by ``tg.save``: an ordered dict name -> Tensor."""
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise TypeError("it holds a single array, not a state dict")
        with z:
            return OrderedDict((k, _wrap(z[k])) for k in z.files)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except (ValueError, TypeError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"load: {path} is not a valid tensorgrad state dict (.npz): "
                         f"{e}") from None
