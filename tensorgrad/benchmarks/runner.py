"""Run workloads: same threads for every engine, warm-up, repetitions, the result check and
peak memory. Produces ``Row`` objects; ``report`` turns them into tables and files."""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import math
import statistics
import sys
import time
import tracemalloc

import numpy as np

from tensorgrad.benchmarks.base import ENGINES, Skip, compare

__all__ = ["Measurement", "Row", "gemm_peak", "measure_memory", "run", "run_workload",
           "set_threads", "snapshot"]

MAX_NUMBER = 100_000          # calls per repetition, at most
_limits = {}                  # keeps the threadpoolctl limiter alive


@dataclasses.dataclass
class Measurement:
    """One engine on one workload. Times are seconds per call."""
    engine: str
    status: str = "ok"                  # ok | skipped | error
    reason: str = ""
    median: float | None = None
    min: float | None = None
    times: list = dataclasses.field(default_factory=list)   # one per repetition
    number: int = 0                     # calls averaged in each repetition
    mem_traced: int | None = None    # peak bytes seen by tracemalloc during one call
    mem_rss: int | None = None       # rise of the RSS high-water mark during one call


@dataclasses.dataclass
class Row:
    """One workload at one thread count: a measurement per engine and the check verdict."""
    workload: str
    group: str
    title: str
    size: str
    threads: int
    quick: bool
    per: int = 1
    per_unit: str = "call"
    status: str = "ok"                  # ok | WRONG | skipped | error
    reason: str = ""
    checks: dict = dataclasses.field(default_factory=dict)  # engine -> "ok" | mismatch text
    measurements: dict = dataclasses.field(default_factory=dict)
    flops: float | None = None          # floating-point operations per call, if known
    gemm_peak: float | None = None      # numpy's float32 GEMM FLOP/s at these threads

    def gflops(self, engine):
        """``engine``'s GFLOP/s (from its median time), or None."""
        m = self.measurements.get(engine)
        if not self.flops or m is None or m.status != "ok" or not m.median:
            return None
        return self.flops / m.median / 1e9

    def ratio(self, engine):
        """``engine``'s time / tensorgrad's (> 1: tensorgrad is faster), or None: the median
        of the ratios of the repetitions the two ran side by side, when both have them all
        (the runner times the engines in turns), else the ratio of the median times."""
        a = self.measurements.get(engine)
        b = self.measurements.get("tensorgrad")
        if a is None or b is None or a.status != "ok" or b.status != "ok" or not b.median:
            return None
        if a.times and len(a.times) == len(b.times) and all(b.times):
            return statistics.median(x / y for x, y in zip(a.times, b.times))
        return a.median / b.median

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["ratios"] = {e: self.ratio(e) for e in self.measurements if e != "tensorgrad"}
        return d


def set_threads(n):
    """The same thread count for tensorgrad (OpenMP + BLAS), every BLAS/OpenMP pool that
    threadpoolctl finds (numpy's and scikit-learn's) and torch, if it is imported."""
    import tensorgrad as tg
    tg.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:     # tensorgrad's own setting above still holds
        threadpool_limits = None
    if threadpool_limits is not None:
        _limits["all"] = threadpool_limits(limits=n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


_peaks = {}                   # thread count -> measured sgemm FLOP/s


def gemm_peak(threads, n=2048, repeat=5):
    """The machine's float32 GEMM peak in FLOP/s: the best of ``repeat`` numpy n×n·n×n
    products at ``threads`` threads (measured once per thread count and process)."""
    if threads not in _peaks:
        set_threads(threads)
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), np.float32)
        np.matmul(a, b, out=out)                    # warm-up
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
        _peaks[threads] = 2.0 * n ** 3 / best
    return _peaks[threads]


def snapshot(res):
    """A private copy of a run's results: later calls may overwrite the buffers."""
    return {k: (float(v) if np.isscalar(v) else np.array(v, copy=True)) for k, v in res.items()}


