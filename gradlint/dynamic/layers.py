"""Weight layers of a model, for the dynamic check and the training monitor (public API).

Imports torch at module level: only the dynamic check's worker subprocess and the monitor
(which runs inside the user's training process) import this module.

- ``torch_units(model)``, ``keras_units(model)``: one ``Unit`` per module/Keras layer owning
  trainable parameters (raw parameters beside child layers: one each), in registration order,
  biases kept apart, normalization layers marked;
- ``tensor_norms(tensors)``: L2 norms in one fused call (NaN/inf kept);
- ``combine_norms(norms)``: the norm of several tensors taken together;
- ``is_symmetric(unit, tol)``: identical weight rows and identical gradient rows (a constant
  init: the units stay copies of each other).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import field
from typing import Any

import torch
from torch import nn

from gradlint.records import dataclass

__all__ = ["Unit", "combine_norms", "is_symmetric", "keras_units", "rows_identical", "tensor_norms", "torch_units"]

_NORM_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())

# Layers whose weight rows are not "output units" in the symmetric-init sense.
_NO_SYMMETRY_TYPES: tuple[type, ...] = (nn.Embedding, nn.EmbeddingBag, nn.RNNBase, nn.MultiheadAttention)


@dataclass
class Unit:
    """A measured layer: a module/Keras layer owning parameters, or one raw Parameter."""

    name: str
    kind: str
    params: list[torch.Tensor]  # the tensors whose gradients are measured (biases excluded)
    main: torch.Tensor | None  # weight used for first/last and the symmetry test (>= 2-D)
    unit_axes: tuple[int, ...]  # axes of `main` that index output units (symmetry test)
    act_axis: int  # axis of the layer's output that indexes units (dead ReLU units)
    is_norm: bool = False
    symmetry: bool = True  # whether the symmetry test applies
    first_use: int | None = None
    sat: int = 0
    sat_total: int = 0
    dead: int = 0
    dead_total: int = 0
    out_hooked: bool = False
    out_grad_sq: float = 0.0
    # The unit's other trainable tensors (biases): part of ‖θ‖ for the relative gradient.
    extra: list[torch.Tensor] = field(default_factory=list)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """Every trainable tensor of the unit (weights, then biases)."""
        return self.params + self.extra


def _split_bias(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(weights, biases); a bias-only layer's biases are its weights (it is still measured)."""
    named = list(named)
    weights = [p for n, p in named if "bias" not in n.rsplit(".", 1)[-1].lower()]
    if not weights:
        return [p for _, p in named], []
    return weights, [p for n, p in named if "bias" in n.rsplit(".", 1)[-1].lower()]


def torch_units(model: nn.Module) -> list[Unit]:
    """The weight layers of a torch module, in registration order (see the module docstring)."""
    units: list[Unit] = []
    seen: set[int] = set()
    for mname, module in model.named_modules():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad and id(p) not in seen]
        if not own:
            continue
        seen.update(id(p) for _, p in own)
        # Split into one unit per parameter: ParameterList/Dict, modules holding raw
        # parameters beside child layers, and custom (non torch.nn) modules holding several
        # weight matrices, e.g. `self.w1`, `self.w2` used with F.linear in forward.
        custom = not type(module).__module__.startswith("torch.nn")
        container = (
            isinstance(module, (nn.ParameterList, nn.ParameterDict))
            or any(True for child in module.children() for _ in child.parameters())
            or (custom and sum(p.dim() >= 2 for _, p in own) > 1)
        )
        if container:
            # Raw parameters beside child layers (or in a ParameterList) are used one by one
            # in a hand-written forward: each is its own layer. Their unit axis is unknown
            # (x @ W or F.linear(x, W)), so both are tried.
            for pname, p in own:
                units.append(
                    Unit(
                        name=f"{mname}.{pname}" if mname else pname,
                        kind="Parameter",
                        params=[p],
                        main=p if p.dim() >= 2 else None,
                        unit_axes=(0, p.dim() - 1) if p.dim() >= 2 else (),
                        act_axis=-1,
                    )
                )
            continue
        weight = getattr(module, "weight", None)
        if not (isinstance(weight, torch.Tensor) and weight.dim() >= 2):
            weight = next((p for _, p in own if p.dim() >= 2), None)
        conv = isinstance(module, nn.modules.conv._ConvNd)
        transposed = conv and bool(getattr(module, "transposed", False))
        is_norm = isinstance(module, _NORM_TYPES) or (
            "norm" in type(module).__name__.lower() and all(p.dim() <= 1 for _, p in own)
        )
        params, biases = _split_bias(own)
        units.append(
            Unit(
                name=mname or type(module).__name__,
                kind=type(module).__name__,
                params=params,
                extra=biases,
                main=None if is_norm else weight,
                unit_axes=(1,) if transposed else (0,),
                act_axis=1 if conv else -1,
                is_norm=is_norm,
                symmetry=not isinstance(module, _NO_SYMMETRY_TYPES),
            )
        )
    units.extend(_raw_tensor_units(model, seen))
    return units


