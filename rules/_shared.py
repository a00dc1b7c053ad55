"""Message helpers shared by the gradient rules (not a rule: no Rule subclass here).

Messages follow the estimate: they name the quantity that decided (the first/last ratio, the
loss at init, float32 overflow, the relative gradient of a frozen first layer, a dead head),
with its number, and only recommend what the estimate says helps.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from gradlint.analysis.estimation import RecurrentGain, recurrent_gain
from gradlint.analysis.inits import describe_inits
from gradlint.analysis.irnn import identity_recurrence
from gradlint.analysis.triage import LOG10_EXPLODING_LOSS, LOG10_EXPLODING_RELATIVE, Cause, Diagnosis
from gradlint.analysis.units import Unit, input_width
from gradlint.estimate import FLOAT32_MAX_LOG10, Estimate, approx, format_ratio
from gradlint.gradflow.chain import WeightLayer
from gradlint.gradflow.propagate import Block, Norm
from gradlint.model import Layer, LayerKind, Model, Node, Span, iter_layers, output_activation
from gradlint.rule import RuleContext, RuleOptions, Severity
from gradlint.training import LossUse, TrainingFacts


def run_span(units: list[Unit]) -> Span:
    first, last = units[0].layer.span, units[-1].layer.span
    if (last.end_line, last.end_col) < (first.line, first.col):
        # The last layer was built before the first (a helper defined earlier): point at the first.
        return first
    return Span(first.line, first.col, last.end_line, last.end_col, first.origin)


def set_at(span: Span | None) -> str:
    """`` (set at line 5)``; for an init written in another project file, where it is written."""
    if span is None:
        return ""
    if span.origin is not None:
        return f" (set in {span.origin[0].rsplit('/', 1)[-1]}:{span.origin[1]})"
    return f" (set at line {span.line})"


def severity_for(log10_ratio: float, options: RuleOptions) -> Severity:
    return Severity.ERROR if abs(log10_ratio) >= options.error_log10 else Severity.WARNING


def diagnosis_severity(diagnosis: Diagnosis, options: RuleOptions) -> Severity:
    """Error when training cannot recover: the ratio beyond error-log10, inf/NaN, a dead output,
    a loss ≥ 1e12, ‖∂L/∂θ‖/‖θ‖ ≥ 1e8 or a first layer frozen below 1e-10 of its weights."""
    e = diagnosis.estimate
    criterion = diagnosis.criterion
    if criterion in ("nonfinite", "dead_output", "dead_units"):
        return Severity.ERROR
    if criterion == "dead_forward" and diagnosis.flow is not None and diagnosis.flow.dead is not None:
        return Severity.ERROR  # no unit alive in a typical batch: every gradient before it is exactly 0
    if criterion == "loss" and e.log10_loss is not None:
        return Severity.ERROR if e.log10_loss >= 12 else Severity.WARNING
    if criterion == "relative_grad" and e.log10_relative_grad is not None:
        return Severity.ERROR if e.log10_relative_grad >= 8 else Severity.WARNING
    if criterion == "frozen" and e.log10_first_relative_grad is not None:
        return Severity.ERROR if e.log10_first_relative_grad <= -10 else Severity.WARNING
    return severity_for(e.log10_weight_ratio, options)


def activations_text(units: list[Unit]) -> str:
    counts = Counter(u.activation for u in units)
    return "/".join(name for name, _ in counts.most_common())


def lines_text(units: list[Unit]) -> str:
    lines = sorted({u.layer.span.line for u in units})
    if len(lines) == 1:
        return f"line {lines[0]}"
    return f"lines {lines[0]}–{lines[-1]}"


def path_text(diagnosis: Diagnosis) -> str:
    """What sits between the layers: "no normalization or residual connection", "LayerNorm", ..."""
    seg = diagnosis.segment
    if seg is None:
        return "with no normalization or residual connection"
    kinds: set[str] = set()

    def visit(items: Sequence[object]) -> None:
        for item in items:
            if isinstance(item, WeightLayer) and item.normalized:
                kinds.add(item.norm_kind)
            elif isinstance(item, Norm):
                kinds.add(item.kind)
            elif isinstance(item, Block):
                kinds.add("residual")
                visit(item.branch)
                visit(item.shortcut)

    visit(seg.items)
    if not kinds:
        return "with no normalization or residual connection"
    names = {"batch": "BatchNorm", "layer": "LayerNorm", "rms": "RMSNorm", "residual": "residual connections"}
    return "with " + " and ".join(names[k] for k in sorted(kinds, key=list(names).index))


def quantity_text(diagnosis: Diagnosis) -> str:
    """The deciding quantity, with its number, as the protocol would state it."""
    e = diagnosis.estimate
    n = e.layers
    criterion = diagnosis.criterion
    if criterion == "nonfinite":
        peak = (e.max_log10_q if e.max_log10_q is not None else 0.0) / 2
        size = ("beyond float32's range" if peak > FLOAT32_MAX_LOG10 else
                f"to ≈ {approx(peak, plain=True)}, and their squares beyond float32's range")
        return (f"the forward pass overflows float32 (activations grow {size}), so the loss and the gradients "
                f"are inf/NaN")
    if criterion == "loss" and e.log10_loss is not None:
        growth = e.log10_forward_growth
        per = f", ×{10 ** (growth / 2 / max(n, 1)):.2g} in scale per layer" if growth is not None and n else ""
        return (f"the forward pass blows up: the output variance for a unit-variance input is "
                f"{approx(growth, plain=True) if growth is not None else '?'}{per}, and the loss at init "
                f"≈ {approx(e.log10_loss, plain=True)} (MSE to unit-variance targets)")
    if criterion == "relative_grad" and e.log10_relative_grad is not None:
        return (f"‖∂L/∂θ‖/‖θ‖ ≈ {approx(e.log10_relative_grad, plain=True)} at init: one step of any usual "
                f"learning rate moves the weights far beyond their own scale")
    if criterion == "frozen" and e.log10_first_relative_grad is not None:
        return (f"the first layer's gradient is {approx(e.log10_first_relative_grad)} of its weights "
                f"(‖∂L/∂W‖/‖W‖): it is frozen — below Adam's ε and too small for SGD — while the ratio "
                f"first/last is ≈ {format_ratio(e.log10_weight_ratio)}, so every layer is starved alike")
    word = "attenuation" if e.log10_weight_ratio < 0 else "growth"
    return (f"estimated gradient {word} {approx(e.log10_weight_ratio)} between the first and the last of {n} "
            f"weight layers")


def estimate_text(diagnosis: Diagnosis, inits: bool = True) -> str:
    units = diagnosis.units
    what = f"{activations_text(units)}, {describe_inits(units)}" if inits else activations_text(units)
    return f"{quantity_text(diagnosis)} ({what})"


def matched_text(diagnosis: Diagnosis) -> str:
    """What the matching init would give: " (with it: ratio ≈ 0.3)" when it is a fix, else says so."""
    m = diagnosis.matched
    if m is None:
        return ""
    parts = [f"ratio ≈ {format_ratio(m.log10_weight_ratio)}"]
    if m.log10_loss is not None and diagnosis.criterion in ("loss", "nonfinite"):
        parts.append(f"loss ≈ {approx(m.log10_loss, plain=True)}")
    if m.log10_first_relative_grad is not None and diagnosis.criterion == "frozen":
        parts.append(f"first layer ‖∂W‖/‖W‖ ≈ {approx(m.log10_first_relative_grad, plain=True)}")
    if diagnosis.matched_ok:
        return f" (with it: {', '.join(parts)})"
    return f" (not enough on its own: with it, {', '.join(parts)})"


# Plain (Elman) recurrences, by (framework, op): nothing gates the gradient through time, which
# is multiplied by W_hhᵀ·diag(φ′) once per step. LSTM/GRU cells are left out on purpose: their
# cell path is scaled by the forget gate (< 1), and measured with the recurrent matrices grown to
# spectral radius 2 their gradient through time still shrinks (1.9e-2 over 35 steps, 1.5e-11 over
# 300) where a tanh RNN's grows by 4.5e2 and 1e18.
VANILLA_RECURRENT = frozenset({("torch", "RNN"), ("torch", "RNNCell"), ("keras", "SimpleRNN"),
                               ("keras", "SimpleRNNCell"), ("tensorflow", "BasicRNNCell"), ("keras", "BasicRNNCell")})


def vanilla_recurrence(model: Model) -> Layer | None:
    """The model's first plain RNN layer (tanh or ReLU), if it has one."""
    return next((layer for layer in model.layers() if layer.kind == LayerKind.RECURRENT
                 and (layer.framework, layer.op) in VANILLA_RECURRENT), None)


