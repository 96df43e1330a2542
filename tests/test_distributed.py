"""tensorgrad.distributed: in this process (a job of one) and as multi-process MPI jobs.

The multi-process tests launch ``mpiexec -n W python -m mpi4py tests/mpi/<script>.py`` (the
``-m mpi4py`` form aborts the whole job on an uncaught exception, so a failing assertion on
one rank cannot leave the others waiting) under a timeout; each rank prints "rank r ok" at
the end. The fault tests run plain ``python script.py``: there ``dist.init()``'s excepthook
must end the job. ``mpiexec`` is the one installed with the ``mpich`` wheel next to this
Python (the ``test`` extra brings it), else the first on PATH.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tensorgrad as tg

pytest.importorskip("mpi4py", reason='needs mpi4py and an MPI library: pip install '
                                     '"tensorgrad[mpi]" (the test extra includes them)')

import tensorgrad.distributed as dist

SCRIPTS = pathlib.Path(__file__).parent / "mpi"
TIMEOUT = 240       # seconds for one job, on a loaded 2-core machine


def _mpiexec():
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def _env():
    # Open MPI refuses to start as root without these; MPICH ignores them.
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMP_NUM_THREADS="1", PYTHONWARNINGS="error",
                PYTHONPATH=str(pathlib.Path(tg.__file__).resolve().parent.parent))


def mpirun(n, args, timeout=TIMEOUT, cwd=None):
    """Run ``mpiexec -n n python <args>``; return the CompletedProcess."""
    exe = _mpiexec()
    if exe is None:
        pytest.skip("no mpiexec found (pip install mpich)")
    return subprocess.run([exe, "-n", str(n), sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, env=_env(), cwd=cwd, check=False)


def _ok(n, script, *args):
    r = mpirun(n, ["-m", "mpi4py", str(SCRIPTS / script), *args])
    assert r.returncode == 0, r.stdout + r.stderr
    for rank in range(n):
        assert f"rank {rank} ok" in r.stdout, r.stdout + r.stderr
    return r


# -- multi-process jobs ---------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_multi_process(n):
    _ok(n, "collectives.py")


@pytest.mark.parametrize("n", [2, 3])
def test_ddp_matches_single_process_with_the_whole_batch(n):
    r = _ok(n, "ddp.py")
    assert "max |DDP - single process|" in r.stdout


@pytest.mark.parametrize("n", [2, 3])
def test_sharded_knn_matches_single_process(n):
    _ok(n, "knn.py")


@pytest.mark.parametrize("mode", ["raise", "kill"])
def test_a_failing_rank_ends_the_job(mode):
    r = mpirun(2, [str(SCRIPTS / "fault.py"), mode], timeout=60)
    assert r.returncode != 0
    assert "rank 0 was not stopped" not in r.stdout
    if mode == "raise":
        assert "ValueError: rank 1 failed on purpose" in r.stderr
        assert "rank 1 of 2 raised ValueError; aborting the MPI job" in r.stderr


def _train(tmp_path, n, *args):
    argv = ["-m", "tensorgrad", "train", "--no-progress", *args]
    if n:
        r = mpirun(n, [*argv, "--distributed"], cwd=tmp_path)
    else:
        r = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                           timeout=TIMEOUT, env=_env(), cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return [line for line in r.stdout.splitlines() if not line.startswith("wall time")]


def test_train_distributed_matches_single_process(tmp_path):
    opts = ["--epochs", "4", "--threads", "1"]
    single = _train(tmp_path, 0, *opts)
    double = _train(tmp_path, 2, *opts)
    assert any(line.startswith("test accuracy") for line in double)
    # only rank 0 prints, and it prints what the single process prints (same total batch)
    assert double == single


def test_train_knn_distributed_matches_single_process(tmp_path):
    single = _train(tmp_path, 0, "--model", "knn", "--threads", "1")
    sharded = _train(tmp_path, 3, "--model", "knn", "--threads", "1")
    assert sharded == single and any(line.startswith("chosen k") for line in sharded)


# -- a job of one (this process, no mpiexec) ------------------------------------------------
def test_world_of_one():
    dist.init()
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    t = tg.tensor([1.0, 2.0])
    dist.all_reduce(t, op="mean")
    dist.broadcast(t)
    dist.barrier()
    assert t.tolist() == [1.0, 2.0]
    (only,) = dist.all_gather(t)
    assert only.tolist() == [1.0, 2.0]
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Linear(4, 4), tg.nn.Linear(4, 2))
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1e-4)     # 104 bytes
    assert [len(b.params) for b in ddp._buckets] == [3, 2, 1]
    ddp(tg.ones(4, 3)).sum().backward()
    ref = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Linear(4, 4), tg.nn.Linear(4, 2))
    ref.load_state_dict(model.state_dict())
    ref(tg.ones(4, 3)).sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())
    clf = tg.neighbors.KNeighborsClassifier(2, distributed=True).fit([[0.0], [1.0], [3.0]],
                                                                    [0, 1, 1])
    _, i = clf.kneighbors([[0.9]])
    assert i.tolist() == [[1, 0]] and clf.predict([[2.9]]).tolist() == [1]


def test_errors_without_init_and_without_mpi4py(tmp_path):
    code = ("import tensorgrad.distributed as dist\n"
            "try:\n    dist.get_rank()\nexcept RuntimeError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=_env(), timeout=60, cwd=tmp_path, check=False)
    assert "call tensorgrad.distributed.init() first" in r.stdout, r.stderr
    code = ("import sys\nsys.modules['mpi4py'] = None\nimport tensorgrad as tg\n"
            "assert tg.tensor([1.0]).sum().item() == 1.0\n"
            "try:\n    import tensorgrad.distributed\nexcept ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=_env(), timeout=60, cwd=tmp_path, check=False)
    assert 'pip install "tensorgrad[mpi]"' in r.stdout, r.stdout + r.stderr


# -- DistributedSampler ---------------------------------------------------------------------
@pytest.mark.parametrize("n,w", [(10, 2), (11, 3), (5, 4), (2, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_cover_the_epoch(n, w, drop_last):
    shards = [dist.DistributedSampler(n, num_replicas=w, rank=r, seed=5, drop_last=drop_last)
              for r in range(w)]
    for s in shards:
        s.set_epoch(2)
    order = np.random.default_rng(5 + 2).permutation(n)
    lens = {len(s) for s in shards}
    assert lens == {n // w if drop_last else -(-n // w)}
    merged = np.stack([s.indices() for s in shards], axis=1).ravel()   # round-robin
    if drop_last:
        assert np.array_equal(merged, order[:len(merged)])
    else:
        assert np.array_equal(merged, np.resize(order, len(merged)))
        assert set(merged.tolist()) == set(range(n))
    assert list(shards[0]) == shards[0].indices().tolist()


def test_sampler_epochs_and_errors():
    s = dist.DistributedSampler(20, num_replicas=2, rank=1)
    a = s.indices()
    s.set_epoch(1)
    assert not np.array_equal(a, s.indices())
    s.set_epoch(0)
    assert np.array_equal(a, s.indices())
    plain = dist.DistributedSampler(range(7), num_replicas=2, rank=0, shuffle=False)
    assert plain.indices().tolist() == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="rank 2 is out of range"):
        dist.DistributedSampler(5, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an integer >= 1"):
        dist.DistributedSampler(5, num_replicas=0, rank=0)
