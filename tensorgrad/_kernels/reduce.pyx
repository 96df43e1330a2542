"""Reduction kernels: sum/mean, max/min with indices, logsumexp, softmax, log_softmax and
the softmax / log_softmax backward passes.

Strategy
--------
A reduction over any contiguous run of axes of a C-contiguous array is a reduction over the
MIDDLE axis of the same memory seen as [A, B, C]; the caller does that reshape, so each kernel
here handles exactly two layouts:

  C == 1  every slice is a contiguous row of B elements. Rows are independent tasks
          (OpenMP over A); for sums, rows longer than RB are cut into RB-element blocks
          whose partial sums are added afterwards, so one huge row still uses every thread.
  C > 1   a slice is strided, so instead of walking it we walk rows: for a column tile of
          up to CT columns, accumulate the B rows of length CT one after the other (reading
          memory contiguously) into a small double buffer on the stack. Tasks are
          (a, column tile) pairs; a sum with too few of them also splits B into blocks.

Sums accumulate in double: rows pairwise (8 accumulators, 128-element leaves, like numpy),
columns by adding rows. The task decomposition depends only on the shape, never on the
number of threads, so every result is bit-identical for any thread count. Loops run in
parallel (dynamic schedule, so a busy core does not stall the rest) when the array has at
least TG_PAR_MIN elements.

Conventions: max/min return the FIRST index on ties and propagate NaN (the first NaN wins);
logsumexp of an all -inf slice is -inf; softmax subtracts the slice max before exp, so it is
stable for any finite input (an all -inf slice gives NaN, as in PyTorch). B == 0 is allowed
for sums (0) and logsumexp (-inf); max/min need B >= 1 (the caller checks).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, exp, expf, log
from libc.stdlib cimport free, malloc

from tensorgrad._kernels._openmp cimport TG_PAR_MIN

cnp.import_array()

ctypedef cnp.npy_intp intp
ctypedef cnp.int64_t i64

cdef enum:
    RB = 32768      # elements per block when one long row is split for the sum
    # Column tile (C > 1): per-task stack buffers of CT doubles (16 KB, within L1). Rows of
    # the tile are read contiguously; narrow tiles are slow because every short row segment
    # lands on a new page (256-wide tiles take 4x as long on [4096, 4096] over axis 0).
    CT = 2048
    MAX_SPLIT = 16  # at most this many B-blocks per tile in a split column sum
    FEW_TASKS = 16  # below this many (a, tile) tasks a large column sum also splits B


# ----------------------------------------------------------------------------------------
# Argument checks (cheap; the Python side has validated shapes already)
# ----------------------------------------------------------------------------------------

cdef int _float_type(cnp.ndarray x, str name) except -1:
    cdef int t = cnp.PyArray_TYPE(x)
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not cnp.PyArray_ISNOTSWAPPED(x):
        raise TypeError(f"{name}: expected a native float32 or float64 array, got {x.dtype}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(x):
        raise ValueError(f"{name}: arrays must be C-contiguous")
    return t


cdef int _check3(cnp.ndarray a3, str name, intp* A, intp* B, intp* C) except -1:
    """Type number of a3 [A, B, C]; fills A, B, C."""
    cdef int t = _float_type(a3, name)
    if cnp.PyArray_NDIM(a3) != 3:
        raise ValueError(f"{name}: expected a 3-D [A, B, C] array, got shape {(<object>a3).shape}")
    A[0] = cnp.PyArray_DIMS(a3)[0]
    B[0] = cnp.PyArray_DIMS(a3)[1]
    C[0] = cnp.PyArray_DIMS(a3)[2]
    return t


cdef int _check_like(cnp.ndarray x, int t, intp A, intp B, intp C, bint three,
                     str name) except -1:
    """x must have type t, be C-contiguous and have shape [A, B, C] (three) or [A, C]."""
    if _float_type(x, name) != t:
        raise TypeError(f"{name}: dtype mismatch ({x.dtype})")
    # Only the element count matters for C-contiguous memory, so out may already carry the
    # caller's final shape (e.g. keepdims) instead of [A, C].
    if cnp.PyArray_SIZE(x) != (A * B * C if three else A * C):
        shape = f"[{A}, {B}, {C}]" if three else f"[{A}, {C}]"
        raise ValueError(f"{name}: expected {shape} elements, got shape {(<object>x).shape}")
    return 0


cdef int _check_out(cnp.ndarray out, int t, intp A, intp B, intp C, bint three,
                    str name) except -1:
    _check_like(out, t, A, B, C, three, name)
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError(f"{name}: out is read-only")
    return 0


# ----------------------------------------------------------------------------------------
# Scalar helpers
# ----------------------------------------------------------------------------------------

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline double _ld(const floating* x, intp i, bint sq) noexcept nogil:
    """x[i], or its square rounded to the dtype (the value a separate square kernel stores)."""
    return <double>(x[i] * x[i]) if sq else <double>x[i]


cdef inline double _leaf(const floating* x, intp n, bint sq) noexcept nogil:
    """Sum of x[0:n] (n <= 128) in double with 8 accumulators (inlined with a constant
    ``sq``: one specialised loop each)."""
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, s
    cdef intp i, m
    if n < 8:
        s = 0
        for i in range(n):
            s += _ld(x, i, sq)
        return s
    r0 = _ld(x, 0, sq)
    r1 = _ld(x, 1, sq)
    r2 = _ld(x, 2, sq)
    r3 = _ld(x, 3, sq)
    r4 = _ld(x, 4, sq)
    r5 = _ld(x, 5, sq)
    r6 = _ld(x, 6, sq)
    r7 = _ld(x, 7, sq)
    m = n - n % 8
    for i in range(8, m, 8):
        r0 += _ld(x, i, sq)
        r1 += _ld(x, i + 1, sq)
        r2 += _ld(x, i + 2, sq)
        r3 += _ld(x, i + 3, sq)
        r4 += _ld(x, i + 4, sq)
        r5 += _ld(x, i + 5, sq)
        r6 += _ld(x, i + 6, sq)
        r7 += _ld(x, i + 7, sq)
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        s += _ld(x, i, sq)
    return s


cdef double _pairwise(const floating* x, intp n, bint sq=False) noexcept nogil:
    """Sum of x[0:n] (of their squares when ``sq``) in double: 8 accumulators on leaves of
    <= 128, halves added pairwise."""
    cdef intp half
    if n <= 128:
        return _leaf(x, n, True) if sq else _leaf(x, n, False)
    half = n // 2
    half -= half % 8
    return _pairwise(x, half, sq) + _pairwise(x + half, n - half, sq)


cdef inline intp _cdiv(intp a, intp b) noexcept nogil:
    return (a + b - 1) // b


# ----------------------------------------------------------------------------------------
# sum / mean
# ----------------------------------------------------------------------------------------

cdef void _col_sum(const floating* x, intp b0, intp b1, intp C, intp c0, intp w,
                   double* acc) noexcept nogil:
    """acc[0:w] = sum over rows b0..b1-1 of x[b, c0:c0+w] (x is one [B, C] slab)."""
    cdef intp b = b0, c
    cdef const floating* r0
    cdef const floating* r1
    cdef const floating* r2
    cdef const floating* r3
    for c in range(w):
        acc[c] = 0
    # Four rows per sweep: one load/store of acc per four elements instead of per element
    # (the loop is bound by the acc traffic, not by reading x).
    while b + 4 <= b1:
        r0 = x + b * C + c0
        r1 = r0 + C
        r2 = r1 + C
        r3 = r2 + C
        for c in range(w):
            acc[c] += (<double>r0[c] + r1[c]) + (<double>r2[c] + r3[c])
        b += 4
    while b < b1:
        r0 = x + b * C + c0
        for c in range(w):
            acc[c] += r0[c]
        b += 1


cdef void _sum_rows_task(intp t, const floating* x, floating* out, intp B, intp nb,
                         double scale, double* part) noexcept nogil:
    """C == 1, task t: block t % nb of row t // nb (the whole row, scaled, when nb == 1)."""
    cdef intp a = t // nb, b0 = (t % nb) * RB, b1 = b0 + RB
    if nb == 1:
        out[a] = <floating>(scale * _pairwise(x + a * B, B))
        return
    if b1 > B:
        b1 = B
    part[t] = _pairwise(x + a * B + b0, b1 - b0)


