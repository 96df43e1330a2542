"""GEMM kernels: row-major matrix products through BLAS sgemm/dgemm, with transpose flags.

Strategy
--------
BLAS is column-major. A row-major matrix X[r, c] with row stride ``ld`` (unit stride on the
last axis) *is*, read column-major, the matrix Xᵀ[c, r] with leading dimension ``ld``. So
the row-major product C = A·B is computed as the column-major product Cᵀ = Bᵀ·Aᵀ: BLAS is
called with the operands swapped (B first, A second) and m = N, n = M.

Each operand is classified once from its strides, never transposed by copying:

* "C-like": unit stride on the last axis, row stride >= ncols (a C-contiguous array or a
  column slice of one). Used with flag 'N' and ld = row stride.
* "F-like": unit stride on the first axis, column stride >= nrows (e.g. ``W.T`` of a
  C-contiguous ``W``). Used with flag 'T' and ld = column stride.
* anything else (negative or non-unit strides on both axes, overlapping rows): copied to a
  C-contiguous buffer first. This is the only copy these kernels ever make.

A stride along an axis of length 1 is meaningless (numpy may report anything), so it is
ignored when classifying.

``out`` must have unit stride on its last axis (normally it is C-contiguous and allocated
by the caller); its row stride is used as ldc. With beta == 0 the old contents of ``out``
are never read (they may be NaN). ``out`` must not overlap ``a`` or ``b``.

Which BLAS: the library is chosen once, at import, by ``tensorgrad/_blas.py``, and reached
through two function pointers with the Fortran ``?gemm`` signature: numpy's own OpenBLAS
when it can be found and verified (the same library and thread pool as ``numpy.matmul``),
otherwise scipy's, through the capsules of ``scipy.linalg.cython_blas``. Either may use
64-bit integers (ILP64, as numpy's wheels do); ``sgemm``/``dgemm`` below take ``int`` like
cython_blas and widen them when needed. Every other kernel module cimports them from here.

Threads: BLAS is called with the GIL released and uses its own thread pool, which the
Python side sizes with threadpoolctl. These kernels never call BLAS from inside an OpenMP
parallel region (the two pools would oversubscribe the cores).
"""
import numpy as np

cimport numpy as cnp
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdint cimport int64_t, uintptr_t

cnp.import_array()

cdef Py_ssize_t INT_MAX = 2147483647


# --- the BLAS library in use -----------------------------------------------------------------
ctypedef void (*sgemm32_t)(char*, char*, int*, int*, int*, float*, float*, int*, float*,
                           int*, float*, float*, int*) noexcept nogil
ctypedef void (*dgemm32_t)(char*, char*, int*, int*, int*, double*, double*, int*, double*,
                           int*, double*, double*, int*) noexcept nogil
ctypedef void (*sgemm64_t)(char*, char*, int64_t*, int64_t*, int64_t*, float*, float*,
                           int64_t*, float*, int64_t*, float*, float*, int64_t*) noexcept nogil
ctypedef void (*dgemm64_t)(char*, char*, int64_t*, int64_t*, int64_t*, double*, double*,
                           int64_t*, double*, int64_t*, double*, double*,
                           int64_t*) noexcept nogil

cdef void* _sgemm_ptr = NULL
cdef void* _dgemm_ptr = NULL
cdef bint _ilp64 = False
_provider = {"name": None}


cdef void sgemm(char* ta, char* tb, int* m, int* n, int* k, float* alpha, float* a, int* lda,
                float* b, int* ldb, float* beta, float* c, int* ldc) noexcept nogil:
    """Fortran sgemm of the selected library (``require_blas()`` must have succeeded)."""
    cdef int64_t m8, n8, k8, lda8, ldb8, ldc8
    if _ilp64:
        m8 = m[0]; n8 = n[0]; k8 = k[0]; lda8 = lda[0]; ldb8 = ldb[0]; ldc8 = ldc[0]
        (<sgemm64_t>_sgemm_ptr)(ta, tb, &m8, &n8, &k8, alpha, a, &lda8, b, &ldb8, beta, c,
                                &ldc8)
    else:
        (<sgemm32_t>_sgemm_ptr)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef void dgemm(char* ta, char* tb, int* m, int* n, int* k, double* alpha, double* a,
                int* lda, double* b, int* ldb, double* beta, double* c,
                int* ldc) noexcept nogil:
    """Fortran dgemm of the selected library (``require_blas()`` must have succeeded)."""
    cdef int64_t m8, n8, k8, lda8, ldb8, ldc8
    if _ilp64:
        m8 = m[0]; n8 = n[0]; k8 = k[0]; lda8 = lda[0]; ldb8 = ldb[0]; ldc8 = ldc[0]
        (<dgemm64_t>_dgemm_ptr)(ta, tb, &m8, &n8, &k8, alpha, a, &lda8, b, &ldb8, beta, c,
                                &ldc8)
    else:
        (<dgemm32_t>_dgemm_ptr)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef int require_blas() except -1:
    """Make sure a library is selected (tensorgrad's import normally did it already)."""
    if _sgemm_ptr == NULL or _dgemm_ptr == NULL:
        from tensorgrad import _blas
        _blas.select()
    return 0


