"""Normalisation (issue 13): batch norm in training mode, forward + backward."""
import pytest

from tensorgrad.benchmarks import registry


@pytest.mark.parametrize("name,engine", registry.cases(("norm",)))
def test_norm(bench_case, name, engine):
    bench_case(name, engine)
