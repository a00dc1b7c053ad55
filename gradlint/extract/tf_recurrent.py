"""TensorFlow 1.x recurrent cells run by ``tf.nn.dynamic_rnn`` (``tf.nn.rnn_cell.*``, ``tf.contrib.rnn.*``,
``tf.compat.v1``): ``BasicRNNCell``, ``GRUCell``, ``LSTMCell``/``BasicLSTMCell``, stacked in a
``MultiRNNCell`` or wrapped in a ``DropoutWrapper``. A cell is built lazily: its input width, and
so its kernel's fans, is known only when ``dynamic_rnn`` applies it to a tensor.

TF's cells keep one kernel for the input and the state together, ``[input + units, gates · units]``
(``BasicRNNCell``: gates 1), drawn by ``get_variable``'s default glorot_uniform unless an
initializer is given: its recurrent block then has H·Var(W) = 2H/(F + H + gH), not the
2H/(H + gH) a separate H×gH matrix would have. Each layer carries that variance as a fixed-variance
init (what the recurrent estimate reads). Nothing is imported or run.
"""

from __future__ import annotations

import ast
import math
from dataclasses import field
from typing import Protocol

from gradlint.extract.api import Interp
from gradlint.extract.common import activation_of, first_tensor, positive_int, span_of
from gradlint.extract.paths import current_width
from gradlint.extract.values import UNKNOWN, Const, ListV, TensorV, Value
from gradlint.gradflow import init_sigma_w2
from gradlint.model import Init, Layer, LayerKind, Span
from gradlint.records import dataclass

# cell class -> gate blocks in its kernel (LSTM: i, j, f, o; GRU: its gates and candidate, taken together)
CELLS: dict[str, int] = {"BasicRNNCell": 1, "GRUCell": 3, "LSTMCell": 4, "BasicLSTMCell": 4,
                         "LSTMBlockCell": 4, "GRUBlockCell": 3}
CELL_NAMESPACES = ("nn.rnn_cell.", "contrib.rnn.", "rnn.")
# Wrappers that run the wrapped cell unchanged at init as far as gradients through time go.
WRAPPERS = frozenset({"DropoutWrapper", "ResidualWrapper", "DeviceWrapper", "AttentionCellWrapper"})
# Inits whose variance per weight does not depend on the fans.
_FIXED_VARIANCE = frozenset({"normal", "uniform", "truncated_normal", "random_normal", "random_uniform",
                             "zeros", "ones", "constant"})
RUNNERS = frozenset({"nn.dynamic_rnn", "nn.bidirectional_dynamic_rnn", "nn.static_rnn", "contrib.rnn.static_rnn",
                     "nn.rnn", "rnn.static_rnn"})


class CellGraph(Protocol):
    """What the cells need of the file's graph (``tensorflow.TFGraph``)."""

    @property
    def interp(self) -> Interp: ...

    @property
    def framework(self) -> str: ...

    def init_of(self, value: Value, node: ast.AST) -> tuple[Init | None, tuple[int | None, ...] | None]: ...

    def record(self, value: Value) -> Value: ...

    def default_initializer(self, node: ast.AST) -> Init | None: ...


@dataclass(eq=False)
class TFCellV(Value):
    """A recurrent cell (or ``MultiRNNCell``'s stack of them) not applied yet."""

    op: str
    span: Span
    units: int | None = None
    activation: str | None = "tanh"
    kernel: Init | None = None  # None: get_variable's default (glorot_uniform over the whole kernel)
    forget_bias: float | None = 0.0
    stack: list[TFCellV] = field(default_factory=list)  # MultiRNNCell: its cells, in order


