"""Training (issues 3 and 5): softmax/SVM loss, two-layer SGD step, SGD and Adam updates."""
import pytest

from tensorgrad.benchmarks import registry


@pytest.mark.parametrize("name,engine", registry.cases(("loss", "training", "optim")))
def test_training(bench_case, name, engine):
    bench_case(name, engine)
