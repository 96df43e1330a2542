/* The only place that touches omp.h. Without OpenMP the kernels build single-threaded:
 * these stubs stand in for the runtime calls, and Cython's prange pragmas are ignored. */
#ifndef TG_OMP_SHIM_H
#define TG_OMP_SHIM_H

#ifdef _OPENMP
#include <omp.h>
#define TG_HAVE_OPENMP 1
#else
#define TG_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

#ifndef TG_BUILD_COMPILER
#define TG_BUILD_COMPILER "unknown"
#endif

/* Loops over fewer elements than this run serially: waking threads costs microseconds.
 * One value shared by every kernel family. Measured on the 2-core development machine with
 * the default OMP_WAIT_POLICY=passive (idle threads sleep; see tensorgrad/__init__.py): a
 * float32 square took 9 us serial vs 24 us on 2 threads at 64K elements, 44 vs 38 us at
 * 300K, 1.4 ms vs 0.86 ms at 4M, so parallel regions start at 256K elements. */
#define TG_PAR_MIN 262144

#endif
