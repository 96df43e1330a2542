"""Sample inputs of the shape ops for the op registry (``registry.py``).

Each shape op takes its own arguments, so most generators here are small tables of calls:
(description, input shape, layout, more arguments[, keyword arguments]). The records and the
tensor factory are ``_samples.py``'s.
"""
import numpy as np

from tensorgrad._tensor import from_numpy
from tensorgrad.ops._samples import TR, C, Sample, _tensor


def _shape_op_samples(calls):
    """A generator over ``calls``: (desc, input shape, layout, more args[, kwargs])."""
    def samples(dtype, rng, big=False):
        for desc, s, layout, more, *kwargs in calls:
            yield Sample(desc, (_tensor(rng, s, dtype, layout=layout),) + more, *kwargs)
    samples.__doc__ = f"Shape-op calls: {', '.join(c[0] for c in calls)}."
    return samples


view_samples = _shape_op_samples([
    ("2d", (3, 4), C, ((4, 3),)), ("infer", (2, 3, 4), C, (-1,)),
    ("0-d", (), C, ((1, 1),)), ("size0", (0, 3), C, ((3, 0),)),
    ("varargs", (3, 4), C, (2, 6))])
reshape_samples = _shape_op_samples([
    ("2d", (3, 4), C, ((4, 3),)), ("infer", (2, 3, 4), C, (-1, 4)),
    ("0-d", (), C, ((1,),)), ("size0", (0, 3), C, ((3, 0),)),
    ("transposed-copies", (3, 4), TR, ((12,),)), ("strided", (3, 4), "strided", (4, 3))])
flatten_samples = _shape_op_samples([
    ("all", (2, 3, 4), C, ()), ("from1", (2, 3, 4), C, (1,)),
    ("0to1", (2, 3, 4), C, (0, 1)), ("0-d", (), C, ()), ("size0", (2, 0, 3), C, ()),
    ("transposed", (3, 4), TR, ())])
transpose_samples = _shape_op_samples([
    ("default", (3, 4), C, ()), ("0-2", (2, 3, 4), C, (0, 2)),
    ("negative", (2, 3, 4), C, (-1, 0)), ("0-d", (), C, ()), ("1-d", (3,), C, ()),
    ("size0", (0, 3), C, (0, 1)), ("transposed", (3, 4), TR, (0, 1))])
t_samples = _shape_op_samples([
    ("2d", (3, 4), C, ()), ("1-d", (3,), C, ()), ("0-d", (), C, ()),
    ("size0", (0, 3), C, ()), ("transposed", (3, 4), TR, ())])
permute_samples = _shape_op_samples([
    ("tuple", (2, 3, 4), C, ((2, 0, 1),)), ("varargs", (2, 3, 4), C, (1, 2, 0)),
    ("negative", (2, 3, 4), C, (-1, 0, 1)), ("0-d", (), C, ((),)),
    ("size0", (0, 3), C, (1, 0)), ("transposed", (3, 4), TR, (1, 0))])
movedim_samples = _shape_op_samples([
    ("0to2", (2, 3, 4), C, (0, 2)), ("-1to0", (2, 3, 4), C, (-1, 0)),
    ("size0", (0, 3, 2), C, (0, 1)), ("transposed", (3, 4), TR, (0, 1))])
squeeze_samples = _shape_op_samples([
    ("all", (1, 3, 1), C, ()), ("dim", (1, 3, 1), C, (2,)),
    ("dims", (1, 3, 1), C, ((0, 2),)), ("not-size1", (2, 3), C, (0,)),
    ("0-d", (), C, ()), ("size0", (0, 1), C, (1,)), ("transposed", (1, 4), TR, ())])
unsqueeze_samples = _shape_op_samples([
    ("front", (3, 4), C, (0,)), ("back", (3, 4), C, (-1,)), ("0-d", (), C, (0,)),
    ("size0", (0, 3), C, (1,)), ("transposed", (3, 4), TR, (1,))])
expand_samples = _shape_op_samples([
    ("size1", (3, 1), C, (3, 4)), ("new-dims", (4,), C, ((2, 3, 4),)),
    ("keep-1", (3, 1), C, (-1, 5)), ("0-d", (), C, ((2,),)),
    ("to-size0", (1, 3), C, ((0, 3),)), ("transposed", (1, 4), TR, (2, 1, 4))])
contiguous_samples = _shape_op_samples([
    ("contiguous", (3, 4), C, ()), ("0-d", (), C, ()), ("size0", (0, 3), C, ()),
    ("transposed", (3, 4), TR, ()), ("strided", (3, 4), "strided", ()),
    ("expanded", (3, 4), "expanded", ())])
chunk_samples = _shape_op_samples([
    ("even", (4, 3), C, (2,)), ("uneven-dim1", (3, 5), C, (2, 1)),
    ("more-chunks-than-rows", (2, 3), C, (4,)), ("size0-dim0", (0, 3), C, (2,)),
    ("size0-other-dim", (0, 4), C, (2, 1)), ("transposed", (4, 3), TR, (2, 1))])
