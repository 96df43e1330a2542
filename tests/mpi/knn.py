"""Sharded exact kNN (uneven shards) against the single-process classifier."""
import numpy as np

import tensorgrad as tg
import tensorgrad.distributed as dist

dist.init()
r, W = dist.get_rank(), dist.get_world_size()
rng = np.random.default_rng(0)
cases = [
    # integer-valued features (like digits): every distance exact, many exact ties
    (rng.integers(0, 4, (901, 12)).astype(np.float32), rng.integers(0, 4, (150, 12))),
    (rng.standard_normal((1501, 37)).astype(np.float32), rng.standard_normal((203, 37))),
    (rng.standard_normal((777, 5)), rng.standard_normal((64, 5))),
]
for X, Q in cases:
    n = len(X)
    X[100:130] = X[0]                        # duplicates: ties broken by global index
    Q[:5] = X[0]
    y = np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, n)]
    bounds = np.linspace(0, n, W + 1).astype(int)
    bounds[1:-1] += np.arange(1, W) * 7      # uneven shards
    lo, hi = bounds[r], bounds[r + 1]
    for k in (1, 4, 11):
        ref = tg.neighbors.KNeighborsClassifier(k).fit(X, y)
        d0, i0 = ref.kneighbors(Q)
        clf = tg.neighbors.KNeighborsClassifier(n_neighbors=k, distributed=True)
        clf.fit(X[lo:hi], y[lo:hi])
        assert clf.n_samples_fit_ == n and list(clf.classes_) == list(ref.classes_)
        d1, i1 = clf.kneighbors(Q if r == 0 else None)      # rank 0's queries are used
        assert np.array_equal(i0.numpy(), i1.numpy()), (k, (i0.numpy() != i1.numpy()).sum())
        if X[0, 0] == np.round(X[0, 0]):
            assert np.array_equal(d0.numpy(), d1.numpy())
        else:   # the kernel's GEMM rounds a pair's distance by its tile position (1 ulp)
            assert np.allclose(d0.numpy(), d1.numpy(), rtol=1e-5, atol=0)
        assert np.array_equal(ref.predict(Q), clf.predict(Q))
try:
    tg.neighbors.KNeighborsClassifier(3, distributed=True).fit(np.ones((4, 2 + r)), np.ones(4))
except ValueError as e:
    assert "differ in features" in str(e), str(e)
else:
    raise AssertionError("no error for shards of different widths")
try:
    tg.neighbors.KNeighborsClassifier(4 * W + 1, distributed=True).fit(np.ones((4, 2)),
                                                                       np.ones(4))
except ValueError as e:
    assert f"({4 * W})" in str(e), str(e)
else:
    raise AssertionError("no error for k above the total")
print(f"rank {r} ok", flush=True)
