"""Run as plain `python fault.py MODE` under mpiexec: rank 1 fails while rank 0 waits in a
collective; the job must end (tests/test_distributed.py enforces the bound)."""
import os
import signal
import sys

import tensorgrad as tg
import tensorgrad.distributed as dist

dist.init()
dist.barrier()
if dist.get_rank() == 1:
    if sys.argv[1] == "raise":
        raise ValueError("rank 1 failed on purpose")
    os.kill(os.getpid(), signal.SIGKILL)
dist.all_reduce(tg.ones(3))                  # rank 0 waits here for a rank that is gone
print("rank 0 was not stopped", flush=True)