def _proc_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm():
    """Reset the RSS high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim():
    # Return freed heap pages to the OS first, so the high-water mark sees new allocations.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(fn, traced=True):
    """(tracemalloc peak, RSS high-water rise) in bytes over one call of ``fn``; either is
    None when unavailable. tracemalloc sees numpy-allocated buffers (numpy, tensorgrad,
    scikit-learn arrays), the RSS mark sees everything (torch, C workspaces) but is coarser."""
    gc.collect()
    _malloc_trim()
    rss0 = _proc_kb("VmRSS")
    has_hwm = _reset_hwm()
    tracemalloc.start()
    try:
        res = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    hwm = _proc_kb("VmHWM")
    del res
    rss = hwm - rss0 if has_hwm and hwm is not None and rss0 is not None else None
    return (peak if traced else None), (max(rss, 0) if rss is not None else None)


def _error_text(e):
    return f"{type(e).__name__}: {e}".splitlines()[0][:300]


def _prepare(wl, engine, data, params, warmup, min_time):
    """Set one engine up and warm it: ``(Measurement, fn, [results of the first check_calls
    calls])``; fn is None when the engine was skipped or failed (the Measurement says why).
    ``Measurement.number`` is set to the calls that last ``min_time``."""
    m = Measurement(engine)
    try:
        fn = wl.impls[engine](data, params)
    except Skip as e:
        m.status, m.reason = "skipped", str(e)
        return m, None, None
    except Exception as e:  # noqa: BLE001 - any failure of an engine is reported in its row
        m.status, m.reason = "error", f"set-up failed: {_error_text(e)}"
        return m, None, None
    checked = []
    try:
        dt = 0.0
        for i in range(max(warmup, wl.check_calls, 1)):
            t0 = time.perf_counter()
            res = fn()
            dt = time.perf_counter() - t0
            if i < wl.check_calls:
                checked.append(snapshot(res))
            del res
    except Exception as e:  # noqa: BLE001 - as above: the report shows the error
        m.status, m.reason = "error", _error_text(e)
        return m, None, None
    m.number = max(1, min(MAX_NUMBER, math.ceil(min_time / max(dt, 1e-9))))
    return m, fn, checked


def _time_block(fn, number):
    """Seconds per call over ``number`` back-to-back calls (the garbage collector off)."""
    gc.collect()
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was_on:
            gc.enable()


def _time_interleaved(ready, repeat):
    """Time every engine ``repeat`` times, taking turns: repetition i of each engine runs
    next to repetition i of the others, so that a change in the machine's load (it is
    shared) falls on all of them and the per-repetition ratios stay comparable.
    ``ready``: engine -> (Measurement, fn). An engine that raises is marked as an error and
    dropped from the later turns."""
    times = {e: [] for e in ready}
    for _ in range(repeat):
        for engine, (m, fn) in ready.items():
            if m.status != "ok":
                continue
            try:
                times[engine].append(_time_block(fn, m.number))
            except Exception as e:  # noqa: BLE001 - as above
                m.status, m.reason = "error", _error_text(e)
    for engine, (m, _) in ready.items():
        if m.status == "ok":
            m.times = times[engine]
            m.median, m.min = statistics.median(m.times), min(m.times)


def _measure_memory(wl, engine, data, params, m):
    """Peak memory of one call of a fresh instance: buffers the timed instance still holds
    from its last call (e.g. .grad) would otherwise be recycled and hide the allocation."""
    try:
        fresh = wl.impls[engine](data, params)
        m.mem_traced, m.mem_rss = measure_memory(fresh, traced=engine != "torch")
    except Exception as e:  # noqa: BLE001 - as above
        m.status, m.reason = "error", _error_text(e)
    finally:
        fresh = None
        gc.collect()


def _check(wl, row, results):
    """Compare tensorgrad's results with every other engine's; sets row.status/checks."""
    mine = results.get("tensorgrad")
    if mine is None:
        return
    wrong = []
    for engine, ref in results.items():
        if engine == "tensorgrad":
            continue
        if engine in wl.floor:
            row.checks[engine] = "floor (a cost bound, not compared)"
            continue
        verdict = "ok"
        for call, (got, expected) in enumerate(zip(mine, ref), 1):
            msg = compare(got, expected, wl.rtol, wl.atol, wl.int_mismatch)
            if msg:
                verdict = f"call {call}: {msg}" if wl.check_calls > 1 else msg
                wrong.append(f"vs {engine}: {verdict}")
                break
        row.checks[engine] = verdict
    if wrong:
        row.status = "WRONG"
        row.reason = "tensorgrad disagrees " + "; ".join(wrong)
    elif not row.checks:
        row.reason = "unchecked: no other engine produced results"


def run_workload(wl, *, quick=False, threads=1, repeat=5, warmup=1, engines=ENGINES,
                 min_time=0.05, seed=0, progress=None):
    """Measure every available engine of ``wl`` at ``threads`` threads; returns a Row."""
    params = wl.sizes(quick)
    order = [e for e in ENGINES if e in wl.impls and e in engines]
    row = Row(wl.name, wl.group, wl.title, wl.size(params), threads, quick, wl.per, wl.per_unit)
    missing = wl.missing()
    if missing or "tensorgrad" not in order:
        row.status = "skipped"
        row.reason = missing or "the tensorgrad engine was not selected"
        if progress is not None:
            progress.update(len(order))
        return row
    if wl.flops is not None:
        row.flops = float(wl.flops(params))
        row.gemm_peak = gemm_peak(threads)
    set_threads(threads)
    data = wl.data(params, np.random.default_rng(seed))
    results, ready = {}, {}
    for engine in order:
        if progress is not None:
            progress.set_description(f"{wl.name} · {engine} · {threads} thr")
        m, fn, res = _prepare(wl, engine, data, params, warmup, min_time)
        row.measurements[engine] = m
        if fn is not None:
            ready[engine] = (m, fn)
            results[engine] = res
    if progress is not None:
        progress.set_description(f"{wl.name} · timing · {threads} thr")
    _time_interleaved(ready, repeat)
    ready = fn = None
    gc.collect()
    for engine in order:
        m = row.measurements[engine]
        if wl.memory and m.status == "ok":
            _measure_memory(wl, engine, data, params, m)
        if m.status != "ok":
            results.pop(engine, None)
        if progress is not None:
            progress.update(1)
    tg = row.measurements["tensorgrad"]
    if tg.status != "ok":
        row.status, row.reason = tg.status, tg.reason
    else:
        _check(wl, row, results)
    return row


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, text):
        pass

    def close(self):
        pass


def run(workloads, *, quick=False, threads=(1,), repeat=5, warmup=1, engines=ENGINES,
        min_time=0.05, progress=True):
    """Run ``workloads`` at each thread count in ``threads``; returns the list of Rows
    (thread counts outer, workloads inner). A tqdm progress bar goes to stderr."""
    total = sum(len([e for e in ENGINES if e in w.impls and e in engines])
                for w in workloads) * len(threads)
    bar = _NoBar()
    if progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, file=sys.stderr, unit="case", dynamic_ncols=True)
        except ImportError:
            pass
    rows = []
    try:
        for n in threads:
            for wl in workloads:
                rows.append(run_workload(wl, quick=quick, threads=n, repeat=repeat,
                                         warmup=warmup, engines=engines, min_time=min_time,
                                         progress=bar))
    finally:
        bar.close()
    return rows
