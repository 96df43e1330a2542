# The driver shared by elementwise.pyx and activation.pyx (textually included after each
# module's _Args and _inner): walk a _Layout in BLOCK-element tasks, an OpenMP prange
# over tasks at TG_PAR_MIN elements and above, a direct serial call below.

cdef void _run_block(const _Layout* L, const _Args* f, intp start, intp stop,
                     floating* tag) noexcept nogil:
    cdef int nd = L.nd, nops = L.nops, d, j
    cdef intp idx[MAXD]
    cdef char* p[NOPS]
    cdef intp inner_st[NOPS]
    cdef intp inner = L.shape[nd - 1]
    cdef intp rem = start, run, todo = stop - start
    for j in range(nops):
        p[j] = L.data[j]
        inner_st[j] = L.strides[j][nd - 1]
    for d in range(nd - 1, -1, -1):
        idx[d] = rem % L.shape[d]
        rem = rem // L.shape[d]
        for j in range(nops):
            p[j] += idx[d] * L.strides[j][d]
    while True:
        run = inner - idx[nd - 1]
        if run > todo:
            run = todo
        _inner(f, p, inner_st, run, tag)
        todo -= run
        if todo <= 0:
            return
        # The run reached the end of the innermost dim: rewind it and carry outward.
        for j in range(nops):
            p[j] -= idx[nd - 1] * inner_st[j]
        idx[nd - 1] = 0
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            for j in range(nops):
                p[j] += L.strides[j][d]
            if idx[d] < L.shape[d]:
                break
            for j in range(nops):
                p[j] -= L.shape[d] * L.strides[j][d]
            idx[d] = 0
            d -= 1


cdef void _execute(const _Layout* L, const _Args* f, floating* tag) noexcept:
    cdef intp n = L.n, ntask = (L.n + BLOCK - 1) // BLOCK, t, stop
    if n == 0:
        return
    if ntask > 1 and n >= TG_PAR_MIN:
        for t in prange(ntask, nogil=True, schedule="dynamic"):
            stop = (t + 1) * BLOCK
            if stop > n:
                stop = n
            _run_block(L, f, t * BLOCK, stop, tag)
    else:
        _run_block(L, f, 0, n, tag)


# ----------------------------------------------------------------------------------------
# Taping, for planned Graph replay (tensorgrad/replay.py, executed by plan.pyx). While a
# tape (a list) is set, every call also appends a record of itself: its operands' layout
# and arguments as computed for this call, the address of the C function that runs such a
# record, and the arrays whose memory the record points into (kept alive by the plan). A
# replay then runs the same inner loops with the same blocking on the same memory, with no
# Python in between, so its results are bitwise those of the taped call.
# ----------------------------------------------------------------------------------------
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uintptr_t

cdef struct _Prepared:
    int t                       # NPY_FLOAT32 or NPY_FLOAT64
    _Args f
    _Layout L

cdef object _tape = None


def set_tape(tape):
    """Start (a list) or stop (None) taping this module's kernel calls."""
    global _tape
    _tape = tape


cdef void _run_prepared(const char* rec) noexcept:
    cdef const _Prepared* r = <const _Prepared*>rec
    if r.t == cnp.NPY_FLOAT32:
        _execute(&r.L, &r.f, <float*>NULL)
    else:
        _execute(&r.L, &r.f, <double*>NULL)


cdef int _tape_call(int t, const _Layout* L, const _Args* f, object keep) except -1:
    """Append the record of a call that just ran (the caller checks ``_tape is not None``)."""
    cdef _Prepared r
    r.t = t
    r.f = f[0]
    r.L = L[0]
    _tape.append((<uintptr_t>&_run_prepared,
                  PyBytes_FromStringAndSize(<char*>&r, sizeof(_Prepared)), keep))
    return 0


RUN_PREPARED = <uintptr_t>&_run_prepared     # the address this module's records run with

