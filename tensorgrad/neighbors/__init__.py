"""k-nearest neighbours on the fused top-k distance kernel (``_kernels/distance.pyx``).

``KNeighborsClassifier`` follows scikit-learn's estimator API; ``cross_validate_k`` chooses
k by cross-validation on folds made with ``tg.chunk``. The N×M distance matrix is never
built: extra memory is O(N·k) plus one small tile per thread.
"""
from tensorgrad.neighbors.knn import KNeighborsClassifier, cross_validate_k, kneighbors

__all__ = ["KNeighborsClassifier", "cross_validate_k", "kneighbors"]
