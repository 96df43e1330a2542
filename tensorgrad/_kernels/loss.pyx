"""Fused loss kernels: softmax cross-entropy, multiclass hinge (SVM) and mean squared error.

Strategy
- Scores are C-contiguous [N, C]; one row is one sample, so every loop is a `prange` over
  rows (serial below TG_PAR_MIN elements) with a serial pass along the row, which stays in
  cache between the passes.
- Softmax cross-entropy: forward computes the row's stable log-sum-exp
  lse_i = m_i + log Σ_j exp(s_ij − m_i) (m_i the row max, so exp never overflows and logits
  of magnitude 1e4 stay finite), keeps stats_i = (m_i, log Σ_j exp(s_ij − m_i)) in float64
  (all that backward needs: N×2 numbers, not the N×C probabilities) and writes the row loss
  lse_i − s_{i,y_i}. Backward is one pass: out_ij = w_i·(exp(s_ij − lse_i) − [j = y_i]).
- NaN scores give NaN losses (they are never clipped or maxed away).
- Multiclass hinge: L_i = Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + margin). Forward keeps nothing;
  backward recomputes the margin mask in its single pass: out_ij = w_i·[margin_ij > 0] for
  j ≠ y_i, and the correct class gets −w_i·(number of positive margins). A margin of exactly
  0 counts as inactive (gradient 0), as in the course's `margins > 0`.
- Both forwards can also write the gradient w·dL/ds in the same pass over the row (the Python
  layer asks for it when the scores require grad), so a training step reads the scores once.
- MSE over flat contiguous arrays: forward Σ (x − t)², backward out = w·2(x − t).
- Backward weights `w` are either one value per row / element (reduction='none') or a single
  value (length-1 array: 'mean' passes g/N, 'sum' passes g) so no broadcast array is built.
- Every sum accumulates in double; the per-row/per-element values are written in the input
  dtype. Totals never use an OpenMP reduction (its order depends on the thread count):
  each row's loss (MSE: each fixed block of MSE_BLK elements' sum) goes to a double buffer
  that is then summed serially, so the total is bit-identical for any number of threads.
  The Python layer validates labels; a label outside [0, C) that reaches a kernel anyway
  (written into a planned Graph's labels) gives that row a NaN loss and gradient.
- The two fused forwards tape themselves for planned Graph replay and write the reduced
  loss (sum or mean) themselves, so a replayed step has no Python in it.
"""
import numpy as np

from cython.parallel cimport prange
from libc.math cimport NAN, exp, log
from libc.stdint cimport int32_t, int64_t, uint32_t
from cython cimport floating

from tensorgrad._kernels._openmp cimport TG_PAR_MIN


# ---------------------------------------------------------------------------- exp(x), x <= 0
# libm's expf is a scalar call the compiler cannot vectorise, and it dominated the float32
# softmax kernels. Softmax only needs exp(x) for x = s − max <= 0, so this inline, branch-free
# version (Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2, Cephes' minimax polynomial for
# e^r, relative error ~1e-7, 2^n written into the exponent bits) vectorises with plain SSE2.
# float64 keeps libm's exp: it is used for gradient checks, where accuracy matters most.
ctypedef union _bits32:
    float f
    uint32_t u
    int32_t i

cdef enum:
    _NEG87_BITS = 0xc2ae0000    # the bit pattern of -87.0f
    _NEGINF_BITS = 0xff800000   # the bit pattern of -inf (above it: negative NaNs)


