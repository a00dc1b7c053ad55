"""``copy.deepcopy`` of the values a model is built from.

The Annotated Transformer's ``clones(module, N)`` (``nn.ModuleList([copy.deepcopy(module) for _ in
range(N)])``) and many research repos build their stacks by deep-copying one block. A deep copy is a
new module tree with the same structure and the same parameter values: each layer of the copy is a new
layer with the original's kind, widths and init (its weights are the same draw, which changes nothing the
mean-field estimate reads), each free ``nn.Parameter`` a new parameter with the original's init. What is
not a module, a container, a parameter or a tensor (classes, functions, constants, names) is shared, as
``copy.deepcopy`` shares what it cannot or need not copy.
"""

from __future__ import annotations

from dataclasses import replace

from gradlint.extract.values import (
    ContainerV,
    DictV,
    InstanceV,
    LayerObj,
    ListV,
    ParamV,
    TensorConstV,
    TransposedV,
    Value,
    next_serial,
)
from gradlint.model import Layer


class DeepCopier:
    """One ``copy.deepcopy`` call: ``memo`` keeps shared sub-values shared in the copy (a layer held by
    two attributes is one layer in the copy too) and ends cycles."""

    def __init__(self) -> None:
        self.memo: dict[int, object] = {}
        self.built: list[Value] = []  # module instances and containers the copy made, outermost last

    def layer(self, layer: Layer) -> Layer:
        found = self.memo.get(id(layer))
        if isinstance(found, Layer):
            return found
        copied = replace(layer)
        self.memo[id(layer)] = copied
        return copied

    def copy(self, value: Value) -> Value:
        found = self.memo.get(id(value))
        if isinstance(found, Value):
            return found
        out: Value
        if isinstance(value, LayerObj):
            out = replace(value, layer=self.layer(value.layer), owned=False, attrs={})
            self.memo[id(value)] = out
            out.attrs.update({k: self.copy(v) for k, v in value.attrs.items()})
        elif isinstance(value, InstanceV):
            out = replace(value, attrs={}, owned=False,
                          seq_items=None if value.seq_items is None else [])
            self.memo[id(value)] = out
            out.attrs.update({k: self.copy(v) for k, v in value.attrs.items()})
            if value.seq_items is not None and out.seq_items is not None:
                out.seq_items.extend(self.copy(v) for v in value.seq_items)
            self.built.append(out)
        elif isinstance(value, ContainerV):
            out = replace(value, items=[], keys=None if value.keys is None else list(value.keys), owned=False,
                          serial=next_serial())
            self.memo[id(value)] = out
            out.items.extend(self.copy(v) for v in value.items)
            self.built.append(out)
        elif isinstance(value, ListV):
            out = replace(value, items=[], serial=next_serial())
            self.memo[id(value)] = out
            out.items.extend(self.copy(v) for v in value.items)
        elif isinstance(value, DictV):
            out = replace(value, items={})
            self.memo[id(value)] = out
            out.items.update({k: self.copy(v) for k, v in value.items.items()})
        elif isinstance(value, ParamV):  # a layer's weight follows its layer; a free parameter is new
            owner = None if value.owner is None else self.layer(value.owner)
            out = replace(value, owner=owner, born=next_serial())
            self.memo[id(value)] = out
        elif isinstance(value, TensorConstV):
            out = replace(value)
            self.memo[id(value)] = out
        elif isinstance(value, TransposedV):
            base = self.copy(value.base)
            out = replace(value, base=base) if isinstance(base, (ParamV, TensorConstV)) else value
            self.memo[id(value)] = out
        else:
            out = value
        return out
