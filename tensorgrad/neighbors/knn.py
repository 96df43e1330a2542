"""Nearest-neighbour search and the scikit-learn-style estimators built on it.

Search: ``_kernels/distance.pyx::knn_chunk`` ranks training rows inside the tiled GEMM kernel
(or the tiled Manhattan kernel), keeping a sorted top-k list per query row, so peak extra
memory is O(N·k + tile) instead of the N×M distance matrix. The training set is read in
chunks of at most ``CHUNK_BYTES`` (a memory-mapped ``.npy`` file is never loaded whole), and
each chunk's rows are merged into the running lists.

Exactness: the tile's values (float32 GEMM) only select candidates through a proven lower
bound (``_slack``); every candidate's key is recomputed in double from the input rows, so the
neighbours and their order are those of a float64 brute force on the same inputs, even for
data far from the origin or nearly identical rows. The returned distances are that double
value rounded once to the input dtype: relative error at most 2⁻²⁴ (float32) plus D·2⁻⁵³
(the double sum), i.e. within one float32 ulp; for "cosine" the same holds relative to
the value ½·||x/|x| - y/|y|||², for "inner_product" up to D·2⁻⁵³·|x|·|y| absolute.

Ties in the key go to the smaller training index; ties in the vote go to the smaller label
(what ``np.argmax`` over per-class totals gives), as in scikit-learn.
"""
import numbers
import os

import numpy as np

from tensorgrad._kernels import distance as DK
from tensorgrad._kernels import runtime as _rt
from tensorgrad._runtime import blas_guard
from tensorgrad._tensor import Tensor, _wrap
from tensorgrad.function import no_grad
from tensorgrad.neighbors import _sharded
from tensorgrad.ops.distance import METRICS

__all__ = ["KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier",
           "cross_validate_k", "kneighbors"]

# (query rows, training rows) per tile of the fused kernel: one GEMM tile per thread that keeps
# sgemm near its peak; the top-k epilogue reads it back from cache. Manhattan has no GEMM and
# smaller tiles (its kernel keeps a transposed feature block of the training tile in L2).
KNN_TILE = (512, 1280)
KNN_TILE_MANHATTAN = (128, 256)
# Training rows are streamed in chunks of at most this many bytes (in-memory arrays are
# sliced without copying; a memory map is read chunk by chunk).
CHUNK_BYTES = 1 << 26
# Extra entries of the fast path's approximate lists (k + KNN_EXTRA per row): the margin
# that lets the verification prove the exact top k lies in them.
KNN_EXTRA = 8
# Query rows per block of the radius search (its candidates are gathered per block).
RADIUS_BLOCK = (256, 4096)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# metric -> (kernel code, output kind of knn_finish: 0 key, 1 sqrt(key), 2 -key)
_CODES = {"sqeuclidean": (0, 0), "euclidean": (0, 1), "cosine": (1, 0),
          "inner_product": (2, 2), "manhattan": (3, 0)}
_WEIGHTS = ("uniform", "distance")


