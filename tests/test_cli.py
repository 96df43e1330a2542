"""The command line as a user runs it: a subprocess, started outside the source tree.

Every user error must be one line on stderr with exit code 2, found before any work starts
(nothing on stdout, nothing written); the program name follows the way it was invoked.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg

# The folder holding the tensorgrad under test (installed wheel or dev checkout).
IMPORT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))

# What pip writes as the `tensorgrad` console script (entry point tensorgrad.__main__:main).
CONSOLE_SCRIPT = """\
import re
import sys
from tensorgrad.__main__ import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def run(cwd, *args, script=None, pythonpath=()):
    """``python -m tensorgrad ARGS`` (or ``python SCRIPT ARGS``) in ``cwd``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, pythonpath), IMPORT_ROOT]))
    command = [str(script)] if script else ["-m", "tensorgrad"]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, check=False)


def usage_error(r):
    """The one stderr line of a usage error, after checking exit code 2 and no output."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert r.stdout == ""  # found before anything ran
    return lines[0]


def console_script(tmp_path):
    path = tmp_path / "bin" / "tensorgrad"
    path.parent.mkdir()
    path.write_text(CONSOLE_SCRIPT)
    return path


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def blobs(path, n=60, **corrupt):
    """An .npz of 3 separable classes; ``corrupt={"X": [(row, col, value), ...]}``."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    X = rng.normal(0, 0.3, (n, 4)) + y[:, None]
    for row, col, value in corrupt.get("X", ()):
        X[row, col] = value
    np.savez(path, X=X, y=y)
    return path


# ----------------------------------------------------------------------------- bad data


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).bytes(3000),         # random bytes
    b"PK\x03\x04 a zip header and nothing else",  # a broken zip
])
def test_bad_data_file_is_one_line_without_unpickling_advice(tmp_path, content):
    (tmp_path / "x.npz").write_bytes(content)
    line = usage_error(run(tmp_path, "train", "--data", "x.npz"))
    assert line.startswith("python -m tensorgrad train: error: load_npz: x.npz is not a valid "
                           ".npz file"), line
    assert "pickle" not in line


def test_nan_and_inf_in_the_data_are_reported_before_training(tmp_path):
    blobs(tmp_path / "d.npz", X=[(9, 1, np.inf), (7, 2, np.nan), (30, 0, np.nan)])
    line = usage_error(run(tmp_path, "train", "--data", "d.npz", "--model", "softmax"))
    assert line == ("python -m tensorgrad train: error: load_npz(d.npz): array 'X' contains "
                    "2 NaN and 1 inf values; the first is at row 7, column 2")


# ----------------------------------------------------------------------------- outputs


def _unwritable_folder(tmp_path):
    """A folder where no file can be created: a read-only one, or /proc as root."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    for folder in (read_only, Path("/proc")):
        try:
            fd, name = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(fd)
        os.remove(name)
    pytest.skip("no folder here refuses new files")


@pytest.mark.parametrize("where", ["missing", "read-only"])
def test_unwritable_save_path_fails_before_training(tmp_path, where):
    if where == "missing":
        folder = tmp_path / "missing"
        reason = f"{folder} does not exist"
    else:
        folder = _unwritable_folder(tmp_path)
        reason = f"cannot write in {folder}: "
    path = folder / "m.npz"
    line = usage_error(run(tmp_path, "train", "--model", "softmax", "--save", str(path)))
    assert line.startswith(f"python -m tensorgrad train: error: --save {path}: {reason}"), line


def test_save_leaves_only_the_complete_file(tmp_path):
    r = run(tmp_path, "train", "--model", "softmax", "--epochs", "1", "--quiet",
            "--save", "m.npz")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no probe or temporary files
    assert tg.load(tmp_path / "m.npz")["weight"].shape == (10, 64)


# ----------------------------------------------------------------------------- options


def test_an_option_the_model_does_not_take_is_refused(tmp_path):
    line = usage_error(run(tmp_path, "train", "--model", "knn", "--epochs", "5"))
    assert line == ("python -m tensorgrad train: error: --epochs does not apply to --model "
                    "knn (its options: --ks --folds)")


def test_info_refuses_unknown_options_and_has_help(tmp_path):
    line = usage_error(run(tmp_path, "info", "--bogus"))
    assert line == "python -m tensorgrad info: error: unrecognized arguments: --bogus"
    r = run(tmp_path, "info", "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: python -m tensorgrad info [-h]")


