"""The training-fact recorder: what training code around the models does, for ``gradlint.training``.

Losses applied to model outputs, ``loss.backward()``, optimizers and ``step()``, gradient clipping
however it is spelled, ``model.fit`` / ``trainer.fit(model)`` and Keras ``compile``. The interpreter
calls these hooks; everything recorded lands in ``Interp.facts``.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence

from gradlint.extract import catalog, optimizers, torch_dims
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import longest_tensor, span_of
from gradlint.extract.values import (
    UNKNOWN,
    BatchProbe,
    BoundV,
    ClassInfo,
    Const,
    ContainerV,
    DictV,
    Frame,
    FunctionalModelV,
    FunctionV,
    GradientTapeV,
    InstanceV,
    LayerObj,
    ListV,
    LossObjV,
    LossV,
    MethodV,
    NodeSeq,
    OptimizerV,
    ParamV,
    Ref,
    TensorConstV,
    TensorV,
    UnknownV,
    Value,
)
from gradlint.model import Layer, LayerKind, Node, gradient_blocked
from gradlint.training import GradEvent, LossSpec, LossUse, ModelCall, OptimizerSpec

_TRAINING_METHODS = frozenset({"fit", "fit_generator", "train_on_batch"})


def is_model(value: Value) -> bool:
    """A value a training loop can train: a model class instance, a Sequential, a functional model
    (a custom Keras *layer* is part of a model, not one)."""
    if isinstance(value, InstanceV):
        return value.info.framework is not None and not is_layer_class(value.info)
    if isinstance(value, ContainerV):
        return value.kind in ("sequential", "keras_sequential")
    return isinstance(value, FunctionalModelV)


def is_layer_class(info: ClassInfo) -> bool:
    """A subclass of ``keras.layers.Layer`` that is not a ``keras.Model``."""
    if info.framework != "keras":
        return False
    layer = False
    for cls in info.mro():
        for base in cls.bases:
            if isinstance(base, Ref):
                if base.qualname in catalog.KERAS_MODEL_BASES and base.qualname not in catalog.KERAS_LAYER_BASES:
                    return False
                layer = layer or base.qualname in catalog.KERAS_LAYER_BASES
    return layer


def inside_model_code(frame: Frame) -> bool:
    """Running a model's own methods (not its training_step): calling a module there is not training."""
    cls = frame.cls
    return cls is not None and cls.framework is not None and not any(
        m in cls.methods for m in ("training_step", "train_step"))


def forward_called(interp: Interp, bound: Value) -> bool:
    """``model.forward(x)`` in training code (not in the model's own methods): the training call ``model(x)``."""
    return isinstance(bound, BoundV) and bound.func.name == "forward" and is_model(bound.self_val) \
        and not inside_model_code(interp.frame)


def note_call(interp: Interp, node: ast.Call, args: Args, kwargs: Kwargs, callee: Value | None = None) -> None:
    """Gradient clipping however it is spelled: a clip call, or a clipping argument. A call gradlint
    cannot follow that is handed a loss, a model or an optimizer may take or reset gradients: an
    ``opaque`` gradient event (``accelerator.backward(loss)``, ``helpers.train_step(model, opt)``)."""
    func = node.func
    if _unfollowed(callee) and not (isinstance(func, ast.Name) and func.id in _BUILTIN_NAMES) and (
            isinstance(func, ast.Attribute) and func.attr in _BACKWARDS  # (unknown loss).backward()
            or any(isinstance(v, (LossV, OptimizerV)) or is_model(v) for v in list(args) + list(kwargs.values()))):
        grad_event(interp, "opaque", node)
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in catalog.CLIP_CALLS:
        # tf.clip_by_value(probabilities, 1e-7, 1) on a model's tensor bounds an activation, not a gradient
        if not (args and isinstance(args[0], TensorV)):
            interp.facts.clips.append(span_of(node))
            if name in _TORCH_CLIPS:
                grad_event(interp, "clip", node)  # where it runs among backward/step/zero_grad says what it clips
        return
    for key in catalog.CLIP_KWARGS & kwargs.keys() if kwargs else ():
        if key == "max_norm" and name in catalog.TORCH_LAYERS:
            continue  # nn.Embedding(max_norm=...) renormalizes embedding rows
        value = kwargs[key]
        if not (isinstance(value, Const) and value.value in (None, 0, 0.0, False)):
            interp.facts.clips.append(span_of(node))
            return
    if name == "fit" and isinstance(func, ast.Attribute):
        # trainer.fit(model): Lightning / HF-style trainers train the model they are given.
        for value in list(args) + list(kwargs.values()):
            if is_model(value):
                interp.facts.fits.append((span_of(node), id(value)))
                break