cdef void _sum_rows(const floating* x, floating* out, intp A, intp B, double scale,
                    double* part) noexcept:
    """C == 1: out[a] = scale * sum(x[a, :]); rows longer than RB go through part."""
    cdef intp nb = _cdiv(B, RB) if B > 0 else 1
    cdef intp ntask = A * nb, t, a, k
    cdef double s
    if A * B >= TG_PAR_MIN and ntask > 1:
        for t in prange(ntask, nogil=True, schedule="dynamic"):
            _sum_rows_task(t, x, out, B, nb, scale, part)
    else:
        for t in range(ntask):
            _sum_rows_task(t, x, out, B, nb, scale, part)
    if nb > 1:
        for a in range(A):
            s = 0
            for k in range(nb):
                s += part[a * nb + k]
            out[a] = <floating>(scale * s)


cdef void _sum_cols_task(intp t, const floating* x, floating* out, intp B, intp C,
                         intp nct, intp nbb, double scale, double* part) noexcept nogil:
    """C > 1, task t = (a, column tile, B-block); writes out directly when nbb == 1."""
    cdef double acc[CT]
    cdef intp bb = t % nbb, ct = (t // nbb) % nct, a = t // (nbb * nct)
    cdef intp br = _cdiv(B, nbb), c0 = ct * CT, w = C - c0, b1, c
    if w > CT:
        w = CT
    b1 = (bb + 1) * br
    if b1 > B:
        b1 = B
    if nbb > 1:
        _col_sum(x + a * B * C, bb * br, b1, C, c0, w, part + t * CT)
        return
    _col_sum(x + a * B * C, bb * br, b1, C, c0, w, acc)
    for c in range(w):
        out[a * C + c0 + c] = <floating>(scale * acc[c])


cdef void _sum_cols(const floating* x, floating* out, intp A, intp B, intp C, double scale,
                    intp nbb, double* part) noexcept:
    """C > 1: out[a, c] = scale * sum_b x[a, b, c], by column tiles and nbb blocks of B."""
    cdef intp nct = _cdiv(C, CT), ntask = A * nct * nbb, t, a, ct, c0, w, c, k
    cdef double s
    if A * B * C >= TG_PAR_MIN and ntask > 1:
        for t in prange(ntask, nogil=True, schedule="dynamic"):
            _sum_cols_task(t, x, out, B, C, nct, nbb, scale, part)
    else:
        for t in range(ntask):
            _sum_cols_task(t, x, out, B, C, nct, nbb, scale, part)
    if nbb > 1:
        for a in range(A):
            for ct in range(nct):
                c0 = ct * CT
                w = C - c0
                if w > CT:
                    w = CT
                for c in range(w):
                    s = 0
                    for k in range(nbb):
                        s += part[((a * nct + ct) * nbb + k) * CT + c]
                    out[a * C + c0 + c] = <floating>(scale * s)


cdef int _sum_mid_c(int t, char* x, char* out, intp A, intp B, intp C,
                   double scale) noexcept:
    """out[a, c] = scale * sum_b x[a, b, c]; 0, or -1 when the workspace cannot be had."""
    cdef intp nb = 1, nct, nbb = 1, nbuf = 0
    if A * C == 0:
        return 0
    if C == 1:
        nb = _cdiv(B, RB) if B > 0 else 1
        if nb > 1:
            nbuf = A * nb
    else:
        nct = _cdiv(C, CT)
        if A * nct < FEW_TASKS and A * B * C >= TG_PAR_MIN:
            # few (a, tile) tasks: split B too, with a cap so the buffer stays small
            nbb = _cdiv(B * (C if C < CT else CT), RB)
            if nbb > MAX_SPLIT:
                nbb = MAX_SPLIT
            if nbb > B:
                nbb = B
            if nbb < 1:
                nbb = 1
        if nbb > 1:
            nbuf = A * nct * nbb * CT
    cdef double* part = NULL
    if nbuf:
        part = <double*>malloc(nbuf * sizeof(double))
        if part == NULL:
            return -1
    if t == cnp.NPY_FLOAT32:
        if C == 1:
            _sum_rows(<float*>x, <float*>out, A, B, scale, part)
        else:
            _sum_cols(<float*>x, <float*>out, A, B, C, scale, nbb, part)
    else:
        if C == 1:
            _sum_rows(<double*>x, <double*>out, A, B, scale, part)
        else:
            _sum_cols(<double*>x, <double*>out, A, B, C, scale, nbb, part)
    free(part)
    return 0


def sum_mid(cnp.ndarray a3, cnp.ndarray out2, double scale=1.0):
    """out2[a, c] = scale * sum_b a3[a, b, c]   (a3 [A, B, C], out2 [A, C]; mean: 1/B)."""
    cdef intp A, B, C
    cdef int t = _check3(a3, "sum_mid", &A, &B, &C)
    _check_out(out2, t, A, 1, C, False, "sum_mid")
    if _sum_mid_c(t, <char*>cnp.PyArray_DATA(a3), <char*>cnp.PyArray_DATA(out2), A, B, C,
                  scale) < 0:
        raise MemoryError()
    if _tape is not None:
        _tape_sum(t, a3, out2, A, B, C, scale, False)


cdef double _sum_all(const floating* x, intp n, double* part, bint sq) noexcept:
    cdef intp nb = _cdiv(n, RB), k, b1
    cdef double s = 0
    if nb <= 1:
        return _pairwise(x, n, sq)
    if n >= TG_PAR_MIN:
        for k in prange(nb, nogil=True, schedule="dynamic"):
            b1 = (k + 1) * RB
            if b1 > n:
                b1 = n
            part[k] = _pairwise(x + k * RB, b1 - k * RB, sq)
    else:
        for k in range(nb):
            b1 = n if k == nb - 1 else (k + 1) * RB
            part[k] = _pairwise(x + k * RB, b1 - k * RB, sq)
    for k in range(nb):
        s += part[k]
    return s


cdef int _sum_all_c(int t, char* x, intp n, double* s, bint sq=False) noexcept:
    """s[0] = the sum of n elements at x (of their squares when ``sq``), in double; 0, or
    -1 without workspace."""
    cdef intp nb = _cdiv(n, RB)
    cdef double* part = NULL
    if nb > 1:
        part = <double*>malloc(nb * sizeof(double))
        if part == NULL:
            return -1
    if t == cnp.NPY_FLOAT32:
        s[0] = _sum_all(<float*>x, n, part, sq)
    else:
        s[0] = _sum_all(<double*>x, n, part, sq)
    free(part)
    return 0


def sum_all(cnp.ndarray a):
    """Sum of every element of a C-contiguous float array, accumulated in double."""
    cdef int t = _float_type(a, "sum_all")
    cdef double s
    if _sum_all_c(t, <char*>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a), &s) < 0:
        raise MemoryError()
    return s


