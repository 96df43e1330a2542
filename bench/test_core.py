"""Core engine (issue 2): elementwise add/mul, ReLU, matmul forward+backward, tiny-op chain."""
import pytest

from tensorgrad.benchmarks import registry


@pytest.mark.parametrize("name,engine", registry.cases(("elementwise", "matmul", "overhead")))
def test_core(bench_case, name, engine):
    bench_case(name, engine)
