"""The scikit-learn-style nearest-neighbour estimators: KNeighborsClassifier,
KNeighborsRegressor, RadiusNeighborsClassifier, and cross_validate_k.

The search itself (tiling, exactness, the error bound of returned distances) is in
``_search.py``. Ties in distance go to the smaller training index; ties in the vote go to the
smaller label (what ``np.argmax`` over per-class totals gives), as in scikit-learn.
"""
import numbers

import numpy as np

from tensorgrad._tensor import _wrap
from tensorgrad.function import no_grad
from tensorgrad.neighbors import _sharded
from tensorgrad.neighbors._search import (
    _check_k,
    _check_metric,
    _check_weights,
    _dtype_of,
    _features,
    _knn_arrays,
    _radius_arrays,
    _to_numpy,
    _training_set,
    kneighbors,
)

__all__ = ["KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier",
           "cross_validate_k", "kneighbors"]


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
