"""Whether a torch function or tensor method applied to a recurrence's every-step output
(``Interp.step_outputs``: nn.RNN's ``out``) still holds every step, so that a model output made of it
reads every step (``Layer.reads_every_step``: GRD008 and GRD007's at-init clause do not apply).

Measured (nn.RNN(16, 128), default init, 60 steps, batch 32, seeds 0-2; tools/measure_through_time.py):
‖∂L/∂x_1‖/‖∂L/∂x_60‖ = 1.1-1.2 (median) for ``fc(out.mean(1))``, ``fc(out.sum(dim=1))``,
``fc(torch.relu(out))``, ``fc(F.dropout(out, 0.1))``, ``fc(out.max(1)[0])``, ``fc(out).mean(1)`` and
``fc(out.mean(0))`` time-major, against 10^-15.2 for ``fc(out[:, -1])``, ``fc(h[-1])`` and ``fc(out[-1])``.
A reduction over time reads every step (a max over time too: each unit's gradient goes to the step of
its maximum, spread over the sequence); elementwise activations, dropout, norms over features and
re-arrangements keep one value per step. Selecting steps (``narrow``, ``select``, ``index_select``,
``gather``, the pieces of ``chunk``/``split``/``unbind``) does not, like an index (``out[:, -1]``).
"""

from __future__ import annotations

from gradlint.extract import catalog, time_loops
from gradlint.extract.api import Args, AttributedV, Interp, Kwargs
from gradlint.extract.values import UNKNOWN, Const, ListV, MethodV, TensorV, Value
from gradlint.model import Layer, LayerKind

_REDUCTIONS = frozenset({"mean", "sum", "amax", "amin", "max", "min", "logsumexp", "nansum", "nanmean", "norm"})
_REARRANGES = frozenset({"contiguous", "clone", "to", "float", "double", "half", "cuda", "cpu", "type_as",
                         "view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "flip"})
KEEPS_STEPS = frozenset(catalog.FUNCTIONAL_ACTIVATIONS) | catalog.FUNCTIONAL_DROPOUT \
    | catalog.FUNCTIONAL_NORMALIZATION | _REDUCTIONS | _REARRANGES
_EXTREMA = frozenset({"max", "min", "amax", "amin"})
DROPS_STEPS = frozenset({"narrow", "select", "index_select", "gather", "take", "take_along_dim", "masked_select",
                         "chunk", "split", "unbind", "tensor_split"})


class ValuesIndicesV(ListV, AttributedV):
    """``x.max(dim)`` / ``torch.min(x, dim)``: the (values, indices) pair, ``.values`` / ``.indices`` too
    (built only for a recurrence's every-step output: the values read every step, the indices carry no
    gradient and stay unknown)."""

    def attribute(self, interp: Interp, name: str) -> Value:
        if name in ("values", "indices"):
            return self.items[0 if name == "values" else 1]
        return MethodV(self, name)


def _stepped(interp: Interp, tensor: Value) -> bool:
    found = interp.step_outputs.get(id(tensor)) if isinstance(tensor, TensorV) else None
    return found is not None and found[0] is tensor


def _fresh(tensor: TensorV) -> TensorV:
    return TensorV(tensor.nodes, tensor.hint, tensor.shape)


def carry(interp: Interp, tensor: Value | None, name: str, args: Args, kwargs: Kwargs, result: Value) -> Value:
    """``result`` of ``name`` applied to ``tensor`` (first argument or target; ``args`` after it), with
    its every-step reading told: registered in ``Interp.step_outputs`` when the operation keeps every
    step, a copy outside it when the operation selects steps. Any other tensor: ``result`` as it is (an
    axis move a fresh tensor, see time_loops.moved)."""
    result = time_loops.moved(interp, tensor, name, args, kwargs, result)
    if not isinstance(tensor, TensorV) or not _stepped(interp, tensor):
        return result
    layer = interp.step_outputs[id(tensor)][1]
    if name in DROPS_STEPS:
        if result is tensor:
            return _fresh(tensor)
        if isinstance(result, ListV):
            return ListV([_fresh(i) if i is tensor else i for i in result.items], result.partial, result.is_tuple)
        return result
    if name not in KEEPS_STEPS or not isinstance(result, TensorV):
        return result
    dim = args[0] if args else kwargs.get("dim")
    if name in _EXTREMA and dim is None:
        return result  # out.max(): one element of one step
    if name in ("max", "min") and isinstance(dim, Const) and type(dim.value) is int:
        values = result if result is not tensor else _fresh(tensor)
        interp.step_outputs[id(values)] = (values, layer)
        return ValuesIndicesV([values, UNKNOWN], is_tuple=True)
    if result is not tensor:
        interp.step_outputs[id(result)] = (result, layer)
    return result


def transposed_attribute(interp: Interp, tensor: TensorV, attr: str) -> Value:
    """``x.T`` / ``x.mT``: a fresh tensor on ``x``'s path (an axis move), every step still if ``x`` was."""
    return carry(interp, tensor, "transpose", [], {}, time_loops.moved(interp, tensor, attr, [], {}, tensor))


def pieces(tensor: TensorV, name: str, args: Args, kwargs: Kwargs) -> ListV:
    """``x.chunk(3)`` / ``torch.split(x, [a, b])`` / ``x.unbind(1)``: the pieces, each on ``x``'s path; as many
    as the call says when it says so literally (a few), else two (a loop over them runs its body on
    more than one step: what it stacks holds several steps)."""
    count: int | None = None
    first = args[0] if args else kwargs.get("chunks", kwargs.get("split_size_or_sections"))
    if name == "chunk" and isinstance(first, Const) and type(first.value) is int:
        count = first.value
    elif name == "split" and isinstance(first, Const) and isinstance(first.value, (list, tuple)):
        count = len(first.value)
    elif name == "split" and isinstance(first, ListV) and not first.partial:
        count = len(first.items)
    if count is None or not 1 <= count <= _MAX_PIECES:
        count = 2
    return ListV([tensor] * count, partial=False, is_tuple=True)


_MAX_PIECES = 16


def note_stacked(interp: Interp, joined: Value | None, tensors: list[TensorV]) -> None:
    """``torch.stack(joined)`` / ``torch.cat(joined)`` of ``tensors``: a cell whose output appears in several
    of them, or in a list a loop over time filled step by step (``Interp.step_lists``), has the outputs of
    several of its time steps stacked (one path per step, each ending in the same cell layer and what
    follows it): it reads every step."""
    seen: dict[int, int] = {}
    cells: dict[int, Layer] = {}
    for item in {id(t): t for t in tensors}.values():  # one tensor twice (torch.cat([h, h])) is one step
        here = {id(node): node for node in item.nodes
                if isinstance(node, Layer) and node.kind == LayerKind.RECURRENT and node.op in catalog.TORCH_CELLS}
        for key, node in here.items():
            seen[key] = seen.get(key, 0) + 1
            cells[key] = node
    stepped = isinstance(joined, ListV) and interp.step_lists.get(id(joined)) is joined
    for key, count in seen.items():
        if count >= 2 or stepped:
            cells[key].reads_every_step = True
