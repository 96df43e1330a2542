"""The benchmark runner and CLI on tiny sizes: result checks, skips, files written.

No timing assertions (the machine is shared and noisy); torch is never needed: the runs
here select the tensorgrad and numpy engines only.
"""
import dataclasses
import json

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.benchmarks import registry, report, runner
from tensorgrad.benchmarks.base import Skip, compare
from tensorgrad.cli import bench as bench_cli

ENGINES = ("tensorgrad", "numpy")
FAST = {"quick": True, "threads": 1, "repeat": 1, "warmup": 1, "engines": ENGINES,
        "min_time": 0.0}

# Small enough that every workload's tensorgrad and numpy versions run in milliseconds.
TINY = {
    "add": {"n": 1000}, "mul": {"n": 1000}, "relu": {"n": 1000},
    "matmul_64x4096": {"n": 8, "k": 32, "m": 16}, "matmul_1024": {"n": 16, "k": 16, "m": 16},
    "tiny_chain": {}, "tiny_chain_replay": {},
    "softmax_loss_small": {}, "softmax_loss_large": {"n": 64, "c": 50},
    "svm_loss_small": {}, "svm_loss_large": {"n": 64, "c": 50},
    "train_step": {"n": 16, "d": 48, "h": 12, "c": 5},
    "train_step_replay": {"n": 16, "d": 48, "h": 12, "c": 5},
    "train_step_replay_vs_gemm": {"n": 16, "d": 48, "h": 12, "c": 5},
    "train_step_planned_vs_gemm": {"n": 16, "d": 48, "h": 12, "c": 5},
    "sgd_momentum": {"shapes": ((30, 20), (7,))}, "adam": {"shapes": ((30, 20), (7,))},
    "cdist": {"n": 20, "m": 30, "d": 16},
    "knn_predict": {"n": 50, "m": 300, "d": 8, "classes": 3},
    "conv2d_3x32x32": {"n": 2, "h": 6}, "conv2d_32x16x16": {"n": 2, "c": 4, "h": 5, "o": 3},
    "conv2d_64x8x8": {"n": 1, "c": 3, "h": 4, "o": 5},
    "max_pool2d_32x32x32": {"n": 2, "c": 3, "h": 6}, "bn_pool_32x32x32": {"n": 2, "c": 3, "h": 6},
    "batch_norm_train": {"n": 4, "c": 3, "h": 5, "w": 6},
    "knn_kneighbors": {"n": 20, "m": 300, "d": 16, "k": 3},
    "knn_kneighbors_large": {"n": 20, "m": 300, "d": 16, "k": 3},
    "cdist_manhattan": {"n": 20, "m": 30, "d": 16},
}


@pytest.fixture(autouse=True)
def _restore_threads():
    """The runner sets the thread count of every pool; give other tests theirs back."""
    before = tg.get_num_threads()
    yield
    runner.set_threads(before)


def tiny(name):
    return registry.get_workload(name).with_params(**TINY[name])


def _wrong_mul(d, p):
    """A deliberately wrong tensorgrad mul: the x gradient uses x instead of y."""
    x = tg.from_numpy(d["x"])
    y = tg.from_numpy(d["y"])
    g = tg.from_numpy(d["g"])

    def run():
        return {"z": (x * y).numpy(), "gx": (g * x).numpy(), "gy": (g * x).numpy()}
    return run


def test_registry_is_complete_and_consistent():
    assert set(TINY) == set(registry.WORKLOADS)
    groups = {w.group for w in registry.WORKLOADS.values()}
    assert {"elementwise", "matmul", "overhead", "loss", "training", "optim",
            "distance"} <= groups
    for w in registry.WORKLOADS.values():
        assert "tensorgrad" in w.impls and "numpy" in w.impls, w.name
        assert set(w.impls) <= set(registry.ENGINES), w.name
        assert w.size(w.params) and w.size(w.quick)
    # the sizes the issues name are the full sizes
    assert registry.get_workload("add").params["n"] == 16 * 2 ** 20
    assert registry.get_workload("matmul_64x4096").params == {"n": 64, "k": 4096, "m": 4096}
    assert registry.get_workload("cdist").params == {"n": 500, "m": 5000, "d": 3072}


