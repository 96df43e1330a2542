"""k-nearest-neighbour search and classification.

Search: ``_kernels/distance.pyx::knn`` ranks training rows by squared Euclidean distance
inside the tiled GEMM kernel, keeping a sorted top-k list per query row, so peak extra
memory is O(N·k + tile) instead of the N×M distance matrix. Ties in distance go to the
smaller training index; ties in the vote go to the smaller label (the course's convention,
and what ``np.argmax`` over per-class counts gives).
"""
import numbers

import numpy as np

from tensorgrad._kernels import distance as DK
from tensorgrad._runtime import blas_guard
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import no_grad
from tensorgrad.neighbors import _sharded

__all__ = ["KNeighborsClassifier", "cross_validate_k", "kneighbors"]

# (query rows, training rows) per tile of the fused kernel: one 512x1024 GEMM tile per thread
# (2 MB in float32) keeps sgemm near its peak; the top-k epilogue reads it back from cache.
KNN_TILE = (512, 1024)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _to_numpy(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _features(x, op, dtype=None):
    """x as a C-contiguous 2-D float array (float32/float64 kept; other numbers -> float64,
    or ``dtype`` when given)."""
    a = _to_numpy(x)
    if a.ndim != 2:
        raise ValueError(f"{op}: X must be 2-D [n_samples, n_features], got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{op}: X must be numeric, got dtype {a.dtype}")
    if dtype is None:
        dtype = a.dtype if a.dtype in _FLOATS else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    if not np.isfinite(a).all():     # a NaN would never rank, leaving holes in the top-k
        raise ValueError(f"{op}: X contains NaN or infinity (shape {a.shape})")
    return a


def _check_k(k, n_train, op):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{op}: n_neighbors must be a positive integer, got {k!r}")
    if k > n_train:
        raise ValueError(f"{op}: n_neighbors={k} is larger than the number of training "
                         f"samples ({n_train})")
    return int(k)


def _knn_arrays(q, t, k):
    """The fused kernel on validated arrays: (distances [N, k], indices [N, k] int64)."""
    dist = np.empty((q.shape[0], k), q.dtype)
    idx = np.empty((q.shape[0], k), np.int64)
    with blas_guard(q.shape[0], t.shape[0], q.shape[1]):
        DK.knn(q, t, k, dist, idx, False, KNN_TILE[0], KNN_TILE[1])
    return dist, idx


def kneighbors(x_query, x_train, k):
    """The k nearest rows of x_train [M, D] for each row of x_query [N, D], nearest first.

    Returns (distances [N, k], indices [N, k] int64) as Tensors; Euclidean distances, ties
    going to the smaller training index. Not differentiable (use ``tg.cdist`` for that).
    """
    t = _features(x_train, "kneighbors")
    q = _features(x_query, "kneighbors", dtype=t.dtype)
    if q.shape[1] != t.shape[1]:
        raise ValueError(f"kneighbors: x_query and x_train need the same number of features, "
                         f"got shapes {q.shape} and {t.shape}")
    k = _check_k(k, t.shape[0], "kneighbors")
    dist, idx = _knn_arrays(q, t, k)
    return _wrap(dist), _wrap(idx)


def _vote(neigh, n_classes):
    """Majority label index per row of neigh [N, k] (encoded labels); ties -> smaller label."""
    n = neigh.shape[0]
    flat = (np.arange(n, dtype=np.int64)[:, None] * n_classes + neigh).ravel()
    counts = np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes)
    return counts.argmax(axis=1)   # argmax returns the first maximum: the smallest label


def _labels_out(labels):
    return _wrap(labels) if labels.dtype.kind in "biuf" else labels


