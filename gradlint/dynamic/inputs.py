"""Synthetic inputs for the dynamic check: which input a built model most likely reads (shape,
kind, vocabulary) and the batch tensors made from it. Imported by the worker and by ``gradlint.live``;
torch (and keras) are imported inside the functions, never at module import."""

from __future__ import annotations

import math
from typing import Any

from gradlint.dynamic.errors import Skip
from gradlint.records import dataclass


def _torch_first_layer(model: Any) -> Any:
    """The layer that most likely reads the model's input.

    Execution order is unknown before a forward pass, so: the first layer (in definition
    order) whose input size no other layer produces -- `Linear(8, 16)` defined after
    `Linear(16, 16)` is still the entry -- else simply the first one defined.
    """
    from torch import nn

    wanted = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.EmbeddingBag, nn.RNNBase)
    layers = [m for m in model.modules() if isinstance(m, wanted)]
    if not layers:
        return None

    def size_in(m: Any) -> int | None:
        if isinstance(m, nn.Linear):
            return m.in_features
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.in_channels
        if isinstance(m, nn.RNNBase):
            return m.input_size
        return None  # embeddings read ids: always an entry

    produced = set()
    for m in layers:
        for attr in ("out_features", "out_channels", "hidden_size", "embedding_dim", "proj_size"):
            value = getattr(m, attr, None)
            if isinstance(value, int) and value > 0:
                produced.add(value * (2 if attr == "hidden_size" and getattr(m, "bidirectional", False) else 1))
    for m in layers:
        if size_in(m) not in produced:
            return m
    return layers[0]


@dataclass(frozen=True)
class InputSpec:
    """A synthetic input, per sample (no batch axis)."""

    kind: str  # features | image | tokens | sequence
    shape: tuple[int, ...]
    vocab: int | None = None  # tokens: ids drawn below this
    seq_first: bool = False  # a bare nn.RNN without batch_first wants (T, B, F)
    parts: tuple[InputSpec, ...] = ()  # a Keras model with several inputs: one spec each


# Spatial sizes tried, in order, when only the channel count of an image input is known
# (a Flatten -> Linear pins the size): CIFAR, MNIST, a latent 1x1 (DCGAN generators), ...
_SPATIAL_SIZES = (32, 28, 1, 64, 224, 16, 96, 128, 256)


def _unique(specs: list[InputSpec]) -> list[InputSpec]:
    out: list[InputSpec] = []
    for spec in specs:
        if spec not in out:
            out.append(spec)
    return out


def _torch_candidates(model: Any, job: dict[str, Any], hint: dict[str, Any]) -> list[InputSpec]:
    from torch import nn

    seq = int(job["sequence_length"])
    size = int(job["image_size"])
    first = _torch_first_layer(model)
    hint_kind = hint.get("kind") if hint.get("kind") not in (None, "unknown") else None
    hint_shape = tuple(hint["shape"]) if hint.get("shape") else None
    vocab = hint.get("vocab")
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        # ids must stay below the Embedding's size even if the hint says more
        vocab = min(vocab, first.num_embeddings) if vocab else first.num_embeddings
        return [InputSpec("tokens", hint_shape or (seq,), vocab)]
    if hint_kind == "tokens":
        return [InputSpec("tokens", hint_shape or (seq,), vocab or 100)]
    specs: list[InputSpec] = []
    if hint_shape:
        specs.append(InputSpec(hint_kind or "features", hint_shape))
    if isinstance(first, nn.Linear) and not isinstance(first, nn.LazyLinear) and first.in_features > 0:
        specs.append(InputSpec("features", (first.in_features,)))
    elif isinstance(first, nn.modules.conv._ConvNd):
        dims = len(first.kernel_size)
        sizes = _SPATIAL_SIZES if dims == 2 else ((seq * 2, seq, 64, 256) if dims == 1 else (16, 8, 32))
        ordered = [size, *sizes] if dims == 2 else list(sizes)
        specs += [InputSpec("image", (first.in_channels, *([n] * dims))) for n in ordered]
    elif isinstance(first, nn.RNNBase):
        specs.append(InputSpec("sequence", (seq, first.input_size), seq_first=first is model and not first.batch_first))
    # Raw 2-D parameters used by hand (x @ W or F.linear(x, W)): either side may be the input.
    # Plain requires_grad tensors the module keeps (``self.w = torch.randn(n, m, requires_grad=True)``)
    # are such weights too (``layers.torch_units`` measures them).
    from gradlint.dynamic.layers import torch_units

    matrices = [p for p in model.parameters() if p.dim() == 2][:3] or \
        [u.main for u in torch_units(model) if u.main is not None and u.main.dim() == 2][:3]
    for p in matrices:
        specs += [InputSpec("features", (int(p.shape[0]),)), InputSpec("features", (int(p.shape[1]),))]
    if not specs:
        raise Skip("cannot infer the input shape (no Linear/Conv/Embedding/RNN layer reads it); pass --input-shape")
    return _unique(specs)[:12]


