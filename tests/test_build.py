"""The newcomer path: the README's first commands, the unbuilt-source-tree error, and the
developer build that must not shadow edited Python modules with compiled copies."""
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / "setup.py").exists(),
                                reason="needs the source tree next to tests/")


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_first_block_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = _load(ROOT / ".ci" / "readme_commands.py", "readme_commands").commands(readme)
    assert cmds == ['pip install . && tensorgrad train', 'pip install ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "readme_commands.py" in ci and "find_pythons.py" in ci


def test_requires_python_matches_what_ci_tests():
    finder = _load(ROOT / ".ci" / "find_pythons.py", "find_pythons")
    low = finder.lower_bound((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert sys.version_info[:2] >= (3, low)
    classifiers = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"Programming Language :: Python :: 3.{low}"' in classifiers


def test_unbuilt_source_tree_raises_one_clear_import_error(tmp_path):
    # A copy of the package without compiled files stands for a fresh clone's source tree.
    shutil.copytree(ROOT / "tensorgrad", tmp_path / "tensorgrad",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", "import tensorgrad"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tensorgrad is being imported from its source tree")
    assert "compiled kernels are not built" in last and "pip install -e ." in last


@pytest.fixture
def setup_module(monkeypatch):
    pytest.importorskip("setuptools")
    module = _load(ROOT / "setup.py", "tensorgrad_setup")   # setup() runs only as __main__
    translated = []

    def fake_cythonize(exts, **kwargs):
        translated.extend(e.name for e in exts)
        return [types.SimpleNamespace(name=e.name, sources=[str(ROOT / "setup.py")])
                for e in exts]

    monkeypatch.setitem(sys.modules, "Cython", types.ModuleType("Cython"))
    monkeypatch.setitem(sys.modules, "Cython.Build",
                        types.SimpleNamespace(cythonize=fake_cythonize))
    monkeypatch.setattr(module, "_compiler_has_openmp", lambda compiler: False)
    return module, translated


def _build_cmd(module, monkeypatch, **options):
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    kernel = Extension("tensorgrad._kernels.runtime", ["tensorgrad/_kernels/runtime.pyx"])
    hot = Extension("tensorgrad.function", ["tensorgrad/function.py"])
    cmd = module.BuildExt(Distribution({"ext_modules": [kernel, hot]}))
    for key, value in options.items():
        setattr(cmd, key, value)
    cmd.ensure_finalized()
    built = []
    monkeypatch.setattr(build_ext, "run", lambda self: self.build_extensions())
    monkeypatch.setattr(build_ext, "build_extensions",
                        lambda self: built.extend(e.name for e in self.extensions))
    return cmd, built


@pytest.mark.parametrize("options", [{"inplace": 1}, {"editable_mode": True}])
def test_in_place_build_does_not_compile_the_python_modules(setup_module, monkeypatch,
                                                           capsys, options):
    module, translated = setup_module
    cmd, built = _build_cmd(module, monkeypatch, **options)
    cmd.compiler = None
    cmd.run()
    assert built == translated == ["tensorgrad._kernels.runtime"]
    assert "NOT compiled, so edits to them take effect" in capsys.readouterr().err


def test_wheel_build_compiles_the_python_modules(setup_module, monkeypatch):
    module, translated = setup_module
    cmd, built = _build_cmd(module, monkeypatch)
    cmd.compiler = None
    cmd.run()
    assert sorted(built) == sorted(translated) == ["tensorgrad._kernels.runtime",
                                                   "tensorgrad.function"]


def test_in_place_build_removes_stale_compiled_copies(setup_module, tmp_path, capsys):
    module, _ = setup_module
    from setuptools import Extension
    (tmp_path / "graph.py").write_text("")
    stale = tmp_path / "graph.cpython-311-x86_64-linux-gnu.so"
    stale.write_text("")
    module._remove_compiled_twins([Extension("x.graph", [str(tmp_path / "graph.py")])])
    assert not stale.exists() and (tmp_path / "graph.py").exists()
    assert "removing" in capsys.readouterr().err


def test_build_flags_strip_debug_information(setup_module):
    module, _ = setup_module
    cflags, ldflags = module._kernel_flags()
    if sys.platform.startswith("linux"):
        assert "-g0" in cflags and "-s" in ldflags