def test_select_by_name_group_and_glob():
    assert [w.name for w in registry.select(["add"])] == ["add"]
    assert [w.name for w in registry.select(["matmul"])] == ["matmul_64x4096", "matmul_1024"]
    assert {w.name for w in registry.select(["*_loss_large", "add"])} == {
        "add", "softmax_loss_large", "svm_loss_large"}
    assert len(registry.select(None)) == len(registry.WORKLOADS)
    with pytest.raises(ValueError, match="no_such"):
        registry.select(["no_such"])


def test_compare_finds_mismatches():
    ref = {"a": np.array([1.0, 2.0, 3.0]), "n": np.array([1, 2, 3]), "s": 2.0}
    assert compare({"a": ref["a"] * (1 + 1e-5), "n": ref["n"], "s": 2.0}, ref) is None
    assert "a:" in compare({"a": np.array([1.0, 2.1, 3.0]), "n": ref["n"], "s": 2.0}, ref)
    assert "shape" in compare({"a": ref["a"][:2], "n": ref["n"], "s": 2.0}, ref)
    assert "non-finite" in compare({"a": np.array([1.0, np.nan, 3.0]), "n": ref["n"],
                                    "s": 2.0}, ref)
    assert "entries differ" in compare({"a": ref["a"], "n": np.array([1, 2, 4]), "s": 2.0},
                                       ref)
    assert compare({"a": ref["a"], "n": np.array([1, 2, 4]), "s": 2.0}, ref,
                   int_mismatch=0.5) is None
    assert "missing" in compare({"a": ref["a"], "n": ref["n"]}, ref)
    assert "s:" in compare({"a": ref["a"], "n": ref["n"], "s": 2.5}, ref)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_workload_agrees_with_numpy_at_tiny_size(name):
    row = runner.run_workload(tiny(name), **FAST)
    if row.status == "skipped":
        pytest.skip(row.reason)
    assert row.status == "ok", row.reason
    wl = tiny(name)
    assert row.checks == {"numpy": "floor (a cost bound, not compared)" if "numpy" in wl.floor
                          else "ok"}
    for m in row.measurements.values():
        assert m.status == "ok" and m.median > 0 and m.min <= m.median and m.number >= 1
    assert row.ratio("numpy") > 0


def test_wrong_kernel_is_reported_as_wrong():
    wl = tiny("mul").with_impl("tensorgrad", _wrong_mul)
    row = runner.run_workload(wl, **FAST)
    assert row.status == "WRONG"
    assert "gx" in row.checks["numpy"] and "gy" not in row.checks["numpy"]
    text = report.markdown([row], report.machine_info(), "cmd",
                           {"quick": True, "threads": [1], "repeat": 1, "warmup": 1,
                            "min_time": 0.0})
    table_line = next(line for line in text.splitlines() if line.startswith("| `mul`"))
    assert "**WRONG**" in table_line and "(WRONG)" in table_line
    assert "tensorgrad disagrees vs numpy" in text


def test_state_carried_between_calls_is_checked():
    """check_calls=2: a momentum buffer that is dropped after the first step is WRONG."""
    wl = tiny("sgd_momentum")

    def forgetful(d, p):
        params = [tg.from_numpy(w.copy()) for w in d["p"]]

        def run():      # plain SGD with buf = g every step (momentum forgotten)
            for t, g in zip(params, d["g"]):
                t._data -= 0.1 * g
            return {f"p{i}": t.numpy() for i, t in enumerate(params)}
        return run

    row = runner.run_workload(wl.with_impl("tensorgrad", forgetful), **FAST)
    assert row.status == "WRONG" and "call 2" in row.reason


def test_engines_take_turns_and_ratios_are_per_repetition():
    """Repetition i of every engine runs next to repetition i of the others (a load change
    on the shared machine falls on all of them); the ratio is the median of theirs."""
    calls = []

    def engine(name):
        def make(d, p):
            def run():
                calls.append(name)
                return {"z": np.ones(2)}
            return run
        return make

    wl = dataclasses.replace(tiny("add"), impls={"tensorgrad": engine("tg"),
                                                 "numpy": engine("np")})
    row = runner.run_workload(wl, **{**FAST, "repeat": 4, "warmup": 1, "min_time": 0.0})
    timed = calls[2:]                   # after one warm-up call of each
    assert timed == ["tg", "np"] * 4
    tg_m, np_m = row.measurements["tensorgrad"], row.measurements["numpy"]
    tg_m.times, np_m.times = [1.0, 1.0, 4.0, 4.0], [2.0, 2.0, 2.0, 2.0]
    tg_m.median, np_m.median = 2.5, 2.0
    assert row.ratio("numpy") == pytest.approx(1.25)    # per repetition: 2, 2, 0.5, 0.5
    np_m.times = []                     # without paired repetitions: the medians' ratio
    assert row.ratio("numpy") == pytest.approx(0.8)