def _raw_tensor_units(model: nn.Module, seen: set[int]) -> list[Unit]:
    """Plain tensors a module keeps as attributes that are trained by hand: ``self.w =
    torch.randn(n, m, requires_grad=True)`` or a list/tuple/dict of them (``self.weights = [...]``).
    They are no registered parameters (``model.parameters()`` misses them), but they are the weights
    the forward uses (``x @ self.w``): one unit each, both unit axes tried, like a raw Parameter.
    Only leaves that require grad; a buffer or a fixed tensor is not a weight."""
    units: list[Unit] = []
    for mname, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr.startswith("_"):  # _parameters, _buffers, _modules and torch's own state
                continue
            if isinstance(value, torch.Tensor):
                items: list[tuple[str, Any]] = [(attr, value)]
            elif isinstance(value, (list, tuple)):
                items = [(f"{attr}[{i}]", v) for i, v in enumerate(value)]
            elif isinstance(value, dict):
                items = [(f"{attr}[{k!r}]", v) for k, v in value.items()]
            else:
                continue
            for name, tensor in items:
                if not (isinstance(tensor, torch.Tensor) and tensor.is_leaf and tensor.requires_grad
                        and tensor.is_floating_point()) or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                units.append(Unit(
                    name=f"{mname}.{name}" if mname else name,
                    kind="tensor",
                    params=[tensor],
                    main=tensor if tensor.dim() >= 2 else None,
                    unit_axes=(0, tensor.dim() - 1) if tensor.dim() >= 2 else (),
                    act_axis=-1,
                ))
    return units


def keras_units(model: Any) -> list[Unit]:
    """The weight layers of a Keras 3 model on the torch backend (variables are torch tensors)."""
    units: list[Unit] = []
    seen: set[int] = set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        # Own variables only: sublayers' variables are measured with the sublayer.
        own_vars = [v for v in getattr(layer, "_trainable_variables", []) if v.trainable]
        own = [(v.path, v.value) for v in own_vars if id(v.value) not in seen]
        if not own:
            continue
        seen.update(id(p) for _, p in own)
        cls = type(layer).__name__
        is_norm = "Normalization" in cls
        kernel = getattr(layer, "kernel", None)
        main = kernel.value if kernel is not None and hasattr(kernel, "value") else None
        if main is None or main.dim() < 2:
            main = next((p for _, p in own if p.dim() >= 2), None)
        params, biases = _split_bias(own)
        recurrent = "Cell" in cls or "RNN" in cls or "LSTM" in cls or "GRU" in cls
        units.append(
            Unit(
                name=layer.name,
                kind=cls,
                params=params,
                extra=biases,
                main=None if is_norm else main,
                unit_axes=(main.dim() - 1,) if main is not None else (),  # Keras kernels are (..., in, out)
                act_axis=-1,  # channels_last
                is_norm=is_norm,
                symmetry=not (recurrent or "Embedding" in cls or "Attention" in cls),
            )
        )
    return units


def tensor_norms(tensors: list[torch.Tensor]) -> list[float]:
    """L2 norm of each tensor: NaN if it holds a NaN, inf if it holds an inf.

    One fused call in the tensors' own dtype (a float64 copy of every weight and gradient
    doubled the cost on large layers); only a norm that overflowed to inf is redone in
    float64, to tell a huge finite gradient from a real inf.
    """
    if not tensors:
        return []
    detached = [t.detach() for t in tensors]
    try:
        norms = torch.stack([n.float() for n in torch._foreach_norm(detached)]).tolist()
    except (RuntimeError, TypeError):  # mixed dtypes/devices: one at a time
        norms = [float(torch.linalg.vector_norm(t)) for t in detached]
    for i, value in enumerate(norms):
        if math.isinf(value):
            norms[i] = float(torch.linalg.vector_norm(detached[i], dtype=torch.float64))
    return norms


def _combine(norms: list[float]) -> float:
    return math.sqrt(sum(n * n for n in norms)) if norms else 0.0




def combine_norms(norms: Iterable[float]) -> float:
    """‖(t_1, ..., t_n)‖ from the norms ‖t_i‖."""
    return math.sqrt(sum(n * n for n in norms))


def rows_identical(t: torch.Tensor, axis: int, tol: float) -> bool:
    """Whether every slice of ``t`` along ``axis`` equals the first, within tol * max|t|."""
    rows = t.detach().movedim(axis, 0).reshape(t.shape[axis], -1)
    if rows.shape[0] < 2:
        return False
    # Two rows first: with random init they differ and the full passes are skipped.
    pair = rows[:2]
    if float((pair[1] - pair[0]).abs().max()) > tol * float(pair.abs().max()):
        return False
    return float((rows - rows[:1]).abs().max()) <= tol * float(rows.abs().max())


def is_symmetric(unit: Unit, tol: float) -> bool:
    """Identical weight rows and identical gradient rows along one of the unit axes.

    The caller decides whether the layer is a hidden one (an output layer's units are the
    model's outputs, which may well start equal).
    """
    main = unit.main
    if not unit.symmetry or main is None or main.grad is None or main.grad.is_sparse:
        return False
    return any(rows_identical(main, axis, tol) and rows_identical(main.grad, axis, tol) for axis in unit.unit_axes)
