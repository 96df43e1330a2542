"""Normalisation and dropout kernels: batch norm, layer norm, dropout.

Strategy
--------
Batch norm sees its input as a C-contiguous [N, C, S] array (S = the product of the spatial
dims, 1 for [N, C]); a channel's M = N·S values are N contiguous runs of S elements.

- Statistics (training forward) and the backward's two sums are per-channel reductions in
  double. With S > 1 one task is one channel (OpenMP over channels), reading its N runs in
  order, and the same task then writes that channel's output (forward) or gx (backward)
  while the channel is still in the core's L2 cache (``bn_train_forward``,
  ``bn_train_backward``). With S == 1 ([N, C] inputs) one reduction task is a fixed block of
  RB rows, summing every channel as a vector; the block sums are added in block order, and
  the output is a separate elementwise pass. Either way the decomposition depends only on
  the shape, so results are bitwise the same for any number of threads.
- The mean and variance come from ONE pass over shifted values: with k the channel's first
  element, s1 = Σ(x − k), s2 = Σ(x − k)², mean = k + s1/M, var = s2/M − (s1/M)², which keeps
  double precision unless |mean − k| is ~1e8 standard deviations. The run sums use eight
  double lanes written with explicit vectors (``_norm_sums.h``), lanes added in a fixed order.
- Elementwise passes: out = A[c]·a + B[c]·(b − mu[c]) + K[c] (``bn_apply`` for evaluation
  and [N, C] inputs, ``bn_backward_apply``), over fixed blocks of rows (OpenMP).

Training backward, with r = 1/sqrt(var + eps), xh = (x − mu)·r, per channel:
    gb = Σ g,  gw = Σ g·xh = r·Σ g·(x − mu),
    gx = w·r·(g − gb/M − xh·gw/M) = (w·r)·g − (w·r³·Σg(x−mu)/M)·(x − mu) − w·r·gb/M.

Layer norm normalises each row of a C-contiguous [R, D] array (one task per row, fixed blocks
of rows for OpenMP); its backward writes gx row by row and accumulates gw, gb (column sums
over rows) per fixed block of LB rows, the block sums added in block order.

Dropout: element i of a call keyed by ``key`` is kept when u_i >= p, with u_i the top 53 bits
of the (i+1)-th output of SplitMix64 seeded with ``key`` (a counter-based generator: any block
of elements can be drawn independently, so the mask does not depend on the thread count);
kept elements are multiplied by scale = 1/(1−p), and the mask is written (uint8) for backward.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc

from tensorgrad._kernels._openmp cimport TG_PAR_MIN

ctypedef Py_ssize_t intp

cdef enum:
    RB = 256        # rows per task in the S == 1 batch-norm reductions
    LB = 64         # rows per task in the layer-norm backward's column sums
    BLOCK = 8192    # elements per task in elementwise passes


cdef inline intp _cdiv(intp a, intp b) noexcept nogil:
    return (a + b - 1) // b


cdef inline intp _rows_per_task(intp row_len) noexcept nogil:
    """Rows per elementwise task so that a task has at least ~BLOCK elements."""
    if row_len >= BLOCK:
        return 1
    if row_len < 1:
        return BLOCK
    return BLOCK // row_len


# ----------------------------------------------------------------------------------------
# batch norm: per-channel sums
# ----------------------------------------------------------------------------------------

cdef extern from "_norm_sums.h" nogil:
    void tg_sq_f(const float* a, intp n, double k, double* s1, double* s2)
    void tg_sq_d(const double* a, intp n, double k, double* s1, double* s2)
    void tg_dot_f(const float* a, const float* b, intp n, double mu, double* s1, double* s2)
    void tg_dot_d(const double* a, const double* b, intp n, double mu, double* s1,
                  double* s2)
    void tg_dotw_f(const float* a, const float* b, const float* w, intp n, double mu,
                   double* s1, double* s2)
    void tg_dotw_d(const double* a, const double* b, const double* w, intp n, double mu,
                   double* s1, double* s2)
    void tg_colsq_f(const float* a, const double* k, intp n, double* p1, double* p2)
    void tg_colsq_d(const double* a, const double* k, intp n, double* p1, double* p2)
    void tg_coldot_f(const float* a, const float* b, const double* mu, intp n, double* p1,
                     double* p2)
    void tg_coldot_d(const double* a, const double* b, const double* mu, intp n, double* p1,
                     double* p2)
    void tg_affine_f(const float* a, const float* b, float* out, const double* A,
                     const double* B, const double* M, const double* K, intp n)
    void tg_affine_d(const double* a, const double* b, double* out, const double* A,
                     const double* B, const double* M, const double* K, intp n)
    void tg_lnout_f(const float* x, const float* w, const float* b, float* y, intp n, float m,
                    float r)
    void tg_lnout_d(const double* x, const double* w, const double* b, double* y, intp n,
                    double m, double r)
    void tg_lngx_f(const float* g, const float* x, const float* w, float* gx, intp n, double m,
                   double r, double c1, double c2)
    void tg_lngx_d(const double* g, const double* x, const double* w, double* gx, intp n,
                   double m, double r, double c1, double c2)
    void tg_lncol_f(const float* g, const float* x, intp n, double m, double r, double* pw,
                    double* pb)
    void tg_lncol_d(const double* g, const double* x, intp n, double m, double r, double* pw,
                    double* pb)
    void tg_lngxcol_f(const float* g, const float* x, const float* w, float* gx, intp n,
                      double m, double r, double c1, double c2, double* pw, double* pb)
    void tg_lngxcol_d(const double* g, const double* x, const double* w, double* gx, intp n,
                      double m, double r, double c1, double c2, double* pw, double* pb)


cdef inline void _run_sums(const floating* a, const floating* b, double mu, double k, intp n,
                           double* s1, double* s2) noexcept nogil:
    """Add a run of n values: with b NULL, s1 += Σ(a−k), s2 += Σ(a−k)²; else
    s1 += Σ b, s2 += Σ b·(a − mu) (eight double lanes, see _norm_sums.h)."""
    if floating is float:
        if b == NULL:
            tg_sq_f(a, n, k, s1, s2)
        else:
            tg_dot_f(a, b, n, mu, s1, s2)
    else:
        if b == NULL:
            tg_sq_d(a, n, k, s1, s2)
        else:
            tg_dot_d(a, b, n, mu, s1, s2)


cdef void _channel_task(const floating* a, const floating* b, const double* mu, intp N,
                        intp C, intp S, intp c, double* s1, double* s2) noexcept nogil:
    """S > 1: the sums of channel c over its N runs, in order."""
    cdef intp n
    cdef double k = 0, m = 0
    s1[c] = 0
    s2[c] = 0
    if b == NULL:
        k = a[c * S]
    else:
        m = mu[c]
    cdef const floating* bn = NULL
    for n in range(N):
        if b != NULL:
            bn = b + (n * C + c) * S
        _run_sums(a + (n * C + c) * S, bn, m, k, S, s1 + c, s2 + c)


cdef void _rows_task(const floating* a, const floating* b, const double* mu, intp N, intp C,
                     intp t, double* p1, double* p2) noexcept nogil:
    """S == 1: block t of RB rows into p1[0:C], p2[0:C] (every channel as a vector; mu holds
    the shifts k when b is NULL)."""
    cdef intp r0 = t * RB, r1 = r0 + RB, r, c
    if r1 > N:
        r1 = N
    for c in range(C):
        p1[c] = 0
        p2[c] = 0
    for r in range(r0, r1):
        if floating is float:
            if b == NULL:
                tg_colsq_f(a + r * C, mu, C, p1, p2)
            else:
                tg_coldot_f(a + r * C, b + r * C, mu, C, p1, p2)
        else:
            if b == NULL:
                tg_colsq_d(a + r * C, mu, C, p1, p2)
            else:
                tg_coldot_d(a + r * C, b + r * C, mu, C, p1, p2)


cdef void _channel_sums(const floating* a, const floating* b, const double* mu, intp N,
                        intp C, intp S, double* s1, double* s2, double* part) noexcept nogil:
    """s1, s2 [C]: see _run_sums (b NULL: shifted stats with k = a[0, c, 0])."""
    cdef intp c, t, nt
    cdef bint par = N * C * S >= TG_PAR_MIN
    if S > 1:
        for c in prange(C, schedule="dynamic", use_threads_if=par and C > 1):
            _channel_task(a, b, mu, N, C, S, c, s1, s2)
        return
    nt = _cdiv(N, RB)
    for t in prange(nt, schedule="dynamic", use_threads_if=par and nt > 1):
        _rows_task(a, b, mu, N, C, t, part + 2 * t * C, part + (2 * t + 1) * C)
    for c in range(C):
        s1[c] = 0
        s2[c] = 0
    for t in range(nt):
        for c in range(C):
            s1[c] += part[2 * t * C + c]
            s2[c] += part[(2 * t + 1) * C + c]


cdef double* _part_buffer(intp N, intp C, intp S) except? NULL:
    if S > 1 or N == 0:
        return NULL
    cdef double* part = <double*>malloc(2 * _cdiv(N, RB) * C * sizeof(double))
    if part == NULL:
        raise MemoryError()
    return part


def bn_stats(const floating[:, :, ::1] x, double[::1] mean, double[::1] var):
    """Per-channel mean and biased variance of x [N, C, S] (N·S >= 1), in double."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef double M = <double>(N * S), m1
    cdef double* shift = NULL
    cdef double* part
    if mean.shape[0] != C or var.shape[0] != C:
        raise ValueError("bn_stats: mean and var must have C elements")
    if N * S == 0 or C == 0:
        raise ValueError("bn_stats: no values per channel")
    part = _part_buffer(N, C, S)
    try:
        if S == 1:
            shift = <double*>malloc(C * sizeof(double))
            if shift == NULL:
                raise MemoryError()
            for c in range(C):
                shift[c] = x[0, c, 0]
        with nogil:
            _channel_sums(&x[0, 0, 0], <const floating*>NULL, shift, N, C, S,
                          &mean[0], &var[0], part)
            for c in range(C):
                m1 = mean[c] / M
                var[c] = var[c] / M - m1 * m1
                if var[c] < 0:
                    var[c] = 0
                mean[c] = m1 + (shift[c] if S == 1 else x[0, c, 0])
    finally:
        free(part)
        free(shift)


