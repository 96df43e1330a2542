"""Nearest neighbours on the fused top-k distance kernel (``_kernels/distance.pyx``).

``KNeighborsClassifier``, ``KNeighborsRegressor`` and ``RadiusNeighborsClassifier`` follow
scikit-learn's estimator API (metrics: euclidean, sqeuclidean, cosine, inner_product,
manhattan; weights uniform or distance); ``cross_validate_k`` chooses k by cross-validation
on folds made with ``tg.chunk``. The N×M distance matrix is never built: extra memory is
O(N·k) plus one small tile per thread, and the training set may be a memory-mapped file.
"""
from tensorgrad.neighbors.knn import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    RadiusNeighborsClassifier,
    cross_validate_k,
    kneighbors,
)

__all__ = ["KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier",
           "cross_validate_k", "kneighbors"]
