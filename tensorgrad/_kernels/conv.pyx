"""Convolution and pooling kernels (NCHW): im2col/col2im + BLAS GEMM, and single-pass pooling.

Strategy
--------
A 2-D convolution of x [N, C, H, W] with weight [O, C/G, kh, kw] (G groups, stride s,
padding p, dilation d) is, for each group g, one GEMM

    Y_g [O/G, n·L] = W_g [O/G, K] · col_g [K, n·L],      K = (C/G)·kh·kw,  L = OH·OW

where ``col`` (im2col) holds, in row (c, ki, kj) and column (image i, oh, ow), the input
pixel x[i, c, oh·s − p + ki·d, ow·s − p + kj·d] (0 outside the image). Three kernels share
that layout, with the same geometry (the ``x`` side has C channels, the ``y`` side O):

  conv_forward   y  = W · im2col(x)   (+ bias, added in the epilogue that copies Y into y)
  conv_input     x  = col2im(Wᵀ · y)  (+ bias on x's channels, the planes' initial value):
                 conv2d's input gradient and conv_transpose2d's forward
  conv_weight    gW = Σ_tiles y_tile · im2col(x_tile)ᵀ:   conv2d's weight gradient

Memory is bounded: the batch is processed in tiles of ``n`` images such that the ``col``
workspace holds at most ``ws_elems`` elements (one image at least), and the ``Y`` workspace
n·O·L; nothing of size N·C·kh·kw·H·W is ever allocated.

Threads: with T > 1 threads and at least T batch tiles (conv_weight: chunks of tiles) the
tiles run in an OpenMP ``prange``, each thread with its own workspace and single-threaded
GEMMs (the caller holds BLAS at one thread meanwhile: ``_runtime.blas_single_thread``, as the
distance kernels do). A call then wakes the threads once instead of once per GEMM, which on a
busy 2-core machine was the difference between 23× and ~1× torch's time, and every tile is
computed the same way under any thread count. With fewer tiles the tiles run in order, BLAS
threads each GEMM, and im2col, col2im and the copies are ``prange`` loops over (image,
channel) planes at TG_PAR_MIN elements and above; each plane is written by one thread in a
fixed order, but BLAS may split its sums by thread count, so results may then differ in the
last bits between thread counts. conv_weight sums its tiles in up to WEIGHT_CHUNKS fixed
chunks, then the chunks in order.

Pooling (x [N, C, H, W] seen as N·C planes, a prange over planes):
  max_pool_forward   y = max over each window (padding is −inf: padded cells never win;
                     NaN propagates), with the flat argmax index h·W + w of each output
  max_pool_scatter   gx[idx] += g        (the adjoint of the gather; per plane, in order)
  max_pool_gather    y = h[idx]
  avg_pool_forward   y = Σ window / (kh·kw)   (count_include_pad: padded cells count as 0)
  avg_pool_adjoint   gx = Σ over the windows containing a pixel of g / (kh·kw)
"""
import threading

import numpy as np

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from tensorgrad._kernels._openmp cimport TG_PAR_MIN
from tensorgrad._kernels.blas cimport dgemm, require_blas, sgemm

cnp.import_array()

ctypedef cnp.npy_intp intp

cdef enum:
    # At this many output pixels per image and above, conv_forward and conv_input run one
    # GEMM per image on y in place (no copy between y and the GEMM layout); below, one GEMM
    # per batch tile on a copy (many tiny GEMMs would waste more than the copy).
    DIRECT_L = 256
    # conv_weight sums its batch tiles in this many fixed chunks (at most): enough for the
    # chunks to spread over the threads, few enough for the partial sums to stay small.
    WEIGHT_CHUNKS = 8


cdef struct Geom:
    intp C, H, W           # the x side: channels and spatial size
    intp O, OH, OW         # the y side
    intp kh, kw, sh, sw, ph, pw, dh, dw, groups
    bint flat              # stride 1 and OW == W: each im2col row is a shifted copy of x


