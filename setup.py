"""Build the typed Cython kernels in tensorgrad/_kernels/.

Every ``tensorgrad/_kernels/*.pyx`` becomes one extension module. OpenMP is detected
by compiling and linking a tiny program with ``-fopenmp``; on success every extension
gets the flag, otherwise the kernels build single-threaded and one warning is printed
(``tg.show_config()`` reports which happened).

Environment switches:
  TENSORGRAD_DEBUG=1      re-enable Cython bounds/wraparound checks (debugging)
  TENSORGRAD_NO_OPENMP=1  build without OpenMP even if the compiler supports it
  TENSORGRAD_NATIVE=1     add -march=native (faster, but the wheel is not portable)
  TENSORGRAD_ONLY=a,b     build only these kernel modules (development convenience)
  TENSORGRAD_PURE_PYTHON=1  do not compile the autograd engine's Python modules

Besides the kernels, the modules on the per-op hot path (the Tensor, Function/Context, the
backward engine and the core op families) are compiled by Cython *as plain Python*: the
source is unchanged and still ships in the wheel, but the interpreter overhead of each op
roughly halves, which is what tiny-tensor workloads pay for. Python semantics are kept
(no boundscheck/wraparound/cdivision changes for these modules).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_DIR = os.path.join("tensorgrad", "_kernels")

OMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _compiler_has_openmp(compiler):
    """Try to compile and link a tiny OpenMP program with the compiler setuptools will use."""
    if os.environ.get("TENSORGRAD_NO_OPENMP"):
        return False
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(OMP_TEST)
        objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
        compiler.link_executable(objs, "omp_test", output_dir=tmp, extra_postargs=["-fopenmp"])
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self):
        has_omp = _compiler_has_openmp(self.compiler)
        if not has_omp:
            print("tensorgrad: WARNING: the compiler does not support OpenMP; "
                  "building single-threaded kernels", file=sys.stderr)
        cc = " ".join(getattr(self.compiler, "compiler_so", []) or ["unknown"])
        macros = [("TG_BUILD_OPENMP", "1" if has_omp else "0"),
                  ("TG_BUILD_COMPILER", '"' + cc.split()[0].replace("\\", "/") + '"')]
        for ext in self.extensions:
            ext.define_macros.extend(macros)
            if has_omp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
        super().build_extensions()


def extensions():
    debug = bool(os.environ.get("TENSORGRAD_DEBUG"))
    # -fno-math-errno: no kernel reads errno, and without it GCC will not vectorise sqrt
    # (the Adam update is ~4x faster with it). NaN/inf semantics are unchanged.
    cflags = ["-O3", "-fno-math-errno"] if sys.platform != "win32" else ["/O2"]
    if os.environ.get("TENSORGRAD_NATIVE"):
        cflags.append("-march=native")
    only = {m for m in os.environ.get("TENSORGRAD_ONLY", "").split(",") if m}
    exts = []
    for pyx in sorted(glob.glob(os.path.join(KERNEL_DIR, "*.pyx"))):
        if only and os.path.splitext(os.path.basename(pyx))[0] not in only:
            continue
        name = os.path.splitext(pyx)[0].replace(os.sep, ".")
        exts.append(Extension(
            name, [pyx],
            include_dirs=[np.get_include(), KERNEL_DIR],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=list(cflags),
            extra_link_args=[],
        ))
    # Directives are set once here for every kernel module.
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": True,
        "nonecheck": False,
        "embedsignature": True,
    }
    ext_modules = cythonize(exts, compiler_directives=directives, quiet=True)
    if not only and not os.environ.get("TENSORGRAD_PURE_PYTHON"):
        py_exts = [Extension(m[:-3].replace("/", "."), [m], extra_compile_args=["-O2"])
                   for m in HOT_PY_MODULES]
        ext_modules += cythonize(py_exts, compiler_directives={"language_level": 3,
                                                               "binding": True},
                                 quiet=True)
    return ext_modules


# Pure-Python modules compiled for speed (see the module docstring). Keep this list to
# modules on the per-op path; everything else stays interpreted.
HOT_PY_MODULES = [
    "tensorgrad/tensor.py",
    "tensorgrad/function.py",
    "tensorgrad/graph.py",
    "tensorgrad/ops/_util.py",
    "tensorgrad/ops/elementwise.py",
    "tensorgrad/ops/activation.py",
    "tensorgrad/ops/reduce.py",
    "tensorgrad/ops/shape.py",
    "tensorgrad/ops/blas.py",
]


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