cdef inline float _expf_neg(float x) noexcept nogil:
    cdef float n, r, p
    cdef _bits32 b
    cdef uint32_t u, lo, nan
    # Clamp x in [-inf, -87] to -87 (below it e^x is not a normal float), working on the bits:
    # for x <= 0 they grow as x decreases, so an unsigned min clamps, and a mask keeps
    # negative NaNs (bits above -inf's) so that they propagate. Integer min/compare/mask,
    # unlike a float compare (which may trap), vectorise. -inf gives ~1e-38 instead of 0.
    b.f = x
    u = b.u
    lo = u if u < <uint32_t>_NEG87_BITS else <uint32_t>_NEG87_BITS
    nan = <uint32_t>0 - <uint32_t>(u > <uint32_t>_NEGINF_BITS)
    b.u = (u & nan) | (lo & ~nan)
    x = b.f
    # 1.5·2^23 added and removed rounds to the nearest integer (default rounding mode).
    n = (x * <float>1.44269504088896341 + <float>12582912.0) - <float>12582912.0
    r = x - n * <float>0.693359375
    r = r + n * <float>2.12194440e-4
    # Cephes' expf polynomial: e^r ≈ 1 + r + r²·P(r), P of degree 5 (minimax on |r| <= ln2/2)
    p = <float>1.9875691500e-4
    p = p * r + <float>1.3981999507e-3
    p = p * r + <float>8.3334519073e-3
    p = p * r + <float>4.1665795894e-2
    p = p * r + <float>1.6666665459e-1
    p = p * r + <float>5.0000001201e-1
    p = p * (r * r) + r + <float>1.0
    b.i = (<int32_t>n + 127) << 23
    return p * b.f


# ---------------------------------------------------------------------------- softmax CE
cdef enum:
    _BLK = 256      # exps of one row are summed in blocks of this many (a stack buffer)


cdef inline floating _exp_neg_t(floating x) noexcept nogil:
    if floating is float:
        return _expf_neg(x)
    else:
        return exp(x)


cdef inline floating _row_max(const floating* s, Py_ssize_t C) noexcept nogil:
    # Four independent running maxima break the loop-carried dependency.
    cdef floating m0 = s[0], m1 = s[0], m2 = s[0], m3 = s[0]
    cdef Py_ssize_t j = 0
    while j + 4 <= C:
        m0 = s[j] if s[j] > m0 else m0
        m1 = s[j + 1] if s[j + 1] > m1 else m1
        m2 = s[j + 2] if s[j + 2] > m2 else m2
        m3 = s[j + 3] if s[j + 3] > m3 else m3
        j += 4
    while j < C:
        m0 = s[j] if s[j] > m0 else m0
        j += 1
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


