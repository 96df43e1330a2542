"""Activation kernels: ReLU, sigmoid and tanh forward/backward, and the bias / bias+ReLU
epilogues applied in place after a GEMM.

Strategy
--------
Same engine as elementwise.pyx (the shared _layout.pxi, textually included because kernel
modules do not cimport each other): operands are described by a ``_Layout`` whose dims are
broadcast to ``out``, with size-1 dims dropped and contiguous runs merged, so contiguous
arrays become one flat loop and ``out [N, M] += bias [M]`` becomes rows of unit-stride
loops; other strides are walked by an N-d odometer. The flat range is split into
BLOCK-element tasks, run by an OpenMP prange at TG_PAR_MIN elements and above and by a
direct call below.

Backward kernels take the saved forward OUTPUT y, never x and never a Jacobian:
    relu     y = max(x, 0)                      dx = g * (y > 0)
    sigmoid  y = 1 / (1 + exp(-x))              dx = g * y * (1 - y)
    tanh     y = tanh(x)                        dx = g * (1 - y * y)
At the ReLU kink x == 0 we have y == 0, so the gradient there is 0 (PyTorch's convention).
ReLU of NaN is NaN (as np.maximum(x, 0)); its gradient mask is 0 there.
Sigmoid is evaluated as 1 / (1 + e) or e / (1 + e) with e = exp(-|x|) <= 1, so it never
overflows: sigmoid(-1000) = 0 and sigmoid(1000) = 1 exactly.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, fabs, fabsf, tanh, tanhf

from tensorgrad._kernels._openmp cimport TG_PAR_MIN

cnp.import_array()

include "_layout.pxi"       # intp, MAXD, NOPS, BLOCK and the operand layout

# What a task computes.
cdef enum:
    K_RELU = 0              # out = max(x, 0)
    K_RELU_BACKWARD = 1     # out = g * (y > 0)
    K_SIGMOID = 2           # out = sigmoid(x)
    K_SIGMOID_BACKWARD = 3  # out = g * y * (1 - y)
    K_TANH = 4              # out = tanh(x)
    K_TANH_BACKWARD = 5     # out = g * (1 - y * y)
    K_BIAS_ADD = 6          # out = x + b        (x is out itself for the in-place epilogue)
    K_BIAS_RELU = 7         # out = max(x + b, 0)


cdef struct _Args:
    int kind



# ----------------------------------------------------------------------------------------
# Inner loops over one run of n elements (byte pointers and byte strides)
# ----------------------------------------------------------------------------------------

cdef inline floating _sigmoid(floating x) noexcept nogil:
    cdef floating e
    if floating is float:
        e = expf(-fabsf(x))
    else:
        e = exp(-fabs(x))
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _forward(int kind, floating x) noexcept nogil:
    if kind == K_RELU:
        return 0 if x < 0 else x
    elif kind == K_SIGMOID:
        return _sigmoid(x)
    else:
        return _tanh(x)


cdef inline floating _backward(int kind, floating g, floating y) noexcept nogil:
    if kind == K_RELU_BACKWARD:
        return g if y > 0 else 0
    elif kind == K_SIGMOID_BACKWARD:
        return g * y * (1 - y)
    elif kind == K_TANH_BACKWARD:
        return g * (1 - y * y)
    elif kind == K_BIAS_ADD:
        return g + y
    else:
        g = g + y
        return 0 if g < 0 else g


cdef void _forward_run(int kind, char* o, intp so, char* a, intp sa, intp n,
                       floating* tag) noexcept nogil:
    cdef intp i
    cdef floating* y = <floating*>o
    cdef floating* x = <floating*>a
    cdef floating v
    if so == sizeof(v) and sa == sizeof(v):
        if kind == K_RELU:
            for i in range(n):
                v = x[i]
                y[i] = 0 if v < 0 else v
        elif kind == K_SIGMOID:
            for i in range(n):
                y[i] = _sigmoid(x[i])
        else:
            for i in range(n):
                y[i] = _tanh(x[i])
    else:
        for i in range(n):
            (<floating*>(o + i * so))[0] = _forward(kind, (<floating*>(a + i * sa))[0])


cdef void _backward_run(int kind, char* o, intp so, char* a, intp sa, char* b, intp sb,
                        intp n, floating* tag) noexcept nogil:
    """o = h(a, b): a is g (or x for the bias kinds), b is y (or the bias)."""
    cdef intp i
    cdef floating* r = <floating*>o
    cdef floating* g = <floating*>a
    cdef floating* y = <floating*>b
    cdef floating v
    if so == sizeof(v) and sa == sizeof(v) and sb == sizeof(v):
        if kind == K_RELU_BACKWARD:
            for i in range(n):
                # g is loaded unconditionally: a load inside the conditional expression
                # blocks if-conversion and leaves a branch per element that the random
                # sign pattern of y mispredicts half the time (10x slower).
                v = g[i]
                r[i] = v if y[i] > 0 else 0
        elif kind == K_SIGMOID_BACKWARD:
            for i in range(n):
                v = y[i]
                r[i] = g[i] * v * (1 - v)
        elif kind == K_TANH_BACKWARD:
            for i in range(n):
                v = y[i]
                r[i] = g[i] * (1 - v * v)
        elif kind == K_BIAS_ADD:
            for i in range(n):
                r[i] = g[i] + y[i]
        else:
            for i in range(n):
                v = g[i] + y[i]
                r[i] = 0 if v < 0 else v
    else:
        for i in range(n):
            (<floating*>(o + i * so))[0] = _backward(kind, (<floating*>(a + i * sa))[0],
                                                     (<floating*>(b + i * sb))[0])


cdef inline void _inner(const _Args* f, char** p, const intp* st, intp n,
                        floating* tag) noexcept nogil:
    if f.kind == K_RELU or f.kind == K_SIGMOID or f.kind == K_TANH:
        _forward_run(f.kind, p[0], st[0], p[1], st[1], n, tag)
    else:
        _backward_run(f.kind, p[0], st[0], p[1], st[1], p[2], st[2], n, tag)


# ----------------------------------------------------------------------------------------
# Driver (shared with elementwise.pyx)
# ----------------------------------------------------------------------------------------

include "_driver.pxi"


cdef int _run(int kind, cnp.ndarray out, cnp.ndarray x1, cnp.ndarray x2,
              str name) except -1:
    cdef _Layout L
    cdef _Args f
    cdef int t = _check_float(out, x1, x2, None, name)
    _layout(&L, out, x1, x2, None, name)
    f.kind = kind
    if t == cnp.NPY_FLOAT32:
        _execute(&L, &f, <float*>NULL)
    else:
        _execute(&L, &f, <double*>NULL)
    if _tape is not None:
        _tape_call(t, &L, &f, (out, x1, x2))
    return 0


# ----------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------

def relu_forward(cnp.ndarray x, cnp.ndarray out):
    """out = max(x, 0); NaN stays NaN."""
    _run(K_RELU, out, x, None, "relu_forward")


def relu_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray out):
    """out = g where y > 0 else 0, with y the saved relu OUTPUT (so dx = 0 at x == 0)."""
    _run(K_RELU_BACKWARD, out, g, y, "relu_backward")


def sigmoid_forward(cnp.ndarray x, cnp.ndarray out):
    """out = 1 / (1 + exp(-x)), computed without overflow for any x."""
    _run(K_SIGMOID, out, x, None, "sigmoid_forward")


def sigmoid_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray out):
    """out = g * y * (1 - y), with y the saved sigmoid output."""
    _run(K_SIGMOID_BACKWARD, out, g, y, "sigmoid_backward")


def tanh_forward(cnp.ndarray x, cnp.ndarray out):
    """out = tanh(x)."""
    _run(K_TANH, out, x, None, "tanh_forward")


def tanh_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray out):
    """out = g * (1 - y * y), with y the saved tanh output."""
    _run(K_TANH_BACKWARD, out, g, y, "tanh_backward")


def bias_add(cnp.ndarray out2d, cnp.ndarray bias1d):
    """out2d += bias1d in place: out2d [N, M], bias1d [M] (the epilogue after a GEMM)."""
    _run(K_BIAS_ADD, out2d, out2d, bias1d, "bias_add")


def bias_relu(cnp.ndarray out2d, cnp.ndarray bias1d):
    """out2d = max(out2d + bias1d, 0) in place: out2d [N, M], bias1d [M]."""
    _run(K_BIAS_RELU, out2d, out2d, bias1d, "bias_relu")
