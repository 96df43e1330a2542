"""tg.neighbors beyond Euclidean kNN classification (issue 15).

Every metric returns the neighbours of a float64 brute force on adversarial float32 data
(far from the origin, near-duplicates, exact duplicates with ties to the lower index); the
estimators (weights, predict_proba, the regressor, radius search and the radius classifier)
equal scikit-learn's brute force; a training set given as a memory-mapped ``.npy`` file is
searched in chunks within a bounded amount of memory and gives the in-memory answer.
"""
import tracemalloc

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    RadiusNeighborsClassifier,
    kneighbors,
)
from tensorgrad.neighbors import _search as knn_module

sk_neighbors = pytest.importorskip("sklearn.neighbors")

METRICS = ("euclidean", "sqeuclidean", "cosine", "inner_product", "manhattan")


def ref_keys(q, t, metric):
    """float64 brute-force keys [N, M] (smaller is nearer) from the float32 rows, written
    without cancellation: differences first; cosine as ½||x/|x| - y/|y|||²."""
    q, t = q.astype(np.float64), t.astype(np.float64)
    if metric in ("euclidean", "sqeuclidean"):
        return ((q[:, None, :] - t[None]) ** 2).sum(-1)
    if metric == "manhattan":
        return np.abs(q[:, None, :] - t[None]).sum(-1)
    if metric == "inner_product":
        return -(q[:, None, :] * t[None]).sum(-1)
    uq = q / np.linalg.norm(q, axis=1, keepdims=True)
    ut = t / np.linalg.norm(t, axis=1, keepdims=True)
    return 0.5 * ((uq[:, None, :] - ut[None]) ** 2).sum(-1)


def ref_knn(q, t, k, metric):
    keys = ref_keys(q, t, metric)
    idx = np.array([np.lexsort((np.arange(t.shape[0]), row))[:k] for row in keys])
    kk = np.take_along_axis(keys, idx, 1)
    dist = np.sqrt(kk) if metric == "euclidean" else (-kk if metric == "inner_product" else kk)
    return dist, idx


def adversarial(rng, d=16):
    """Training rows 1000 + N(0, 1) in every coordinate, near-duplicates 1e-3 apart and exact
    duplicates (shuffled); queries: training rows, near-duplicates of them, fresh points."""
    base = 1000.0 + rng.standard_normal((150, d))
    near = base[:60] + 1e-3 * rng.standard_normal((60, d))
    dup = base[60:90].copy()
    t = np.concatenate([base, near, dup])[rng.permutation(240)].astype(np.float32)
    q = np.concatenate([t[:20], t[20:40] + 1e-3 * rng.standard_normal((20, d)),
                        1000.0 + rng.standard_normal((20, d))]).astype(np.float32)
    return q, t


@pytest.mark.parametrize("metric", METRICS)
def test_float32_neighbours_equal_the_float64_brute_force_on_adversarial_data(metric):
    rng = np.random.default_rng(0)
    q, t = adversarial(rng)
    dist, idx = kneighbors(q, t, 7, metric=metric)
    ref_dist, ref_idx = ref_knn(q, t, 7, metric)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    assert dist.dtype == np.float32
    # the documented bound: the double value rounded once (cosine: of the ½||u - v||² form)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=2 ** -24 + 1e-12, atol=0)


@pytest.mark.parametrize("metric", METRICS)
def test_exact_duplicates_tie_to_the_lower_index(metric):
    rng = np.random.default_rng(1)
    row = (1000 + rng.standard_normal(5)).astype(np.float32)
    others = (1000 + rng.standard_normal((6, 5))).astype(np.float32)
    t = np.concatenate([others[:2], row[None], others[2:4], row[None], row[None], others[4:]])
    _, idx = kneighbors(row[None], t, 3, metric=metric)
    if metric == "inner_product":      # the largest inner product need not be the row itself
        _, ref = ref_knn(row[None], t, 3, metric)
        np.testing.assert_array_equal(idx.numpy(), ref)
    else:
        assert idx.tolist() == [[2, 5, 6]]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_metric_matches_the_reference_on_random_data_with_threads(metric, dtype):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((70, 33)).astype(dtype)
    t = rng.standard_normal((3000, 33)).astype(dtype)
    ref_dist, ref_idx = ref_knn(q, t, 6, metric)
    for threads in (1, 2):
        tg.set_num_threads(threads)
        dist, idx = kneighbors(q, t, 6, metric=metric)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        rtol = 2 ** -24 + 1e-12 if dtype == np.float32 else 1e-13     # double sums differ
        np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=rtol)