def is_cell_name(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return name.startswith(CELL_NAMESPACES) and (leaf in CELLS or leaf in WRAPPERS or leaf == "MultiRNNCell")


def make_cell(graph: CellGraph, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in WRAPPERS:
        inner = args[0] if args else kwargs.get("cell", UNKNOWN)
        return inner if isinstance(inner, TFCellV) else UNKNOWN
    if leaf == "MultiRNNCell":
        cells = args[0] if args else kwargs.get("cells", UNKNOWN)
        items = cells.items if isinstance(cells, ListV) and not cells.partial else None
        if not items or not all(isinstance(c, TFCellV) for c in items):
            return UNKNOWN
        return TFCellV(leaf, span_of(node), stack=[c for c in items if isinstance(c, TFCellV)])
    cell = TFCellV(leaf, span_of(node), units=positive_int(args[0] if args else kwargs.get("num_units")))
    act = kwargs.get("activation")
    if act is not None and not (isinstance(act, Const) and act.value is None):
        cell.activation = activation_of(act)  # None: unknown, no estimate
    source = kwargs.get("kernel_initializer", kwargs.get("initializer"))
    if source is not None and not (isinstance(source, Const) and source.value is None):
        cell.kernel = graph.init_of(source, node)[0] or Init("unknown")
    if "LSTM" in leaf:
        bias = kwargs.get("forget_bias", Const(1.0))  # TF adds 1.0 to the forget gate by default
        value = bias.value if isinstance(bias, Const) else None
        cell.forget_bias = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return cell


def run_cell(graph: CellGraph, name: str, args: list[Value], kwargs: dict[str, Value], node: ast.AST) -> Value | None:
    """``outputs, state = tf.nn.dynamic_rnn(cell, inputs, ...)`` (or ``static_rnn`` over a list of steps);
    the bidirectional form returns both directions' outputs (each the forward cell's path: the two are
    alike at init). The steps are the model input's: ``placeholder([None, T, F])``."""
    bidirectional = name == "nn.bidirectional_dynamic_rnn"
    cell = args[0] if args else kwargs.get("cell_fw" if bidirectional else "cell", UNKNOWN)
    inputs = args[2 if bidirectional else 1] if len(args) > (2 if bidirectional else 1) else kwargs.get("inputs")
    if isinstance(inputs, ListV):  # static_rnn: a list of per-step tensors (tf.unstack(x, T, 1))
        inputs = next((item for item in inputs.items if isinstance(item, TensorV)), None)
    tensor = inputs if isinstance(inputs, TensorV) else first_tensor(args[1:], kwargs)
    if tensor is None:
        return None
    time_major = kwargs.get("time_major")
    if not isinstance(cell, TFCellV) or (time_major is not None and not (isinstance(time_major, Const)
                                                                         and time_major.value is False)):
        out: Value = TensorV(tensor.nodes + (Layer(LayerKind.UNKNOWN, name.rsplit(".", 1)[-1], span_of(node),
                                                   graph.framework, reason="recurrent cell not understood"),),
                             tensor.hint)
    else:
        width = current_width(tensor)
        nodes = tensor.nodes
        last: Layer | None = None
        # the cell's variables are made here, by get_variable: a kernel with no initializer of its own
        # draws the scope's default at this call (an enclosing variable_scope(initializer=...))
        default = graph.default_initializer(node)
        for each in cell.stack or [cell]:
            last = _layer(graph, each, width, default)
            nodes = nodes + (last,)
            width = each.units
        out = graph.record(TensorV(nodes, tensor.hint))
        if isinstance(out, TensorV) and last is not None and not name.endswith("static_rnn"):
            # dynamic_rnn's outputs hold every step; an index (outputs[:, -1]) keeps the last one. (static_rnn's
            # list is read one step at a time: outputs[-1].)
            graph.interp.step_outputs[id(out)] = (out, last)
    outputs = ListV([out, out], is_tuple=True) if bidirectional else out
    return ListV([outputs, UNKNOWN], is_tuple=True)


def _layer(graph: CellGraph, cell: TFCellV, width: int | None, default: Init | None) -> Layer:
    gates = CELLS.get(cell.op, 1)
    layer = Layer(LayerKind.RECURRENT, cell.op, cell.span, graph.framework, activation=cell.activation,
                  fan_in=width, fan_out=cell.units, units=cell.units, bias=True, bias_init=Init("zeros"),
                  forget_bias=cell.forget_bias)
    init = _per_block_init(cell.kernel or default or Init("unknown"), width, cell.units, gates)
    layer.weight_init = layer.recurrent_init = init
    return layer


def _per_block_init(kernel: Init, width: int | None, units: int | None, gates: int) -> Init:
    """The one kernel's init as a fixed variance per weight: its fans are the input and the state
    together (``[F + H, gH]``). Unknown when a fan-aware init meets an unknown width."""
    if kernel.scheme in _FIXED_VARIANCE:
        return kernel  # the same variance per weight whatever the fans
    if kernel.scheme == "unknown" or units is None:
        return Init("unknown")
    fan_in = width + units if width is not None else None
    try:
        sigma_w2 = init_sigma_w2(kernel.scheme, kernel.params, fan_in, gates * units)
    except (ArithmeticError, ValueError):
        return Init("unknown")
    if sigma_w2 is None or fan_in is None or not math.isfinite(sigma_w2):
        return Init("unknown")
    return Init("normal", {"std": math.sqrt(sigma_w2 / fan_in)}, kernel.span)


def carry_steps(interp: Interp, source: Value, out: Value) -> Value:
    """``out`` made of ``source`` step by step (a reshape, a dense layer, an activation, a bias): when
    ``source`` holds every step of a recurrence (``tf.nn.dynamic_rnn``'s outputs), so does ``out``
    (``Interp.step_outputs``); an index (``outputs[:, -1]``) keeps one step only."""
    steps = interp.step_outputs.get(id(source))
    if steps is not None and steps[0] is source and isinstance(out, TensorV):
        interp.step_outputs[id(out)] = (out, steps[1])
    return out