def sum_all_into(cnp.ndarray a, cnp.ndarray out, double scale=1.0, bint squares=False):
    """out[()] = sum_all(a) * scale, rounded once to out's dtype (out: one element of a's
    float dtype). With ``squares``, the sum of a's squares each rounded to the dtype: the
    value of a square kernel's output summed, without writing it (planned replay fuses the
    two, see tensorgrad/_fuse.py)."""
    cdef int t = _float_type(a, "sum_all_into")
    if cnp.PyArray_TYPE(out) != t or cnp.PyArray_SIZE(out) != 1 \
            or not cnp.PyArray_ISWRITEABLE(out):
        raise TypeError(f"sum_all_into: out must be one writeable element of {a.dtype}")
    cdef intp n = cnp.PyArray_SIZE(a)
    if _sum_all_into_c(t, <char*>cnp.PyArray_DATA(a), n, <char*>cnp.PyArray_DATA(out),
                       scale, squares) < 0:
        raise MemoryError()
    if _tape is not None:
        _tape_sum(t, a, out, 1, n, 1, scale, True, squares)


cdef int _sum_all_into_c(int t, char* x, intp n, char* out, double scale, bint sq) noexcept:
    cdef double s
    if _sum_all_c(t, x, n, &s, sq) < 0:
        return -1
    if t == cnp.NPY_FLOAT32:
        (<float*>out)[0] = <float>(s * scale)
    else:
        (<double*>out)[0] = s * scale
    return 0


