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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_NORM_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())

# Layers whose weight rows are not "output units" in the symmetric-init sense.
_NO_SYMMETRY_TYPES: tuple[type, ...] = (nn.Embedding, nn.EmbeddingBag, nn.RNNBase, nn.MultiheadAttention)


def _funcs(*candidates: Any) -> set[Any]:
    return {f for f in candidates if f is not None}


_SATURATING = _funcs(
    torch.sigmoid, torch.Tensor.sigmoid, torch.Tensor.sigmoid_, getattr(torch, "sigmoid_", None), F.sigmoid,
    torch.special.expit, torch.tanh, torch.Tensor.tanh, torch.Tensor.tanh_, getattr(torch, "tanh_", None), F.tanh,
)
_RECTIFIERS = _funcs(torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu, F.relu6, F.relu_)


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


def _split_bias(named: Iterable[tuple[str, torch.Tensor]]) -> list[torch.Tensor]:
    named = list(named)
    weights = [p for n, p in named if "bias" not in n.rsplit(".", 1)[-1].lower()]
    return weights or [p for _, p in named]  # a bias-only layer is still measured


def _torch_units(model: nn.Module) -> list[Unit]:
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
        units.append(
            Unit(
                name=mname or type(module).__name__,
                kind=type(module).__name__,
                params=_split_bias(own),
                main=None if is_norm else weight,
                unit_axes=(1,) if transposed else (0,),
                act_axis=1 if conv else -1,
                is_norm=is_norm,
                symmetry=not isinstance(module, _NO_SYMMETRY_TYPES),
            )
        )
    return units


def _keras_units(model: Any) -> list[Unit]:
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
        recurrent = "Cell" in cls or "RNN" in cls or "LSTM" in cls or "GRU" in cls
        units.append(
            Unit(
                name=layer.name,
                kind=cls,
                params=_split_bias(own),
                main=None if is_norm else main,
                unit_axes=(main.dim() - 1,) if main is not None else (),  # Keras kernels are (..., in, out)
                act_axis=-1,  # channels_last
                is_norm=is_norm,
                symmetry=not (recurrent or "Embedding" in cls or "Attention" in cls),
            )
        )
    return units


class _Recorder(TorchFunctionMode):
    """Sees every torch call of the forward pass (see module docstring)."""

    def __init__(self, units: list[Unit], saturation_bound: float) -> None:
        super().__init__()
        self.units = units
        self.owner: dict[int, int] = {id(p): i for i, u in enumerate(units) for p in u.params}
        self.bound = saturation_bound
        self.counter = 0
        self.current: int | None = None  # last layer with a weight matrix that ran

    def _note(self, value: Any) -> int | None:
        index = self.owner.get(id(value))
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
        if self.current is not None and func in _SATURATING and args and isinstance(args[0], torch.Tensor):
            # Pre-activation, read before the call because sigmoid_/tanh_ overwrite it.
            x = args[0].detach()
            unit = self.units[self.current]
            unit.sat += int((x.abs() > self.bound).sum())
            unit.sat_total += x.numel()
        out = func(*args, **kwargs)
        if self.current is not None and func in _RECTIFIERS and isinstance(out, torch.Tensor) and out.dim() >= 2:
            unit = self.units[self.current]
            y = out.detach()
            axis = unit.act_axis % y.dim()
            # A unit is dead when it is zero for every sample (and position); amax over the
            # other axes reads the tensor once, without the copy a movedim+reshape makes.
            peak = y.amax(dim=tuple(d for d in range(y.dim()) if d != axis))
            unit.dead += int((peak <= 0).sum())
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


