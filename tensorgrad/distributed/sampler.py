"""DistributedSampler: each rank's share of an epoch's sample indices."""
import numbers

import numpy as np

from tensorgrad.distributed import _comm

__all__ = ["DistributedSampler"]


def _count(n, what, low):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < low:
        raise ValueError(f"DistributedSampler: {what} must be an integer >= {low}, got {n!r}")
    return int(n)


class DistributedSampler:
    """The indices of rank ``rank``'s share of ``n`` samples for one epoch (PyTorch's
    ``DistributedSampler``, over an index range instead of a dataset).

    Each epoch the indices 0..n-1 are shuffled by a generator seeded with ``seed + epoch``
    (the same order on every rank; call ``set_epoch(e)`` at the start of each epoch), then
    dealt round-robin: rank r gets positions r, r + W, r + 2W, ... Without ``drop_last`` the
    order is first padded with its own beginning to a multiple of W, so each rank gets
    ceil(n / W) indices (a few samples count twice); with it the tail is dropped (n // W each).
    Batches of b consecutive indices taken from each rank's share at the same step together
    form b·W consecutive entries of the epoch's order. ``n`` may also be a sized object
    (its ``len()``); ``num_replicas`` and ``rank`` default to the job's world size and rank.
    """

    def __init__(self, n, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not isinstance(n, numbers.Integral) and hasattr(n, "__len__"):
            n = len(n)
        self.n = _count(n, "n", 0)
        if num_replicas is None:
            num_replicas = _comm._comm("DistributedSampler").Get_size()
        if rank is None:
            rank = _comm._comm("DistributedSampler").Get_rank()
        self.num_replicas = _count(num_replicas, "num_replicas", 1)
        self.rank = _count(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is out of range for "
                             f"num_replicas={num_replicas}")
        self.shuffle = bool(shuffle)
        self.seed = _count(seed, "seed", 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        w = self.num_replicas
        self.num_samples = self.n // w if self.drop_last else -(-self.n // w)
        self.total_size = self.num_samples * w

    def set_epoch(self, epoch):
        """Use the order of epoch ``epoch`` (the same on every rank) from now on."""
        self.epoch = _count(epoch, "epoch", 0)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 ndarray."""
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        else:
            order = np.arange(self.n, dtype=np.int64)
        if self.total_size > self.n:
            order = np.resize(order, self.total_size)   # repeats the order from its start
        else:
            order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64, copy=False)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler(n={self.n}, num_replicas={self.num_replicas}, "
                f"rank={self.rank}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")
