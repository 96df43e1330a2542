"""Distance workloads (issue 4): pairwise Euclidean distances at the CIFAR-10 shapes of the
kNN assignment, and k-nearest-neighbour prediction. Both report peak memory as well as time.
"""
import numpy as np

from tensorgrad.benchmarks.base import Skip, Workload, need_sklearn, need_torch

K = 5
KNN_CHUNK = 256      # query rows per chunk in the numpy and torch versions (50 MB of distances)


# --- cdist -----------------------------------------------------------------------------------
def _cdist_data(p, rng):
    return {"A": rng.standard_normal((p["n"], p["d"]), dtype=np.float32),
            "B": rng.standard_normal((p["m"], p["d"]), dtype=np.float32)}


def _cdist_size(p):
    return f"A {p['n']}×{p['d']}, B {p['m']}×{p['d']}"


def _tg_cdist(d, p):
    import tensorgrad as tg
    A, B = tg.from_numpy(d["A"]), tg.from_numpy(d["B"])

    def run():
        return {"d": tg.cdist(A, B).numpy()}
    return run


def _np_cdist(d, p):
    A, B = d["A"], d["B"]

    def run():      # the assignment's no-loop formula: ||a||² + ||b||² - 2·a·b
        dists = np.sqrt(np.sum(A ** 2, axis=1, keepdims=True) + np.sum(B ** 2, axis=1)
                        - 2 * A.dot(B.T))
        return {"d": dists}
    return run


def _sk_cdist(d, p):
    need_sklearn()
    from sklearn.metrics.pairwise import euclidean_distances
    A, B = d["A"], d["B"]

    def run():
        return {"d": euclidean_distances(A, B)}
    return run


def _torch_cdist(d, p):
    torch = need_torch()
    A, B = torch.from_numpy(d["A"]), torch.from_numpy(d["B"])

    def run():
        return {"d": torch.cdist(A, B).numpy()}
    return run


# --- kNN prediction --------------------------------------------------------------------------
def _knn_data(p, rng):
    n_cls, dim = p["classes"], p["d"]
    # Overlapping clusters (centres 0.3σ apart per dimension), so the vote is not trivial.
    centres = 0.3 * rng.standard_normal((n_cls, dim))
    y_train = rng.integers(0, n_cls, p["m"])
    y_query = rng.integers(0, n_cls, p["n"])
    return {"Xtr": (centres[y_train] + rng.standard_normal((p["m"], dim))).astype(np.float32),
            "ytr": y_train.astype(np.int64),
            "Xq": (centres[y_query] + rng.standard_normal((p["n"], dim))).astype(np.float32)}


def _knn_size(p):
    return f"{p['n']:,} queries vs {p['m']:,} rows × {p['d']}, k={K}"


def _tg_knn(d, p):
    import tensorgrad as tg
    clf = tg.neighbors.KNeighborsClassifier(n_neighbors=K).fit(d["Xtr"], d["ytr"])

    def run():
        return {"pred": np.asarray(clf.predict(d["Xq"]).numpy())}
    return run


def _sk_knn(d, p):
    need_sklearn()
    from sklearn.neighbors import KNeighborsClassifier
    clf = KNeighborsClassifier(n_neighbors=K, algorithm="brute").fit(d["Xtr"], d["ytr"])

    def run():
        return {"pred": clf.predict(d["Xq"])}
    return run


def _np_knn(d, p):
    Xtr, ytr, Xq = d["Xtr"], d["ytr"], d["Xq"]
    n_cls = int(ytr.max()) + 1
    tr2 = np.sum(Xtr ** 2, axis=1)

    def run():
        pred = np.empty(Xq.shape[0], np.int64)
        for start in range(0, Xq.shape[0], KNN_CHUNK):
            q = Xq[start:start + KNN_CHUNK]
            dist = tr2 - 2 * q.dot(Xtr.T)            # ||q||² does not change the ranking
            idx = np.argpartition(dist, K - 1, axis=1)[:, :K]
            votes = (ytr[idx][:, :, None] == np.arange(n_cls)).sum(axis=1)
            pred[start:start + KNN_CHUNK] = votes.argmax(axis=1)   # ties: smaller label
        return {"pred": pred}
    return run


def _torch_knn(d, p):
    torch = need_torch()
    Xtr, Xq = torch.from_numpy(d["Xtr"]), torch.from_numpy(d["Xq"])
    ytr = torch.from_numpy(d["ytr"])
    n_cls = int(d["ytr"].max()) + 1

    def run():
        pred = torch.empty(Xq.shape[0], dtype=torch.int64)
        for start in range(0, Xq.shape[0], KNN_CHUNK):
            dist = torch.cdist(Xq[start:start + KNN_CHUNK], Xtr)
            idx = dist.topk(K, dim=1, largest=False).indices
            votes = torch.nn.functional.one_hot(ytr[idx], n_cls).sum(dim=1)
            pred[start:start + KNN_CHUNK] = votes.argmax(dim=1)
        return {"pred": pred.numpy()}
    return run


# --- kneighbors at the GEMM limit (issue 15) ---------------------------------------------------
def need_faiss():
    """faiss (``pip install faiss-cpu``) with tensorgrad's thread count, or Skip."""
    try:
        import faiss
    except ImportError as e:
        raise Skip(f"faiss is not installed ({e}); pip install faiss-cpu") from None
    import tensorgrad as tg
    faiss.omp_set_num_threads(tg.get_num_threads())
    return faiss


def _kn_data(p, rng):
    return {"Xtr": rng.standard_normal((p["m"], p["d"]), dtype=np.float32),
            "Xq": rng.standard_normal((p["n"], p["d"]), dtype=np.float32)}


