/* Batch/layer-norm run sums in double, vectorised explicitly (norm.pyx).
 *
 * GCC does not vectorise the eight independent double accumulators written in Cython (it
 * keeps eight scalar chains), and -ffast-math is not an option, so the two run sums are
 * written here with GCC/clang vector extensions: eight lanes as four 2-double vectors. The
 * lane of element i is i % 8 and the lanes are added in one fixed order at the end, so the
 * result depends only on n (never on threads); the scalar fallback (other compilers) adds in
 * the same lane order and gives the same bits.
 *
 *   tg_sq_*(a, n, k, s1, s2):        s1 += Σ (a − k),  s2 += Σ (a − k)²
 *   tg_dot_*(a, b, n, mu, s1, s2):   s1 += Σ b,        s2 += Σ b·(a − mu)
 */
#ifndef TG_NORM_SUMS_H
#define TG_NORM_SUMS_H
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define TG_VEC 1
typedef double tg_v2d __attribute__((vector_size(16)));
#endif

#define TG_FINISH(P, Q) do { \
    *s1 += ((P[0] + P[1]) + (P[2] + P[3])) + ((P[4] + P[5]) + (P[6] + P[7])); \
    *s2 += ((Q[0] + Q[1]) + (Q[2] + Q[3])) + ((Q[4] + Q[5]) + (Q[6] + Q[7])); } while (0)

#ifdef TG_VEC
#define TG_SQ(NAME, T) \
static inline void NAME(const T* a, ptrdiff_t n, double k, double* s1, double* s2) { \
    tg_v2d p0 = {0, 0}, p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0; \
    tg_v2d kk = {k, k}, d0, d1, d2, d3; \
    double P[8], Q[8]; \
    ptrdiff_t i, m = n - n % 8; \
    for (i = 0; i < m; i += 8) { \
        d0 = (tg_v2d){a[i], a[i + 1]} - kk; \
        d1 = (tg_v2d){a[i + 2], a[i + 3]} - kk; \
        d2 = (tg_v2d){a[i + 4], a[i + 5]} - kk; \
        d3 = (tg_v2d){a[i + 6], a[i + 7]} - kk; \
        p0 += d0; p1 += d1; p2 += d2; p3 += d3; \
        q0 += d0 * d0; q1 += d1 * d1; q2 += d2 * d2; q3 += d3 * d3; \
    } \
    P[0] = p0[0]; P[1] = p0[1]; P[2] = p1[0]; P[3] = p1[1]; \
    P[4] = p2[0]; P[5] = p2[1]; P[6] = p3[0]; P[7] = p3[1]; \
    Q[0] = q0[0]; Q[1] = q0[1]; Q[2] = q1[0]; Q[3] = q1[1]; \
    Q[4] = q2[0]; Q[5] = q2[1]; Q[6] = q3[0]; Q[7] = q3[1]; \
    for (i = m; i < n; i++) { double d = a[i] - k; P[i - m] += d; Q[i - m] += d * d; } \
    TG_FINISH(P, Q); \
}
#define TG_DOT(NAME, T) \
static inline void NAME(const T* a, const T* b, ptrdiff_t n, double mu, double* s1, \
                        double* s2) { \
    tg_v2d p0 = {0, 0}, p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0; \
    tg_v2d mm = {mu, mu}, e0, e1, e2, e3; \
    double P[8], Q[8]; \
    ptrdiff_t i, m = n - n % 8; \
    for (i = 0; i < m; i += 8) { \
        e0 = (tg_v2d){b[i], b[i + 1]}; \
        e1 = (tg_v2d){b[i + 2], b[i + 3]}; \
        e2 = (tg_v2d){b[i + 4], b[i + 5]}; \
        e3 = (tg_v2d){b[i + 6], b[i + 7]}; \
        p0 += e0; p1 += e1; p2 += e2; p3 += e3; \
        q0 += e0 * ((tg_v2d){a[i], a[i + 1]} - mm); \
        q1 += e1 * ((tg_v2d){a[i + 2], a[i + 3]} - mm); \
        q2 += e2 * ((tg_v2d){a[i + 4], a[i + 5]} - mm); \
        q3 += e3 * ((tg_v2d){a[i + 6], a[i + 7]} - mm); \
    } \
    P[0] = p0[0]; P[1] = p0[1]; P[2] = p1[0]; P[3] = p1[1]; \
    P[4] = p2[0]; P[5] = p2[1]; P[6] = p3[0]; P[7] = p3[1]; \
    Q[0] = q0[0]; Q[1] = q0[1]; Q[2] = q1[0]; Q[3] = q1[1]; \
    Q[4] = q2[0]; Q[5] = q2[1]; Q[6] = q3[0]; Q[7] = q3[1]; \
    for (i = m; i < n; i++) { double e = b[i]; P[i - m] += e; Q[i - m] += e * (a[i] - mu); } \
    TG_FINISH(P, Q); \
}
#else
#define TG_SQ(NAME, T) \
static inline void NAME(const T* a, ptrdiff_t n, double k, double* s1, double* s2) { \
    double P[8] = {0}, Q[8] = {0}, d; \
    ptrdiff_t i; \
    for (i = 0; i < n; i++) { d = a[i] - k; P[i % 8] += d; Q[i % 8] += d * d; } \
    TG_FINISH(P, Q); \
}
#define TG_DOT(NAME, T) \
static inline void NAME(const T* a, const T* b, ptrdiff_t n, double mu, double* s1, \
                        double* s2) { \
    double P[8] = {0}, Q[8] = {0}, e; \
    ptrdiff_t i; \
    for (i = 0; i < n; i++) { e = b[i]; P[i % 8] += e; Q[i % 8] += e * (a[i] - mu); } \
    TG_FINISH(P, Q); \
}
#endif

