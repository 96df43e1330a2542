"""The ``train`` command, called in-process through ``tensorgrad.cli.train.main``, and the
option checks of ``tensorgrad.__main__`` (``tests/test_cli.py`` runs the command line as a
subprocess, the way users do).
"""
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.__main__ as cli_main
from tensorgrad.cli import _common, train


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


@pytest.mark.parametrize("model", ["mlp", "softmax", "svm"])
def test_replayed_and_eager_training_print_the_same_numbers(capsys, model):
    # the default trains through a recorded tg.Graph (planned replay; with batch 500 the
    # last batch is partial and gets a Graph of its own); --eager rebuilds it every step
    argv = ["--model", model, "--epochs", "2", "--no-progress", "--batch-size", "500"]
    code1, replayed, err1 = run(capsys, *argv)
    code2, eager, err2 = run(capsys, *argv, "--eager")
    assert code1 == code2 == 0, err1 + err2
    assert sum(ln.startswith("epoch") for ln in replayed.splitlines()) == 2
    assert untimed(replayed) == untimed(eager)


def test_progress_goes_to_stderr_as_plain_lines_when_it_is_not_a_terminal(capsys):
    code, out, err = run(capsys, "--model", "softmax", "--epochs", "2")
    assert code == 0
    assert [line.split("  ")[0] for line in err.splitlines()] == ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in err and not any(line.startswith("epoch") for line in out.splitlines())
    assert out.startswith("data: digits, 1797 samples x 64 features, 10 classes")


def test_progress_bar_when_stderr_is_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "--model", "softmax", "--epochs", "2")
    assert code == 0
    assert "\r" in err and "epoch 2/2: 100%" in err  # tqdm's bar


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"],
    ["--lr", "abc"],
    ["--lr", "-1"],
    ["--model", "resnet"],
    ["--bogus"],
    ["--ks", "0,3", "--model", "knn"],
    ["--data", "/nonexistent/data.npz"],
    ["--save", "/nonexistent/dir/model.npz"],
    ["--save", "/"],
    ["--momentum", "1.5"],
    ["--model", "knn", "--ks", "2000"],
])
def test_bad_options_give_one_line_and_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorgrad train: error:"), err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(("model", "options"), [
    ("knn", ["--epochs", "5", "--lr", "0.1", "--reg", "0", "--hidden", "8", "--batch-size",
             "8", "--momentum", "0.5", "--seed", "1"]),
    ("softmax", ["--hidden", "8", "--ks", "1", "--folds", "3"]),
    ("svm", ["--hidden", "8", "--ks", "1", "--folds", "3"]),
    ("mlp", ["--ks", "1", "--folds", "3"]),
])
def test_options_the_model_does_not_take_are_usage_errors(capsys, model, options):
    takes = " ".join("--" + o.replace("_", "-") for o in train.DEFAULTS[model])
    for option, value in zip(options[::2], options[1::2]):
        code, out, err = run(capsys, "--model", model, option, value)
        assert code == 2 and out == ""
        assert err == (f"tensorgrad train: error: {option} does not apply to --model {model} "
                       f"(its options: {takes})\n")


@pytest.mark.parametrize("model", ["mlp", "softmax", "svm", "knn"])
def test_every_option_a_model_takes_is_accepted(capsys, model):
    values = {"epochs": "1", "lr": "0.01", "reg": "0", "hidden": "8", "batch_size": "256",
              "momentum": "0.5", "seed": "3", "eager": None, "ks": "1,3", "folds": "3"}
    argv = [arg for option in train.DEFAULTS[model]
            for arg in ("--" + option.replace("_", "-"), values[option]) if arg is not None]
    code, _, err = run(capsys, "--model", model, "--quiet", *argv)
    assert code == 0, err


def test_bad_data_files_give_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(1000))
    np.savez(tmp_path / "keys.npz", images=np.zeros((4, 2)), labels=np.zeros(4))
    for path, message in ((tmp_path / "broken.npz", "load_npz: {} is not a valid .npz file"),
                          (tmp_path / "random.npz", "load_npz: {} is not a valid .npz file"),
                          (tmp_path / "keys.npz", "load_npz({}): expected arrays 'X' and 'y'"),
                          (tmp_path, "{}: no CIFAR-10 batches or MNIST IDX files")):
        code, out, err = run(capsys, "--data", str(path))
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("tensorgrad train: error: " + message.format(path)), err
        assert "pickle" not in err