def test_missing_api_and_missing_library_are_skips_not_crashes():
    wl = tiny("add")
    row = runner.run_workload(dataclasses.replace(wl, requires=("no_such_api",)), **FAST)
    assert row.status == "skipped" and "tg.no_such_api" in row.reason

    def no_lib(d, p):
        raise Skip("pretendlib is not installed")

    def broken(d, p):
        raise RuntimeError("boom")

    wl2 = wl.with_impl("torch", no_lib).with_impl("sklearn", broken)
    row = runner.run_workload(wl2, **{**FAST, "engines": registry.ENGINES})
    assert row.status == "ok" and row.checks == {"numpy": "ok"}
    assert row.measurements["torch"].status == "skipped"
    assert "pretendlib" in row.measurements["torch"].reason
    assert row.measurements["sklearn"].status == "error"
    assert row.ratio("torch") is None


def test_memory_is_measured_for_distance_workloads():
    row = runner.run_workload(tiny("cdist"), **FAST)
    for engine in ENGINES:
        m = row.measurements[engine]
        assert m.mem_traced is not None and m.mem_traced >= 20 * 30 * 4   # the output
    traced, _ = runner.measure_memory(lambda: np.ones(1_000_000))
    assert 8_000_000 <= traced < 9_000_000


def test_cli_writes_results(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.WORKLOADS, "add", tiny("add"))
    monkeypatch.setitem(registry.WORKLOADS, "relu", tiny("relu"))
    out = tmp_path / "res"
    code = bench_cli.main(["--quick", "--only", "add", "relu", "--out", str(out),
                           "--repeat", "2", "--threads", "1", "--engines", "numpy",
                           "--no-plot"])
    assert code == 0
    md = (out / "results.md").read_text()
    assert "python -m tensorgrad bench --quick --only add relu" in md
    assert "a ratio above 1 means tensorgrad is faster" in md
    assert "| `add` |" in md and "| `relu` |" in md and "CPU:" in md
    doc = json.loads((out / "results.json").read_text())
    assert [r["workload"] for r in doc["rows"]] == ["add", "relu"]
    assert all(r["status"] == "ok" and r["ratios"]["numpy"] > 0 for r in doc["rows"])
    assert doc["settings"]["repeat"] == 2 and doc["machine"]["cores"] >= 1
    assert not (out / "results.png").exists()


def test_cli_thread_scaling_table(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.WORKLOADS, "mul", tiny("mul"))
    code = bench_cli.main(["--only", "mul", "--out", str(tmp_path), "--repeat", "1",
                           "--warmup", "1", "--threads", "1,2", "--engines",
                           "tensorgrad,numpy", "--no-plot"])
    assert code == 0
    md = (tmp_path / "results.md").read_text()
    assert "## 1 thread" in md and "## 2 threads" in md and "## Thread scaling" in md
    assert "tensorgrad 1→2" in md


def test_cli_exit_code_is_1_when_a_result_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.WORKLOADS, "mul", tiny("mul").with_impl("tensorgrad",
                                                                          _wrong_mul))
    code = bench_cli.main(["--only", "mul", "--out", str(tmp_path), "--repeat", "1",
                           "--engines", "numpy", "--no-plot"])
    assert code == 1
    assert "**WRONG**" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--threads", "a"],
                                  ["--only", "nothing_like_this"], ["--engines", "jax"],
                                  ["--repeat", "0"], ["--bogus"]])
def test_cli_bad_options_exit_2(argv, capsys):
    assert bench_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tensorgrad bench:") and len(err.strip().splitlines()) == 1


def test_png_chart(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [runner.run_workload(tiny(n), **FAST) for n in ("add", "mul")]
    path = tmp_path / "results.png"
    assert report.write_png(str(path), rows, {"threads": [1], "quick": True}) is None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_format_time():
    assert report.format_time(0.0123) == "12.3 ms"
    assert report.format_time(2.5) == "2.5 s"
    assert report.format_time(4.2e-4, per=100, unit="op") == "4.2 µs/op"
    assert report.format_time(None) == "—"
