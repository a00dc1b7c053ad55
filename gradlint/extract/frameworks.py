"""The registered framework handlers, in the order the interpreter consults them.

A framework (PyTorch, Keras, TensorFlow graph code, ...) is one module with a ``Framework``
handler (``gradlint.extract.api``): add it here, and the interpreter hands it every call under its
qualified-name prefixes, method calls on tensors and parameters, and its model base classes.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Mapping

from gradlint.extract.api import Args, Framework, Interp, Kwargs
from gradlint.extract.keras import KERAS
from gradlint.extract.torch import TORCH
from gradlint.extract.values import InstanceV, Value


class LazyFramework:
    """A handler whose module is imported when the interpreter first hands it something.

    TensorFlow graph code is rare next to PyTorch and Keras, and its catalogs cost a linted
    file's start-up several milliseconds; what the interpreter reads before any call (the name,
    the prefixes, the model bases) is stated here, and a test checks it against the handler."""

    def __init__(self, module: str, attribute: str, name: str, prefixes: tuple[str, ...],
                 model_bases: Mapping[str, str | None] | None = None,
                 model_base_suffixes: tuple[str, ...] = ()) -> None:
        self._module, self._attribute = module, attribute
        self._loaded: Framework | None = None
        self.name = name
        self.prefixes = prefixes
        self.model_bases: Mapping[str, str | None] = model_bases or {}
        self.model_base_suffixes = model_base_suffixes

    def handler(self) -> Framework:
        if self._loaded is None:
            loaded: Framework = getattr(importlib.import_module(self._module), self._attribute)
            self._loaded = loaded
        return self._loaded

    def call(self, interp: Interp, qualname: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        return self.handler().call(interp, qualname, leaf, args, kwargs, node)

    def call_unprefixed(self, interp: Interp, qualname: str, leaf: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
        return self.handler().call_unprefixed(interp, qualname, leaf, args, kwargs, node)

    def method(self, interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs,
               node: ast.AST) -> Value | None:
        return self.handler().method(interp, target, name, args, kwargs, node)

    def binop(self, interp: Interp, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        return self.handler().binop(interp, op, left, right, node)

    def before_call(self, interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        self.handler().before_call(interp, instance, args, kwargs)

    def finish(self, interp: Interp) -> None:
        if self._loaded is not None:  # never handed anything: it holds no state of this file
            self._loaded.finish(interp)


TENSORFLOW = LazyFramework("gradlint.extract.tensorflow", "TENSORFLOW", "tensorflow", ("tensorflow.", "keras.ops."),
                           model_bases={"tensorflow.Module": None})

# TensorFlow before Keras: it claims ``keras.ops.*`` (and hands what it does not model to Keras).
FRAMEWORKS: tuple[Framework, ...] = (TORCH, TENSORFLOW, KERAS)
