"""`gradlint inspect`: what gradlint understood of each model, as data and as text.

For every model: the nodes of its main path in execution order (layers with kind, width,
activation, init and the normalization that follows them; residual blocks and gates as nested
branches), the UNKNOWN nodes with the reason extraction recorded, and per weight layer the
estimated forward scale (pre-activation variance q) and gradient (backward gain and weight-
gradient ratio, both relative to the last weight layer of the stretch the estimate can see).

Pure: models in, dicts and strings out; the CLI reads the file and prints. The per-layer numbers
come from one adapter, :func:`layer_estimates`, so that switching it to the end-to-end
propagation of the analysis package is a change in one place.
"""

from __future__ import annotations

import math
from typing import Any

from gradlint.analysis.flow import model_segments, segment_flow
from gradlint.analysis.units import Unit, input_width, units_and_barriers
from gradlint.model import INIT_MODES, RESHAPE_OPS, Gate, Init, Layer, LayerKind, Model, Node, Residual, unresolved
from gradlint.records import dataclass

SCHEMA_VERSION = 1

# What an UNKNOWN node means when extraction did not record a reason: the op names it uses.
_UNKNOWN_OPS = {
    "too-complex": "structure too large to follow",
    "partial": "container whose contents are not all known",
    "elementwise": "element-wise operation gradlint does not model",
    "recurrence": "hand-unrolled recurrence",
    "arg_scope": "defaults set by arg_scope are not followed",
}


class ModelNotFound(LookupError):
    """``PATH:MODEL`` named a model the file does not define."""

    def __init__(self, wanted: str, found: list[str]) -> None:
        self.wanted, self.found = wanted, found
        listed = ", ".join(found) if found else "none"
        super().__init__(f"no model named {wanted!r} (models found: {listed})")


@dataclass
class LayerNumbers:
    """The estimate at one weight layer (log10; relative to the last weight layer of its stretch)."""

    log10_q: float | None
    log10_backward: float | None
    log10_weight_grad: float | None
    alive: float | None = None  # share of live ReLU pairs when a constant bias shifts the layer (0: all dead)


# ---------------------------------------------------------------------- selection


def split_target(target: str, exists: Any) -> tuple[str, str | None]:
    """``PATH[:MODEL]``: the path as given if it exists (``exists(path)``), else split at the last ':'."""
    if exists(target) or ":" not in target:
        return target, None
    path, _, name = target.rpartition(":")
    return (path, name or None) if path else (target, None)


def select(models: list[Model], name: str | None) -> list[Model]:
    if name is None:
        return models
    chosen = [m for m in models if name in (m.name, m.symbol)]
    if not chosen:  # a model whose forward could not be described is shown through its parts
        chosen = [m for m in models if m.name.startswith(f"{name}.")]
    if not chosen:
        raise ModelNotFound(name, sorted({m.name for m in models}))
    return chosen


# ---------------------------------------------------------------------- estimates (the adapter)


def layer_estimates(model: Model) -> tuple[dict[int, LayerNumbers], list[str]]:
    """Per weight layer (by ``id``), the end-to-end estimate at init; and the assumptions it rests on.

    Adapter over the propagation the rules judge (``gradlint.analysis.flow``): per segment of the
    main path, the pre-activation variance q, and the backward and weight gradients relative to the
    segment's last weight layer."""
    out: dict[int, LayerNumbers] = {}
    assumptions: list[str] = []
    for segment in model_segments(model):
        flow = segment_flow(segment)
        if flow is None or not flow.layers:
            continue
        assumptions.extend(a for a in flow.assumptions if a not in assumptions)
        last = flow.layers[-1]
        for lf in flow.layers:
            if lf.key is None:
                continue
            out[lf.key] = LayerNumbers(_log10(lf.q_pre), _finite(lf.log10_backward - last.log10_backward),
                                       _finite(lf.log10_grad - last.log10_grad),
                                       None if lf.alive is None else float(f"{lf.alive:.3g}"))
    return out, assumptions


def _log10(value: float | None) -> float | None:
    return round(math.log10(value), 2) if value is not None and value > 0 and math.isfinite(value) else None


def _finite(value: float | None) -> float | None:
    return round(value, 2) if value is not None and math.isfinite(value) else None


# ---------------------------------------------------------------------- description