# --- taping, for planned Graph replay (see _driver.pxi for the protocol) ---------------------
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uintptr_t

cdef struct _SumRecord:
    int t
    bint all
    bint sq
    char* x
    char* out
    intp A
    intp B
    intp C
    double scale

cdef object _tape = None


def set_tape(tape):
    """Start (a list) or stop (None) taping sum_mid / sum_all_into calls."""
    global _tape
    _tape = tape


cdef void _run_sum(const char* rec) noexcept:
    cdef const _SumRecord* r = <const _SumRecord*>rec
    if r.all:
        _sum_all_into_c(r.t, r.x, r.B, r.out, r.scale, r.sq)
    else:
        _sum_mid_c(r.t, r.x, r.out, r.A, r.B, r.C, r.scale)


cdef int _tape_sum(int t, cnp.ndarray x, cnp.ndarray out, intp A, intp B, intp C,
                   double scale, bint all, bint sq=False) except -1:
    cdef _SumRecord r
    r.t = t
    r.all = all
    r.sq = sq
    r.x = <char*>cnp.PyArray_DATA(x)
    r.out = <char*>cnp.PyArray_DATA(out)
    r.A = A
    r.B = B
    r.C = C
    r.scale = scale
    _tape.append((<uintptr_t>&_run_sum, PyBytes_FromStringAndSize(<char*>&r, sizeof(r)),
                  (out, x)))
    return 0