def bn_backward_sums(const floating[:, :, ::1] g, const floating[:, :, ::1] x,
                     const double[::1] mean, double[::1] sum_g, double[::1] sum_gxc):
    """sum_g[c] = Σ g, sum_gxc[c] = Σ g·(x − mean[c]) over channel c of g, x [N, C, S]."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef double* part
    if g.shape[0] != N or g.shape[1] != C or g.shape[2] != S:
        raise ValueError("bn_backward_sums: g and x differ in shape")
    if mean.shape[0] != C or sum_g.shape[0] != C or sum_gxc.shape[0] != C:
        raise ValueError("bn_backward_sums: per-channel arrays must have C elements")
    if N * S == 0:
        for c in range(C):
            sum_g[c] = 0
            sum_gxc[c] = 0
        return
    if C == 0:
        return
    part = _part_buffer(N, C, S)
    try:
        with nogil:
            _channel_sums(&x[0, 0, 0], &g[0, 0, 0], &mean[0], N, C, S, &sum_g[0],
                          &sum_gxc[0], part)
    finally:
        free(part)


# ----------------------------------------------------------------------------------------
# batch norm: elementwise passes
# ----------------------------------------------------------------------------------------

cdef void _affine_rows(const floating* a, const floating* b, floating* out, const double* A,
                       const double* B, const double* mu, const double* K, intp r0, intp r1,
                       intp C, intp S) noexcept nogil:
    """out = A[c]·a + B[c]·(b − mu[c]) + K[c] on rows r0..r1-1 ([N, C, S]); a may be NULL."""
    cdef intp r, c, s, off
    cdef floating fa, fb, fm, fk
    cdef const floating* ar = NULL
    if S == 1:
        for r in range(r0, r1):
            off = r * C
            if a != NULL:
                ar = a + off
            if floating is float:
                tg_affine_f(ar, b + off, out + off, A, B, mu, K, C)
            else:
                tg_affine_d(ar, b + off, out + off, A, B, mu, K, C)
        return
    for r in range(r0, r1):
        for c in range(C):
            off = (r * C + c) * S
            fb = <floating>B[c]
            fm = <floating>mu[c]
            fk = <floating>K[c]
            if a == NULL:
                for s in range(S):
                    out[off + s] = fb * (b[off + s] - fm) + fk
            else:
                fa = <floating>A[c]
                for s in range(S):
                    out[off + s] = fa * a[off + s] + fb * (b[off + s] - fm) + fk


cdef void _affine(const floating* a, const floating* b, floating* out, const double* A,
                  const double* B, const double* mu, const double* K, intp N, intp C,
                  intp S) noexcept nogil:
    cdef intp rpt = _rows_per_task(C * S), nt = _cdiv(N, rpt), t, r1
    for t in prange(nt, schedule="dynamic", use_threads_if=N * C * S >= TG_PAR_MIN and nt > 1):
        r1 = (t + 1) * rpt
        if r1 > N:
            r1 = N
        _affine_rows(a, b, out, A, B, mu, K, t * rpt, r1, C, S)


def bn_apply(const floating[:, :, ::1] x, const double[::1] mean, const double[::1] scale,
             const double[::1] shift, floating[:, :, ::1] out):
    """out = scale[c]·(x − mean[c]) + shift[c] for x, out [N, C, S] (normalise + affine)."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2]
    if out.shape[0] != N or out.shape[1] != C or out.shape[2] != S:
        raise ValueError("bn_apply: out and x differ in shape")
    if mean.shape[0] != C or scale.shape[0] != C or shift.shape[0] != C:
        raise ValueError("bn_apply: per-channel arrays must have C elements")
    if N * C * S == 0:
        return
    with nogil:
        _affine(<const floating*>NULL, &x[0, 0, 0], &out[0, 0, 0], NULL, &scale[0], &mean[0],
                &shift[0], N, C, S)