def set_gemm(str name, uintptr_t sgemm_address, uintptr_t dgemm_address, bint ilp64):
    """Call GEMM through these addresses of Fortran-ABI ``sgemm``/``dgemm`` from now on.

    Internal (``tensorgrad/_blas.py`` checks a library right after installing it and
    puts the previous one back if the check fails). ``ilp64`` says whether the integer
    arguments are 64-bit. Not thread-safe: no GEMM may run while the library changes.
    """
    global _sgemm_ptr, _dgemm_ptr, _ilp64
    if sgemm_address == 0 or dgemm_address == 0:
        raise ValueError("set_gemm: null function address")
    _sgemm_ptr = <void*>sgemm_address
    _dgemm_ptr = <void*>dgemm_address
    _ilp64 = ilp64
    _provider["name"] = name


def get_gemm():
    """(name, sgemm address, dgemm address, ilp64) of the installed library, or None."""
    if _sgemm_ptr == NULL or _dgemm_ptr == NULL:
        return None
    return (_provider["name"], <uintptr_t>_sgemm_ptr, <uintptr_t>_dgemm_ptr, bool(_ilp64))


def clear_gemm():
    """Uninstall the library (the next GEMM call selects one again)."""
    global _sgemm_ptr, _dgemm_ptr, _ilp64
    _sgemm_ptr = NULL
    _dgemm_ptr = NULL
    _ilp64 = False
    _provider["name"] = None


def capsule_address(object capsule):
    """The C pointer inside a Cython ``__pyx_capi__`` capsule, as an integer."""
    return <uintptr_t>PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


def gemm_provider():
    """Name of the BLAS library the GEMM kernels call (None before the first selection)."""
    return _provider["name"]


cdef struct Operand:
    char* ptr      # address of element [0, 0]
    char trans     # b'N' (C-like) or b'T' (F-like)
    int ld         # leading dimension for BLAS


cdef inline bint _classify(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t itemsize, Operand* op) noexcept:
    """Fill ``op`` for a [rows, cols] operand with byte strides (s0, s1); False -> copy.

    Both dimensions are >= 1 here.
    """
    if s0 % itemsize or s1 % itemsize:
        return False
    s0 //= itemsize
    s1 //= itemsize
    # A stride along a length-1 axis carries no information, so it is not tested.
    if (cols == 1 or s1 == 1) and (rows == 1 or cols <= s0 <= INT_MAX):
        op.trans = b'N'
        op.ld = <int>(cols if rows == 1 else s0)
        return True
    if (rows == 1 or s0 == 1) and (cols == 1 or rows <= s1 <= INT_MAX):
        op.trans = b'T'
        op.ld = <int>(rows if cols == 1 else s1)
        return True
    return False


cdef inline void _blas_call(int typenum, Operand* a, Operand* b, int m_rows, int n_cols,
                            int k, double alpha, double beta, char* c, int ldc) noexcept nogil:
    """Row-major c[M, N] = alpha * a[M, K] @ b[K, N] + beta * c,
    computed as the column-major product cᵀ = bᵀ·aᵀ (operands swapped)."""
    cdef float falpha = <float>alpha
    cdef float fbeta = <float>beta
    if typenum == cnp.NPY_FLOAT32:
        sgemm(&b.trans, &a.trans, &n_cols, &m_rows, &k, &falpha, <float*>b.ptr, &b.ld,
              <float*>a.ptr, &a.ld, &fbeta, <float*>c, &ldc)
    else:
        dgemm(&b.trans, &a.trans, &n_cols, &m_rows, &k, &alpha, <double*>b.ptr, &b.ld,
              <double*>a.ptr, &a.ld, &beta, <double*>c, &ldc)


cdef void _scale_rows(int typenum, char* c, Py_ssize_t rows, Py_ssize_t cols,
                      Py_ssize_t row_stride, double beta) noexcept nogil:
    """c = beta * c (c = 0 when beta == 0, so old NaNs do not survive); used when K == 0."""
    cdef Py_ssize_t i, j
    cdef float* fp
    cdef double* dp
    for i in range(rows):
        if typenum == cnp.NPY_FLOAT32:
            fp = <float*>(c + i * row_stride)
            for j in range(cols):
                fp[j] = 0.0 if beta == 0.0 else <float>(beta * fp[j])
        else:
            dp = <double*>(c + i * row_stride)
            for j in range(cols):
                dp[j] = 0.0 if beta == 0.0 else beta * dp[j]


