"""Elementwise kernels: binary ops with numpy broadcasting, unary math, and the in-place
helpers autograd needs (accumulate, where, clamp, clamp_mask, copy).

Strategy
--------
Each call first describes its operands with a ``_Layout``: the output shape with size-1 dims
dropped and adjacent dims merged wherever every operand steps through them as one run
(stride[d] == stride[d+1] * shape[d+1]); strides are in bytes and 0 on broadcast dims.
After that collapse the common cases are one or two dimensional and meet a specialised,
vectorisable inner loop:

    same shape, contiguous     1 dim, unit strides           flat loop
    an operand of size 1       1 dim, its stride 0            scalar loop
    a [R,C] op b [C] / [1,C]   2 dims, inner strides unit     row broadcast
    a [R,C] op b [R,1]         2 dims, b inner stride 0       column broadcast

Anything else (transposes, negative strides, expand views, N-d broadcasts) is walked as an
N-d odometer whose innermost runs go to the same inner loops (a strided loop when no
pattern matches). The flat index space is cut into blocks of BLOCK elements; blocks are
independent tasks run by an OpenMP prange when there are at least TG_PAR_MIN elements and
by a direct call otherwise (small arrays: no thread wake-up and the GIL is kept, which is
cheaper than releasing it). Inner loops test the op and the stride pattern outside the loop
so the compiler sees plain unit-stride loops.

Arguments are ndarrays of one float dtype (float32 or float64); ``out`` is written and may
alias an input element for element (in-place ops). The kernels check only what is cheap and
would otherwise corrupt memory (dtype, writeable ``out``, broadcast-compatible shapes).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport (
    exp, expf, fabs, fabsf, log, logf, pow, powf, sqrt, sqrtf,
)
from libc.string cimport memcpy

from tensorgrad._kernels._openmp cimport TG_PAR_MIN

cnp.import_array()

include "_layout.pxi"       # intp, MAXD, NOPS, BLOCK and the operand layout

# Op codes. Binary ops (binary, binary_scalar):
cdef enum:
    OP_ADD = 0
    OP_SUB = 1
    OP_MUL = 2
    OP_DIV = 3
    OP_POW = 4
    OP_MAXIMUM = 5
    OP_MINIMUM = 6
    N_BINARY = 7
# Unary ops (unary):
cdef enum:
    OP_NEG = 0
    OP_EXP = 1
    OP_LOG = 2
    OP_SQRT = 3
    OP_ABS = 4
    OP_SQUARE = 5
    OP_RECIPROCAL = 6
    N_UNARY = 7

ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM = (
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAXIMUM, OP_MINIMUM)
NEG, EXP, LOG, SQRT, ABS, SQUARE, RECIPROCAL = (
    OP_NEG, OP_EXP, OP_LOG, OP_SQRT, OP_ABS, OP_SQUARE, OP_RECIPROCAL)

# What a task computes (the inner loop family).
cdef enum:
    K_BINARY = 0        # out = a op b
    K_SCALAR = 1        # out = a op s
    K_RSCALAR = 2       # out = s op a
    K_UNARY = 3         # out = f(a)
    K_WHERE = 4         # out = cond ? a : b
    K_CLAMP = 5         # out = min(max(a, lo), hi)
    K_CLAMP_MASK = 6    # out = g if lo <= a <= hi else 0
    K_COPY = 7          # out = a
    K_MULADD = 8        # out = a * b + c, the product rounded first (planned replay's fusion)

BINARY_KIND = K_BINARY      # record_info's kind of a binary() / accumulate() record
UNARY_KIND = K_UNARY        # and of a unary() record
MULADD_KIND = K_MULADD      # and of a muladd() record


cdef struct _Args:
    int kind
    int op
    double s                    # scalar / lo
    double s2                   # hi



# ----------------------------------------------------------------------------------------
# Scalar math, one definition per dtype
# ----------------------------------------------------------------------------------------

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating _pow(floating x, floating y) noexcept nogil:
    if floating is float:
        return powf(x, y)
    else:
        return pow(x, y)


cdef inline floating _max(floating x, floating y) noexcept nogil:
    # np.maximum: a NaN in either argument propagates
    return x if (x >= y or x != x) else y


cdef inline floating _min(floating x, floating y) noexcept nogil:
    return x if (x <= y or x != x) else y


cdef inline floating _binop(int op, floating x, floating y) noexcept nogil:
    if op == OP_ADD:
        return x + y
    elif op == OP_SUB:
        return x - y
    elif op == OP_MUL:
        return x * y
    elif op == OP_DIV:
        return x / y
    elif op == OP_POW:
        return _pow(x, y)
    elif op == OP_MAXIMUM:
        return _max(x, y)
    else:
        return _min(x, y)


cdef inline floating _unop(int op, floating x) noexcept nogil:
    if op == OP_NEG:
        return -x
    elif op == OP_EXP:
        return _exp(x)
    elif op == OP_LOG:
        return _log(x)
    elif op == OP_SQRT:
        return _sqrt(x)
    elif op == OP_ABS:
        return _abs(x)
    elif op == OP_SQUARE:
        return x * x
    else:
        return 1 / x


# ----------------------------------------------------------------------------------------
# Inner loops over one run: n elements, o/a/b byte pointers with byte strides so/sa/sb.
# Each op gets its own loop in the unit-stride cases so that the loop body is branch-free.
# ----------------------------------------------------------------------------------------

cdef void _binary_vv(int op, floating* o, const floating* a, const floating* b,
                     intp n) noexcept nogil:
    cdef intp i
    if op == OP_ADD:
        for i in range(n):
            o[i] = a[i] + b[i]
    elif op == OP_SUB:
        for i in range(n):
            o[i] = a[i] - b[i]
    elif op == OP_MUL:
        for i in range(n):
            o[i] = a[i] * b[i]
    elif op == OP_DIV:
        for i in range(n):
            o[i] = a[i] / b[i]
    elif op == OP_POW:
        for i in range(n):
            o[i] = _pow(a[i], b[i])
    elif op == OP_MAXIMUM:
        for i in range(n):
            o[i] = _max(a[i], b[i])
    else:
        for i in range(n):
            o[i] = _min(a[i], b[i])


cdef void _binary_vs(int op, floating* o, const floating* a, floating s,
                     intp n) noexcept nogil:
    """o = a op s"""
    cdef intp i
    if op == OP_ADD:
        for i in range(n):
            o[i] = a[i] + s
    elif op == OP_SUB:
        for i in range(n):
            o[i] = a[i] - s
    elif op == OP_MUL:
        for i in range(n):
            o[i] = a[i] * s
    elif op == OP_DIV:
        for i in range(n):
            o[i] = a[i] / s
    elif op == OP_POW and s == 2:
        for i in range(n):              # x*x is what pow(x, 2) returns, exactly
            o[i] = a[i] * a[i]
    elif op == OP_POW:
        for i in range(n):
            o[i] = _pow(a[i], s)
    elif op == OP_MAXIMUM:
        for i in range(n):
            o[i] = _max(a[i], s)
    else:
        for i in range(n):
            o[i] = _min(a[i], s)


cdef void _binary_sv(int op, floating* o, floating s, const floating* b,
                     intp n) noexcept nogil:
    """o = s op b"""
    cdef intp i
    if op == OP_ADD:
        for i in range(n):
            o[i] = s + b[i]
    elif op == OP_SUB:
        for i in range(n):
            o[i] = s - b[i]
    elif op == OP_MUL:
        for i in range(n):
            o[i] = s * b[i]
    elif op == OP_DIV:
        for i in range(n):
            o[i] = s / b[i]
    elif op == OP_POW:
        for i in range(n):
            o[i] = _pow(s, b[i])
    elif op == OP_MAXIMUM:
        for i in range(n):
            o[i] = _max(s, b[i])
    else:
        for i in range(n):
            o[i] = _min(s, b[i])


cdef void _binary_run(int op, char* o, intp so, char* a, intp sa, char* b, intp sb,
                      intp n, floating* tag) noexcept nogil:
    cdef intp i, sz = sizeof(floating)
    if so == sz:
        if sa == sz and sb == sz:
            _binary_vv(op, <floating*>o, <floating*>a, <floating*>b, n)
            return
        if sa == sz and sb == 0:
            _binary_vs(op, <floating*>o, <floating*>a, (<floating*>b)[0], n)
            return
        if sa == 0 and sb == sz:
            _binary_sv(op, <floating*>o, (<floating*>a)[0], <floating*>b, n)
            return
    for i in range(n):
        (<floating*>(o + i * so))[0] = _binop(op, (<floating*>(a + i * sa))[0],
                                              (<floating*>(b + i * sb))[0])


cdef void _unary_run(int op, char* o, intp so, char* a, intp sa, intp n,
                     floating* tag) noexcept nogil:
    cdef intp i, sz = sizeof(floating)
    cdef floating* y = <floating*>o
    cdef floating* x = <floating*>a
    if so == sz and sa == sz:
        if op == OP_NEG:
            for i in range(n):
                y[i] = -x[i]
        elif op == OP_EXP:
            for i in range(n):
                y[i] = _exp(x[i])
        elif op == OP_LOG:
            for i in range(n):
                y[i] = _log(x[i])
        elif op == OP_SQRT:
            for i in range(n):
                y[i] = _sqrt(x[i])
        elif op == OP_ABS:
            for i in range(n):
                y[i] = _abs(x[i])
        elif op == OP_SQUARE:
            for i in range(n):
                y[i] = x[i] * x[i]
        else:
            for i in range(n):
                y[i] = 1 / x[i]
        return
    for i in range(n):
        (<floating*>(o + i * so))[0] = _unop(op, (<floating*>(a + i * sa))[0])


cdef void _where_run(char* o, intp so, char* c, intp sc, char* a, intp sa, char* b,
                     intp sb, intp n, floating* tag) noexcept nogil:
    cdef intp i, sz = sizeof(floating)
    cdef floating* y = <floating*>o
    cdef floating* x1 = <floating*>a
    cdef floating* x2 = <floating*>b
    cdef floating s, u, v
    # Both operands are loaded before the select: a load inside a conditional expression
    # keeps the compiler from if-converting, and the loop turns into unpredictable branches.
    if so == sz and sc == 1 and sa == sz and sb == sz:
        for i in range(n):
            u = x1[i]
            v = x2[i]
            y[i] = u if c[i] else v
    elif so == sz and sc == 1 and sa == sz and sb == 0:
        s = x2[0]
        for i in range(n):
            u = x1[i]
            y[i] = u if c[i] else s
    elif so == sz and sc == 1 and sa == 0 and sb == sz:
        s = x1[0]
        for i in range(n):
            v = x2[i]
            y[i] = s if c[i] else v
    else:
        for i in range(n):
            u = (<floating*>(a + i * sa))[0]
            v = (<floating*>(b + i * sb))[0]
            (<floating*>(o + i * so))[0] = u if c[i * sc] else v


cdef void _clamp_run(floating lo, floating hi, char* o, intp so, char* a, intp sa,
                     intp n) noexcept nogil:
    # v < lo ? lo : (v > hi ? hi : v) lets NaN through, as np.clip does
    cdef intp i, sz = sizeof(floating)
    cdef floating* y = <floating*>o
    cdef floating* x = <floating*>a
    cdef floating v
    if so == sz and sa == sz:
        for i in range(n):
            v = x[i]
            v = hi if v > hi else v
            y[i] = lo if v < lo else v
    else:
        for i in range(n):
            v = (<floating*>(a + i * sa))[0]
            v = hi if v > hi else v
            (<floating*>(o + i * so))[0] = lo if v < lo else v


cdef void _clamp_mask_run(floating lo, floating hi, char* o, intp so, char* a, intp sa,
                          char* g, intp sg, intp n) noexcept nogil:
    cdef intp i, sz = sizeof(floating)
    cdef floating* y = <floating*>o
    cdef floating* x = <floating*>a
    cdef floating* gx = <floating*>g
    cdef floating v, w
    if so == sz and sa == sz and sg == sz:
        for i in range(n):
            v = x[i]
            w = gx[i]                   # loaded unconditionally so the select vectorises
            y[i] = w if (v >= lo and v <= hi) else 0
    else:
        for i in range(n):
            v = (<floating*>(a + i * sa))[0]
            w = (<floating*>(g + i * sg))[0]
            (<floating*>(o + i * so))[0] = w if (v >= lo and v <= hi) else 0


cdef void _copy_run(char* o, intp so, char* a, intp sa, intp n,
                    floating* tag) noexcept nogil:
    cdef intp i, sz = sizeof(floating)
    if so == sz and sa == sz:
        memcpy(o, a, n * sz)
    else:
        for i in range(n):
            (<floating*>(o + i * so))[0] = (<floating*>(a + i * sa))[0]


cdef void _muladd_run(char** p, const intp* st, intp n, floating* tag) noexcept nogil:
    """o = a * b + c with the product rounded to the dtype before the sum: the values of a
    multiply kernel followed by an accumulate (the build turns FMA contraction off)."""
    cdef intp i, sz = sizeof(floating)
    cdef floating* y = <floating*>p[0]
    cdef floating* x = <floating*>p[1]
    cdef floating* z = <floating*>p[3]
    cdef floating s, u
    if st[0] == sz and st[1] == sz and st[2] == 0 and st[3] == sz:
        s = (<floating*>p[2])[0]
        for i in range(n):
            u = x[i] * s
            y[i] = u + z[i]
        return
    for i in range(n):
        u = (<floating*>(p[1] + i * st[1]))[0] * (<floating*>(p[2] + i * st[2]))[0]
        (<floating*>(p[0] + i * st[0]))[0] = u + (<floating*>(p[3] + i * st[3]))[0]


cdef void _scalar_run(const _Args* f, char** p, const intp* st, intp n,
                      floating* tag) noexcept nogil:
    """o = a op s (K_SCALAR) or o = s op a (K_RSCALAR), s rounded to the dtype first."""
    cdef floating s = <floating>f.s, x
    cdef intp i, sz = sizeof(floating)
    if st[0] == sz and st[1] == sz:
        if f.kind == K_SCALAR:
            _binary_vs(f.op, <floating*>p[0], <floating*>p[1], s, n)
        else:
            _binary_sv(f.op, <floating*>p[0], s, <floating*>p[1], n)
        return
    for i in range(n):
        x = (<floating*>(p[1] + i * st[1]))[0]
        (<floating*>(p[0] + i * st[0]))[0] = (_binop(f.op, x, s) if f.kind == K_SCALAR
                                              else _binop(f.op, s, x))


cdef inline void _inner(const _Args* f, char** p, const intp* st, intp n,
                        floating* tag) noexcept nogil:
    """Dispatch one run of n elements to the loop family of f.kind."""
    cdef int kind = f.kind
    if kind == K_BINARY:
        _binary_run(f.op, p[0], st[0], p[1], st[1], p[2], st[2], n, tag)
    elif kind == K_SCALAR or kind == K_RSCALAR:
        _scalar_run(f, p, st, n, tag)
    elif kind == K_UNARY:
        _unary_run(f.op, p[0], st[0], p[1], st[1], n, tag)
    elif kind == K_WHERE:
        _where_run(p[0], st[0], p[1], st[1], p[2], st[2], p[3], st[3], n, tag)
    elif kind == K_CLAMP:
        _clamp_run(<floating>f.s, <floating>f.s2, p[0], st[0], p[1], st[1], n)
    elif kind == K_CLAMP_MASK:
        _clamp_mask_run(<floating>f.s, <floating>f.s2, p[0], st[0], p[1], st[1], p[2],
                        st[2], n)
    elif kind == K_MULADD:
        _muladd_run(p, st, n, tag)
    else:
        _copy_run(p[0], st[0], p[1], st[1], n, tag)


# ----------------------------------------------------------------------------------------
# Driver: an N-d odometer over the flat range [start, stop), runs along the innermost dim
# ----------------------------------------------------------------------------------------

include "_driver.pxi"


cdef inline void _dispatch(int t, const _Layout* L, const _Args* f) noexcept:
    if t == cnp.NPY_FLOAT32:
        _execute(L, f, <float*>NULL)
    else:
        _execute(L, f, <double*>NULL)


# ----------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------

def binary(int op, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out):
    """out = a op b with numpy broadcasting (a.shape and b.shape broadcast to out.shape).

    op is one of ADD, SUB, MUL, DIV, POW (np.power semantics), MAXIMUM, MINIMUM (NaN
    propagates, as np.maximum/np.minimum).
    """
    cdef _Layout L
    cdef _Args f
    if op < 0 or op >= N_BINARY:
        raise ValueError(f"binary: unknown op code {op}")
    cdef int t = _check_float(out, a, b, None, "binary")
    _layout(&L, out, a, b, None, "binary")
    f.kind = K_BINARY
    f.op = op
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a, b))


def binary_scalar(int op, cnp.ndarray a, double s, cnp.ndarray out, bint reverse=False):
    """out = a op s, or out = s op a when reverse. s is rounded to the array dtype first."""
    cdef _Layout L
    cdef _Args f
    if op < 0 or op >= N_BINARY:
        raise ValueError(f"binary_scalar: unknown op code {op}")
    cdef int t = _check_float(out, a, None, None, "binary_scalar")
    _layout(&L, out, a, None, None, "binary_scalar")
    f.kind = K_RSCALAR if reverse else K_SCALAR
    f.op = op
    f.s = s
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a))


def unary(int op, cnp.ndarray a, cnp.ndarray out):
    """out = f(a) for op in NEG, EXP, LOG, SQRT, ABS, SQUARE, RECIPROCAL.

    Out-of-domain inputs give what numpy gives (log(-1) = nan, log(0) = -inf, 1/0 = inf).
    """
    cdef _Layout L
    cdef _Args f
    if op < 0 or op >= N_UNARY:
        raise ValueError(f"unary: unknown op code {op}")
    cdef int t = _check_float(out, a, None, None, "unary")
    _layout(&L, out, a, None, None, "unary")
    f.kind = K_UNARY
    f.op = op
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a))


def accumulate(cnp.ndarray acc, cnp.ndarray g):
    """acc += g in place (gradient accumulation); g may have any strides."""
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(acc, g, None, None, "accumulate")
    _layout(&L, acc, acc, g, None, "accumulate")
    f.kind = K_BINARY
    f.op = OP_ADD
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (acc, g))


def muladd(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c, cnp.ndarray out):
    """out = a * b + c (broadcasting to out.shape), the product rounded to the dtype first:
    bitwise ``binary(MUL, a, b, t)`` then ``accumulate(t, c)``, in one pass and without t."""
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(out, a, b, c, "muladd")
    _layout(&L, out, a, b, c, "muladd")
    f.kind = K_MULADD
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a, b, c))


def record_info(bytes rec):
    """What a taped record of this module does, for the plan's fusion pass:
    ``(kind, op, flat)``, ``flat`` when its operands collapsed to one run (contiguous
    arrays, or broadcast single values)."""
    cdef const _Prepared* r = <const _Prepared*><const char*>rec
    return r.f.kind, r.f.op, r.L.nd == 1


def where(cnp.ndarray cond, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out):
    """out = a where cond else b; cond is a bool array; all three broadcast to out.shape."""
    cdef _Layout L
    cdef _Args f
    if cnp.PyArray_TYPE(cond) != cnp.NPY_BOOL:
        raise TypeError(f"where: cond must be a bool array, got {cond.dtype}")
    cdef int t = _check_float(out, a, b, None, "where")
    _layout(&L, out, cond, a, b, "where")
    f.kind = K_WHERE
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, cond, a, b))


def clamp(cnp.ndarray a, double lo, double hi, cnp.ndarray out):
    """out = min(max(a, lo), hi); lo may be -inf and hi +inf; NaN stays NaN."""
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(out, a, None, None, "clamp")
    _layout(&L, out, a, None, None, "clamp")
    f.kind = K_CLAMP
    f.s = lo
    f.s2 = hi
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a))


def clamp_mask(cnp.ndarray a, double lo, double hi, cnp.ndarray g, cnp.ndarray out):
    """out = g where lo <= a <= hi else 0 (the gradient of clamp; NaN in a gives 0)."""
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(out, a, g, None, "clamp_mask")
    _layout(&L, out, a, g, None, "clamp_mask")
    f.kind = K_CLAMP_MASK
    f.s = lo
    f.s2 = hi
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, a, g))


def copy(cnp.ndarray src, cnp.ndarray out):
    """out[...] = src (any strides, including broadcast views of a smaller src)."""
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(out, src, None, None, "copy")
    _layout(&L, out, src, None, None, "copy")
    f.kind = K_COPY
    _dispatch(t, &L, &f)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, src))