def render_init(init: Init | None) -> str | None:
    """An init in the user's terms: ``kaiming_normal(mode='fan_out', gain=1.41)``, ``PyTorch default``."""
    if init is None:
        return None
    if init.scheme == "torch_default":
        return "PyTorch default"
    if init.scheme == "keras_default":
        return "Keras default (glorot_uniform)"
    if init.scheme == "unknown" and init.written:
        return init.written  # why: "unknown (Net._init_weights may re-initialise it)"
    args = []
    for key, value in sorted(init.params.items(), key=lambda kv: (kv[0] != "mode", kv[0])):  # mode first
        if key == "mode":  # a code (params are numbers): say which mode
            args.append(f"mode='{INIT_MODES.get(int(value), value)}'")
            continue
        if key.endswith("_mode"):  # mode flags are stored as 1.0: say which mode
            if value:
                args.append(f"mode='{key[: -len('_mode')]}'")
            continue
        args.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value!r}")
    return f"{init.scheme}({', '.join(args)})" if args else init.scheme


def unknown_reason(layer: Layer) -> str:
    if layer.reason:
        return layer.reason
    return _UNKNOWN_OPS.get(layer.op, f"unresolved call {layer.op}")


def _units_by_layer(path: list[Node], width: int | None, out: dict[int, Unit]) -> None:
    for item in units_and_barriers(path, width):
        if isinstance(item, Unit):
            out[id(item.layer)] = item
        elif isinstance(item, Residual):
            _units_by_layer(item.branch, getattr(item, "_in_width", None), out)
            _units_by_layer(item.shortcut, getattr(item, "_in_width", None), out)
    for node in path:  # gates are skipped by the linearization: their paths are units of their own
        if isinstance(node, Gate):
            _units_by_layer(node.path, None, out)


def _layer_json(layer: Layer, unit: Unit | None, numbers: LayerNumbers | None) -> dict[str, Any]:
    activation = layer.activation
    fan_in, fan_out = layer.fan_in, layer.fan_out
    norm = None
    if unit is not None:
        activation = unit.activation
        fan_in = unit.fan_in if unit.fan_in is not None else fan_in
        norm = unit.norm_layer.op if unit.norm_layer is not None else None
    return {
        "type": "layer",
        "kind": layer.kind.value,
        "op": layer.op,
        "name": layer.name,
        "line": layer.span.line,
        "fan_in": fan_in,
        "fan_out": fan_out,
        "receptive": layer.receptive,  # conv kernel area: fan_in/fan_out are channels x receptive
        "activation": activation if layer.has_weight or layer.kind == LayerKind.ACTIVATION else None,
        "init": render_init(layer.weight_init) if layer.has_weight or layer.kind == LayerKind.NORMALIZATION else None,
        "normalization": norm,
        "reason": unknown_reason(layer) if layer.kind == LayerKind.UNKNOWN else None,
        "estimate": None if numbers is None else {
            "log10_q": numbers.log10_q,
            "log10_backward": numbers.log10_backward,
            "log10_weight_grad": numbers.log10_weight_grad,
            "alive": numbers.alive,
        },
        "bias": _constant_bias(layer) if layer.has_weight else None,
    }


