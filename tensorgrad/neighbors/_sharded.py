"""Exact kNN over a training set sharded across MPI ranks (``distributed=True``).

Rank r holds rows offset_r .. offset_r + n_r - 1 of the concatenated training set (shards in
rank order). A query: rank 0's query rows are broadcast; each rank runs the fused top-k
kernel on its shard (its k' = min(k, n_r) nearest, indices shifted to global ones); an
all-gather brings every rank's candidates to every rank; each keeps the k smallest by
(distance, global index). The k nearest of the whole set are among the union of the shards'
k nearest, and each distance is computed from the same two rows by the same kernel, so the
result is exactly the single-process one, ties included (smaller global index first).
"""
import numpy as np

from tensorgrad.neighbors import knn as _knn


def _comm(op):
    from tensorgrad.distributed import _comm as dist_comm  # same layer: imported on use
    return dist_comm._comm(op)


def fit(clf, X, y):
    """Fit ``clf`` on this rank's shard; labels and shard sizes are shared with all ranks."""
    op = "KNeighborsClassifier.fit"
    comm = _comm(op)
    X = _knn._features(X, op)
    y = _knn._to_numpy(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{op}: y must be 1-D with one label per row of X, got shapes "
                         f"{X.shape} and {y.shape}")
    meta = comm.allgather((X.shape, str(X.dtype)))
    if len({(s[1], d) for s, d in meta}) != 1:
        shards = "; ".join(f"rank {r}: {s} {d}" for r, (s, d) in enumerate(meta))
        raise ValueError(f"{op}: the ranks' shards differ in features or dtype ({shards}); "
                         f"every shard needs the same number of features and dtype")
    sizes = np.array([s[0] for s, _ in meta], np.int64)
    _knn._check_k(clf.n_neighbors, int(sizes.sum()), op)
    labels = np.concatenate(comm.allgather(y))      # small: one label per training row
    clf.classes_, enc = np.unique(labels, return_inverse=True)
    clf._y = enc.astype(np.int64).reshape(-1)
    clf._X = X
    clf._offsets = np.concatenate([[0], np.cumsum(sizes)])
    clf.n_features_in_ = X.shape[1]
    clf.n_samples_fit_ = int(sizes.sum())
    return clf


def queries(clf, X, op):
    """Rank 0's queries on every rank (other ranks may pass None)."""
    comm = _comm(f"KNeighborsClassifier.{op}")
    if clf._X is None:
        raise RuntimeError(f"KNeighborsClassifier.{op}: this classifier is not fitted yet; "
                           f"call fit(X, y) first")
    q = None
    if comm.Get_rank() == 0:
        try:
            q = clf._queries(X, op)
        except Exception as e:
            comm.bcast(e, root=0)
            raise
        head = (q.shape, q.dtype.str)
    else:
        head = None
    head = comm.bcast(head, root=0)
    if isinstance(head, Exception):
        raise type(head)(f"(on rank 0) {head}")
    if q is None:
        q = np.empty(head[0], np.dtype(head[1]))
    if q.size:
        comm.Bcast(q, root=0)
    return q


def kneighbors(clf, q, k):
    """(distances [N, k], global indices [N, k]) over all shards, the same on every rank."""
    comm = _comm("KNeighborsClassifier.kneighbors")
    rank, world = comm.Get_rank(), comm.Get_size()
    offsets = clf._offsets
    n = q.shape[0]
    k_local = [int(min(k, offsets[r + 1] - offsets[r])) for r in range(world)]
    kr = k_local[rank]
    if kr:
        dist, idx = _knn._knn_arrays(q, clf._X, kr, clf.metric)
        idx += offsets[rank]
    else:
        dist, idx = np.empty((n, 0), q.dtype), np.empty((n, 0), np.int64)
    counts = [n * c for c in k_local]
    all_dist = np.empty(sum(counts), q.dtype)
    all_idx = np.empty(sum(counts), np.int64)
    if world == 1:
        all_dist[:], all_idx[:] = dist.ravel(), idx.ravel()
    else:
        comm.Allgatherv(dist, [all_dist, counts])
        comm.Allgatherv(idx, [all_idx, counts])
    bounds = np.concatenate([[0], np.cumsum(counts)])
    cand_d = np.concatenate([all_dist[bounds[r]:bounds[r + 1]].reshape(n, k_local[r])
                             for r in range(world)], axis=1)
    cand_i = np.concatenate([all_idx[bounds[r]:bounds[r + 1]].reshape(n, k_local[r])
                             for r in range(world)], axis=1)
    # the k-way merge: sort each row by (distance, global index), keep the first k
    order = np.lexsort((cand_i, cand_d), axis=-1)[:, :k]
    return (np.ascontiguousarray(np.take_along_axis(cand_d, order, axis=1)),
            np.ascontiguousarray(np.take_along_axis(cand_i, order, axis=1)))
