# Declarations from _omp_shim.h: the OpenMP runtime when built with it, stubs otherwise.
cdef extern from "_omp_shim.h" nogil:
    int TG_HAVE_OPENMP
    int TG_PAR_MIN
    const char* TG_BUILD_COMPILER
    int omp_get_max_threads()
    void omp_set_num_threads(int n)
