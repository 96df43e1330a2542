"""The process group (MPI's COMM_WORLD) and the collectives on tensors.

Every collective hands MPI the tensor's own numpy buffer (``t._data``): no copy is made, so
the tensor must be C-contiguous and writable (an error says so otherwise). Before moving any
data, the ranks exchange a small signature of what they were called with (the collective, its
op or source, the dtype and the shape): a mismatch raises the same ValueError on every rank,
naming each rank's shape and dtype, instead of a truncation error or a hang inside MPI.
"""
import sys
import time
import zlib

import numpy as np
from mpi4py import MPI

from tensorgrad._tensor import Tensor, _wrap

__all__ = ["all_gather", "all_reduce", "barrier", "broadcast", "get_rank", "get_world_size",
           "init", "is_initialized"]

_state = {"comm": None, "hook": None}

_OPS = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
_DTYPES = [np.dtype(t) for t in (np.float32, np.float64, np.int8, np.int16, np.int32,
                                 np.int64, np.uint8, np.bool_)]
_CODE = {dt: i for i, dt in enumerate(_DTYPES)}
_COLLECTIVES = ("all_reduce", "broadcast", "all_gather")
_MAX_DIMS = 8
_SIG_LEN = 4 + _MAX_DIMS


def init():
    """Join the MPI job (idempotent). Works without ``mpiexec`` too: a job of one process.

    With more than one rank it installs a ``sys.excepthook`` that prints the traceback and
    then aborts the whole job (``MPI_Abort``), as ``python -m mpi4py`` does: an exception on
    one rank then ends every rank within a second rather than leaving them in a collective.
    """
    if _state["comm"] is not None:
        return
    comm = MPI.COMM_WORLD
    _state["comm"] = comm
    if comm.Get_size() > 1 and _state["hook"] is None:
        previous = sys.excepthook

        def abort_on_exception(exc_type, exc, tb):
            previous(exc_type, exc, tb)
            sys.stderr.write(f"tensorgrad.distributed: rank {comm.Get_rank()} of "
                             f"{comm.Get_size()} raised {exc_type.__name__}; aborting the MPI "
                             f"job\n")
            sys.stderr.flush()
            # the launcher forwards a rank's output asynchronously and stops forwarding when
            # the job is aborted: give it a moment, so the traceback reaches the user
            time.sleep(0.5)
            comm.Abort(1)

        _state["hook"] = abort_on_exception
        sys.excepthook = abort_on_exception


def is_initialized():
    """True once ``init()`` has been called in this process."""
    return _state["comm"] is not None


def _comm(op):
    comm = _state["comm"]
    if comm is None:
        raise RuntimeError(f"tensorgrad.distributed.{op}: call tensorgrad.distributed.init() "
                           f"first")
    return comm


def get_rank():
    """This process's rank, 0 .. world size - 1."""
    return _comm("get_rank").Get_rank()


def get_world_size():
    """The number of processes in the job (1 without ``mpiexec``)."""
    return _comm("get_world_size").Get_size()


def barrier():
    """Wait until every rank has called ``barrier()``."""
    _comm("barrier").Barrier()


