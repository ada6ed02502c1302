"""Modules that load on first use, so that describing things never loads TensorFlow.

``estimators = lazy_module("lqbench.estimators")`` at the top of a module declares the
dependency where every import is declared, but executes ``lqbench.estimators`` (and
TensorFlow behind it) only when an attribute is first read. This is the standard library's
`importlib.util.LazyLoader` recipe. lqbench uses it where a light module (`lqbench.spec`,
`lqbench.binarization`, the command-line parsers) needs a TensorFlow-backed registry only
when it validates or runs something, so that ``import lqbench.spec`` and ``lqbench --help``
stay fast. A module already imported is returned as is.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Callable

__all__ = ["after_import", "lazy_module"]


def _spec(name: str):
    """The import spec of ``name`` without executing any package on the way (their specs suffice)."""
    if name in sys.modules:  # read without loading a lazy module (its __getattribute__ would load it)
        return types.ModuleType.__getattribute__(sys.modules[name], "__spec__")
    parent = name.rpartition(".")[0]
    if not parent or (parent in sys.modules and not isinstance(sys.modules[parent], importlib.util._LazyModule)):
        return importlib.util.find_spec(name)
    parent_spec = _spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    lazy_module(parent)  # the package itself loads lazily too, before its submodule runs
    return importlib.machinery.PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))


def lazy_module(name: str) -> types.ModuleType:
    """Module ``name``, executed on first attribute access (already imported: the module itself).

    Packages on the way are not executed either (``lazy_module("lqbench.tflite.deployment")``
    does not run ``lqbench/tflite/__init__.py`` until the module is used)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = _spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the real loader of one module to run callbacks after it loads."""

    def __init__(self, name: str):
        self.name, self.callbacks = name, []

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module, callbacks = spec.loader.exec_module, self.callbacks

        def exec_then_callbacks(module):
            exec_module(module)
            sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
            for callback in callbacks:
                callback(module)

        spec.loader.exec_module = exec_then_callbacks
        return spec


def after_import(name: str, callback: Callable[[types.ModuleType], None]) -> None:
    """Run ``callback(module)`` once module ``name`` has been imported (now, if it already is)."""
    if name in sys.modules and not isinstance(sys.modules[name], importlib.util._LazyModule):
        callback(sys.modules[name])
        return
    for finder in sys.meta_path:
        if isinstance(finder, _AfterImport) and finder.name == name:
            finder.callbacks.append(callback)
            return
    finder = _AfterImport(name)
    finder.callbacks.append(callback)
    sys.meta_path.insert(0, finder)
