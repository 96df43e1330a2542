"""Which BLAS library the GEMM kernels call.

``_kernels/blas.pyx`` calls Fortran ``sgemm``/``dgemm`` through two function pointers; this
module chooses them once, when tensorgrad is imported:

1. **numpy's own OpenBLAS** (``TENSORGRAD_BLAS=auto``, the default, or ``=numpy``). numpy's
   wheels bundle an OpenBLAS (``numpy.libs/libscipy_openblas64_*``, symbols
   ``scipy_sgemm_64_`` ...). It is already loaded by ``import numpy``, so using it adds no
   library and no second thread pool, and our GEMMs run exactly as fast as ``numpy.matmul``.
   scipy's wheels bundle another copy, often an older release: on the development machine
   (2-core AMD EPYC) scipy 1.17.1's OpenBLAS 0.3.30 took 631 µs for the training step's
   [128, 3072]·[3072, 100] sgemm, numpy 2's 0.3.31 took 497 µs.
2. **scipy's BLAS** through ``scipy.linalg.cython_blas`` (``TENSORGRAD_BLAS=scipy``, or when
   numpy's library cannot be found: numpy built against MKL, Accelerate or a system BLAS).

Idle threads: OpenBLAS's worker threads busy-wait for 2^28 cycles (~0.1 s) after each
multi-threaded call before they sleep. Our OpenMP loops run between GEMMs, so on a 2-core
machine they found one core taken by a spinning BLAS worker: right after a GEMM a 2-thread
multiply of 2.4M floats took 800 µs instead of 425, and two threads never beat one. When
tensorgrad uses numpy's OpenBLAS it therefore shortens that wait to 2^12 cycles (a few µs)
through OpenBLAS's own ``OPENBLAS_THREAD_TIMEOUT`` setting, applied at run time with
``openblas_read_env()`` and a restart of the (idle) pool, as in this module's ``_quiet``.
OpenBLAS 0.3.34 (numpy 2.5's wheels) no longer exports those two functions; they are still in
the library's symbol table, where ``_local_functions`` finds them (Linux, ELF). Where they
cannot be found the workers keep OpenBLAS's default, and ``tg.show_config()`` says so.
That is the same policy as ``OMP_WAIT_POLICY=passive`` for our own threads; an
``OPENBLAS_THREAD_TIMEOUT`` you set yourself wins (and is applied the same way, even if you
set it after numpy was imported). With the short wait the benchmark training step takes
1.80 ms instead of 1.97 ms on the development machine.

A candidate library is checked as soon as it is installed: its integer width is read from
``openblas_get_config()`` (``USE64BITINT`` = ILP64) first, then a small product with every
transpose combination is compared with an exact result; on a mismatch the previous library
is put back and scipy's is used. ``select`` is not thread-safe (no GEMM may run while it
switches); tensorgrad calls it once, at import.
``tg.show_config()`` prints the choice.
"""
import ctypes
import glob
import mmap
import os
import struct
import threading
import warnings

import numpy as np

from tensorgrad._kernels import blas as BK

__all__ = ["idle_policy", "provider", "select"]

