"""Nearest-neighbour search on arrays: the engine of the estimators in knn.py.

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
from tensorgrad.ops.distance import METRICS

__all__ = ["kneighbors"]

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


def _features(x, op, dtype=None, check=True):
    """x as a C-contiguous 2-D float array (float32/float64 kept; other numbers -> float64,
    or ``dtype`` when given), checked for NaN and infinity unless ``check`` is false."""
    a = _to_numpy(x)
    if a.ndim != 2:
        raise ValueError(f"{op}: X must be 2-D [n_samples, n_features], got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{op}: X must be numeric, got dtype {a.dtype}")
    if dtype is None:
        dtype = a.dtype if a.dtype in _FLOATS else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    if check:
        _check_finite(a, op)
    return a


def _training_set(X, op, check=True):
    """The training rows: a memory map (an ``np.memmap`` or a path to a ``.npy`` file) is
    kept as it is, never copied (chunks are converted on the fly if needed), and always
    checked; anything else becomes a C-contiguous float array as in ``_features``."""
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
    return _features(X, op, check=check)


def _norms_check_finite(t, metric):
    """Whether the fast path's squared row norms can stand in for ``_check_finite`` on these
    in-memory arrays: in double, the squared norm of a float32 row is finite exactly when
    the row is (a float32 square is below 2²⁵⁶). Not for float64 (a finite row can overflow
    it) nor Manhattan (no norms), nor memory maps (checked on opening)."""
    return (t.dtype == np.float32 and metric != "manhattan" and t.flags.c_contiguous
            and not isinstance(t, np.memmap))


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


def _knn_arrays(q, t, k, metric="euclidean", check_op=None):
    """The fused kernel on validated arrays: (distances [N, k], indices [N, k] int64),
    nearest first (largest inner product first), streaming over the training set.
    ``check_op``: q and t were not checked for NaN and infinity (``_norms_check_finite``
    holds): the squared row norms are, and a ValueError names this op.

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
    if check_op and not np.isfinite(qn).all():
        raise ValueError(f"{check_op}: X contains NaN or infinity (shape {q.shape})")
    slack = _slack(metric, d, q.dtype)
    stats = np.zeros(2)
    for offset, chunk in _chunks(t, tc):
        with blas_guard(n, chunk.shape[0], d):
            DK.knn_chunk_approx(q, chunk, offset, code, slack, qn, ha, hb, hi, stats, tr, tc)
        if check_op and stats[1]:
            raise ValueError(f"{check_op}: X contains NaN or infinity (shape {t.shape})")
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
    t = _training_set(x_train, "kneighbors", check=False)
    q = _features(x_query, "kneighbors", dtype=_dtype_of(t), check=False)
    # float32: the kernel's row norms find NaN and infinity, without another pass over X
    by_norms = _norms_check_finite(t, metric) and q.dtype == t.dtype
    if not by_norms:
        _check_finite(t, "kneighbors")
        _check_finite(q, "kneighbors")
    if q.shape[1] != t.shape[1]:
        raise ValueError(f"kneighbors: x_query and x_train need the same number of features, "
                         f"got shapes {q.shape} and {t.shape}")
    k = _check_k(k, t.shape[0], "kneighbors")
    dist, idx = _knn_arrays(q, t, k, metric, "kneighbors" if by_norms else None)
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