def _data(seed, n=300, m=80, d=6, classes=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, classes, n)
    return X, y, rng.standard_normal((m, d))


SK_METRICS = ("euclidean", "sqeuclidean", "cosine", "manhattan")


@pytest.mark.parametrize("metric", SK_METRICS)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier_equals_sklearn_brute(metric, weights):
    X, y, Q = _data(3)
    Q[0] = X[5]                                       # a query at distance 0
    sk = sk_neighbors.KNeighborsClassifier(7, weights=weights, metric=metric,
                                           algorithm="brute").fit(X, y)
    ours = KNeighborsClassifier(7, weights=weights, metric=metric).fit(X, y)
    np.testing.assert_array_equal(ours.predict(Q).numpy(), sk.predict(Q))
    np.testing.assert_allclose(ours.predict_proba(Q).numpy(), sk.predict_proba(Q), atol=1e-12)
    dist, idx = ours.kneighbors(Q)
    sk_dist, sk_idx = sk.kneighbors(Q)
    np.testing.assert_array_equal(idx.numpy(), sk_idx)
    np.testing.assert_allclose(dist.numpy(), sk_dist, rtol=1e-9, atol=1e-12)
    assert ours.score(Q, sk.predict(Q)) == 1.0


@pytest.mark.parametrize("metric", SK_METRICS)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_regressor_equals_sklearn_brute(metric, weights):
    X, _, Q = _data(4)
    rng = np.random.default_rng(5)
    for y in (rng.standard_normal(300), rng.standard_normal((300, 3))):
        sk = sk_neighbors.KNeighborsRegressor(5, weights=weights, metric=metric,
                                              algorithm="brute").fit(X, y)
        ours = KNeighborsRegressor(5, weights=weights, metric=metric).fit(X, y)
        np.testing.assert_allclose(ours.predict(Q).numpy(), sk.predict(Q), rtol=1e-10)
        yq = sk.predict(Q) + 0.1 * rng.standard_normal(sk.predict(Q).shape)
        assert ours.score(Q, yq) == pytest.approx(sk.score(Q, yq), rel=1e-10)