# ------------------------------------------------------------------------------- GEMM
cdef inline void _gemm(bint ta, bint tb, intp m, intp n, intp k, floating* a, intp lda,
                       floating* b, intp ldb, floating beta, floating* c,
                       intp ldc) noexcept nogil:
    """Row-major c[m, n] = op(a)[m, k] · op(b)[k, n] + beta·c; op(x) = xᵀ when the flag is
    set (the stored matrix is then [k, m] / [n, k]); lda/ldb/ldc are row lengths in memory.
    Computed as the column-major product cᵀ = op(b)ᵀ · op(a)ᵀ."""
    cdef char fa = b'T' if ta else b'N'
    cdef char fb = b'T' if tb else b'N'
    cdef int im = <int>m, in_ = <int>n, ik = <int>k
    cdef int ilda = <int>lda, ildb = <int>ldb, ildc = <int>ldc
    cdef float falpha = 1, fbeta
    cdef double dalpha = 1, dbeta
    if floating is float:
        fbeta = beta
        sgemm(&fb, &fa, &in_, &im, &ik, &falpha, b, &ildb, a, &ilda, &fbeta, c, &ildc)
    else:
        dbeta = beta
        dgemm(&fb, &fa, &in_, &im, &ik, &dalpha, b, &ildb, a, &ilda, &dbeta, c, &ildc)


# ------------------------------------------------------------------------ im2col/col2im
cdef inline void _range(intp OW, intp W, intp sw, intp off, intp* lo, intp* hi) noexcept nogil:
    """The output columns ow with 0 <= ow·sw + off < W, as [lo, hi)."""
    cdef intp a = 0, b
    if off < 0:
        a = (-off + sw - 1) // sw
    if W - 1 - off < 0:
        b = 0
    else:
        b = (W - 1 - off) // sw + 1
    if b > OW:
        b = OW
    if a > b:
        a = b
    lo[0] = a
    hi[0] = b


cdef inline bint _flat_rows(const Geom* G, intp ki, intp kj, intp* dr, intp* dc, intp* a,
                            intp* b) noexcept nogil:
    """For a ``flat`` geometry: kernel offset (ki, kj) reads x at the flat position
    p + dr·W + dc for output position p; [a, b) is the range of p whose row is inside x,
    clipped so that the source stays inside the plane (the clipped p are wrapped columns).
    False when no output row reads x."""
    cdef intp W = G.W, lo, hi, s
    dr[0] = ki * G.dh - G.ph
    dc[0] = kj * G.dw - G.pw
    lo = max(0, -dr[0])
    hi = min(G.OH, G.H - dr[0])
    if hi <= lo:
        return False
    a[0] = lo * W
    b[0] = hi * W
    s = a[0] + dr[0] * W + dc[0]
    if s < 0:
        a[0] -= s
    s = b[0] + dr[0] * W + dc[0] - G.H * W
    if s > 0:
        b[0] -= s
    return True


cdef inline void _zero_wrapped(floating* row, intp dr, intp dc, const Geom* G) noexcept nogil:
    """Zero the columns of the valid output rows that a flat copy wrapped around."""
    cdef intp W = G.W, oh, j, lo = max(0, -dr), hi = min(G.OH, G.H - dr)
    if dc < 0:
        for oh in range(lo, hi):
            for j in range(-dc):
                row[oh * W + j] = 0
    elif dc > 0:
        for oh in range(lo, hi):
            for j in range(W - dc, W):
                row[oh * W + j] = 0


cdef void _im2col_plane(const floating* xp, floating* colp, intp ld, const Geom* G) noexcept nogil:
    """The kh·kw rows of one (image, channel) plane ``xp`` into ``colp`` (row stride ld)."""
    cdef intp ki, kj, oh, ow, ih, lo, hi, off, dr, dc, a, b, p, L = G.OH * G.OW
    cdef floating* row
    cdef const floating* src
    if G.flat:
        for ki in range(G.kh):
            for kj in range(G.kw):
                row = colp + (ki * G.kw + kj) * ld
                if not _flat_rows(G, ki, kj, &dr, &dc, &a, &b):
                    memset(row, 0, L * sizeof(floating))
                    continue
                memset(row, 0, a * sizeof(floating))
                memcpy(row + a, xp + a + dr * G.W + dc, (b - a) * sizeof(floating))
                memset(row + b, 0, (L - b) * sizeof(floating))
                _zero_wrapped(row, dr, dc, G)
        return
    for ki in range(G.kh):
        for kj in range(G.kw):
            row = colp + (ki * G.kw + kj) * ld
            off = kj * G.dw - G.pw
            _range(G.OW, G.W, G.sw, off, &lo, &hi)
            for oh in range(G.OH):
                ih = oh * G.sh - G.ph + ki * G.dh
                if ih < 0 or ih >= G.H:
                    for ow in range(G.OW):
                        row[ow] = 0
                else:
                    src = xp + ih * G.W + off
                    for ow in range(lo):
                        row[ow] = 0
                    if G.sw == 1:
                        for ow in range(lo, hi):
                            row[ow] = src[ow]
                    else:
                        for ow in range(lo, hi):
                            row[ow] = src[ow * G.sw]
                    for ow in range(hi, G.OW):
                        row[ow] = 0
                row += G.OW


