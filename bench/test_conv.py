"""Convolutional nets (issue 13): conv2d forward+backward on three CNN layer shapes and
max_pool2d forward+backward, against torch."""
import pytest

from tensorgrad.benchmarks import registry


@pytest.mark.parametrize("name,engine", registry.cases(("conv",)))
def test_conv(bench_case, name, engine):
    bench_case(name, engine)