def _nodes_json(path: list[Node], units: dict[int, Unit], numbers: dict[int, LayerNumbers]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in path:
        if isinstance(node, Layer):
            out.append(_layer_json(node, units.get(id(node)), numbers.get(id(node))))
        elif isinstance(node, Residual):
            out.append({"type": "residual", "line": node.span.line, "concat": node.concat,
                        "branch": _nodes_json(node.branch, units, numbers),
                        "shortcut": _nodes_json(node.shortcut, units, numbers)})
        else:
            out.append({"type": "gate", "line": node.span.line, "path": _nodes_json(node.path, units, numbers)})
    return out


def _unknowns(model: Model) -> list[dict[str, Any]]:
    """What gradlint could not resolve, in execution order: unknown calls, activations and inits
    (``model.unresolved``); ``main_path`` False inside a gate (``fully_understood`` does not count those)."""
    main = {(id(layer), why) for layer, why in unresolved(model.path, include_gates=False)}
    found: list[dict[str, Any]] = []
    for layer, why in unresolved(model.path, include_gates=True):
        reason = unknown_reason(layer) if layer.kind == LayerKind.UNKNOWN else why
        found.append({"line": layer.span.line, "op": layer.op, "reason": reason,
                      "main_path": (id(layer), why) in main})
    return found


def describe(model: Model) -> dict[str, Any]:
    """One model as a JSON-ready dict (keys are stable: see tests/test_inspect.py)."""
    units: dict[int, Unit] = {}
    _units_by_layer(model.path, input_width(model), units)
    numbers, assumptions = layer_estimates(model)
    nodes = _nodes_json(model.path, units, numbers)
    return {
        "name": model.name,
        "framework": model.framework,
        "origin": model.origin,
        "line": model.span.line,
        "fully_understood": model.fully_understood,
        "unknowns": _unknowns(model),
        "nodes": nodes,
        "assumptions": assumptions,
    }


def describe_file(path: str, models: list[Model]) -> dict[str, Any]:
    return {"version": SCHEMA_VERSION, "path": path, "models": [describe(m) for m in models]}


# ---------------------------------------------------------------------- text


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _constant_bias(layer: Layer) -> float | None:
    """A bias every unit starts at (``constant_(b, c)``), when it is not 0: it shifts the units."""
    init = layer.bias_init
    value = init.constant_value if init is not None and layer.bias is not False else None
    return value if value else None


def _layer_line(node: dict[str, Any]) -> str:
    width = ""
    if node["kind"] == LayerKind.OTHER.value and node["op"] in RESHAPE_OPS:
        width = f"→ {'?' if node['fan_out'] is None else node['fan_out']}"  # the width after it (Flatten)
    elif node["fan_in"] is not None or node["fan_out"] is not None:
        # conv: channels in → out and the kernel area, not torch's fan (channels x kernel area)
        area = node["receptive"] if node["kind"] == LayerKind.CONV.value and node["receptive"] else 1
        fan_in = "?" if node["fan_in"] is None else str(node["fan_in"] // area)
        fan_out = "?" if node["fan_out"] is None else str(node["fan_out"] // area)
        width = f"{fan_in} → {fan_out}" + (f" k={area}" if area > 1 else "")
    label = node["op"] + (f" ({node['name']})" if node["name"] else "")
    parts = [f"{node['line']:>4}  {node['kind']:<13} {label:<28} {width:<12}"]
    if node["kind"] == LayerKind.UNKNOWN.value:
        parts.append(f"UNKNOWN: {node['reason']}")
    else:
        if node["activation"] not in (None, "linear") and node["kind"] != LayerKind.ACTIVATION.value:
            parts.append(f"act={node['activation']}")
        if node["init"] and node["kind"] != LayerKind.NORMALIZATION.value:
            parts.append(f"init={node['init']}")
        if node.get("bias") is not None:
            parts.append(f"bias={node['bias']:g}")
        if node["normalization"]:
            parts.append(f"norm={node['normalization']}")
        est = node["estimate"]
        if est is not None:
            alive = est.get("alive")
            pct = 100 * alive if alive is not None else 0.0  # a thresholded stack's shares go far below 1 %
            live = "" if alive is None else ", all units dead" if alive == 0 else \
                f", {pct:.0f} % alive" if pct >= 1 else f", {pct:.1g} % alive"
            parts.append(f"log10 q {_num(est['log10_q'])}, backward {_num(est['log10_backward'])}, "
                         f"∂W {_num(est['log10_weight_grad'])}{live}")
    return "  ".join(p for p in parts).rstrip()


def _node_lines(nodes: list[dict[str, Any]], indent: str) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        if node["type"] == "layer":
            lines.append(indent + _layer_line(node))
        elif node["type"] == "residual":
            lines.append(f"{indent}residual{' (concat)' if node['concat'] else ''}[  (line {node['line']})")
            lines.append(f"{indent}  branch:")
            lines += _node_lines(node["branch"], indent + "    ")
            if node["shortcut"]:
                lines.append(f"{indent}  | shortcut:")
                lines += _node_lines(node["shortcut"], indent + "    ")
            else:
                lines.append(f"{indent}  | shortcut: identity")
            lines.append(f"{indent}]")
        else:
            lines.append(f"{indent}gate[  (line {node['line']}, multiplies the main path)")
            lines += _node_lines(node["path"], indent + "    ")
            lines.append(f"{indent}]")
    return lines


def render_text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    models = report["models"]
    if not models:
        return f"{report['path']}: no model found\n"
    for model in models:
        status = "fully understood" if model["fully_understood"] else "not fully understood"
        lines.append(f"{report['path']}:{model['line']}: {model['name']} "
                     f"({model['framework']} {model['origin']}) — {status}")
        lines += _node_lines(model["nodes"], "  ")
        for unknown in model["unknowns"]:
            where = "" if unknown["main_path"] else " (in a gate)"
            lines.append(f"  unknown at line {unknown['line']}{where}: {unknown['reason']}")
        lines.append("")
    lines.append("Estimates at init, log10: q = pre-activation variance; backward / ∂W = gradient and "
                 "weight-gradient ratio to the last weight layer of the stretch.")
    return "\n".join(lines) + "\n"