def unclipped_long_recurrence(model: Model, context: RuleContext, min_steps: int) -> tuple[Layer, int, Span] | None:
    """A plain RNN layer of ``model`` run over a sequence known to be at least ``min_steps`` long,
    with the model trained in this file and nothing clipping its gradients: (layer, steps, where
    the update happens). None when any of it is unknown — an unknown length is not long."""
    facts = context.training
    if facts is None or facts.effective_clips() or model.origin_id is None:
        return None
    steps = facts.sequence_lengths.get(model.origin_id)
    if steps is None or steps < min_steps:
        return None
    layer = vanilla_recurrence(model)
    if layer is None:
        return None
    site = next((span for model_id, span in facts.trained() if model_id == model.origin_id), None)
    return None if site is None else (layer, steps, site)


# The gradient through time of a tanh RNN once training has grown its recurrent matrix: Adam (lr
# 1e-3) takes an orthogonally initialised W_hh from spectral radius 1.0 to 1.15-1.38 within 300
# steps of the adding problem, and at radius 1.5 (ρ·orthogonal, hidden 64, inputs N(0, 1)) the
# gradient from the last step back to the first measured ×99 over 100 steps and ×1.7e5 over 300
# (median of 3 seeds × 64 sequences): ≈1.04 per step; over 177 steps ×1.4e3. Below radius ≈1.3 it still shrinks.
GROWN_RECURRENT_STEP_GAIN = 1.04


