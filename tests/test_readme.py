"""Every ```python block of the README runs and prints what it claims."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    if not os.path.exists(README):
        return []
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)


@pytest.mark.skipif(not _blocks(), reason="README.md not found next to tests/")
@pytest.mark.parametrize("i", range(len(_blocks())))
def test_readme_python_block_runs(i, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)            # blocks may write files (tg.save)
    ns = {}
    exec(compile(_blocks()[i], f"README block {i}", "exec"), ns)
    if "acc" in ns:                        # the training snippet
        assert ns["acc"] >= 0.97
    if "Hv" in ns:
        assert ns["Hv"].shape == (4, 3) and ns["W"].grad is not None


def test_readme_quick_start_numbers(capsys):
    exec(compile(_blocks()[0], "README block 0", "exec"), {})
    out = capsys.readouterr().out
    assert "[-0.1966, -0.3932]" in out and "[ 0.3932, -0.5898]" in out and "0.1966" in out
    assert "['Dot', 'Add', 'Sigmoid']" in out
