"""tg.data: loaders on small files written by the tests, batching and splitting."""
import gzip
import os
import pickle
import re
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import data

# ----------------------------------------------------------------------------- helpers


def write_idx(path, arr, magic, gz=False):
    """An IDX file as MNIST stores it: big-endian magic, big-endian dims, raw bytes."""
    arr = np.asarray(arr, dtype=np.uint8)
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    raw += arr.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)
    return str(path)


def mnist_like(n=7, rows=4, cols=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, rows, cols), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8))


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def write_cifar(folder, sizes=(3, 2, 4, 1, 2), n_test=3, protocol=2, bytes_keys=True,
                legacy=False):
    """CIFAR-10 python batches like the real ones: protocol-2 dicts with bytes keys.

    ``legacy`` names numpy's pickling helper as numpy 1.x did (``numpy.core.multiarray``),
    which is what the files distributed by the CIFAR authors contain.
    """
    os.makedirs(folder, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    written = {}
    for i, (name, n) in enumerate(zip(names, [*sizes, n_test])):
        X, y = cifar_batch(n, seed=i)
        d = {"batch_label": f"batch {i}".encode(), "data": X, "labels": y,
             "filenames": [f"img{j}.png".encode() for j in range(n)]}
        if bytes_keys:
            d = {k.encode(): v for k, v in d.items()}
        raw = pickle.dumps(d, protocol=protocol)
        if legacy:
            assert b"numpy._core.multiarray" in raw
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)
        written[name] = (X, np.array(y))
    return written


