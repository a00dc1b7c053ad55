"""Weight units: the main path linearized for messages and simple questions.

A *unit* is one weight layer together with what acts on its output before the next
weight layer: its activation, and whether a normalization sits there. (The estimate itself
propagates over the whole path: ``gradlint.analysis.flow``.)
"""

from __future__ import annotations

from collections.abc import Iterator

from gradlint import gradflow
from gradlint.model import RESHAPE_OPS, Gate, Init, Layer, LayerKind, Model, Node
from gradlint.records import dataclass

# Layers that do not end a unit: they scale or re-arrange, they do not saturate.
_TRANSPARENT_KINDS = frozenset({LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER})


@dataclass
class Unit:
    layer: Layer
    activation: str = "linear"
    act_param: float | None = None
    act_layer: Layer | None = None
    normalized: bool = False
    norm_layer: Layer | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    gated: bool = False  # a multiplicative gate acts on this unit's output (SE, GLU)

    @property
    def init(self) -> Init | None:
        return self.layer.weight_init


def input_width(model: Model) -> int | None:
    """Features entering the first layer, from the model's input (Keras: channels last)."""
    hint = model.input_hint
    if hint is None or not hint.shape or hint.kind in ("tokens", "unknown"):
        return None
    if hint.kind == "image":
        return hint.shape[-1] if model.framework in ("keras", "tensorflow") else hint.shape[0]  # TF: NHWC
    return hint.shape[-1]


def units_and_barriers(path: list[Node], width: int | None = None) -> Iterator[Unit | Node]:
    """Linearize a path into units; barriers (residual, norm w/o unit, unknown, recurrent) pass through.

    ``width`` is the number of features entering the path when known; it fills in the fan-in of
    layers that do not state it (Keras Dense/Conv). Residual nodes remember their input width
    (``_in_width``) so their branches can be linearized the same way."""
    current: Unit | None = None
    for node in path:
        if isinstance(node, Layer):
            kind = node.kind
            if kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING) or (
                    kind == LayerKind.OTHER and node.op in ("matmul",)):
                if current is not None:
                    yield current
                fan_in = node.fan_in
                if kind == LayerKind.EMBEDDING:
                    fan_in = 1  # a lookup: each output sees one row, σ_w² is the row variance
                elif fan_in is None and width is not None:
                    fan_in = width * (node.receptive or 1)
                current = Unit(node, fan_in=fan_in, fan_out=node.fan_out)
                if node.activation and node.activation != "linear":
                    current.activation = node.activation
                    current.act_param = node.act_param
                    current.act_layer = node
                if node.fan_out is not None:
                    width = node.fan_out // (node.receptive or 1)
                continue
            if kind == LayerKind.ACTIVATION:
                if current is not None and current.activation == "linear":
                    current.activation = node.activation or "other"
                    current.act_param = node.act_param
                    current.act_layer = node
                elif current is not None:
                    # Two activations in a row (e.g. Dense(activation='relu') then Activation('sigmoid')):
                    # the unit keeps the saturating one, which is what bounds the gradient.
                    if (node.activation in gradflow.SATURATING) and current.activation not in gradflow.SATURATING:
                        current.activation = node.activation or "other"
                        current.act_layer = node
                else:
                    yield node
                continue
            if kind == LayerKind.NORMALIZATION:
                if current is not None:
                    current.normalized = True
                    current.norm_layer = node
                    yield current
                    current = None
                yield node
                continue
            if kind == LayerKind.OTHER and node.op in RESHAPE_OPS:
                width = node.fan_out  # re-arranged features: the width after it as extracted, or unknown
                continue
            if kind in _TRANSPARENT_KINDS or kind == LayerKind.SCALE:
                continue
            # recurrent, attention, unknown: a barrier
            if current is not None:
                yield current
                current = None
            if node.fan_out is not None:
                width = node.fan_out
            yield node
        elif isinstance(node, Gate):
            if current is not None:
                current.gated = True
            continue
        else:  # Residual
            if current is not None:
                yield current
                current = None
            node._in_width = width  # type: ignore[attr-defined]
            out = _out_width(node.branch, width)
            width = out if out is not None else width
            yield node
    if current is not None:
        yield current


def _out_width(path: list[Node], width: int | None) -> int | None:
    for item in units_and_barriers(path, width):
        if isinstance(item, Unit) and item.fan_out is not None:
            width = item.fan_out // (item.layer.receptive or 1)
    return width


def model_units(model: Model) -> list[Unit]:
    return [u for u in units_and_barriers(model.path, input_width(model)) if isinstance(u, Unit)]


