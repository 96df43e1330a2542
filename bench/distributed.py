"""Scaling of tensorgrad.distributed on this machine: MPI ranks x threads.

    python bench/distributed.py              # launches the mpiexec jobs, prints a table
    python bench/distributed.py --quick      # smaller sizes, fewer repeats

Configurations: 1, 2 and 4 ranks x 1 thread, and 1 rank x 2 threads (same machine). Each
job runs this file with ``--worker`` under ``mpiexec -n W`` and rank 0 reports medians:

- MLP step: one SGD step (forward, backward with DistributedDataParallel's bucketed
  all-reduce, update) of a 3072-512-10 ReLU net on a total batch of 512, split over the
  ranks (strong scaling: the same work per step whatever W);
- kNN: ``KNeighborsClassifier(k=10, distributed=True).kneighbors`` of 1,000 queries against
  40,000 x 256 float32 training rows sharded over the ranks (broadcast, local fused top-k,
  all-gather, merge);
- Allreduce: MPI_Allreduce (sum, in place) of float32 tensors of 4 KB .. 16 MB.

Timings are medians over repeats, each between barriers. Ratios, not absolute times, are the
point: the machine has 2 cores (4 ranks oversubscribe it) and is shared.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np


def _median_time(fn, repeats, barrier):
    times = []
    for _ in range(repeats):
        barrier()
        t0 = time.perf_counter()
        fn()
        barrier()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def worker(quick):
    import tensorgrad as tg
    import tensorgrad.distributed as dist
    F = tg.nn.functional

    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(rank)
    repeats = 5 if quick else 15
    out = {"world": world, "threads": tg.get_num_threads()}

    # MLP step
    d, h, c, total = (3072, 512, 10, 512) if not quick else (768, 256, 10, 256)
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(d, h), tg.nn.ReLU(), tg.nn.Linear(h, c))
    ddp = dist.DistributedDataParallel(model)
    opt = tg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    b = total // world
    X = tg.from_numpy(rng.standard_normal((b, d)).astype(np.float32))
    y = tg.from_numpy(rng.integers(0, c, b))

    def step():
        opt.zero_grad()
        F.cross_entropy(ddp(X), y).backward()
        opt.step()

    step()
    out["mlp_step_s"] = _median_time(step, repeats, dist.barrier)
    out["mlp_allreduce_bytes"] = int(sum(p.numpy().nbytes for p in model.parameters()))

    # kNN
    n, dim, nq, k = (40000, 256, 1000, 10) if not quick else (8000, 64, 500, 10)
    lo, hi = n * rank // world, n * (rank + 1) // world
    Xt = np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32)[lo:hi]
    yt = np.zeros(hi - lo, np.int64)
    Q = np.random.default_rng(2).standard_normal((nq, dim)).astype(np.float32)
    clf = tg.neighbors.KNeighborsClassifier(k, distributed=True).fit(Xt, yt)
    clf.kneighbors(Q)
    out["knn_s"] = _median_time(lambda: clf.kneighbors(Q), max(3, repeats // 3), dist.barrier)

    # Allreduce throughput
    out["allreduce"] = {}
    for kb in (4, 64, 1024, 16384):
        t = tg.zeros(kb * 256, dtype=tg.float32)
        dist.all_reduce(t)
        reps = repeats * (4 if kb <= 64 else 1)
        out["allreduce"][kb] = _median_time(lambda t=t: dist.all_reduce(t), reps, lambda: None)
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


def _mpiexec():
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    args = p.parse_args()
    if args.worker:
        return worker(args.quick)
    exe = _mpiexec()
    if exe is None:
        sys.exit("no mpiexec: pip install \"tensorgrad[mpi]\"")
    root = pathlib.Path(__file__).resolve().parent.parent
    results = []
    for ranks, threads in ((1, 1), (2, 1), (4, 1), (1, 2)):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads), PYTHONPATH=str(root),
                   OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        cmd = [exe, "-n", str(ranks), sys.executable, "-m", "mpi4py", __file__, "--worker"]
        if args.quick:
            cmd.append("--quick")
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
        if r.returncode or not line:
            sys.exit(f"{ranks} ranks x {threads} threads failed:\n{r.stdout}\n{r.stderr}")
        res = json.loads(line[0][7:])
        res["ranks"] = ranks
        results.append(res)
    base = results[0]
    print(f"{'config':<22}{'MLP step':>12}{'speedup':>9}{'kNN':>12}{'speedup':>9}")
    for res in results:
        name = f"{res['ranks']} rank(s) x {res['threads']} thr"
        print(f"{name:<22}{res['mlp_step_s'] * 1e3:>10.2f}ms"
              f"{base['mlp_step_s'] / res['mlp_step_s']:>8.2f}x"
              f"{res['knn_s'] * 1e3:>10.1f}ms{base['knn_s'] / res['knn_s']:>8.2f}x")
    print(f"MLP gradient all-reduced per step: {base['mlp_allreduce_bytes'] / 2**20:.2f} MB")
    print("Allreduce (sum, in place), float32; time and bytes / time:")
    for res in results:
        if res["ranks"] < 2:
            continue
        cells = "  ".join(f"{kb} KB {t * 1e6:.0f} us ({int(kb) * 1024 / t / 1e9:.2f} GB/s)"
                          for kb, t in res["allreduce"].items())
        print(f"  {res['ranks']} ranks: {cells}")


if __name__ == "__main__":
    main()
