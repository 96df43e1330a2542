"""Typed Cython kernels (one extension module per op family). See each .pyx for its design."""
