"""tg.neighbors: KNeighborsClassifier and cross_validate_k.

Predictions equal scikit-learn's brute-force classifier on the digits data, the documented
tie rules hold, cross-validated k reaches >= 97% test accuracy on digits, and the fused
top-k search uses a small fraction of the memory of the full distance matrix.
"""
import tracemalloc

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.neighbors import KNeighborsClassifier, cross_validate_k, kneighbors

sk_neighbors = pytest.importorskip("sklearn.neighbors")


@pytest.fixture(scope="module")
def digits():
    X, y = tg.data.load_digits()
    X, y = X.numpy(), y.numpy()
    perm = np.random.default_rng(0).permutation(len(X))   # the set is ordered by writer
    X, y = X[perm], y[perm]
    return X[:1300], y[:1300], X[1300:], y[1300:]


def exact_order(xq, xt, k):
    """Reference top-k by (squared distance, index), from float64 differences."""
    xt = xt.astype(np.float64)
    dist, idx = [], []
    for q in xq.astype(np.float64):
        d2 = ((xt - q) ** 2).sum(1)
        order = np.lexsort((np.arange(len(xt)), d2))[:k]
        dist.append(np.sqrt(d2[order]))
        idx.append(order)
    return np.array(dist), np.array(idx)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_predictions_equal_sklearn_brute_on_digits(digits, k):
    Xtr, ytr, Xte, yte = digits
    sk = sk_neighbors.KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(Xtr, ytr)
    ours = KNeighborsClassifier(n_neighbors=k).fit(tg.from_numpy(Xtr), tg.from_numpy(ytr))
    pred = ours.predict(tg.from_numpy(Xte))
    assert isinstance(pred, tg.Tensor) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred.numpy(), sk.predict(Xte))
    dist, idx = ours.kneighbors(Xte)
    sk_dist, _ = sk.kneighbors(Xte, k)
    np.testing.assert_allclose(dist.numpy(), sk_dist, rtol=1e-5, atol=1e-6)
    ref_dist, ref_idx = exact_order(Xte, Xtr, k)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)     # ties -> smaller index
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-6)
    assert ours.score(Xte, yte) == pytest.approx(sk.score(Xte, yte))


def test_cross_validated_k_reaches_97_percent_on_digits(digits):
    Xtr, ytr, Xte, yte = digits
    ks = [1, 3, 5, 8, 10, 12, 15, 20]
    cv = cross_validate_k(Xtr, ytr, ks, n_folds=5)
    assert sorted(cv) == ks and all(len(v) == 5 for v in cv.values())
    assert all(0.8 < a <= 1.0 for v in cv.values() for a in v)
    best = max(ks, key=lambda k: (np.mean(cv[k]), -k))
    acc = KNeighborsClassifier(best).fit(Xtr, ytr).score(Xte, yte)
    assert acc >= 0.97, (best, acc)


def test_cross_validate_k_equals_separate_fits_on_chunk_folds():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((103, 6)).astype(np.float32)
    y = rng.integers(0, 4, 103)
    ks = [1, 2, 7]
    cv = cross_validate_k(tg.from_numpy(X), tg.from_numpy(y), ks, n_folds=4)
    xf, yf = tg.chunk(tg.from_numpy(X), 4), tg.chunk(tg.from_numpy(y), 4)
    assert [f.shape[0] for f in xf] == [26, 26, 26, 25]
    for k in ks:
        expected = []
        for i in range(4):
            xt = np.concatenate([f.numpy() for j, f in enumerate(xf) if j != i])
            yt = np.concatenate([f.numpy() for j, f in enumerate(yf) if j != i])
            expected.append(KNeighborsClassifier(k).fit(xt, yt).score(xf[i], yf[i]))
        assert cv[k] == pytest.approx(expected)


def test_tie_rules():
    # query at 0; training points at +1 (label 5) and -1 (label 3): a tie in distance
    X = np.array([[1.0], [-1.0], [4.0]], np.float32)
    y = np.array([5, 3, 3])
    q = np.zeros((1, 1), np.float32)
    one = KNeighborsClassifier(1).fit(X, y)
    assert one.kneighbors(q)[1].tolist() == [[0]]     # distance tie -> smaller index
    assert one.predict(q).tolist() == [5]
    two = KNeighborsClassifier(2).fit(X, y)
    assert two.predict(q).tolist() == [3]             # vote tie 1:1 -> smaller label
    dist, idx = two.kneighbors(q, n_neighbors=3)
    assert idx.tolist() == [[0, 1, 2]] and dist.tolist() == [[1.0, 1.0, 4.0]]