cdef object _attr(object x, str name):
    """A Python-level attribute (tuple shape/strides) for error messages."""
    return getattr(x, name)


cdef int _check_dtypes(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, str name) except -1:
    cdef int t = cnp.PyArray_TYPE(out)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"{name}: out must be float32 or float64, got {out.dtype}")
    if cnp.PyArray_TYPE(a) != t or cnp.PyArray_TYPE(b) != t:
        raise TypeError(f"{name}: dtypes differ: a {a.dtype}, b {b.dtype}, out {out.dtype}")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError(f"{name}: out is read-only")
    return t


cdef int _check_out(cnp.ndarray out, int row_axis, str name) except -1:
    cdef Py_ssize_t ncols = out.shape[row_axis + 1]
    cdef Py_ssize_t isz = out.itemsize
    cdef Py_ssize_t rs = out.strides[row_axis]
    if ncols > 1 and out.strides[row_axis + 1] != isz:
        raise ValueError(f"{name}: out needs unit stride on its last axis, "
                         f"got strides {_attr(out, 'strides')}")
    if out.shape[row_axis] > 1 and (rs % isz or rs // isz < ncols or rs // isz > INT_MAX):
        raise ValueError(f"{name}: unsupported row stride of out: "
                         f"strides {_attr(out, 'strides')}")
    return 0


cdef inline int _ldc(cnp.ndarray out, int row_axis):
    if out.shape[row_axis] <= 1:
        return <int>max(1, out.shape[row_axis + 1])
    return <int>(out.strides[row_axis] // out.itemsize)


cdef int _check_dims(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, str name) except -1:
    if m > INT_MAX or n > INT_MAX or k > INT_MAX:
        raise ValueError(f"{name}: dimensions ({m}, {n}, {k}) exceed the 32-bit BLAS limit")
    return 0


def gemm(cnp.ndarray a not None, cnp.ndarray b not None, cnp.ndarray out not None,
         double alpha=1.0, double beta=0.0):
    """out[M, N] = alpha * a[M, K] @ b[K, N] + beta * out   (float32 or float64, one dtype).

    ``a`` and ``b`` may be C-like or F-like views (see the module docstring) and are then
    used in place; other layouts are copied once. With beta == 0 ``out`` is write-only.
    """
    cdef int t = _check_dtypes(a, b, out, "gemm")
    require_blas()
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ValueError(f"gemm: expected 2-D arrays, got a {a.ndim}-D, b {b.ndim}-D, "
                         f"out {out.ndim}-D")
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError(f"gemm: shapes do not match: a {_attr(a, 'shape')} "
                         f"@ b {_attr(b, 'shape')} -> out {_attr(out, 'shape')}")
    _check_dims(m, n, k, "gemm")
    if m == 0 or n == 0:        # nothing to write (empty arrays may carry any strides)
        return out
    _check_out(out, 0, "gemm")
    cdef char* c = out.data
    cdef Py_ssize_t crs = out.strides[0]
    if k == 0:
        with nogil:
            _scale_rows(t, c, m, n, crs, beta)
        if _tape is not None:
            _tape.append(None)          # (not tapeable; rare)
        return out
    cdef Operand opa, opb
    cdef Py_ssize_t isz = out.itemsize
    cdef bint copied = False
    if not _classify(m, k, a.strides[0], a.strides[1], isz, &opa):
        a = np.ascontiguousarray(a)
        _classify(m, k, a.strides[0], a.strides[1], isz, &opa)
        copied = True
    if not _classify(k, n, b.strides[0], b.strides[1], isz, &opb):
        b = np.ascontiguousarray(b)
        _classify(k, n, b.strides[0], b.strides[1], isz, &opb)
        copied = True
    opa.ptr = a.data
    opb.ptr = b.data
    cdef int ldc = _ldc(out, 0)
    with nogil:
        _blas_call(t, &opa, &opb, <int>m, <int>n, <int>k, alpha, beta, c, ldc)
    if _tape is not None:
        # a copied operand is a snapshot, which a replay would not refresh: not tapeable
        _tape.append(None if copied else _gemm_record(t, &opa, &opb, <int>m, <int>n, <int>k,
                                                      alpha, beta, c, ldc, (out, a, b)))
    return out


# --- taping, for planned Graph replay (see _driver.pxi for the protocol) ---------------------
cdef struct _GemmRecord:
    int t
    Operand a
    Operand b
    int m
    int n
    int k
    double alpha
    double beta
    char* c
    int ldc

cdef object _tape = None


def set_tape(tape):
    """Start (a list) or stop (None) taping gemm calls."""
    global _tape
    _tape = tape


cdef void _run_gemm(const char* rec) noexcept:
    cdef _GemmRecord r = (<const _GemmRecord*>rec)[0]
    with nogil:
        _blas_call(r.t, &r.a, &r.b, r.m, r.n, r.k, r.alpha, r.beta, r.c, r.ldc)


cdef object _gemm_record(int t, Operand* a, Operand* b, int m, int n, int k, double alpha,
                         double beta, char* c, int ldc, object keep):
    cdef _GemmRecord r
    r.t = t
    r.a = a[0]
    r.b = b[0]
    r.m = m
    r.n = n
    r.k = k
    r.alpha = alpha
    r.beta = beta
    r.c = c
    r.ldc = ldc
    return (<uintptr_t>&_run_gemm, PyBytes_FromStringAndSize(<char*>&r, sizeof(_GemmRecord)),
            keep)


cdef object _batch_operand(cnp.ndarray x, Py_ssize_t nbatch, Py_ssize_t rows,
                           Py_ssize_t cols, Py_ssize_t isz, Operand* op,
                           Py_ssize_t* bstride):
    """Classify a [B or 1, rows, cols] operand (batch stride may be 0); returns the array
    actually used (a copy when the layout is unusable)."""
    cdef bint broadcast = x.shape[0] == 1 or x.strides[0] == 0 or nbatch == 1
    if _classify(rows, cols, x.strides[1], x.strides[2], isz, op) and (
            broadcast or x.strides[0] % isz == 0):
        bstride[0] = 0 if broadcast else x.strides[0]
        return x
    # Copy only what is distinct: one matrix for a broadcast batch.
    x = np.ascontiguousarray(x[:1]) if broadcast else np.ascontiguousarray(x)
    _classify(rows, cols, x.strides[1], x.strides[2], isz, op)
    bstride[0] = 0 if broadcast else x.strides[0]
    return x


def matmul_batched(cnp.ndarray a3 not None, cnp.ndarray b3 not None,
                   cnp.ndarray out3 not None):
    """out3[i] = a3[i] @ b3[i] for i < B, with a3 [B, M, K], b3 [B, K, N], out3 [B, M, N].

    ``a3`` or ``b3`` may broadcast over the batch (batch stride 0 or batch size 1). Each
    matrix may be C-like or F-like; the batch is a serial loop of GEMM calls (BLAS threads
    inside each call), never an OpenMP region around BLAS.
    """
    cdef int t = _check_dtypes(a3, b3, out3, "matmul_batched")
    require_blas()
    if a3.ndim != 3 or b3.ndim != 3 or out3.ndim != 3:
        raise ValueError(f"matmul_batched: expected 3-D arrays, got a {a3.ndim}-D, "
                         f"b {b3.ndim}-D, out {out3.ndim}-D")
    cdef Py_ssize_t nb = out3.shape[0], m = a3.shape[1], k = a3.shape[2], n = b3.shape[2]
    if (b3.shape[1] != k or out3.shape[1] != m or out3.shape[2] != n
            or a3.shape[0] not in (1, nb) or b3.shape[0] not in (1, nb)):
        raise ValueError(f"matmul_batched: shapes do not match: a {_attr(a3, 'shape')} "
                         f"@ b {_attr(b3, 'shape')} -> out {_attr(out3, 'shape')}")
    _check_dims(m, n, k, "matmul_batched")
    if _tape is not None:
        _tape.append(None)      # batched products are replayed by their op, in Python
    if nb == 0 or m == 0 or n == 0:
        return out3
    _check_out(out3, 1, "matmul_batched")
    cdef char* c = out3.data
    cdef Py_ssize_t cbs = out3.strides[0], crs = out3.strides[1]
    cdef Py_ssize_t i
    if k == 0:
        with nogil:
            for i in range(nb):
                _scale_rows(t, c + i * cbs, m, n, crs, 0.0)
        return out3
    cdef Operand opa, opb, cur_a, cur_b
    cdef Py_ssize_t isz = out3.itemsize, abs_, bbs
    a3 = _batch_operand(a3, nb, m, k, isz, &opa, &abs_)
    b3 = _batch_operand(b3, nb, k, n, isz, &opb, &bbs)
    opa.ptr = a3.data
    opb.ptr = b3.data
    cur_a = opa
    cur_b = opb
    cdef int ldc = _ldc(out3, 1)
    with nogil:
        for i in range(nb):
            cur_a.ptr = opa.ptr + i * abs_
            cur_b.ptr = opb.ptr + i * bbs
            _blas_call(t, &cur_a, &cur_b, <int>m, <int>n, <int>k, 1.0, 0.0, c + i * cbs, ldc)
    return out3