def long_sequence_steps(options: RuleOptions) -> int:
    """How many time steps make a sequence long: those over which the grown recurrence multiplies
    the gradient through time past 10^exploding-log10 (1e3: ~176 steps)."""
    return math.ceil(options.exploding_log10 / math.log10(GROWN_RECURRENT_STEP_GAIN))


def recurrent_estimate(model: Model, layer: Layer) -> RecurrentGain | None:
    """``recurrent_gain`` for a recurrent layer of ``model``: when the layer does not state its input
    width and is the first layer with weights on the path, the model input's features are its input."""
    width = None
    if layer.fan_in is None:
        first = next((item for item in model.layers() if item.has_weight or item.kind == LayerKind.RECURRENT), None)
        if first is layer:
            width = input_width(model)
    return recurrent_gain(layer, width)


def sequence_steps(model: Model, context: RuleContext) -> int | None:
    """The statically known number of time steps the model's first recurrence runs over."""
    facts = context.training
    if facts is None or model.origin_id not in facts.sequence_lengths:
        return None
    return facts.sequence_lengths[model.origin_id]


def through_time_diagnoses(model: Model, context: RuleContext) -> list[tuple[Diagnosis, Layer, RecurrentGain, int]]:
    """The recurrent layers of ``explodes_through_time`` as diagnoses (cause ``RECURRENT_INIT``, owned by
    its rule in ``triage.OWNERS``), with the layer, its gain and the steps; cached per model like
    ``triage.diagnose``, so every caller sees the same diagnosis objects."""
    key = ("through_time", sequence_steps(model, context), context.options.exploding_log10)
    cache = model.__dict__.setdefault("_diagnoses", {})
    if key not in cache:
        found = []
        for layer, gain, steps, growth in explodes_through_time(model, context):
            estimate = Estimate(growth, growth, steps, False, [*gain.assumptions, "input of unit variance per step"],
                                per_layer_gain=gain.decisive, verdict="exploding", criterion="ratio")
            found.append((Diagnosis(Cause.RECURRENT_INIT, "exploding", estimate), layer, gain, steps))
        found += _identity_recurrences(model, context)
        cache[key] = found
    return cache[key]  # type: ignore[no-any-return]


def _identity_recurrences(model: Model, context: RuleContext) -> list[tuple[Diagnosis, Layer, RecurrentGain, int]]:
    """ReLU recurrences with an identity recurrent init (the IRNN) whose state grows over the known sequence
    until the protocol's ‖∂L/∂θ‖/‖θ‖ (or loss) is past its exploding threshold (gradlint.analysis.irnn).
    Their gradient through time does not grow: the gain is 1 and cell ``irnn``."""
    steps = sequence_steps(model, context)
    if steps is None:
        return []
    layers = list(model.layers())
    out = []
    for index, layer in enumerate(layers):
        if layer.kind != LayerKind.RECURRENT:
            continue
        head = next((item for item in layers[index + 1:] if item.has_weight or item.kind == LayerKind.RECURRENT), None)
        width = input_width(model) if layer.fan_in is None and next(
            (item for item in layers if item.has_weight or item.kind == LayerKind.RECURRENT), None) is layer else None
        irnn = identity_recurrence(layer, head, width)
        if irnn is None:
            continue
        loss, rel = irnn.quantities(steps)
        if rel <= LOG10_EXPLODING_RELATIVE and loss <= LOG10_EXPLODING_LOSS:
            continue
        criterion = "relative_grad" if rel > LOG10_EXPLODING_RELATIVE else "loss"
        notes = ["input of unit variance per step", f"read by {head.describe()} at the last step" if head else ""]
        estimate = Estimate(0.0, 0.0, steps, False, [n for n in notes if n], per_layer_gain=1.0, log10_loss=loss,
                            log10_relative_grad=rel, verdict="exploding", criterion=criterion)
        gain = RecurrentGain("irnn", 1.0, 1.0, irnn.sigma_in2)
        out.append((Diagnosis(Cause.RECURRENT_INIT, "exploding", estimate), layer, gain, steps))
    return out


