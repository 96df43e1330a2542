"""The executor of planned Graph replay: a flat sequence of steps run by one C loop.

A step is either a taped kernel call (the address of a C function and the record it runs,
see ``_driver.pxi`` and ``blas.pyx``) or a Python callable, for what has no kernel record
(custom Functions, ops that compute with numpy). ``tensorgrad/replay.py`` builds the steps;
this module only runs them, creating no Python objects for kernel steps.
"""
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.stdint cimport uintptr_t

ctypedef void (*kernel_fn)(const char*) noexcept

cdef extern from "Python.h":
    object PyObject_CallNoArgs(object func)


cdef class Steps:
    """An immutable list of steps; ``run()`` executes them in order.

    Built from a list whose items are ``(address, record_bytes, keepalive)`` kernel steps
    or Python callables taking no argument. The list (and so every record, array and
    callable) is kept alive by this object.
    """
    cdef Py_ssize_t n
    cdef kernel_fn* fns
    cdef const char** recs
    cdef PyObject** pys
    cdef readonly tuple items
    cdef readonly Py_ssize_t n_kernel

    def __cinit__(self, items):
        self.items = tuple(items)
        self.n = len(self.items)
        self.fns = <kernel_fn*>PyMem_Malloc(max(self.n, 1) * sizeof(kernel_fn))
        self.recs = <const char**>PyMem_Malloc(max(self.n, 1) * sizeof(char*))
        self.pys = <PyObject**>PyMem_Malloc(max(self.n, 1) * sizeof(PyObject*))
        if self.fns == NULL or self.recs == NULL or self.pys == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        self.n_kernel = 0
        for i in range(self.n):
            it = self.items[i]
            if type(it) is tuple:
                addr, rec, _keep = it
                if type(rec) is not bytes:
                    raise TypeError("Steps: a kernel step's record must be bytes")
                self.fns[i] = <kernel_fn><uintptr_t>addr
                self.recs[i] = PyBytes_AS_STRING(rec)
                self.pys[i] = NULL
                self.n_kernel += 1
            elif callable(it):
                self.fns[i] = NULL
                self.recs[i] = NULL
                self.pys[i] = <PyObject*>it        # owned by self.items
            else:
                raise TypeError(f"Steps: a step is a kernel record or a callable, "
                                f"got {type(it).__name__}")

    def __dealloc__(self):
        PyMem_Free(self.fns)
        PyMem_Free(self.recs)
        PyMem_Free(self.pys)

    def __len__(self):
        return self.n

    def run(self):
        """Execute every step in order (a Python step's exception propagates)."""
        cdef Py_ssize_t i
        cdef kernel_fn f
        for i in range(self.n):
            f = self.fns[i]
            if f != NULL:
                f(self.recs[i])
            else:
                PyObject_CallNoArgs(<object>self.pys[i])
