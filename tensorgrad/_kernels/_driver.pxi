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
