"""Sample inputs of the normalisation ops (batch_norm, layer_norm, dropout) for the op
registry (``registry.py``). The records and the tensor factory are ``_samples.py``'s.

Batch norm's running statistics are positional Tensors, so the generic gradient checks
differentiate them too: in evaluation mode the output depends on them; in training mode it
does not (they are only updated in place), so their gradient is zero. Dropout's samples are
drawn after ``tg.manual_seed(OpInfo.seed)`` (the generic tests seed before every call), so
its numpy reference reproduces the mask.
"""
from tensorgrad.ops._samples import BIG, TR, Sample, _tensor


def _bn_args(rng, dtype, shape, affine=True, stats=True, layout="contiguous"):
    c = shape[1]
    x = _tensor(rng, shape, dtype, layout=layout)
    rm = _tensor(rng, (c,), dtype) if stats else None
    rv = _tensor(rng, (c,), dtype, low=0.5) if stats else None
    w = _tensor(rng, (c,), dtype) if affine else None
    b = _tensor(rng, (c,), dtype) if affine else None
    return (x, rm, rv, w, b)


def batch_norm_samples(dtype, rng, big=False):
    """[N, C] and [N, C, *] inputs in training mode (batch statistics, running statistics
    updated) and in evaluation mode; with and without affine parameters and running
    statistics; a transposed input; a size-0 batch in evaluation mode."""
    train = {"training": True, "momentum": 0.2}
    if big:
        yield Sample("big-4d-train", _bn_args(rng, dtype, (8, 8, 64, 65)), train)
        yield Sample("big-2d-train", _bn_args(rng, dtype, BIG), train)
        yield Sample("big-4d-eval", _bn_args(rng, dtype, (8, 8, 64, 65)))
        return
    yield Sample("2d-train", _bn_args(rng, dtype, (5, 3)), train)
    yield Sample("3d-train", _bn_args(rng, dtype, (3, 2, 5)), train)
    yield Sample("4d-train", _bn_args(rng, dtype, (2, 3, 2, 3)), train)
    yield Sample("4d-train-no-affine", _bn_args(rng, dtype, (2, 2, 3, 2), affine=False), train)
    yield Sample("2d-train-no-running-stats", _bn_args(rng, dtype, (4, 3), stats=False),
                 {"training": True})
    yield Sample("transposed-train", _bn_args(rng, dtype, (4, 3), layout=TR), train)
    yield Sample("2d-eval", _bn_args(rng, dtype, (4, 3)))
    yield Sample("4d-eval", _bn_args(rng, dtype, (2, 3, 2, 2)), {"eps": 1e-3})
    yield Sample("3d-eval-no-affine", _bn_args(rng, dtype, (2, 3, 4), affine=False))
    yield Sample("size0-eval", _bn_args(rng, dtype, (0, 3)))


def layer_norm_samples(dtype, rng, big=False):
    """Normalising the last dim or the last two, with and without weight and bias; a 1-d
    input; a transposed input; a size-0 batch."""
    def call(desc, shape, k, affine=True, layout="contiguous", **kw):
        ns = shape[len(shape) - k:]
        args = (_tensor(rng, shape, dtype, layout=layout), ns)
        if affine:
            args += (_tensor(rng, ns, dtype), _tensor(rng, ns, dtype))
        return Sample(desc, args, kw)

    if big:
        yield call("big", BIG, 1)
        yield call("big-2dims", (16, 128, 129), 2)
        return
    yield call("last-dim", (4, 5), 1)
    yield call("last-two-dims", (2, 3, 4), 2)
    yield call("no-affine", (3, 4), 1, affine=False)
    yield call("eps", (3, 4), 1, eps=1e-2)
    yield call("1-d", (5,), 1)
    yield call("transposed", (4, 3), 1, layout=TR)
    yield call("size0-batch", (0, 4), 1)


def dropout_samples(dtype, rng, big=False):
    """p = 0, 0.3, 0.5 and 1 in training (the mask is reproducible: the tests seed the
    generator), training=False (identity), a transposed input, 0-d and size-0 inputs."""
    if big:
        yield Sample("big", (_tensor(rng, BIG, dtype), 0.4))
        yield Sample("big-transposed", (_tensor(rng, BIG, dtype, layout=TR), 0.5))
        return
    for p in (0.0, 0.3, 0.5, 1.0):
        yield Sample(f"p={p}", (_tensor(rng, (5, 6), dtype), p))
    yield Sample("eval", (_tensor(rng, (3, 4), dtype), 0.5), {"training": False})
    yield Sample("transposed", (_tensor(rng, (4, 3), dtype, layout=TR), 0.5))
    yield Sample("0-d", (_tensor(rng, (), dtype), 0.5))
    yield Sample("size0", (_tensor(rng, (0, 3), dtype), 0.5))