def _tensors(out: Any) -> list[torch.Tensor]:
    """Floating tensors in a model output (tensor, tuple, dict, dataclass-like ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() and out.requires_grad else []
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _tensors(v)]
    return []


def _tensor_norms(tensors: list[torch.Tensor]) -> list[float]:
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


def _rows_identical(t: torch.Tensor, axis: int, tol: float) -> bool:
    rows = t.detach().movedim(axis, 0).reshape(t.shape[axis], -1)
    if rows.shape[0] < 2:
        return False
    # Two rows first: with random init they differ and the full passes are skipped.
    pair = rows[:2]
    if float((pair[1] - pair[0]).abs().max()) > tol * float(pair.abs().max()):
        return False
    return float((rows - rows[:1]).abs().max()) <= tol * float(rows.abs().max())


@dataclass
class SeedMeasurement:
    layers: list[dict[str, Any]] = field(default_factory=list)
    first: int | None = None  # index in layers
    last: int | None = None
    loss: float = float("nan")
    nonfinite: bool = False
    max_grad_rms: float = 0.0


def measure_once(
    model: Any,
    forward: Callable[[], Any],
    framework: str,
    thresholds: dict[str, float],
    generator: torch.Generator,
) -> dict[str, Any]:
    """One forward + backward with bookkeeping; returns JSON-able per-layer numbers."""
    units = _keras_units(model) if framework == "keras" else _torch_units(model)
    if not units:
        raise _skip("the model has no trainable parameters")
    for unit in units:
        for p in unit.params:
            p.grad = None
    recorder = _Recorder(units, thresholds["saturation_bound"])
    with recorder:
        out = forward()
    outputs = _tensors(out)
    if not outputs:
        raise _skip("the model's output does not depend on its trainable weights (no floating tensor requiring grad)")
    # MSE to a random N(0, 1) target of the output's shape: no labels needed, and the
    # first/last ratio does not depend on the loss scale.
    loss = sum(
        F.mse_loss(o.float(), torch.randn(o.shape, generator=generator, dtype=torch.float32)) for o in outputs
    )
    loss.backward()

    ran = sorted((u for u in units if u.first_use is not None), key=lambda u: u.first_use)  # type: ignore[arg-type, return-value]
    if not ran:
        raise _skip("no parameter was used in the forward pass")
    candidates = [i for i, u in enumerate(ran) if not u.is_norm and u.main is not None]
    result = SeedMeasurement(loss=float(loss.detach()))
    result.nonfinite = not math.isfinite(result.loss)
    tol = thresholds["symmetry_tol"]
    # All norms in two fused calls rather than several small ops per layer.
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for u in ran for p in u.params]
    grad_norms = _tensor_norms(grads)
    weight_norms = _tensor_norms([p for u in ran for p in u.params])
    start = 0
    for index, unit in enumerate(ran):
        count = len(unit.params)
        grad_norm = _combine(grad_norms[start : start + count])
        weight_norm = _combine(weight_norms[start : start + count])
        start += count
        numel = sum(p.numel() for p in unit.params)
        finite = math.isfinite(grad_norm)
        result.nonfinite |= not finite
        if finite and numel:
            result.max_grad_rms = max(result.max_grad_rms, grad_norm / math.sqrt(numel))
        symmetric = False
        if (
            unit.symmetry
            and unit.main is not None
            and candidates
            and index != candidates[-1]  # hidden layers only: the output layer's units are the outputs
            and unit.main.grad is not None
        ):
            symmetric = any(
                _rows_identical(unit.main, axis, tol) and _rows_identical(unit.main.grad, axis, tol)
                for axis in unit.unit_axes
            )
        result.layers.append(
            {
                "name": unit.name,
                "kind": unit.kind,
                "grad_norm": grad_norm,
                "output_grad_norm": math.sqrt(unit.out_grad_sq) if unit.out_hooked else None,
                "weight_norm": weight_norm,
                "relative_grad": (grad_norm / weight_norm if weight_norm > 0 else float("inf")) if finite else float("nan"),
                "saturation": unit.sat / unit.sat_total if unit.sat_total else None,
                "dead_fraction": unit.dead / unit.dead_total if unit.dead_total else None,
                "is_norm": unit.is_norm,
                "symmetric": symmetric,
            }
        )
    if candidates:
        result.first, result.last = candidates[0], candidates[-1]
    return result.__dict__


def _skip(message: str) -> Exception:
    from gradlint.dynamic.worker import Skip

    return Skip(message)


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


def aggregate(seeds: list[dict[str, Any]], thresholds: dict[str, float]) -> dict[str, Any]:
    """Medians over seeds, then the verdict."""
    names = [tuple(layer["name"] for layer in s["layers"]) for s in seeds]
    if len(set(names)) > 1:
        seeds = seeds[:1]  # the architecture changed between seeds: medians would mix layers
    layers = []
    for i, layer in enumerate(seeds[0]["layers"]):
        merged = dict(layer)
        for key in ("grad_norm", "output_grad_norm", "weight_norm", "relative_grad", "saturation", "dead_fraction"):
            merged[key] = _median([s["layers"][i][key] for s in seeds])
        # Symmetry is structural (constant init): report it when most seeds show it.
        merged["symmetric"] = sum(s["layers"][i]["symmetric"] for s in seeds) * 2 > len(seeds)
        layers.append(merged)

    ratios = [_ratio(s) for s in seeds]
    ratio = _median(ratios)
    nonfinite = any(s["nonfinite"] for s in seeds)
    max_rms = _median([s["max_grad_rms"] for s in seeds]) or 0.0
    symmetric = [layer["name"] for layer in layers if layer["symmetric"]]
    first, last = seeds[0]["first"], seeds[0]["last"]
    verdict, reason = decide_verdict(ratio, nonfinite, symmetric, max_rms, thresholds)
    if first is not None:
        reason += f" [first: {layers[first]['name']}, last: {layers[last]['name']}]"
    return {
        "verdict": verdict,
        "ratio": ratio,
        # ‖∂L/∂y_first‖ / ‖∂L/∂y_last‖ on layer outputs: what the static rules estimate (∏√χ).
        "activation_ratio": _median([_ratio(s, "output_grad_norm") for s in seeds]),
        "reason": reason,
        "layers": layers,
        "loss": _median([s["loss"] for s in seeds]),
    }


def decide_verdict(
    ratio: float | None,
    nonfinite: bool,
    symmetric: list[str],
    max_grad_rms: float,
    thresholds: dict[str, float],
) -> tuple[str, str]:
    """Verdict and a one-line explanation. Order: non-finite, symmetric, ratio, gradient size."""
    vanish, explode = thresholds["vanishing_ratio"], thresholds["exploding_ratio"]
    if nonfinite:
        return "exploding", "loss or gradients are NaN/Inf"
    if symmetric:
        shown = ", ".join(symmetric[:3]) + (", ..." if len(symmetric) > 3 else "")
        return "symmetric", f"hidden units with identical weights and identical gradients in {shown}"
    if ratio is not None and math.isnan(ratio):
        return "vanishing", "no gradient reaches the first or the last weight layer (both zero)"
    if ratio is not None and ratio > explode:
        return "exploding", f"first/last weight-gradient ratio {ratio:.2e} > {explode:g}"
    if ratio is not None and ratio < vanish:
        return "vanishing", f"first/last weight-gradient ratio {ratio:.2e} < {vanish:g}"
    if max_grad_rms > thresholds["exploding_grad_rms"]:
        return "exploding", f"gradient RMS {max_grad_rms:.2e} > {thresholds['exploding_grad_rms']:g}"
    if ratio is None:
        return "healthy", "finite gradients (no first/last weight layer pair to compare)"
    return "healthy", f"first/last weight-gradient ratio {ratio:.2e} within [{vanish:g}, {explode:g}]"
