"""DistributedDataParallel: one model replica per rank, gradients averaged during backward.

At construction the parameters (and buffers) of rank 0 are broadcast, so every rank starts
from the same model. The parameters are grouped into buckets of at most ``bucket_cap_mb``
(in reverse registration order, which is roughly the order backward produces their
gradients, and by dtype). Each parameter gets a post-accumulate-grad hook
(``Tensor.register_post_accumulate_grad_hook``): when backward has summed its gradient, the
hook copies it into its bucket's flat buffer; when a bucket is full, a nonblocking
``Iallreduce`` starts on it while backward goes on with the layers below. Buckets start in
index order on every rank (a bucket that fills early waits for the ones before it), so the
collectives match across ranks. When the last bucket has started, the hook waits for all of
them and writes each parameter's ``.grad`` = (sum over ranks) / world size.

Equivalence: the reduction is an element-wise sum over ranks in a fixed order, so all ranks
hold bitwise-identical gradients and parameters. Against one process with the whole batch
(W·b samples) the result is equal within rounding (about 1e-15 relative in float64 over a
few steps), not bitwise: one matrix product over W·b rows sums in a different order than W
products over b rows.
"""
import contextlib

import numpy as np
from mpi4py import MPI

from tensorgrad._tensor import _wrap
from tensorgrad.distributed import _comm
from tensorgrad.function import no_grad
from tensorgrad.nn.module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    __slots__ = ("buf", "got", "offsets", "params", "ready", "request")

    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p._data.size for p in params])
        self.buf = np.empty(int(self.offsets[-1]), params[0]._data.dtype)
        self.ready = 0
        self.got = [False] * len(params)
        self.request = None