def _keras_candidates(model: Any, job: dict[str, Any], hint: dict[str, Any]) -> list[InputSpec]:
    import keras

    seq = int(job["sequence_length"])
    size = int(job["image_size"])
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    embedding = next((la for la in layers if isinstance(la, keras.layers.Embedding)), None)
    hint_kind = hint.get("kind") if hint.get("kind") not in (None, "unknown") else None
    hint_shape = tuple(hint["shape"]) if hint.get("shape") else None
    try:
        declared = model.input_shape  # Sequential/functional built with Input or input_shape=
    except (AttributeError, ValueError):
        declared = None
    if isinstance(declared, list):
        return [_keras_multi_input(model, layers, seq)]
    declared_shape = tuple(seq if d is None else int(d) for d in declared[1:]) if declared is not None else None
    dtype = ""
    try:
        dtype = str(model.inputs[0].dtype)
    except (AttributeError, IndexError, TypeError, ValueError):
        pass
    if embedding is not None or hint_kind == "tokens" or "int" in dtype:
        vocab = int(embedding.input_dim) if embedding is not None else (hint.get("vocab") or 100)
        return [InputSpec("tokens", declared_shape or hint_shape or (seq,), vocab)]
    if declared_shape is not None:
        return [InputSpec(hint_kind or "features", declared_shape)]
    specs = [InputSpec(hint_kind or "features", hint_shape)] if hint_shape else []
    # An unbuilt model: Keras layers size their weights from the first input they see, so
    # any width fits a Dense; the guess follows the first layer's type (channels last).
    first = next((la for la in layers if la.__class__.__name__ not in ("InputLayer",)), None)
    name = type(first).__name__ if first is not None else ""
    if name.startswith(("Conv2D", "DepthwiseConv2D", "SeparableConv2D")):
        specs += [InputSpec("image", (n, n, 3)) for n in (size, 28, 64)]
    elif name.startswith("Conv1D") or name in ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "RNN"):
        specs.append(InputSpec("sequence", (seq, 8)))
    elif name.startswith("Conv3D"):
        specs.append(InputSpec("image", (16, 16, 16, 3)))
    else:
        specs.append(InputSpec("features", (32,)))
    return _unique(specs)


def _keras_multi_input(model: Any, layers: list[Any], seq: int) -> InputSpec:
    """One part per keras.Input, from its declared shape and dtype."""
    import keras

    # Which Embedding reads which input is not tracked: ids below the smallest vocabulary fit all.
    vocabs = [int(la.input_dim) for la in layers if isinstance(la, keras.layers.Embedding)]
    parts = []
    for tensor in model.inputs:
        shape = tuple(seq if d is None else int(d) for d in tuple(tensor.shape)[1:])
        if "int" in str(tensor.dtype):
            parts.append(InputSpec("tokens", shape, min(vocabs) if vocabs else 100))
        else:
            parts.append(InputSpec("features", shape))
    return InputSpec("+".join(p.kind for p in parts), parts[0].shape, parts=tuple(parts))


def input_candidates(model: Any, job: dict[str, Any]) -> list[InputSpec]:
    """Inputs to try, best first. --input-shape is the only candidate when given."""
    hint = job.get("input_hint") or {}
    override = job.get("input_shape")
    specs = _keras_candidates(model, job, hint) if job["framework"] == "keras" else _torch_candidates(model, job, hint)
    if override:
        base = specs[0]
        return [InputSpec(base.kind, tuple(override), base.vocab, base.seq_first)]
    return specs


# The protocol's batch (128) where it is cheap; a batch of 32 for large inputs (images at full
# resolution), whose forward/backward would otherwise take minutes on a CPU. The first/last
# ratio depends on the batch by up to ½·log10 B (docs/calibration.md), so near the band edges the
# protocol's batch matters: on the measured corpus, batch 32 turned 7 of 311 healthy models
# borderline that batch 128 measures healthy.
PROTOCOL_BATCH = 128
LARGE_INPUT_BATCH = 32
LARGE_INPUT_ELEMENTS = 4096


def batch_size(spec: InputSpec, requested: Any = None) -> int:
    """``requested`` if given; else PROTOCOL_BATCH for inputs of at most LARGE_INPUT_ELEMENTS
    values per sample, LARGE_INPUT_BATCH above that."""
    if requested:
        return int(requested)
    parts = spec.parts or (spec,)
    elements = sum(math.prod(part.shape) for part in parts)
    return PROTOCOL_BATCH if elements <= LARGE_INPUT_ELEMENTS else LARGE_INPUT_BATCH


def make_tensor(spec: InputSpec, job: dict[str, Any], generator: Any) -> tuple[Any, tuple[int, ...]]:
    """The batch (a list of tensors for several inputs) and its (first) full shape."""
    import torch

    batch = batch_size(spec, job.get("batch_size"))
    if spec.parts:
        tensors = [make_tensor(part, job, generator) for part in spec.parts]
        return [t for t, _ in tensors], tensors[0][1]  # packed into the model's structure by _forward_fn
    if spec.kind == "tokens":
        full = (batch, *spec.shape)
        x = torch.randint(0, int(spec.vocab or 100), full, generator=generator)
        return (x.to(torch.int32) if job["framework"] == "keras" else x), full
    full = (spec.shape[0], batch, *spec.shape[1:]) if spec.seq_first else (batch, *spec.shape)
    return torch.randn(full, generator=generator), full