def _to_numpy(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _check_finite(a, op):
    step = max(1, CHUNK_BYTES // max(1, a.itemsize * (a.shape[1] if a.ndim > 1 else 1)))
    for s in range(0, a.shape[0], step):   # in chunks: a memory map is never read whole
        if not np.isfinite(a[s:s + step]).all():   # a NaN would never rank
            raise ValueError(f"{op}: X contains NaN or infinity (shape {a.shape})")


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
    _check_finite(a, op)
    return a


def _training_set(X, op):
    """The training rows: a memory map (an ``np.memmap`` or a path to a ``.npy`` file) is
    kept as it is, never copied (chunks are converted on the fly if needed); anything else
    becomes a C-contiguous float array as in ``_features``."""
    if isinstance(X, (str, os.PathLike)):
        X = np.load(X, mmap_mode="r")
    if isinstance(X, np.memmap):
        if X.ndim != 2:
            raise ValueError(f"{op}: X must be 2-D [n_samples, n_features], got shape "
                             f"{X.shape}")
        if X.dtype.kind not in "fiub":
            raise TypeError(f"{op}: X must be numeric, got dtype {X.dtype}")
        _check_finite(X, op)
        return X
    return _features(X, op)


def _dtype_of(t):
    return t.dtype if t.dtype in _FLOATS else np.dtype(np.float64)


def _chunks(t, tile_cols):
    """(offset, C-contiguous float block) over the training rows, CHUNK_BYTES at a time."""
    dtype = _dtype_of(t)
    rows = max(1, CHUNK_BYTES // max(1, t.shape[1] * dtype.itemsize))
    if rows < t.shape[0]:
        rows = max(tile_cols, rows // tile_cols * tile_cols)
    for s in range(0, t.shape[0], rows):
        yield s, np.ascontiguousarray(t[s:s + rows], dtype=dtype)


def _check_k(k, n_train, op):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{op}: n_neighbors must be a positive integer, got {k!r}")
    if k > n_train:
        raise ValueError(f"{op}: n_neighbors={k} is larger than the number of training "
                         f"samples ({n_train})")
    return int(k)


def _check_metric(metric, op):
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"{op}: metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric


def _check_weights(weights, metric, op):
    if not isinstance(weights, str) or weights not in _WEIGHTS:
        raise ValueError(f"{op}: weights must be 'uniform' or 'distance'; got {weights!r}")
    if weights == "distance" and metric == "inner_product":
        raise ValueError(f"{op}: weights='distance' needs a distance, but metric="
                         f"'inner_product' ranks by similarity (use weights='uniform')")
    return weights


def _slack(metric, d, dtype):
    """Bound on the tile's error (see ``knn_chunk``): any summation order of D float products
    errs by at most D·u·Σ|p_i q_i| (Higham, Thm 3.1); Manhattan's float partial sums cover at
    most 256 features. The margins cover the double arithmetic of the bound itself."""
    u = 2.0 ** -24 if np.dtype(dtype) == np.float32 else 2.0 ** -53
    terms = min(d, 256) + 2 if metric == "manhattan" else d + 8
    return 1.01 * terms * u + 64 * 2.0 ** -53


def _tiles(metric, n, m):
    """(query tile, training tile, number of training segments) of the kernels."""
    tr, tc = KNN_TILE_MANHATTAN if metric == "manhattan" else KNN_TILE
    n_qt = -(-n // tr) if n else 0
    threads = _rt.get_num_threads()
    nseg = 1 if n_qt >= threads else threads
    return tr, tc, max(1, min(nseg, -(-m // tc)))


def _knn_exact(q, t, k, metric, dist, idx):
    """The exact path: every candidate passing the proven lower bound gets its exact key
    during the scan (used for rows the fast path could not settle)."""
    n, d = q.shape
    code, kind = _CODES[metric]
    tr, tc, nseg = _tiles(metric, n, t.shape[0])
    hd = np.full((nseg, n, k), np.inf)
    hi = np.full((nseg, n, k), np.iinfo(np.int64).max, dtype=np.int64)
    qn = np.empty(n, np.float64)
    DK.row_sqnorms(q, qn)
    slack = _slack(metric, d, q.dtype)
    for offset, chunk in _chunks(t, tc):
        with blas_guard(n, chunk.shape[0], d):
            DK.knn_chunk(q, chunk, offset, code, slack, qn, hd, hi, tr, tc)
    DK.knn_finish(hd, hi, kind, dist, idx)


def _knn_arrays(q, t, k, metric="euclidean"):
    """The fused kernel on validated arrays: (distances [N, k], indices [N, k] int64),
    nearest first (largest inner product first), streaming over the training set.

    Fast path: lists of the K2 = k + KNN_EXTRA best approximate keys (no exact work during
    the scan), then ``knn_verify`` recomputes the few candidates exactly and proves that
    nothing outside the lists can be in the top k; rows where it cannot (keys closer than the
    error bound, e.g. data far from the origin) are redone on the exact path.
    """
    n, d = q.shape
    m = t.shape[0]
    dist = np.empty((n, k), q.dtype)
    idx = np.empty((n, k), np.int64)
    if n == 0:
        return dist, idx
    code, kind = _CODES[metric]
    if not (t.dtype == q.dtype and t.flags.c_contiguous):     # e.g. an int memory map
        _knn_exact(q, t, k, metric, dist, idx)
        return dist, idx
    tr, tc, nseg = _tiles(metric, n, m)
    k2 = min(m, k + KNN_EXTRA)
    ha = np.full((nseg, n, k2), np.inf)
    hb = np.zeros((nseg, n, k2))
    hi = np.full((nseg, n, k2), np.iinfo(np.int64).max, dtype=np.int64)
    qn = np.empty(n, np.float64)
    DK.row_sqnorms(q, qn)
    slack = _slack(metric, d, q.dtype)
    stats = np.zeros(1)
    for offset, chunk in _chunks(t, tc):
        with blas_guard(n, chunk.shape[0], d):
            DK.knn_chunk_approx(q, chunk, offset, code, slack, qn, ha, hb, hi, stats, tr, tc)
    failed = np.zeros(n, np.uint8)
    DK.knn_verify(q, t, k, code, slack, stats[0], qn, ha, hb, hi, kind, dist, idx, failed)
    rows = np.flatnonzero(failed)
    if rows.size:
        sub_d = np.empty((rows.size, k), q.dtype)
        sub_i = np.empty((rows.size, k), np.int64)
        _knn_exact(np.ascontiguousarray(q[rows]), t, k, metric, sub_d, sub_i)
        dist[rows], idx[rows] = sub_d, sub_i
    return dist, idx


def kneighbors(x_query, x_train, k, metric="euclidean"):
    """The k nearest rows of x_train [M, D] for each row of x_query [N, D], nearest first.

    Returns (distances [N, k], indices [N, k] int64) as Tensors, ties going to the smaller
    training index. ``metric`` as in ``tg.cdist``; for ``"inner_product"`` the largest inner
    products come first and are returned as they are. Not differentiable (use ``tg.cdist``).
    """
    metric = _check_metric(metric, "kneighbors")
    t = _training_set(x_train, "kneighbors")
    q = _features(x_query, "kneighbors", dtype=_dtype_of(t))
    if q.shape[1] != t.shape[1]:
        raise ValueError(f"kneighbors: x_query and x_train need the same number of features, "
                         f"got shapes {q.shape} and {t.shape}")
    k = _check_k(k, t.shape[0], "kneighbors")
    dist, idx = _knn_arrays(q, t, k, metric)
    return _wrap(dist), _wrap(idx)


# --- radius search ----------------------------------------------------------------------------
def _exact_keys(p, q, metric):
    """Keys of the row pairs (p[i], q[i]) in double (as the kernel's exact path)."""
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    if metric in ("euclidean", "sqeuclidean"):
        return np.einsum("ij,ij->i", p - q, p - q)
    if metric == "manhattan":
        return np.abs(p - q).sum(1)
    if metric == "inner_product":
        return -np.einsum("ij,ij->i", p, q)
    n1, n2 = np.sqrt(np.einsum("ij,ij->i", p, p)), np.sqrt(np.einsum("ij,ij->i", q, q))
    ok = (n1 > 0) & (n2 > 0)
    u = p / np.where(ok, n1, 1.0)[:, None] - q / np.where(ok, n2, 1.0)[:, None]
    return np.where(ok, 0.5 * np.einsum("ij,ij->i", u, u), 1.0)


def _approx_keys(q, c, metric):
    """(approximate keys [nq, nc] in double, their error bound) for a query block q and a
    training block c, both float64."""
    if metric == "manhattan":
        a = np.empty((q.shape[0], c.shape[0]), np.float64)
        DK.cdist_manhattan(q, c, a)
        return a, _slack(metric, q.shape[1], np.float64) * a
    g = q @ c.T
    s = _slack(metric, q.shape[1], np.float64)
    n1, n2 = np.einsum("ij,ij->i", q, q), np.einsum("ij,ij->i", c, c)
    if metric in ("euclidean", "sqeuclidean"):
        return n1[:, None] + n2[None, :] - 2.0 * g, s * (n1[:, None] + n2[None, :]) + 1e-300
    r1, r2 = np.sqrt(n1), np.sqrt(n2)
    if metric == "inner_product":
        return -g, s * r1[:, None] * r2[None, :] + 1e-300
    s1 = np.divide(1.0, r1, out=np.zeros_like(r1), where=r1 > 0)
    s2 = np.divide(1.0, r2, out=np.zeros_like(r2), where=r2 > 0)
    return 1.0 - g * s1[:, None] * s2[None, :], np.full((1, 1), 4 * s)


def _key_of_radius(radius, metric):
    if metric == "euclidean":
        return radius * radius
    return -radius if metric == "inner_product" else radius


def _key_to_distance(key, metric):
    if metric == "euclidean":
        return np.sqrt(key)
    return -key if metric == "inner_product" else key


def _radius_arrays(q, t, radius, metric):
    """Per query row, (distances, indices) of the training rows within ``radius`` (inner
    product: at least ``radius``), sorted nearest first, ties by index; exact keys."""
    rkey = _key_of_radius(float(radius), metric)
    dists = [[] for _ in range(q.shape[0])]
    idxs = [[] for _ in range(q.shape[0])]
    bq, bt = RADIUS_BLOCK
    for i0 in range(0, q.shape[0], bq):
        qb = q[i0:i0 + bq].astype(np.float64)
        for offset, chunk in _chunks(t, bt):
            for j0 in range(0, chunk.shape[0], bt):
                cb = chunk[j0:j0 + bt].astype(np.float64)
                approx, bound = _approx_keys(qb, cb, metric)
                ii, jj = np.nonzero(approx - bound <= rkey)
                if not len(ii):
                    continue
                keys = _exact_keys(qb[ii], cb[jj], metric)
                keep = keys <= rkey
                ii, jj, keys = ii[keep], jj[keep] + offset + j0, keys[keep]
                for r in np.unique(ii):
                    sel = ii == r
                    dists[i0 + r].append(keys[sel])
                    idxs[i0 + r].append(jj[sel])
    out_d = np.empty(q.shape[0], dtype=object)
    out_i = np.empty(q.shape[0], dtype=object)
    for r in range(q.shape[0]):
        keys = np.concatenate(dists[r]) if dists[r] else np.empty(0)
        ind = np.concatenate(idxs[r]) if idxs[r] else np.empty(0, np.int64)
        order = np.lexsort((ind, keys))
        out_d[r] = _key_to_distance(keys[order], metric).astype(q.dtype)
        out_i[r] = ind[order].astype(np.int64)
    return out_d, out_i


def _weights(dist, weights):
    """Per-neighbour weights: 1 (uniform) or 1/d; a row with a zero distance weighs only its
    zero-distance neighbours (scikit-learn's rule)."""
    dist = np.asarray(dist, np.float64)
    if weights == "uniform":
        return np.ones_like(dist)
    with np.errstate(divide="ignore"):
        w = 1.0 / dist
    inf = np.isinf(w)
    rows = inf.any(axis=-1)
    w[rows] = inf[rows]
    return w


def _vote(neigh, n_classes):
    """Majority label index per row of neigh [N, k] (encoded labels); ties -> smaller label."""
    n = neigh.shape[0]
    flat = (np.arange(n, dtype=np.int64)[:, None] * n_classes + neigh).ravel()
    counts = np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes)
    return counts.argmax(axis=1)   # argmax returns the first maximum: the smallest label


def _class_totals(neigh, w, n_classes):
    """Per row, the total weight of each class among its neighbours: [N, n_classes]."""
    n = neigh.shape[0]
    flat = (np.arange(n, dtype=np.int64)[:, None] * n_classes + neigh).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=n * n_classes).reshape(n, n_classes)


def _labels_out(labels):
    return _wrap(labels) if labels.dtype.kind in "biuf" else labels


class _Neighbors:
    """Shared by the estimators: the stored training set, option checks and the searches."""

    _name = "Neighbors"

    def _init_options(self, weights, metric):
        self.metric = _check_metric(metric, self._name)
        self.weights = _check_weights(weights, self.metric, self._name)
        self._X = None

    def _fit_X(self, X, y, op):
        X = _training_set(X, op)
        y = _to_numpy(y)
        ndims = (1, 2) if self._y_2d else (1,)
        if y.ndim not in ndims:
            raise ValueError(f"{op}: y must be {'1-D or 2-D' if self._y_2d else '1-D'} with "
                             f"one label per row of X, got shapes {X.shape} and {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"{op}: y must have one label per row of X, got shapes "
                             f"{X.shape} and {y.shape}")
        self._X = X
        self.n_features_in_ = X.shape[1]
        self.n_samples_fit_ = X.shape[0]
        return y

    _y_2d = False

    def _queries(self, X, op):
        if self._X is None:
            raise RuntimeError(f"{self._name}.{op}: this estimator is not fitted yet; "
                               f"call fit(X, y) first")
        q = _features(X, f"{self._name}.{op}", dtype=_dtype_of(self._X))
        if q.shape[1] != self._X.shape[1]:
            raise ValueError(f"{self._name}.{op}: X has {q.shape[1]} features but the "
                             f"estimator was fitted with {self._X.shape[1]} (shapes "
                             f"{q.shape} and {self._X.shape})")
        return q

    def _search(self, X, k, op):
        q = self._queries(X, op)
        k = _check_k(k, self._X.shape[0], f"{self._name}.{op}")
        return _knn_arrays(q, self._X, k, self.metric)

    def radius_neighbors(self, X, radius=None):
        """(distances, indices): per row of X, object arrays of the training samples within
        ``radius`` (default: the estimator's ``radius``), nearest first, ties by index, as
        scikit-learn's ``radius_neighbors(X, radius, sort_results=True)``. For
        ``metric="inner_product"``: the samples whose inner product is at least ``radius``,
        largest first."""
        if radius is None:
            radius = getattr(self, "radius", None)
            if radius is None:
                raise ValueError(f"{self._name}.radius_neighbors: give radius=")
        if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
                or not np.isfinite(radius) or (radius < 0 and self.metric != "inner_product"):
            raise ValueError(f"{self._name}.radius_neighbors: radius must be a finite "
                             f"non-negative number, got {radius!r}")
        q = self._queries(X, "radius_neighbors")
        return _radius_arrays(q, self._X, radius, self.metric)


class KNeighborsClassifier(_Neighbors):
    """Vote among the ``n_neighbors`` nearest training samples.

    ``KNeighborsClassifier(n_neighbors=5, weights="uniform", metric="euclidean")``:
    ``weights="distance"`` weighs each neighbour by 1/distance (a query at distance 0 from
    training samples takes only those), ``metric`` is one of ``tg.ops.distance.METRICS``
    ("inner_product" ranks by largest inner product). ``fit(X, y)``, ``predict(X)``,
    ``predict_proba(X)``, ``kneighbors(X, n_neighbors=None)``, ``radius_neighbors(X,
    radius)``, ``score(X, y)`` as in scikit-learn; X and y may be Tensors or ndarrays, and X
    in ``fit`` may be an ``np.memmap`` or a path to a ``.npy`` file (searched in chunks,
    never loaded whole). Float32/float64 features keep their dtype (queries are converted to
    the training dtype); other numbers become float64. Ties in distance go to the smaller
    training index, ties in the vote to the smaller label.

    ``distributed=True`` (under ``mpiexec``, after ``tensorgrad.distributed.init()``): each
    rank fits its own shard of the training set (shards in rank order); ``kneighbors`` and
    ``predict`` on rank 0's queries return on every rank the single-process answer, with
    indices into the concatenated shards (``neighbors/_sharded.py``). Not with
    ``metric="inner_product"`` nor for ``radius_neighbors``.
    """

    _name = "KNeighborsClassifier"

    def __init__(self, n_neighbors=5, weights="uniform", metric="euclidean",
                 distributed=False):
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) \
                or n_neighbors < 1:
            raise ValueError(f"KNeighborsClassifier: n_neighbors must be a positive integer, "
                             f"got {n_neighbors!r}")
        self.n_neighbors = int(n_neighbors)
        self._init_options(weights, metric)
        self.distributed = bool(distributed)
        if self.distributed and self.metric == "inner_product":
            raise ValueError("KNeighborsClassifier: distributed=True takes a distance metric "
                             "(nearest first), not metric='inner_product'")

    def __repr__(self):
        extra = ", distributed=True" if self.distributed else ""
        return (f"KNeighborsClassifier(n_neighbors={self.n_neighbors}, "
                f"weights={self.weights!r}, metric={self.metric!r}{extra})")

    def _search(self, X, k, op):
        if not self.distributed:
            return super()._search(X, k, op)
        q = _sharded.queries(self, X, op)
        k = _check_k(k, self.n_samples_fit_, f"{self._name}.{op}")
        return _sharded.kneighbors(self, q, k)

    def radius_neighbors(self, X, radius=None):
        """As ``_Neighbors.radius_neighbors`` (not available with ``distributed=True``)."""
        if self.distributed:
            raise NotImplementedError("KNeighborsClassifier.radius_neighbors: not available "
                                      "with distributed=True")
        return super().radius_neighbors(X, radius)

    def fit(self, X, y):
        """Store the training set (a C-contiguous copy only if X is not one already; a
        memory map is kept as it is). With ``distributed=True``: this rank's shard."""
        if self.distributed:
            return _sharded.fit(self, X, y)
        y = self._fit_X(X, y, "KNeighborsClassifier.fit")
        _check_k(self.n_neighbors, self._X.shape[0], "KNeighborsClassifier.fit")
        self.classes_, enc = np.unique(y, return_inverse=True)
        self._y = enc.astype(np.int64).reshape(-1)
        return self

    def kneighbors(self, X, n_neighbors=None):
        """(distances [N, k], indices [N, k]) of the nearest training samples, as Tensors
        (for "inner_product": the largest inner products, largest first)."""
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        dist, idx = self._search(X, k, "kneighbors")
        return _wrap(dist), _wrap(idx)

    def _totals(self, X, op):
        dist, idx = self._search(X, self.n_neighbors, op)
        return _class_totals(self._y[idx], _weights(dist, self.weights), len(self.classes_))

    def predict(self, X):
        """The label with the largest (weighted) vote among the k nearest training samples
        of each row of X; ties go to the smaller label."""
        if self.weights == "uniform":
            _, idx = self._search(X, self.n_neighbors, "predict")
            return _labels_out(self.classes_[_vote(self._y[idx], len(self.classes_))])
        return _labels_out(self.classes_[self._totals(X, "predict").argmax(axis=1)])

    def predict_proba(self, X):
        """Class probabilities [N, n_classes] (columns in ``classes_`` order): each class's
        share of the (weighted) vote, as a float64 Tensor."""
        totals = self._totals(X, "predict_proba")
        return _wrap(totals / totals.sum(axis=1, keepdims=True))

    def score(self, X, y):
        """Mean accuracy of ``predict(X)`` against y."""
        pred = _to_numpy(self.predict(X))
        y = _to_numpy(y)
        if y.shape != pred.shape:
            raise ValueError(f"KNeighborsClassifier.score: y must have one label per row of "
                             f"X, got shapes {np.shape(_to_numpy(X))} and {y.shape}")
        return float(np.mean(pred == y))


class KNeighborsRegressor(_Neighbors):
    """The (weighted) mean target of the ``n_neighbors`` nearest training samples.

    ``KNeighborsRegressor(n_neighbors=5, weights="uniform", metric="euclidean")`` with the
    options, inputs and tie rules of ``KNeighborsClassifier``; y may be 1-D or 2-D
    [n_samples, n_targets]. ``predict`` returns a float64 Tensor, ``score`` R² as
    scikit-learn's.
    """

    _name = "KNeighborsRegressor"
    _y_2d = True

    def __init__(self, n_neighbors=5, weights="uniform", metric="euclidean"):
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral) \
                or n_neighbors < 1:
            raise ValueError(f"KNeighborsRegressor: n_neighbors must be a positive integer, "
                             f"got {n_neighbors!r}")
        self.n_neighbors = int(n_neighbors)
        self._init_options(weights, metric)

    def __repr__(self):
        return (f"KNeighborsRegressor(n_neighbors={self.n_neighbors}, "
                f"weights={self.weights!r}, metric={self.metric!r})")

    def fit(self, X, y):
        """Store the training set and the targets (float64)."""
        y = self._fit_X(X, y, "KNeighborsRegressor.fit")
        if y.dtype.kind not in "fiub":
            raise TypeError(f"KNeighborsRegressor.fit: y must be numeric, got dtype {y.dtype}")
        _check_k(self.n_neighbors, self._X.shape[0], "KNeighborsRegressor.fit")
        self._y = np.asarray(y, np.float64)
        return self

    def kneighbors(self, X, n_neighbors=None):
        """(distances [N, k], indices [N, k]) of the nearest training samples, as Tensors."""
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        dist, idx = self._search(X, k, "kneighbors")
        return _wrap(dist), _wrap(idx)

    def predict(self, X):
        """The (weighted) mean of the k nearest training targets: [N] or [N, n_targets]."""
        dist, idx = self._search(X, self.n_neighbors, "predict")
        w = _weights(dist, self.weights)
        yk = self._y[idx]                                   # [N, k] or [N, k, T]
        if yk.ndim == 3:
            w = w[:, :, None]
        return _wrap((yk * w).sum(axis=1) / w.sum(axis=1))

    def score(self, X, y):
        """R² of ``predict(X)`` against y (averaged uniformly over targets)."""
        pred = _to_numpy(self.predict(X))
        y = np.asarray(_to_numpy(y), np.float64)
        if y.shape != pred.shape:
            raise ValueError(f"KNeighborsRegressor.score: y must have the shape of the "
                             f"predictions, got {y.shape} and {pred.shape}")
        ss_res = ((y - pred) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
        return float(np.mean(r2))


class RadiusNeighborsClassifier(_Neighbors):
    """Vote among all training samples within ``radius``.

    ``RadiusNeighborsClassifier(radius=1.0, weights="uniform", metric="euclidean",
    outlier_label=None)``: as scikit-learn's. A query with no training sample within the
    radius gets ``outlier_label``; without one, ``predict`` raises ValueError. Ties in the
    vote go to the smaller label; ``predict_proba`` gives an outlier a row of zeros (or 1 in
    the outlier label's column when it is a class).
    """

    _name = "RadiusNeighborsClassifier"

    def __init__(self, radius=1.0, weights="uniform", metric="euclidean", outlier_label=None):
        if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
                or not np.isfinite(radius) or (radius < 0 and metric != "inner_product"):
            raise ValueError(f"RadiusNeighborsClassifier: radius must be a finite "
                             f"non-negative number, got {radius!r}")
        self.radius = float(radius)
        self.outlier_label = outlier_label
        self._init_options(weights, metric)

    def __repr__(self):
        return (f"RadiusNeighborsClassifier(radius={self.radius}, weights={self.weights!r}, "
                f"metric={self.metric!r}, outlier_label={self.outlier_label!r})")

    def fit(self, X, y):
        """Store the training set and labels."""
        y = self._fit_X(X, y, "RadiusNeighborsClassifier.fit")
        self.classes_, enc = np.unique(y, return_inverse=True)
        self._y = enc.astype(np.int64).reshape(-1)
        return self

    def _totals(self, X, op):
        """([N, n_classes] weighted votes, mask of rows without neighbours)."""
        q = self._queries(X, op)
        dist, idx = _radius_arrays(q, self._X, self.radius, self.metric)
        totals = np.zeros((q.shape[0], len(self.classes_)))
        empty = np.zeros(q.shape[0], bool)
        for r in range(q.shape[0]):
            if len(idx[r]) == 0:
                empty[r] = True
                continue
            w = _weights(dist[r][None, :], self.weights)[0]
            totals[r] = np.bincount(self._y[idx[r]], weights=w, minlength=len(self.classes_))
        if empty.any() and self.outlier_label is None:
            raise ValueError(f"{self._name}.{op}: no training sample within radius "
                             f"{self.radius} of the query rows {np.flatnonzero(empty)[:10]}; "
                             f"give outlier_label= or a larger radius")
        return totals, empty

    def predict(self, X):
        """The label with the largest (weighted) vote among the training samples within the
        radius; ``outlier_label`` for rows without any."""
        totals, empty = self._totals(X, "predict")
        labels = self.classes_[totals.argmax(axis=1)]
        if empty.any():
            labels = labels.astype(np.result_type(labels, np.asarray(self.outlier_label)))
            labels[empty] = self.outlier_label
        return _labels_out(labels)

    def predict_proba(self, X):
        """Class probabilities [N, n_classes] (``classes_`` order), float64 Tensor."""
        totals, empty = self._totals(X, "predict_proba")
        with np.errstate(invalid="ignore", divide="ignore"):
            proba = totals / totals.sum(axis=1, keepdims=True)
        proba[empty] = 0.0
        hit = np.flatnonzero(self.classes_ == self.outlier_label) \
            if self.outlier_label is not None else []
        if len(hit):
            proba[empty, hit[0]] = 1.0
        return _wrap(proba)

    def score(self, X, y):
        """Mean accuracy of ``predict(X)`` against y."""
        pred = _to_numpy(self.predict(X))
        y = _to_numpy(y)
        if y.shape != pred.shape:
            raise ValueError(f"RadiusNeighborsClassifier.score: y must have one label per row "
                             f"of X, got shapes {np.shape(_to_numpy(X))} and {y.shape}")
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
