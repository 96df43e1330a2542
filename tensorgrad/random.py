"""The global random generator behind randn/rand/init: ``tg.manual_seed(n)`` makes runs
repeatable."""
import numpy as np

_gen = [np.random.default_rng()]


def manual_seed(seed):
    """Seed the global generator used by tg.randn, tg.rand, tg.randint and nn init."""
    _gen[0] = np.random.default_rng(int(seed))
    return _gen[0]


seed = manual_seed


def get_generator():
    """The global numpy Generator (use it for anything that should follow manual_seed)."""
    return _gen[0]
