"""Data set loaders: scikit-learn's digits, .npz archives, MNIST IDX files, CIFAR-10 batches.

Every loader returns Tensors: features as float32 (float64 kept when an .npz stores it),
labels as int64. Image data stored as bytes is scaled to [0, 1]. Files are checked before use
(magic numbers, sizes, keys, dtypes) and a bad file raises ``ValueError`` naming the file and
what is wrong; a missing file raises ``FileNotFoundError``. Nothing is ever unpickled except
CIFAR-10's numpy arrays, through an allow-list. ``load_npz`` and ``load_path`` also refuse
features holding NaN or infinity when asked (``ensure_finite=True``, what ``train`` does).
"""
import codecs
import gzip
import os
import pickle
import zipfile
import zlib
from collections import namedtuple

import numpy as np

from ._util import check_finite, check_labels, to_tensor

try:  # numpy >= 2 moved the pickling helpers to numpy._core
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_FEATURES = 3 * 32 * 32

Dataset = namedtuple("Dataset", "X y X_test y_test name")
Dataset.__doc__ = """What ``load_path`` found: features/labels, the file's own test split (or
None for both when it has none) and a short description of the source."""


# ----------------------------------------------------------------------------- digits

def load_digits():
    """The real handwritten-digits set (the copy scikit-learn ships), bundled: no download.

    Returns ``(X, y)``: X float32 [1797, 64], the 8x8 images flattened row by row, with the
    original pixel values 0..16 divided by 16 so that they lie in [0, 1]; y int64 [1797] with
    the digit 0..9. The file ``tensorgrad/data/digits.csv.gz`` is scikit-learn's
    ``digits.csv.gz`` (the UCI "Optical Recognition of Handwritten Digits" test set, CC BY 4.0),
    so the values equal ``sklearn.datasets.load_digits()`` exactly.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv.gz")
    try:
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except OSError as e:
        raise OSError(f"load_digits: the bundled data file is missing or unreadable ({path}): "
                      f"{e}; reinstall tensorgrad") from None
    if raw.shape != (1797, 65):
        raise ValueError(f"load_digits: the bundled data file has shape {raw.shape}, "
                         f"expected (1797, 65)")
    X = (raw[:, :64] / 16.0).astype(np.float32)
    y = raw[:, 64].astype(np.int64)
    return to_tensor(X), to_tensor(y)


# ----------------------------------------------------------------------------- npz

_NPZ_PAIRS = (("X", "y"), ("x", "y"))
_NPZ_SPLITS = (("x_train", "y_train", "x_test", "y_test"),
               ("X_train", "y_train", "X_test", "y_test"))


def _npz_features(X, where, key, ensure_finite):
    if X.ndim < 2:
        raise ValueError(f"{where}: {key} must be at least 2-D [samples, features...], "
                         f"got shape {X.shape}")
    if X.dtype.kind == "f":
        X = X.astype(np.float64 if X.dtype == np.float64 else np.float32, copy=False)
        if ensure_finite:
            check_finite(X, f"{where}: array {key!r}")
        return X
    if X.dtype.kind in "iub":
        return X.astype(np.float32)
    raise ValueError(f"{where}: {key} must be numeric, got dtype {X.dtype}")


# What an .npz file starts with: a zip archive's first member, or an empty archive; and
# what each .npy file in it starts with.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = np.lib.format.MAGIC_PREFIX


class _BadNpz(ValueError):
    """A bad .npz file, already described: passed on as it is."""


def _npy_member(archive, member, path):
    """(name, array) of the .npy file ``member`` of an open .npz archive. An object array is
    refused from its header, before any of its (pickled) data is read."""
    key = member.removesuffix(".npy")
    with archive.open(member) as f:
        if not member.endswith(".npy") or f.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise _BadNpz(f"load_npz: {path} is not a valid .npz file: its member "
                          f"{member!r} is not a .npy array")
        f.seek(0)
        # format 3.0 differs from 2.0 only in allowing UTF-8 in the header's field names
        read_header = (np.lib.format.read_array_header_1_0
                       if np.lib.format.read_magic(f) == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        dtype = read_header(f)[2]
        if dtype.hasobject:
            raise _BadNpz(f"load_npz: {path}: array {key!r} holds Python objects (dtype "
                          f"{dtype}); only numeric arrays are read, never pickled data")
        f.seek(0)
        return key, np.lib.format.read_array(f, allow_pickle=False)


def _read_npz(path):
    """The arrays of an .npz archive as a dict. Anything that is not a zip of numeric .npy
    arrays raises ValueError naming the file (and nothing is ever unpickled)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_npz: no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head == _NPY_MAGIC:
        raise ValueError(f"load_npz: {path} is a single .npy array, not an .npz archive")
    if not head.startswith(_ZIP_MAGICS):
        raise ValueError(f"load_npz: {path} is not a valid .npz file (an .npz file is a zip "
                         "archive of .npy arrays)")
    try:
        with zipfile.ZipFile(path) as archive:
            return dict(_npy_member(archive, m, path) for m in archive.namelist())
    except _BadNpz:
        raise
    # zipfile raises RuntimeError for an encrypted member and NotImplementedError for an
    # unknown compression method; numpy raises ValueError for a corrupt .npy header
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, ValueError, RuntimeError,
            NotImplementedError) as e:
        raise ValueError(f"load_npz: {path} is not a valid .npz file ({e})") from e