cdef inline double _sum4(const floating* buf, Py_ssize_t n) noexcept nogil:
    """Σ buf in double with four accumulators (a float→double sum does not vectorise)."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        a0 += buf[j]
        a1 += buf[j + 1]
        a2 += buf[j + 2]
        a3 += buf[j + 3]
        j += 4
    while j < n:
        a0 += buf[j]
        j += 1
    return (a0 + a1) + (a2 + a3)


cdef inline double _row_logsumexp_shifted(const floating* s, Py_ssize_t C,
                                          floating m) noexcept nogil:
    """log Σ_j exp(s_j − m): a block of exps goes to a stack buffer (a loop the compiler
    vectorises), then is summed in double."""
    cdef floating buf[_BLK]
    cdef double acc = 0.0
    cdef Py_ssize_t j0 = 0, j, nb
    while j0 < C:
        nb = C - j0 if C - j0 < _BLK else _BLK
        for j in range(nb):
            buf[j] = _exp_neg_t(s[j0 + j] - m)
        acc += _sum4(buf, nb)
        j0 += nb
    return log(acc)


cdef inline double _row_xent_grad(const floating* s, Py_ssize_t C, Py_ssize_t y, floating m,
                                  double w, floating* g) noexcept nogil:
    """Forward and backward of one row at once: g_j = w·(softmax(s)_j − [j = y]); returns
    log Σ_j exp(s_j − m). The exps are written to g, summed, then scaled while still in cache."""
    cdef double sum_exp
    cdef floating scale
    cdef Py_ssize_t j
    for j in range(C):
        g[j] = _exp_neg_t(s[j] - m)
    sum_exp = _sum4(g, C)
    scale = <floating>(w / sum_exp)
    for j in range(C):
        g[j] = g[j] * scale
    g[y] = g[y] - <floating>w
    return log(sum_exp)


cdef inline void _bad_row(Py_ssize_t i, Py_ssize_t C, floating* loss, double* part,
                          floating* grad) noexcept nogil:
    """Row i's label is outside [0, C): only a replayed Graph fed a bad label gets here (the
    Python layer validates eager calls). Its loss and gradient are NaN, and no memory
    outside the row is touched."""
    cdef Py_ssize_t j
    loss[i] = <floating>NAN
    part[i] = NAN
    if grad != NULL:
        for j in range(C):
            grad[i * C + j] = <floating>NAN


cdef double _xent_core(const floating* s, const int64_t* y, double* stats, floating* loss,
                       double w, floating* grad, double* part, Py_ssize_t N,
                       Py_ssize_t C) noexcept nogil:
    """The body of xent_forward on raw C-contiguous memory (grad NULL: no gradient)."""
    cdef Py_ssize_t i
    cdef double li, ls
    cdef floating m
    if N == 0:
        return 0.0
    for i in prange(N, schedule="static", use_threads_if=N * C >= TG_PAR_MIN):
        if y[i] < 0 or y[i] >= C:
            stats[2 * i] = NAN
            stats[2 * i + 1] = NAN
            _bad_row(i, C, loss, part, grad)
            continue
        m = _row_max(s + i * C, C)
        if grad != NULL:
            ls = _row_xent_grad(s + i * C, C, y[i], m, w, grad + i * C)
        else:
            ls = _row_logsumexp_shifted(s + i * C, C, m)
        stats[2 * i] = m
        stats[2 * i + 1] = ls
        li = (<double>m - <double>s[i * C + y[i]]) + ls
        loss[i] = <floating>li
        part[i] = li
    return _sum4(part, N)


cdef inline void _write_total(double total, Py_ssize_t N, int mode, floating* out) noexcept nogil:
    """out[0] = the loss as reduced: mode 1 the sum, 2 the mean (NaN for N = 0), 0 nothing."""
    if mode == 1:
        out[0] = <floating>total
    elif mode == 2:
        out[0] = <floating>(total / N) if N else <floating>NAN


def xent_forward(const floating[:, ::1] s, const int64_t[::1] y, double[:, ::1] stats,
                 floating[::1] loss, double w, floating[:, ::1] grad, floating[::1] out,
                 int mode):
    """Row losses loss_i = lse_i − s_{i,y_i}; returns Σ_i loss_i (in double) and writes it
    reduced to out[0] (``mode`` 1: the sum, 2: the mean; 0: out is not used).

    stats[i] = (m_i, log Σ_j exp(s_ij − m_i)) with m_i the row max, so lse_i = m_i + stats[i, 1].
    Backward uses the two parts separately: (s_ij − m_i) − log-sum stays accurate in float32
    even for logits of magnitude 1e4, where rounding lse_i itself would not.
    When `grad` has N rows it also receives the gradient w·(softmax(s) − onehot(y)) computed
    in the same pass (the row is still in cache); pass a 0-row array to skip it.
    """
    cdef Py_ssize_t N = s.shape[0], C = s.shape[1]
    cdef double[::1] part = np.empty(max(N, 1), np.float64)
    cdef floating* g = &grad[0, 0] if grad.shape[0] == N and N > 0 else NULL
    cdef double total
    with nogil:
        total = _xent_core(&s[0, 0] if N else NULL, &y[0] if N else NULL,
                           &stats[0, 0] if N else NULL, &loss[0] if N else NULL, w, g,
                           &part[0], N, C)
        _write_total(total, N, mode, &out[0] if mode else NULL)
    if _tape is not None:
        _tape_loss(0, floating is float, N, C, &s[0, 0] if N else NULL, &y[0] if N else NULL,
                   &stats[0, 0] if N else NULL, &loss[0] if N else NULL, g, &part[0],
                   &out[0] if mode else NULL, w, 0.0, mode, _keep(s, y, loss, out, mode,
                                                              (stats, grad, part)))
    return total


cdef inline void _xent_back_row(const floating* s, Py_ssize_t C, Py_ssize_t y, floating m,
                                floating ls, floating w, floating* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(C):
        out[j] = w * _exp_neg_t((s[j] - m) - ls)
    out[y] = out[y] - w


def xent_backward(const floating[:, ::1] s, const int64_t[::1] y, const double[:, ::1] stats,
                  const floating[::1] w, floating[:, ::1] out):
    """out_ij = w_i·(softmax(s)_ij − [j = y_i]); w has length N or 1."""
    cdef Py_ssize_t N = s.shape[0], C = s.shape[1], i
    cdef bint per_row = w.shape[0] == N and N > 1
    for i in prange(N, nogil=True, schedule="static", use_threads_if=N * C >= TG_PAR_MIN):
        _xent_back_row(&s[i, 0], C, y[i], <floating>stats[i, 0], <floating>stats[i, 1],
                       w[i] if per_row else w[0], &out[i, 0])


# ---------------------------------------------------------------------------- hinge (SVM)
cdef inline double _hinge_row(const floating* s, Py_ssize_t C, Py_ssize_t y,
                              floating margin) noexcept nogil:
    # Branch-free and blocked like the softmax rows (random margins defeat the branch
    # predictor); the j = y_i term equals max(0, margin) and is taken out afterwards.
    cdef floating buf[_BLK]
    cdef floating sy = s[y], d
    cdef double acc = 0.0
    cdef Py_ssize_t j0 = 0, j, nb
    while j0 < C:
        nb = C - j0 if C - j0 < _BLK else _BLK
        for j in range(nb):
            d = (s[j0 + j] - sy) + margin
            buf[j] = d if not d <= 0 else 0     # written so that NaN propagates
        acc += _sum4(buf, nb)
        j0 += nb
    return acc - (margin if margin > 0 else 0)


cdef inline double _hinge_row_grad(const floating* s, Py_ssize_t C, Py_ssize_t y,
                                   floating margin, floating w, floating* g) noexcept nogil:
    """Forward and backward of one row at once: returns the row loss and writes its gradient
    (as _hinge_back_row). The clipped margins go to g first, are summed, then turned into
    the mask while the row is still in cache."""
    cdef Py_ssize_t j
    cdef floating sy = s[y], d
    cdef double total
    cdef int count = 0, pos
    for j in range(C):
        d = (s[j] - sy) + margin
        g[j] = d if not d <= 0 else 0
    total = _sum4(g, C) - (margin if margin > 0 else 0)
    for j in range(C):
        pos = g[j] > 0
        g[j] = w if pos else 0
        count += pos
    g[y] = -w * (count - (margin > 0))
    return total


cdef double _hinge_core(const floating* s, const int64_t* y, floating margin, floating* loss,
                        floating w, floating* grad, double* part, Py_ssize_t N,
                        Py_ssize_t C) noexcept nogil:
    """The body of hinge_forward on raw C-contiguous memory (grad NULL: no gradient)."""
    cdef Py_ssize_t i
    cdef double li
    if N == 0:
        return 0.0
    for i in prange(N, schedule="static", use_threads_if=N * C >= TG_PAR_MIN):
        if y[i] < 0 or y[i] >= C:
            _bad_row(i, C, loss, part, grad)
            continue
        if grad != NULL:
            li = _hinge_row_grad(s + i * C, C, y[i], margin, w, grad + i * C)
        else:
            li = _hinge_row(s + i * C, C, y[i], margin)
        loss[i] = <floating>li
        part[i] = li
    return _sum4(part, N)


def hinge_forward(const floating[:, ::1] s, const int64_t[::1] y, floating margin,
                  floating[::1] loss, floating w, floating[:, ::1] grad, floating[::1] out,
                  int mode):
    """Row losses Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + margin); returns their sum and writes
    it reduced to out[0] (``mode`` as in xent_forward).

    When `grad` has N rows it also receives the gradient w·dL_i/ds_i in the same pass (the
    row is still in cache); pass a 0-row array to skip it.
    """
    cdef Py_ssize_t N = s.shape[0], C = s.shape[1]
    cdef double[::1] part = np.empty(max(N, 1), np.float64)
    cdef floating* g = &grad[0, 0] if grad.shape[0] == N and N > 0 else NULL
    cdef double total
    with nogil:
        total = _hinge_core(&s[0, 0] if N else NULL, &y[0] if N else NULL, margin,
                            &loss[0] if N else NULL, w, g, &part[0], N, C)
        _write_total(total, N, mode, &out[0] if mode else NULL)
    if _tape is not None:
        _tape_loss(1, floating is float, N, C, &s[0, 0] if N else NULL, &y[0] if N else NULL,
                   NULL, &loss[0] if N else NULL, g, &part[0], &out[0] if mode else NULL,
                   w, margin, mode, _keep(s, y, loss, out, mode, (grad, part)))
    return total


cdef inline void _hinge_back_row(const floating* s, Py_ssize_t C, Py_ssize_t y,
                                 floating margin, floating w, floating* out) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating sy = s[y]
    cdef int count = 0, pos
    for j in range(C):
        pos = (s[j] - sy) + margin > 0
        out[j] = w if pos else 0
        count += pos
    # the loop also counted j = y_i itself when margin > 0
    out[y] = -w * (count - (margin > 0))


def hinge_backward(const floating[:, ::1] s, const int64_t[::1] y, floating margin,
                   const floating[::1] w, floating[:, ::1] out):
    """out_ij = w_i·[margin_ij > 0] (j ≠ y_i), out_{i,y_i} = −w_i·count_i; w has length N or 1."""
    cdef Py_ssize_t N = s.shape[0], C = s.shape[1], i
    cdef bint per_row = w.shape[0] == N and N > 1
    for i in prange(N, nogil=True, schedule="static", use_threads_if=N * C >= TG_PAR_MIN):
        _hinge_back_row(&s[i, 0], C, y[i], margin, w[i] if per_row else w[0], &out[i, 0])


# ---------------------------------------------------------------------------- MSE
cdef enum:
    MSE_BLK = 4096      # elements per partial sum of mse_forward (fixed: see the docstring)


cdef inline double _mse_block(const floating* x, const floating* t, floating* sq,
                              Py_ssize_t n) noexcept nogil:
    """Σ (x − t)² over one block in double (four accumulators), writing sq when not NULL."""
    cdef double a[4]
    cdef double d
    cdef Py_ssize_t k
    a[0] = a[1] = a[2] = a[3] = 0.0
    for k in range(n):
        d = <double>x[k] - <double>t[k]
        if sq != NULL:
            sq[k] = <floating>(d * d)
        a[k & 3] += d * d
    return (a[0] + a[1]) + (a[2] + a[3])


def mse_forward(const floating[::1] x, const floating[::1] t, floating[::1] sq):
    """sq_k = (x_k − t_k)² (skipped when sq is empty); returns Σ_k (x_k − t_k)² in double,
    as fixed blocks of MSE_BLK elements summed in parallel, then their sums serially."""
    cdef Py_ssize_t n = x.shape[0], nb = (n + MSE_BLK - 1) // MSE_BLK, b, k0
    cdef bint keep = sq.shape[0] == n
    if n == 0:
        return 0.0
    cdef double[::1] part = np.empty(nb, np.float64)
    for b in prange(nb, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
        k0 = b * MSE_BLK
        part[b] = _mse_block(&x[k0], &t[k0], &sq[k0] if keep else NULL,
                             min(MSE_BLK, n - k0))
    return _sum4(&part[0], nb)


def mse_backward(const floating[::1] x, const floating[::1] t, const floating[::1] w,
                 floating[::1] out):
    """out_k = 2·w_k·(x_k − t_k); w has length n or 1."""
    cdef Py_ssize_t n = x.shape[0], k
    cdef bint per_elem = w.shape[0] == n and n > 1
    cdef double w0 = 2.0 * w[0] if w.shape[0] > 0 else 0.0
    if per_elem:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
            out[k] = <floating>(2.0 * <double>w[k] * (<double>x[k] - <double>t[k]))
    else:
        for k in prange(n, nogil=True, schedule="static", use_threads_if=n >= TG_PAR_MIN):
            out[k] = <floating>(w0 * (<double>x[k] - <double>t[k]))


# --- taping, for planned Graph replay (see _driver.pxi for the protocol) ---------------------
# The two fused forwards tape themselves: a replay reruns the same core on the same memory
# (scores, labels, the node's stats / row-loss / gradient buffers and the reduced output).
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uintptr_t

cdef struct _LossRecord:
    int kind            # 0 cross-entropy, 1 hinge
    bint f32
    Py_ssize_t N
    Py_ssize_t C
    char* s
    char* y
    char* stats
    char* loss
    char* grad          # NULL: no gradient
    char* part
    char* out
    double w
    double margin
    int mode

cdef object _tape = None


def set_tape(tape):
    """Start (a list) or stop (None) taping xent_forward / hinge_forward calls."""
    global _tape
    _tape = tape


cdef void _run_loss(const char* rec) noexcept:
    cdef const _LossRecord* r = <const _LossRecord*>rec
    cdef double total
    with nogil:
        if r.f32:
            if r.kind == 0:
                total = _xent_core(<float*>r.s, <int64_t*>r.y, <double*>r.stats,
                                   <float*>r.loss, r.w, <float*>r.grad, <double*>r.part,
                                   r.N, r.C)
            else:
                total = _hinge_core(<float*>r.s, <int64_t*>r.y, <float>r.margin,
                                    <float*>r.loss, <float>r.w, <float*>r.grad,
                                    <double*>r.part, r.N, r.C)
            _write_total(total, r.N, r.mode, <float*>r.out)
        else:
            if r.kind == 0:
                total = _xent_core(<double*>r.s, <int64_t*>r.y, <double*>r.stats,
                                   <double*>r.loss, r.w, <double*>r.grad, <double*>r.part,
                                   r.N, r.C)
            else:
                total = _hinge_core(<double*>r.s, <int64_t*>r.y, r.margin, <double*>r.loss,
                                    r.w, <double*>r.grad, <double*>r.part, r.N, r.C)
            _write_total(total, r.N, r.mode, <double*>r.out)


cdef int _tape_loss(int kind, bint f32, Py_ssize_t N, Py_ssize_t C, const void* s,
                    const void* y, void* stats, void* loss, void* grad, void* part, void* out,
                    double w, double margin, int mode, tuple keep) except -1:
    cdef _LossRecord r
    r.kind = kind
    r.f32 = f32
    r.N = N
    r.C = C
    r.s = <char*>s
    r.y = <char*>y
    r.stats = <char*>stats
    r.loss = <char*>loss
    r.grad = <char*>grad
    r.part = <char*>part
    r.out = <char*>out
    r.w = w
    r.margin = margin
    r.mode = mode
    _tape.append((<uintptr_t>&_run_loss, PyBytes_FromStringAndSize(<char*>&r, sizeof(r)),
                  keep))
    return 0


cdef tuple _keep(object s, object y, object loss, object out, int mode, tuple extra):
    """The record's arrays, as _tape.Capture.kept reads them: (what it writes, what it reads,
    ..., the other buffers it writes, kept alive)."""
    return ((out if mode else loss).base, s.base, y.base, tuple(b.base for b in extra))