def bn_backward_apply(const floating[:, :, ::1] g, const floating[:, :, ::1] x,
                      const double[::1] mean, const double[::1] a, const double[::1] b,
                      const double[::1] k, floating[:, :, ::1] out):
    """out = a[c]·g + b[c]·(x − mean[c]) + k[c] for g, x, out [N, C, S] (the input gradient)."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2]
    if (out.shape[0] != N or out.shape[1] != C or out.shape[2] != S or g.shape[0] != N
            or g.shape[1] != C or g.shape[2] != S):
        raise ValueError("bn_backward_apply: g, x and out differ in shape")
    if mean.shape[0] != C or a.shape[0] != C or b.shape[0] != C or k.shape[0] != C:
        raise ValueError("bn_backward_apply: per-channel arrays must have C elements")
    if N * C * S == 0:
        return
    with nogil:
        _affine(&g[0, 0, 0], &x[0, 0, 0], &out[0, 0, 0], &a[0], &b[0], &mean[0], &k[0], N, C,
                S)


# ----------------------------------------------------------------------------------------
# batch norm, training: statistics and output per channel in one task (S > 1)
# ----------------------------------------------------------------------------------------
# With S > 1 a task owns a channel: it reads the channel's N runs for the sums and then
# again for the output pass, while they are still in the core's L2 cache (a channel of the
# (64, 32, 32, 32) float32 benchmark is 256 KB), instead of a second sweep over the tensor.

cdef void _train_forward_channel(const floating* x, floating* out, const double* w,
                                 const double* b, double eps, intp N, intp C, intp S, intp c,
                                 double* mean, double* var) noexcept nogil:
    cdef double s1 = 0, s2 = 0, m1, v, r, sc
    cdef double k = x[c * S]
    cdef intp n, s, off
    cdef floating fm, fs, fb
    for n in range(N):
        _run_sums(x + (n * C + c) * S, <const floating*>NULL, 0, k, S, &s1, &s2)
    m1 = s1 / (N * S)
    v = s2 / (N * S) - m1 * m1
    if v < 0:
        v = 0
    mean[c] = k + m1
    var[c] = v
    r = 1.0 / sqrt(v + eps)
    sc = r if w == NULL else r * w[c]
    fm = <floating>mean[c]
    fs = <floating>sc
    fb = <floating>(0 if b == NULL else b[c])
    for n in range(N):
        off = (n * C + c) * S
        for s in range(S):
            out[off + s] = fs * (x[off + s] - fm) + fb


cdef void _train_backward_channel(const floating* g, const floating* x, floating* gx,
                                  const double* mean, const double* w, double eps, intp N,
                                  intp C, intp S, intp c, const double* var, double* sg,
                                  double* sgxc) noexcept nogil:
    cdef double s1 = 0, s2 = 0, r, wr, M = <double>(N * S)
    cdef double mu = mean[c]
    cdef intp n, s, off
    cdef floating fa, fb, fm, fk
    for n in range(N):
        _run_sums(x + (n * C + c) * S, g + (n * C + c) * S, mu, 0, S, &s1, &s2)
    sg[c] = s1
    sgxc[c] = s2
    if gx == NULL:
        return
    r = 1.0 / sqrt(var[c] + eps)
    wr = r if w == NULL else r * w[c]
    fa = <floating>wr
    fb = <floating>(-wr * r * r * s2 / M)
    fk = <floating>(-wr * s1 / M)
    fm = <floating>mu
    for n in range(N):
        off = (n * C + c) * S
        for s in range(S):
            gx[off + s] = fa * g[off + s] + fb * (x[off + s] - fm) + fk


def bn_train_forward(const floating[:, :, ::1] x, w, b, double eps, floating[:, :, ::1] out,
                     double[::1] mean, double[::1] var):
    """Training forward over x [N, C, S] (N·S >= 1): per-channel mean and biased variance
    (double), and out = (x − mean)·r·w + b with r = 1/sqrt(var + eps); w, b float64 [C] or
    None."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const double[::1] wv
    cdef const double[::1] bv
    cdef const double* wp = NULL
    cdef const double* bp = NULL
    cdef double[::1] sc
    cdef double[::1] sh
    if out.shape[0] != N or out.shape[1] != C or out.shape[2] != S:
        raise ValueError("bn_train_forward: out and x differ in shape")
    if mean.shape[0] != C or var.shape[0] != C:
        raise ValueError("bn_train_forward: mean and var must have C elements")
    if w is not None:
        wv = w
        wp = &wv[0] if C else NULL
    if b is not None:
        bv = b
        bp = &bv[0] if C else NULL
    if S == 1:
        bn_stats(x, mean, var)
        sc = np.empty(C)
        sh = np.empty(C)
        for c in range(C):
            sc[c] = (1.0 / sqrt(var[c] + eps)) * (1.0 if wp == NULL else wp[c])
            sh[c] = 0.0 if bp == NULL else bp[c]
        bn_apply(x, mean, sc, sh, out)
        return
    if N * S == 0 or C == 0:
        raise ValueError("bn_train_forward: no values per channel")
    with nogil:
        for c in prange(C, schedule="dynamic", use_threads_if=N * C * S >= TG_PAR_MIN and C > 1):
            _train_forward_channel(&x[0, 0, 0], &out[0, 0, 0], wp, bp, eps, N, C, S, c,
                                   &mean[0], &var[0])


