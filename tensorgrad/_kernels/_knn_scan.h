/* The kNN epilogue's block prefilter in float, vectorised explicitly (distance.pyx).
 *
 *   tg_knn_scan_f(vf, b, j, n, cf): the smallest block start s >= j (s - j a multiple of
 *   TG_KNN_SCAN_BLOCK) such that some i in [s, min(s + TG_KNN_SCAN_BLOCK, n)) has
 *   vf[i] - 2·b[i] < cf, computed in float; n if there is none. A cf that is not below
 *   1e38 (infinite or NaN) returns j: the caller then tests every entry itself.
 *
 * The caller picks cf so that this float test accepts every entry that its exact double
 * test could accept (the proof is in knn_chunk_approx); only blocks with a hit go to the
 * double code, so the result does not depend on this function beyond speed. Written with
 * GCC/clang vector extensions (four floats per vector, eight vectors per block, their
 * compare masks ORed and tested once), which baseline SSE2 (and NEON) execute directly;
 * GCC's auto-vectoriser does not turn the early-exit loop into this. The scalar fallback
 * (other compilers) gives the same answer.
 */
#ifndef TG_KNN_SCAN_H
#define TG_KNN_SCAN_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TG_KNN_SCAN_BLOCK 32

static inline int tg_knn_scan_tail(const float* vf, const float* b, ptrdiff_t s, ptrdiff_t n,
                                   float cf) {
    int hit = 0;
    for (; s < n; s++)
        hit |= (vf[s] - (b[s] + b[s])) < cf;
    return hit;
}

#if defined(__GNUC__) || defined(__clang__)
typedef float tg_v4f __attribute__((vector_size(16)));
typedef int32_t tg_v4i __attribute__((vector_size(16)));

static inline tg_v4i tg_knn_lt(const float* vf, const float* b, tg_v4f c) {
    tg_v4f x, y;
    memcpy(&x, vf, sizeof x);
    memcpy(&y, b, sizeof y);
    return (x - (y + y)) < c;
}

static inline ptrdiff_t tg_knn_scan_f(const float* vf, const float* b, ptrdiff_t j,
                                      ptrdiff_t n, float cf) {
    tg_v4f c = {cf, cf, cf, cf};
    tg_v4i m;
    uint64_t w[2];
    if (!(cf < 1e38f))
        return j;
    for (; j + TG_KNN_SCAN_BLOCK <= n; j += TG_KNN_SCAN_BLOCK) {
        m = tg_knn_lt(vf + j, b + j, c) | tg_knn_lt(vf + j + 4, b + j + 4, c)
            | tg_knn_lt(vf + j + 8, b + j + 8, c) | tg_knn_lt(vf + j + 12, b + j + 12, c)
            | tg_knn_lt(vf + j + 16, b + j + 16, c) | tg_knn_lt(vf + j + 20, b + j + 20, c)
            | tg_knn_lt(vf + j + 24, b + j + 24, c) | tg_knn_lt(vf + j + 28, b + j + 28, c);
        memcpy(w, &m, sizeof w);
        if (w[0] | w[1])
            return j;
    }
    if (j < n && tg_knn_scan_tail(vf, b, j, n, cf))
        return j;
    return n;
}
#else
static inline ptrdiff_t tg_knn_scan_f(const float* vf, const float* b, ptrdiff_t j,
                                      ptrdiff_t n, float cf) {
    ptrdiff_t e;
    if (!(cf < 1e38f))
        return j;
    for (; j < n; j += TG_KNN_SCAN_BLOCK) {
        e = j + TG_KNN_SCAN_BLOCK < n ? j + TG_KNN_SCAN_BLOCK : n;
        if (tg_knn_scan_tail(vf, b, j, e, cf))
            return j;
    }
    return n;
}
#endif

#endif