def test_ops_prints_the_registry(tmp_path):
    from tensorgrad.ops import registry
    r = run(tmp_path, "ops")
    assert r.returncode == 0 and r.stderr == ""
    for info in tg.ops.table():
        assert f"  {info.name}  " in r.stdout and f"vjp:    {info.vjp}\n" in r.stdout
    r = run(tmp_path, "ops", "--family", "loss")
    assert r.returncode == 0 and r.stdout.startswith("loss\n  cross_entropy ")
    assert "matmul" not in r.stdout
    r = run(tmp_path, "ops", "--markdown")
    assert r.returncode == 0 and r.stdout == registry.markdown()
    line = usage_error(run(tmp_path, "ops", "--family", "nope"))
    assert line.startswith("python -m tensorgrad ops: error: argument --family: invalid choice")
    line = usage_error(run(tmp_path, "ops", "--bogus"))
    assert line == "python -m tensorgrad ops: error: unrecognized arguments: --bogus"


def test_version(tmp_path):
    for r in (run(tmp_path, "--version"),
              run(tmp_path, "--version", script=console_script(tmp_path))):
        assert r.returncode == 0 and r.stderr == ""
        assert r.stdout == f"tensorgrad {tg.__version__}\n"


def test_program_name_follows_the_invocation(tmp_path):
    # as `python -m tensorgrad` (the other tests check the messages of that form)
    top = run(tmp_path, "--help")
    assert top.returncode == 0 and top.stdout.startswith("usage: python -m tensorgrad COMMAND")
    assert "Run `python -m tensorgrad COMMAND --help`" in top.stdout
    # as the console script
    script = console_script(tmp_path)
    top = run(tmp_path, "--help", script=script)
    assert top.returncode == 0 and top.stdout.startswith("usage: tensorgrad COMMAND")
    assert "Run `tensorgrad COMMAND --help`" in top.stdout
    usage = run(tmp_path, "train", "--help", script=script)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: tensorgrad train [-h]")
    for command in ("bench", "ops", "info"):
        line = usage_error(run(tmp_path, command, "--bogus", script=script))
        assert line == f"tensorgrad {command}: error: unrecognized arguments: --bogus"
    line = usage_error(run(tmp_path, "train", "--model", "knn", "--lr", "1", script=script))
    assert line.startswith("tensorgrad train: error: --lr does not apply to --model knn")


def test_threads_above_the_cores_warn_and_run(tmp_path):
    n = cores() + 1
    r = run(tmp_path, "train", "--model", "softmax", "--epochs", "1", "--quiet",
            "--threads", str(n))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        (f"python -m tensorgrad train: warning: --threads {n} exceeds the {cores()} cores "
         "available; oversubscription slows training")]
    assert r.stdout.splitlines()[-1].endswith(f"threads: {n}")


def test_progress_in_a_pipe_is_plain_lines(tmp_path):
    r = run(tmp_path, "train", "--model", "softmax", "--epochs", "3")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    assert [line.split("  ")[0] for line in r.stderr.splitlines()] == [
        "epoch 1/3", "epoch 2/3", "epoch 3/3"]


def test_closed_stdout_pipe_is_quiet(tmp_path):
    env = dict(os.environ, PYTHONPATH=IMPORT_ROOT)
    with subprocess.Popen([sys.executable, "-m", "tensorgrad", "info"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        p.stdout.close()  # like `| head -0`: the reader is gone before anything is written
        err = p.stderr.read()
    assert p.returncode == 1 and err == b""


# ----------------------------------------------------------------------------- bench


@pytest.mark.parametrize(("argv", "message"), [
    (["--repeat", "0"], "argument --repeat: expected a positive integer, got '0'"),
    (["--out", "afile/results"], "--out afile/results: {tmp}/afile is not a folder"),
])
@pytest.mark.parametrize("torch_installed", [True, False])
def test_bench_bad_options(tmp_path, argv, message, torch_installed):
    (tmp_path / "afile").write_text("")
    hide = _hide_torch(tmp_path) if not torch_installed else None
    # A missing peer's note must not come before (or with) the one error line.
    line = usage_error(run(tmp_path, "bench", *argv, pythonpath=[hide] if hide else []))
    assert line == "python -m tensorgrad bench: error: " + message.format(tmp=tmp_path)


def _hide_torch(tmp_path):
    """A folder whose sitecustomize makes `import torch` fail and find_spec find nothing,
    as if torch were not installed."""
    hide = tmp_path / "hide-torch"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    return hide


def test_bench_runs_without_torch(tmp_path):
    hide = _hide_torch(tmp_path)
    r = run(tmp_path, "bench", "--quick", "--only", "add", "--repeat", "1", "--warmup", "1",
            "--engines", "numpy,torch", "--no-plot", "--out", "res", pythonpath=[hide])
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == (
        "python -m tensorgrad bench: note: torch is not installed, so the torch columns are "
        "skipped (CPU build: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu)")
    assert "\r" not in r.stderr
    header = next(line for line in r.stdout.splitlines() if line.startswith("| workload"))
    assert header == "| workload | size | tensorgrad | numpy | numpy / tg | check |"
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["results.json",
                                                                     "results.md"]