def bn_train_backward(const floating[:, :, ::1] g, const floating[:, :, ::1] x,
                      const double[::1] mean, const double[::1] var, w, double eps, gx,
                      double[::1] sum_g, double[::1] sum_gxc):
    """Training backward over g, x [N, C, S]: sum_g = Σ g, sum_gxc = Σ g·(x − mean) per
    channel and, when gx is given, gx = w·r·(g − sum_g/M) − w·r³·sum_gxc/M·(x − mean), with
    r = 1/sqrt(var + eps) and M = N·S; w float64 [C] or None."""
    cdef intp N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const double[::1] wv
    cdef floating[:, :, ::1] gxv
    cdef const double* wp = NULL
    cdef floating* gxp = NULL
    cdef double r, wr, M = <double>(N * S)
    cdef double[::1] a
    cdef double[::1] bb
    cdef double[::1] k
    if g.shape[0] != N or g.shape[1] != C or g.shape[2] != S:
        raise ValueError("bn_train_backward: g and x differ in shape")
    if mean.shape[0] != C or var.shape[0] != C or sum_g.shape[0] != C \
            or sum_gxc.shape[0] != C:
        raise ValueError("bn_train_backward: per-channel arrays must have C elements")
    if w is not None:
        wv = w
        wp = &wv[0] if C else NULL
    if gx is not None:
        gxv = gx
        if gxv.shape[0] != N or gxv.shape[1] != C or gxv.shape[2] != S:
            raise ValueError("bn_train_backward: gx and x differ in shape")
    if S == 1 or N * S == 0 or C == 0:
        bn_backward_sums(g, x, mean, sum_g, sum_gxc)
        if gx is None or N * C * S == 0:
            return
        a = np.empty(C)
        bb = np.empty(C)
        k = np.empty(C)
        for c in range(C):
            r = 1.0 / sqrt(var[c] + eps)
            wr = r if wp == NULL else r * wp[c]
            a[c] = wr
            bb[c] = -wr * r * r * sum_gxc[c] / M
            k[c] = -wr * sum_g[c] / M
        bn_backward_apply(g, x, mean, a, bb, k, gxv)
        return
    if gx is not None:
        gxp = &gxv[0, 0, 0]
    with nogil:
        for c in prange(C, schedule="dynamic", use_threads_if=N * C * S >= TG_PAR_MIN and C > 1):
            _train_backward_channel(&g[0, 0, 0], &x[0, 0, 0], gxp, &mean[0], wp, eps, N, C, S,
                                    c, &var[0], &sum_g[0], &sum_gxc[0])