class Exploit:
    """Unpickling this runs a shell command (the classic pickle attack)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ----------------------------------------------------------------------------- digits


def test_load_digits_shapes_range_and_labels():
    X, y = data.load_digits()
    assert isinstance(X, tg.Tensor) and isinstance(y, tg.Tensor)
    assert X.shape == (1797, 64) and X.dtype == tg.float32
    assert y.shape == (1797,) and y.dtype == tg.int64
    Xn = X.numpy()
    assert Xn.min() == 0.0 and Xn.max() == 1.0
    assert np.all(Xn * 16 == np.round(Xn * 16))  # original 0..16 grey levels / 16
    assert sorted(set(y.tolist())) == list(range(10))


def test_load_digits_needs_no_sklearn_and_equals_its_copy(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    X, y = data.load_digits()                 # the bundled file, no scikit-learn import
    monkeypatch.undo()
    sk = pytest.importorskip("sklearn.datasets")
    Xs, ys = sk.load_digits(return_X_y=True)
    np.testing.assert_array_equal(X.numpy(), (Xs / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), ys)


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_roundtrip(tmp_path, gz):
    images, labels = mnist_like()
    ext = ".gz" if gz else ""
    ip = write_idx(tmp_path / f"img-idx3-ubyte{ext}", images, 2051, gz)
    lp = write_idx(tmp_path / f"lab-idx1-ubyte{ext}", labels, 2049, gz)
    X, y = data.load_idx(ip, lp)
    assert X.dtype == tg.float32 and X.shape == (7, 12)
    np.testing.assert_allclose(X.numpy(), images.reshape(7, 12) / 255.0, rtol=1e-6)
    assert y.dtype == tg.int64 and y.tolist() == labels.tolist()
    X3, _ = data.load_idx(ip, lp, flatten=False)
    assert X3.shape == (7, 4, 3)


def test_load_idx_detects_gzip_by_content_not_name(tmp_path):
    images, labels = mnist_like()
    ip = write_idx(tmp_path / "images.idx", images, 2051, gz=True)
    lp = write_idx(tmp_path / "labels.idx", labels, 2049, gz=False)
    X, y = data.load_idx(ip, lp)
    assert X.shape == (7, 12) and len(y.tolist()) == 7


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_truncated(tmp_path, gz):
    images, labels = mnist_like()
    ip = write_idx(tmp_path / "i", images, 2051, gz)
    lp = write_idx(tmp_path / "l", labels, 2049)
    with open(ip, "rb") as f:
        raw = f.read()
    with open(ip, "wb") as f:
        f.write(raw[:-5])
    match = "corrupt or truncated gzip" if gz else "truncated: dimensions"
    with pytest.raises(ValueError, match=match):
        data.load_idx(ip, lp)


def test_load_idx_truncated_header_and_trailing_bytes(tmp_path):
    images, labels = mnist_like()
    lp = write_idx(tmp_path / "l", labels, 2049)
    ip = str(tmp_path / "i")
    with open(ip, "wb") as f:
        f.write((2051).to_bytes(4, "big") + (7).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="truncated inside its header"):
        data.load_idx(ip, lp)
    write_idx(ip, images, 2051)
    with open(ip, "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(ValueError, match="2 bytes after"):
        data.load_idx(ip, lp)


def test_load_idx_bad_magic_swapped_and_count_mismatch(tmp_path):
    images, labels = mnist_like()
    ip = write_idx(tmp_path / "i", images, 2051)
    lp = write_idx(tmp_path / "l", labels, 2049)
    bad = write_idx(tmp_path / "bad", images, 2052)
    with pytest.raises(ValueError, match="magic number 2052, expected 2051"):
        data.load_idx(bad, lp)
    with pytest.raises(ValueError, match="swapped"):
        data.load_idx(lp, ip)
    short = write_idx(tmp_path / "short", labels[:5], 2049)
    with pytest.raises(ValueError, match="7 images but .* 5 labels"):
        data.load_idx(ip, short)
    with pytest.raises(FileNotFoundError):
        data.load_idx(str(tmp_path / "nope"), lp)


# ----------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize(("protocol", "bytes_keys", "legacy"),
                         [(2, True, True), (2, True, False), (5, False, False)])
def test_load_cifar10(tmp_path, protocol, bytes_keys, legacy):
    written = write_cifar(tmp_path / "c", protocol=protocol, bytes_keys=bytes_keys,
                          legacy=legacy)
    (X, y), (Xt, yt) = data.load_cifar10(str(tmp_path / "c"))
    assert X.shape == (12, 3072) and X.dtype == tg.float32 and y.dtype == tg.int64
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    np.testing.assert_allclose(X.numpy(), np.concatenate([a for a, _ in train]) / 255.0,
                               rtol=1e-6)
    assert y.tolist() == np.concatenate([b for _, b in train]).tolist()
    assert Xt.shape == (3, 3072) and yt.tolist() == written["test_batch"][1].tolist()
    (X4, _), _ = data.load_cifar10(str(tmp_path / "c"), flatten=False)
    assert X4.shape == (12, 3, 32, 32)
    np.testing.assert_array_equal(X4.numpy()[0, 1], X.numpy()[0, 1024:2048].reshape(32, 32))


def test_load_cifar10_accepts_parent_of_batches_folder(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (X, _), (Xt, _) = data.load_cifar10(str(tmp_path))
    assert X.shape[0] == 12 and Xt.shape[0] == 3


def test_load_cifar10_rejects_malicious_pickle_without_running_it(tmp_path):
    folder = tmp_path / "c"
    write_cifar(folder)
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Exploit(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"rejected: refusing to load (posix|os|nt)\.system"):
        data.load_cifar10(str(folder))
    assert not marker.exists()


@pytest.mark.parametrize(("payload", "match"), [
    ([1, 2, 3], "holds a list, expected a dict"),
    ({b"labels": [1]}, "lacks the 'data'/'labels'"),
    ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}, r"uint8 array \[n, 3072\]"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, r"uint8 array \[n, 3072\]"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 samples but 1 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels must be 0..9"),
])
def test_load_cifar10_rejects_wrong_contents(tmp_path, payload, match):
    folder = tmp_path / "c"
    write_cifar(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(ValueError, match=match):
        data.load_cifar10(str(folder))


def test_load_cifar10_truncated_and_missing_files(tmp_path):
    folder = tmp_path / "c"
    write_cifar(folder)
    raw = (folder / "data_batch_1").read_bytes()
    (folder / "data_batch_1").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch"):
        data.load_cifar10(str(folder))
    os.remove(folder / "data_batch_5")
    with pytest.raises(FileNotFoundError, match="lacks data_batch_5"):
        data.load_cifar10(str(folder))


# ----------------------------------------------------------------------------- npz


def test_load_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((6, 2, 2))
    y = np.array([0, 1, 2, 1, 0, 2])
    np.savez(tmp_path / "a.npz", X=X, y=y)
    Xa, ya = data.load_npz(str(tmp_path / "a.npz"))
    assert Xa.dtype == tg.float64 and Xa.shape == (6, 2, 2) and ya.dtype == tg.int64
    np.testing.assert_array_equal(Xa.numpy(), X)
    np.savez(tmp_path / "b.npz", x=X.astype(np.uint8), y=y.astype(np.float32))
    Xb, yb = data.load_npz(str(tmp_path / "b.npz"))
    assert Xb.dtype == tg.float32 and yb.tolist() == y.tolist()
    np.savez(tmp_path / "k.npz", x_train=X[:4], y_train=y[:4], x_test=X[4:], y_test=y[4:])
    Xtr, ytr = data.load_npz(str(tmp_path / "k.npz"), split="train")
    Xte, yte = data.load_npz(str(tmp_path / "k.npz"), split="test")
    Xall, yall = data.load_npz(str(tmp_path / "k.npz"))
    assert Xtr.shape[0] == 4 and Xte.shape[0] == 2 and yall.tolist() == y.tolist()
    assert ytr.tolist() == y[:4].tolist() and yte.tolist() == y[4:].tolist()
    np.testing.assert_array_equal(Xall.numpy(), X)


def test_load_npz_errors(tmp_path):
    np.savez(tmp_path / "keys.npz", features=np.zeros((2, 2)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"expected arrays 'X' and 'y'.*\['features', 'labels'\]"):
        data.load_npz(str(tmp_path / "keys.npz"))
    np.savez(tmp_path / "frac.npz", X=np.zeros((2, 2)), y=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="whole numbers"):
        data.load_npz(str(tmp_path / "frac.npz"))
    np.savez(tmp_path / "len.npz", X=np.zeros((3, 2)), y=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="3 samples but 2 labels"):
        data.load_npz(str(tmp_path / "len.npz"))
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match=r"obj.npz: array 'X' holds Python objects \(dtype "
                                         r"object\); only numeric arrays are read"):
        data.load_npz(str(tmp_path / "obj.npz"))
    with pytest.raises(FileNotFoundError):
        data.load_npz(str(tmp_path / "missing.npz"))


def _zip_of_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")


def _single_npy(path):
    with open(path, "wb") as f:  # np.save would add .npy to the name
        np.save(f, np.zeros(3))


def _truncated(path):
    np.savez(path, X=np.zeros((50, 4)), y=np.zeros(50, np.int64))
    path.write_bytes(path.read_bytes()[:700])


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000)),
     r"is not a valid .npz file \(an .npz file is a zip archive of .npy arrays\)"),
    (lambda p: p.write_text("X,y\n1,0\n"), "is not a valid .npz file"),
    (lambda p: p.write_bytes(b"PK\x03\x04 definitely not a zip"),
     "is not a valid .npz file \\(File is not a zip file\\)"),
    (_truncated, "is not a valid .npz file"),
    (_zip_of_text, "is not a valid .npz file: its member 'notes.txt' is not a .npy array"),
    (_single_npy, "is a single .npy array, not an .npz archive"),
])
def test_load_npz_names_a_file_that_is_not_an_npz(tmp_path, make, reason):
    path = tmp_path / "data.npz"
    make(path)
    with pytest.raises(ValueError, match=f"^load_npz: {re.escape(str(path))} {reason}") as e:
        data.load_npz(str(path))
    assert "pickle" not in str(e.value)  # never advise loading the file unsafely


def test_check_finite():
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert data.check_finite(X, "X") is X
    t = tg.tensor([1, 2])
    assert data.check_finite(t) is t  # integers are always finite
    X[2, 1], X[3, 0], X[3, 2] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError, match=r"^X contains 2 NaN and 1 inf values; the first is "
                                         r"at row 2, column 1$"):
        data.check_finite(X, "X")
    with pytest.raises(ValueError, match=r"^array contains 1 inf value; the first is at "
                                         r"index 1$"):
        data.check_finite(tg.tensor([0.0, -np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"contains 1 NaN value; the first is at index "
                                         r"\(1, 0, 2\)$"):
        data.check_finite(np.where(np.arange(12).reshape(2, 2, 3) == 8, np.nan, 0.0), "images")


def test_load_npz_and_load_path_ensure_finite(tmp_path):
    X = np.zeros((6, 2), np.float32)
    X[4, 1] = np.nan
    path = str(tmp_path / "d.npz")
    np.savez(path, X=X, y=np.arange(6) % 2)
    assert np.isnan(data.load_npz(path)[0].numpy()).sum() == 1  # kept unless asked
    for load in (data.load_npz, data.load_path):
        with pytest.raises(ValueError, match=re.escape(
                f"load_npz({path}): array 'X' contains 1 NaN value; the first is at row 4, "
                "column 1")):
            load(path, ensure_finite=True)
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.arange(4), x_test=X,
             y_test=np.arange(6))
    with pytest.raises(ValueError, match="array 'x_test' contains 1 NaN"):
        data.load_path(path, ensure_finite=True)


# ----------------------------------------------------------------------------- load_path


def test_load_path_detects_each_format(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((5, 2, 3)), y=np.arange(5))
    ds = data.load_path(str(tmp_path / "d.npz"))
    assert ds.X.shape == (5, 6) and ds.X_test is None
    np.savez(tmp_path / "k.npz", x_train=np.ones((4, 3)), y_train=np.arange(4),
             x_test=np.ones((2, 3)), y_test=np.arange(2))
    ds = data.load_path(str(tmp_path / "k.npz"))
    assert ds.X.shape == (4, 3) and ds.X_test.shape == (2, 3)

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for prefix, n in (("train", 7), ("t10k", 3)):
        images, labels = mnist_like(n)
        write_idx(mnist / f"{prefix}-images-idx3-ubyte.gz", images, 2051, gz=True)
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte.gz", labels, 2049, gz=True)
    ds = data.load_path(str(mnist))
    assert ds.X.shape == (7, 12) and ds.X_test.shape == (3, 12)

    single = tmp_path / "single"
    single.mkdir()
    images, labels = mnist_like(5)
    write_idx(single / "digits-idx3-ubyte", images, 2051)
    write_idx(single / "digits-idx1-ubyte", labels, 2049)
    ds = data.load_path(str(single))
    assert ds.X.shape == (5, 12) and ds.y_test is None

    write_cifar(tmp_path / "cifar" / "cifar-10-batches-py")
    ds = data.load_path(str(tmp_path / "cifar"))
    assert ds.X.shape == (12, 3072) and ds.name == "CIFAR-10"


def test_load_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        data.load_path(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="no CIFAR-10 batches or MNIST IDX"):
        data.load_path(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="expected an .npz file"):
        data.load_path(str(tmp_path / "notes.txt"))


# ----------------------------------------------------------------------------- batches


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), bs=st.integers(1, 12), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_batches_cover_every_sample_once(n, bs, shuffle, drop_last, seed):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    got = list(data.batches(X, y, bs, shuffle=shuffle, seed=seed, drop_last=drop_last))
    sizes = [len(b[1].tolist()) for b in got]
    full, rest = divmod(n, bs)
    assert sizes == [bs] * full + ([rest] if rest and not drop_last else [])
    seen = np.concatenate([b[1].numpy() for b in got]) if got else np.array([], int)
    for Xb, yb in got:  # rows stay paired with their labels
        np.testing.assert_array_equal(Xb.numpy(), X[yb.numpy()])
    if drop_last:
        assert len(set(seen.tolist())) == len(seen) == full * bs
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_batches_seeding_and_views():
    X = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.arange(50)
    order = [b[1].tolist() for b in data.batches(X, y, 8, seed=3)]
    assert order == [b[1].tolist() for b in data.batches(X, y, 8, seed=3)]
    assert order != [b[1].tolist() for b in data.batches(X, y, 8, seed=4)]
    rng = np.random.default_rng(1)
    epoch1 = [b[1].tolist() for b in data.batches(X, y, 50, seed=rng)]
    epoch2 = [b[1].tolist() for b in data.batches(X, y, 50, seed=rng)]
    assert epoch1 != epoch2
    tg.manual_seed(7)  # seed=None follows tensorgrad's global generator
    first_run = [b[1].tolist() for b in data.batches(X, y, 8)]
    tg.manual_seed(7)
    assert first_run == [b[1].tolist() for b in data.batches(X, y, 8)]
    first, _ = next(iter(data.batches(X, y, 8, shuffle=False)))
    assert np.shares_memory(first.numpy(), X)
    Xt, yt = tg.from_numpy(X), tg.from_numpy(y)
    assert [b[1].tolist() for b in data.batches(Xt, yt, 8, seed=3)] == order


def test_batches_validates_eagerly():
    with pytest.raises(ValueError, match="same number of samples"):
        data.batches(np.zeros((3, 2)), np.zeros(4), 2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            data.batches(np.zeros((3, 2)), np.zeros(3), bad)


# ----------------------------------------------------------------------------- split


def _split_labels(parts):
    return [p[1].numpy() for p in parts]


def test_split_sizes_disjoint_and_deterministic():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.repeat(np.arange(4), 25)
    parts = data.train_val_test_split(X, y, val=0.1, test=0.2, seed=0)
    ids = [(p[0].numpy()[:, 0] / 2).astype(int) for p in parts]
    assert [len(i) for i in ids] == [70, 10, 20]
    assert sorted(np.concatenate(ids).tolist()) == list(range(100))
    for (Xp, yp), i in zip(parts, ids):
        np.testing.assert_array_equal(yp.numpy(), y[i])  # rows keep their labels
    again = data.train_val_test_split(X, y, val=0.1, test=0.2, seed=0)
    for a, b in zip(_split_labels(parts), _split_labels(again)):
        np.testing.assert_array_equal(a, b)
    other = data.train_val_test_split(X, y, val=0.1, test=0.2, seed=1)
    assert not np.array_equal(parts[2][0].numpy(), other[2][0].numpy())
    # balanced classes are split exactly in proportion
    assert np.bincount(parts[2][1].numpy()).tolist() == [5, 5, 5, 5]


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 60), min_size=1, max_size=6),
       test=st.sampled_from([0.1, 0.2, 0.25, 0.5]), seed=st.integers(0, 1000))
def test_split_is_stratified(counts, test, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    X = np.zeros((len(y), 1))
    n, k = len(y), len(counts)
    if n - round(test * n) - round(0.1 * n) < 1:
        return
    parts = data.train_val_test_split(X, y, val=0.1, test=test, seed=seed)
    got = np.bincount(parts[2][1].numpy(), minlength=k)
    # each class's share: within half a sample of an even threshold, which itself is off by
    # at most (k + 1) / 2 samples over all n
    for c, n_c in enumerate(counts):
        assert abs(got[c] - test * n_c) <= 1.0 + n_c * (k + 1) / (2 * n)


def test_split_rejects_bad_fractions():
    X, y = np.zeros((10, 1)), np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="test must be in"):
        data.train_val_test_split(X, y, test=1.0)
    with pytest.raises(ValueError, match="leave no training samples"):
        data.train_val_test_split(X, y, val=0.5, test=0.5)
