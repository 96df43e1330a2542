"""The scripts in examples/ run to the end, as a newcomer runs them, without warnings."""
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not SCRIPTS, reason="examples/ not found next to tests/")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    import tensorgrad as tg
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=str(pathlib.Path(tg.__file__).resolve().parent.parent))
    r = subprocess.run([sys.executable, "-W", "error", str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip(), "the example printed nothing"
