"""Torch-side measurement: which layers own weights, in what order they run, their gradients.

Imported only inside the worker subprocess (it imports torch at module level).

How execution order is found: a ``TorchFunctionMode`` sees every torch call during the
forward pass; the first call that receives one of a layer's parameters fixes the layer's
position. This works the same for torch modules, for Keras 3 layers on the torch backend
(their variables are torch Parameters, and Keras layers do not go through
``nn.Module.__call__``, so forward hooks never fire for them), and for raw ``nn.Parameter``
weights used in a ``forward`` by hand. The same mode sees sigmoid/tanh/ReLU calls --
module or functional -- and attributes them to the weight layer that ran last, which gives
saturation and dead-unit fractions without the activation being a module.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import field
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from gradlint.dynamic.errors import Skip
from gradlint.dynamic.layers import (
    Unit,
    combine_norms,
    is_symmetric,
    keras_units,
    tensor_norms,
    torch_units,
)
from gradlint.records import dataclass
from gradlint.verdict import Quantities, Thresholds, judge, layer_evidence


def _funcs(*candidates: Any) -> set[Any]:
    return {f for f in candidates if f is not None}


_TANH = _funcs(torch.tanh, torch.Tensor.tanh, torch.Tensor.tanh_, getattr(torch, "tanh_", None), F.tanh)
_SATURATING = _TANH | _funcs(
    torch.sigmoid, torch.Tensor.sigmoid, torch.Tensor.sigmoid_, getattr(torch, "sigmoid_", None), F.sigmoid,
    torch.special.expit,
)
_RECTIFIERS = _funcs(torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu, F.relu6, F.relu_)


class _Recorder(TorchFunctionMode):
    """Sees every torch call of the forward pass (see module docstring)."""

    def __init__(self, units: list[Unit], thresholds: Thresholds, discover: bool = False) -> None:
        super().__init__()
        self.units = units
        # A raw-tensor script: its weights are made while it runs, so every leaf tensor requiring
        # grad that a torch call receives with autograd on (not an init under no_grad) becomes a layer.
        self.discover = discover
        self.owner: dict[int, int] = {id(p): i for i, u in enumerate(units) for p in u.params}
        self.bound = thresholds.saturation_bound
        self.margin = thresholds.saturation_margin
        self.dead_share = thresholds.dead_share
        self.counter = 0
        self.current: int | None = None  # last layer with a weight matrix that ran

    def _note(self, value: Any) -> int | None:
        index = self.owner.get(id(value))
        if index is None and self.discover and value.is_leaf and value.requires_grad \
                and value.is_floating_point() and torch.is_grad_enabled():
            index = self.owner[id(value)] = len(self.units)
            self.units.append(Unit(name=f"tensor{index}", kind="tensor", params=[value],
                                   main=value if value.dim() >= 2 else None,
                                   unit_axes=(0, value.dim() - 1) if value.dim() >= 2 else (), act_axis=-1))
        if index is None:
            return None
        unit = self.units[index]
        if unit.first_use is None:
            unit.first_use = self.counter
            self.counter += 1
        if unit.main is not None:  # activations belong to weight matrices, not to norms or biases
            self.current = index
        return index

    def _hook_output(self, unit: Unit, out: torch.Tensor) -> None:
        """Record ‖∂L/∂y‖ of the layer's output y (first use only): the activation gradient."""
        unit.out_hooked = True

        def record(grad: torch.Tensor) -> None:
            unit.out_grad_sq += float(torch.linalg.vector_norm(grad.detach(), dtype=torch.float64)) ** 2

        out.register_hook(record)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        seen: list[int] = []
        has_activation = False  # a tensor argument that is not a weight: this call computes an output
        for arg in (*args, *kwargs.values()):
            items = arg if isinstance(arg, (list, tuple)) else (arg,)  # lists: e.g. nn.LSTM's flat weights
            for item in items:
                if isinstance(item, torch.Tensor):
                    index = self._note(item)
                    if index is None:
                        has_activation = True
                    else:
                        seen.append(index)
        beyond: torch.Tensor | None = None
        if self.current is not None and func in _SATURATING and args and isinstance(args[0], torch.Tensor):
            # Pre-activation, read before the call because sigmoid_/tanh_ overwrite it.
            beyond = args[0].detach().abs() > self.bound
        out = func(*args, **kwargs)
        if beyond is not None and self.current is not None and isinstance(out, torch.Tensor):
            # Saturated: the pre-activation beyond ±bound, or the output within `margin` of
            # the activation's bounds (tanh: ±1, sigmoid: 0 and 1), DeepDiagnosis' two tests.
            y = out.detach()
            low = -1.0 if func in _TANH else 0.0
            near = (y - low < self.margin) | (1.0 - y < self.margin)
            unit = self.units[self.current]
            unit.sat += int((beyond | near).sum()) if near.shape == beyond.shape else int(beyond.sum())
            unit.sat_total += beyond.numel()
        if self.current is not None and func in _RECTIFIERS and isinstance(out, torch.Tensor) and out.dim() >= 2:
            unit = self.units[self.current]
            y = out.detach()
            axis = unit.act_axis % y.dim()
            # A unit is dead when at least `dead_share` of its outputs (over the batch and
            # positions) are <= 0 (DeepDiagnosis: 70 %).
            share = (y <= 0).float().mean(dim=tuple(d for d in range(y.dim()) if d != axis))
            unit.dead += int((share >= self.dead_share).sum())
            unit.dead_total += y.shape[axis]
        if seen and has_activation:
            # Not for e.g. kernel.to(dtype) (weights only): that output is still the weight.
            # Tuples (nn.LSTM's output, hidden state): the first tensor is the output.
            first = out if isinstance(out, torch.Tensor) else next(
                (t for t in out if isinstance(t, torch.Tensor)) if isinstance(out, (list, tuple)) else iter(()), None
            )
            if first is not None and first.requires_grad:
                for index in seen:
                    unit = self.units[index]
                    if not unit.is_norm and not unit.out_hooked:
                        self._hook_output(unit, first)
        return out


