"""tg.save / tg.load: state dicts as plain ``.npz`` files (arrays and JSON, never pickles).

The file is numpy's zip of ``.npy`` arrays, readable with ``np.load(path)``. Each array of the
saved object is one entry, named by its key path (``"0.weight"`` for a model's state dict,
``"optimizer/state/0/exp_avg"`` inside a nested checkpoint). Everything else — the nesting of
dicts, lists and tuples, and the numbers, strings, booleans and Nones in it — is described by
one JSON text stored as the entry ``__tensorgrad__``, so ``tg.load`` gives back the same
structure and the same Python types: a Tensor comes back as a Tensor (its values and dtype;
not requires_grad or grad), an ndarray as an ndarray, a numpy scalar as a numpy scalar, an int
as an int, a tuple as a tuple, an OrderedDict as an OrderedDict.

Loading never unpickles (an entry that would need it is refused), and saving is atomic: the
file is written under a temporary name and renamed over ``path`` only once complete, so a
failed save leaves any previous file intact and no partial file behind.
"""
import contextlib
import json
import os
import secrets
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from tensorgrad._tensor import Tensor, _wrap

__all__ = ["load", "save"]

_META = "__tensorgrad__"        # the entry holding the JSON description
_FORMAT = "tensorgrad.save"
_VERSION = 1
_KINDS = "fiub"                 # float, signed and unsigned integer, bool arrays
_ARRAY_TAGS = ("tensor", "ndarray", "scalar")


# -- saving ----------------------------------------------------------------------------------
def _where(path):
    return "/".join(map(str, path))


def _entry_name(path, arrays):
    """A zip member name for the array at ``path``: the key path, made unique. Null bytes and
    backslashes, which zip readers rewrite, are replaced."""
    base = _where(path).replace("\0", "_").replace("\\", "/")
    name, n = base, 1
    while name in arrays or name == _META:
        name, n = f"{base}~{n}", n + 1
    return name


