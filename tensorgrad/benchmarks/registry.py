"""The single registry of workloads shared by ``python -m tensorgrad bench`` and ``bench/``."""
import fnmatch

from tensorgrad.benchmarks import wl_conv, wl_core, wl_distance, wl_norm, wl_train
from tensorgrad.benchmarks.base import ENGINE_LABELS, ENGINES, Skip, Workload, compare

__all__ = ["ENGINES", "ENGINE_LABELS", "WORKLOADS", "Skip", "Workload", "cases", "compare",
           "get_workload", "select"]

# name -> Workload, in the order the tables list them
WORKLOADS = {w.name: w for w in wl_core.WORKLOADS + wl_train.WORKLOADS + wl_distance.WORKLOADS
             + wl_norm.WORKLOADS + wl_conv.WORKLOADS}


def get_workload(name):
    try:
        return WORKLOADS[name]
    except KeyError:
        raise KeyError(f"no benchmark workload named {name!r}; known: "
                       f"{', '.join(WORKLOADS)}") from None


def select(patterns=None):
    """Workloads whose name or group matches one of ``patterns`` (exact or shell-style glob,
    e.g. ``matmul`` or ``*_loss_*``), in registry order; all of them when None/empty.
    Raises ValueError naming a pattern that matches nothing."""
    if not patterns:
        return list(WORKLOADS.values())
    chosen = set()
    for pat in patterns:
        hits = [w for w in WORKLOADS.values()
                if fnmatch.fnmatchcase(w.name, pat) or fnmatch.fnmatchcase(w.group, pat)]
        if not hits:
            groups = sorted({w.group for w in WORKLOADS.values()})
            raise ValueError(f"--only {pat!r} matches no workload; names: "
                             f"{', '.join(WORKLOADS)}; groups: {', '.join(groups)}")
        chosen.update(w.name for w in hits)
    return [w for w in WORKLOADS.values() if w.name in chosen]


def cases(groups=None):
    """(workload name, engine) pairs for parametrised tests, optionally of some groups."""
    return [(w.name, e) for w in WORKLOADS.values() if groups is None or w.group in groups
            for e in ENGINES if e in w.impls]
