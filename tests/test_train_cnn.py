"""``tensorgrad train --model cnn`` (issue 13): conv–bn–relu–pool ×2 and a linear layer on
the digits reshaped to 1×8×8 (the default reaches 98.5% test accuracy), on CIFAR-10 folders
(3×32×32), its options, errors and ``--save``; and the example examples/cifar_cnn.py."""
import pickle
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.cli import _sgd, train


def run(capsys, *argv):
    code = train.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def result(out, name):
    line = next(ln for ln in out.splitlines() if ln.startswith(name))
    return float(line.split(":", 1)[1].split()[0])


def test_default_cnn_reaches_98_5_percent_on_digits(capsys):
    code, out, err = run(capsys, "--model", "cnn", "--threads", "1")
    assert code == 0, err
    assert "cnn on 1×8×8 images" in out
    assert result(out, "test accuracy") >= 0.985
    assert out.splitlines()[-1].startswith("wall time:")


def test_cnn_options_and_short_run(capsys):
    code, out, err = run(capsys, "--model", "cnn", "--epochs", "2", "--lr", "0.05", "--reg",
                         "0", "--batch-size", "64", "--momentum", "0.5", "--seed", "3",
                         "--quiet")
    assert code == 0, err
    assert result(out, "test accuracy") >= 0.8
    for option, value in (("--hidden", "8"), ("--ks", "1"), ("--folds", "3")):
        code, out, err = run(capsys, "--model", "cnn", option, value)
        assert code == 2 and out == "" and f"{option} does not apply to --model cnn" in err


def test_cnn_refuses_features_that_are_not_square_images(capsys, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "flat.npz"
    np.savez(path, X=rng.standard_normal((40, 10)).astype(np.float32),
             y=rng.integers(0, 2, 40))
    code, out, err = run(capsys, "--model", "cnn", "--data", str(path))
    assert code == 2 and out == ""
    assert "--model cnn needs square images" in err and "10 features" in err


def _write_cifar(folder, n=40, n_test=20):
    """A small CIFAR-10 folder (python-pickle batches) whose classes are learnable: class k
    brightens one of four image quadrants of one colour plane."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        m = n_test if name == "test_batch" else n
        y = rng.integers(0, 4, m)
        X = rng.integers(0, 120, (m, 3, 32, 32))
        for j, k in enumerate(y):
            X[j, k % 3, (k // 2) * 16:(k // 2) * 16 + 16, (k % 2) * 16:(k % 2) * 16 + 16] += 120
        d = {b"data": X.reshape(m, 3072).astype(np.uint8), b"labels": y.tolist()}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))


def test_cnn_on_a_cifar10_folder_sees_3x32x32_images(capsys, tmp_path):
    _write_cifar(tmp_path / "cifar")
    code, out, err = run(capsys, "--model", "cnn", "--data", str(tmp_path / "cifar"),
                         "--epochs", "4", "--threads", "1")
    assert code == 0, err
    assert "cnn on 3×32×32 images" in out
    assert result(out, "test accuracy") >= 0.9


def test_cnn_save_keeps_the_standardisation(capsys, tmp_path):
    path = str(tmp_path / "cnn.npz")
    code, out, err = run(capsys, "--model", "cnn", "--epochs", "3", "--quiet", "--save", path)
    assert code == 0, err
    state = tg.load(path)
    mean, std = state.pop("input_mean"), state.pop("input_std")
    model = _sgd.cnn((1, 8, 8), 10)
    model.load_state_dict(state)
    model.eval()
    X, y = tg.data.load_digits()
    _, _, (X_test, y_test) = tg.data.train_val_test_split(X, y, seed=train.SPLIT_SEED)
    with tg.no_grad():
        predicted = model((X_test - mean) / std).numpy().argmax(axis=1)
    assert abs(np.mean(predicted == y_test.numpy()) - result(out, "test accuracy")) <= 1 / 359


def test_image_shape():
    assert _sgd.image_shape(64) == (1, 8, 8)
    assert _sgd.image_shape(784) == (1, 28, 28)
    assert _sgd.image_shape(3072) == (3, 32, 32)
    assert _sgd.image_shape(3 * 49) == (3, 7, 7)
    assert _sgd.image_shape(10) is None and _sgd.image_shape(9) is None


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ ships with the source tree only")
def test_cifar_cnn_example_runs_on_digits(capsys, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setattr("sys.argv", ["cifar_cnn.py"])
    runpy.run_path(str(EXAMPLES / "cifar_cnn.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert float(re.search(r"test accuracy (\S+)", out).group(1)) >= 0.95
