"""The package's layers import one way only (docs/internals.md, "Layers").

Every module of ``tensorgrad`` is parsed with ``ast``, imports inside functions included,
and may import only modules of its own layer or of a lower one. A lower layer that needs a
higher one is installed into by it at import time instead (``ops`` installs the op methods
on Tensor, ``graph`` installs ``Tensor.backward``).
"""
import ast
import pathlib

import pytest

import tensorgrad

PACKAGE = pathlib.Path(tensorgrad.__file__).parent

# Lowest first. A module belongs to the layer of its longest listed prefix; the packages
# "tensorgrad" and "tensorgrad.ops" (their __init__) only to their own, so that a new op
# module has to be placed here.
EXACT = {"tensorgrad", "tensorgrad.ops"}
LAYERS = [
    ("tensorgrad._kernels", "tensorgrad._blas", "tensorgrad.random"),   # no tensors yet
    ("tensorgrad._inplace",),
    ("tensorgrad._tensor", "tensorgrad.factory", "tensorgrad.serialization"),
    ("tensorgrad.function",),
    ("tensorgrad._runtime",),
    # the op modules, in the order they build on each other, then the package that
    # gathers them and installs them on Tensor
    ("tensorgrad.ops._util",),
    ("tensorgrad.ops.cast",),
    ("tensorgrad.ops._promote", "tensorgrad.ops.select"),
    ("tensorgrad.ops.elementwise",),
    ("tensorgrad.ops.shape",),
    ("tensorgrad.ops.index",),
    ("tensorgrad.ops.reduce",),
    ("tensorgrad.ops.activation",),
    ("tensorgrad.ops.matmul", "tensorgrad.ops.distance"),
    ("tensorgrad.ops.linear", "tensorgrad.ops.loss", "tensorgrad.ops.conv"),
    ("tensorgrad.ops.norm",),
    ("tensorgrad.ops._opinfo", "tensorgrad.ops._references", "tensorgrad.ops._samples",
     "tensorgrad.ops._shape_samples", "tensorgrad.ops._conv_references",
     "tensorgrad.ops._conv_samples", "tensorgrad.ops._norm_samples"),
    ("tensorgrad.ops.registry",),
    ("tensorgrad.ops",),
    ("tensorgrad.graph", "tensorgrad._tape", "tensorgrad._fuse", "tensorgrad.replay",
     "tensorgrad.autograd", "tensorgrad.testing"),
    ("tensorgrad.nn", "tensorgrad.optim", "tensorgrad.data", "tensorgrad.neighbors",
     "tensorgrad.distributed"),
    # the top: the package itself ("tensorgrad", its __init__), the command line and the
    # benchmark workloads behind `tensorgrad bench` (they use the whole public API)
    ("tensorgrad", "tensorgrad.__main__", "tensorgrad.cli", "tensorgrad.benchmarks"),
]


# (importer, imported) pairs allowed to go up, and why.
ALLOWED = {
    # table() looks each public op up by name on the package, at call time, when the
    # package has finished importing
    ("tensorgrad.ops.registry", "tensorgrad.ops"),
}


def _layer(module):
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or (p not in EXACT and module.startswith(p + "."))) and (
                    best is None or len(p) > len(best[1])):
                best = (i, p)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def _modules():
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        mods[".".join(parts)] = (path, is_pkg)
    return mods


MODULES = _modules()


def _imports(module, path, is_pkg):
    """(line, imported module) for every import statement, at any depth."""
    package = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            for alias in node.names:   # `from pkg import mod` imports the module pkg.mod
                sub = f"{name}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else name


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_no_higher_layer(module):
    path, is_pkg = MODULES[module]
    own = _layer(module)
    bad = [f"line {line}: {name}" for line, name in _imports(module, path, is_pkg)
           if (name == "tensorgrad" or name.startswith("tensorgrad.")) and _layer(name) > own
           and (module, name) not in ALLOWED]
    assert not bad, f"{module} (layer {own}) imports a higher layer: {bad}"


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)
    assert {"tensorgrad._tensor", "tensorgrad.function", "tensorgrad.ops.elementwise",
            "tensorgrad.graph", "tensorgrad.nn.module", "tensorgrad.cli.train"} <= set(MODULES)
