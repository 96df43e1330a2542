"""Scratch timings of the elementwise / activation / reduce kernels against numpy.

Not a test and not part of the benchmark suite: run it by hand while tuning kernels,
    python tools/bench_kernels.py [--threads N] [--repeat R] [--n N]
Each figure is the best of R runs (the machine is shared, so the minimum is the most
stable statistic); numpy and the kernel alternate so both see the same machine state.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

# The kernels being tuned are the checkout's, built in place (python setup.py build_ext
# --inplace): put the checkout ahead of any installed tensorgrad.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tensorgrad._kernels import activation as AK
from tensorgrad._kernels import elementwise as EK
from tensorgrad._kernels import reduce as RK
from tensorgrad._kernels import runtime


def best_of(fns, repeat, inner=1):
    """Best time in seconds per call of each function, running them in alternation."""
    best = [float("inf")] * len(fns)
    for f in fns:
        f()                                         # warm up (page faults, thread pool)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            best[i] = min(best[i], (time.perf_counter() - t0) / inner)
    return best


def row(name, ours, ref, unit="ms", scale=1e3):
    print(f"{name:<34} ours {ours * scale:9.3f} {unit}   numpy {ref * scale:9.3f} {unit}"
          f"   speedup {ref / ours:5.2f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=runtime.get_num_threads())
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--n", type=int, default=16 * 1024 * 1024,
                   help="elements of the large arrays (a multiple of 4096: the reductions "
                        "view them as [4096, n / 4096])")
    args = p.parse_args()
    if args.n <= 0 or args.n % 4096:
        p.error(f"--n must be a positive multiple of 4096, got {args.n}")
    runtime.set_num_threads(args.threads)
    print(f"threads={runtime.get_num_threads()} par_min={runtime.par_min()} n={args.n} float32")

    rng = np.random.default_rng(0)
    n, r = args.n, args.repeat
    a = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    out = np.empty_like(a)
    gx = np.empty_like(a)

    ours, ref = best_of([lambda: EK.binary(EK.ADD, a, b, out),
                         lambda: np.add(a, b, out=out)], r)
    row("add", ours, ref)
    ours, ref = best_of([lambda: EK.binary(EK.MUL, a, b, out),
                         lambda: np.multiply(a, b, out=out)], r)
    row("mul", ours, ref)

    def relu_ours():
        AK.relu_forward(a, out)
        AK.relu_backward(b, out, gx)

    def relu_numpy():
        np.maximum(a, 0, out=out)
        np.multiply(b, out > 0, out=gx)

    ours, ref = best_of([lambda: AK.relu_forward(a, out), lambda: np.maximum(a, 0, out=out)], r)
    row("relu forward", ours, ref)
    ours, ref = best_of([lambda: AK.relu_backward(b, out, gx),
                         lambda: np.multiply(b, out > 0, out=gx)], r)
    row("relu backward", ours, ref)
    ours, ref = best_of([relu_ours, relu_numpy], r)
    row("relu forward + backward", ours, ref)

    m = a.reshape(4096, -1)
    o2 = np.empty((4096, 1), np.float32)
    ours, ref = best_of([lambda: RK.sum_mid(m.reshape(4096, -1, 1), o2),
                         lambda: np.sum(m, axis=1, keepdims=True, out=o2)], r)
    row(f"sum over last axis {list(m.shape)}", ours, ref)
    o2 = np.empty((1, m.shape[1]), np.float32)
    ours, ref = best_of([lambda: RK.sum_mid(m.reshape(1, 4096, -1), o2),
                         lambda: np.sum(m, axis=0, keepdims=True, out=o2)], r)
    row(f"sum over first axis {list(m.shape)}", ours, ref)
    ours, ref = best_of([lambda: RK.sum_all(a), lambda: np.sum(a)], r)
    row("sum_all", ours, ref)

    s = rng.standard_normal((4096, 1000), dtype=np.float32)
    y = np.empty_like(s)

    def softmax_numpy():
        e = np.exp(s - s.max(axis=1, keepdims=True))
        np.divide(e, e.sum(axis=1, keepdims=True), out=y)

    ours, ref = best_of([lambda: RK.softmax_mid(s.reshape(4096, 1000, 1), y), softmax_numpy], r)
    row("softmax [4096, 1000]", ours, ref)

    x = np.ones((4, 4), np.float32)
    z = np.ones((4, 4), np.float32)
    o = np.empty((4, 4), np.float32)
    ours, ref = best_of([lambda: EK.binary(EK.ADD, x, z, o), lambda: np.add(x, z, out=o)],
                        r, inner=20000)
    row("per-call add 4x4", ours, ref, "us", 1e6)
    ours, ref = best_of([lambda: AK.relu_forward(x, o), lambda: np.maximum(x, 0, out=o)],
                        r, inner=20000)
    row("per-call relu 4x4", ours, ref, "us", 1e6)


if __name__ == "__main__":
    main()
