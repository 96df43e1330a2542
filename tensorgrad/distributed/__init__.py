"""Data-parallel training and collectives over MPI (``pip install "tensorgrad[mpi]"``).

Run a script under ``mpiexec -n N python script.py``; every process (a *rank*) runs the
same script. ``init()`` joins the job (one process without ``mpiexec`` is a job of one), and
the collectives work in place on the numpy buffer behind each tensor, without copies::

    import tensorgrad.distributed as dist
    dist.init()
    dist.all_reduce(t, op="mean")        # every rank now holds the mean of all ranks' t
    model = dist.DistributedDataParallel(model)      # gradients averaged during backward

Naming follows ``torch.distributed``. The communication is mpi4py's (an optional extra with
an MPI library from PyPI): importing this package without it raises ImportError naming the
extra. ``init()`` also makes an uncaught exception on any rank abort the whole job, so the
other ranks never wait forever in a collective.
"""
try:
    from mpi4py import MPI as _MPI  # noqa: F401  (initialises MPI, also for a job of one)
except ImportError as e:  # mpi4py missing, or present without an MPI library
    raise ImportError(
        f"tensorgrad.distributed needs mpi4py and an MPI library ({e}); install them with: "
        'pip install "tensorgrad[mpi]"') from e

from tensorgrad.distributed._comm import (
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    get_rank,
    get_world_size,
    init,
    is_initialized,
)
from tensorgrad.distributed.ddp import DistributedDataParallel
from tensorgrad.distributed.sampler import DistributedSampler

__all__ = [
    "DistributedDataParallel",
    "DistributedSampler",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "get_rank",
    "get_world_size",
    "init",
    "is_initialized",
]
