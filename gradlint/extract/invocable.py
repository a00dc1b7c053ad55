"""Values with their own call semantics: ``super()`` and its methods, ``functools.partial``,
initializer objects (``w_init(shape=(n, m))``).

``Interp.call`` dispatches every ``InvocableV`` to its ``invoke``, like any other value kind.
"""

from __future__ import annotations

import ast

from gradlint.extract.api import Args, Interp, InvocableV, Kwargs
from gradlint.extract.common import first_tensor, method_binding, shape_dims
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    ClassV,
    Const,
    ContainerV,
    InitV,
    InstanceV,
    Ref,
    TensorConstV,
    Value,
)
from gradlint.model import Init
from gradlint.records import dataclass


@dataclass(eq=False)
class InitializerV(InitV, InvocableV):
    """A Keras or TensorFlow initializer object. Called with a shape it is a tensor with its init:
    the Keras guide's custom layers create weights as ``tf.Variable(w_init(shape=(n, m)))``."""

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        dims = shape_dims(kwargs.get("shape", args[0] if args else None))
        shape = tuple(d for d in dims if d is not None) if dims is not None and None not in dims else None
        return TensorConstV(Init(self.init.scheme, dict(self.init.params), self.init.span), shape)


class SuperV(Value):
    """``super()`` inside a method: attribute lookup starts after the current class."""

    def __init__(self, cls: ClassInfo | None, self_val: Value | None) -> None:
        self.cls = cls
        self.self_val = self_val


class PartialV(InvocableV):
    """``functools.partial(f, *args, **kwargs)``."""

    def __init__(self, func: Value, args: Args, kwargs: Kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        return interp.call(self.func, self.args + args, {**self.kwargs, **kwargs}, node)


class SuperMethodV(InvocableV):
    """``super().name``: the next definition in the MRO, or the framework base class's behaviour."""

    def __init__(self, sup: SuperV, name: str) -> None:
        self.sup = sup
        self.name = name

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        sup = self.sup
        instance = sup.self_val
        if sup.cls is None or not isinstance(instance, InstanceV):
            return UNKNOWN
        found = instance.info.find_method(self.name, after=sup.cls)
        if found is not None:
            cls, fnode = found
            binding = method_binding(fnode)
            first = [] if binding == "static" else [ClassV(instance.info) if binding == "class" else instance]
            return interp.call_function(interp.make_function(fnode, cls.scope, cls), first + args, kwargs,
                                        self_val=instance)
        # Reached the framework base class.
        if self.name == "__init__" and instance.seq_items is not None:
            interp.fill_sequential(instance, args, kwargs)
            return Const(None)
        if self.name in ("forward", "call", "__call__"):
            if instance.seq_items is not None:
                return apply_sequential_items(interp, instance, args, kwargs, node)
            return interp.unknown_call(args, kwargs, node, "super." + self.name)
        if self.name == "__init__":
            if any(
                not isinstance(b, ClassV) and not (isinstance(b, Ref) and interp.is_framework_base(b.qualname))
                for b in sup.cls.bases
            ):
                instance.partial = True  # an unknown base class may build layers we cannot see
            return Const(None)
        return UNKNOWN


def apply_sequential_items(interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    """The forward of a subclass of nn.Sequential (or Keras Sequential) that defines none: its
    items applied in order to the first tensor argument."""
    seq = ContainerV("sequential", instance.seq_items or [], None, instance.span, instance.info.framework or "torch",
                     instance.partial, owned=True)
    tensor = first_tensor(args, kwargs)
    return interp.apply_module(seq, tensor, [tensor], {}, node) if tensor else UNKNOWN