# ----------------------------------------------------------------------------------------
# layer norm
# ----------------------------------------------------------------------------------------

cdef void _ln_row(const floating* x, floating* y, const floating* w, const floating* b,
                  intp D, double eps, double* mean, double* rstd) noexcept nogil:
    cdef double s1 = 0, s2 = 0, m1, var, r
    cdef double k = x[0]
    _run_sums(x, <const floating*>NULL, 0, k, D, &s1, &s2)
    m1 = s1 / D
    var = s2 / D - m1 * m1
    if var < 0:
        var = 0
    r = 1.0 / sqrt(var + eps)
    mean[0] = k + m1
    rstd[0] = r
    if floating is float:
        tg_lnout_f(x, w, b, y, D, <float>mean[0], <float>r)
    else:
        tg_lnout_d(x, w, b, y, D, mean[0], r)


def ln_forward(const floating[:, ::1] x, w, b, double eps, floating[:, ::1] out,
               double[::1] mean, double[::1] rstd):
    """Each row of x [R, D] (D >= 1) normalised: out = (x − mean)·rstd·w + b (w, b [D] or
    None); the rows' mean and rstd = 1/sqrt(var + eps) (biased var) are written, in double."""
    cdef intp R = x.shape[0], D = x.shape[1], rpt, nt, t, r, r1
    cdef const floating[::1] wv
    cdef const floating[::1] bv
    cdef const floating* wp = NULL
    cdef const floating* bp = NULL
    if out.shape[0] != R or out.shape[1] != D or mean.shape[0] != R or rstd.shape[0] != R:
        raise ValueError("ln_forward: out, mean or rstd has the wrong shape")
    if D == 0:
        raise ValueError("ln_forward: rows must not be empty")
    if w is not None:
        wv = w
        if wv.shape[0] != D:
            raise ValueError("ln_forward: w must have D elements")
        wp = &wv[0]
    if b is not None:
        bv = b
        if bv.shape[0] != D:
            raise ValueError("ln_forward: b must have D elements")
        bp = &bv[0]
    if R == 0:
        return
    rpt = _rows_per_task(D)
    nt = _cdiv(R, rpt)
    with nogil:
        for t in prange(nt, schedule="dynamic", use_threads_if=R * D >= TG_PAR_MIN and nt > 1):
            r1 = (t + 1) * rpt
            if r1 > R:
                r1 = R
            for r in range(t * rpt, r1):
                _ln_row(&x[r, 0], &out[r, 0], wp, bp, D, eps, &mean[r], &rstd[r])


