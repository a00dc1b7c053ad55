"""``gradlint.check_model``: the dynamic check on a model that already exists in memory.

``--dynamic`` builds each model from its file in a subprocess; in a notebook the model is
already built. ``check_model`` measures it in place with the same machinery: the worker's
input synthesis (``gradlint.dynamic.worker``), one forward/backward per seed with the same
bookkeeping (``gradlint.dynamic.measure.measure_once``), medians over seeds and the protocol's
verdict (``measure.aggregate`` -> ``gradlint.verdict``), the terminal table
(``gradlint.dynamic.render``) and the gradient-flow plot (``gradlint.dynamic.plot``).

The model's weights are fixed, so seeds vary the synthetic input and targets only (the file
check also re-initializes the weights per seed). The model is left as it was: gradients,
buffers (BatchNorm running statistics), non-trainable Keras variables, train/eval mode and
the global random states are restored afterwards.

Imported only when ``gradlint.check_model`` is first used: torch, keras and matplotlib are
imported then, never by ``import gradlint``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from gradlint.dynamic.results import DynamicOptions, DynamicResult, LayerMeasurement
from gradlint.records import dataclass

LIVE_PATH = "<in memory>"


@dataclass
class ModelCheck:
    """What ``check_model`` measured. Renders as text (``str``/``repr``) and, in Jupyter, as
    the per-layer table with the gradient-flow plot (``_repr_html_``)."""

    result: DynamicResult

    @property
    def verdict(self) -> str | None:
        return self.result.verdict

    @property
    def ratio(self) -> float | None:
        return self.result.ratio

    @property
    def layers(self) -> list[LayerMeasurement]:
        return self.result.layers

    @property
    def reason(self) -> str | None:
        return self.result.reason

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def __str__(self) -> str:
        from gradlint.dynamic import render_results

        return render_results([self.result]).rstrip("\n")

    def __repr__(self) -> str:
        return self.__str__()

    def plot_png(self) -> bytes:
        """The gradient-flow plot (one bar per weight layer, log scale) as PNG bytes."""
        from gradlint.dynamic.plot import plot_result

        with tempfile.TemporaryDirectory(prefix="gradlint-plot-") as directory:
            with open(plot_result(self.result, directory), "rb") as handle:
                return handle.read()

    def _repr_html_(self) -> str:
        r = self.result
        head = (f"<p><b>{html.escape(r.model)}</b>: <b>{html.escape(str(r.verdict or r.status))}</b>"
                f"{' — ' + html.escape(r.reason) if r.reason else ''}</p>")
        if r.status != "measured":
            return head
        numbers = []
        for label, value in (("first/last ‖∂L/∂W‖", r.ratio), ("loss", r.loss), ("‖∂L/∂θ‖/‖θ‖", r.relative_grad),
                             ("first layer ‖∂W‖/‖W‖", r.first_relative_grad)):
            if value is not None:
                numbers.append(f"{html.escape(label)} {_num(value)}")
        evidence = "".join(f"<li>{html.escape(line)}</li>" for line in r.evidence)
        rows = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in (
                i, html.escape(layer.name), html.escape(layer.kind), _num(layer.grad_norm), _num(layer.weight_norm),
                _num(layer.relative_grad), _pct(layer.saturation), _pct(layer.dead_fraction),
                "symmetric" if layer.symmetric else ("norm" if layer.is_norm else ""))) + "</tr>"
            for i, layer in enumerate(r.layers, 1))
        table = ("<table><thead><tr><th>#</th><th>layer</th><th>kind</th><th>‖∂L/∂W‖</th><th>‖W‖</th>"
                 "<th>‖∂W‖/‖W‖</th><th>saturated</th><th>dead</th><th></th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>")
        image = base64.b64encode(self.plot_png()).decode("ascii") if r.layers else ""
        plot = f'<img src="data:image/png;base64,{image}" alt="gradient-flow plot"/>' if image else ""
        shape = f"<p>input: {html.escape(r.input_kind or 'given')} batch {tuple(r.input_shape or ())}</p>"
        return (f"<div class=\"gradlint-check\">{head}<p>{', '.join(numbers)}</p>"
                f"{'<ul>' + evidence + '</ul>' if evidence else ''}{shape}{plot}{table}</div>")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.1e}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _framework(model: Any) -> str:
    import sys

    torch = sys.modules.get("torch")
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.layers.Layer):
        if keras.backend.backend() != "torch":
            raise ValueError(f"check_model measures Keras models on the torch backend; this Keras runs on "
                             f"{keras.backend.backend()!r} (set KERAS_BACKEND=torch before importing keras)")
        return "keras"
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    raise TypeError(f"check_model takes a torch.nn.Module or a Keras model, not {type(model).__name__}")


@contextmanager
def _kept_as_is(model: Any, framework: str) -> Iterator[None]:
    """Measure without leaving a trace on the model or the process's random state."""
    import random

    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    if framework == "torch":
        grads = {id(p): p.grad for p in model.parameters()}
        buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        training = {id(m): m.training for m in model.modules()}
    else:
        saved = [(v, v.numpy().copy()) for v in model.non_trainable_variables]
        grads = {id(v.value): v.value.grad for v in model.trainable_variables}
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if framework == "torch":
            for p in model.parameters():
                p.grad = grads.get(id(p))
            with torch.no_grad():
                for name, b in model.named_buffers():
                    if name in buffers:
                        b.copy_(buffers[name])
            for m in model.modules():
                m.training = training.get(id(m), m.training)
        else:
            for variable, value in saved:
                variable.assign(value)
            for v in model.trainable_variables:
                v.value.grad = grads.get(id(v.value))


