"""Fused optimiser updates: one pass over memory per parameter, no temporaries.

Each kernel reads the parameter p, its gradient g and the optimiser state (momentum buffer,
Adam moments) element by element and writes p and the state back in place, so an update is
a single streaming pass over 2–4 flat C-contiguous arrays of the parameter's dtype. The
arithmetic is done in that dtype, as PyTorch does (so float32 results match its updates and
run 4 SIMD lanes wide); the hyper-parameters arrive as double and are rounded once. Loops
are `prange` over elements (serial below TG_PAR_MIN). The formulas are PyTorch's
(torch.optim.SGD/Adam, amsgrad=False); the Python layer keeps step counts and bias
corrections.

The option flags (first step, Nesterov, AdamW) become loop-invariant coefficients or select
between separate loops rather than being tested per element: a branch in the loop body
stops the compiler from vectorising it.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from cython cimport floating

from tensorgrad._kernels._openmp cimport TG_PAR_MIN


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


# --- one element of each update: the eager kernels below and the plan's update records
# (the end of this module) run the same inline code, so a planned update is bitwise eager's.

cdef inline floating _sgd(floating p, floating g, floating a, floating wd) noexcept nogil:
    return p - a * (g + wd * p)


cdef inline floating _momentum(floating* p, floating g, floating* buf, floating a,
                               floating mu, floating wd, floating keep, floating take,
                               bint nesterov) noexcept nogil:
    """Updates buf[0] and p[0] (the parameter's new value is also returned)."""
    cdef floating d = g + wd * p[0]
    cdef floating b = keep * buf[0] + take * d
    buf[0] = b
    if nesterov:
        p[0] = p[0] - a * (d + mu * b)
    else:
        p[0] = p[0] - a * b
    return p[0]


cdef inline void _adam(floating* p, floating g, floating* m, floating* v, floating wd_grad,
                       floating b1, floating c1, floating b2, floating c2, floating shrink,
                       floating step_size, floating inv_bc2_sqrt,
                       floating e) noexcept nogil:
    cdef floating gk = g + wd_grad * p[0]
    cdef floating mk = b1 * m[0] + c1 * gk
    cdef floating vk = b2 * v[0] + c2 * gk * gk
    m[0] = mk
    v[0] = vk
    p[0] = p[0] * shrink - step_size * mk / (_sqrt(vk) * inv_bc2_sqrt + e)


def sgd_step(floating[::1] p, const floating[::1] g, double lr, double weight_decay):
    """Plain SGD: p ← p − lr·(g + wd·p)."""
    cdef Py_ssize_t n = p.shape[0], k
    cdef floating a = <floating>lr, wd = <floating>weight_decay
    for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        p[k] = _sgd(p[k], g[k], a, wd)


def sgd_momentum_step(floating[::1] p, const floating[::1] g, floating[::1] buf, double lr,
                      double momentum, double dampening, double weight_decay, bint nesterov,
                      bint first):
    """SGD with momentum (PyTorch):
        d = g + wd·p
        buf = d                                  on the first step
        buf = momentum·buf + (1 − dampening)·d   afterwards
        p ← p − lr·(d + momentum·buf)            Nesterov
        p ← p − lr·buf                           otherwise
    """
    cdef Py_ssize_t n = p.shape[0], k
    cdef bint par = n >= TG_PAR_MIN
    cdef floating a = <floating>lr, mu = <floating>momentum, wd = <floating>weight_decay
    # first step: buf = d (0·buf + 1·d, as PyTorch clones d); later: mu·buf + (1 − damp)·d
    cdef floating keep = <floating>(0.0 if first else momentum)
    cdef floating take = <floating>(1.0 if first else 1.0 - dampening)
    if first:
        # buf is fresh (uninitialised) memory: clear it so that 0·buf cannot be 0·NaN
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            buf[k] = 0
    if nesterov:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            _momentum(&p[k], g[k], &buf[k], a, mu, wd, keep, take, True)
    else:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=par):
            _momentum(&p[k], g[k], &buf[k], a, mu, wd, keep, take, False)


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
              double lr, double beta1, double beta2, double eps, double weight_decay,
              double bias_correction1, double bias_correction2, bint decoupled):
    """Adam (PyTorch, amsgrad=False), with bc1 = 1 − β1^t, bc2 = 1 − β2^t:
        g' = g + wd·p                 (Adam; AdamW instead scales p by 1 − lr·wd first)
        m = β1·m + (1 − β1)·g'
        v = β2·v + (1 − β2)·g'²
        p ← p − (lr / bc1)·m / (√v / √bc2 + eps)
    """
    cdef Py_ssize_t n = p.shape[0], k
    # Adam folds wd into the gradient, AdamW into a shrink of p: the unused one is 0 / 1
    cdef floating step_size = <floating>(lr / bias_correction1)
    cdef floating inv_bc2_sqrt = <floating>(1.0 / sqrt(bias_correction2))
    cdef floating wd_grad = <floating>(0.0 if decoupled else weight_decay)
    cdef floating shrink = <floating>(1.0 - lr * weight_decay if decoupled else 1.0)
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2, e = <floating>eps
    cdef floating c1 = <floating>(1.0 - beta1), c2 = <floating>(1.0 - beta2)
    for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        _adam(&p[k], g[k], &m[k], &v[k], wd_grad, b1, c1, b2, c2, shrink, step_size,
              inv_bc2_sqrt, e)