cdef void _ln_backward_block(const floating* g, const floating* x, const double* mean,
                             const double* rstd, const floating* w, floating* gx, intp r0,
                             intp r1, intp D, double* pw, double* pb) noexcept nogil:
    """Rows r0..r1-1: gx rows (if gx), and the block's Σ g·xh into pw, Σ g into pb (if set).
    With gh = g·w: gx = r·(gh − mean(gh) − xh·mean(gh·xh)), mean(gh·xh) = r·Σ gh·(x − m)/D."""
    cdef intp r, i
    cdef double s1, s2, m, rs
    cdef const floating* gr
    cdef const floating* xr
    if pw != NULL:
        for i in range(D):
            pw[i] = 0
            pb[i] = 0
    for r in range(r0, r1):
        gr = g + r * D
        xr = x + r * D
        m = mean[r]
        rs = rstd[r]
        if gx == NULL or (pw != NULL and w == NULL):
            if pw != NULL:
                if floating is float:
                    tg_lncol_f(gr, xr, D, m, rs, pw, pb)
                else:
                    tg_lncol_d(gr, xr, D, m, rs, pw, pb)
            if gx == NULL:
                continue
        s1 = 0
        s2 = 0
        if w == NULL:
            _run_sums(xr, gr, m, 0, D, &s1, &s2)
        elif floating is float:
            tg_dotw_f(xr, gr, w, D, m, &s1, &s2)
        else:
            tg_dotw_d(xr, gr, w, D, m, &s1, &s2)
        if pw != NULL and w != NULL:        # gx and the weight's sums in one loop
            if floating is float:
                tg_lngxcol_f(gr, xr, w, gx + r * D, D, m, rs, s1 / D, rs * s2 / D, pw, pb)
            else:
                tg_lngxcol_d(gr, xr, w, gx + r * D, D, m, rs, s1 / D, rs * s2 / D, pw, pb)
        elif floating is float:
            tg_lngx_f(gr, xr, w, gx + r * D, D, m, rs, s1 / D, rs * s2 / D)
        else:
            tg_lngx_d(gr, xr, w, gx + r * D, D, m, rs, s1 / D, rs * s2 / D)


