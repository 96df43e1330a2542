"""Distance workloads (issue 4): pairwise Euclidean distances at the CIFAR-10 shapes of the
kNN assignment, and k-nearest-neighbour prediction. Both report peak memory as well as time.
"""
import numpy as np

from tensorgrad.benchmarks.base import Workload, need_sklearn, need_torch

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
]