def _npz_pair(arrays, xkey, ykey, where, ensure_finite):
    X = _npz_features(arrays[xkey], where, xkey, ensure_finite)
    y = check_labels(arrays[ykey], X.shape[0], where)
    return X, y


def _npz_split_keys(arrays):
    for keys in _NPZ_SPLITS:
        if all(k in arrays for k in keys):
            return keys
    return None


def _npz_select(arrays, split, where, ensure_finite):
    """(X, y) ndarrays for ``split`` from the arrays of an archive (see ``load_npz``)."""
    if split is None:
        for xkey, ykey in _NPZ_PAIRS:
            if xkey in arrays and ykey in arrays:
                return _npz_pair(arrays, xkey, ykey, where, ensure_finite)
    keys = _npz_split_keys(arrays)
    if keys is None:
        raise ValueError(f"{where}: expected arrays 'X' and 'y' (or 'x'/'y', or x_train/"
                         f"y_train/x_test/y_test); found {sorted(arrays) or 'no arrays'}")
    if split == "train":
        return _npz_pair(arrays, keys[0], keys[1], where, ensure_finite)
    if split == "test":
        return _npz_pair(arrays, keys[2], keys[3], where, ensure_finite)
    Xtr, ytr = _npz_pair(arrays, keys[0], keys[1], where, ensure_finite)
    Xte, yte = _npz_pair(arrays, keys[2], keys[3], where, ensure_finite)
    if Xtr.shape[1:] != Xte.shape[1:]:
        raise ValueError(f"{where}: train and test samples differ in shape: "
                         f"{Xtr.shape[1:]} vs {Xte.shape[1:]}")
    if Xtr.dtype != Xte.dtype:
        Xtr, Xte = Xtr.astype(np.float64), Xte.astype(np.float64)
    return np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte])


def load_npz(path, split=None, ensure_finite=False):
    """Features and labels from a NumPy ``.npz`` archive.

    Accepted layouts (checked in this order):

    - arrays ``X`` and ``y`` (or ``x`` and ``y``): the whole data set;
    - arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (Keras' ``mnist.npz`` layout;
      ``X_train``/``X_test`` also accepted): ``split="train"`` or ``"test"`` selects one,
      ``split=None`` returns all samples, train first.

    X keeps its shape (first axis = samples) and becomes float32 (float64 stays float64;
    integer pixel values are kept as they are, not rescaled); y must be 1-D whole numbers
    >= 0 and becomes int64. Returns ``(X, y)`` Tensors.

    A file that is not an .npz archive of numeric arrays (a corrupt or truncated file,
    another format, pickled object arrays: nothing is ever unpickled) raises ``ValueError``
    naming it. With ``ensure_finite``, features holding NaN or infinity raise ``ValueError``
    saying which array, how many values and where the first one is (see ``check_finite``).
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"load_npz: split must be None, 'train' or 'test', got {split!r}")
    X, y = _npz_select(_read_npz(path), split, f"load_npz({path})", ensure_finite)
    return to_tensor(X), to_tensor(y)


# ----------------------------------------------------------------------------- IDX

def _read_bytes(path, who):
    """A file's bytes, decompressed when it starts with the gzip magic (whatever its name)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{who}: {path} is a corrupt or truncated gzip file ({e})") from e
    return raw


