"""The ``train`` command, called in-process through ``tensorgrad.cli.train.main``."""
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.cli import train

pytest.importorskip("sklearn")  # digits, the default data set, ships with scikit-learn


def run(capsys, *argv):
    code = train.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def result(out, name):
    """The number on the output line starting with ``name``."""
    line = next(ln for ln in out.splitlines() if ln.startswith(name))
    return float(line.split(":", 1)[1].split()[0])


def untimed(out):
    return [ln for ln in out.splitlines() if not ln.startswith("wall time")]


@pytest.mark.parametrize(("model", "extra", "at_least"), [
    ("mlp", ["--epochs", "4"], 0.93),
    ("softmax", ["--epochs", "4"], 0.90),
    ("svm", ["--epochs", "4"], 0.90),
    ("knn", ["--ks", "1,3,5"], 0.97),
])
def test_each_model_trains_on_digits(capsys, model, extra, at_least):
    code, out, err = run(capsys, "--model", model, "--quiet", *extra)
    assert code == 0, err
    for name in ("train accuracy", "validation accuracy", "test accuracy"):
        assert 0.0 <= result(out, name) <= 1.0
    assert result(out, "test accuracy") >= at_least
    assert out.splitlines()[-1].startswith("wall time:") and "threads" in out
    if model == "knn":
        assert int(result(out, "chosen k")) in (1, 3, 5)


@pytest.mark.parametrize(("model", "at_least"), [("mlp", 0.97), ("softmax", 0.93),
                                                ("svm", 0.93)])
def test_defaults_reach_the_target_accuracy(capsys, model, at_least):
    # one thread: same accuracy, and robust to a busy machine where a second thread stalls
    code, out, err = run(capsys, "--model", model, "--quiet", "--threads", "1")
    assert code == 0, err
    assert result(out, "test accuracy") >= at_least


def test_same_seed_prints_the_same_numbers(capsys):
    argv = ["--epochs", "3", "--no-progress", "--seed", "5", "--hidden", "32"]
    code1, out1, err1 = run(capsys, *argv)
    code2, out2, err2 = run(capsys, *argv)
    assert code1 == code2 == 0, err1 + err2
    assert any(ln.startswith("epoch") for ln in out1.splitlines())
    assert untimed(out1) == untimed(out2)
    _, out3, _ = run(capsys, *argv[:-3], "6", "--hidden", "32")
    assert untimed(out3) != untimed(out1)  # the seed reaches initialisation and shuffling


def test_progress_bar_goes_to_stderr(capsys):
    code, out, err = run(capsys, "--model", "softmax", "--epochs", "2")
    assert code == 0
    assert "epoch 2/2" in err and "epoch 2/2" not in out
    assert out.startswith("data: digits, 1797 samples x 64 features, 10 classes")


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"],
    ["--lr", "abc"],
    ["--lr", "-1"],
    ["--model", "cnn"],
    ["--bogus"],
    ["--ks", "0,3", "--model", "knn"],
    ["--data", "/nonexistent/data.npz"],
    ["--save", "/nonexistent/dir/model.npz"],
    ["--save", "/"],
    ["--momentum", "1.5"],
])
def test_bad_options_give_one_line_and_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorgrad train: error:"), err
    assert "Traceback" not in err and out == ""


def test_bad_data_files_give_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    np.savez(tmp_path / "keys.npz", images=np.zeros((4, 2)), labels=np.zeros(4))
    for path in (tmp_path / "broken.npz", tmp_path / "keys.npz", tmp_path):
        code, _, err = run(capsys, "--data", str(path))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--model" in out


def test_npz_data_with_its_own_test_split(capsys, tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, (3, 5))
    y = rng.integers(0, 3, 300)
    X = (centers[y] + rng.normal(0, 0.5, (300, 5))).astype(np.float32)
    np.savez(tmp_path / "blobs.npz", x_train=X[:240], y_train=y[:240], x_test=X[240:],
             y_test=y[240:])
    code, out, err = run(capsys, "--data", str(tmp_path / "blobs.npz"), "--epochs", "5",
                         "--no-progress")
    assert code == 0, err
    assert "split 216 train / 24 validation / 60 test" in out
    assert result(out, "test accuracy") >= 0.95


def test_save_writes_a_model_that_takes_raw_features(capsys, tmp_path):
    path = str(tmp_path / "mlp.npz")
    code, out, err = run(capsys, "--epochs", "3", "--hidden", "32", "--quiet", "--save", path)
    assert code == 0, err
    model = tg.nn.Sequential(tg.nn.Linear(64, 32), tg.nn.ReLU(), tg.nn.Linear(32, 10))
    model.load_state_dict(tg.load(path))
    X, y = tg.data.load_digits()
    _, _, (X_test, y_test) = tg.data.train_val_test_split(X, y, seed=train.SPLIT_SEED)
    with tg.no_grad():
        predicted = model(X_test).numpy().argmax(axis=1)
    # standardisation is folded into the first layer: no preprocessing needed
    assert abs(np.mean(predicted == y_test.numpy()) - result(out, "test accuracy")) <= 1 / 359


def test_save_knn(capsys, tmp_path):
    path = str(tmp_path / "knn.npz")
    code, _, err = run(capsys, "--model", "knn", "--ks", "1,3", "--quiet", "--save", path)
    assert code == 0, err
    state = tg.load(path)
    assert state["fit_X"].shape == (1258, 64) and state["n_neighbors"].item() in (1, 3)


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    code, _, err = run(capsys, "--model", "softmax", "--epochs", "2", "--quiet",
                       "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(capsys, "--plot", str(tmp_path / "x.png"))
    assert code == 2 and "pip install matplotlib" in err


def test_threads_option_is_reported(capsys):
    before = tg.get_num_threads()
    try:
        code, out, _ = run(capsys, "--model", "softmax", "--epochs", "1", "--threads", "1",
                           "--quiet")
        assert code == 0 and out.splitlines()[-1].endswith("threads: 1")
    finally:
        tg.set_num_threads(before)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ ships with the source tree only")
@pytest.mark.parametrize(("script", "pattern", "at_least"), [
    ("two_layer_digits.py", r"test accuracy (\S+)", 0.95),
    ("svm_vs_softmax.py", r"softmax\s+test accuracy (\S+)", 0.93),
    ("universal_approximation.py", r"64 ReLU units.* = (\S+) ", None),
])
def test_examples_run(capsys, script, pattern, at_least):
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    value = float(re.search(pattern, capsys.readouterr().out).group(1))
    if at_least is None:
        assert value < 0.05  # the max error of the 64-unit fit of sin(x)
    else:
        assert value >= at_least
