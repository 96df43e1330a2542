"""Pairwise Euclidean distances and fused k-nearest-neighbour search.

Strategy
--------
Both kernels use ||p - q||² = ||p||² + ||q||² - 2 p·q and work in tiles of ``tile_rows``
rows of the first input by ``tile_cols`` rows of the second:

1. The squared row norms of both inputs are computed once, in double.
2. Per tile, one single-threaded BLAS GEMM (``blas.pyx``'s sgemm/dgemm) gives the p·q
   block. ``cdist`` writes it straight into its tile of the caller's ``out`` (leading
   dimension = M), so ``out`` is the only large buffer; ``knn`` writes it into a per-thread
   [tile_rows, tile_cols] workspace that stays in cache.
3. An epilogue on the same thread, while the tile is hot, forms d² = n1 + n2 - 2 p·q in
   double, clamps it at 0, and either takes the square root (``cdist``) or feeds it to a
   per-row top-k list (``knn``).

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
from libc.math cimport sqrt
from libc.stdint cimport int64_t, INT64_MAX
from libc.string cimport memset

from tensorgrad._kernels._openmp cimport TG_PAR_MIN, omp_get_max_threads
from tensorgrad._kernels.blas cimport dgemm, require_blas, sgemm

ctypedef fused floating:
    float
    double

# Below tau·(||p||² + ||q||²) the GEMM expansion is not trusted (see the module docstring).
cdef double TAU_F32 = 2.0 ** -5
cdef double TAU_F64 = 2.0 ** -14


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

    Four independent partial sums: a single double accumulator is bound by the latency of
    the add (the compiler may not reassociate it), four keep the FP units busy.
    """
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, t0, t1, t2, t3
    cdef Py_ssize_t i = 0
    while i + 4 <= d:
        t0 = <double>p[i]
        t1 = <double>p[i + 1]
        t2 = <double>p[i + 2]
        t3 = <double>p[i + 3]
        if diff:
            t0 = t0 - <double>q[i]
            t1 = t1 - <double>q[i + 1]
            t2 = t2 - <double>q[i + 2]
            t3 = t3 - <double>q[i + 3]
        s0 += t0 * t0
        s1 += t1 * t1
        s2 += t2 * t2
        s3 += t3 * t3
        i += 4
    while i < d:
        t0 = <double>p[i]
        if diff:
            t0 = t0 - <double>q[i]
        s0 += t0 * t0
        i += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _exact_sq(const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """Σ (p_i - q_i)² in double: the fallback for nearly identical rows."""
    return _sum_sq(p, q, d, True)


cdef inline double _sq_dist(double n1, double n2, double dot, double tau,
                            const floating* p, const floating* q, Py_ssize_t d) noexcept nogil:
    """d² from the expansion, or exactly when cancellation makes the expansion unreliable."""
    cdef double s = n1 + n2
    cdef double d2 = s - 2.0 * dot
    if d2 < tau * s:
        return _exact_sq(p, q, d)
    return d2


cdef void _row_sqnorms(const floating* x, Py_ssize_t n, Py_ssize_t d,
                       double* out) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, schedule='static', use_threads_if=n * d >= TG_PAR_MIN):
        out[i] = _sum_sq(x + i * d, x, d, False)


