"""Data sets and batching: ``tg.data``.

Loaders return Tensors (features float32, labels int64): ``load_digits`` (scikit-learn's
bundled handwritten digits, scaled to [0, 1]), ``load_npz``, ``load_idx`` (MNIST IDX files,
gzipped or not), ``load_cifar10`` (python-pickle batches, read with a restricted unpickler)
and ``load_path`` (detects which of these a path holds). ``batches`` yields mini-batches,
``train_val_test_split`` makes a deterministic, stratified split and ``check_finite`` reports
NaN or infinite values (how many, where the first is).
"""
from ._util import check_finite
from .datasets import Dataset, load_cifar10, load_digits, load_idx, load_npz, load_path
from .split import batches, train_val_test_split

__all__ = ["Dataset", "batches", "check_finite", "load_cifar10", "load_digits", "load_idx",
           "load_npz", "load_path", "train_val_test_split"]