def explodes_through_time(model: Model, context: RuleContext) -> Iterator[tuple[Layer, RecurrentGain, int, float]]:
    """Recurrent layers whose gradient through time is estimated to grow past 10^exploding-log10 at
    init over the model's known sequence length: (layer, its gain, steps, log10 of the growth)."""
    steps = sequence_steps(model, context)
    if steps is None:
        return
    for layer in model.layers():
        if layer.kind != LayerKind.RECURRENT:
            continue
        found = recurrent_estimate(model, layer)
        if found is None:
            continue
        growth = found.log10_over(steps)
        if growth >= context.options.exploding_log10:
            yield layer, found, steps, growth


# Keras cross-entropies over the class axis that take one-hot targets (the sparse ones take class indices).
KERAS_CATEGORICAL_LOSSES = frozenset({"categorical_crossentropy", "CategoricalCrossentropy",
                                      "categorical_focal_crossentropy", "CategoricalFocalCrossentropy"})


def categorical_over_one_unit(loss: str, nodes: Sequence[Node]) -> bool:
    """A Keras categorical cross-entropy on an output of one unit that is not already a softmax
    (that one is a dead output of its own): the loss is constant and every gradient 0. GRD010
    reports it; GRD009 leaves such a site alone (its remedies would not help)."""
    return loss in KERAS_CATEGORICAL_LOSSES and output_activation(nodes) not in (None, "softmax") \
        and output_units(nodes) == 1


def output_units(nodes: Sequence[Node]) -> int | None:
    """The width of a path's output when it ends in a weight layer followed only by activations and dropout."""
    for node in reversed(nodes):
        if not isinstance(node, Layer):
            return None
        if node.kind in (LayerKind.ACTIVATION, LayerKind.DROPOUT):
            continue
        return node.fan_out if node.kind in (LayerKind.DENSE, LayerKind.CONV) else None
    return None


def reads_every_step(layer: Layer, after: list[Layer]) -> bool:
    """Whether the recurrence ``layer``'s output at every step reaches the model's output, so each
    step's input gets a gradient of its own rather than only the one carried back through time
    (GRD008's estimate): a torch cell whose per-step outputs the forward stacks
    (``Layer.reads_every_step``), or a Keras layer returning its sequences with nothing after it
    (``after``: the layers that follow on the path) that runs another recurrence over them or is
    unknown (``Lambda(lambda t: t[:, -1])`` may keep only the last step)."""
    if layer.reads_every_step:
        return True
    return layer.returns_sequences and all(item.kind not in (LayerKind.RECURRENT, LayerKind.UNKNOWN)
                                            for item in after)


# Layers with weights of their own that a gradient trains (recurrent ones included).
TRAINED_KINDS = frozenset({LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT})


def trained_layers(path: Sequence[Node]) -> list[Layer]:
    """The main path's layers with weights (gate paths left out), in execution order."""
    return [layer for layer in iter_layers(list(path), include_gates=False) if layer.kind in TRAINED_KINDS]


def models_feeding(facts: TrainingFacts, seeds: Iterable[int]) -> set[int]:
    """The models ``seeds`` (ids) and those whose training-code output feeds one of them with no
    gradient stop between (``D(G(z))``: G feeds D), transitively."""
    live: dict[int, set[int]] = {}
    for call in facts.model_calls:
        if call.fed_by is not None and call.cut is None:
            live.setdefault(call.model_id, set()).add(call.fed_by)
    todo = list(seeds)
    found: set[int] = set()
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(live.get(current, ()))
    return found


def models_reached_by_losses(facts: TrainingFacts, uses: Iterable[LossUse]) -> set[int]:
    """The models a gradient of one of ``uses`` reaches: those whose output feeds the loss with no
    stop between, and the models feeding them."""
    return models_feeding(facts, [use.model_id for use in uses if use.model_id is not None and use.cut is None])