def test_inputs_tensor_or_ndarray_and_other_label_types():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 3))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    q = rng.standard_normal((10, 3))
    a = KNeighborsClassifier(3).fit(X, y).predict(q)
    b = KNeighborsClassifier(3).fit(tg.from_numpy(X), y).predict(tg.from_numpy(q))
    assert isinstance(a, np.ndarray) and a.dtype.kind == "U"
    np.testing.assert_array_equal(a, b)
    Xi = rng.integers(0, 5, (40, 4))                  # integer features -> float64
    clf = KNeighborsClassifier(2).fit(Xi, rng.integers(0, 2, 40))
    assert clf.kneighbors(Xi[:3])[0].dtype == np.float64
    np.testing.assert_array_equal(clf.kneighbors(Xi[:3])[0].numpy()[:, 0], 0.0)


def test_functional_kneighbors_matches_exact():
    rng = np.random.default_rng(3)
    xq = rng.standard_normal((25, 8))
    xt = rng.standard_normal((300, 8))
    dist, idx = kneighbors(xq, xt, 6)
    ref_dist, ref_idx = exact_order(xq, xt, 6)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kneighbors_distances_are_the_float64_distances_rounded_once(dtype):
    # The documented error bound: every returned key is recomputed in double from the
    # input rows, then rounded once to the dtype (half an ulp, plus the double sum's error).
    rng = np.random.default_rng(4)
    xq = rng.standard_normal((50, 40)).astype(dtype)
    xt = rng.standard_normal((700, 40)).astype(dtype)
    dist, idx = kneighbors(xq, xt, 5)
    ref_dist, ref_idx = exact_order(xq, xt, 5)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    ulp = np.finfo(dtype).eps / 2
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1.01 * ulp + 64 * 2.0 ** -53)


def test_few_queries_many_train_rows_and_threads():
    """Few query rows: the training rows are split into per-thread segments and merged;
    the result must not depend on the thread count."""
    rng = np.random.default_rng(4)
    xt = rng.standard_normal((200_000, 4)).astype(np.float32)
    xq = rng.standard_normal((3, 4)).astype(np.float32)
    tg.set_num_threads(2)
    d2, i2 = kneighbors(xq, xt, 7)
    tg.set_num_threads(1)
    d1, i1 = kneighbors(xq, xt, 7)
    np.testing.assert_array_equal(i1.numpy(), i2.numpy())
    np.testing.assert_array_equal(d1.numpy(), d2.numpy())
    full = ((xq[:, None, :].astype(np.float64) - xt[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2.numpy() ** 2, np.sort(full, 1)[:, :7], rtol=1e-4)


def test_peak_memory_well_under_the_distance_matrix():
    rng = np.random.default_rng(5)
    xt = rng.standard_normal((20_000, 32)).astype(np.float32)
    xq = rng.standard_normal((2_000, 32)).astype(np.float32)
    clf = KNeighborsClassifier(5).fit(xt, np.arange(20_000) % 10)
    clf.predict(xq[:10])                              # warm-up
    tracemalloc.start()
    pred = clf.predict(xq)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_matrix = 2_000 * 20_000 * 4                  # 160 MB
    assert pred.shape == (2_000,)
    assert peak < 0.05 * full_matrix, peak


def test_errors():
    X = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 0, 1])
    with pytest.raises(RuntimeError, match="KNeighborsClassifier.predict.*fit"):
        KNeighborsClassifier(1).predict(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        KNeighborsClassifier(1).kneighbors(X)
    with pytest.raises(ValueError, match=r"n_neighbors=5 .*\(4\)"):
        KNeighborsClassifier(5).fit(X, y)
    clf = KNeighborsClassifier(2).fit(X, y)
    with pytest.raises(ValueError, match=r"n_neighbors=9"):
        clf.kneighbors(X, n_neighbors=9)
    with pytest.raises(ValueError, match=r"2 features .*3 .*\(5, 2\).*\(4, 3\)"):
        clf.predict(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="one label per row"):
        KNeighborsClassifier(1).fit(X, y[:3])
    with pytest.raises(ValueError, match="2-D"):
        KNeighborsClassifier(1).fit(np.zeros(4), y)
    with pytest.raises(ValueError, match="positive integer"):
        KNeighborsClassifier(0)
    with pytest.raises(ValueError, match=r"kneighbors.*\(2, 2\).*\(4, 3\)"):
        kneighbors(np.zeros((2, 2)), X, 1)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full((1, 3), np.nan))
    with pytest.raises(ValueError, match="n_folds"):
        cross_validate_k(X, y, [1], n_folds=1)
    with pytest.raises(ValueError, match=r"n_neighbors=4"):
        cross_validate_k(X, y, [1, 4], n_folds=2)