def _read_idx(path, magic, what):
    """The array stored in an IDX file whose magic number must be ``magic``."""
    who = "load_idx"
    raw = _read_bytes(path, who)
    if len(raw) < 4:
        raise ValueError(f"{who}: {path} is truncated: {len(raw)} bytes, no IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        hint = ""
        if {found, magic} == {IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC}:
            hint = " (images and labels files swapped?)"
        raise ValueError(f"{who}: {path} is not an IDX {what} file: magic number {found}, "
                         f"expected {magic}{hint}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{who}: {path} is truncated inside its header "
                         f"({len(raw)} of {header} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    need = int(np.prod(dims, dtype=np.int64))
    have = len(raw) - header
    if have < need:
        raise ValueError(f"{who}: {path} is truncated: dimensions {dims} need {need} bytes of "
                         f"data, found {have}")
    if have > need:
        raise ValueError(f"{who}: {path} is corrupt: {have - need} bytes after the "
                         f"{dims} data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_idx(images_path, labels_path, flatten=True):
    """MNIST-style images and labels from a pair of IDX files (gzipped or not).

    The images file must carry magic number 2051 (unsigned bytes, [N, rows, cols]) and the
    labels file 2049 (unsigned bytes, [N]); sizes are checked against the header, so a
    truncated or padded file raises ``ValueError``. Gzip is recognised from the file's first
    bytes, not its name.

    Returns ``(X, y)``: X float32 with pixel values divided by 255 (so in [0, 1]), shape
    [N, rows*cols] (or [N, rows, cols] with ``flatten=False``); y int64 [N].
    """
    images = _read_idx(images_path, IDX_IMAGES_MAGIC, "images")
    labels = _read_idx(labels_path, IDX_LABELS_MAGIC, "labels")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_idx: {images_path} holds {images.shape[0]} images but "
                         f"{labels_path} holds {labels.shape[0]} labels")
    X = np.divide(images, 255.0, dtype=np.float32)
    if flatten:
        X = X.reshape(X.shape[0], -1)
    return to_tensor(X), to_tensor(labels.astype(np.int64))


# ----------------------------------------------------------------------------- CIFAR-10

_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a callable outside the allow-list."""


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that can build only numpy arrays, dtypes and plain containers.

    A pickle names the callables it wants to run (``find_class``); anything outside this
    allow-list (os.system, builtins.eval, arbitrary classes...) is refused before it runs.
    The entries are what numpy itself emits for an ndarray under protocols 2-5, plus
    ``_codecs.encode`` which protocol 2 uses for byte strings.
    """

    def find_class(self, module, name):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refusing to load {module}.{name}: only numpy "
                           "arrays and plain containers are allowed") from None


def _cifar_batch(path):
    """(data uint8 [n, 3072], labels int64 [n]) from one CIFAR-10 python batch file."""
    who = "load_cifar10"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: missing batch file {path}")
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise ValueError(f"{who}: {path} rejected: {e}") from e
    except Exception as e:  # truncated / garbage pickles raise many different types
        raise ValueError(f"{who}: {path} is not a readable CIFAR-10 batch "
                         f"({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):     # a bad file, not a bad argument: ValueError
        raise ValueError(  # noqa: TRY004
            f"{who}: {path} holds a {type(batch).__name__}, expected a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{who}: {path} lacks the 'data'/'labels' entries "
                         f"(keys: {sorted(map(str, batch))})")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != CIFAR10_FEATURES:
        desc = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise ValueError(f"{who}: {path}: 'data' must be a uint8 array [n, 3072], "
                         f"got {desc}")
    labels = batch["labels"]
    if isinstance(labels, list) and not all(isinstance(v, int) for v in labels):
        raise ValueError(f"{who}: {path}: 'labels' must hold integers")
    labels = check_labels(np.asarray(labels), data.shape[0], f"{who}({path})")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{who}: {path}: labels must be 0..9, found {int(labels.max())}")
    return data, labels


def _cifar_folder(folder):
    """The folder holding the batch files: ``folder`` or its ``cifar-10-batches-py``."""
    nested = os.path.join(folder, "cifar-10-batches-py")
    if not os.path.exists(os.path.join(folder, CIFAR10_TEST_FILE)) and os.path.isdir(nested):
        return nested
    return folder


def load_cifar10(folder, flatten=True):
    """CIFAR-10 from the python-pickle batches ``data_batch_1`` .. ``data_batch_5`` and
    ``test_batch`` in ``folder`` (or in ``folder/cifar-10-batches-py``).

    The pickles are read with a restricted unpickler that can only rebuild numpy arrays and
    plain dicts/lists/bytes; a file asking for anything else is rejected with ``ValueError``
    before any of its code runs.

    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 with the byte values divided
    by 255, shape [N, 3072] in the file's order (1024 red, then green, then blue values, each
    a row-major 32x32 plane) or [N, 3, 32, 32] with ``flatten=False``; y int64 in 0..9. The
    full data set gives N = 50000 train and 10000 test images.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"load_cifar10: no such folder: {folder}")
    folder = _cifar_folder(folder)
    names = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"load_cifar10: {folder} lacks {', '.join(missing)}")
    train = [_cifar_batch(os.path.join(folder, n)) for n in CIFAR10_TRAIN_FILES]
    test = _cifar_batch(os.path.join(folder, CIFAR10_TEST_FILE))

    def tensors(data, labels):
        X = np.divide(data, 255.0, dtype=np.float32)
        if not flatten:
            X = X.reshape(-1, 3, 32, 32)
        return to_tensor(X), to_tensor(labels)

    return (tensors(np.concatenate([d for d, _ in train]), np.concatenate([y for _, y in train])),
            tensors(*test))


# ----------------------------------------------------------------------------- detection

def _idx_files(folder):
    """IDX images/labels files in a folder, keyed by name without '.gz' (raw preferred)."""
    found = {}
    for name in sorted(os.listdir(folder)):
        key = name.removesuffix(".gz")
        if ("idx3" in key or "idx1" in key) and (key not in found or not name.endswith(".gz")):
            found[key] = os.path.join(folder, name)
    images = {k: v for k, v in found.items() if "idx3" in k}
    labels = {k: v for k, v in found.items() if "idx1" in k}
    return images, labels


def _idx_pair(images, labels, prefix):
    img = [v for k, v in images.items() if k.startswith(prefix)]
    lab = [v for k, v in labels.items() if k.startswith(prefix)]
    return (img[0], lab[0]) if len(img) == 1 and len(lab) == 1 else None


def load_path(path, ensure_finite=False):
    """Load whatever ``path`` holds, for the ``train`` command; returns a ``Dataset``.

    - an ``.npz`` file (see ``load_npz``; a train/test archive keeps its test split);
    - a CIFAR-10 folder (``test_batch`` present, or a ``cifar-10-batches-py`` subfolder);
    - a folder with MNIST IDX files: ``train-*idx3*``/``train-*idx1*`` plus ``t10k-*`` (or
      ``test-*``) files give a train and a test split; a single images/labels pair gives one
      data set without a test split.

    Features come back flattened to [N, features]. ``ensure_finite`` is passed to
    ``load_npz`` (IDX and CIFAR-10 files hold bytes, always finite).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or directory: {path}")
    if os.path.isfile(path):
        with open(path, "rb") as f:
            is_zip = f.read(2) == b"PK"
        if not (is_zip or path.endswith(".npz")):
            raise ValueError(f"{path}: expected an .npz file, a folder of MNIST IDX files or a "
                             "CIFAR-10 folder")
        arrays = _read_npz(path)
        where, name = f"load_npz({path})", os.path.basename(path)
        has_pair = any(x in arrays and y in arrays for x, y in _NPZ_PAIRS)
        if _npz_split_keys(arrays) is not None and not has_pair:
            X, y = _npz_select(arrays, "train", where, ensure_finite)
            Xt, yt = _npz_select(arrays, "test", where, ensure_finite)
            return Dataset(*_flat_tensors(X, y), *_flat_tensors(Xt, yt), f"{name} (train/test)")
        X, y = _npz_select(arrays, None, where, ensure_finite)
        return Dataset(*_flat_tensors(X, y), None, None, name)
    folder = _cifar_folder(path)
    if os.path.isfile(os.path.join(folder, CIFAR10_TEST_FILE)) or \
            os.path.isfile(os.path.join(folder, CIFAR10_TRAIN_FILES[0])):
        (X, y), (Xt, yt) = load_cifar10(folder)
        return Dataset(X, y, Xt, yt, "CIFAR-10")
    images, labels = _idx_files(path)
    train = _idx_pair(images, labels, "train")
    test = _idx_pair(images, labels, "t10k") or _idx_pair(images, labels, "test")
    if train and test:
        X, y = load_idx(*train)
        Xt, yt = load_idx(*test)
        return Dataset(X, y, Xt, yt, "MNIST IDX (train/test)")
    if len(images) == 1 and len(labels) == 1:
        X, y = load_idx(next(iter(images.values())), next(iter(labels.values())))
        return Dataset(X, y, None, None, "MNIST IDX")
    if images or labels:
        raise ValueError(f"{path}: cannot pair the IDX files {sorted(images) + sorted(labels)}: "
                         "expected one images/labels pair or train-*/t10k-* pairs")
    raise ValueError(f"{path}: no CIFAR-10 batches or MNIST IDX files in this folder")


def _flat_tensors(X, y):
    return to_tensor(X.reshape(X.shape[0], -1)), to_tensor(y)