def sum_record_info(bytes rec):
    """What a taped sum record does, for the plan's fusion pass: ``(all, squares, scale)``
    (``all``: the sum of every element of its input, ``sum_all_into``)."""
    cdef const _SumRecord* r = <const _SumRecord*><const char*>rec
    return bool(r.all), bool(r.sq), r.scale


RUN_SUM = <uintptr_t>&_run_sum      # the address sum records run with


# ----------------------------------------------------------------------------------------
# max / min with indices
# ----------------------------------------------------------------------------------------

cdef inline bint _better(bint is_max, floating v, floating cur) noexcept nogil:
    """Does v replace cur? Strictly better (so ties keep the first), or the first NaN."""
    if cur != cur:
        return False
    if v != v:
        return True
    return v > cur if is_max else v < cur


cdef void _argext_row(bint is_max, const floating* x, intp B, floating* val,
                      i64* idx) noexcept nogil:
    cdef floating best = x[0], v
    cdef intp i, bi = 0
    if best == best:
        if is_max:
            for i in range(1, B):
                v = x[i]
                if v > best:
                    best = v
                    bi = i
                elif v != v:
                    best = v
                    bi = i
                    break
        else:
            for i in range(1, B):
                v = x[i]
                if v < best:
                    best = v
                    bi = i
                elif v != v:
                    best = v
                    bi = i
                    break
    val[0] = best
    idx[0] = bi


cdef void _argext_cols(bint is_max, const floating* x, intp B, intp C, intp c0, intp w,
                       floating* val, i64* idx) noexcept nogil:
    """val[c], idx[c] for c in [c0, c0 + w) of one [B, C] slab, walking rows."""
    cdef intp b, c
    cdef const floating* row
    for c in range(c0, c0 + w):
        val[c] = x[c]
        idx[c] = 0
    for b in range(1, B):
        row = x + b * C
        for c in range(c0, c0 + w):
            if _better(is_max, row[c], val[c]):
                val[c] = row[c]
                idx[c] = b


cdef void _argext_task(intp t, bint is_max, const floating* x, floating* val, i64* idx,
                       intp B, intp C, intp nct) noexcept nogil:
    """Task t: row t when C == 1, else (a, column tile) = divmod(t, nct)."""
    cdef intp a = t // nct, c0 = (t % nct) * CT, w = C - c0
    if C == 1:
        _argext_row(is_max, x + a * B, B, val + a, idx + a)
        return
    if w > CT:
        w = CT
    _argext_cols(is_max, x + a * B * C, B, C, c0, w, val + a * C, idx + a * C)


