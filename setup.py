"""Build the typed Cython kernels in tensorgrad/_kernels/.

Every ``tensorgrad/_kernels/*.pyx`` becomes one extension module. OpenMP is detected
by compiling and linking a tiny program with ``-fopenmp``; on success every extension
gets the flag, otherwise the kernels build single-threaded and one warning is printed
(``tg.show_config()`` reports which happened).

Besides the kernels, the modules on the per-op hot path (the Tensor, Function/Context, the
backward engine and the core op families, ``HOT_PY_MODULES``) are compiled by Cython *as
plain Python*: the source is unchanged and still ships in the wheel, but the interpreter
overhead of each op drops by about a third, which is what tiny-tensor workloads pay for.
Python semantics are kept (no boundscheck/wraparound/cdivision changes for these modules).
An in-place or editable build (``pip install -e .``, ``build_ext --inplace``) does *not*
compile them, so that a developer's edits to those files take effect; it says so in one line.

How the build is kept fast and the wheel small:
- Cython runs inside ``build_ext`` (not when setup.py is imported, so pip's metadata step
  does not translate everything once more), in parallel, writing its C under ``build/``
  so that no generated C lands in the package or the wheel;
- the C compiler runs on all cores (``build_ext --parallel``, default: every core);
- no debug information (``-g0``) and, on Linux, stripped shared objects.

Environment switches:
  TENSORGRAD_DEBUG=1      re-enable Cython bounds/wraparound checks, keep debug info
  TENSORGRAD_NO_OPENMP=1  build without OpenMP even if the compiler supports it
  TENSORGRAD_NATIVE=1     add -march=native (faster, but the wheel is not portable)
  TENSORGRAD_ONLY=a,b     build only these kernel modules (development convenience)
  TENSORGRAD_PURE_PYTHON=1  do not compile the autograd engine's Python modules
"""
import glob
import os
import shutil
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_DIR = os.path.join("tensorgrad", "_kernels")
CYTHON_C_DIR = os.path.join("build", "cython")
# Cython's utility code (memoryviews, function objects ...) is generated once, into this
# module, instead of into every extension: a fifth less C to compile.
SHARED_UTILITY = "tensorgrad._kernels._cyutility"
DEBUG = bool(os.environ.get("TENSORGRAD_DEBUG"))

# Pure-Python modules compiled for speed (see the module docstring). Keep this list to
# modules on the per-op path; everything else stays interpreted.
HOT_PY_MODULES = [
    "tensorgrad/_tensor.py",
    "tensorgrad/function.py",
    "tensorgrad/graph.py",
    "tensorgrad/ops/_util.py",
    "tensorgrad/ops/cast.py",
    "tensorgrad/ops/_promote.py",
    "tensorgrad/ops/elementwise.py",
    "tensorgrad/ops/activation.py",
    "tensorgrad/ops/reduce.py",
    "tensorgrad/ops/shape.py",
    "tensorgrad/ops/index.py",
    "tensorgrad/ops/matmul.py",
]

OMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""

# Cython directives, set once for every kernel module.
KERNEL_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}
# The hot Python modules keep Python semantics; binding=True keeps them introspectable.
HOT_PY_DIRECTIVES = {"language_level": 3, "binding": True}


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


def _compile_flags(level):
    """(compile flags, link flags) at optimisation ``level`` (an int), the same debug and
    strip policy for every extension."""
    if sys.platform == "win32":
        return [f"/O{min(level, 2)}"], []
    cflags, ldflags = [f"-O{level}"], []
    if not DEBUG:
        cflags.append("-g0")             # overrides the -g that Python's own CFLAGS carry
        if sys.platform.startswith("linux"):
            ldflags.append("-s")         # strip the shared objects (PyInit_* stays exported)
    return cflags, ldflags


def _kernel_flags():
    # -fno-math-errno: no kernel reads errno, and without it GCC will not vectorise sqrt
    # (the Adam update is ~4x faster with it). NaN/inf semantics are unchanged.
    # -ffp-contract=off: every product is rounded before it is added, as when a separate
    # kernel stored it, so planned replay's fused steps (tensorgrad/_fuse.py) give bitwise
    # the eager values, and -march=native builds (FMA) the same numbers as portable ones.
    cflags, ldflags = _compile_flags(3)
    if sys.platform != "win32":
        cflags += ["-fno-math-errno", "-ffp-contract=off"]
    if os.environ.get("TENSORGRAD_NATIVE"):
        cflags.append("-march=native")
    return cflags, ldflags


