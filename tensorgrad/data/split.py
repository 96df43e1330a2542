"""Mini-batches and a deterministic train/validation/test split."""
import numbers

import numpy as np

from ._util import as_array, to_tensor


def _rng(seed):
    """A numpy Generator: ``seed`` itself when it is one, tensorgrad's global generator for
    None (so ``tg.manual_seed`` makes shuffling repeatable), else a new one seeded by it."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        from tensorgrad.random import get_generator  # late: tensorgrad imports this package

        return get_generator()
    return np.random.default_rng(seed)


def _check_pair(X, y, who):
    X, y = as_array(X), as_array(y)
    if X.ndim < 1 or y.ndim < 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{who}: X and y must have the same number of samples (first axis); "
                         f"got shapes {X.shape} and {y.shape}")
    return X, y


def batches(X, y, batch_size, shuffle=True, seed=None, drop_last=False):
    """Iterate over ``(X_batch, y_batch)`` Tensor pairs of ``batch_size`` samples.

    ``shuffle`` visits the samples in a random order drawn from ``seed`` (an int, a
    ``numpy.random.Generator`` -- pass the same Generator every epoch for a new but
    repeatable order each time -- or None). Without shuffling the batches are views of X
    and y (no copy). The last batch is smaller when ``batch_size`` does not divide N, unless
    ``drop_last`` drops it. X and y may be Tensors or array-likes; they are checked when
    ``batches`` is called, not when iteration starts.
    """
    X, y = _check_pair(X, y, "batches")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    n = X.shape[0]
    order = _rng(seed).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    return _iterate(X, y, int(batch_size), order, stop)


def _iterate(X, y, batch_size, order, stop):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if order is None:
            yield to_tensor(X[start:end]), to_tensor(y[start:end])
        else:
            idx = order[start:end]
            yield to_tensor(X[idx]), to_tensor(y[idx])


def train_val_test_split(X, y, val=0.1, test=0.2, seed=0, stratify=True):
    """Split samples into train, validation and test sets, the same way for the same seed.

    The test set gets ``round(test * N)`` samples, the validation set ``round(val * N)``, the
    training set the rest. With ``stratify`` each class is spread over the three sets in
    proportion to its size (within one sample): every class's members are shuffled and given
    evenly spaced ranks in [0, 1), and samples are dealt to test, then validation, then train
    in rank order.

    Returns ``((X_train, y_train), (X_val, y_val), (X_test, y_test))`` as Tensors.
    """
    X, y = _check_pair(X, y, "train_val_test_split")
    n = X.shape[0]
    for name, frac in (("val", val), ("test", test)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"train_val_test_split: {name} must be in [0, 1), got {frac}")
    n_test, n_val = round(test * n), round(val * n)
    if n - n_test - n_val < 1:
        raise ValueError(f"train_val_test_split: val={val} and test={test} leave no training "
                         f"samples out of {n}")
    rng = np.random.default_rng(seed)
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"train_val_test_split: stratify needs 1-D labels, got {y.shape}")
        rank = np.empty(n)
        classes, inverse = np.unique(y, return_inverse=True)
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(inverse == c))
            rank[members] = (np.arange(len(members)) + 0.5) / len(members)
        order = np.lexsort((rng.random(n), rank))  # random tie-break between classes
    else:
        order = rng.permutation(n)
    parts = (order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test])
    return tuple((to_tensor(X[idx]), to_tensor(y[idx])) for idx in parts)