def _tensors(out: Any, detached: bool = False) -> list[torch.Tensor]:
    """Floating tensors requiring grad in a model output (tensor, tuple, dict, dataclass-like
    ModelOutput); ``detached``: the floating tensors that do not."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() and out.requires_grad != detached else []
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v, detached)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _tensors(v, detached)]
    return []


@dataclass
class SeedMeasurement:
    layers: list[dict[str, Any]] = field(default_factory=list)
    first: int | None = None  # index in layers
    last: int | None = None
    loss: float = float("nan")
    nonfinite: bool = False
    relative_grad: float | None = None  # ‖∂L/∂θ‖ / ‖θ‖ over every trainable tensor (biases too)


def measure_once(
    model: Any,
    forward: Callable[[], Any],
    framework: str,
    thresholds: Thresholds,
    generator: torch.Generator,
) -> dict[str, Any]:
    """One forward + backward with bookkeeping; returns JSON-able per-layer numbers."""
    units = keras_units(model) if framework == "keras" else torch_units(model)
    if not units:
        raise Skip("the model has no trainable parameters")
    for unit in units:
        for p in unit.tensors:
            p.grad = None
    recorder = _Recorder(units, thresholds)
    with recorder:
        out = forward()
    return _backward(units, out, thresholds, generator)


def measure_script(run: Callable[[], tuple[Any, dict[str, Any]]], thresholds: Thresholds,
                   generator: torch.Generator) -> dict[str, Any]:
    """A raw-tensor script (no model object): ``run()`` executes it up to its first backward and
    returns its output and namespace. Its weights are the leaf tensors requiring grad that the run
    passes to torch calls with autograd on, in that order (``x.mm(w1)`` in the loop body), named by
    the module-level variable (or list/dict item) holding them; then the same backward as a model's."""
    recorder = _Recorder([], thresholds, discover=True)
    with recorder:
        out, namespace = run()
    units = recorder.units
    if not units:
        raise Skip("the script's output uses no tensor that requires grad")
    names: dict[int, str] = {}
    for var, value in namespace.items():
        items = [(var, value)] if isinstance(value, torch.Tensor) else \
            [(f"{var}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, (list, tuple)) else \
            [(f"{var}[{k!r}]", v) for k, v in value.items()] if isinstance(value, dict) else []
        for name, item in items:
            if isinstance(item, torch.Tensor):
                names.setdefault(id(item), name)
    for unit in units:
        unit.name = names.get(id(unit.params[0]), unit.name)
        unit.params[0].grad = None
    return _backward(units, out, thresholds, generator)


def _backward(units: list[Unit], out: Any, thresholds: Thresholds, generator: torch.Generator) -> dict[str, Any]:
    outputs = _tensors(out)
    ran = sorted((u for u in units if u.first_use is not None), key=lambda u: u.first_use or 0)
    if not outputs:
        # Floating outputs none of which requires grad, while weight layers ran: the forward cut them off
        # (a detach, no_grad or numpy round trip on every path). Every layer gets no gradient at all.
        outputs = _tensors(out, detached=True) if ran else []
        if not outputs:
            raise Skip("the model's output does not depend on its trainable weights (no floating tensor "
                       "requiring grad)")
    # The protocol's loss: MSE to a random N(0, 1) target of the output's shape (no labels
    # needed; docs/dynamic.md).
    loss = torch.stack(
        [F.mse_loss(o.float(), torch.randn(o.shape, generator=generator, dtype=torch.float32)) for o in outputs]
    ).sum()
    if loss.requires_grad:
        loss.backward()

    if not ran:
        raise Skip("no parameter was used in the forward pass")
    candidates = [i for i, u in enumerate(ran) if not u.is_norm and u.main is not None]
    result = SeedMeasurement(loss=float(loss.detach()))
    result.nonfinite = not math.isfinite(result.loss)
    tol = thresholds.symmetry_tol
    # All norms in two fused calls rather than several small ops per layer; per unit its
    # weights first, then its biases (which count for ‖θ‖ but not for the layer's norms).
    tensors = [p for u in ran for p in u.tensors]
    grad_norms = tensor_norms([p.grad if p.grad is not None else torch.zeros_like(p) for p in tensors])
    weight_norms = tensor_norms(tensors)
    total_grad = combine_norms(grad_norms)
    total_weight = combine_norms(weight_norms)
    if math.isfinite(total_grad) and total_weight > 0:
        result.relative_grad = total_grad / total_weight
    start = 0
    for index, unit in enumerate(ran):
        count = len(unit.params)
        grad_norm = combine_norms(grad_norms[start : start + count])
        weight_norm = combine_norms(weight_norms[start : start + count])
        start += count + len(unit.extra)
        finite = math.isfinite(grad_norm)
        result.nonfinite |= not finite
        # No gradient at all (``.grad`` still None after backward): nothing connects the layer to the loss.
        # Only weight layers (a weight matrix, not a norm) are judged by it.
        connected = unit.main is None or unit.is_norm or any(p.grad is not None for p in unit.params)
        # Hidden layers only: the output layer's units are the model's outputs.
        symmetric = bool(candidates) and index != candidates[-1] and is_symmetric(unit, tol)
        result.layers.append(
            {
                "name": unit.name,
                "kind": unit.kind,
                "grad_norm": grad_norm,
                "output_grad_norm": math.sqrt(unit.out_grad_sq) if unit.out_hooked else None,
                "weight_norm": weight_norm,
                "relative_grad": ((grad_norm / weight_norm if weight_norm > 0 else float("inf"))
                                  if finite else float("nan")),
                "saturation": unit.sat / unit.sat_total if unit.sat_total else None,
                "dead_fraction": unit.dead / unit.dead_total if unit.dead_total else None,
                "is_norm": unit.is_norm,
                "symmetric": symmetric,
                "connected": connected,
            }
        )
    result.nonfinite |= not math.isfinite(total_grad)
    if candidates:
        result.first, result.last = candidates[0], candidates[-1]
    return result.__dict__


def _ratio(seed: dict[str, Any], key: str = "grad_norm") -> float | None:
    """First/last ratio of a per-layer gradient norm in one seed."""
    if seed["first"] is None:
        return None
    first = seed["layers"][seed["first"]][key]
    last = seed["layers"][seed["last"]][key]
    if first is None or last is None:
        return None
    if not (math.isfinite(first) and math.isfinite(last)):
        return float("nan")
    if last == 0:
        return float("nan") if first == 0 else float("inf")
    return first / last


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    finite = [v for v in present if not math.isnan(v)]
    return statistics.median(finite) if finite else float("nan")


def aggregate(seeds: list[dict[str, Any]], thresholds: Thresholds) -> dict[str, Any]:
    """Medians over seeds, then the protocol's verdict (gradlint.verdict.judge)."""
    names = [tuple(layer["name"] for layer in s["layers"]) for s in seeds]
    if len(set(names)) > 1:
        seeds = seeds[:1]  # the architecture changed between seeds: medians would mix layers
    layers = []
    for i, layer in enumerate(seeds[0]["layers"]):
        merged = dict(layer)
        for key in ("grad_norm", "output_grad_norm", "weight_norm", "relative_grad", "saturation", "dead_fraction"):
            merged[key] = _median([s["layers"][i][key] for s in seeds])
        # Symmetry is structural (constant init): report it when most seeds show it; so is a layer
        # no gradient reaches at all.
        merged["symmetric"] = sum(s["layers"][i]["symmetric"] for s in seeds) * 2 > len(seeds)
        merged["connected"] = sum(not s["layers"][i].get("connected", True) for s in seeds) * 2 <= len(seeds)
        layers.append(merged)

    first, last = seeds[0]["first"], seeds[0]["last"]
    quantities = Quantities(
        ratio=_median([_ratio(s) for s in seeds]),
        loss=_median([s["loss"] for s in seeds]),
        nonfinite=any(s["nonfinite"] for s in seeds),
        relative_grad=_median([s["relative_grad"] for s in seeds]),
        first_relative_grad=(_median([s["layers"][first]["relative_grad"] for s in seeds])
                             if first is not None else None),
        output_grad=layers[last]["output_grad_norm"] if last is not None else None,
        symmetric=[layer["name"] for layer in layers if layer["symmetric"]],
        disconnected=[layer["name"] for layer in layers if not layer["connected"]],
        first=layers[first]["name"] if first is not None else None,
        last=layers[last]["name"] if last is not None else None,
        evidence=layer_evidence(layers, thresholds),
    )
    verdict = judge(quantities, thresholds)
    return {
        "verdict": verdict.label,
        "ratio": quantities.ratio,
        # ‖∂L/∂y_first‖ / ‖∂L/∂y_last‖ on layer outputs: what the static rules estimate (∏√χ).
        "activation_ratio": _median([_ratio(s, "output_grad_norm") for s in seeds]),
        "reason": verdict.reason,
        "evidence": list(verdict.evidence),
        "layers": layers,
        "loss": quantities.loss,
        "relative_grad": quantities.relative_grad,
        "first_relative_grad": quantities.first_relative_grad,
    }