def row_sqnorms(const floating[:, ::1] x, double[::1] out):
    """out[i] = Σ_j x[i, j]², accumulated in double."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1]
    if n == 0:
        return
    with nogil:
        _row_sqnorms(&x[0, 0], n, d, &out[0])


def cdist(const floating[:, ::1] x1, const floating[:, ::1] x2, floating[:, ::1] out,
          bint squared=False, Py_ssize_t tile_rows=512, Py_ssize_t tile_cols=512):
    """out[i, j] = ||x1[i] - x2[j]||  (or its square), tiled as in the module docstring.

    x1 [N, D], x2 [M, D], out [N, M]; call with the BLAS pool limited to one thread.
    """
    cdef Py_ssize_t n = x1.shape[0], m = x2.shape[0], d = x1.shape[1]
    if n == 0 or m == 0:
        return
    require_blas()
    cdef double[::1] n1 = np.empty(n, dtype=np.float64)
    cdef double[::1] n2 = np.empty(m, dtype=np.float64)
    cdef double tau = TAU_F32 if floating is float else TAU_F64
    cdef Py_ssize_t tr = max(1, min(tile_rows, n)), tc = max(1, min(tile_cols, m))
    cdef Py_ssize_t n_rt = (n + tr - 1) // tr, n_ct = (m + tc - 1) // tc
    cdef Py_ssize_t ntiles = n_rt * n_ct
    cdef Py_ssize_t t, i0, i1, j0, j1, i, j
    cdef const floating* p
    cdef floating* row
    cdef double a, d2
    with nogil:
        _row_sqnorms(&x1[0, 0], n, d, &n1[0])
        _row_sqnorms(&x2[0, 0], m, d, &n2[0])
        for t in prange(ntiles, schedule='dynamic',
                        use_threads_if=ntiles > 1 and n * m * (d + 1) >= TG_PAR_MIN):
            i0 = (t // n_ct) * tr
            i1 = min(n, i0 + tr)
            j0 = (t % n_ct) * tc
            j1 = min(m, j0 + tc)
            _gemm_abt(&x1[i0, 0], &x2[j0, 0], <int>(i1 - i0), <int>(j1 - j0), <int>d,
                      &out[i0, j0], <int>m)
            for i in range(i0, i1):
                p = &x1[i, 0]
                row = &out[i, 0]
                a = n1[i]
                for j in range(j0, j1):
                    d2 = _sq_dist(a, n2[j], row[j], tau, p, &x2[j, 0], d)
                    if d2 < 0.0:
                        d2 = 0.0
                    row[j] = <floating>(d2 if squared else sqrt(d2))


cdef inline bint _before(double d, int64_t j, double d_ref, int64_t j_ref) noexcept nogil:
    """Lexicographic order on (d², index): smaller distance first, then smaller index."""
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


def knn(const floating[:, ::1] xq, const floating[:, ::1] xt, Py_ssize_t k,
        floating[:, ::1] out_dist, int64_t[:, ::1] out_idx, bint squared=False,
        Py_ssize_t tile_rows=512, Py_ssize_t tile_cols=1024, int num_segments=0):
    """The k nearest rows of xt for every row of xq, nearest first.

    out_dist[i] = the k smallest ||xq[i] - xt[j]|| (squared if asked), out_idx[i] = their
    j; ties in distance go to the smaller j. ``num_segments`` (0 = automatic) splits the
    training rows for parallelism when there are few query tiles; it never changes the
    result. Call with the BLAS pool limited to one thread.
    """
    cdef Py_ssize_t n = xq.shape[0], m = xt.shape[0], d = xq.shape[1]
    if n == 0:
        return
    require_blas()
    dtype = np.float32 if floating is float else np.float64
    cdef int nthreads = omp_get_max_threads()
    cdef Py_ssize_t tr = max(1, min(tile_rows, n)), tc = max(1, min(tile_cols, m))
    cdef Py_ssize_t n_qt = (n + tr - 1) // tr, n_tt = (m + tc - 1) // tc
    cdef Py_ssize_t nseg = num_segments
    if nseg <= 0:
        nseg = 1 if n_qt >= nthreads else nthreads
    nseg = max(1, min(nseg, n_tt))
    cdef double[::1] n1 = np.empty(n, dtype=np.float64)
    cdef double[::1] n2 = np.empty(m, dtype=np.float64)
    # One sorted top-k list per (segment, query row), plus one GEMM tile per thread.
    cdef double[:, :, ::1] hd = np.full((nseg, n, k), np.inf)
    cdef int64_t[:, :, ::1] hi = np.full((nseg, n, k), INT64_MAX, dtype=np.int64)
    cdef floating[:, :, ::1] buf = np.empty((nthreads, tr, tc), dtype=dtype)
    cdef double tau = TAU_F32 if floating is float else TAU_F64
    cdef Py_ssize_t ntasks = n_qt * nseg
    cdef Py_ssize_t t, seg, tt, tt0, tt1, i0, i1, j0, j1, i, j, s
    cdef const floating* p
    cdef floating* brow
    cdef double* rd
    cdef int64_t* ri
    cdef double[::1] w = np.empty(m, dtype=np.float64)
    cdef double a, d2, c
    cdef int tid
    with nogil:
        _row_sqnorms(&xq[0, 0], n, d, &n1[0])
        _row_sqnorms(&xt[0, 0], m, d, &n2[0])
        for j in range(m):
            w[j] = (1.0 - tau) * n2[j]
        for t in prange(ntasks, schedule='dynamic',
                        use_threads_if=ntasks > 1 and n * m * (d + 1) >= TG_PAR_MIN):
            tid = threadid()
            seg = t % nseg
            i0 = (t // nseg) * tr
            i1 = min(n, i0 + tr)
            tt0 = seg * n_tt // nseg
            tt1 = (seg + 1) * n_tt // nseg
            # Training tiles in increasing order, the same grid for any thread count.
            for tt in range(tt0, tt1):
                j0 = tt * tc
                j1 = min(m, j0 + tc)
                _gemm_abt(&xq[i0, 0], &xt[j0, 0], <int>(i1 - i0), <int>(j1 - j0), <int>d,
                          &buf[tid, 0, 0], <int>tc)
                for i in range(i0, i1):
                    p = &xq[i, 0]
                    brow = &buf[tid, i - i0, 0]
                    rd = &hd[seg, i, 0]
                    ri = &hi[seg, i, 0]
                    a = n1[i]
                    # Cheap filter, a superset of the pairs that can enter the list:
                    # d2 < worst + tau·(n1 + n2)  <=>  w_j - 2 p·q < worst - (1 - tau)·n1.
                    c = rd[k - 1] - (1.0 - tau) * a
                    for j in range(j0, j1):
                        if w[j] - 2.0 * brow[j - j0] < c:
                            d2 = _sq_dist(a, n2[j], brow[j - j0], tau, p, &xt[j, 0], d)
                            if d2 < 0.0:
                                d2 = 0.0
                            if _before(d2, j, rd[k - 1], ri[k - 1]):
                                _push(rd, ri, k, d2, j)
                                c = rd[k - 1] - (1.0 - tau) * a
        # Merge the segments' lists into segment 0's, then write the outputs.
        for i in prange(n, schedule='static', use_threads_if=n * k * nseg >= TG_PAR_MIN):
            rd = &hd[0, i, 0]
            ri = &hi[0, i, 0]
            for s in range(1, nseg):
                for j in range(k):
                    if not _before(hd[s, i, j], hi[s, i, j], rd[k - 1], ri[k - 1]):
                        break
                    _push(rd, ri, k, hd[s, i, j], hi[s, i, j])
            for j in range(k):
                out_dist[i, j] = <floating>(rd[j] if squared else sqrt(rd[j]))
                out_idx[i, j] = ri[j]


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
