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
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_procs(void) { return 1; }
#endif

#ifndef TG_BUILD_COMPILER
#define TG_BUILD_COMPILER "unknown"
#endif

/* Loops over fewer elements than this run serially: waking threads costs microseconds.
 * Tuned with bench/ on a 2-core machine; one value shared by every kernel family. */
#define TG_PAR_MIN 32768

#endif