def test_non_finite_data_is_refused_with_its_place(capsys, tmp_path):
    X = np.ones((30, 2, 3), np.float32)
    X[12, 1, 0] = -np.inf
    np.savez(tmp_path / "d.npz", x_train=np.ones((40, 6)), y_train=np.arange(40) % 2,
             x_test=X, y_test=np.arange(30) % 2)
    code, out, err = run(capsys, "--data", str(tmp_path / "d.npz"))
    assert code == 2 and out == ""
    assert err == (f"tensorgrad train: error: load_npz({tmp_path / 'd.npz'}): array 'x_test' "
                   "contains 1 inf value; the first is at index (12, 1, 0)\n")


@pytest.mark.parametrize(("where", "message"), [
    ("afile/m.npz", "--save {tmp}/afile/m.npz: {tmp}/afile is not a folder"),
    (".", "--save {tmp}/. is a folder; give a file name"),
])
def test_save_path_is_checked_before_training(capsys, tmp_path, where, message):
    (tmp_path / "afile").write_text("")
    code, out, err = run(capsys, "--save", f"{tmp_path}/{where}")
    assert code == 2 and out == ""
    assert err == f"tensorgrad train: error: {message.format(tmp=tmp_path)}\n"


def test_threads_above_the_cores_warn(capsys, monkeypatch):
    monkeypatch.setattr(_common, "cores_available", lambda: 1)
    code, out, err = run(capsys, "--model", "softmax", "--epochs", "1", "--quiet",
                         "--threads", "2")
    assert code == 0
    assert err == ("tensorgrad train: warning: --threads 2 exceeds the 1 cores available; "
                   "oversubscription slows training\n")
    assert out.splitlines()[-1].endswith("threads: 2")


def test_a_diverging_loss_stops_with_exit_1(capsys):
    code, _, err = run(capsys, "--model", "svm", "--lr", "1e30", "--epochs", "2", "--quiet")
    assert code == 1
    assert re.fullmatch(r"tensorgrad train: error: the loss diverged \S+ in epoch 1; try a "
                        r"smaller --lr\n", err), err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and out.startswith("usage: tensorgrad train [-h]")
    assert "knn options:" in out and "mlp, softmax, svm and cnn (SGD) options:" in out


@pytest.mark.parametrize(("argv", "error"), [
    (["--bogus"], ("tensorgrad: error: unknown option '--bogus' (expected --help, --version "
                   "or a command: train, bench, ops, info)")),
    (["nope"], "tensorgrad: error: unknown command 'nope' (expected train, bench, ops, info)"),
    (["info", "--bogus"], "tensorgrad info: error: unrecognized arguments: --bogus"),
    (["bench", "--engines", "jax"], ("tensorgrad bench: error: --engines: unknown engine(s) "
                                     "jax; choose from tensorgrad, numpy, torch, sklearn, "
                                     "scipy, faiss")),
])
def test_top_level_usage_errors(capsys, argv, error):
    assert cli_main.main(argv) == 2
    assert capsys.readouterr() == ("", error + "\n")


def test_version(capsys):
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr() == (f"tensorgrad {tg.__version__}\n", "")


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
    assert state["fit_X"].shape == (1258, 64) and state["n_neighbors"] in (1, 3)


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    code, _, err = run(capsys, "--model", "softmax", "--epochs", "2", "--quiet",
                       "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(capsys, "--plot", str(tmp_path / "x.png"))
    assert code == 2
    assert err == "tensorgrad train: error: --plot needs matplotlib: pip install matplotlib\n"


@pytest.mark.parametrize("name", ["curves.svg", "curves"])
def test_plot_format_follows_the_extension(capsys, tmp_path, name):
    pytest.importorskip("matplotlib")
    code, _, err = run(capsys, "--model", "knn", "--ks", "1,3", "--quiet",
                       "--plot", str(tmp_path / name))
    assert code == 0, err
    head = (tmp_path / name).read_bytes()[:300]
    assert b"<svg" in head if name.endswith(".svg") else head.startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_plot_format_is_checked_before_training(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "--plot", str(tmp_path / "curves.xyz"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"tensorgrad train: error: --plot {tmp_path}/curves.xyz: matplotlib "
                          "cannot write '.xyz' files; use one of ")


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
