"""Collectives on 2+ ranks: values, in-place (same buffer), and the errors every rank sees."""
import numpy as np

import tensorgrad as tg
import tensorgrad.distributed as dist

dist.init()
dist.init()                                  # idempotent
r, W = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and W >= 2

for dt in (np.float32, np.float64, np.int64, np.int32):
    t = tg.from_numpy(np.arange(6, dtype=dt).reshape(2, 3) + r)
    ptr, version = t.data_ptr(), t._version[0]
    dist.all_reduce(t)
    assert t.data_ptr() == ptr and t._version[0] == version + 1      # in place, no copy
    want = sum(np.arange(6, dtype=dt).reshape(2, 3) + k for k in range(W))
    assert np.array_equal(t.numpy(), want) and t.numpy().dtype == dt
    t = tg.from_numpy(np.arange(6, dtype=dt) * (r + 1))
    dist.all_reduce(t, op="max")
    assert np.array_equal(t.numpy(), np.arange(6, dtype=dt) * W)
    t = tg.from_numpy(np.arange(6, dtype=dt) - r)
    dist.all_reduce(t, op="min")
    assert np.array_equal(t.numpy(), np.arange(6, dtype=dt) - (W - 1))

t = tg.full((4,), float(r), dtype=tg.float64)
dist.all_reduce(t, op="mean")
assert np.array_equal(t.numpy(), np.full(4, sum(range(W)) / W))

src = W - 1
t = tg.from_numpy(np.full((3, 2), 10.0 * r, np.float32))
ptr = t.data_ptr()
dist.broadcast(t, src=src)
assert t.data_ptr() == ptr and np.array_equal(t.numpy(), np.full((3, 2), 10.0 * src))

parts = dist.all_gather(tg.from_numpy(np.full(3, r, np.int64)))
assert isinstance(parts, list) and len(parts) == W
for k, p in enumerate(parts):
    assert isinstance(p, tg.Tensor) and np.array_equal(p.numpy(), np.full(3, k))
assert np.array_equal(tg.stack(parts).numpy(), np.repeat(np.arange(W), 3).reshape(W, 3))
dist.barrier()


def raises(exc, words, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        for w in words:
            assert w in str(e), (w, str(e))
        return
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


# local errors (raised before any communication)
raises(ValueError, ["not contiguous", "contiguous()"], dist.all_reduce,
       tg.ones(4, 3, dtype=tg.float32).t())
raises(ValueError, ["op must be one of"], dist.all_reduce, tg.ones(2), op="prod")
raises(TypeError, ["'mean' needs a float"], dist.all_reduce, tg.ones(2, dtype=tg.int64),
       op="mean")
raises(TypeError, ["expected a Tensor"], dist.broadcast, np.ones(2))
raises(ValueError, ["src must be a rank"], dist.broadcast, tg.ones(2), src=W)
# mismatches across ranks: the same clear error on every rank, and the job goes on
raises(ValueError, ["different shapes or dtypes", "rank 0: all_reduce of shape (3,)",
                    "rank 1: all_reduce of shape (4,)"],
       dist.all_reduce, tg.ones(3 + r))
raises(ValueError, ["different shapes or dtypes", "float32", "float64"],
       dist.broadcast, tg.ones(5, dtype=tg.float32 if r == 0 else tg.float64))
raises(ValueError, ["different collectives", "rank 0: all_reduce", "rank 1: all_gather"],
       dist.all_reduce if r == 0 else dist.all_gather, tg.ones(2))
raises(ValueError, ["different collectives", "src="], dist.broadcast, tg.ones(2), src=r)
t = tg.ones(2)
dist.all_reduce(t)                           # still in step after the errors
assert np.array_equal(t.numpy(), [W, W])
print(f"rank {r} ok", flush=True)