@pytest.mark.parametrize("metric", SK_METRICS)
def test_radius_neighbors_equal_sklearn(metric):
    X, y, Q = _data(6)
    radius = {"euclidean": 1.5, "sqeuclidean": 2.0, "cosine": 0.2, "manhattan": 3.0}[metric]
    sk = sk_neighbors.NearestNeighbors(radius=radius, metric=metric,
                                       algorithm="brute").fit(X)
    sk_dist, sk_idx = sk.radius_neighbors(Q, sort_results=True)
    ours = KNeighborsClassifier(3, metric=metric).fit(X, y)
    dist, idx = ours.radius_neighbors(Q, radius)
    assert len(dist) == len(idx) == len(Q)
    assert sum(len(i) for i in idx) > len(Q)          # not a vacuous comparison
    for r in range(len(Q)):
        np.testing.assert_array_equal(idx[r], sk_idx[r])
        np.testing.assert_allclose(dist[r], sk_dist[r], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("metric", SK_METRICS)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_radius_classifier_equals_sklearn(metric, weights):
    X, y, Q = _data(7)
    radius = {"euclidean": 1.5, "sqeuclidean": 2.0, "cosine": 0.2, "manhattan": 3.0}[metric]
    sk = sk_neighbors.RadiusNeighborsClassifier(radius, weights=weights, metric=metric,
                                                algorithm="brute", outlier_label=0).fit(X, y)
    ours = RadiusNeighborsClassifier(radius, weights=weights, metric=metric,
                                     outlier_label=0).fit(X, y)
    Q = np.concatenate([Q, np.full((1, 6), 50.0)])    # an outlier (but for cosine)
    np.testing.assert_array_equal(ours.predict(Q).numpy(), sk.predict(Q))
    np.testing.assert_allclose(ours.predict_proba(Q).numpy(), sk.predict_proba(Q), atol=1e-12)
    if metric != "cosine":
        assert ours.predict(Q).numpy()[-1] == 0       # the outlier label (a class)
        with pytest.raises(ValueError, match="RadiusNeighborsClassifier.predict: no training"):
            RadiusNeighborsClassifier(radius, metric=metric).fit(X, y).predict(Q[-1:])


def test_inner_product_is_largest_first():
    X, y, Q = _data(8)
    clf = KNeighborsClassifier(4, metric="inner_product").fit(X, y)
    dist, idx = clf.kneighbors(Q)
    ip = Q @ X.T
    ref = np.argsort(-ip, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(idx.numpy(), ref)
    np.testing.assert_allclose(dist.numpy(), np.take_along_axis(ip, ref, 1), rtol=1e-12)
    assert (np.diff(dist.numpy(), axis=1) <= 0).all()
    full = tg.cdist(Q, X, metric="inner_product").numpy()
    np.testing.assert_allclose(full, ip, rtol=1e-12)
    _, ridx = clf.radius_neighbors(Q[:3], radius=1.0)      # inner product >= 1
    for r in range(3):
        np.testing.assert_array_equal(np.sort(ridx[r]), np.flatnonzero(ip[r] >= 1.0))


def test_bad_options_name_the_option_and_value():
    X, y, _ = _data(9)
    with pytest.raises(ValueError, match=r"KNeighborsClassifier: weights .*'closest'"):
        KNeighborsClassifier(3, weights="closest")
    with pytest.raises(ValueError, match=r"KNeighborsRegressor: metric .*'chebyshev'"):
        KNeighborsRegressor(3, metric="chebyshev")
    with pytest.raises(ValueError, match=r"weights='distance' .*inner_product"):
        KNeighborsClassifier(3, weights="distance", metric="inner_product")
    with pytest.raises(ValueError, match=r"RadiusNeighborsClassifier: radius .*-1"):
        RadiusNeighborsClassifier(-1.0)
    with pytest.raises(ValueError, match=r"kneighbors: metric .*'l3'"):
        kneighbors(X, X, 2, metric="l3")
    with pytest.raises(ValueError, match=r"cdist: metric .*'cityblock'"):
        tg.cdist(X, X, metric="cityblock")
    with pytest.raises(ValueError, match=r"cdist: squared=True .*'manhattan'"):
        tg.cdist(X, X, squared=True, metric="manhattan")
    with pytest.raises(TypeError):
        KNeighborsClassifier(3, algorithm="brute")         # no unknown options
    with pytest.raises(RuntimeError, match="KNeighborsRegressor.predict: .*not fitted"):
        KNeighborsRegressor().predict(X)
    with pytest.raises(ValueError, match=r"KNeighborsRegressor.fit: .*\(300, 6\).*\(4,\)"):
        KNeighborsRegressor().fit(X, y[:4])


# --- out-of-core ---------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_memory_mapped_training_set_streams_in_bounded_memory(tmp_path, monkeypatch, metric):
    rng = np.random.default_rng(10)
    X = rng.standard_normal((120_000, 24)).astype(np.float32)     # 11.5 MB on disk
    y = rng.integers(0, 5, 120_000)
    Q = rng.standard_normal((64, 24)).astype(np.float32)
    path = tmp_path / "train.npy"
    np.save(path, X)
    expected = KNeighborsClassifier(5, metric=metric).fit(X, y)
    exp_dist, exp_idx = expected.kneighbors(Q)
    monkeypatch.setattr(knn_module, "CHUNK_BYTES", 1 << 18)      # 256 KB of rows at a time
    for source in (str(path), np.load(path, mmap_mode="r")):
        clf = KNeighborsClassifier(5, metric=metric).fit(source, y)
        assert isinstance(clf._X, np.memmap)                     # never copied into memory
        clf.kneighbors(Q[:2])                                    # warm-up
        tracemalloc.start()
        dist, idx = clf.kneighbors(Q)
        pred = clf.predict(Q)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        np.testing.assert_array_equal(idx.numpy(), exp_idx.numpy())
        np.testing.assert_array_equal(dist.numpy(), exp_dist.numpy())
        np.testing.assert_array_equal(pred.numpy(), expected.predict(Q).numpy())
        assert peak < X.nbytes / 8, peak      # the training set is 8× what the search may use
    radius = float(exp_dist.numpy()[:4, 4].max()) * (1 + 1e-6)   # >= 5 neighbours per row
    rd, ri = clf.radius_neighbors(Q[:4], radius)
    ed, ei = expected.radius_neighbors(Q[:4], radius)
    assert min(len(i) for i in ri) >= 5
    for r in range(4):
        np.testing.assert_array_equal(ri[r], ei[r])
        np.testing.assert_array_equal(rd[r], ed[r])


def test_regressor_on_a_memory_map(tmp_path):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((5000, 8))
    y = X[:, 0] * 2 + 0.1 * rng.standard_normal(5000)
    np.save(tmp_path / "x.npy", X)
    a = KNeighborsRegressor(4, weights="distance").fit(tmp_path / "x.npy", y)
    b = KNeighborsRegressor(4, weights="distance").fit(X, y)
    Q = rng.standard_normal((30, 8))
    np.testing.assert_array_equal(a.predict(Q).numpy(), b.predict(Q).numpy())


@pytest.mark.parametrize("metric", METRICS)
def test_fast_path_and_exact_path_agree(metric):
    """Random data settles on the fast path (approximate lists, verified); data far from the
    origin fails the verification and takes the exact path. Both give the same answer."""
    rng = np.random.default_rng(12)
    for q, t in ((rng.standard_normal((40, 20)).astype(np.float32),
                  rng.standard_normal((900, 20)).astype(np.float32)), adversarial(rng)):
        dist, idx = knn_module._knn_arrays(q, t, 5, metric)
        exact_d = np.empty_like(dist)
        exact_i = np.empty_like(idx)
        knn_module._knn_exact(q, t, 5, metric, exact_d, exact_i)
        np.testing.assert_array_equal(idx, exact_i)
        np.testing.assert_array_equal(dist, exact_d)


def _approx_lists(q, t, k2, tile_cols, nseg, prefilter):
    from tensorgrad._kernels import distance as DK
    n = q.shape[0]
    ha = np.full((nseg, n, k2), np.inf)
    hb = np.zeros((nseg, n, k2))
    hi = np.full((nseg, n, k2), np.iinfo(np.int64).max, dtype=np.int64)
    qn = np.empty(n)
    DK.row_sqnorms(q, qn)
    slack = knn_module._slack("euclidean", q.shape[1], q.dtype)
    DK.knn_chunk_approx(q, t, 0, 0, slack, qn, ha, hb, hi, np.zeros(1), 16, tile_cols,
                        prefilter)
    return ha, hb, hi


def _prefilter_cases(rng, d=12):
    """Data for the float32 block prefilter of the squared Euclidean fast path: random rows;
    rows far from the origin; rows all at nearly the same distance from the queries (keys
    within rounding of the running threshold); and far rows except a few near ones at the
    ends and starts of the 32-entry blocks and at the last index."""
    yield rng.standard_normal((20, d)), rng.standard_normal((701, d))
    yield adversarial(rng, d)
    centre = rng.standard_normal(d)
    u = rng.standard_normal((701, d))
    yield (centre + 1e-6 * rng.standard_normal((20, d)),
           centre + 3.0 * u / np.linalg.norm(u, axis=1, keepdims=True))
    t = 100.0 + rng.standard_normal((701, d))
    near = [0, 31, 32, 63, 64, 95, 300, 319, 320, 700]
    t[near] = rng.standard_normal((len(near), d))
    yield rng.standard_normal((20, d)), t


def test_float32_prefilter_keeps_the_lists_of_the_plain_scan():
    """The vectorised float prefilter only skips blocks the double test would reject in
    full: the approximate lists are bit-identical with it off, for tile widths that are and
    are not multiples of the block, one or two training segments."""
    rng = np.random.default_rng(13)
    for q, t in _prefilter_cases(rng):
        q, t = q.astype(np.float32), t.astype(np.float32)
        for tile_cols in (45, 64, 100, 701):
            for nseg in (1, 2):
                on = _approx_lists(q, t, 13, tile_cols, nseg, True)
                off = _approx_lists(q, t, 13, tile_cols, nseg, False)
                for a, b in zip(on, off):
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tile", [(16, 45), (16, 100)])
def test_float32_prefilter_cases_match_the_reference(monkeypatch, tile):
    monkeypatch.setattr(knn_module, "KNN_TILE", tile)
    rng = np.random.default_rng(14)
    for q, t in _prefilter_cases(rng):
        q, t = q.astype(np.float32), t.astype(np.float32)
        for metric in ("euclidean", "sqeuclidean"):
            dist, idx = kneighbors(q, t, 5, metric=metric)
            ref_dist, ref_idx = ref_knn(q, t, 5, metric)
            np.testing.assert_array_equal(idx.numpy(), ref_idx)
            np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=2 ** -24 + 1e-12)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kneighbors_rejects_nan_and_infinity(metric, dtype):
    """float32 inputs are checked through the kernel's row norms (no separate pass), the
    others by ``_check_finite``: either way a NaN or infinity anywhere raises; the largest
    finite values do not."""
    rng = np.random.default_rng(15)
    q = rng.standard_normal((5, 6)).astype(dtype)
    t = rng.standard_normal((3000, 6)).astype(dtype)
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (1499, 3), (2999, 5)):
            tb = t.copy()
            tb[where] = bad
            with pytest.raises(ValueError, match="NaN or infinity"):
                kneighbors(q, tb, 3, metric=metric)
        qb = q.copy()
        qb[4, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            kneighbors(qb, t, 3, metric=metric)
    big = t.copy()
    big[7] = np.finfo(dtype).max
    kneighbors(q, big, 3, metric=metric)
