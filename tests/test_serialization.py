"""tg.save / tg.load: nested state dicts round trip with their Python types, the file stays a
plain .npz, errors name the file or the type, and saving is atomic."""
import errno
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn, optim, serialization


def _same(a, b):
    """Equal values and equal types, all the way down (arrays compared bitwise)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, tg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.numpy(), b.numpy(), equal_nan=True)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    elif isinstance(a, dict):
        assert list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def test_nested_checkpoint_round_trips_with_its_types(tmp_path):
    grid = tg.arange(12, dtype=tg.float64).reshape(3, 4)
    obj = {
        "model": OrderedDict([("0.weight", tg.randn(3, 2)), ("0.bias", tg.zeros(3))]),
        "tensors": [grid.T, grid[:, ::2], tg.tensor(7, dtype=tg.int64),
                    tg.tensor([True, False]), tg.empty(0, 3), tg.tensor(np.uint8(5))],
        "arrays": (np.arange(4, dtype=np.int32), np.float32(1.5), np.int64(-2)),
        "numbers": [0, -(2 ** 70), 0.1, -0.0, float("inf"), float("nan"), True, False],
        "other": {"name": "mlp", "nothing": None, 3: "int key", "3": "str key"},
        "empty": {"list": [], "tuple": (), "dict": {}},
    }
    path = tmp_path / "checkpoint.npz"
    tg.save(obj, path)
    _same(obj, tg.load(path))


def test_optimizer_state_dict_round_trips(tmp_path, rng):
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    model(tg.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    tg.save(opt, tmp_path / "opt.npz")                  # an object with state_dict() works too
    back = tg.load(tmp_path / "opt.npz")
    _same(sd, back)
    assert back["param_groups"][0]["betas"] == (0.8, 0.99)
    assert back["state"][1]["step"] == 1 and isinstance(back["state"][1]["exp_avg"], tg.Tensor)


def test_the_file_is_a_plain_npz_named_by_key_paths(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    tg.save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert z.files == ["0.weight", "0.bias", "2.weight", "2.bias", "__tensorgrad__"]
        np.testing.assert_array_equal(z["2.weight"], model[2].weight.numpy())
    tg.save({"a/b": tg.ones(1), "a": {"b": tg.zeros(1)}, "__tensorgrad__": tg.ones(2)},
            tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as z:
        assert z.files == ["a/b", "a/b~1", "__tensorgrad__~1", "__tensorgrad__"]
    back = tg.load(tmp_path / "c.npz")
    assert back["a/b"].tolist() == [1.0] and back["a"]["b"].tolist() == [0.0]
    assert back["__tensorgrad__"].tolist() == [1.0, 1.0]


def test_a_plain_npz_of_arrays_loads_as_tensors(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.eye(2), n=np.int64(3))
    back = tg.load(tmp_path / "plain.npz")
    assert isinstance(back, OrderedDict) and list(back) == ["w", "n"]
    assert all(isinstance(v, tg.Tensor) for v in back.values())
    assert back["w"].tolist() == [[1.0, 0.0], [0.0, 1.0]] and back["n"].item() == 3


@pytest.mark.parametrize("obj, error, message", [
    ([1, 2], TypeError, ("save: expected a state dict (a mapping such as model.state_dict(), "
                         "possibly nested) or an object with state_dict(), got list")),
    ({"f": print}, TypeError, ("save: value for 'f' is a builtin_function_or_method; only "
                               "Tensors, numeric arrays, numbers, strings, None and dicts, "
                               "lists and tuples of them can be saved")),
    ({"opt": {"state": {0: {"fn": {1, 2}}}}}, TypeError, ("save: value for 'opt/state/0/fn' "
                                                          "is a set;")),
    ({"a": [np.array(["x"])]}, TypeError, ("save: value for 'a/0' has dtype <U1; only "
                                           "numeric and bool arrays can be saved")),
    ({"a": {(1, 2): 3}}, TypeError, ("save: key (1, 2) in 'a' is a tuple; keys must be "
                                     "strings or ints")),
    ({"a": {True: 3}}, TypeError, "save: key True in 'a' is a bool;"),
])
def test_save_names_what_it_cannot_store_and_writes_nothing(obj, error, message, tmp_path):
    with pytest.raises(error) as e:
        tg.save(obj, tmp_path / "x.npz")
    assert str(e.value).startswith(message)
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_structure_that_contains_itself(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="save: value for 'a/0' contains itself"):
        tg.save(loop, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_save_to_a_bad_path_names_the_file(tmp_path):
    missing = tmp_path / "no" / "such" / "dir.npz"
    with pytest.raises(FileNotFoundError) as e:
        tg.save({"a": tg.ones(1)}, missing)
    assert str(e.value) == f"save: cannot write {missing}: No such file or directory"
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match="save: cannot write .*adir: Is a directory"):
        tg.save({"a": tg.ones(1)}, tmp_path / "adir")
    assert os.listdir(tmp_path) == ["adir"] and os.listdir(tmp_path / "adir") == []


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    tg.save({"w": tg.ones(3)}, path)
    before = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def disk_full_on_second_array(fp, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full_on_second_array)
    with pytest.raises(OSError, match=f"save: cannot write {path}: No space left on device"):
        tg.save({"w": tg.zeros(3), "b": tg.zeros(2)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_gets_the_permissions_of_a_normally_created_file(tmp_path):
    tg.save({"w": tg.ones(1)}, tmp_path / "saved.npz")
    (tmp_path / "plain").write_bytes(b"")
    assert os.stat(tmp_path / "saved.npz").st_mode == os.stat(tmp_path / "plain").st_mode


def _zip_with(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_bytes(arr, tmp_path):
    np.save(tmp_path / "tmp.npy", arr, allow_pickle=True)
    return (tmp_path / "tmp.npy").read_bytes()


def test_load_errors_name_the_file_and_the_reason(tmp_path):
    def fails(path, reason):
        with pytest.raises(ValueError) as e:
            tg.load(path)
        assert str(e.value) == (f"load: {path} is not a valid tensorgrad state dict (.npz): "
                                f"{reason}")
        assert "allow_pickle" not in str(e.value)

    not_zip = tmp_path / "text.npz"
    not_zip.write_bytes(b"this is not a zip file")
    fails(not_zip, "it is not a zip archive (truncated, or not an .npz file)")
    truncated = tmp_path / "trunc.npz"
    tg.save({"w": np.arange(1000.0)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:4000])
    fails(truncated, "it is not a zip archive (truncated, or not an .npz file)")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"code": 1}], dtype=object))
    fails(pickled, "entry 'obj' holds pickled Python objects, which tg.load never loads")
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    fails(single, "it holds a single array (.npy), not a state dict")
    torch_like = tmp_path / "torch.pt"
    _zip_with(torch_like, {"archive/data.pkl": b"\x80\x04N."})
    fails(torch_like, "member 'archive/data.pkl' is not a .npy array (a file of another "
                      "program?)")
    strings = tmp_path / "strings.npz"
    _zip_with(strings, {"s.npy": _npy_bytes(np.array(["a", "b"]), tmp_path)})
    fails(strings, "entry 's' has dtype <U1; tg.load reads numeric arrays")
    damaged = tmp_path / "damaged.npz"
    _zip_with(damaged, {"w.npy": _npy_bytes(np.arange(100.0), tmp_path)[:300]})
    with pytest.raises(ValueError, match=r"damaged.npz is not a valid .* entry 'w' is damaged"):
        tg.load(damaged)


def test_load_refuses_a_description_it_does_not_understand(tmp_path):
    newer = tmp_path / "newer.npz"
    meta = {"format": "tensorgrad.save", "version": serialization._VERSION + 1, "root": None}
    np.savez(newer, __tensorgrad__=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="written by a newer tensorgrad"):
        tg.load(newer)
    dangling = tmp_path / "dangling.npz"
    meta = {"format": "tensorgrad.save", "version": 1, "root": {"dict": [["w", {"tensor": "w"}]]}}
    np.savez(dangling, __tensorgrad__=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="refers to a missing entry 'w'"):
        tg.load(dangling)


def test_load_of_a_missing_file_or_a_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        tg.load(tmp_path / "nope.npz")
    assert str(e.value) == f"load: no such file: {tmp_path / 'nope.npz'}"
    with pytest.raises(IsADirectoryError) as e:
        tg.load(tmp_path)
    assert str(e.value) == f"load: cannot read {tmp_path}: Is a directory"