cdef void _argext(bint is_max, const floating* x, floating* val, i64* idx, intp A, intp B,
                  intp C) noexcept:
    cdef intp nct = _cdiv(C, CT), t
    if A * B * C >= TG_PAR_MIN and A * nct > 1:
        for t in prange(A * nct, nogil=True, schedule="dynamic"):
            _argext_task(t, is_max, x, val, idx, B, C, nct)
    else:
        for t in range(A * nct):
            _argext_task(t, is_max, x, val, idx, B, C, nct)


cdef int _argext_entry(bint is_max, cnp.ndarray a3, cnp.ndarray out2, cnp.ndarray idx2,
                       str name) except -1:
    cdef intp A, B, C
    cdef int t = _check3(a3, name, &A, &B, &C)
    _check_out(out2, t, A, 1, C, False, name)
    if cnp.PyArray_TYPE(idx2) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(idx2) \
            or cnp.PyArray_SIZE(idx2) != A * C or not cnp.PyArray_ISWRITEABLE(idx2):
        raise TypeError(f"{name}: idx2 must be a writeable C-contiguous int64 array of "
                        f"shape {(A, C)}")
    if A * C == 0:
        return 0
    if B == 0:
        raise ValueError(f"{name}: cannot reduce over an empty axis (shape {(<object>a3).shape})")
    if t == cnp.NPY_FLOAT32:
        _argext(is_max, <float*>cnp.PyArray_DATA(a3), <float*>cnp.PyArray_DATA(out2),
                <i64*>cnp.PyArray_DATA(idx2), A, B, C)
    else:
        _argext(is_max, <double*>cnp.PyArray_DATA(a3), <double*>cnp.PyArray_DATA(out2),
                <i64*>cnp.PyArray_DATA(idx2), A, B, C)
    return 0


def max_mid(cnp.ndarray a3, cnp.ndarray out2, cnp.ndarray idx2):
    """out2[a, c] = max_b a3[a, b, c], idx2[a, c] = its b (first on ties; NaN wins)."""
    _argext_entry(True, a3, out2, idx2, "max_mid")


def min_mid(cnp.ndarray a3, cnp.ndarray out2, cnp.ndarray idx2):
    """out2[a, c] = min_b a3[a, b, c], idx2[a, c] = its b (first on ties; NaN wins)."""
    _argext_entry(False, a3, out2, idx2, "min_mid")


# ----------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax (forward) — shared two-pass "max, then sum of exp"
# ----------------------------------------------------------------------------------------

cdef enum:
    F_LOGSUMEXP = 0
    F_SOFTMAX = 1
    F_LOG_SOFTMAX = 2


cdef inline double _row_max(const floating* x, intp n, intp stride) noexcept nogil:
    """Max of n elements (NaN if any is NaN; -inf if n == 0)."""
    cdef double m = -INFINITY
    cdef floating v
    cdef intp i
    for i in range(n):
        v = x[i * stride]
        if v > m:
            m = v
        elif v != v:
            return v
    return m


cdef void _lse_row(int kind, const floating* x, floating* y, intp B) noexcept nogil:
    """One contiguous slice: logsumexp into y[0], or softmax / log_softmax into y[0:B]."""
    cdef double m = _row_max(x, B, 1), s = 0, lse
    cdef floating mf, e
    cdef intp i
    if kind == F_LOGSUMEXP and (m == INFINITY or m == -INFINITY or m != m):
        y[0] = <floating>m          # +inf, NaN, or -inf for an all -inf (or empty) slice
        return
    mf = <floating>m
    if kind == F_SOFTMAX:
        for i in range(B):
            e = _exp(x[i] - mf)
            y[i] = e
            s += e
        s = 1 / s
        for i in range(B):
            y[i] = <floating>(y[i] * s)
        return
    for i in range(B):
        s += _exp(x[i] - mf)
    lse = m + log(s)
    if kind == F_LOGSUMEXP:
        y[0] = <floating>lse
    else:
        for i in range(B):
            y[i] = <floating>(x[i] - lse)


