# The GEMM entry points every kernel module uses (implemented in blas.pyx). They have the
# Fortran BLAS signature of scipy.linalg.cython_blas and forward to the library chosen at
# import time by tensorgrad/_blas.py (numpy's OpenBLAS or scipy's; see blas.pyx).
cdef void sgemm(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                int* ldc) noexcept nogil
cdef void dgemm(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                int* ldc) noexcept nogil
cdef int require_blas() except -1