def check_model(model: Any, example_input: Any = None, *, seeds: int = 3,
                options: DynamicOptions | None = None) -> ModelCheck:
    """Measure the gradient flow of a live PyTorch module or Keras model (torch backend) as
    ``gradlint --dynamic`` does, and return the per-layer measurements with the verdict.

    ``example_input``: a batch to run (a tensor, or a list of tensors for a multi-input Keras
    model); without it, a synthetic batch is inferred from the model's first layer, as the
    file check does. ``seeds``: forward/backward passes on different synthetic targets (and
    synthetic inputs), medians reported. ``options``: the thresholds and input sizes of the
    file check (``gradlint.dynamic.DynamicOptions``).
    """
    framework = _framework(model)
    options = replace(options or DynamicOptions(), seeds=seeds)
    previous = os.environ.get("KERAS_BACKEND")
    from gradlint.dynamic import measure, worker  # torch (and keras) are imported here
    from gradlint.dynamic.runner import _fill  # the worker payload -> DynamicResult mapping of --dynamic
    from gradlint.verdict import Thresholds

    if previous is None:  # importing the worker set it for its own process; not ours to change
        os.environ.pop("KERAS_BACKEND", None)
    import torch

    thresholds = Thresholds.from_json(options.thresholds_json())
    job: dict[str, Any] = {
        "framework": framework, "input_hint": None, "input_shape": None, "batch_size": options.batch_size,
        "sequence_length": options.sequence_length, "image_size": options.image_size,
    }
    result = DynamicResult(path=LIVE_PATH, model=type(model).__name__, line=0, status="failed")
    with _kept_as_is(model, framework):
        try:
            payload = _measure(model, example_input, framework, job, thresholds, max(1, seeds), measure, worker,
                               torch)
            payload["status"] = "measured"
        except worker.Skip as exc:
            payload = {"status": "skipped", "reason": str(exc)}
    _fill(result, payload)
    return ModelCheck(result)


def _measure(model: Any, example_input: Any, framework: str, job: dict[str, Any], thresholds: Any, seeds: int,
             measure: Any, worker: Any, torch: Any) -> dict[str, Any]:
    """Seed 0 settles the input (candidates in order, as run_job does); then the other seeds."""

    def once(x: Any, seed: int) -> dict[str, Any]:
        torch.manual_seed(seed)  # dropout and the like: reproducible
        generator = torch.Generator().manual_seed(10_000 + seed)  # the targets, as in the worker
        return measure.measure_once(model, worker._forward_fn(model, x, framework), framework, thresholds, generator)

    if example_input is not None:
        per_seed = [once(example_input, seed) for seed in range(seeds)]
        shape = tuple(example_input[0].shape if isinstance(example_input, (list, tuple)) else example_input.shape)
        kind = "given"
    else:
        first_error: BaseException | None = None
        chosen = None
        for spec in worker.input_candidates(model, job):
            try:
                x, shape = worker.make_tensor(spec, job, torch.Generator().manual_seed(0))
                per_seed = [once(x, 0)]
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                first_error = first_error or exc
                continue
            chosen = spec
            break
        if chosen is None:
            assert first_error is not None
            raise first_error
        for seed in range(1, seeds):
            x, _ = worker.make_tensor(chosen, job, torch.Generator().manual_seed(seed))
            per_seed.append(once(x, seed))
        kind = chosen.kind
    payload = measure.aggregate(per_seed, thresholds)
    payload.update(input_shape=list(shape), input_kind=kind, seeds=len(per_seed))
    return payload