cdef void _lse_cols(int kind, const floating* x, floating* y, intp B, intp C, intp c0,
                    intp w) noexcept nogil:
    """Column tile [c0, c0 + w) of one [B, C] slab; logsumexp writes y[c0:c0+w]."""
    cdef double m[CT]
    cdef double s[CT]
    cdef intp b, c
    cdef const floating* row
    cdef floating* yrow
    cdef floating v, e
    for c in range(w):
        m[c] = -INFINITY
        s[c] = 0
    for b in range(B):                      # column maxima (NaN sticks)
        row = x + b * C + c0
        for c in range(w):
            v = row[c]
            if v > m[c] or v != v:
                m[c] = v
    for b in range(B):
        row = x + b * C + c0
        yrow = y + b * C + c0
        for c in range(w):
            e = _exp(row[c] - <floating>m[c])
            s[c] += e
            if kind == F_SOFTMAX:
                yrow[c] = e
    if kind == F_LOGSUMEXP:
        for c in range(w):
            if m[c] == INFINITY or m[c] == -INFINITY or m[c] != m[c]:
                y[c0 + c] = <floating>m[c]
            else:
                y[c0 + c] = <floating>(m[c] + log(s[c]))
        return
    for c in range(w):
        s[c] = 1 / s[c] if kind == F_SOFTMAX else m[c] + log(s[c])
    for b in range(B):
        row = x + b * C + c0
        yrow = y + b * C + c0
        if kind == F_SOFTMAX:
            for c in range(w):
                yrow[c] = <floating>(yrow[c] * s[c])
        else:
            for c in range(w):
                yrow[c] = <floating>(row[c] - s[c])


cdef void _lse_task(intp t, int kind, const floating* x, floating* y, intp B, intp C,
                    intp nct) noexcept nogil:
    """Task t: row t when C == 1, else (a, column tile) = divmod(t, nct)."""
    cdef intp a = t // nct, c0 = (t % nct) * CT, w = C - c0
    cdef intp ystride = C if kind == F_LOGSUMEXP else B * C
    if C == 1:
        _lse_row(kind, x + a * B, y + a * ystride, B)
        return
    if w > CT:
        w = CT
    _lse_cols(kind, x + a * B * C, y + a * ystride, B, C, c0, w)


cdef void _lse(int kind, const floating* x, floating* y, intp A, intp B,
               intp C) noexcept:
    cdef intp nct = _cdiv(C, CT), t
    if A * B * C >= TG_PAR_MIN and A * nct > 1:
        for t in prange(A * nct, nogil=True, schedule="dynamic"):
            _lse_task(t, kind, x, y, B, C, nct)
    else:
        for t in range(A * nct):
            _lse_task(t, kind, x, y, B, C, nct)


cdef int _lse_entry(int kind, cnp.ndarray a3, cnp.ndarray out, str name) except -1:
    cdef intp A, B, C
    cdef int t = _check3(a3, name, &A, &B, &C)
    _check_out(out, t, A, B, C, kind != F_LOGSUMEXP, name)
    if A * C == 0 or (B == 0 and kind != F_LOGSUMEXP):
        return 0
    if t == cnp.NPY_FLOAT32:
        _lse(kind, <float*>cnp.PyArray_DATA(a3), <float*>cnp.PyArray_DATA(out), A, B, C)
    else:
        _lse(kind, <double*>cnp.PyArray_DATA(a3), <double*>cnp.PyArray_DATA(out), A, B, C)
    return 0


def logsumexp_mid(cnp.ndarray a3, cnp.ndarray out2):
    """out2[a, c] = m + log(sum_b exp(a3[a, b, c] - m)), m the slice max (-inf stays -inf)."""
    _lse_entry(F_LOGSUMEXP, a3, out2, "logsumexp_mid")


def softmax_mid(cnp.ndarray a3, cnp.ndarray out3):
    """out3 = exp(a3 - m) / sum_b exp(a3 - m) along B."""
    _lse_entry(F_SOFTMAX, a3, out3, "softmax_mid")


def log_softmax_mid(cnp.ndarray a3, cnp.ndarray out3):
    """out3 = a3 - logsumexp_b(a3) along B."""
    _lse_entry(F_LOG_SOFTMAX, a3, out3, "log_softmax_mid")