_TORCH_CLIPS = frozenset({"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value"})
_BUILTIN_NAMES = frozenset(dir(builtins))  # print(loss), float(loss): read values, take no gradient
_BACKWARDS = frozenset({"backward", "manual_backward"})
# Libraries whose functions handed a model or an optimizer do not take or reset its gradients unseen
# (``torch.save(model)``, ``lr_scheduler.StepLR(opt)``): what takes them is modelled where it is.
_FRAMEWORK_PREFIXES = ("torch.", "keras.", "tensorflow.", "numpy.", "tf_keras.")


def _unfollowed(callee: Value | None) -> bool:
    """A callee whose code gradlint does not run: unresolved, or from a library it does not model."""
    if isinstance(callee, UnknownV):
        return True
    return isinstance(callee, Ref) and not callee.qualname.startswith(_FRAMEWORK_PREFIXES)


def note_unfollowed(interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> None:
    """A call not followed after all (too deep, a factory left to another module) that is handed a loss,
    a model or an optimizer: what it does to gradients is unknown (an ``opaque`` event)."""
    if any(isinstance(v, (LossV, OptimizerV)) or is_model(v) for v in list(args) + list(kwargs.values())):
        grad_event(interp, "opaque", node)


def grad_event(interp: Interp, kind: str, node: ast.AST, target: Value | None = None) -> None:
    """Record what the training code does to gradients now (``facts.grad_events``, in run order)."""
    interp.facts.grad_events.append(GradEvent(kind, span_of(node), id(target) if target is not None else None,
                                              tuple(interp.uncertain_since), interp.loops))


# Where an optimizer's settings are read by its framework's signature (gradlint.extract.optimizers).
_OPTIMIZER_MODULES = (("torch", "torch.optim."), ("keras", "keras.optimizers."), ("tensorflow", "tensorflow.train."))


def construct(interp: Interp, q: str, leaf: str, node: ast.AST, args: Args | None = None,
              kwargs: Kwargs | None = None) -> Value | None:
    """Optimizers and trainers, from any library; None when ``q`` is neither. An optimizer's
    parameter arguments say which layers it trains (``facts.optimized_layers``)."""
    if q.startswith("tensorflow.") and leaf == "GradientTape":
        return GradientTapeV()
    if q.startswith("transformers.") and leaf == "Trainer":
        interp.facts.clips.append(span_of(node))  # TrainingArguments.max_grad_norm defaults to 1.0
    if (q.startswith("torch.optim.") and ".lr_scheduler" not in q and leaf[:1].isupper()) or leaf in catalog.OPTIMIZERS:
        given = list((args or [])[:1]) + [v for k, v in (kwargs or {}).items() if k == "params"]
        owners, complete = _param_owners(given)
        interp.facts.optimized_layers.update(owners)
        framework = next((f for f, prefix in _OPTIMIZER_MODULES if q.startswith(prefix)), None)
        lr, momentum = optimizers.settings(framework, leaf, args or [], kwargs or {}) if framework else (None, None)
        optimizer = OptimizerV(span_of(node), kind=leaf, lr=lr, momentum=momentum)
        if framework != "keras":  # a Keras optimizer trains the model it is compiled into (record_compile)
            interp.facts.optimizers.append(OptimizerSpec(leaf, lr, momentum, span_of(node), frozenset(owners),
                                                         params_known=complete))
        interp.facts.optimizer_loops[id(optimizer)] = interp.loops
        return optimizer
    return None


def method(interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value | None:
    """``loss.backward()``, ``optimizer.step()``, ``model.fit(...)``, ``model.compile(...)``; None otherwise."""
    if isinstance(target, LossV):
        if name == "backward":
            backward(interp, target, node)
            return Const(None)
        if name in _SEVERING_METHODS:
            return severed_loss(target, name, node)
        if name == "__add__":
            for arg in args:
                note_loss_term(interp, arg)
        if name in ("mean", "sum"):
            return reduced(target, name, args, kwargs)
        return target if name in ("__add__", "float", "to", "requires_grad_") else UNKNOWN
    if isinstance(target, TensorV) and name == "backward" and not inside_model_code(interp.frame) \
            and model_of(interp, target) is not None:
        backward(interp, target, node)  # a loss written as tensor arithmetic on a model's output
        return Const(None)
    if isinstance(target, GradientTapeV):
        if name == "gradient":
            backward(interp, args[0] if args else kwargs.get("target", UNKNOWN), node)
            return UNKNOWN
        return target if name == "__enter__" else Const(None)
    if isinstance(target, OptimizerV):
        # opt.minimize(loss) is backward and step at once (TF, Keras); compute_gradients + apply_gradients
        # split them; optimizer.step() after loss.backward() (torch).
        if name in ("minimize", "compute_gradients", "get_gradients"):
            loss = args[0] if args else kwargs.get("loss", UNKNOWN)
            backward(interp, loss, node)
            if isinstance(loss, LossV) and loss.use.model_id is not None:  # TF: the model whose loss it minimizes
                interp.facts.optimizers.append(OptimizerSpec(target.kind, target.lr, target.momentum, target.span,
                                                             model_id=loss.use.model_id))
        if name in ("step", "minimize", "apply_gradients"):
            interp.facts.steps.append(span_of(node))
        if name == "zero_grad":
            grad_event(interp, "zero_grad", node, target)
        elif name == "step":
            # step(closure): the closure computes the loss and its backward itself
            grad_event(interp, "opaque" if args or kwargs else "step", node, target)
        elif name not in ("minimize", "compute_gradients", "get_gradients"):
            grad_event(interp, "opaque", node, target)  # apply_gradients, load_state_dict, ...
        return UNKNOWN if name in ("minimize", "compute_gradients", "get_gradients", "apply_gradients") else Const(None)
    if name in _TRAINING_METHODS and is_model(target):
        interp.facts.fits.append((span_of(node), id(target)))
        return UNKNOWN
    if name == "compile" and is_model(target):
        record_compile(interp, target, args, kwargs, node)
        return Const(None)
    if name == "fit" and isinstance(target, UnknownV):
        return UNKNOWN
    if name in _BACKWARDS:
        grad_event(interp, "opaque", node)  # a backward of what gradlint did not record as a loss
    elif name == "zero_grad":
        grad_event(interp, "clear", node, target)  # model.zero_grad(): clears the model's own gradients
    elif isinstance(target, UnknownV) and any(isinstance(v, (LossV, OptimizerV)) or is_model(v)
                                              for v in list(args) + list(kwargs.values())):
        grad_event(interp, "opaque", node)  # accelerator.backward(loss), scaler.step(optimizer)
    return None


# A loss's values out of its graph (the training loop's logging reads them; a backward on them reaches nothing).
_SEVERING_METHODS = frozenset({"detach", "item", "numpy", "tolist"})


def severed_loss(loss: Value, op: str, node: ast.AST | None) -> Value:
    """``loss.data`` / ``loss.detach()`` / ``loss.item()``: the same loss's values, cut from the graph
    (another training object's attribute: its method, as before)."""
    if not isinstance(loss, LossV) or node is None:
        return MethodV(loss, op)
    return loss if loss.severed is not None else LossV(loss.use, loss.pending, (span_of(node), op))


def backward(interp: Interp, loss: Value, node: ast.AST) -> None:
    """Gradients of ``loss`` are taken: a pending hand-written loss becomes a recorded one now."""
    if isinstance(loss, LossV) and loss.severed is not None:
        interp.facts.severed.append((loss.severed[0], loss.severed[1], loss.use, span_of(node)))
    grad_event(interp, "backward", node)
    if isinstance(loss, LossV) and loss.pending:
        loss.pending = False
        interp.facts.losses.append(loss.use)
    use = loss.use if isinstance(loss, LossV) else None
    model_id = model_of(interp, loss) if use is None and isinstance(loss, TensorV) else None
    if isinstance(loss, TensorV) and model_id is not None:
        # A loss written as tensor arithmetic on the output (``(model(x) - y).pow(2).mean()``): which
        # model it trains, for the update site (not a loss any rule judges: not in facts.losses).
        call = _call_of(interp, loss)
        cut = _last_stop(loss.nodes[len(call.output):]) if call is not None else None  # torch.tensor(np.mean(...))
        use = LossUse(LossSpec("expression", "torch", False, span_of(node)), loss.nodes, span_of(node), model_id, cut)
    interp.facts.backwards.append((span_of(node), use))


def apply_loss(interp: Interp, spec: LossSpec, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    # Prediction and target alike: a loss in a forward (VQ-VAE's codebook and commitment terms) is a
    # route the gradient takes back to both.
    interp.escaped.extend(a for a in list(args) + list(kwargs.values()) if isinstance(a, TensorV))
    if spec.framework == "keras":  # Keras losses take (y_true, y_pred)
        prediction = args[1] if len(args) > 1 else kwargs.get("y_pred", UNKNOWN)
    else:
        prediction = args[0] if args else kwargs.get("input", kwargs.get("y_pred", UNKNOWN))
    if isinstance(prediction, LossV) and prediction.pending:
        return prediction  # F.nll_loss(torch.log(p), y): the hand-written log is what to judge
    tensor = longest_tensor(prediction)
    if tensor is None:
        return UNKNOWN
    call = _call_of(interp, tensor)
    cut = _last_stop(tensor.nodes[len(call.output):]) if call is not None else None
    use = LossUse(spec, tensor.nodes, span_of(node), call.model_id if call is not None else None, cut)
    if spec.framework == "torch" and prediction is tensor:
        target = args[1] if len(args) > 1 else kwargs.get("target")
        use.prediction_dims = tensor.dims
        use.target_dims = torch_dims.of(target) if target is not None else None
    interp.facts.losses.append(use)
    return LossV(use)


_AXIS_KEYWORDS = ("axis", "dim", "reduction_indices")


def reduced(loss: LossV, leaf: str, axes: Args, kwargs: Kwargs) -> LossV:
    """``tf.reduce_sum(l)``, ``torch.sum(l)``, ``l.sum()`` (``axes``: the arguments after the loss): a sum with no
    axis sums over the batch too (``LossUse.reduction``); a mean, with or without one, averages."""
    if leaf in ("reduce_sum", "sum") and not axes and not any(key in kwargs for key in _AXIS_KEYWORDS):
        loss.use.reduction = "sum"
    elif leaf in ("reduce_mean", "mean"):
        loss.use.reduction = "mean"
    return loss


def loss_sum(interp: Interp, left: Value, right: Value, divides: bool = False) -> Value:
    """``loss + 0.1 * aux``: the loss (the left one of two). Two hand-written logs not yet recorded
    (``y * torch.log(p) + (1 - y) * torch.log(1 - p)``): the right one joins the left's companions, recorded with
    it; a model's training-code output in the sum is a loss term (``note_loss_term``)."""
    if divides and isinstance(left, LossV):
        left.use.reduction = "mean"  # -torch.sum(y * torch.log(p)) / x.size(0)
    if isinstance(left, LossV) and isinstance(right, LossV):
        if left.pending and right.pending and left.use is not right.use and len(left.use.companions) < 8:
            left.use.companions.extend([right.use, *right.use.companions])
        return left
    note_loss_term(interp, right if isinstance(left, LossV) else left)
    return left if isinstance(left, LossV) else right


def note_loss_term(interp: Interp, value: Value) -> None:
    """``loss + 0.1 * (G(z) ** 2).mean()``: the model whose training-code output the term is, is in the
    loss too (``facts.term_models``)."""
    if isinstance(value, TensorV):
        model_id = model_of(interp, value)
        if model_id is not None:
            interp.facts.term_models.add(model_id)


def _param_owners(values: list[Value]) -> tuple[set[int], bool]:
    """ids of the layers owning the parameters in ``values`` (lists, tuples, ``[{"params": ...}]``), and
    whether every value was read: parameters of known layers, in lists and param-group dicts."""
    owners: set[int] = set()
    complete = bool(values)
    stack = list(values)
    while stack and len(owners) < 10_000:
        value = stack.pop()
        if isinstance(value, ParamV):
            if value.owner is not None:
                owners.add(id(value.owner))
            else:
                complete = False
        elif isinstance(value, ListV):
            complete = complete and not value.partial
            stack.extend(value.items)
        elif isinstance(value, DictV):
            group = value.items.get("params")
            if group is None or value.partial:
                complete = False
            else:
                stack.append(group)
        else:
            complete = False
    return owners, complete and not stack


def _feeding(interp: Interp, module: Value, tensor: TensorV) -> tuple[int | None, Node | None]:
    """The model whose training-code output ``tensor`` (another model's input) is, and the last
    gradient stop applied to it on the way (``D(G(z).detach())``); (None, None) for a fresh batch."""
    source = _call_of(interp, tensor)
    if source is None or source.model_id == id(module):
        return None, None
    after = tensor.nodes[len(source.output):]
    stop = _last_stop(after)
    if stop is None and gradient_blocked(after):
        return None, None  # blocked some other way (a residual of stops): not told
    return source.model_id, stop


def _last_stop(nodes: Sequence[Node]) -> Layer | None:
    return next((n for n in reversed(nodes) if isinstance(n, Layer) and n.kind == LayerKind.STOP), None)


def _note_layers(interp: Interp, module: Value) -> None:
    """The layers of a model called in training code (``facts.model_layers``: a submodule called on its
    own shares them with its parent), and whether it owns layers an optimizer was given."""
    facts = interp.facts
    layers = facts.model_layers.get(id(module))
    if layers is None:
        layers = frozenset(id(v.layer) for v in _modules(module) if isinstance(v, LayerObj))
        facts.model_layers[id(module)] = layers
    if not layers.isdisjoint(facts.optimized_layers):
        facts.optimized_models.add(id(module))


def _call_of(interp: Interp, tensor: TensorV) -> ModelCall | None:
    """The latest training-code model call whose output ``tensor`` starts with."""
    for call in reversed(interp.facts.model_calls):
        n = len(call.output)
        if n and len(tensor.nodes) >= n and all(a is b for a, b in zip(tensor.nodes, call.output, strict=False)):
            return call
    return None


def model_of(interp: Interp, tensor: TensorV) -> int | None:
    """The model whose training-code output ``tensor`` is, possibly with more applied (a sigmoid)."""
    call = _call_of(interp, tensor)
    return call.model_id if call is not None else None


def hand_written_log(interp: Interp, framework: str, tensor: TensorV, node: ast.AST) -> LossV | None:
    """``torch.log(p)`` on a model's output in training code: the start of a hand-written
    cross-entropy (``-(y * torch.log(p)).sum()``), recorded once its gradient is taken."""
    if inside_model_code(interp.frame):
        return None
    model_id = model_of(interp, tensor)
    if model_id is None:
        return None
    use = LossUse(LossSpec("log", framework, False, span_of(node)), tensor.nodes, span_of(node), model_id)
    return LossV(use, pending=True)


def record_compile(interp: Interp, model: Value, args: Args, kwargs: Kwargs, node: ast.AST) -> None:
    """Keras ``model.compile(optimizer, loss)``: the loss and whether the optimizer clips."""
    optimizer = kwargs.get("optimizer", args[0] if args else UNKNOWN)
    loss = kwargs.get("loss", args[1] if len(args) > 1 else UNKNOWN)
    spec: LossSpec | None = None
    if isinstance(loss, LossObjV):
        spec = loss.spec
    elif isinstance(loss, Const) and isinstance(loss.value, str):
        spec = LossSpec(loss.value, "keras", False, span_of(node))
    elif isinstance(loss, Ref):
        spec = LossSpec(loss.leaf, "keras", False, span_of(node))
    elif isinstance(loss, FunctionV) and (before := _logs_prediction(interp, loss)) is not None:
        spec = LossSpec("log", "keras", False, span_of(node), function=loss.name, before_log=before)
    clips = isinstance(optimizer, OptimizerV) and optimizer.clips
    if isinstance(optimizer, OptimizerV):
        interp.facts.optimizers.append(OptimizerSpec(optimizer.kind, optimizer.lr, optimizer.momentum, optimizer.span,
                                                     model_id=id(model)))
    elif isinstance(optimizer, Const) and isinstance(optimizer.value, str) \
            and optimizer.value.lower() in optimizers.KERAS_OPTIMIZER_STRINGS:
        kind = optimizers.KERAS_OPTIMIZER_STRINGS[optimizer.value.lower()]
        lr, momentum = optimizers.settings("keras", kind, [], {})
        interp.facts.optimizers.append(OptimizerSpec(kind, lr, momentum, span_of(node), model_id=id(model)))
    if clips:
        interp.facts.clips.append(span_of(node))
    interp.facts.compiled[id(model)] = (spec, clips, span_of(node))


def _logs_prediction(interp: Interp, loss: FunctionV) -> tuple[Node, ...] | None:
    """A hand-written Keras loss ``f(y_true, y_pred)`` that takes the log of ``y_pred``
    (``-K.sum(y_true * K.log(y_pred))``): run symbolically on a fresh prediction tensor, its result
    starts with that log, with before it only bounds ``paths.floored`` marks (``K.log(y_pred + K.epsilon())``)
    or literal scales and shifts (``K.log(1 - y_pred)``): those nodes (() for the log of ``y_pred`` as it
    comes). None: not this (a softmax or a normalization before the log)."""
    if isinstance(loss.node, ast.Lambda) or len(loss.node.args.args) != 2:
        return None
    result = longest_tensor(interp.call_function(loss, [UNKNOWN, TensorV(NodeSeq(), None)], {}))
    nodes = list(result.nodes) if result is not None else []
    for i, node in enumerate(nodes):
        if not isinstance(node, Layer) or node.kind not in (LayerKind.OTHER, LayerKind.SCALE):
            log = isinstance(node, Layer) and node.kind == LayerKind.UNKNOWN and node.op == "log"
            return tuple(nodes[:i]) if log else None
    return None


def record_model_call(interp: Interp, module: Value, tensor: TensorV, result: Value, node: ast.AST,
                      batch: Value | None = None, probe: BatchProbe | None = None) -> Value:
    """A model called on a batch in training code: remember its output path (a loss on it later is
    this model's loss) and return only the model's part of the path. A batch of known shape
    (``torch.randn(32, 600, 1)``) also tells the sequence length its recurrent layer runs over:
    the time axis of a torch RNN/LSTM/GRU, or the steps a forward's loop takes a cell through
    (``for t in range(x.size(1)): h = self.cell(x[:, t], h)``, ``probe``)."""
    out = longest_tensor(result)
    if out is None:
        return result
    own = out.nodes[len(tensor.nodes):]
    fed_by, cut = _feeding(interp, module, tensor) if tensor.nodes else (None, None)
    interp.facts.model_calls.append(ModelCall(id(module), own, span_of(node), fed_by, cut))
    _note_layers(interp, module)
    if isinstance(batch, TensorConstV) and batch.shape:
        steps = _time_steps(module, batch.shape, own, tensor, probe)
        if steps is not None:
            known = interp.facts.sequence_lengths.get(id(module), 0)
            interp.facts.sequence_lengths[id(module)] = max(known, steps)
    return TensorV(own, out.hint, dims=out.dims) if out is result else result


# What may stand between a model's input and its first recurrent layer without moving the time axis:
# they act on the last (feature) axis, or elementwise.
_TIME_PRESERVING = frozenset({LayerKind.EMBEDDING, LayerKind.DENSE, LayerKind.ACTIVATION, LayerKind.NORMALIZATION})
# Tensor operations that can move the time axis; a model whose code uses any is not read.
_AXIS_MOVES = frozenset({"transpose", "permute", "swapaxes", "swapdims", "movedim", "moveaxis", "t", "T", "mT"})


def _time_steps(module: Value, shape: tuple[int, ...], path: Sequence[Node], given: TensorV,
                probe: BatchProbe | None = None) -> int | None:
    """The number of time steps the model's first torch RNN/LSTM/GRU runs over for an input batch
    of ``shape``, when the layer's ``batch_first`` and the path before it say which axis is time; for
    a cell, the axis of the model's input (``given``) that the forward's loop steps it over, or else
    the trip count of the one loop of the forward that steps it (``probe``: ``seq_len = x.size(1)``)."""
    first: Layer | None = None
    embedded = False
    for item in path:
        if not isinstance(item, Layer):
            return None  # a residual, gate or merge before the recurrence: not a plain input path
        if item.kind == LayerKind.RECURRENT:
            first = item
            break
        if item.kind not in _TIME_PRESERVING and not (item.kind == LayerKind.OTHER and item.activation == "linear"):
            return None
        embedded = embedded or item.kind == LayerKind.EMBEDDING
    if first is None or first.framework != "torch":
        return None
    layer_obj = _layer_object(module, first)
    if (layer_obj is None or layer_obj.time_axis is None) and first.op in catalog.TORCH_CELLS:
        steps = probe.cell_steps.get(id(first)) if probe is not None else None  # the loop's own trip count
        return steps if steps is not None and steps > 0 else None
    if layer_obj is None or layer_obj.time_axis is None or (layer_obj.time_input is None and _moves_axes(module)):
        return None  # a cell's loop said the axis of the tensor it steps over, axis moves followed
    if layer_obj.time_input is not None and not _same_axes(layer_obj.time_input, given):
        return None  # a cell stepped over the axis of another tensor than the model's input
    # (B, T, F) / (T, B, F) features, (B, T) / (T, B) token ids; an unbatched (T, F) sequence.
    batched = len(shape) == (2 if embedded else 3)
    if not batched and len(shape) != (1 if embedded else 2):
        return None
    steps = shape[layer_obj.time_axis] if batched else shape[0]
    return steps if steps > 0 else None


def _same_axes(stepped: Value, given: TensorV) -> bool:
    """Whether ``stepped`` (the tensor a forward's loop steps a cell over) has the axes of the model's
    input ``given``: it is ``given``, or ``given`` through layers that act on the feature axis only
    (``emb = self.embed(x)``: token ids (B, T) become (B, T, E), axis 1 still time)."""
    if stepped is given:
        return True
    if not isinstance(stepped, TensorV) or len(stepped.nodes) <= len(given.nodes) \
            or not all(a is b for a, b in zip(stepped.nodes, given.nodes, strict=False)):
        return False
    return all(isinstance(n, Layer) and n.kind in _TIME_PRESERVING for n in stepped.nodes[len(given.nodes):])


def _layer_object(root: Value, layer: Layer) -> LayerObj | None:
    """The layer object holding ``layer`` among the modules reachable from ``root``."""
    return next((v for v in _modules(root) if isinstance(v, LayerObj) and v.layer is layer), None)


def _modules(root: Value) -> list[Value]:
    """``root`` and every module value reachable from it through attributes and containers."""
    seen: set[int] = set()
    found: list[Value] = []
    stack: list[Value] = [root]
    while stack and len(seen) < 10_000:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        found.append(value)
        if isinstance(value, InstanceV):
            stack.extend(value.attrs.values())
            stack.extend(value.seq_items or [])
        elif isinstance(value, (ContainerV, ListV)):
            stack.extend(value.items)
        elif isinstance(value, DictV):
            stack.extend(value.items.values())
    return found


def _moves_axes(module: Value) -> bool:
    """Whether the code of the model's classes (its own and its submodules') transposes or permutes
    a tensor anywhere: the time axis of the batch may then not be the one the layer reads."""
    classes = {id(c): c for v in _modules(module) if isinstance(v, InstanceV) for c in v.info.mro()}
    return any(isinstance(sub, ast.Attribute) and sub.attr in _AXIS_MOVES
               for cls in classes.values() for sub in ast.walk(cls.node))