/* tg_dotw_*(a, b, w, n, mu, s1, s2): s1 += Σ b·w,  s2 += Σ b·w·(a − mu)   (layer norm's
 * backward with a weight: gh = g·w in double), the same eight lanes. */
#ifdef TG_VEC
#define TG_DOTW(NAME, T) \
static inline void NAME(const T* a, const T* b, const T* w, ptrdiff_t n, double mu, \
                        double* s1, double* s2) { \
    tg_v2d p0 = {0, 0}, p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0; \
    tg_v2d mm = {mu, mu}, e0, e1, e2, e3; \
    double P[8], Q[8]; \
    ptrdiff_t i, m = n - n % 8; \
    for (i = 0; i < m; i += 8) { \
        e0 = (tg_v2d){b[i], b[i + 1]} * (tg_v2d){w[i], w[i + 1]}; \
        e1 = (tg_v2d){b[i + 2], b[i + 3]} * (tg_v2d){w[i + 2], w[i + 3]}; \
        e2 = (tg_v2d){b[i + 4], b[i + 5]} * (tg_v2d){w[i + 4], w[i + 5]}; \
        e3 = (tg_v2d){b[i + 6], b[i + 7]} * (tg_v2d){w[i + 6], w[i + 7]}; \
        p0 += e0; p1 += e1; p2 += e2; p3 += e3; \
        q0 += e0 * ((tg_v2d){a[i], a[i + 1]} - mm); \
        q1 += e1 * ((tg_v2d){a[i + 2], a[i + 3]} - mm); \
        q2 += e2 * ((tg_v2d){a[i + 4], a[i + 5]} - mm); \
        q3 += e3 * ((tg_v2d){a[i + 6], a[i + 7]} - mm); \
    } \
    P[0] = p0[0]; P[1] = p0[1]; P[2] = p1[0]; P[3] = p1[1]; \
    P[4] = p2[0]; P[5] = p2[1]; P[6] = p3[0]; P[7] = p3[1]; \
    Q[0] = q0[0]; Q[1] = q0[1]; Q[2] = q1[0]; Q[3] = q1[1]; \
    Q[4] = q2[0]; Q[5] = q2[1]; Q[6] = q3[0]; Q[7] = q3[1]; \
    for (i = m; i < n; i++) { \
        double e = (double)b[i] * w[i]; P[i - m] += e; Q[i - m] += e * (a[i] - mu); } \
    TG_FINISH(P, Q); \
}
#else
#define TG_DOTW(NAME, T) \
static inline void NAME(const T* a, const T* b, const T* w, ptrdiff_t n, double mu, \
                        double* s1, double* s2) { \
    double P[8] = {0}, Q[8] = {0}, e; \
    ptrdiff_t i; \
    for (i = 0; i < n; i++) { \
        e = (double)b[i] * w[i]; P[i % 8] += e; Q[i % 8] += e * (a[i] - mu); } \
    TG_FINISH(P, Q); \
}
#endif

TG_SQ(tg_sq_f, float)
TG_SQ(tg_sq_d, double)
TG_DOT(tg_dot_f, float)
TG_DOT(tg_dot_d, double)
TG_DOTW(tg_dotw_f, float)
TG_DOTW(tg_dotw_d, double)

/* Loops across a row, elementwise in i (each output or accumulator slot depends only on
 * its own index, so the order of rows fixes the result). ``restrict`` tells the compiler
 * the arrays do not overlap, so that it vectorises them. */