def kernel_extensions():
    """One Extension per ``_kernels/*.pyx`` (sources still .pyx: Cython runs in build_ext)."""
    import numpy as np

    cflags, ldflags = _kernel_flags()
    only = {m for m in os.environ.get("TENSORGRAD_ONLY", "").split(",") if m}
    cyflags, cylink = _compile_flags(2)
    exts = [Extension(SHARED_UTILITY, [os.path.join(KERNEL_DIR, "_cyutility.c")],
                      extra_compile_args=cyflags, extra_link_args=cylink)]
    for pyx in sorted(glob.glob(os.path.join(KERNEL_DIR, "*.pyx"))):
        if only and os.path.splitext(os.path.basename(pyx))[0] not in only:
            continue
        exts.append(Extension(
            os.path.splitext(pyx)[0].replace(os.sep, "."), [pyx],
            include_dirs=[np.get_include(), KERNEL_DIR],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=list(cflags),
            extra_link_args=list(ldflags),
        ))
    return exts


def hot_py_extensions():
    if os.environ.get("TENSORGRAD_ONLY") or os.environ.get("TENSORGRAD_PURE_PYTHON"):
        return []
    # -O1: this C is almost all calls into the CPython API, where -O2 buys 2% in instructions
    # per tiny op (callgrind) but doubles the compile time of the largest files.
    cflags, ldflags = _compile_flags(1)
    return [Extension(m[:-3].replace("/", "."), [m], extra_compile_args=list(cflags),
                      extra_link_args=list(ldflags))
            for m in HOT_PY_MODULES]


def _remove_compiled_twins(exts):
    """Delete compiled copies of these Python modules left in the source tree by an earlier
    build: Python would import them instead of the .py files being edited."""
    for ext in exts:
        base = os.path.splitext(ext.sources[0])[0]
        for stale in glob.glob(base + ".*.so") + glob.glob(base + ".*.pyd"):
            print(f"tensorgrad: removing {stale} (a compiled copy of {ext.sources[0]})",
                  file=sys.stderr)
            os.remove(stale)


class BuildExt(build_ext):
    """Detect OpenMP, run Cython (in parallel), then compile every extension in parallel."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None or self.parallel is True:
            self.parallel = os.cpu_count() or 1

    def run(self):
        # setuptools clears `inplace` while it builds (it copies the results afterwards),
        # so remember here whether this is an in-place or editable build.
        self._in_place = bool(self.inplace or getattr(self, "editable_mode", False))
        super().run()

    def build_extensions(self):
        from Cython.Build import cythonize

        hot = {m[:-3].replace("/", ".") for m in HOT_PY_MODULES}
        kernels = [e for e in self.extensions if e.name not in hot]
        hot_py = [e for e in self.extensions if e.name in hot]
        if hot_py and self._in_place:
            print("tensorgrad: in-place/editable build: the engine's Python modules are NOT "
                  "compiled, so edits to them take effect (per-op overhead is higher than in "
                  "a wheel)", file=sys.stderr)
            _remove_compiled_twins(hot_py)
            hot_py = []
        nthreads = self.parallel if isinstance(self.parallel, int) else 0
        common = {"quiet": True, "nthreads": nthreads, "build_dir": CYTHON_C_DIR,
                  "shared_utility_qualified_name": SHARED_UTILITY}
        translated = cythonize(kernels, compiler_directives=KERNEL_DIRECTIVES, **common)
        if hot_py:
            translated += cythonize(hot_py, compiler_directives=HOT_PY_DIRECTIVES, **common)
        # Keep setuptools' own Extension objects (finalize_options annotated them); only their
        # sources change, from .pyx/.py to the generated C.
        c_sources = {e.name: e.sources for e in translated}
        self.extensions = [e for e in self.extensions if e.name in c_sources]
        for ext in self.extensions:
            ext.sources = c_sources[ext.name]
        # Largest C first, so that the parallel compile does not end on one long file.
        self.extensions.sort(key=lambda e: -os.path.getsize(e.sources[0]))

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


if __name__ == "__main__":          # setuptools runs this file as __main__; tests import it
    setup(ext_modules=kernel_extensions() + hot_py_extensions(),
          cmdclass={"build_ext": BuildExt})