# --- planned updates (Graph.step, tensorgrad/replay.py) ---------------------------------------
# An update record applies one optimiser update to one parameter when the plan runs it. Its
# hyper-parameters are read from a float64 array that the optimizer refreshes before each
# run (a learning-rate schedule changes them between steps):
#   SGD kinds: [lr, weight_decay, momentum, dampening]
#   Adam kinds: [lr, weight_decay, beta1, beta2, eps, bias_correction1, bias_correction2]
# A fused record first computes the gradient itself, g = a·b + u (the last pass of the
# backward that writes g, elementwise.muladd), stores it and updates p from it in the same
# pass: p and g are read or written once instead of twice.
cimport numpy as cnp
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uintptr_t

cnp.import_array()

ctypedef Py_ssize_t intp

cdef enum:
    U_SGD = 0
    U_MOMENTUM = 1
    U_NESTEROV = 2
    U_ADAM = 3
    U_ADAMW = 4

SGD, MOMENTUM, NESTEROV, ADAM, ADAMW = U_SGD, U_MOMENTUM, U_NESTEROV, U_ADAM, U_ADAMW
_HYPER = {U_SGD: 4, U_MOMENTUM: 4, U_NESTEROV: 4, U_ADAM: 7, U_ADAMW: 7}
_STATE = {U_SGD: 0, U_MOMENTUM: 1, U_NESTEROV: 1, U_ADAM: 2, U_ADAMW: 2}


cdef struct _UpdateRecord:
    int t               # NPY_FLOAT32 or NPY_FLOAT64
    int kind
    intp n
    char* p
    char* g
    char* s1            # momentum buffer, or Adam's exp_avg
    char* s2            # Adam's exp_avg_sq
    const double* h     # hyper-parameters (see above)
    bint fused          # g = a·b + u first
    char* a
    char* b
    char* u
    intp sa             # element steps of a, b, u: 1, or 0 for a single value (only b,
    intp sb             # after update_record orders them; with n == 1 anything)
    intp su


cdef inline floating _grad(floating* g, intp k, int mode, const floating* a, floating s,
                           const floating* b, const floating* u) noexcept nogil:
    """The gradient at k: g[k] (mode 0), or in a fused record g[k] = a·b + u computed and
    stored first, b one value s (mode 1) or an array (mode 2), the product rounded to the
    dtype before the sum (bitwise elementwise.muladd). Called with a literal mode, so each
    loop below compiles to its own straight, vectorisable code."""
    cdef floating x
    if mode == 0:
        return g[k]
    x = a[k] * (s if mode == 1 else b[k])
    x = x + u[k]
    g[k] = x
    return x


cdef void _sgd_block(intp k0, intp k1, int mode, floating* p, floating* g,
                     const floating* a, floating s, const floating* b, const floating* u,
                     floating lr, floating wd) noexcept nogil:
    cdef intp k
    if mode == 0:
        for k in range(k0, k1):
            p[k] = _sgd(p[k], g[k], lr, wd)
    elif mode == 1:
        for k in range(k0, k1):
            p[k] = _sgd(p[k], _grad(g, k, 1, a, s, b, u), lr, wd)
    else:
        for k in range(k0, k1):
            p[k] = _sgd(p[k], _grad(g, k, 2, a, s, b, u), lr, wd)


cdef void _momentum_block(intp k0, intp k1, int mode, floating* p, floating* g,
                          const floating* a, floating s, const floating* b,
                          const floating* u, floating* buf, floating lr, floating mu,
                          floating wd, floating take, bint nesterov) noexcept nogil:
    # after the first step: keep = momentum (see sgd_momentum_step)
    cdef intp k
    if mode == 0:
        for k in range(k0, k1):
            _momentum(&p[k], g[k], &buf[k], lr, mu, wd, mu, take, nesterov)
    elif mode == 1:
        for k in range(k0, k1):
            _momentum(&p[k], _grad(g, k, 1, a, s, b, u), &buf[k], lr, mu, wd, mu, take,
                      nesterov)
    else:
        for k in range(k0, k1):
            _momentum(&p[k], _grad(g, k, 2, a, s, b, u), &buf[k], lr, mu, wd, mu, take,
                      nesterov)