#if defined(_MSC_VER)
#define TG_R __restrict
#else
#define TG_R __restrict__
#endif

/* batch norm, [N, C] inputs: per-channel accumulators across one row of C values
 *   colsq:   p1[c] += a[c] − k[c],   p2[c] += (a[c] − k[c])²
 *   coldot:  p1[c] += b[c],          p2[c] += b[c]·(a[c] − mu[c])
 *   affine:  out[c] = A[c]·a[c] + B[c]·(b[c] − M[c]) + K[c]   (A·a left out when a is NULL)
 * layer norm, one row of D values:
 *   lnout:   y = (x − m)·r·w + b     (w, b may be NULL)
 *   lngx:    gx = r·(gh − c1 − (x − m)·r·c2),  gh = g·w (w may be NULL)
 *   lncol:   pw += g·(x − m)·r,  pb += g
 *   lngxcol: lngx (with w) and lncol in one loop */
#define TG_ROWS(SFX, T) \
static inline void tg_colsq_##SFX(const T* TG_R a, const double* TG_R k, ptrdiff_t n, \
                                  double* TG_R p1, double* TG_R p2) { \
    for (ptrdiff_t i = 0; i < n; i++) { double d = a[i] - k[i]; p1[i] += d; p2[i] += d * d; } \
} \
static inline void tg_coldot_##SFX(const T* TG_R a, const T* TG_R b, \
                                   const double* TG_R mu, ptrdiff_t n, double* TG_R p1, \
                                   double* TG_R p2) { \
    for (ptrdiff_t i = 0; i < n; i++) { \
        double e = b[i]; p1[i] += e; p2[i] += e * (a[i] - mu[i]); } \
} \
static inline void tg_affine_##SFX(const T* TG_R a, const T* TG_R b, T* TG_R out, \
                                   const double* TG_R A, const double* TG_R B, \
                                   const double* TG_R M, const double* TG_R K, ptrdiff_t n) { \
    ptrdiff_t i; \
    if (a == NULL) { \
        for (i = 0; i < n; i++) out[i] = (T)B[i] * (b[i] - (T)M[i]) + (T)K[i]; \
    } else { \
        for (i = 0; i < n; i++) \
            out[i] = (T)A[i] * a[i] + (T)B[i] * (b[i] - (T)M[i]) + (T)K[i]; \
    } \
} \
static inline void tg_lnout_##SFX(const T* TG_R x, const T* TG_R w, const T* TG_R b, \
                                  T* TG_R y, ptrdiff_t n, T m, T r) { \
    ptrdiff_t i; \
    if (w != NULL && b != NULL) { for (i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i] + b[i]; } \
    else if (w != NULL) { for (i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i]; } \
    else if (b != NULL) { for (i = 0; i < n; i++) y[i] = (x[i] - m) * r + b[i]; } \
    else { for (i = 0; i < n; i++) y[i] = (x[i] - m) * r; } \
} \
static inline void tg_lngx_##SFX(const T* TG_R g, const T* TG_R x, const T* TG_R w, \
                                 T* TG_R gx, ptrdiff_t n, double m, double r, double c1, \
                                 double c2) { \
    ptrdiff_t i; \
    if (w == NULL) { \
        for (i = 0; i < n; i++) gx[i] = (T)(r * (g[i] - c1 - (x[i] - m) * r * c2)); \
    } else { \
        for (i = 0; i < n; i++) \
            gx[i] = (T)(r * ((double)g[i] * w[i] - c1 - (x[i] - m) * r * c2)); \
    } \
} \
static inline void tg_lncol_##SFX(const T* TG_R g, const T* TG_R x, ptrdiff_t n, double m, \
                                  double r, double* TG_R pw, double* TG_R pb) { \
    for (ptrdiff_t i = 0; i < n; i++) { pw[i] += g[i] * ((x[i] - m) * r); pb[i] += g[i]; } \
} \
static inline void tg_lngxcol_##SFX(const T* TG_R g, const T* TG_R x, const T* TG_R w, \
                                    T* TG_R gx, ptrdiff_t n, double m, double r, double c1, \
                                    double c2, double* TG_R pw, double* TG_R pb) { \
    for (ptrdiff_t i = 0; i < n; i++) { \
        double xh = (x[i] - m) * r; \
        gx[i] = (T)(r * ((double)g[i] * w[i] - c1 - xh * c2)); \
        pw[i] += g[i] * xh; pb[i] += g[i]; } \
}

TG_ROWS(f, float)
TG_ROWS(d, double)

#endif