def _structure(params, names):
    """The parameter names, shapes and dtypes as text (equal on ranks with equal models)."""
    return ", ".join(f"{n} {p._data.shape} {p._data.dtype}" for n, p in zip(names, params))


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: ``ddp(x)`` calls ``module(x)``; after
    ``loss.backward()`` every parameter's ``.grad`` is the mean over ranks.

    ``bucket_cap_mb`` bounds a bucket's size (smaller buckets start communicating sooner).
    Every parameter that requires grad must receive a gradient in each backward (an unused
    one is reported at the next forward). Works with ``tg.Graph`` replay too: the averaging
    is driven by backward, not by forward. ``no_sync()`` skips the averaging for gradient
    accumulation; the next synchronised backward averages the accumulated sum.
    """

    def __init__(self, module, bucket_cap_mb=1.0, broadcast_buffers=True):
        super().__init__()
        comm = _comm._comm("DistributedDataParallel")
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a tg.nn.Module, got "
                            f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        params = [p for _, p in named]
        object.__setattr__(self, "_comm", comm)
        object.__setattr__(self, "_names", {id(p): n for n, p in named})
        self._check_models_match(comm, params, names)
        self._broadcast_state(comm, module, broadcast_buffers)
        buckets = self._make_buckets(params, bucket_cap_mb * 2 ** 20)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_where", {})
        for b, bucket in enumerate(buckets):
            for i, p in enumerate(bucket.params):
                self._where[id(p)] = (b, i)
        object.__setattr__(self, "_next", 0)        # next bucket to start
        object.__setattr__(self, "_sync", True)
        object.__setattr__(self, "_handles",
                           [p.register_post_accumulate_grad_hook(self._grad_ready)
                            for p in params])

    # -- construction ----------------------------------------------------------------------
    @staticmethod
    def _check_models_match(comm, params, names):
        if comm.Get_size() == 1:
            return
        text = _structure(params, names)
        texts = comm.allgather(text)
        if any(t != texts[0] for t in texts):
            bad = next(r for r, t in enumerate(texts) if t != texts[0])
            raise ValueError(f"DistributedDataParallel: the model differs between ranks: "
                             f"rank 0 has parameters [{texts[0]}], rank {bad} has "
                             f"[{texts[bad]}]")

    @staticmethod
    def _broadcast_state(comm, module, broadcast_buffers):
        if comm.Get_size() == 1:
            return
        tensors = list(module.parameters())
        if broadcast_buffers:
            tensors += [b for b in module.buffers() if b is not None]
        with no_grad():
            for t in tensors:
                a = t._data
                if a.size == 0:
                    continue
                if a.flags.c_contiguous and a.flags.writeable:
                    comm.Bcast(a, root=0)
                else:
                    tmp = np.ascontiguousarray(a)
                    comm.Bcast(tmp, root=0)
                    np.copyto(a, tmp)
                t._version[0] += 1

    @staticmethod
    def _make_buckets(params, cap_bytes):
        buckets, current, size = [], [], 0
        for p in reversed(params):
            if current and (p._data.dtype != current[0]._data.dtype
                            or size + p._data.nbytes > cap_bytes):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p._data.nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets

    # -- the hooks -------------------------------------------------------------------------
    def _grad_ready(self, p):
        if not self._sync:
            return
        b, i = self._where[id(p)]
        bucket = self._buckets[b]
        g = p.grad
        if g.grad_fn is not None:
            raise RuntimeError("DistributedDataParallel: backward(create_graph=True) is not "
                               "supported (the averaged gradients carry no graph)")
        lo, hi = bucket.offsets[i], bucket.offsets[i + 1]
        np.copyto(bucket.buf[lo:hi].reshape(g._data.shape), g._data)
        if not bucket.got[i]:
            bucket.got[i] = True
            bucket.ready += 1
        if bucket.ready == len(bucket.params):
            self._start_ready_buckets()
        elif self._next and self._comm.Get_size() > 1:      # let MPI progress the started
            MPI.Request.Testall([k.request for k in self._buckets[:self._next]])

    def _start_ready_buckets(self):
        comm = self._comm
        buckets = self._buckets
        n = self._next
        while n < len(buckets) and buckets[n].ready == len(buckets[n].params):
            if comm.Get_size() > 1:
                buckets[n].request = comm.Iallreduce(MPI.IN_PLACE, buckets[n].buf, op=MPI.SUM)
            n += 1
        object.__setattr__(self, "_next", n)
        if n == len(buckets):
            self._finish()

    def _finish(self):
        world = self._comm.Get_size()
        if world > 1:
            MPI.Request.Waitall([b.request for b in self._buckets])
        for bucket in self._buckets:
            bucket.request = None
            bucket.ready = 0
            bucket.got = [False] * len(bucket.params)
            buf = bucket.buf
            if world > 1:
                np.divide(buf, world, out=buf)
            for i, p in enumerate(bucket.params):
                lo, hi = bucket.offsets[i], bucket.offsets[i + 1]
                avg = buf[lo:hi].reshape(p._data.shape)
                g = p.grad
                d = g._data
                if d.flags.c_contiguous and d.flags.writeable and d.base is None:
                    np.copyto(d, avg)
                    g._version[0] += 1
                else:                       # a view or a read-only array: a fresh .grad
                    p.grad = _wrap(avg.copy())
        object.__setattr__(self, "_next", 0)

    # -- use -------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """Run the wrapped module (after checking the previous backward reached every
        parameter)."""
        self._check_previous_backward()
        return self.module(*args, **kwargs)

    def _check_previous_backward(self):
        if not any(b.ready for b in self._buckets):
            return
        missing = [self._names[id(p)] for b in self._buckets
                   for p, got in zip(b.params, b.got) if not got]
        started = [b.request for b in self._buckets if b.request is not None]
        if started:
            MPI.Request.Waitall(started)
        for b in self._buckets:
            b.ready = 0
            b.got = [False] * len(b.params)
            b.request = None
        object.__setattr__(self, "_next", 0)
        raise RuntimeError(f"DistributedDataParallel: the previous backward did not reach "
                           f"every parameter, so no gradient was averaged (no gradient for: "
                           f"{', '.join(missing)}); every parameter that requires grad must "
                           f"take part in the loss")

    @contextlib.contextmanager
    def no_sync(self):
        """Within this context backward accumulates local gradients without averaging them."""
        prev = self._sync
        object.__setattr__(self, "_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_sync", prev)

    def extra_repr(self):
        """World size and bucket layout, for ``repr``."""
        return (f"world_size={self._comm.Get_size()}, buckets="
                f"{[len(b.params) for b in self._buckets]}")
