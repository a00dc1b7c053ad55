"""The training-fact recorder: what training code around the models does, for ``gradlint.training``.

Losses applied to model outputs, ``loss.backward()``, optimizers and ``step()``, gradient clipping
however it is spelled, ``model.fit`` / ``trainer.fit(model)`` and Keras ``compile``. The interpreter
calls these hooks; everything recorded lands in ``Interp.facts``.
"""

from __future__ import annotations

import ast

from gradlint.extract import catalog
from gradlint.extract.api import Args, Interp, Kwargs
from gradlint.extract.common import longest_tensor, span_of
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    Const,
    ContainerV,
    Frame,
    FunctionalModelV,
    InstanceV,
    LossObjV,
    LossV,
    OptimizerV,
    Ref,
    TensorV,
    UnknownV,
    Value,
)
from gradlint.training import LossSpec, LossUse, ModelCall

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


def note_call(interp: Interp, node: ast.Call, args: Args, kwargs: Kwargs) -> None:
    """Gradient clipping however it is spelled: a clip call, or a clipping argument."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in catalog.CLIP_CALLS:
        interp.facts.clips.append(span_of(node))
        return
    for key in catalog.CLIP_KWARGS & kwargs.keys():
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


def construct(interp: Interp, q: str, leaf: str, node: ast.AST) -> Value | None:
    """Optimizers and trainers, from any library; None when ``q`` is neither."""
    if q.startswith("transformers.") and leaf == "Trainer":
        interp.facts.clips.append(span_of(node))  # TrainingArguments.max_grad_norm defaults to 1.0
    if (q.startswith("torch.optim.") and ".lr_scheduler" not in q and leaf[:1].isupper()) or leaf in catalog.OPTIMIZERS:
        return OptimizerV(span_of(node))
    return None


def method(interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value | None:
    """``loss.backward()``, ``optimizer.step()``, ``model.fit(...)``, ``model.compile(...)``; None otherwise."""
    if isinstance(target, LossV):
        if name == "backward":
            backward(interp, target, node)
            return Const(None)
        return target if name in ("mean", "sum", "__add__", "float", "to") else UNKNOWN
    if isinstance(target, OptimizerV):
        # opt.minimize(loss) is backward and step at once (TF, Keras); compute_gradients + apply_gradients
        # split them; optimizer.step() after loss.backward() (torch).
        if name in ("minimize", "compute_gradients", "get_gradients"):
            backward(interp, args[0] if args else kwargs.get("loss", UNKNOWN), node)
        if name in ("step", "minimize", "apply_gradients"):
            interp.facts.steps.append(span_of(node))
        return UNKNOWN if name in ("minimize", "compute_gradients", "get_gradients", "apply_gradients") else Const(None)
    if name in _TRAINING_METHODS and is_model(target):
        interp.facts.fits.append((span_of(node), id(target)))
        return UNKNOWN
    if name == "compile" and is_model(target):
        record_compile(interp, target, args, kwargs, node)
        return Const(None)
    if name == "fit" and isinstance(target, UnknownV):
        return UNKNOWN
    return None


def backward(interp: Interp, loss: Value, node: ast.AST) -> None:
    """Gradients of ``loss`` are taken: a pending hand-written loss becomes a recorded one now."""
    if isinstance(loss, LossV) and loss.pending:
        loss.pending = False
        interp.facts.losses.append(loss.use)
    interp.facts.backwards.append((span_of(node), loss.use if isinstance(loss, LossV) else None))


def apply_loss(interp: Interp, spec: LossSpec, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
    prediction = args[0] if args else kwargs.get("input", kwargs.get("y_pred", UNKNOWN))
    tensor = longest_tensor(prediction)
    if tensor is None:
        return UNKNOWN
    model_id = None
    for call in reversed(interp.facts.model_calls):
        # The prediction is this call's output, possibly with more applied (e.g. a sigmoid).
        n = len(call.output)
        if n and len(tensor.nodes) >= n and all(a is b for a, b in zip(tensor.nodes, call.output)):
            model_id = call.model_id
            break
    use = LossUse(spec, tensor.nodes, span_of(node), model_id)
    interp.facts.losses.append(use)
    return LossV(use)


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
    clips = isinstance(optimizer, OptimizerV) and optimizer.clips
    if clips:
        interp.facts.clips.append(span_of(node))
    interp.facts.compiled[id(model)] = (spec, clips, span_of(node))


def record_model_call(interp: Interp, module: Value, tensor: TensorV, result: Value, node: ast.AST) -> Value:
    """A model called on a batch in training code: remember its output path (a loss on it later is
    this model's loss) and return only the model's part of the path."""
    out = longest_tensor(result)
    if out is None:
        return result
    interp.facts.model_calls.append(ModelCall(id(module), out.nodes[len(tensor.nodes):], span_of(node)))
    return TensorV(out.nodes[len(tensor.nodes):], out.hint) if out is result else result