class KNeighborsClassifier:
    """Majority vote among the ``n_neighbors`` nearest training samples (Euclidean).

    ``fit(X, y)``, ``predict(X)``, ``kneighbors(X, n_neighbors=None)``, ``score(X, y)`` as in
    scikit-learn; X and y may be Tensors or ndarrays. Float32/float64 features keep their
    dtype (queries are converted to the training dtype); other numbers become float64.
    Ties in distance go to the smaller training index, ties in the vote to the smaller label.

    ``distributed=True`` (under ``mpiexec``, after ``tensorgrad.distributed.init()``): each
    rank fits its own shard, in rank order; ``kneighbors``/``predict`` use rank 0's queries
    and return on every rank the single-process answer over the concatenated shards, with
    indices into them (``neighbors/_sharded.py``).
    """

    def __init__(self, n_neighbors=5, distributed=False):
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) \
                or n_neighbors < 1:
            raise ValueError(f"KNeighborsClassifier: n_neighbors must be a positive integer, "
                             f"got {n_neighbors!r}")
        self.n_neighbors = int(n_neighbors)
        self.distributed = bool(distributed)
        self._X = None

    def __repr__(self):
        extra = ", distributed=True" if self.distributed else ""
        return f"KNeighborsClassifier(n_neighbors={self.n_neighbors}{extra})"

    def fit(self, X, y):
        """Store the training set (a C-contiguous copy only if X is not one already)."""
        if self.distributed:
            return _sharded.fit(self, X, y)
        X = _features(X, "KNeighborsClassifier.fit")
        y = _to_numpy(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"KNeighborsClassifier.fit: y must be 1-D with one label per row "
                             f"of X, got shapes {X.shape} and {y.shape}")
        _check_k(self.n_neighbors, X.shape[0], "KNeighborsClassifier.fit")
        self.classes_, enc = np.unique(y, return_inverse=True)
        self._y = enc.astype(np.int64).reshape(-1)
        self._X = X
        self.n_features_in_ = X.shape[1]
        self.n_samples_fit_ = X.shape[0]
        return self

    def _queries(self, X, op):
        if self._X is None:
            raise RuntimeError(f"KNeighborsClassifier.{op}: this classifier is not fitted yet; "
                               f"call fit(X, y) first")
        q = _features(X, f"KNeighborsClassifier.{op}", dtype=self._X.dtype)
        if q.shape[1] != self._X.shape[1]:
            raise ValueError(f"KNeighborsClassifier.{op}: X has {q.shape[1]} features but the "
                             f"classifier was fitted with {self._X.shape[1]} (shapes "
                             f"{q.shape} and {self._X.shape})")
        return q

    def kneighbors(self, X, n_neighbors=None):
        """(distances [N, k], indices [N, k]) of the nearest training samples, as Tensors."""
        dist, idx = self._search(X, n_neighbors, "kneighbors")
        return _wrap(dist), _wrap(idx)

    def _search(self, X, k, op):
        q = _sharded.queries(self, X, op) if self.distributed else self._queries(X, op)
        k = _check_k(self.n_neighbors if k is None else k, self.n_samples_fit_,
                     f"KNeighborsClassifier.{op}")
        if self.distributed:
            return _sharded.kneighbors(self, q, k)
        return _knn_arrays(q, self._X, k)

    def predict(self, X):
        """The majority label of the k nearest training samples of each row of X."""
        _, idx = self._search(X, None, "predict")
        return _labels_out(self.classes_[_vote(self._y[idx], len(self.classes_))])

    def score(self, X, y):
        """Mean accuracy of ``predict(X)`` against y."""
        pred = _to_numpy(self.predict(X))
        y = _to_numpy(y)
        if y.shape != pred.shape:
            raise ValueError(f"KNeighborsClassifier.score: y must have one label per row of "
                             f"X, got shapes {np.shape(_to_numpy(X))} and {y.shape}")
        return float(np.mean(pred == y))


def cross_validate_k(X, y, ks, n_folds=5):
    """{k: [validation accuracy on each fold]} for every k in ``ks``.

    As in the course's assignment, the folds are ``tg.chunk(X, n_folds)`` and
    ``tg.chunk(y, n_folds)``: consecutive blocks, no shuffling (shuffle beforehand if the
    data are ordered by class). Like PyTorch's chunk, each fold has ceil(N / n_folds) rows,
    so a few sizes give fewer than ``n_folds`` folds; there is one accuracy per fold made.
    Each fold trains on the other folds concatenated. The neighbours are searched once per
    fold for the largest k; smaller k use a prefix of that list (the same total order on
    (distance, index), so the result equals fitting each k separately).
    """
    from tensorgrad.ops.shape import cat, chunk
    Xa = _features(X, "cross_validate_k")
    ya = _to_numpy(y)
    if ya.ndim != 1 or ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"cross_validate_k: y must be 1-D with one label per row of X, got "
                         f"shapes {Xa.shape} and {ya.shape}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) or n_folds < 2:
        raise ValueError(f"cross_validate_k: n_folds must be an integer >= 2, got {n_folds!r}")
    if Xa.shape[0] < n_folds:
        raise ValueError(f"cross_validate_k: {Xa.shape[0]} samples cannot make {n_folds} "
                         f"folds")
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("cross_validate_k: ks is empty")
    with no_grad():
        x_folds = chunk(_wrap(Xa), n_folds)
        y_folds = chunk(_wrap(ya), n_folds)
        if len(x_folds) < 2:
            raise ValueError(f"cross_validate_k: chunk made only {len(x_folds)} fold(s)")
        results = {k: [] for k in ks}
        kmax = max(ks)
        for i in range(len(x_folds)):
            x_train = cat(x_folds[:i] + x_folds[i + 1:])
            y_train = cat(y_folds[:i] + y_folds[i + 1:])
            for k in ks:
                _check_k(k, x_train.shape[0], "cross_validate_k")
            clf = KNeighborsClassifier(kmax).fit(x_train, y_train)
            _, idx = clf.kneighbors(x_folds[i])
            neigh = clf._y[idx._data]
            y_val = y_folds[i]._data
            for k in ks:
                pred = clf.classes_[_vote(neigh[:, :k], len(clf.classes_))]
                results[k].append(float(np.mean(pred == y_val)))
    return results
