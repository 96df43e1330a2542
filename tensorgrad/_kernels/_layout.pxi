# Shared by elementwise.pyx and activation.pyx (textually included: kernel modules do not
# cimport each other). Operands are described by a _Layout whose dims are broadcast to
# `out`, with size-1 dims dropped and contiguous runs merged, so contiguous arrays become
# one flat loop and row/column broadcasts become unit-stride runs.
# Needs: cimport numpy as cnp. Defines the sizes both modules (and _driver.pxi) use.

ctypedef cnp.npy_intp intp

cdef enum:
    MAXD = 64       # NPY_MAXDIMS on numpy 2
    NOPS = 4        # out + up to three inputs
    BLOCK = 8192    # elements per parallel task

cdef struct _Layout:
    int nd                      # dims after collapsing (>= 1)
    int nops                    # operands, out first
    intp n                      # total elements
    intp shape[MAXD]
    intp strides[NOPS][MAXD]    # byte strides, 0 on broadcast dims
    char* data[NOPS]



cdef int _add_operand(_Layout* L, int j, cnp.ndarray x, int* xnd, intp** xshape,
                      intp** xstrides) except -1:
    xnd[j] = cnp.PyArray_NDIM(x)
    xshape[j] = cnp.PyArray_DIMS(x)
    xstrides[j] = cnp.PyArray_STRIDES(x)
    L.data[j] = cnp.PyArray_BYTES(x)
    return 0


cdef int _layout(_Layout* L, cnp.ndarray out, cnp.ndarray x1, cnp.ndarray x2,
                 cnp.ndarray x3, str name) except -1:
    """Fill L for out and its inputs x1..x3 (None when unused), broadcasting to out.shape."""
    cdef int xnd[NOPS]
    cdef intp* xshape[NOPS]
    cdef intp* xstrides[NOPS]
    cdef intp st[NOPS]
    cdef int nops = 1, ond, d, j, xd, k = 0
    cdef intp size, xs
    cdef bint merge
    _add_operand(L, 0, out, xnd, xshape, xstrides)
    if x1 is not None:
        _add_operand(L, nops, x1, xnd, xshape, xstrides)
        nops += 1
    if x2 is not None:
        _add_operand(L, nops, x2, xnd, xshape, xstrides)
        nops += 1
    if x3 is not None:
        _add_operand(L, nops, x3, xnd, xshape, xstrides)
        nops += 1
    L.nops = nops
    ond = xnd[0]
    for j in range(1, nops):
        if xnd[j] > ond:
            _raise_shape(name, out, x1, x2, x3)
    L.n = 1
    for d in range(ond):
        size = xshape[0][d]
        L.n *= size
        for j in range(nops):
            st[j] = 0                           # missing or size-1 dim: broadcast
            xd = d - (ond - xnd[j])
            if xd >= 0:
                xs = xshape[j][xd]
                if xs == size and size != 1:
                    st[j] = xstrides[j][xd]
                elif xs != 1:
                    _raise_shape(name, out, x1, x2, x3)
        if size == 1:
            continue
        # Merge with the previous kept dim when every operand steps through both as one run.
        merge = k > 0
        j = 0
        while merge and j < nops:
            merge = L.strides[j][k - 1] == st[j] * size
            j += 1
        if merge:
            L.shape[k - 1] *= size
            for j in range(nops):
                L.strides[j][k - 1] = st[j]
        else:
            L.shape[k] = size
            for j in range(nops):
                L.strides[j][k] = st[j]
            k += 1
    if k == 0:                                  # a single element (or none)
        L.shape[0] = 1 if L.n else 0
        for j in range(nops):
            L.strides[j][0] = 0
        k = 1
    L.nd = k
    return 0


cdef int _raise_shape(str name, object out, object x1, object x2, object x3) except -1:
    shapes = [x.shape for x in (x1, x2, x3) if x is not None]
    raise ValueError(f"{name}: input shapes {shapes} do not broadcast to the "
                     f"output shape {out.shape}")


cdef int _check_float(cnp.ndarray out, cnp.ndarray x1, cnp.ndarray x2, cnp.ndarray x3,
                      str name) except -1:
    """Return the type number of out after checking that every input has the same dtype."""
    cdef int t = cnp.PyArray_TYPE(out)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64 or not cnp.PyArray_ISNOTSWAPPED(out):
        raise TypeError(f"{name}: out must be a native float32 or float64 array, "
                        f"got {out.dtype}")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError(f"{name}: out is read-only")
    _check_same(t, out, x1, name)
    _check_same(t, out, x2, name)
    _check_same(t, out, x3, name)
    return t


cdef inline int _check_same(int t, cnp.ndarray out, cnp.ndarray x, str name) except -1:
    if x is not None and (cnp.PyArray_TYPE(x) != t or not cnp.PyArray_ISNOTSWAPPED(x)):
        raise TypeError(f"{name}: dtype mismatch, out is {out.dtype} and an input is "
                        f"{x.dtype}")
    return 0