def ln_backward(const floating[:, ::1] g, const floating[:, ::1] x, const double[::1] mean,
                const double[::1] rstd, w, gx, gw, gb):
    """Layer-norm backward over rows of g, x [R, D]: gx [R, D] (or None) = rstd·(gh − mean(gh)
    − xh·mean(gh·xh)) with gh = g·w, xh = (x − mean)·rstd; gw, gb [D] float64 (or both None)
    = Σ_rows g·xh and Σ_rows g."""
    cdef intp R = x.shape[0], D = x.shape[1], nt, t, r1, i
    cdef const floating[::1] wv
    cdef floating[:, ::1] gxv
    cdef double[::1] gwv
    cdef double[::1] gbv
    cdef const floating* wp = NULL
    cdef floating* gxp = NULL
    cdef double* part = NULL
    cdef bint sums = gw is not None
    if g.shape[0] != R or g.shape[1] != D or mean.shape[0] != R or rstd.shape[0] != R:
        raise ValueError("ln_backward: g, mean or rstd has the wrong shape")
    if w is not None:
        wv = w
        if wv.shape[0] != D:
            raise ValueError("ln_backward: w must have D elements")
        wp = &wv[0] if D else NULL
    if gx is not None:
        gxv = gx
        if gxv.shape[0] != R or gxv.shape[1] != D:
            raise ValueError("ln_backward: gx has the wrong shape")
        if R * D:
            gxp = &gxv[0, 0]
    if sums:
        gwv = gw
        gbv = gb
        if gwv.shape[0] != D or gbv.shape[0] != D:
            raise ValueError("ln_backward: gw and gb must have D elements")
        for i in range(D):
            gwv[i] = 0
            gbv[i] = 0
    if R * D == 0:
        return
    nt = _cdiv(R, LB)
    if sums:
        part = <double*>malloc(2 * nt * D * sizeof(double))
        if part == NULL:
            raise MemoryError()
    try:
        with nogil:
            for t in prange(nt, schedule="dynamic",
                            use_threads_if=R * D >= TG_PAR_MIN and nt > 1):
                r1 = (t + 1) * LB
                if r1 > R:
                    r1 = R
                _ln_backward_block(&g[0, 0], &x[0, 0], &mean[0], &rstd[0], wp, gxp, t * LB,
                                   r1, D, NULL if part == NULL else part + 2 * t * D,
                                   NULL if part == NULL else part + (2 * t + 1) * D)
            if sums:
                for t in range(nt):
                    for i in range(D):
                        gwv[i] += part[2 * t * D + i]
                        gbv[i] += part[(2 * t + 1) * D + i]
    finally:
        free(part)