cdef void _adam_block(intp k0, intp k1, int mode, floating* p, floating* g,
                      const floating* a, floating s, const floating* b, const floating* u,
                      floating* m, floating* v, floating wd_grad, floating b1, floating c1,
                      floating b2, floating c2, floating shrink, floating step_size,
                      floating inv_bc2_sqrt, floating e) noexcept nogil:
    cdef intp k
    if mode == 0:
        for k in range(k0, k1):
            _adam(&p[k], g[k], &m[k], &v[k], wd_grad, b1, c1, b2, c2, shrink, step_size,
                  inv_bc2_sqrt, e)
    elif mode == 1:
        for k in range(k0, k1):
            _adam(&p[k], _grad(g, k, 1, a, s, b, u), &m[k], &v[k], wd_grad, b1, c1, b2, c2,
                  shrink, step_size, inv_bc2_sqrt, e)
    else:
        for k in range(k0, k1):
            _adam(&p[k], _grad(g, k, 2, a, s, b, u), &m[k], &v[k], wd_grad, b1, c1, b2, c2,
                  shrink, step_size, inv_bc2_sqrt, e)


cdef void _update_block(const _UpdateRecord* r, intp k0, intp k1,
                        floating* tag) noexcept nogil:
    """Elements [k0, k1) of the update: the eager kernel's arithmetic (sgd_step,
    sgd_momentum_step after its first step, adam_step), its constants rounded the same
    way. Everything arrives as arguments of the per-kind loop (locals the compiler keeps
    in registers and can vectorise with)."""
    cdef int mode = 0 if not r.fused else (1 if r.sb == 0 else 2)
    cdef const double* h = r.h
    cdef floating* p = <floating*>r.p
    cdef floating* g = <floating*>r.g
    cdef const floating* a = <const floating*>r.a
    cdef const floating* b = <const floating*>r.b
    cdef const floating* u = <const floating*>r.u
    cdef floating s = b[0] if mode == 1 else 0
    cdef bint decoupled = r.kind == U_ADAMW
    if r.kind == U_SGD:
        _sgd_block(k0, k1, mode, p, g, a, s, b, u, <floating>h[0], <floating>h[1])
    elif r.kind == U_MOMENTUM or r.kind == U_NESTEROV:
        _momentum_block(k0, k1, mode, p, g, a, s, b, u, <floating*>r.s1, <floating>h[0],
                        <floating>h[2], <floating>h[1], <floating>(1.0 - h[3]),
                        r.kind == U_NESTEROV)
    else:
        _adam_block(k0, k1, mode, p, g, a, s, b, u, <floating*>r.s1, <floating*>r.s2,
                    <floating>(0.0 if decoupled else h[1]),
                    <floating>h[2], <floating>(1.0 - h[2]),
                    <floating>h[3], <floating>(1.0 - h[3]),
                    <floating>(1.0 - h[0] * h[1] if decoupled else 1.0),
                    <floating>(h[0] / h[5]), <floating>(1.0 / sqrt(h[6])),
                    <floating>h[4])


cdef enum:
    UPDATE_BLOCK = 16384    # elements per task of a planned update