def _buffer(t, op):
    """The tensor's own ndarray, checked to be usable by MPI in place."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    a = t._data
    if a.dtype not in _CODE:
        raise TypeError(f"{op}: unsupported dtype {a.dtype} (float32/64, int8/16/32/64, uint8 "
                        f"and bool are supported)")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: the tensor of shape {a.shape} is not contiguous (strides "
                         f"{t.stride()}); collectives work in place on the tensor's buffer, "
                         f"so pass t.contiguous() (and use the result)")
    return a


def _signature(a, what, extra):
    sig = np.zeros(_SIG_LEN, np.int64)
    sig[0] = _COLLECTIVES.index(what)
    sig[1] = extra
    sig[2] = _CODE[a.dtype]
    sig[3] = a.ndim
    dims = a.shape[:_MAX_DIMS]
    sig[4:4 + len(dims)] = dims
    if a.ndim > _MAX_DIMS:      # more dims than the signature holds: a checksum of the rest
        sig[_SIG_LEN - 1] = zlib.crc32(repr(a.shape[_MAX_DIMS - 1:]).encode())
    return sig


def _describe(sig):
    what = _COLLECTIVES[int(sig[0])]
    ndim = int(sig[3])
    dims = tuple(int(d) for d in sig[4:4 + min(ndim, _MAX_DIMS)])
    shape = dims if ndim <= _MAX_DIMS else dims[:-1] + ("...",)
    return f"{what} of shape {shape} {_DTYPES[int(sig[2])]}"


def _check_same(comm, a, op, extra=0, extra_name=None):
    """Raise the same ValueError on every rank unless all ranks called ``op`` alike."""
    if comm.Get_size() == 1:
        return
    sig = _signature(a, op, extra)
    sigs = np.empty((comm.Get_size(), _SIG_LEN), np.int64)
    comm.Allgather(sig, sigs)
    if (sigs == sigs[0]).all():
        return
    if (sigs[:, :2] == sigs[0, :2]).all():
        ranks = "; ".join(f"rank {r}: {_describe(s)}" for r, s in enumerate(sigs))
        raise ValueError(f"{op}: the ranks passed tensors of different shapes or dtypes "
                         f"({ranks}); every rank must pass the same shape and dtype")
    calls = "; ".join(f"rank {r}: {_COLLECTIVES[int(s[0])]}"
                      + (f" {extra_name}={int(s[1])}" if extra_name else "")
                      for r, s in enumerate(sigs))
    raise ValueError(f"{op}: the ranks called different collectives ({calls}); every rank "
                     f"must make the same calls in the same order")


def all_reduce(t, op="sum"):
    """Combine ``t`` over all ranks, in place: ``op`` is "sum", "mean", "max" or "min".

    Every rank ends with the same values. ``"mean"`` is the sum divided by the world size
    (float tensors only). Returns None, like ``torch.distributed.all_reduce``.
    """
    comm = _comm("all_reduce")
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {sorted(_OPS)}, got {op!r}")
    a = _buffer(t, "all_reduce")
    if op == "mean" and a.dtype.kind != "f":
        raise TypeError(f"all_reduce: op='mean' needs a float tensor, got dtype {a.dtype}")
    if not a.flags.writeable:
        raise ValueError(f"all_reduce: the tensor of shape {a.shape} is read-only")
    _check_same(comm, a, "all_reduce", sorted(_OPS).index(op), "op")
    if comm.Get_size() > 1 and a.size:
        comm.Allreduce(MPI.IN_PLACE, a, op=_OPS[op])
        if op == "mean":
            np.divide(a, comm.Get_size(), out=a)
    t._version[0] += 1


def broadcast(t, src=0):
    """Overwrite ``t`` on every rank with rank ``src``'s values, in place; returns None."""
    comm = _comm("broadcast")
    size = comm.Get_size()
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < size:
        raise ValueError(f"broadcast: src must be a rank in [0, {size}), got {src!r}")
    a = _buffer(t, "broadcast")
    if not a.flags.writeable:
        raise ValueError(f"broadcast: the tensor of shape {a.shape} is read-only")
    _check_same(comm, a, "broadcast", int(src), "src")
    if size > 1 and a.size:
        comm.Bcast(a, root=int(src))
        if comm.Get_rank() != src:
            t._version[0] += 1


def all_gather(t):
    """Every rank's ``t``, as a list of world-size tensors in rank order (on every rank).

    Like ``torch.distributed.all_gather``'s output list (which it returns rather than filling
    in). The tensors are views of one contiguous [world size, *t.shape] array, received in
    place: ``tg.stack(result)`` gives it as one tensor.
    """
    comm = _comm("all_gather")
    a = _buffer(t, "all_gather")
    _check_same(comm, a, "all_gather")
    out = np.empty((comm.Get_size(),) + a.shape, a.dtype)
    if comm.Get_size() == 1:
        out[0] = a
    elif a.size:
        comm.Allgather(a, out)
    return [_wrap(out[r]) for r in range(out.shape[0])]