cdef void _col2im_plane(const floating* colp, floating* xp, intp ld, floating init,
                        const Geom* G) noexcept nogil:
    """xp = init + the kh·kw rows of ``colp`` summed back onto one plane (fixed order).
    For a flat geometry the rows' wrapped columns are zeroed in ``colp`` first."""
    cdef intp ki, kj, oh, ow, ih, lo, hi, off, i, dr, dc, a, b, p
    cdef const floating* row
    cdef floating* dst
    for i in range(G.H * G.W):
        xp[i] = init
    if G.flat:
        for ki in range(G.kh):
            for kj in range(G.kw):
                row = colp + (ki * G.kw + kj) * ld
                if not _flat_rows(G, ki, kj, &dr, &dc, &a, &b):
                    continue
                _zero_wrapped(<floating*>row, dr, dc, G)     # col is our workspace
                dst = xp + dr * G.W + dc
                for p in range(a, b):
                    dst[p] += row[p]
        return
    for ki in range(G.kh):
        for kj in range(G.kw):
            row = colp + (ki * G.kw + kj) * ld
            off = kj * G.dw - G.pw
            _range(G.OW, G.W, G.sw, off, &lo, &hi)
            for oh in range(G.OH):
                ih = oh * G.sh - G.ph + ki * G.dh
                if ih >= 0 and ih < G.H:
                    dst = xp + ih * G.W + off
                    if G.sw == 1:
                        for ow in range(lo, hi):
                            dst[ow] += row[ow]
                    else:
                        for ow in range(lo, hi):
                            dst[ow * G.sw] += row[ow]
                row += G.OW


cdef void _im2col(const floating* x, floating* col, intp nb, const Geom* G, bint par) noexcept nogil:
    """col [C·kh·kw, nb·L] from nb images x [nb, C, H, W]."""
    cdef intp L = G.OH * G.OW, ld = nb * L, kk = G.kh * G.kw, t, c, i
    cdef intp ntask = G.C * nb
    for t in prange(ntask, schedule='static', use_threads_if=par and ntask > 1
                    and ntask * kk * L >= TG_PAR_MIN):
        c = t // nb
        i = t - c * nb
        _im2col_plane(x + (i * G.C + c) * G.H * G.W, col + c * kk * ld + i * L, ld, G)


cdef void _col2im(const floating* col, floating* x, intp nb, const floating* bias,
                  const Geom* G, bint par) noexcept nogil:
    """x [nb, C, H, W] = col2im(col [C·kh·kw, nb·L]) (+ bias[c] when bias is not NULL)."""
    cdef intp L = G.OH * G.OW, ld = nb * L, kk = G.kh * G.kw, t, c, i
    cdef intp ntask = G.C * nb
    cdef floating init
    for t in prange(ntask, schedule='static', use_threads_if=par and ntask > 1
                    and ntask * kk * L >= TG_PAR_MIN):
        c = t // nb
        i = t - c * nb
        init = 0
        if bias != NULL:
            init = bias[c]
        _col2im_plane(col + c * kk * ld + i * L, x + (i * G.C + c) * G.H * G.W, ld, init, G)


cdef void _y_to_out(const floating* Y, floating* y, intp nb, const floating* bias,
                    const Geom* G, bint par) noexcept nogil:
    """Epilogue: y[i, o, :] = Y[o, i·L:(i+1)·L] (+ bias[o])."""
    cdef intp L = G.OH * G.OW, t, o, i, l
    cdef intp ntask = G.O * nb
    cdef floating b
    cdef const floating* src
    cdef floating* dst
    for t in prange(ntask, schedule='static', use_threads_if=par and ntask > 1
                    and ntask * L >= TG_PAR_MIN):
        i = t // G.O
        o = t - i * G.O
        src = Y + o * nb * L + i * L
        dst = y + (i * G.O + o) * L
        b = 0
        if bias != NULL:
            b = bias[o]
        for l in range(L):
            dst[l] = src[l] + b


