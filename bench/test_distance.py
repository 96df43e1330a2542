"""Distances (issue 4): cdist at the CIFAR-10 shapes and kNN prediction."""
import pytest

from tensorgrad.benchmarks import registry


@pytest.mark.parametrize("name,engine", registry.cases(("distance",)))
def test_distance(bench_case, name, engine):
    bench_case(name, engine)