# ----------------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------------

cdef inline uint64_t _splitmix(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void _dropout_block(const floating* x, floating* out, uint8_t* mask, intp i0, intp i1,
                         uint64_t key, uint64_t thr, floating scale) noexcept nogil:
    cdef intp i
    cdef uint64_t z
    cdef uint8_t keep
    for i in range(i0, i1):
        z = key + <uint64_t>(i + 1) * <uint64_t>0x9E3779B97F4A7C15ULL
        keep = (_splitmix(z) >> 11) >= thr
        mask[i] = keep
        out[i] = x[i] * scale if keep else 0


def dropout_forward(const floating[::1] x, uint64_t key, uint64_t threshold, double scale,
                    floating[::1] out, uint8_t[::1] mask):
    """mask[i] = (SplitMix64 output i+1 of ``key``) >> 11 >= threshold; out = x·scale where
    kept, else 0 (x, out, mask flat and contiguous). threshold = ceil(p·2^53)."""
    cdef intp n = x.shape[0], nt = _cdiv(n, BLOCK), t, i1
    cdef floating s = <floating>scale
    if out.shape[0] != n or mask.shape[0] != n:
        raise ValueError("dropout_forward: x, out and mask differ in size")
    if n == 0:
        return
    with nogil:
        for t in prange(nt, schedule="dynamic", use_threads_if=n >= TG_PAR_MIN and nt > 1):
            i1 = (t + 1) * BLOCK
            if i1 > n:
                i1 = n
            _dropout_block(&x[0], &out[0], &mask[0], t * BLOCK, i1, key, threshold, s)


def dropout_apply(const floating[::1] g, const uint8_t[::1] mask, double scale,
                  floating[::1] out):
    """out = g·scale where mask, else 0 (flat contiguous arrays): dropout's backward."""
    cdef intp n = g.shape[0], i
    cdef floating s = <floating>scale
    if out.shape[0] != n or mask.shape[0] != n:
        raise ValueError("dropout_apply: g, out and mask differ in size")
    with nogil:
        for i in prange(n, schedule="static", use_threads_if=n >= TG_PAR_MIN):
            out[i] = g[i] * s if mask[i] else 0