cdef void _out_to_y(const floating* y, floating* Y, intp nb, const Geom* G, bint par) noexcept nogil:
    """Y[o, i·L:(i+1)·L] = y[i, o, :] (y gathered into GEMM layout)."""
    cdef intp L = G.OH * G.OW, t, o, i, l
    cdef intp ntask = G.O * nb
    cdef const floating* src
    cdef floating* dst
    for t in prange(ntask, schedule='static', use_threads_if=par and ntask > 1
                    and ntask * L >= TG_PAR_MIN):
        i = t // G.O
        o = t - i * G.O
        src = y + (i * G.O + o) * L
        dst = Y + o * nb * L + i * L
        for l in range(L):
            dst[l] = src[l]


# --------------------------------------------------------------------------- drivers
cdef tuple _shape(Py_ssize_t* s):
    return (s[0], s[1], s[2], s[3])


cdef int _geom(Geom* G, tuple xs, tuple ys, tuple ws, tuple stride, tuple padding,
               tuple dilation, intp groups) except -1:
    # The y side may be smaller than conv2d's output size for x (never larger): a
    # conv_transpose2d with output_padding >= stride has x rows no window of y reaches.
    G.C, G.H, G.W = xs[1], xs[2], xs[3]
    G.O, G.OH, G.OW = ys[1], ys[2], ys[3]
    G.kh, G.kw = ws[2], ws[3]
    G.sh, G.sw = stride
    G.ph, G.pw = padding
    G.dh, G.dw = dilation
    G.groups = groups
    G.flat = G.sh == 1 and G.sw == 1 and G.OW == G.W
    if (xs[0] != ys[0] or G.groups < 1 or G.C % G.groups or G.O % G.groups
            or G.sh < 1 or G.sw < 1 or G.dh < 1 or G.dw < 1 or G.ph < 0 or G.pw < 0
            or G.OH < 0 or G.OW < 0
            or G.OH > (G.H + 2 * G.ph - G.dh * (G.kh - 1) - 1) // G.sh + 1
            or G.OW > (G.W + 2 * G.pw - G.dw * (G.kw - 1) - 1) // G.sw + 1):
        raise ValueError(f"conv kernels: inconsistent geometry x {xs}, y {ys}, w {ws}, "
                         f"stride {stride}, padding {padding}, dilation {dilation}, "
                         f"groups {groups}")
    return 0


def tile_images(intp n, intp C, intp kk, intp L, intp ws_elems, intp O=0):
    """Images per batch tile: the im2col workspace C·kk·L per image (and the GEMM output
    O·L per image) fits ``ws_elems`` (at least one image, at most n)."""
    cdef intp per = max(C * kk * L, O * L, 1)
    cdef intp nb = ws_elems // per
    return int(max(1, min(n, nb)))


def parallel_units(intp n, intp C, intp kk, intp L, intp ws_elems, intp O, bint weight):
    """How many independent units (batch tiles; for conv_weight, chunks of tiles) a kernel
    call has: with ``threads`` > 1 it runs them in parallel when there are at least that
    many."""
    cdef intp nb = tile_images(n, C, kk, L, ws_elems, O)
    cdef intp units = (n + nb - 1) // nb
    return int(min(units, WEIGHT_CHUNKS) if weight else units)


_local = threading.local()


cdef object _workspace(object dt, intp col_elems, intp y_elems):
    """(col, Y) buffers of this thread, reused across calls: fresh multi-MB arrays would be
    page-faulted in on every call. Bounded by the largest tile seen."""
    cdef tuple key = (np.dtype(dt).char,)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    cur = bufs.get(key)
    if cur is None or cur[0].shape[0] < col_elems or cur[1].shape[0] < y_elems:
        n0 = col_elems if cur is None else max(col_elems, cur[0].shape[0])
        n1 = y_elems if cur is None else max(y_elems, cur[1].shape[0])
        cur = bufs[key] = (np.empty(max(n0, 1), dt), np.empty(max(n1, 1), dt))
    return cur


def release_workspace():
    """Free this thread's cached im2col/GEMM workspace."""
    _local.bufs = {}


cdef void _forward_tile(const floating* x, intp cur, floating* cp, floating* Yp,
                        const floating* wp, const floating* bp, floating* y, const Geom* G,
                        bint par) noexcept nogil:
    """y[0:cur] = conv2d(x[0:cur]) for one batch tile (workspaces cp, Yp)."""
    cdef intp L = G.OH * G.OW, kk = G.kh * G.kw, Og = G.O // G.groups
    cdef intp Kg = (G.C // G.groups) * kk, i, o, l, g
    cdef floating* yi
    cdef floating beta = 1 if bp != NULL else 0
    _im2col(x, cp, cur, G, par)
    if L >= DIRECT_L:
        # one GEMM per image straight into y (bias as the initial value of C, written while
        # that image's output is about to be read by the GEMM anyway)
        for i in range(cur):
            yi = y + i * G.O * L
            if bp != NULL:
                for o in range(G.O):
                    for l in range(L):
                        yi[o * L + l] = bp[o]
            for g in range(G.groups):
                _gemm(False, False, Og, L, Kg, <floating*>wp + g * Og * Kg, Kg,
                      cp + g * Kg * cur * L + i * L, cur * L, beta, yi + g * Og * L, L)
    else:
        for g in range(G.groups):
            _gemm(False, False, Og, cur * L, Kg, <floating*>wp + g * Og * Kg, Kg,
                  cp + g * Kg * cur * L, cur * L, 0, Yp + g * Og * cur * L, cur * L)
        _y_to_out(Yp, y, cur, bp, G, par)


cdef void _input_tile(const floating* y, intp cur, floating* cp, floating* Yp,
                      const floating* wp, const floating* bp, floating* x, const Geom* G,
                      bint par) noexcept nogil:
    """x[0:cur] = col2im(Wᵀ·y[0:cur]) (+ bias) for one batch tile."""
    cdef intp L = G.OH * G.OW, kk = G.kh * G.kw, Og = G.O // G.groups
    cdef intp Kg = (G.C // G.groups) * kk, i, g
    if L >= DIRECT_L:          # one GEMM per image, reading y in place
        for i in range(cur):
            for g in range(G.groups):
                _gemm(True, False, Kg, L, Og, <floating*>wp + g * Og * Kg, Kg,
                      <floating*>y + (i * G.O + g * Og) * L, L, 0,
                      cp + g * Kg * cur * L + i * L, cur * L)
    else:
        _out_to_y(y, Yp, cur, G, par)
        for g in range(G.groups):
            _gemm(True, False, Kg, cur * L, Og, <floating*>wp + g * Og * Kg, Kg,
                  Yp + g * Og * cur * L, cur * L, 0, cp + g * Kg * cur * L, cur * L)
    _col2im(cp, x, cur, bp, G, par)


cdef void _weight_tile(const floating* x, const floating* y, intp cur, floating* cp,
                       floating* Yp, floating* gw, floating beta, const Geom* G,
                       bint par) noexcept nogil:
    """gw = beta·gw + y[0:cur] · im2col(x[0:cur])ᵀ, group by group, for one batch tile."""
    cdef intp L = G.OH * G.OW, kk = G.kh * G.kw, Og = G.O // G.groups
    cdef intp Kg = (G.C // G.groups) * kk, g, i
    _im2col(x, cp, cur, G, par)
    if L >= DIRECT_L:          # one GEMM per image, reading y in place, accumulating in order
        for i in range(cur):
            for g in range(G.groups):
                _gemm(False, True, Og, Kg, L, <floating*>y + (i * G.O + g * Og) * L, L,
                      cp + g * Kg * cur * L + i * L, cur * L, beta if i == 0 else 1,
                      gw + g * Og * Kg, Kg)
        return
    _out_to_y(y, Yp, cur, G, par)
    for g in range(G.groups):
        _gemm(False, True, Og, Kg, cur * L, Yp + g * Og * cur * L, cur * L,
              cp + g * Kg * cur * L, cur * L, beta, gw + g * Og * Kg, Kg)


cdef struct Plan:
    intp nb, ntiles, nthreads, col, ysz   # images per tile, tiles, threads, workspace sizes
    bint tiles                            # a prange over tiles (BLAS single-threaded)


cdef Plan _plan(const Geom* G, intp N, intp ws_elems, int threads):
    cdef Plan P
    cdef intp L = G.OH * G.OW, kk = G.kh * G.kw
    P.nb = tile_images(N, G.C, kk, L, ws_elems, G.O)
    P.ntiles = (N + P.nb - 1) // P.nb
    P.tiles = threads > 1 and P.ntiles >= threads
    P.nthreads = threads if P.tiles else 1
    P.col = G.C * kk * P.nb * L
    P.ysz = G.O * P.nb * L
    return P


cdef inline void _tile(bint forward, intp t, const floating* src, intp src_img,
                       floating* dst, intp dst_img, intp N, floating* cp, floating* Yp,
                       const floating* wp, const floating* bp, const Geom* G, const Plan* P,
                       bint par) noexcept nogil:
    cdef intp n0 = t * P.nb, cur = min(P.nb, N - n0)
    if forward:
        _forward_tile(src + n0 * src_img, cur, cp, Yp, wp, bp, dst + n0 * dst_img, G, par)
    else:
        _input_tile(src + n0 * src_img, cur, cp, Yp, wp, bp, dst + n0 * dst_img, G, par)


cdef int _map_tiles(bint forward, const floating* src, intp src_img, floating* dst,
                    intp dst_img, intp N, const floating* wp, const floating* bp,
                    const Geom* G, intp ws_elems, int threads) except -1:
    """Every batch tile of conv_forward (``forward``: src = x, dst = y) or conv_input
    (src = y, dst = x); ``*_img``: elements per image. With a plan of several tiles per
    thread, an OpenMP prange over tiles, each with its own workspace and single-threaded
    GEMMs; else the tiles in order, BLAS threaded."""
    require_blas()
    cdef Plan P = _plan(G, N, ws_elems, threads)
    ws = _workspace(np.float32 if floating is float else np.float64, P.col * P.nthreads,
                    P.ysz * P.nthreads)
    cdef floating[::1] col = ws[0]
    cdef floating[::1] Y = ws[1]
    cdef floating* cp = &col[0]
    cdef floating* Yp = &Y[0]
    cdef intp t, tid
    with nogil:
        if P.tiles:
            for t in prange(P.ntiles, schedule='dynamic', num_threads=P.nthreads):
                tid = threadid()
                _tile(forward, t, src, src_img, dst, dst_img, N, cp + tid * P.col,
                      Yp + tid * P.ysz, wp, bp, G, &P, False)
        else:
            for t in range(P.ntiles):
                _tile(forward, t, src, src_img, dst, dst_img, N, cp, Yp, wp, bp, G, &P, True)
    return 0


def conv_forward(floating[:, :, :, ::1] x, floating[:, :, :, ::1] w, floating[::1] bias,
                 floating[:, :, :, ::1] y, tuple stride, tuple padding, tuple dilation,
                 intp groups, intp ws_elems, int threads=1):
    """y = conv2d(x, w) (+ bias when len(bias) == O; pass an empty array for none).

    With ``threads`` > 1 and at least that many batch tiles, the tiles run in an OpenMP
    prange, each with its own workspace and single-threaded GEMMs: the caller must have set
    BLAS to one thread (ops/conv.py does). Otherwise the tiles run in order, BLAS threaded.
    """
    cdef Geom G
    _geom(&G, _shape(x.shape), _shape(y.shape), _shape(w.shape), stride, padding,
          dilation, groups)
    cdef intp N = x.shape[0], L = G.OH * G.OW, kk = G.kh * G.kw
    cdef intp Kg = (G.C // G.groups) * kk
    if N == 0 or G.O == 0 or L == 0:
        return
    cdef const floating* bp = &bias[0] if bias.shape[0] else NULL
    if Kg == 0:
        with nogil:
            memset(&y[0, 0, 0, 0], 0, N * G.O * L * sizeof(floating))
        if bp != NULL:
            np.asarray(y)[...] += np.asarray(bias)[:, None, None]
        return
    _map_tiles(True, &x[0, 0, 0, 0], G.C * G.H * G.W, &y[0, 0, 0, 0], G.O * L, N,
               &w[0, 0, 0, 0], bp, &G, ws_elems, threads)


def conv_input(floating[:, :, :, ::1] y, floating[:, :, :, ::1] w, floating[::1] bias,
               floating[:, :, :, ::1] x, tuple stride, tuple padding, tuple dilation,
               intp groups, intp ws_elems, int threads=1):
    """x = col2im(Wᵀ·y) (+ bias on x's channels when len(bias) == C): conv2d's input
    gradient for the output gradient y, i.e. conv_transpose2d(y, w). ``threads`` as in
    conv_forward."""
    cdef Geom G
    _geom(&G, _shape(x.shape), _shape(y.shape), _shape(w.shape), stride, padding,
          dilation, groups)
    cdef intp N = x.shape[0], L = G.OH * G.OW
    cdef intp Og = G.O // G.groups
    if N == 0 or G.C == 0 or G.H * G.W == 0:
        return
    cdef const floating* bp = &bias[0] if bias.shape[0] else NULL
    if L == 0 or Og == 0:
        xa = np.asarray(x)
        xa[...] = 0
        if bp != NULL:
            xa += np.asarray(bias)[:, None, None]
        return
    _map_tiles(False, &y[0, 0, 0, 0], G.O * L, &x[0, 0, 0, 0], G.C * G.H * G.W, N,
               &w[0, 0, 0, 0], bp, &G, ws_elems, threads)


def conv_weight(floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                floating[:, :, :, ::1] gw, tuple stride, tuple padding, tuple dilation,
                intp groups, intp ws_elems, int threads=1):
    """gw = Σ_images y · im2col(x)ᵀ, group by group: conv2d's weight gradient for the output
    gradient y. The tiles are summed in up to WEIGHT_CHUNKS fixed chunks (a partial sum
    each, in tile order), then the chunks in order: the same sums under any thread count.
    ``threads`` as in conv_forward."""
    cdef Geom G
    _geom(&G, _shape(x.shape), _shape(y.shape), _shape(gw.shape), stride, padding,
          dilation, groups)
    cdef intp N = x.shape[0], L = G.OH * G.OW, kk = G.kh * G.kw
    cdef intp Kg = (G.C // G.groups) * kk
    if G.O == 0 or Kg == 0:
        return
    if N == 0 or L == 0:
        np.asarray(gw)[...] = 0
        return
    require_blas()
    cdef Plan P = _plan(&G, N, ws_elems, threads)
    cdef intp nch = min(P.ntiles, WEIGHT_CHUNKS), wsz = G.O * Kg
    P.tiles = threads > 1 and nch >= threads
    P.nthreads = threads if P.tiles else 1
    ws = _workspace(np.float32 if floating is float else np.float64, P.col * P.nthreads,
                    P.ysz * P.nthreads)
    dt = np.float32 if floating is float else np.float64
    cdef floating[::1] parts = np.empty(max(nch - 1, 1) * wsz, dt)
    cdef floating[::1] col = ws[0]
    cdef floating[::1] Y = ws[1]
    cdef floating* cp = &col[0]
    cdef floating* Yp = &Y[0]
    cdef floating* gp = &gw[0, 0, 0, 0]
    cdef floating* pp = &parts[0]
    cdef intp c, t, t0, t1, n0, cur, tid, i
    cdef floating* dst
    with nogil:
        if P.tiles:
            for c in prange(nch, schedule='dynamic', num_threads=P.nthreads):
                tid = threadid()
                dst = gp if c == 0 else pp + (c - 1) * wsz
                t0 = c * P.ntiles // nch
                t1 = (c + 1) * P.ntiles // nch
                for t in range(t0, t1):
                    n0 = t * P.nb
                    cur = min(P.nb, N - n0)
                    _weight_tile(&x[n0, 0, 0, 0], &y[n0, 0, 0, 0], cur, cp + tid * P.col,
                                 Yp + tid * P.ysz, dst, 0 if t == t0 else 1, &G, False)
        else:
            for c in range(nch):
                dst = gp if c == 0 else pp + (c - 1) * wsz
                t0 = c * P.ntiles // nch
                t1 = (c + 1) * P.ntiles // nch
                for t in range(t0, t1):
                    n0 = t * P.nb
                    cur = min(P.nb, N - n0)
                    _weight_tile(&x[n0, 0, 0, 0], &y[n0, 0, 0, 0], cur, cp, Yp, dst,
                                 0 if t == t0 else 1, &G, True)
        for c in range(1, nch):
            dst = pp + (c - 1) * wsz
            for i in range(wsz):
                gp[i] += dst[i]


def channel_sum(floating[:, :, ::1] g, floating[::1] out):
    """out[c] = Σ_{n, l} g[n, c, l], summed in double in a fixed order (bias gradients):
    eight interleaved partial sums per (n, c) row, combined in a fixed tree."""
    cdef intp N = g.shape[0], C = g.shape[1], L = g.shape[2], c, n, l, j, L8 = L - L % 8
    cdef double s
    cdef double acc[8]
    cdef const floating* row
    with nogil:
        for c in prange(C, schedule='static', use_threads_if=C > 1 and N * C * L >= TG_PAR_MIN):
            for j in range(8):
                acc[j] = 0
            s = 0
            for n in range(N):
                row = &g[n, c, 0] if L else NULL
                for l in range(0, L8, 8):
                    for j in range(8):
                        acc[j] += row[l + j]
                for l in range(L8, L):
                    s = s + row[l]
            out[c] = <floating>(s + (((acc[0] + acc[4]) + (acc[2] + acc[6]))
                                     + ((acc[1] + acc[5]) + (acc[3] + acc[7]))))


# --------------------------------------------------------------------------- pooling
cdef inline bint _par(intp planes, intp work) noexcept nogil:
    return planes > 1 and work >= TG_PAR_MIN


# The input cells [lo, hi) of output position o's window along one axis, clipped to [0, n)
# (padding cells are outside). Two functions, not one with pointer outputs: inside a prange,
# Cython makes a variable thread-private only when the body assigns it.
cdef inline intp _lo(intp o, intp stride, intp pad) noexcept nogil:
    return max(o * stride - pad, 0)


cdef inline intp _hi(intp o, intp stride, intp pad, intp k, intp n) noexcept nogil:
    return min(o * stride - pad + k, n)


def max_pool_forward(floating[:, ::1] x, floating[:, ::1] y, int64_t[:, ::1] idx,
                     intp H, intp W, intp OH, intp OW, intp kh, intp kw, intp sh, intp sw,
                     intp ph, intp pw):
    """y = max over each window of x (planes [P, H·W] → [P, OH·OW]), idx = flat argmax
    h·W + w (the first on ties; NaN wins)."""
    cdef intp P = x.shape[0], p, oh, ow, h, w, h0, w0, h1, w1, best
    cdef floating m, v
    with nogil:
        for p in prange(P, schedule='static', use_threads_if=_par(P, P * OH * OW * kh * kw)):
            for oh in range(OH):
                h0 = _lo(oh, sh, ph)
                h1 = _hi(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w0 = _lo(ow, sw, pw)
                    w1 = _hi(ow, sw, pw, kw, W)
                    best = h0 * W + w0
                    m = x[p, best]
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = x[p, h * W + w]
                            if v > m or (v != v and m == m):
                                m = v
                                best = h * W + w
                    y[p, oh * OW + ow] = m
                    idx[p, oh * OW + ow] = best


def max_pool_scatter(floating[:, ::1] g, int64_t[:, ::1] idx, floating[:, ::1] gx):
    """gx = 0, then gx[p, idx[p, j]] += g[p, j] for every output j, in order."""
    cdef intp P = g.shape[0], J = g.shape[1], HW = gx.shape[1], p, j, i
    with nogil:
        for p in prange(P, schedule='static', use_threads_if=_par(P, P * (J + HW))):
            for i in range(HW):
                gx[p, i] = 0
            for j in range(J):
                gx[p, idx[p, j]] += g[p, j]


def max_pool_gather(floating[:, ::1] h, int64_t[:, ::1] idx, floating[:, ::1] y):
    """y[p, j] = h[p, idx[p, j]]."""
    cdef intp P = idx.shape[0], J = idx.shape[1], p, j
    with nogil:
        for p in prange(P, schedule='static', use_threads_if=_par(P, P * J)):
            for j in range(J):
                y[p, j] = h[p, idx[p, j]]


def avg_pool_forward(floating[:, ::1] x, floating[:, ::1] y, intp H, intp W, intp OH,
                     intp OW, intp kh, intp kw, intp sh, intp sw, intp ph, intp pw):
    """y = Σ window / (kh·kw), padded cells counting as 0 (count_include_pad)."""
    cdef intp P = x.shape[0], p, oh, ow, h, w, h0, w0, h1, w1
    cdef double s, inv = 1.0 / (kh * kw)
    with nogil:
        for p in prange(P, schedule='static', use_threads_if=_par(P, P * OH * OW * kh * kw)):
            for oh in range(OH):
                h0 = _lo(oh, sh, ph)
                h1 = _hi(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w0 = _lo(ow, sw, pw)
                    w1 = _hi(ow, sw, pw, kw, W)
                    s = 0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s = s + x[p, h * W + w]
                    y[p, oh * OW + ow] = <floating>(s * inv)


def avg_pool_adjoint(floating[:, ::1] g, floating[:, ::1] gx, intp H, intp W, intp OH,
                     intp OW, intp kh, intp kw, intp sh, intp sw, intp ph, intp pw):
    """gx = 0, then every window's cells get g / (kh·kw) added (the adjoint of the forward)."""
    cdef intp P = g.shape[0], p, oh, ow, h, w, h0, w0, h1, w1
    cdef floating v
    cdef double inv = 1.0 / (kh * kw)
    with nogil:
        for p in prange(P, schedule='static', use_threads_if=_par(P, P * OH * OW * kh * kw)):
            for h in range(H * W):
                gx[p, h] = 0
            for oh in range(OH):
                h0 = _lo(oh, sh, ph)
                h1 = _hi(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w0 = _lo(ow, sw, pw)
                    w1 = _hi(ow, sw, pw, kw, W)
                    v = <floating>(g[p, oh * OW + ow] * inv)
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            gx[p, h * W + w] += v