# ----------------------------------------------------------------------------------------
# softmax / log_softmax backward
#   softmax:      gx = y * (g - sum_b(g * y))
#   log_softmax:  gx = g - exp(y) * sum_b(g)
# ----------------------------------------------------------------------------------------

cdef void _smb_row(bint log_sm, const floating* g, const floating* y, floating* out,
                   intp B) noexcept nogil:
    cdef double s = 0
    cdef floating sf
    cdef intp i
    if log_sm:
        for i in range(B):
            s += g[i]
        sf = <floating>s
        for i in range(B):
            out[i] = g[i] - _exp(y[i]) * sf
    else:
        for i in range(B):
            s += <double>g[i] * y[i]
        sf = <floating>s
        for i in range(B):
            out[i] = y[i] * (g[i] - sf)


cdef void _smb_cols(bint log_sm, const floating* g, const floating* y, floating* out,
                    intp B, intp C, intp c0, intp w) noexcept nogil:
    cdef double s[CT]
    cdef intp b, c, off
    for c in range(w):
        s[c] = 0
    for b in range(B):
        off = b * C + c0
        if log_sm:
            for c in range(w):
                s[c] += g[off + c]
        else:
            for c in range(w):
                s[c] += <double>g[off + c] * y[off + c]
    for b in range(B):
        off = b * C + c0
        if log_sm:
            for c in range(w):
                out[off + c] = <floating>(g[off + c] - _exp(y[off + c]) * s[c])
        else:
            for c in range(w):
                out[off + c] = <floating>(y[off + c] * (g[off + c] - s[c]))


cdef void _smb_task(intp t, bint log_sm, const floating* g, const floating* y,
                    floating* out, intp B, intp C, intp nct) noexcept nogil:
    """Task t: row t when C == 1, else (a, column tile) = divmod(t, nct)."""
    cdef intp a = t // nct, c0 = (t % nct) * CT, w = C - c0, off = a * B * C
    if C == 1:
        _smb_row(log_sm, g + off, y + off, out + off, B)
        return
    if w > CT:
        w = CT
    _smb_cols(log_sm, g + off, y + off, out + off, B, C, c0, w)


cdef void _smb(bint log_sm, const floating* g, const floating* y, floating* out, intp A,
               intp B, intp C) noexcept:
    cdef intp nct = _cdiv(C, CT), t
    if A * B * C >= TG_PAR_MIN and A * nct > 1:
        for t in prange(A * nct, nogil=True, schedule="dynamic"):
            _smb_task(t, log_sm, g, y, out, B, C, nct)
    else:
        for t in range(A * nct):
            _smb_task(t, log_sm, g, y, out, B, C, nct)


cdef int _smb_entry(bint log_sm, cnp.ndarray g3, cnp.ndarray y3, cnp.ndarray out3,
                    str name) except -1:
    cdef intp A, B, C
    cdef int t = _check3(g3, name, &A, &B, &C)
    _check_like(y3, t, A, B, C, True, name)
    _check_out(out3, t, A, B, C, True, name)
    if A * B * C == 0:
        return 0
    if t == cnp.NPY_FLOAT32:
        _smb(log_sm, <float*>cnp.PyArray_DATA(g3), <float*>cnp.PyArray_DATA(y3),
             <float*>cnp.PyArray_DATA(out3), A, B, C)
    else:
        _smb(log_sm, <double*>cnp.PyArray_DATA(g3), <double*>cnp.PyArray_DATA(y3),
             <double*>cnp.PyArray_DATA(out3), A, B, C)
    return 0


def softmax_backward_mid(cnp.ndarray g3, cnp.ndarray y3, cnp.ndarray out3):
    """out3 = y3 * (g3 - sum_b(g3 * y3)), y3 the softmax output (all [A, B, C])."""
    _smb_entry(False, g3, y3, out3, "softmax_backward_mid")


def log_softmax_backward_mid(cnp.ndarray g3, cnp.ndarray y3, cnp.ndarray out3):
    """out3 = g3 - exp(y3) * sum_b(g3), y3 the log_softmax output (all [A, B, C])."""
    _smb_entry(True, g3, y3, out3, "log_softmax_backward_mid")