cdef void _update_run(const _UpdateRecord* r, floating* tag) noexcept nogil:
    cdef intp n = r.n, nb = (r.n + UPDATE_BLOCK - 1) // UPDATE_BLOCK, j, k1
    for j in prange(nb, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        k1 = (j + 1) * UPDATE_BLOCK
        _update_block(r, j * UPDATE_BLOCK, k1 if k1 < n else n, tag)


cdef void _run_update(const char* rec) noexcept:
    cdef const _UpdateRecord* r = <const _UpdateRecord*>rec
    with nogil:
        if r.t == cnp.NPY_FLOAT32:
            _update_run(r, <float*>NULL)
        else:
            _update_run(r, <double*>NULL)


RUN_UPDATE = <uintptr_t>&_run_update      # the address update records run with


cdef char* _operand(cnp.ndarray x, int t, intp n, str what, intp* step) except NULL:
    """x's data for a record over n elements of dtype t: C-contiguous with n elements
    (step 1), or a single value (step 0)."""
    if cnp.PyArray_TYPE(x) != t:
        raise TypeError(f"update_record: {what} has dtype {x.dtype}, the parameter "
                        f"{cnp.PyArray_DescrFromType(t)}")
    if cnp.PyArray_SIZE(x) == n and cnp.PyArray_IS_C_CONTIGUOUS(x):
        step[0] = 1
    elif cnp.PyArray_SIZE(x) == 1:
        step[0] = 0
    else:
        raise ValueError(f"update_record: {what} (shape {(<object>x).shape}) is neither C-contiguous "
                         f"with the parameter's {n} elements nor a single value")
    return <char*>cnp.PyArray_DATA(x)


def update_record(int kind, cnp.ndarray p, cnp.ndarray g, tuple state, cnp.ndarray hyper,
                  fused=None):
    """A plan step ``(address, record, keepalive)`` that updates ``p`` in place from its
    gradient ``g`` as the eager kernel of ``kind`` (SGD, MOMENTUM, NESTEROV, ADAM, ADAMW)
    does, reading its hyper-parameters from ``hyper`` when it runs.

    ``state``: () for SGD, (momentum_buffer,) for the momentum kinds (after their first
    step), (exp_avg, exp_avg_sq) for Adam. ``fused=(a, b, u)``: the record first computes
    ``g = a·b + u`` itself (u and one of a, b C-contiguous like p, the other too or a
    single value).
    The keepalive lists what the record writes first (p), then, in a tuple, the other
    arrays it writes, then what it reads.
    """
    if kind not in _HYPER:
        raise ValueError(f"update_record: unknown kind {kind}")
    cdef int t = cnp.PyArray_TYPE(p)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"update_record: parameter dtype {p.dtype} (float32 or float64)")
    cdef intp n = cnp.PyArray_SIZE(p)
    if not cnp.PyArray_IS_C_CONTIGUOUS(p) or not cnp.PyArray_ISWRITEABLE(p):
        raise ValueError("update_record: the parameter must be C-contiguous and writeable")
    if len(state) != _STATE[kind]:
        raise ValueError(f"update_record: kind {kind} keeps {_STATE[kind]} state arrays, "
                         f"got {len(state)}")
    if cnp.PyArray_TYPE(hyper) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(hyper) \
            or cnp.PyArray_SIZE(hyper) < _HYPER[kind]:
        raise ValueError(f"update_record: hyper must be a C-contiguous float64 array of at "
                         f"least {_HYPER[kind]} values")
    cdef _UpdateRecord r
    cdef intp step
    r.t = t
    r.kind = kind
    r.n = n
    r.p = <char*>cnp.PyArray_DATA(p)
    r.g = _operand(g, t, n, "the gradient", &step)
    if step != 1 and n != 1:
        raise ValueError("update_record: the gradient must be C-contiguous like the parameter")
    r.s1 = r.s2 = NULL
    for i, s in enumerate(state):
        if not isinstance(s, cnp.ndarray):
            raise TypeError(f"update_record: state {i} is a {type(s).__name__}")
        ptr = _operand(s, t, n, f"state {i}", &step)
        if step != 1 and n != 1:
            raise ValueError(f"update_record: state {i} must be C-contiguous like the "
                             f"parameter")
        if i == 0:
            r.s1 = ptr
        else:
            r.s2 = ptr
    r.h = <const double*>cnp.PyArray_DATA(hyper)
    r.fused = fused is not None
    r.a = r.b = r.u = NULL
    r.sa = r.sb = r.su = 0
    written = tuple(state)
    if fused is not None:
        a, b, u = fused
        r.a = _operand(a, t, n, "a", &r.sa)
        r.b = _operand(b, t, n, "b", &r.sb)
        r.u = _operand(u, t, n, "u", &r.su)
        if r.sa == 0 and n != 1:         # the one value second (a·b = b·a, bitwise)
            r.a, r.b, r.sa, r.sb = r.b, r.a, r.sb, r.sa
        if (r.sa != 1 or r.su != 1) and n != 1:
            raise ValueError("update_record: a fused gradient needs a and u C-contiguous "
                             "like the parameter (b may be one value)")
        written += (g,)
        reads = (a, b, u, hyper)
    else:
        reads = (g, hyper)
    return (<uintptr_t>&_run_update, PyBytes_FromStringAndSize(<char*>&r, sizeof(r)),
            (p, written) + reads)


def update_record_info(bytes rec):
    """``(kind, fused)`` of an update record, for the plan's fusion pass."""
    cdef const _UpdateRecord* r = <const _UpdateRecord*><const char*>rec
    return r.kind, bool(r.fused)