def _encode(obj, path, arrays, active):
    """The JSON node describing ``obj``; its arrays are added to ``arrays``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):     # before int/float: np.float64
        arr = obj._data if isinstance(obj, Tensor) else np.asarray(obj)
        if arr.dtype.kind not in _KINDS:
            raise TypeError(f"save: value for '{_where(path)}' has dtype {arr.dtype}; only "
                            f"numeric and bool arrays can be saved")
        name = _entry_name(path, arrays)
        arrays[name] = arr
        tag = ("tensor" if isinstance(obj, Tensor)
               else "ndarray" if isinstance(obj, np.ndarray) else "scalar")
        return {tag: name}
    if isinstance(obj, (int, float)):
        return obj
    if not isinstance(obj, (Mapping, list, tuple)):
        raise TypeError(f"save: value for '{_where(path)}' is a {type(obj).__name__}; only "
                        f"Tensors, numeric arrays, numbers, strings, None and dicts, lists "
                        f"and tuples of them can be saved")
    if id(obj) in active:
        raise ValueError(f"save: value for '{_where(path)}' contains itself")
    active.add(id(obj))
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: key {k!r} in '{_where(path)}' is a "
                                f"{type(k).__name__}; keys must be strings or ints")
            items.append([k, _encode(v, path + [k], arrays, active)])
        node = {"OrderedDict" if isinstance(obj, OrderedDict) else "dict": items}
    else:
        node = {"list" if isinstance(obj, list) else "tuple":
                [_encode(v, path + [i], arrays, active) for i, v in enumerate(obj)]}
    active.discard(id(obj))
    return node


def _write_npz(f, arrays, meta):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in list(arrays.items()) + [(_META, np.array(meta))]:
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def save(obj, path):
    """Write ``obj`` to ``path`` (used exactly as given) as an uncompressed ``.npz`` file.

    ``obj`` is a state dict — a mapping, e.g. ``model.state_dict()`` — or an object with a
    ``state_dict()`` method (a Module, an optimizer, a scheduler), whose state dict is saved.
    Values may nest: Tensors, numeric ndarrays and numpy scalars, Python numbers, strings,
    None, and dicts (string or int keys), lists and tuples of them; a checkpoint such as
    ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}`` works.
    The write is atomic: on any error the file at ``path`` is left as it was.
    """
    path = os.fspath(path)
    if hasattr(obj, "state_dict") and callable(obj.state_dict) and not isinstance(obj, Mapping):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a state dict (a mapping such as model.state_dict(), "
                        f"possibly nested) or an object with state_dict(), got "
                        f"{type(obj).__name__}")
    arrays = {}
    root = _encode(obj, [], arrays, set())      # all checks happen before the disk is touched
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root})
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as e:
        raise type(e)(f"save: cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays, meta)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise type(e)(f"save: cannot write {path}: {e.strerror or e}") from None
        raise


# -- loading ---------------------------------------------------------------------------------
class _Invalid(Exception):
    """Why a file is not something tg.load reads (becomes the ValueError's reason)."""


def _read_entry(zf, info, name):
    """One array of the archive, its dtype checked from the header before any data is read."""
    try:
        with zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise _Invalid(f"entry '{name}' uses .npy format version {version}, which "
                               f"tg.load does not read")
        if dtype.hasobject:
            raise _Invalid(f"entry '{name}' holds pickled Python objects, which tg.load never "
                           f"loads")
        if dtype.kind not in ("U" if name == _META else _KINDS):
            raise _Invalid(f"entry '{name}' has dtype {dtype}; tg.load reads numeric arrays")
        with zf.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        # numpy's first line says what is wrong; later lines give advice for np.load
        raise _Invalid(f"entry '{name}' is damaged ({str(e).splitlines()[0]})") from None


def _decode(node, arrays):
    """The Python object that a JSON node of ``_encode`` describes."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (tag, value), = node.items()
        if tag in _ARRAY_TAGS:
            arr = arrays.get(value) if isinstance(value, str) else None
            if arr is None:
                raise _Invalid(f"the description refers to a missing entry {value!r}")
            if tag == "scalar":
                if arr.ndim:
                    raise _Invalid(f"entry '{value}' should hold a scalar, has shape "
                                   f"{arr.shape}")
                return arr[()]
            return _wrap(arr) if tag == "tensor" else arr
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [_decode(v, arrays) for v in value]
            return items if tag == "list" else tuple(items)
        if tag in ("dict", "OrderedDict") and isinstance(value, list):
            out = {} if tag == "dict" else OrderedDict()
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2
                        and isinstance(pair[0], (str, int)) and not isinstance(pair[0], bool)):
                    raise _Invalid(f"malformed {tag} item {pair!r:.80}")
                out[pair[0]] = _decode(pair[1], arrays)
            return out
    raise _Invalid(f"malformed description node {node!r:.80}")


def _read(f):
    if f.read(6) == b"\x93NUMPY":
        raise _Invalid("it holds a single array (.npy), not a state dict")
    f.seek(0)
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        raise _Invalid("it is not a zip archive (truncated, or not an .npz file)") from None
    with zf:
        arrays = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise _Invalid(f"member '{info.filename}' is not a .npy array (a file of "
                               f"another program?)")
            name = info.filename[:-len(".npy")]
            arrays[name] = _read_entry(zf, info, name)
    meta = arrays.pop(_META, None)
    if meta is None:    # written by np.savez, or by tg.save before the description existed
        return OrderedDict((k, _wrap(v)) for k, v in arrays.items())
    try:
        meta = json.loads(meta.item()) if meta.ndim == 0 else None
    except ValueError as e:
        raise _Invalid(f"its description is not valid JSON ({e})") from None
    if not (isinstance(meta, dict) and meta.get("format") == _FORMAT and "root" in meta
            and type(meta.get("version")) is int):
        raise _Invalid(f"entry '{_META}' is not a tensorgrad description")
    if meta["version"] > _VERSION:
        raise _Invalid(f"it was written by a newer tensorgrad (format version "
                       f"{meta['version']}; this one reads up to {_VERSION})")
    return _decode(meta["root"], arrays)


def load(path):
    """Read a file written by ``tg.save``: the saved state dict, nesting and types restored
    (arrays saved as Tensors come back as Tensors). A plain ``.npz`` of numeric arrays, as
    ``np.savez`` writes, loads as an ordered dict name -> Tensor. Nothing is ever unpickled.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return _read(f)
    except _Invalid as e:
        raise ValueError(f"load: {path} is not a valid tensorgrad state dict (.npz): "
                         f"{e}") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except OSError as e:
        raise type(e)(f"load: cannot read {path}: {e.strerror or e}") from None
