"""Pairwise Euclidean distances and fused k-nearest-neighbour search.

Strategy
--------
Both kernels use ||p - q||² = ||p||² + ||q||² - 2 p·q and work in tiles of ``tile_rows``
rows of the first input by ``tile_cols`` rows of the second:

1. The squared row norms of both inputs are computed once, in double. ``cdist`` computes
   those of the second input's block inside the task that uses it, just before its GEMM:
   the block is then read from memory once, and the GEMM finds it in cache.
2. Per tile, one single-threaded BLAS GEMM (``blas.pyx``'s sgemm/dgemm) gives the p·q
   block. ``cdist`` writes it straight into its tile of the caller's ``out`` (leading
   dimension = M), so ``out`` is the only large buffer; ``knn`` writes it into a per-thread
   [tile_rows, tile_cols] workspace that stays in cache.
3. An epilogue on the same thread, while the tile is hot, forms d² = n1 + n2 - 2 p·q in
   double, clamps it at 0, and either takes the square root (``cdist``, in loops written
   to vectorise) or feeds it to a per-row top-k list (``knn``).

Threads: an OpenMP ``prange`` runs over tiles (cdist) or over query tiles (knn; each row's
top-k list is owned by one task, so no locks). BLAS is called *inside* that parallel loop,
so the caller must limit the BLAS pool to one thread for the duration (threadpoolctl; see
tensorgrad/ops/distance.py). The tile grid does not depend on the thread count, so the
results are bit-identical for any number of threads. When there are fewer query tiles than
threads, knn splits the training rows into contiguous segments, keeps one top-k list per
(row, segment) and merges them.

Accuracy: in the expansion the error of the GEMM term is about eps·||p||·||q||, which
swamps d² when p and q are nearly identical (scikit-learn#9354; fatal in float32). The
epilogue therefore recomputes d² = Σ (p_i - q_i)² exactly, in double, whenever the
expansion gives d² < tau·(n1 + n2) (tau = 2⁻⁵ for float32, 2⁻¹⁴ for float64): below that
ratio the cancellation could cost more than ~1e-5 of relative accuracy. Such pairs are rare
in real data, and the check costs one comparison per pair. Identical rows get exactly 0.

Top-k: per query row a sorted insertion list of k (d², index) pairs ordered
lexicographically, so ties in distance go to the smaller training index. Ranking uses d²;
the square root is taken once at the end. A one-comparison filter per pair (written with
precomputed (1 - tau)·||q||², a superset of the pairs that can still enter the list) keeps
the epilogue cheap next to the GEMM. Extra memory: O(N·k) for the lists plus one
tile buffer per thread; the N×M distance matrix never exists.

Kernels assume valid input: C-contiguous 2-D arrays of one float dtype with the same
number of columns, 1 <= k <= M, outputs allocated by the caller.
"""
import numpy as np

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, fabs, fabsf, sqrt
from libc.stdint cimport int64_t, INT64_MAX, uint8_t, uint64_t
from libc.string cimport memcpy, memset

from tensorgrad._kernels._openmp cimport TG_PAR_MIN, omp_get_max_threads
from tensorgrad._kernels.blas cimport dgemm, require_blas, sgemm

cdef extern from "_knn_scan.h" nogil:
    int SCAN_BLOCK "TG_KNN_SCAN_BLOCK"
    Py_ssize_t tg_knn_scan_f(const float* vf, const float* b, Py_ssize_t j, Py_ssize_t n,
                             float cf)

ctypedef fused floating:
    float
    double

# Below tau·(||p||² + ||q||²) the GEMM expansion is not trusted (see the module docstring).
cdef double TAU_F32 = 2.0 ** -5
cdef double TAU_F64 = 2.0 ** -14
# Relative and absolute margins of the kNN prefilter's float threshold (``_scan_threshold``).
cdef double SCAN_REL = 2.0 ** -21
cdef double SCAN_ABS = 2.0 ** -120


cdef inline void _gemm_abt(const floating* a, const floating* b, int rows, int cols, int d,
                           floating* c, int ldc) noexcept nogil:
    """Row-major c[rows, cols] = a[rows, d] @ b[cols, d]ᵀ (a, b C-contiguous, ld = d).

    Column-major that is cᵀ = b·aᵀ: b's memory read column-major is bᵀ [d, cols], used with
    flag 'T'; a's memory is aᵀ [d, rows], used with flag 'N'.
    """
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef int ld = d if d > 0 else 1
    cdef float one_f = 1.0, zero_f = 0.0
    cdef double one_d = 1.0, zero_d = 0.0
    cdef Py_ssize_t i
    if d == 0:
        for i in range(rows):
            memset(&c[i * ldc], 0, cols * sizeof(floating))
        return
    if floating is float:
        sgemm(&ta, &tb, &cols, &rows, &d, &one_f, <float*>b, &ld, <float*>a, &ld,
              &zero_f, c, &ldc)
    else:
        dgemm(&ta, &tb, &cols, &rows, &d, &one_d, <double*>b, &ld, <double*>a, &ld,
              &zero_d, c, &ldc)


