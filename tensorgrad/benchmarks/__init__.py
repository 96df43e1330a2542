"""tensorgrad's benchmark suite: one registry of workloads, a runner and a report.

Design
------
* **One registry** (``registry.WORKLOADS``) feeds both front ends: ``python -m tensorgrad
  bench`` (``tensorgrad.cli.bench`` -> ``runner.run``) and the pytest-benchmark suite in the
  source tree's ``bench/``. A workload has a name, a group, full and ``--quick`` sizes, an
  untimed ``data(params, rng)`` that allocates the inputs, and up to four implementations
  keyed by engine: ``tensorgrad``, ``numpy`` (the hand-written flat forward+backward of the
  course assignments), ``torch`` (eager) and ``sklearn``.
* **An implementation is a factory**: ``make(data, params)`` does the untimed set-up (wrapping
  inputs, building models and optimisers) and returns ``run()``, the timed call. ``run()``
  returns its results (outputs, gradients, updated parameters) as a dict of arrays, so the
  runner can check tensorgrad against every other engine *inside* the benchmark: a fast wrong
  kernel is reported as WRONG, never as a speed-up. A factory raises ``Skip(reason)`` when its
  library or the tensorgrad API it needs is missing; the row then says why.
* **Fair timing**: every engine runs with the same thread count (tensorgrad's OpenMP pool,
  BLAS through threadpoolctl, ``torch.set_num_threads``); warm-up calls first, then
  repetitions of ``number`` calls each (``number`` chosen so a repetition lasts a few tens of
  milliseconds), with the garbage collector paused while the clock runs; median and minimum
  per call are reported. Peak memory (tracemalloc for numpy-backed allocations, the RSS
  high-water mark for everything) is measured in a separate, untimed call.
"""
from tensorgrad.benchmarks import registry, report, runner
from tensorgrad.benchmarks.registry import ENGINES, WORKLOADS, get_workload, select
from tensorgrad.benchmarks.runner import Measurement, Row, run, run_workload, set_threads

__all__ = ["ENGINES", "WORKLOADS", "Measurement", "Row", "get_workload", "registry", "report",
           "run", "run_workload", "runner", "select", "set_threads"]