def _kn_size(p):
    return f"{p['n']:,} queries vs {p['m']:,} rows × {p['d']}, k={p['k']}"


def _tg_kn(d, p):
    import tensorgrad as tg
    clf = tg.neighbors.KNeighborsClassifier(p["k"]).fit(d["Xtr"], np.zeros(p["m"], np.int64))

    def run():
        return {"idx": clf.kneighbors(d["Xq"])[1].numpy()}
    return run


def _np_kn(d, p):
    Xtr, Xq, k = d["Xtr"], d["Xq"], p["k"]
    tr2 = np.sum(Xtr ** 2, axis=1)

    def run():
        out = np.empty((Xq.shape[0], k), np.int64)
        for s in range(0, Xq.shape[0], KNN_CHUNK):
            dist = tr2 - 2 * Xq[s:s + KNN_CHUNK].dot(Xtr.T)
            part = np.argpartition(dist, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(dist, part, 1), axis=1, kind="stable")
            out[s:s + KNN_CHUNK] = np.take_along_axis(part, order, 1)
        return {"idx": out}
    return run


def _torch_kn(d, p):
    torch = need_torch()
    Xtr, Xq = torch.from_numpy(d["Xtr"]), torch.from_numpy(d["Xq"])

    def run():
        out = torch.empty((Xq.shape[0], p["k"]), dtype=torch.int64)
        for s in range(0, Xq.shape[0], KNN_CHUNK):
            dist = torch.cdist(Xq[s:s + KNN_CHUNK], Xtr)
            out[s:s + KNN_CHUNK] = dist.topk(p["k"], dim=1, largest=False).indices
        return {"idx": out.numpy()}
    return run


def _faiss_kn(d, p):
    faiss = need_faiss()
    index = faiss.IndexFlatL2(p["d"])
    index.add(d["Xtr"])

    def run():
        return {"idx": index.search(d["Xq"], p["k"])[1].astype(np.int64)}
    return run


# --- Manhattan distances ---------------------------------------------------------------------
def _tg_l1(d, p):
    import tensorgrad as tg
    A, B = tg.from_numpy(d["A"]), tg.from_numpy(d["B"])

    def run():
        return {"d": tg.cdist(A, B, metric="manhattan").numpy()}
    return run


def _np_l1(d, p):
    A, B = d["A"], d["B"]

    def run():      # broadcast in row blocks (a full N×M×D array would not fit)
        out = np.empty((A.shape[0], B.shape[0]), np.float32)
        for s in range(0, A.shape[0], 16):
            out[s:s + 16] = np.abs(A[s:s + 16, None, :] - B[None]).sum(-1)
        return {"d": out}
    return run


def _scipy_l1(d, p):
    from scipy.spatial.distance import cdist

    def run():
        return {"d": cdist(d["A"], d["B"], "cityblock")}
    return run


def _torch_l1(d, p):
    torch = need_torch()
    A, B = torch.from_numpy(d["A"]), torch.from_numpy(d["B"])

    def run():
        return {"d": torch.cdist(A, B, p=1).numpy()}
    return run


WORKLOADS = [
    Workload("cdist", "distance", "pairwise Euclidean distances (forward)",
             {"n": 500, "m": 5000, "d": 3072}, {"n": 200, "m": 2000, "d": 3072}, _cdist_data,
             {"tensorgrad": _tg_cdist, "numpy": _np_cdist, "torch": _torch_cdist,
              "sklearn": _sk_cdist},
             _cdist_size, rtol=1e-3, atol=1e-4, memory=True, requires=("cdist",)),
    Workload("knn_predict", "distance", f"k-nearest-neighbour prediction, k={K}",
             {"n": 5000, "m": 50000, "d": 128, "classes": 10},
             {"n": 1000, "m": 10000, "d": 128, "classes": 10}, _knn_data,
             {"tensorgrad": _tg_knn, "numpy": _np_knn, "torch": _torch_knn,
              "sklearn": _sk_knn},
             _knn_size, int_mismatch=0.002, memory=True,
             requires=("neighbors.KNeighborsClassifier",)),
    Workload("knn_kneighbors", "distance", "kneighbors at the CIFAR-10 shape (GEMM-bound)",
             {"n": 500, "m": 5000, "d": 3072, "k": 5}, {"n": 100, "m": 2000, "d": 3072, "k": 5},
             _kn_data, {"tensorgrad": _tg_kn, "numpy": _np_kn, "torch": _torch_kn,
                        "faiss": _faiss_kn},
             _kn_size, int_mismatch=0.002, memory=True,
             requires=("neighbors.KNeighborsClassifier",)),
    Workload("knn_kneighbors_large", "distance", "kneighbors, many queries, 128 features",
             {"n": 5000, "m": 50000, "d": 128, "k": 10}, {"n": 1000, "m": 10000, "d": 128,
                                                          "k": 10},
             _kn_data, {"tensorgrad": _tg_kn, "numpy": _np_kn, "torch": _torch_kn,
                        "faiss": _faiss_kn},
             _kn_size, int_mismatch=0.002, memory=True,
             requires=("neighbors.KNeighborsClassifier",)),
    Workload("cdist_manhattan", "distance", "pairwise Manhattan distances (forward)",
             {"n": 1000, "m": 10000, "d": 128}, {"n": 200, "m": 2000, "d": 128}, _cdist_data,
             {"tensorgrad": _tg_l1, "numpy": _np_l1, "torch": _torch_l1, "scipy": _scipy_l1},
             _cdist_size, rtol=1e-4, atol=1e-5, memory=True, requires=("cdist",)),
]