cdef inline double _sum_sq(const floating* p, const floating* q, Py_ssize_t d,
                           bint diff) noexcept nogil:
    """Σ p_i² (diff false) or Σ (p_i - q_i)² (diff true), accumulated in double.

    Eight independent partial sums in a small array: one accumulator would be bound by the
    latency of the add (the compiler may not reassociate it), and eight lanes written as a
    fixed inner loop are what GCC's SLP vectoriser turns into packed double arithmetic.
    """
    cdef double acc[8]
    cdef double t
    cdef Py_ssize_t i = 0, j
    for j in range(8):
        acc[j] = 0.0
    while i + 8 <= d:
        for j in range(8):
            t = <double>p[i + j]
            if diff:
                t = t - <double>q[i + j]
            acc[j] += t * t
        i += 8
    while i < d:
        t = <double>p[i]
        if diff:
            t = t - <double>q[i]
        acc[0] += t * t
        i += 1
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double _exact_sq(const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """Σ (p_i - q_i)² in double: the fallback for nearly identical rows."""
    return _sum_sq(p, q, d, True)


cdef inline double _sq_dist(double n1, double n2, double dot, double tau,
                            const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """d² from the expansion, or exactly when cancellation makes the expansion unreliable."""
    cdef double s = n1 + n2
    cdef double d2 = s - 2.0 * dot
    if not d2 >= tau * s:           # also NaN: inf - inf from an infinite coordinate
        return _exact_sq(p, q, d)
    return d2


cdef inline void _row_sqnorms_serial(const floating* x, Py_ssize_t n, Py_ssize_t d,
                                     double* out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = _sum_sq(x + i * d, x, d, False)


cdef void _row_sqnorms(const floating* x, Py_ssize_t n, Py_ssize_t d,
                       double* out) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, schedule='static', use_threads_if=n * d >= TG_PAR_MIN):
        out[i] = _sum_sq(x + i * d, x, d, False)


cdef inline void _cdist_tile(const floating* x1, const floating* x2, floating* out,
                             const double* n1, const double* n2, double* w, Py_ssize_t m,
                             Py_ssize_t d, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t j0,
                             Py_ssize_t j1, double tau, bint squared) noexcept nogil:
    """One tile: out[i0:i1, j0:j1] = p·q by GEMM, then the epilogue in place.

    The epilogue runs per row in three loops over a double workspace ``w`` (one tile row,
    in L1), written so that GCC vectorises the two long ones even for baseline SSE2:
    1. d² from the expansion, clamped at 0 (NaN stays NaN), and the OR of the bit patterns
       of d² - tau·(n1 + n2): its sign bit says whether any entry is below the trust
       threshold (a compare-and-count loop does not vectorise, a bitwise OR does);
    2. only then (almost never) the exact recomputation of those entries;
    3. the square root in double, rounded once to the output type (as knn does).
    A row or column with an infinite (or NaN) squared norm is always recomputed exactly:
    the expansion gives inf - inf there, the exact sum inf (or NaN for inf - inf in one
    coordinate, as PyTorch).
    """
    cdef Py_ssize_t i, j, cols = j1 - j0
    cdef const floating* p
    cdef floating* row
    cdef const double* nc = n2 + j0
    cdef double a, s, d2, r
    cdef uint64_t bits, u
    cdef bint bad_cols = False, bad
    for j in range(cols):
        if not (nc[j] - nc[j] == 0.0):  # inf or NaN
            bad_cols = True
    _gemm_abt(x1 + i0 * d, x2 + j0 * d, <int>(i1 - i0), <int>cols, <int>d,
              out + i0 * m + j0, <int>m)
    for i in range(i0, i1):
        p = x1 + i * d
        row = out + i * m + j0
        a = n1[i]
        bits = 0
        for j in range(cols):
            s = a + nc[j]
            d2 = s - 2.0 * <double>row[j]
            r = d2 - tau * s
            memcpy(&u, &r, 8)
            w[j] = 0.0 if d2 < 0.0 else d2      # clamped (NaN stays NaN); still < tau·s
            bits = bits | u
        bad = not (a - a == 0.0)
        if (bits >> 63) or bad or bad_cols:
            for j in range(cols):
                if bad or not (nc[j] - nc[j] == 0.0) or w[j] < tau * (a + nc[j]):
                    w[j] = _exact_sq(p, x2 + (j0 + j) * d, d)
        if squared:
            for j in range(cols):
                row[j] = <floating>w[j]
        else:
            for j in range(cols):
                row[j] = <floating>sqrt(w[j])


def cdist(const floating[:, ::1] x1, const floating[:, ::1] x2, floating[:, ::1] out,
          bint squared=False, Py_ssize_t tile_rows=512, Py_ssize_t tile_cols=512):
    """out[i, j] = ||x1[i] - x2[j]||  (or its square), tiled as in the module docstring.

    x1 [N, D], x2 [M, D], out [N, M]; call with the BLAS pool limited to one thread.
    The tiles are at most tile_rows × tile_cols and equal-sized along each axis (5000
    columns in 512-wide tiles become 10 tiles of 500). When the column tiles divide evenly
    among the threads (or are many), a task is one column tile with all its row tiles: it
    computes the squared norms of its x2 rows just before their GEMM, so that block of x2
    is read from memory once and the GEMM finds it in cache. Otherwise a task is one tile
    (more, smaller tasks balance better) and the norms are computed up front. The tile
    grid, and so the result, does not depend on the thread count.
    """
    cdef Py_ssize_t n = x1.shape[0], m = x2.shape[0], d = x1.shape[1]
    if n == 0 or m == 0:
        return
    require_blas()
    cdef double[::1] n1 = np.empty(n, dtype=np.float64)
    cdef double[::1] n2 = np.empty(m, dtype=np.float64)
    cdef double tau = TAU_F32 if floating is float else TAU_F64
    cdef Py_ssize_t n_rt = (n + max(1, tile_rows) - 1) // max(1, tile_rows)
    cdef Py_ssize_t n_ct = (m + max(1, tile_cols) - 1) // max(1, tile_cols)
    cdef Py_ssize_t tr = (n + n_rt - 1) // n_rt, tc = (m + n_ct - 1) // n_ct
    n_rt = (n + tr - 1) // tr
    n_ct = (m + tc - 1) // tc
    cdef bint par = n * m * (d + 1) >= TG_PAR_MIN
    cdef int nthreads = omp_get_max_threads()
    cdef bint by_column = n_ct % nthreads == 0 or n_ct >= 4 * nthreads
    cdef Py_ssize_t ntasks = n_ct if by_column else n_rt * n_ct
    cdef double[:, ::1] work = np.empty((nthreads, tc), dtype=np.float64)
    cdef double* w
    cdef Py_ssize_t t, rt, i0, j0, j1
    with nogil:
        _row_sqnorms(&x1[0, 0], n, d, &n1[0])
        if not by_column:
            _row_sqnorms(&x2[0, 0], m, d, &n2[0])
        for t in prange(ntasks, schedule='dynamic', use_threads_if=ntasks > 1 and par):
            w = &work[threadid(), 0]
            if by_column:
                j0 = t * tc
                j1 = min(m, j0 + tc)
                _row_sqnorms_serial(&x2[j0, 0], j1 - j0, d, &n2[j0])
                for rt in range(n_rt):
                    i0 = rt * tr
                    _cdist_tile(&x1[0, 0], &x2[0, 0], &out[0, 0], &n1[0], &n2[0], w, m, d,
                                i0, min(n, i0 + tr), j0, j1, tau, squared)
            else:
                i0 = (t // n_ct) * tr
                j0 = (t % n_ct) * tc
                _cdist_tile(&x1[0, 0], &x2[0, 0], &out[0, 0], &n1[0], &n2[0], w, m, d,
                            i0, min(n, i0 + tr), j0, min(m, j0 + tc), tau, squared)


# --- the other metrics' exact values (double, from the input rows) ---------------------------
cdef inline double _dot_exact(const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """Σ p_i q_i in double (float32 products are exact in double), eight partial sums."""
    cdef double acc[8]
    cdef Py_ssize_t i = 0, j
    for j in range(8):
        acc[j] = 0.0
    while i + 8 <= d:
        for j in range(8):
            acc[j] += <double>p[i + j] * <double>q[i + j]
        i += 8
    while i < d:
        acc[0] += <double>p[i] * <double>q[i]
        i += 1
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double _l1_exact(const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """Σ |p_i - q_i| in double, eight partial sums."""
    cdef double acc[8]
    cdef double t
    cdef Py_ssize_t i = 0, j
    for j in range(8):
        acc[j] = 0.0
    while i + 8 <= d:
        for j in range(8):
            t = <double>p[i + j] - <double>q[i + j]
            acc[j] += t if t >= 0.0 else -t
        i += 8
    while i < d:
        t = <double>p[i] - <double>q[i]
        acc[0] += t if t >= 0.0 else -t
        i += 1
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double _cos_exact(const floating* p, const floating* q, Py_ssize_t d, double s1,
                              double s2) noexcept nogil:
    """1 - cos(p, q) as ½ ||p/|p| - q/|q|||² in double (no cancellation for nearly parallel
    rows); 1 when either row is zero (s = 1/|x|, 0 for a zero row), as scikit-learn."""
    cdef double acc[8]
    cdef double t
    cdef Py_ssize_t i = 0, j
    if s1 == 0.0 or s2 == 0.0:
        return 1.0
    for j in range(8):
        acc[j] = 0.0
    while i + 8 <= d:
        for j in range(8):
            t = <double>p[i + j] * s1 - <double>q[i + j] * s2
            acc[j] += t * t
        i += 8
    while i < d:
        t = <double>p[i] * s1 - <double>q[i] * s2
        acc[0] += t * t
        i += 1
    return 0.5 * (((acc[0] + acc[1]) + (acc[2] + acc[3]))
                  + ((acc[4] + acc[5]) + (acc[6] + acc[7])))


# --- Manhattan: a tiled kernel without GEMM -------------------------------------------------
# Feature block (the float partial sums run over at most MAN_DB features, then go to double),
# and the register block of the micro-kernel: MAN_IR rows of x1 by MAN_JW rows of x2.
cdef enum:
    MAN_DB = 256
    MAN_JW = 8
    MAN_IR = 4


cdef inline floating _fabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef void _l1_tile(const floating* a, const floating* b, Py_ssize_t rows, Py_ssize_t cols,
                   Py_ssize_t d, double* out, Py_ssize_t ldo, floating* bt) noexcept nogil:
    """out[i, j] = Σ_t |a[i, t] - b[j, t]| (double, leading dimension ldo) for a [rows, d]
    and b [cols, d] (C-contiguous, ld = d).

    Per block of MAN_DB features, b's block is transposed into ``bt`` [MAN_DB, cols rounded
    up to MAN_JW] (zero padded), so the micro-kernel's inner loop runs over MAN_JW
    consecutive columns: a broadcast of a[i, t], a subtraction, an absolute value (a mask)
    and an add per lane, for MAN_IR rows at once, in accumulators that stay in registers
    (GCC vectorises the fixed-length lane loops). The block's float sums are added to
    ``out`` in double, so the error bound is that of MAN_DB-term float sums.
    """
    cdef Py_ssize_t cp = (cols + MAN_JW - 1) // MAN_JW * MAN_JW
    cdef Py_ssize_t d0 = 0, db, t, j, i, jj, l, r, nr, nc
    cdef floating acc0[MAN_JW]
    cdef floating acc1[MAN_JW]
    cdef floating acc2[MAN_JW]
    cdef floating acc3[MAN_JW]
    cdef const floating* q
    cdef const floating* p0
    cdef const floating* p1
    cdef const floating* p2
    cdef const floating* p3
    cdef floating v0, v1, v2, v3
    cdef double* o
    for i in range(rows):
        for j in range(cols):
            out[i * ldo + j] = 0.0
    while d0 < d:
        db = min(<Py_ssize_t>MAN_DB, d - d0)
        for j in range(cols):
            for t in range(db):
                bt[t * cp + j] = b[j * d + d0 + t]
        for t in range(db):
            for j in range(cols, cp):
                bt[t * cp + j] = 0
        i = 0
        while i < rows:
            nr = min(<Py_ssize_t>MAN_IR, rows - i)
            p0 = a + i * d + d0
            p1 = a + (i + min(1, nr - 1)) * d + d0
            p2 = a + (i + min(2, nr - 1)) * d + d0
            p3 = a + (i + min(3, nr - 1)) * d + d0
            jj = 0
            while jj < cp:
                for l in range(MAN_JW):
                    acc0[l] = 0
                    acc1[l] = 0
                    acc2[l] = 0
                    acc3[l] = 0
                for t in range(db):
                    q = bt + t * cp + jj
                    v0 = p0[t]
                    v1 = p1[t]
                    v2 = p2[t]
                    v3 = p3[t]
                    for l in range(MAN_JW):
                        acc0[l] += _fabs(v0 - q[l])
                        acc1[l] += _fabs(v1 - q[l])
                        acc2[l] += _fabs(v2 - q[l])
                        acc3[l] += _fabs(v3 - q[l])
                nc = min(<Py_ssize_t>MAN_JW, cols - jj)
                o = out + i * ldo + jj
                for l in range(nc):
                    o[l] += acc0[l]
                if nr > 1:
                    for l in range(nc):
                        o[ldo + l] += acc1[l]
                if nr > 2:
                    for l in range(nc):
                        o[2 * ldo + l] += acc2[l]
                if nr > 3:
                    for l in range(nc):
                        o[3 * ldo + l] += acc3[l]
                jj += MAN_JW
            i += MAN_IR
        d0 += db


def cdist_manhattan(const floating[:, ::1] x1, const floating[:, ::1] x2, floating[:, ::1] out,
                    Py_ssize_t tile_rows=64, Py_ssize_t tile_cols=256):
    """out[i, j] = Σ_t |x1[i, t] - x2[j, t]|, in tiles of tile_rows × tile_cols (one task
    each; the grid does not depend on the thread count, so neither does the result).

    Per-thread workspace: one double tile and one transposed feature block of x2; never an
    N×M×D array. Float32 inputs are summed in float over blocks of MAN_DB features and in
    double across blocks: relative error at most about (MAN_DB + 2)·2⁻²⁴.
    """
    cdef Py_ssize_t n = x1.shape[0], m = x2.shape[0], d = x1.shape[1]
    if n == 0 or m == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t tr = max(1, min(tile_rows, n)), tc = max(1, min(tile_cols, m))
    cdef Py_ssize_t cp = (tc + MAN_JW - 1) // MAN_JW * MAN_JW
    cdef Py_ssize_t n_rt = (n + tr - 1) // tr, n_ct = (m + tc - 1) // tc
    cdef int nthreads = omp_get_max_threads()
    cdef double[:, ::1] work = np.empty((nthreads, tr * tc), dtype=np.float64)
    cdef floating[:, ::1] bts = np.empty((nthreads, MAN_DB * cp), dtype=dtype)
    cdef Py_ssize_t t, i0, i1, j0, j1, i, j
    cdef double* w
    cdef int tid
    with nogil:
        for t in prange(n_rt * n_ct, schedule='dynamic',
                        use_threads_if=n_rt * n_ct > 1 and n * m * (d + 1) >= TG_PAR_MIN):
            tid = threadid()
            w = &work[tid, 0]
            i0 = (t // n_ct) * tr
            i1 = min(n, i0 + tr)
            j0 = (t % n_ct) * tc
            j1 = min(m, j0 + tc)
            _l1_tile(&x1[i0, 0], &x2[j0, 0], i1 - i0, j1 - j0, d, w, tc, &bts[tid, 0])
            for i in range(i0, i1):
                for j in range(j0, j1):
                    out[i, j] = <floating>w[(i - i0) * tc + j - j0]


def sign_contract(const floating[:, ::1] g, const floating[:, ::1] a,
                  const floating[:, ::1] b, floating[:, ::1] out):
    """out[i, t] = Σ_j g[i, j] · sign(a[i, t] - b[j, t])  (sign(0) = 0): the gradient of
    Σ g ⊙ cdist_manhattan(a, b) w.r.t. a. Summed in double over j in order, per row."""
    cdef Py_ssize_t n = a.shape[0], m = b.shape[0], d = a.shape[1], i, j, t
    cdef int nthreads = omp_get_max_threads()
    cdef double[:, ::1] work = np.empty((nthreads, max(d, 1)), dtype=np.float64)
    cdef double* w
    cdef double gij, x
    if n == 0 or d == 0:
        return
    with nogil:
        for i in prange(n, schedule='static', use_threads_if=n * m * (d + 1) >= TG_PAR_MIN):
            w = &work[threadid(), 0]
            for t in range(d):
                w[t] = 0.0
            for j in range(m):
                gij = g[i, j]
                for t in range(d):
                    x = <double>a[i, t] - <double>b[j, t]
                    w[t] += gij * ((x > 0.0) - (x < 0.0))
            for t in range(d):
                out[i, t] = <floating>w[t]


cdef inline double _sign_dot(const floating* h, const floating* p, const floating* q,
                             Py_ssize_t d) noexcept nogil:
    """Σ_t h[t] · sign(p[t] - q[t]) in double, eight partial sums."""
    cdef double acc[8]
    cdef double x
    cdef Py_ssize_t t = 0, l
    for l in range(8):
        acc[l] = 0.0
    while t + 8 <= d:
        for l in range(8):
            x = <double>p[t + l] - <double>q[t + l]
            acc[l] += h[t + l] * ((x > 0.0) - (x < 0.0))
        t += 8
    while t < d:
        x = <double>p[t] - <double>q[t]
        acc[0] += h[t] * ((x > 0.0) - (x < 0.0))
        t += 1
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


def sign_dot(const floating[:, ::1] h, const floating[:, ::1] a, const floating[:, ::1] b,
             floating[:, ::1] out):
    """out[i, j] = Σ_t h[i, t] · sign(a[i, t] - b[j, t])  (sign(0) = 0): the adjoint of
    ``sign_contract`` in its first argument. Summed in double, eight partial sums."""
    cdef Py_ssize_t n = a.shape[0], m = b.shape[0], d = a.shape[1], i, j
    if n == 0 or m == 0:
        return
    if d == 0:
        out[:, :] = 0
        return
    with nogil:
        for i in prange(n, schedule='static', use_threads_if=n * m * (d + 1) >= TG_PAR_MIN):
            for j in range(m):
                out[i, j] = <floating>_sign_dot(&h[i, 0], &a[i, 0], &b[j, 0], d)


# --- k nearest neighbours --------------------------------------------------------------------
# Metric codes (tensorgrad/neighbors/knn.py uses the same numbers). The key ranked is
# d² (SQEUCLIDEAN; euclidean ranks it too), 1 - cos (COSINE), -p·q (INNER) or Σ|p - q|.
cdef enum:
    K_SQEUCLIDEAN = 0
    K_COSINE = 1
    K_INNER = 2
    K_MANHATTAN = 3


cdef inline bint _before(double d, int64_t j, double d_ref, int64_t j_ref) noexcept nogil:
    """Lexicographic order on (key, index): smaller key first, then smaller index."""
    return d < d_ref or (d == d_ref and j < j_ref)


cdef inline void _push(double* hd, int64_t* hi, Py_ssize_t k, double d, int64_t j) noexcept nogil:
    """Insert (d, j) into the sorted list of length k, dropping the last entry.

    The caller has checked that (d, j) comes before the last entry.
    """
    cdef Py_ssize_t pos = k - 1
    while pos > 0 and _before(d, j, hd[pos - 1], hi[pos - 1]):
        hd[pos] = hd[pos - 1]
        hi[pos] = hi[pos - 1]
        pos -= 1
    hd[pos] = d
    hi[pos] = j


cdef inline double _exact_key(int metric, const floating* p, const floating* q, Py_ssize_t d,
                              double s1, double s2) noexcept nogil:
    if metric == K_SQEUCLIDEAN:
        return _sum_sq(p, q, d, True)
    if metric == K_COSINE:
        return _cos_exact(p, q, d, s1, s2)
    if metric == K_INNER:
        return -_dot_exact(p, q, d)
    return _l1_exact(p, q, d)


def row_sqnorms(const floating[:, ::1] x, double[::1] out):
    """out[i] = ||x[i]||², in double (eight partial sums, the same for any thread count)."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1]
    if n == 0:
        return
    with nogil:
        _row_sqnorms(&x[0, 0], n, d, &out[0])


def _scan_workspace(bint man, int nthreads, Py_ssize_t tr, Py_ssize_t tc, dtype):
    """The kNN scans' per-thread workspace (knn_chunk, knn_chunk_approx): (a GEMM tile,
    a double tile, a transposed feature block), the last two for Manhattan only (the others
    get 1-element placeholders)."""
    cdef Py_ssize_t cp = (tc + MAN_JW - 1) // MAN_JW * MAN_JW
    cdef Py_ssize_t nt_g = 1 if man else nthreads, nt_m = nthreads if man else 1
    return (np.empty((nt_g, 1 if man else tr, 1 if man else tc), dtype=dtype),
            np.empty((nt_m, tr if man else 1, tc if man else 1), dtype=np.float64),
            np.empty((nt_m, MAN_DB * cp if man else 1), dtype=dtype))


def knn_chunk(const floating[:, ::1] xq, const floating[:, ::1] xt, int64_t offset, int metric,
              double slack, const double[::1] qnorm, double[:, :, ::1] hd,
              int64_t[:, :, ::1] hi, Py_ssize_t tile_rows=512, Py_ssize_t tile_cols=1024):
    """Merge the training rows xt (global indices offset + j) into running top-k lists.

    ``hd``/``hi`` [nseg, N, k] hold, per segment and query row, the k best (key, index)
    pairs so far, sorted, initialised to (inf, INT64_MAX); segment s scans the s-th of
    nseg equal contiguous parts of xt, so every list receives indices in increasing order.
    Keys are always exact (double, from the input rows): an approximate key from a tile (one
    GEMM for the GEMM metrics, ``_l1_tile`` for Manhattan) only decides, through a lower
    bound, which pairs need their exact key. ``slack`` bounds the approximation's error:
    |approx - exact| <= slack·(n1 + n2) (sqeuclidean), slack (cosine), slack·|p|·|q|
    (inner product), slack·approx (Manhattan). ``qnorm`` holds the queries' squared norms.
    Call with the BLAS pool limited to one thread.
    """
    cdef Py_ssize_t n = xq.shape[0], m = xt.shape[0], d = xq.shape[1]
    cdef Py_ssize_t nseg = hd.shape[0], k = hd.shape[2]
    if n == 0 or m == 0:
        return
    require_blas()
    dtype = np.float32 if floating is float else np.float64
    cdef bint man = metric == K_MANHATTAN
    cdef int nthreads = omp_get_max_threads()
    cdef Py_ssize_t tr = max(1, min(tile_rows, n)), tc = max(1, min(tile_cols, m))
    cdef Py_ssize_t n_qt = (n + tr - 1) // tr
    cdef double[::1] n2 = np.empty(m, dtype=np.float64)
    cdef double[::1] v = np.empty(m, dtype=np.float64)      # per training row, see below
    ws = _scan_workspace(man, nthreads, tr, tc, dtype)
    cdef floating[:, :, ::1] buf = ws[0]
    cdef double[:, :, ::1] mbuf = ws[1]
    cdef floating[:, ::1] bts = ws[2]
    cdef Py_ssize_t ntasks = n_qt * nseg
    cdef Py_ssize_t t, seg, r0, r1, i0, i1, j0, j1, i, j
    cdef const floating* p
    cdef floating* brow
    cdef double* mrow
    cdef double* rd
    cdef int64_t* ri
    cdef double a, c, s1, e, r1n, keep = 1.0 - slack
    cdef int tid
    with nogil:
        if not man:
            _row_sqnorms(&xt[0, 0], m, d, &n2[0])
        # v: the training row's part of the lower bound of its key.
        for j in range(m):
            if metric == K_SQEUCLIDEAN:
                v[j] = keep * n2[j]                              # lb = v - 2 p·q + keep·n1
            elif metric == K_COSINE:
                v[j] = 1.0 / sqrt(n2[j]) if n2[j] > 0.0 else 0.0     # 1/|q| (0: zero row)
            elif metric == K_INNER:
                v[j] = -slack * sqrt(n2[j])                      # lb = -p·q + |p|·v
        for t in prange(ntasks, schedule='dynamic',
                        use_threads_if=ntasks > 1 and n * m * (d + 1) >= TG_PAR_MIN):
            tid = threadid()
            seg = t % nseg
            i0 = (t // nseg) * tr
            i1 = min(n, i0 + tr)
            r0 = seg * m // nseg
            r1 = (seg + 1) * m // nseg
            j0 = r0
            while j0 < r1:      # training tiles in increasing order
                j1 = min(r1, j0 + tc)
                if man:
                    _l1_tile(&xq[i0, 0], &xt[j0, 0], i1 - i0, j1 - j0, d, &mbuf[tid, 0, 0], tc,
                             &bts[tid, 0])
                else:
                    _gemm_abt(&xq[i0, 0], &xt[j0, 0], <int>(i1 - i0), <int>(j1 - j0), <int>d,
                              &buf[tid, 0, 0], <int>tc)
                for i in range(i0, i1):
                    p = &xq[i, 0]
                    rd = &hd[seg, i, 0]
                    ri = &hi[seg, i, 0]
                    a = qnorm[i]
                    if metric == K_SQEUCLIDEAN:
                        brow = &buf[tid, i - i0, 0]
                        # lb < worst  <=>  v_j - 2 p·q < worst - keep·n1
                        c = rd[k - 1] - keep * a
                        for j in range(j0, j1):
                            if v[j] - 2.0 * brow[j - j0] < c:
                                e = _sum_sq(p, &xt[j, 0], d, True)
                                if _before(e, offset + j, rd[k - 1], ri[k - 1]):
                                    _push(rd, ri, k, e, offset + j)
                                    c = rd[k - 1] - keep * a
                    elif metric == K_COSINE:
                        brow = &buf[tid, i - i0, 0]
                        s1 = 1.0 / sqrt(a) if a > 0.0 else 0.0
                        # lb = keep - s1·s2·p·q < worst
                        c = rd[k - 1] - keep
                        for j in range(j0, j1):
                            if -s1 * v[j] * brow[j - j0] < c:
                                e = _cos_exact(p, &xt[j, 0], d, s1, v[j])
                                if _before(e, offset + j, rd[k - 1], ri[k - 1]):
                                    _push(rd, ri, k, e, offset + j)
                                    c = rd[k - 1] - keep
                    elif metric == K_INNER:
                        brow = &buf[tid, i - i0, 0]
                        r1n = sqrt(a)
                        c = rd[k - 1]
                        for j in range(j0, j1):
                            if r1n * v[j] - brow[j - j0] < c:
                                e = -_dot_exact(p, &xt[j, 0], d)
                                if _before(e, offset + j, rd[k - 1], ri[k - 1]):
                                    _push(rd, ri, k, e, offset + j)
                                    c = rd[k - 1]
                    else:
                        mrow = &mbuf[tid, i - i0, 0]
                        c = rd[k - 1]
                        for j in range(j0, j1):
                            if keep * mrow[j - j0] < c:
                                e = _l1_exact(p, &xt[j, 0], d)
                                if _before(e, offset + j, rd[k - 1], ri[k - 1]):
                                    _push(rd, ri, k, e, offset + j)
                                    c = rd[k - 1]
                j0 = j1


def knn_finish(double[:, :, ::1] hd, int64_t[:, :, ::1] hi, int out_kind,
               floating[:, ::1] out_dist, int64_t[:, ::1] out_idx):
    """Merge the segments' lists (``knn_chunk``) and write the outputs, nearest first:
    out_kind 0 = the key (d², 1 - cos, Σ|p - q|), 1 = sqrt(key) (Euclidean), 2 = -key
    (the inner product, largest first)."""
    cdef Py_ssize_t nseg = hd.shape[0], n = hd.shape[1], k = hd.shape[2], i, j, s
    cdef double* rd
    cdef int64_t* ri
    with nogil:
        for i in prange(n, schedule='static', use_threads_if=n * k * nseg >= TG_PAR_MIN):
            rd = &hd[0, i, 0]
            ri = &hi[0, i, 0]
            for s in range(1, nseg):
                for j in range(k):
                    if not _before(hd[s, i, j], hi[s, i, j], rd[k - 1], ri[k - 1]):
                        break
                    _push(rd, ri, k, hd[s, i, j], hi[s, i, j])
            for j in range(k):
                if out_kind == 1:
                    out_dist[i, j] = <floating>sqrt(rd[j])
                elif out_kind == 2:
                    out_dist[i, j] = <floating>(-rd[j])
                else:
                    out_dist[i, j] = <floating>rd[j]
                out_idx[i, j] = ri[j]


cdef inline void _push3(double* ha, double* hb, int64_t* hi, Py_ssize_t k, double a, double b,
                        int64_t j) noexcept nogil:
    """``_push`` for the approximate lists: (a, j) ordered, b (the error bound) carried."""
    cdef Py_ssize_t pos = k - 1
    while pos > 0 and _before(a, j, ha[pos - 1], hi[pos - 1]):
        ha[pos] = ha[pos - 1]
        hb[pos] = hb[pos - 1]
        hi[pos] = hi[pos - 1]
        pos -= 1
    ha[pos] = a
    hb[pos] = b
    hi[pos] = j


cdef inline void _norm_terms(const double* n2, double* v, float* vf, Py_ssize_t j0,
                             Py_ssize_t j1, int metric) noexcept nogil:
    """v[j] for the approximate keys: 1/|q| (cosine; 0 for a zero row), |q| (inner product),
    ||q||² (the others); vf[j] = v[j] rounded to float (the squared Euclidean prefilter)."""
    cdef Py_ssize_t j
    for j in range(j0, j1):
        if metric == K_COSINE:
            v[j] = 1.0 / sqrt(n2[j]) if n2[j] > 0.0 else 0.0
        elif metric == K_INNER:
            v[j] = sqrt(n2[j])
        else:
            v[j] = n2[j]
        vf[j] = <float>v[j]


cdef inline float _scan_threshold(double c, double vmax) noexcept nogil:
    """The float threshold cf of the prefilter ``tg_knn_scan_f`` (``_knn_scan.h``) for the
    double test v_j - 2 b_j < c, given 0 <= v_j <= vmax: infinity (no filtering) when the
    values are out of float range.

    Proof that every j passing the double test has vf_j - 2 b_j < cf in float (u = 2⁻²⁴):
    vf_j = fl(v_j) errs by at most u·v_j + 2⁻¹⁵⁰, the float difference by at most u times
    its magnitude + 2⁻¹⁵⁰ (2 b_j is exact; an overflow to -inf only accepts more, one to
    +inf needs v_j - 2 b_j > 3·10³⁸ > c), and the double test's own rounding is relative
    2⁻⁵³; together the float value is below c + 2⁻²³·(|c| + vmax) + 2⁻¹⁴⁸. y below has
    four times that margin, more than the rounding of y itself to float takes away.
    """
    cdef double y = c + SCAN_REL * (fabs(c) + vmax) + SCAN_ABS
    if vmax < 1e37 and y < 1e38 and y > -1e38:
        return <float>y
    return INFINITY


def knn_chunk_approx(const floating[:, ::1] xq, const floating[:, ::1] xt, int64_t offset,
                     int metric, double slack, const double[::1] qnorm, double[:, :, ::1] ha,
                     double[:, :, ::1] hb, int64_t[:, :, ::1] hi, double[::1] stats,
                     Py_ssize_t tile_rows=512, Py_ssize_t tile_cols=1024, bint prefilter=True):
    """The fast path of ``knn_chunk``: lists of the K2 (> k) best *approximate* keys, each
    with its error bound (|approx - exact| <= b, see ``knn_chunk``), with no exact
    recomputation during the scan; ``knn_verify`` then proves (or refutes) per row that the
    exact top-k lies in its list. ``stats[0]`` is raised to the chunk's largest squared row
    norm (the bound of the rows left out of the lists); ``stats[1]``, if present, is set to
    1 when a squared row norm is infinite or NaN (not for Manhattan, which has none). Same
    tiles and segments as ``knn_chunk``; call with the BLAS pool limited to one thread.

    Squared Euclidean in float32 skips blocks of a tile row with a vectorised float test
    that provably rejects only entries the double test would reject (``_scan_threshold``):
    the lists are identical with ``prefilter`` false (which tests every entry; for tests
    and timing).
    """
    cdef Py_ssize_t n = xq.shape[0], m = xt.shape[0], d = xq.shape[1]
    cdef Py_ssize_t nseg = ha.shape[0], k = ha.shape[2]
    if n == 0 or m == 0:
        return
    require_blas()
    dtype = np.float32 if floating is float else np.float64
    cdef bint man = metric == K_MANHATTAN
    cdef int nthreads = omp_get_max_threads()
    cdef Py_ssize_t tr = max(1, min(tile_rows, n)), tc = max(1, min(tile_cols, m))
    cdef Py_ssize_t n_qt = (n + tr - 1) // tr
    cdef double[::1] n2 = np.zeros(m, dtype=np.float64)
    cdef double[::1] v = np.empty(m, dtype=np.float64)
    cdef float[::1] vf = np.empty(m, dtype=np.float32)
    ws = _scan_workspace(man, nthreads, tr, tc, dtype)
    cdef floating[:, :, ::1] buf = ws[0]
    cdef double[:, :, ::1] mbuf = ws[1]
    cdef floating[:, ::1] bts = ws[2]
    cdef Py_ssize_t ntasks = n_qt * nseg
    cdef Py_ssize_t t, seg, r0, r1, i0, i1, j0, j1, i, j, nt, tw, jb, je
    cdef floating* brow
    cdef double* mrow
    cdef double* ra
    cdef double* rb
    cdef int64_t* ri
    cdef double a, c, s1, r1n, x, y, vmax
    cdef float cf
    cdef int tid
    # With one query tile, each training row is used by one task only: that task computes
    # its rows' norms just before their GEMM (the block is then read from memory once).
    cdef bint late = n_qt == 1
    with nogil:
        if not man and not late:
            _row_sqnorms(&xt[0, 0], m, d, &n2[0])
            _norm_terms(&n2[0], &v[0], &vf[0], 0, m, metric)
        for t in prange(ntasks, schedule='dynamic',
                        use_threads_if=ntasks > 1 and n * m * (d + 1) >= TG_PAR_MIN):
            tid = threadid()
            seg = t % nseg
            i0 = (t // nseg) * tr
            i1 = min(n, i0 + tr)
            r0 = seg * m // nseg
            r1 = (seg + 1) * m // nseg
            # equal tiles of at most tc rows over the segment, in increasing order
            nt = (r1 - r0 + tc - 1) // tc
            tw = (r1 - r0 + nt - 1) // nt if nt > 0 else 1
            j0 = r0
            while j0 < r1:
                j1 = min(r1, j0 + tw)
                if late and not man:
                    _row_sqnorms_serial(&xt[j0, 0], j1 - j0, d, &n2[j0])
                    _norm_terms(&n2[0], &v[0], &vf[0], j0, j1, metric)
                if man:
                    _l1_tile(&xq[i0, 0], &xt[j0, 0], i1 - i0, j1 - j0, d, &mbuf[tid, 0, 0], tc,
                             &bts[tid, 0])
                else:
                    _gemm_abt(&xq[i0, 0], &xt[j0, 0], <int>(i1 - i0), <int>(j1 - j0), <int>d,
                              &buf[tid, 0, 0], <int>tc)
                vmax = 0.0
                if metric == K_SQEUCLIDEAN and floating is float:
                    for j in range(j0, j1):
                        if not v[j] <= vmax:        # NaN: no filtering
                            vmax = v[j] if v[j] == v[j] else INFINITY
                for i in range(i0, i1):
                    ra = &ha[seg, i, 0]
                    rb = &hb[seg, i, 0]
                    ri = &hi[seg, i, 0]
                    a = qnorm[i]
                    if metric == K_SQEUCLIDEAN:
                        brow = &buf[tid, i - i0, 0]
                        # key = n1 + n2 - 2 p·q < worst  <=>  n2 - 2 p·q < worst - n1. For
                        # float, a vectorised float prefilter (_knn_scan.h) skips blocks of
                        # SCAN_BLOCK entries none of which can pass (see _scan_threshold);
                        # the blocks left run the same double test, so the lists are those
                        # of the plain loop. (An earlier block skip on the sign-bit OR of
                        # the double differences was not vectorised and measured slower.)
                        c = ra[k - 1] - a
                        jb = 0
                        je = j1 - j0
                        cf = _scan_threshold(c, vmax) if prefilter else INFINITY
                        while jb < j1 - j0:
                            if floating is float:
                                jb = tg_knn_scan_f(&vf[j0], brow, jb, j1 - j0, cf)
                                je = min(jb + SCAN_BLOCK, j1 - j0)
                            for j in range(j0 + jb, j0 + je):
                                x = v[j] - 2.0 * brow[j - j0]
                                if x < c:
                                    y = x + a
                                    if _before(y, offset + j, ra[k - 1], ri[k - 1]):
                                        _push3(ra, rb, ri, k, y, slack * (a + v[j]),
                                               offset + j)
                                        c = ra[k - 1] - a
                                        if prefilter:
                                            cf = _scan_threshold(c, vmax)
                            jb = je
                    elif metric == K_COSINE:
                        brow = &buf[tid, i - i0, 0]
                        s1 = 1.0 / sqrt(a) if a > 0.0 else 0.0
                        for j in range(j0, j1):
                            y = 1.0 - s1 * v[j] * brow[j - j0]
                            if _before(y, offset + j, ra[k - 1], ri[k - 1]):
                                _push3(ra, rb, ri, k, y, slack, offset + j)
                    elif metric == K_INNER:
                        brow = &buf[tid, i - i0, 0]
                        r1n = sqrt(a)
                        for j in range(j0, j1):
                            y = -<double>brow[j - j0]
                            if _before(y, offset + j, ra[k - 1], ri[k - 1]):
                                _push3(ra, rb, ri, k, y, slack * r1n * v[j], offset + j)
                    else:
                        mrow = &mbuf[tid, i - i0, 0]
                        for j in range(j0, j1):
                            y = mrow[j - j0]
                            if _before(y, offset + j, ra[k - 1], ri[k - 1]):
                                _push3(ra, rb, ri, k, y, slack * y, offset + j)
                j0 = j1
        for j in range(m):
            if n2[j] > stats[0]:
                stats[0] = n2[j]
            if not n2[j] < INFINITY and stats.shape[0] > 1:
                stats[1] = 1.0


def knn_verify(const floating[:, ::1] xq, const floating[:, ::1] xt, Py_ssize_t k, int metric,
               double slack, double n2max, const double[::1] qnorm, double[:, :, ::1] ha,
               double[:, :, ::1] hb, int64_t[:, :, ::1] hi, int out_kind,
               floating[:, ::1] out_dist, int64_t[:, ::1] out_idx, uint8_t[::1] failed):
    """Finish the approximate search (``knn_chunk_approx``) exactly, or flag the row.

    Per query row: merge the segments' lists (K2 entries by approximate key a, bound b);
    T = the largest a + b among the first k entries bounds the k-th exact key from above.
    Rows never entering the list have a >= a_K2, so a lower bound a_K2 - b_max; if that
    exceeds T (or every training row is in the list), the exact top-k is among the entries
    with a - b <= T: their keys are recomputed in double from the rows of ``xt`` (the whole
    training set, possibly a memory map), sorted by (key, index), and the first k written as
    ``knn_finish`` does. Otherwise ``failed[i] = 1`` and the row is left for the exact path.
    """
    cdef Py_ssize_t nseg = ha.shape[0], n = ha.shape[1], k2 = ha.shape[2], d = xq.shape[1]
    cdef Py_ssize_t m = xt.shape[0], i, j, s, nc
    cdef double T, bmax, a, e, s1, s2 = 0.0
    cdef double* ra
    cdef double* rb
    cdef int64_t* ri
    cdef int64_t jj
    cdef double[:, ::1] ck = np.empty((n, k2), dtype=np.float64)
    cdef int64_t[:, ::1] ci = np.empty((n, k2), dtype=np.int64)
    cdef double* rk
    cdef int64_t* rki
    with nogil:
        for i in prange(n, schedule='dynamic', use_threads_if=n * k2 * d >= TG_PAR_MIN):
            ra = &ha[0, i, 0]
            rb = &hb[0, i, 0]
            ri = &hi[0, i, 0]
            for s in range(1, nseg):
                for j in range(k2):
                    if not _before(ha[s, i, j], hi[s, i, j], ra[k2 - 1], ri[k2 - 1]):
                        break
                    _push3(ra, rb, ri, k2, ha[s, i, j], hb[s, i, j], hi[s, i, j])
            a = qnorm[i]
            T = -INFINITY
            for j in range(k):
                if ra[j] + rb[j] > T:
                    T = ra[j] + rb[j]
            if metric == K_SQEUCLIDEAN:
                bmax = slack * (a + n2max)
            elif metric == K_INNER:
                bmax = slack * sqrt(a) * sqrt(n2max)
            elif metric == K_COSINE:
                bmax = slack
            else:
                bmax = slack * ra[k2 - 1]
            if k2 < m and not (ra[k2 - 1] - bmax > T):
                failed[i] = 1
                continue
            failed[i] = 0
            s1 = 1.0 / sqrt(a) if a > 0.0 else 0.0
            rk = &ck[i, 0]
            rki = &ci[i, 0]
            for j in range(k):
                rk[j] = INFINITY
                rki[j] = INT64_MAX
            for j in range(min(k2, m)):
                if ra[j] - rb[j] <= T:
                    jj = ri[j]
                    if metric == K_COSINE:
                        s2 = _sum_sq(&xt[jj, 0], &xt[jj, 0], d, False)
                        s2 = 1.0 / sqrt(s2) if s2 > 0.0 else 0.0
                    e = _exact_key(metric, &xq[i, 0], &xt[jj, 0], d, s1, s2)
                    if _before(e, jj, rk[k - 1], rki[k - 1]):
                        _push(rk, rki, k, e, jj)
            for j in range(k):
                if out_kind == 1:
                    out_dist[i, j] = <floating>sqrt(rk[j])
                elif out_kind == 2:
                    out_dist[i, j] = <floating>(-rk[j])
                else:
                    out_dist[i, j] = <floating>rk[j]
                out_idx[i, j] = rki[j]


def euclid_grad_scale(const floating[:, ::1] g, const floating[:, ::1] d,
                      floating[:, ::1] out):
    """out = g / (2 d) where d > 0, else 0: the chain factor of d = sqrt(d²) in cdist's
    backward, with the subgradient 0 at d = 0 (no NaN for coincident points)."""
    cdef Py_ssize_t n = g.shape[0], m = g.shape[1], i, j
    cdef double dij
    with nogil:
        for i in prange(n, schedule='static', use_threads_if=n * m >= TG_PAR_MIN):
            for j in range(m):
                dij = d[i, j]
                out[i, j] = <floating>(g[i, j] / (2.0 * dij) if dij > 0.0 else 0.0)
