"""Every public name has a docstring: Tensor's methods and properties, everything in
``tg.__all__`` and ``tg.nn.functional``'s functions (``help(tg.zeros)`` must say something).

Ops are installed onto Tensor in ``tensorgrad/ops/__init__.py``, so a method alias carries
the docstring of the function it is. Dtype aliases (``tg.float32`` is ``np.float32``) are
numpy's classes and are not checked.
"""
import inspect

import numpy as np
import pytest

import tensorgrad as tg
import tensorgrad.nn.functional as F


def _has_doc(obj):
    doc = inspect.getdoc(obj)     # finds slot docstrings (Tensor.__slots__ is a dict)
    return bool(doc and doc.strip())


def _tensor_members():
    # dunders (__add__, ...) are excluded: their meaning is the operator's
    return sorted(name for name in dir(tg.Tensor) if not name.startswith("_"))


def _all_names():
    return [name for name in tg.__all__
            if not (isinstance(getattr(tg, name), type)
                    and issubclass(getattr(tg, name), np.generic))]


@pytest.mark.parametrize("name", _tensor_members())
def test_tensor_member_has_a_docstring(name):
    member = inspect.getattr_static(tg.Tensor, name)
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    assert _has_doc(member), f"Tensor.{name} has no docstring"


@pytest.mark.parametrize("name", _all_names())
def test_public_name_has_a_docstring(name):
    assert _has_doc(getattr(tg, name)), f"tg.{name} has no docstring"


@pytest.mark.parametrize("name", F.__all__)
def test_functional_has_a_docstring(name):
    assert _has_doc(getattr(F, name)), f"tg.nn.functional.{name} has no docstring"


def test_the_checks_cover_what_they_should():
    members = _tensor_members()
    for name in ["shape", "dtype", "grad", "grad_fn", "item", "sum", "exp", "float", "numel"]:
        assert name in members
    assert {"zeros", "exp", "Tensor", "Graph", "autograd"} <= set(_all_names())
    assert "float32" not in _all_names()
    assert tg.Tensor.numel.__doc__ == tg.Tensor.nelement.__doc__     # an alias is its target
    assert tg.Tensor.exp.__doc__ == tg.exp.__doc__
    assert not _has_doc(type("Undocumented", (), {}))      # inspect does not borrow object's