_CHOICES = ("auto", "numpy", "scipy")
THREAD_TIMEOUT = 12      # log2 of the cycles an idle OpenBLAS worker spins before sleeping
_state = {"lib": None, "timeout": None}
# (symbol prefix, suffix) spellings of OpenBLAS builds: numpy 2 wheels, scipy wheels, plain.
_AFFIXES = (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", ""))


def _numpy_openblas_files():
    """Paths of the OpenBLAS libraries bundled in numpy's wheel (Linux, macOS, Windows)."""
    pkg = os.path.dirname(os.path.abspath(np.__file__))
    patterns = [os.path.join(pkg + ".libs", "*openblas*"),        # auditwheel / delvewheel
                os.path.join(pkg, ".dylibs", "*openblas*")]        # delocate (macOS)
    return sorted({p for pat in patterns for p in glob.glob(pat)})


def _open_openblas(path):
    """(library, its pool controls or None, (label, sgemm address, dgemm address, ilp64))
    for an OpenBLAS file, or None."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix, suffix in _AFFIXES:
        try:
            s = getattr(lib, f"{prefix}sgemm_{suffix}")
            d = getattr(lib, f"{prefix}dgemm_{suffix}")
            get_config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
        except AttributeError:
            continue
        get_config.restype = ctypes.c_char_p
        config = (get_config() or b"").decode("ascii", "replace").strip()
        words = config.split()           # "OpenBLAS 0.3.31.188.0  USE64BITINT DYNAMIC_ARCH ..."
        ilp64 = "USE64BITINT" in words
        version = words[1] if len(words) > 1 else "?"
        label = (f"numpy's OpenBLAS {version} ({'ILP64' if ilp64 else 'LP64'}, "
                 f"{os.path.basename(path)})")
        return (lib, _openblas_pool_controls(lib, path, prefix, suffix),
                (label, ctypes.cast(s, ctypes.c_void_p).value,
                 ctypes.cast(d, ctypes.c_void_p).value, ilp64))
    return None


def _local_functions(path, lib, names, anchor):
    """Addresses of functions that ``lib`` (loaded from ``path``) does not export, read from
    its ELF symbol table: {name: address} for the names found, {} if there is none.

    The load offset is taken from ``anchor``, a symbol the library does export.
    """
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:     # 64-bit little-endian only
                return {}
            shoff, = struct.unpack_from("<Q", m, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", m, 0x3A)
            sections = [struct.unpack_from("<IIQQQQIIQQ", m, shoff + i * shentsize)
                        for i in range(shnum)]
            wanted = {n.encode() for n in names} | {anchor.encode()}
            values = {}
            for _, sh_type, _, _, off, size, link, _, _, entsize in sections:
                if sh_type != 2 or not entsize:                     # SHT_SYMTAB
                    continue
                stroff = sections[link][4]
                for pos in range(off, off + size, entsize):
                    st_name, st_info = struct.unpack_from("<IB", m, pos)
                    if st_info & 0xF != 2:                          # STT_FUNC
                        continue
                    end = m.find(b"\0", stroff + st_name)
                    name = m[stroff + st_name:end]
                    if name in wanted:
                        values[name.decode()] = struct.unpack_from("<Q", m, pos + 8)[0]
    except (OSError, ValueError, struct.error, IndexError):
        return {}
    if anchor not in values:
        return {}
    base = ctypes.cast(getattr(lib, anchor), ctypes.c_void_p).value - values[anchor]
    return {n: base + values[n] for n in names if n in values}


def _openblas_pool_controls(lib, path, prefix, suffix):
    """(read_env, shutdown) C functions of an OpenBLAS, or None where it has neither."""
    read_env = getattr(lib, "openblas_read_env", None)
    shutdown = getattr(lib, "blas_thread_shutdown_", None)
    if read_env is not None and shutdown is not None:
        return read_env, shutdown
    found = _local_functions(path, lib, ("openblas_read_env", "blas_thread_shutdown_"),
                             anchor=f"{prefix}sgemm_{suffix}")
    if len(found) != 2:
        return None
    proto = ctypes.CFUNCTYPE(None)
    return proto(found["openblas_read_env"]), proto(found["blas_thread_shutdown_"])


def _quiet(controls):
    """Make ``lib``'s idle worker threads sleep after 2^THREAD_TIMEOUT cycles instead of
    2^28 (see the module docstring), or after your ``OPENBLAS_THREAD_TIMEOUT`` when it is
    set. Returns the timeout in effect, as text."""
    user = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if controls is None:
        return "OpenBLAS default (this build cannot change it at run time)"
    read_env, shutdown = controls
    if threading.active_count() > 1:
        # Another thread might be inside a BLAS call: restarting the pool under it is not
        # safe, so the library keeps what it read at load time. (Only Python threads are
        # seen; import tensorgrad before starting threads that use BLAS.)
        return "unchanged (other threads were running when tensorgrad was imported)"
    if user is None:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(THREAD_TIMEOUT)
    try:
        read_env()          # OpenBLAS re-reads its settings from the environment
    finally:
        if user is None:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    shutdown()              # the pool restarts with the new timeout at the next call
    if user is not None:
        return f"2^{user} cycles (OPENBLAS_THREAD_TIMEOUT, yours)"
    return f"2^{THREAD_TIMEOUT} cycles (set by tensorgrad)"


def _install_scipy():
    import scipy
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    BK.set_gemm(f"scipy's BLAS (scipy {scipy.__version__}, scipy.linalg.cython_blas)",
                 BK.capsule_address(capi["sgemm"]), BK.capsule_address(capi["dgemm"]),
                 False)


def _works():
    """The installed GEMM gets a small product right for every transpose combination."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.integers(-4, 5, (5, 3)).astype(dtype)
        b = rng.integers(-4, 5, (3, 4)).astype(dtype)
        want = (a[:, :, None] * b[None, :, :]).sum(axis=1)       # exact: small integers
        for aa in (a, np.asfortranarray(a)):
            for bb in (b, np.asfortranarray(b)):
                out = np.full((5, 4), np.nan, dtype)
                BK.gemm(aa, bb, out)
                if not np.array_equal(out, want):
                    return False
    return True


def select(choice=None):
    """Install the GEMM library: ``choice`` or ``$TENSORGRAD_BLAS`` ('auto', 'numpy',
    'scipy'; default 'auto' = numpy's OpenBLAS if usable, else scipy's). Returns its name."""
    if choice is None:
        choice = os.environ.get("TENSORGRAD_BLAS", "auto").strip().lower() or "auto"
        if choice not in _CHOICES:
            warnings.warn(f"TENSORGRAD_BLAS={choice!r} is not one of {', '.join(_CHOICES)}; "
                          "using 'auto'", RuntimeWarning, stacklevel=2)
            choice = "auto"
    elif choice not in _CHOICES:
        raise ValueError(f"BLAS choice must be one of {', '.join(_CHOICES)}, got {choice!r}")
    previous = BK.get_gemm()
    if choice != "scipy":
        files = _numpy_openblas_files()
        found = _open_openblas(files[0]) if len(files) == 1 else None
        if found is not None:
            lib, controls, gemm = found
            BK.set_gemm(*gemm)
            if _works():
                if _state["lib"] is None:
                    _state["lib"] = lib
                    _state["timeout"] = _quiet(controls)
                return provider()
            if previous is not None:        # never leave a library that failed installed
                BK.set_gemm(*previous)
            else:
                BK.clear_gemm()
        if choice == "numpy":
            warnings.warn("TENSORGRAD_BLAS=numpy: numpy's bundled OpenBLAS was not found or "
                          "failed its check; using scipy's BLAS", RuntimeWarning, stacklevel=2)
    _install_scipy()
    return provider()


def provider():
    """Name of the BLAS library the GEMM kernels call."""
    return BK.gemm_provider()


def idle_policy():
    """How long numpy's OpenBLAS workers spin when idle (None when the GEMMs do not use it)."""
    if not (provider() or "").startswith("numpy's OpenBLAS"):
        return None
    return _state["timeout"]
