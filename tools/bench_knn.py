"""kneighbors against the bare sgemm of the same shape and against FAISS, in one process.

Not a test: run it by hand (issue 15's figures),
    python tools/bench_knn.py [--repeat R] [--shapes 0,1] [--manhattan]
Per repetition, the bare sgemm (numpy ``matmul`` into a preallocated output), tensorgrad's
``kneighbors`` and FAISS's ``IndexFlatL2.search`` (same thread count; skipped with a note when
faiss-cpu is not installed) run back to back; the ratios are taken per repetition and their
medians reported, so a shared machine's load affects both sides alike. ``--manhattan`` also
times ``tg.cdist(metric="manhattan")`` against ``scipy.spatial.distance.cdist(..., "cityblock")``.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorgrad as tg
from tensorgrad.neighbors import kneighbors

SHAPES = [(500, 5000, 3072, 5), (5000, 50000, 128, 10)]


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def knn_vs_gemm(n, m, d, k, repeat, rng):
    q = rng.standard_normal((n, d), dtype=np.float32)
    t = rng.standard_normal((m, d), dtype=np.float32)
    out = np.empty((n, m), np.float32)
    runs = {"sgemm": lambda: np.matmul(q, t.T, out=out), "tensorgrad": lambda: kneighbors(q, t, k)}
    try:
        import faiss
        faiss.omp_set_num_threads(tg.get_num_threads())
        index = faiss.IndexFlatL2(d)
        index.add(t)
        runs["faiss"] = lambda: index.search(q, k)
    except ImportError:
        print("faiss is not installed (pip install faiss-cpu): FAISS column skipped")
    for fn in runs.values():       # warm-up
        fn()
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            times[name].append(_time(fn))
    t = {name: np.array(v) for name, v in times.items()}
    line = (f"{n}x{m}x{d} k={k}, {tg.get_num_threads()} threads: "
            + ", ".join(f"{name} {np.median(v) * 1e3:.1f} ms" for name, v in t.items())
            + f"; kneighbors/sgemm {np.median(t['tensorgrad'] / t['sgemm']):.3f}")
    if "faiss" in t:
        line += (f", kneighbors/FAISS {np.median(t['tensorgrad'] / t['faiss']):.3f}, "
                 f"FAISS/sgemm {np.median(t['faiss'] / t['sgemm']):.3f}")
    print(line + " (medians of per-repetition ratios)")


def manhattan_vs_scipy(repeat, rng, n=1000, m=10000, d=128):
    from scipy.spatial.distance import cdist
    a = rng.standard_normal((n, d), dtype=np.float32)
    b = rng.standard_normal((m, d), dtype=np.float32)
    ours = lambda: tg.cdist(a, b, metric="manhattan")
    ref = lambda: cdist(a, b, "cityblock")
    ours(), ref()
    r = [_time(ref) / _time(ours) for _ in range(repeat)]
    print(f"manhattan {n}x{m}x{d}: scipy cityblock / tensorgrad {np.median(r):.2f} "
          f"(median of {repeat})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--shapes", default="0,1", help="indices into SHAPES, e.g. 0 or 0,1")
    p.add_argument("--manhattan", action="store_true")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    for i in (int(s) for s in args.shapes.split(",") if s):
        knn_vs_gemm(*SHAPES[i], args.repeat, rng)
    if args.manhattan:
        manhattan_vs_scipy(args.repeat, rng)


if __name__ == "__main__":
    main()