split_samples = _shape_op_samples([
    ("size", (5, 3), C, (2,)), ("sections", (3, 5), C, ([1, 4], 1)),
    ("keyword-dim", (3, 4), C, (2,), {"dim": 1}), ("size0", (0, 3), C, (2,)),
    ("transposed", (4, 3), TR, (2, 1))])
narrow_samples = _shape_op_samples([
    ("dim0", (4, 3), C, (0, 1, 2)), ("dim1", (3, 4), C, (1, 0, 3)),
    ("negative-start", (4, 3), C, (0, -2, 2)), ("length0", (4, 3), C, (0, 2, 0)),
    ("transposed", (3, 4), TR, (1, 1, 2))])
index_samples = _shape_op_samples([
    ("int", (3, 4), C, (1,)), ("slices", (3, 4), C, ((slice(None), slice(1, 3)),)),
    ("step", (5, 3), C, (slice(None, None, 2),)),
    ("ints", (3, 4), C, ((1, 2),)),
    ("none-ellipsis", (2, 3, 4), C, ((None, Ellipsis, 1),)),
    ("repeated-int-array", (3, 4), C, (np.array([0, 2, 0]),)),
    ("bool-mask", (3,), C, (np.array([True, False, True]),)),
    ("0-d", (), C, ((),)), ("size0", (0, 3), C, ((slice(None), 1),)),
    ("transposed", (3, 4), TR, ((slice(None), np.array([3, 1, 3])),))])


def like_samples(dtype, rng, big=False):
    """(x, other): view_as, reshape_as and expand_as take ``other``'s shape."""
    pairs = (("2d", (3, 4), (4, 3)), ("to-1d", (2, 3), (6,)), ("0-d", (), (1, 1)),
             ("size0", (0, 3), (3, 0)))
    for desc, s, so in pairs:
        yield Sample(desc, (_tensor(rng, s, dtype), _tensor(rng, so, dtype)))


def expand_as_samples(dtype, rng, big=False):
    """(x, other) with x broadcastable to other's shape."""
    pairs = (("size1", (3, 1), (3, 4)), ("new-dims", (4,), (2, 3, 4)), ("0-d", (), (2,)),
             ("to-size0", (1, 3), (0, 3)))
    for desc, s, so in pairs:
        yield Sample(desc, (_tensor(rng, s, dtype), _tensor(rng, so, dtype)))
    yield Sample("transposed", (_tensor(rng, (1, 4), dtype, layout=TR),
                                _tensor(rng, (2, 1, 4), dtype)))


def index_select_samples(dtype, rng, big=False):
    """index_select along each dim, with repeats, an empty index, a 0-d input, transposed."""
    x = _tensor(rng, (3, 4), dtype)
    yield Sample("dim1-repeats", (x, 1, from_numpy(np.array([3, 0, 3]))))
    yield Sample("dim0", (x, 0, from_numpy(np.array([2, 1]))))
    yield Sample("empty-index", (x, 1, from_numpy(np.zeros(0, np.int64))))
    yield Sample("0-d", (_tensor(rng, (), dtype), 0, from_numpy(np.array([0]))))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR), 0,
                                from_numpy(np.array([0, 2, 0]))))


def gather_samples(dtype, rng, big=False):
    """gather along each dim, with repeats, a smaller index than x, 0-size and transposed x."""
    x = _tensor(rng, (3, 4), dtype)
    idx = from_numpy(rng.integers(0, 4, (3, 5)))
    yield Sample("dim1-repeats", (x, 1, idx))
    yield Sample("dim0", (x, 0, from_numpy(rng.integers(0, 3, (2, 4)))))
    yield Sample("smaller-index", (x, 1, from_numpy(rng.integers(0, 4, (2, 2)))))
    yield Sample("size0", (x, 1, from_numpy(np.zeros((3, 0), np.int64))))
    yield Sample("transposed", (_tensor(rng, (3, 4), dtype, layout=TR), 1, idx))


def cat_samples(dtype, rng, big=False):
    """cat (a sequence of tensors): along each dim, one input, a size-0 piece, transposed."""
    def ts(*shapes, layout=C):
        return [_tensor(rng, s, dtype, layout=layout) for s in shapes]
    yield Sample("dim0", (ts((2, 3), (1, 3), (3, 3)), 0))
    yield Sample("dim1", (ts((2, 3), (2, 1)), 1))
    yield Sample("one", (ts((2, 3)),))
    yield Sample("size0-piece", (ts((0, 3), (2, 3)), 0))
    yield Sample("transposed", (ts((3, 4), (3, 4), layout=TR), -1))


def stack_samples(dtype, rng, big=False):
    """stack: a new leading, middle or last dim; 0-d, size-0 and transposed inputs."""
    def ts(s, n=2, layout=C):
        return [_tensor(rng, s, dtype, layout=layout) for _ in range(n)]
    yield Sample("dim0", (ts((2, 3), 3), 0))
    yield Sample("dim1", (ts((2, 3)), 1))
    yield Sample("dim-1", (ts((2, 3)), -1))
    yield Sample("0-d", (ts(()),))
    yield Sample("size0", (ts((0, 3)),))
    yield Sample("transposed", (ts((3, 4), layout=TR), 1))
