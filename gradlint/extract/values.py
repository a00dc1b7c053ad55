"""Abstract values the extraction interpreter computes with.

The interpreter runs model-building code symbolically: constants are real Python values,
layer constructors make ``LayerObj`` values around a ``model.Layer``, and tensors in
``forward()`` are ``TensorV`` values carrying the path of layers that produced them.
"""

from __future__ import annotations

import ast
import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import field
from typing import Any, overload

from gradlint.model import Configuration, Init, InputHint, Layer, Node, Span
from gradlint.records import dataclass


class Value:
    """Base of all abstract values."""


_serials = itertools.count()


def next_serial() -> int:
    """Creation order of mutable values, to tell whether a mutation under an undecidable
    condition touches something that existed before the condition."""
    return next(_serials)


class ItemList(list[Value]):
    """The items of a built container (``nn.Sequential``, ``ModuleList``, Keras ``Sequential``).

    It counts every item added to any container (``ItemList.added``), so that a loop can tell
    whether an iteration grew a model without summing the sizes of every container built so far
    (which made a file of deep networks quadratic)."""

    __slots__ = ()
    added = 0

    def append(self, value: Value) -> None:
        ItemList.added += 1
        super().append(value)

    def insert(self, index: Any, value: Value) -> None:
        ItemList.added += 1
        super().insert(index, value)

    def extend(self, values: Iterable[Value]) -> None:
        before = len(self)
        super().extend(values)
        ItemList.added += len(self) - before

    def __iadd__(self, values: Iterable[Value]) -> ItemList:  # type: ignore[override,misc]
        self.extend(values)
        return self


class UnknownV(Value):
    """Something the interpreter cannot know (config objects, imports from other modules).

    ``reason`` says why when it is worth telling the user (an unresolved import, a loop of
    unknown length); the shared ``UNKNOWN`` has none. Compare with ``isinstance``, never ``is``."""

    def __init__(self, reason: str | None = None, built: bool = False) -> None:
        self.reason = reason
        # Built by a call gradlint could not resolve (``TanhBlock(20)``, ``timm.create_model(...)``):
        # applied to a tensor, it is a module whose code -- and weights -- gradlint cannot read.
        self.built = built

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = UnknownV()


class LazyV(Value):
    """A name imported from a project module, resolved when first read (``Scope.lookup`` forces it):
    a module's names cost nothing until used."""

    __slots__ = ("thunk", "value")

    def __init__(self, thunk: Any) -> None:
        self.thunk = thunk
        self.value: Value | None = None

    def force(self) -> Value:
        if self.value is None:
            self.value = UNKNOWN  # a cycle reaching this name while it resolves sees UNKNOWN
            self.value = self.thunk()
        return self.value


@dataclass(eq=False)
class Const(Value):
    value: Any


@dataclass(eq=False)
class ListV(Value):
    items: list[Value]
    partial: bool = False  # mutated a number of times gradlint could not count
    is_tuple: bool = False
    serial: int = field(default_factory=next_serial)


@dataclass(eq=False)
class DictV(Value):
    items: dict[Any, Value]
    partial: bool = False


@dataclass(eq=False)
class ModulesView(DictV):
    """``self._modules`` of a torch module defined in the file: its registered children by name; a
    write (``self._modules[name] = layer``) registers a child as ``add_module`` does."""

    owner: Value | None = None


@dataclass(eq=False)
class Ref(Value):
    """A name from outside the file: ``torch.nn.Linear``, ``keras.layers.Dense``."""

    qualname: str

    @property
    def leaf(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Geometry:
    """How a Keras layer maps the per-example shape of its input (channels last), beyond what its
    kind says (see ``paths.output_shape``): a sliding ``window`` (Conv, MaxPooling, AveragePooling:
    kernel, strides, dilation per spatial axis, padding ``valid``/``same``), ``flatten``, ``reshape``
    to ``target`` (-1: the axis Keras infers), or ``global`` pooling (``keepdims``)."""

    op: str  # window | transpose (a transposed conv's window) | resize | flatten | reshape | global
    # resize (ZeroPadding/Cropping/UpSampling): each spatial n -> n·strides[i] + kernel[i]
    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    padding: str = "valid"
    target: tuple[int, ...] = ()
    keepdims: bool = False
    channels_first: bool = False  # data_format="channels_first": (C, *spatial)


@dataclass(eq=False)
class LayerObj(Value):
    """A framework layer object (nn.Linear, keras Dense, nn.Sigmoid ...)."""

    layer: Layer
    owned: bool = False
    # The input a model starting with this layer expects, when its arguments say (Keras input_shape=).
    input_hint: InputHint | None = None
    # torch nn.RNN/LSTM/GRU: the axis of an input batch that is time (0, or 1 with batch_first=True);
    # a cell (nn.RNNCell...) stepped in a loop over an axis of ``time_input``: that axis.
    time_axis: int | None = None
    time_input: Value | None = None
    geometry: Geometry | None = None  # Keras: how it maps spatial sizes, when its arguments say
    # Attributes the file sets on the layer object (``self.fc2.is_last = True``, nanoGPT's
    # ``c_proj.SCALE_INIT = 1``): flags that an init hook reads back with ``getattr``/``hasattr``.
    attrs: dict[str, Value] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layer not in _BIRTHS:
            _BIRTHS[self.layer] = next_serial()


# When each layer was first built, on the serial clock (``next_serial``): an init written under an
# undecidable condition is certain only for a layer built inside it (``inits.set_param_init``).
_BIRTHS: weakref.WeakKeyDictionary[Layer, int] = weakref.WeakKeyDictionary()


def layer_birth(layer: Layer) -> int | None:
    return _BIRTHS.get(layer)


@dataclass(eq=False)
class ContainerV(Value):
    """nn.Sequential / nn.ModuleList / nn.ModuleDict / keras Sequential."""

    kind: str  # sequential | modulelist | moduledict | keras_sequential
    items: list[Value]
    keys: list[str] | None  # moduledict / named Sequential
    span: Span
    framework: str
    partial: bool = False
    owned: bool = False
    input_hint: InputHint | None = None
    name: str | None = None
    serial: int = field(default_factory=next_serial)
    factory: str | None = None  # the module-level function that builds it with default arguments
    configuration: Configuration | None = None  # the configuration-loop iteration that built it

    def __post_init__(self) -> None:
        if type(self.items) is not ItemList:
            self.items = ItemList(self.items)


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: ast.ClassDef
    bases: list[Value]
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    class_attrs: dict[str, Value]
    framework: str | None  # torch | keras | None (not a model class)
    container_base: str | None = None  # "sequential"/"modulelist" when subclassing nn.Sequential etc.
    scope: Any = None  # defining scope
    fields: list[str] | None = None  # a dataclass / NamedTuple: its own fields, in order
    members: dict[str, Value] = field(default_factory=dict)  # an Enum: its members read so far (enums.py)

    def mro(self) -> list[ClassInfo]:
        order: list[ClassInfo] = [self]
        for base in self.bases:
            if isinstance(base, ClassV):
                for cls in base.info.mro():
                    if cls not in order:
                        order.append(cls)
        return order

    def find_method(self, name: str, after: ClassInfo | None = None) -> tuple[ClassInfo, ast.FunctionDef] | None:
        chain = self.mro()
        if after is not None and after in chain:
            chain = chain[chain.index(after) + 1:]
        for cls in chain:
            if name in cls.methods:
                return cls, cls.methods[name]  # type: ignore[return-value]
        return None

    def find_class_attr(self, name: str) -> Value | None:
        for cls in self.mro():
            if name in cls.class_attrs:
                return cls.class_attrs[name]
        return None


@dataclass(eq=False)
class ClassV(Value):
    info: ClassInfo


@dataclass(eq=False)
class InstanceV(Value):
    """An instance of a class defined in the linted file."""

    info: ClassInfo
    attrs: dict[str, Value]
    span: Span
    seq_items: list[Value] | None = None  # subclasses of nn.Sequential
    owned: bool = False
    partial: bool = False
    factory: str | None = None  # the module-level function that builds it with default arguments
    built: bool = False  # Keras: build(input_shape) ran (on the first call)
    built_width: int | None = None  # ... for this input width (None: unknown; rebuilt once it is known)
    configuration: Configuration | None = None  # the configuration-loop iteration that built it


@dataclass(eq=False)
class FunctionV(Value):
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    scope: Any
    defaults: dict[str, Value]
    owner: ClassInfo | None = None  # class that defines it (for super())
    name: str = "<lambda>"


@dataclass(eq=False)
class BoundV(Value):
    self_val: Value
    func: FunctionV


@dataclass(eq=False)
class MethodV(Value):
    """A method of a non-user value: ``x.sigmoid``, ``layers.append``, ``self.apply``."""

    target: Value
    name: str


class NodeSeq(Sequence[Node]):
    """An immutable sequence of path nodes whose append is amortized O(1).

    A tensor's path grows by one layer per layer it passes through; with tuples every step
    copied the whole path (O(n²): 512 × 512 ``model.add(Dense(8))`` took 21 s). Sequences made
    by appending to the newest one share one growing list, each seeing its own prefix of it
    (the elements below a sequence's length never change); appending to an older one copies
    (C speed). A prefix slice ``[:n]`` is a view; two views of one list share their shorter
    length as a common prefix, found in O(1)."""

    __slots__ = ("_buf", "_len")

    def __init__(self, items: Iterable[Node] = (), _buf: list[Node] | None = None, _len: int = 0) -> None:
        if _buf is None:
            _buf = list(items)
            _len = len(_buf)
        self._buf = _buf
        self._len = _len

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Node]:
        buf = self._buf
        for i in range(self._len):
            yield buf[i]

    def __reversed__(self) -> Iterator[Node]:
        buf = self._buf
        for i in range(self._len - 1, -1, -1):
            yield buf[i]

    @overload
    def __getitem__(self, index: int) -> Node: ...

    @overload
    def __getitem__(self, index: slice) -> NodeSeq: ...

    def __getitem__(self, index: int | slice) -> Node | NodeSeq:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._len)
            if start == 0 and step == 1:
                return NodeSeq(_buf=self._buf, _len=max(stop, 0))  # a prefix: shares the list
            if step == 1:
                return NodeSeq(self._buf[start:max(stop, start)])
            return NodeSeq([self._buf[i] for i in range(start, stop, step)])
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("path index out of range")
        return self._buf[index]

    def __add__(self, other: Iterable[Node]) -> NodeSeq:
        extra = other._buf[:other._len] if isinstance(other, NodeSeq) else list(other)
        if len(self._buf) == self._len:  # the newest sequence of this list: grow it
            self._buf.extend(extra)
            return NodeSeq(_buf=self._buf, _len=self._len + len(extra))
        return NodeSeq(_buf=self._buf[:self._len] + extra, _len=self._len + len(extra))

    def __radd__(self, other: Iterable[Node]) -> NodeSeq:
        return NodeSeq([*other, *self])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (NodeSeq, tuple, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=False))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"NodeSeq({list(self)!r})"

    def common_prefix(self, other: Sequence[Node]) -> int | None:
        """Length of the common prefix when O(1) tells it (two views of one list), else None."""
        if isinstance(other, NodeSeq) and other._buf is self._buf:
            return min(self._len, other._len)
        return None


@dataclass(eq=False)
class TensorV(Value):
    nodes: NodeSeq
    hint: InputHint | None = None
    # Keras: the per-example shape (channels last) when every layer since the model input is
    # understood (``paths.output_shape``); None: unknown (the model input's when ``nodes`` is empty),
    # (): unknown even then (a crop before the first layer). Only a Flatten/Reshape's width needs it.
    shape: tuple[int, ...] | None = None
    # torch: the whole shape, batch axis included, of a tensor made from a training batch of known shape
    # (``gradlint.extract.torch_dims``); None: unknown. An entry None: that size unknown.
    dims: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, NodeSeq):
            self.nodes = NodeSeq(self.nodes)


class ReadOutV(UnknownV):
    """A Python number read out of a tensor (``x.item()``, ``float(x)``, ``int(x)``): unknown as a number,
    as any number computed at run time; a tensor made from it again (``torch.tensor([v])``) holds the
    tensor's values with no gradient to it."""

    def __init__(self, tensor: TensorV, op: str) -> None:
        super().__init__()
        self.tensor = tensor
        self.op = op


def read_out_of(value: Value, depth: int = 0) -> ReadOutV | None:
    """The read-out number ``value`` is, or a list or tuple of them holds (``[a.item(), b.item()]``)."""
    if isinstance(value, ReadOutV):
        return value
    if isinstance(value, ListV) and depth < 3:
        return next((got for item in value.items if (got := read_out_of(item, depth + 1)) is not None), None)
    return None


@dataclass(eq=False)
class ParamV(Value):
    """A weight/bias of a layer, or a free nn.Parameter."""

    owner: Layer | None
    role: str  # weight | bias | param | recurrent (a torch RNN's weight_hh_l*)
    init: Init | None = None  # free parameters only
    ndim: int | None = None
    shape: tuple[int, ...] | None = None  # free parameters, when the factory call states it
    born: int = field(default_factory=next_serial)  # free parameters: when created (see layer_birth)


@dataclass(eq=False)
class VariableV(ParamV):
    """A ``tf.Variable`` / ``tf.get_variable`` / Keras ``add_weight`` weight. ``dims`` may have
    unknown entries (``add_weight(shape=(input_shape[-1], units))`` before the width is known);
    ``framework`` is what a layer using it belongs to (``keras`` inside a Keras layer)."""

    dims: tuple[int | None, ...] | None = None
    framework: str = "tensorflow"


@dataclass(eq=False)
class TensorConstV(Value):
    """torch.zeros(...), torch.ones(...)*c, torch.randn(...)*s: a tensor with a known init."""

    init: Init
    shape: tuple[int, ...] | None = None
    # created with ``requires_grad=True`` or made so by ``requires_grad_()`` / ``.requires_grad = True``:
    # a weight of whatever uses it (``x @ self.w`` in a forward); otherwise a fixed tensor
    trainable: bool = False
    # a short 1-D numpy array whose numbers are known (``np.linspace(256, 32, 12)``): layer widths
    # a script computes; iterating, indexing and slicing it give those numbers
    values: tuple[int | float, ...] | None = None


@dataclass(eq=False)
class TransposedV(Value):
    """``w.t()`` / ``w.T`` / ``w.transpose(0, 1)`` of a 2-D weight or tensor: the same tensor read with
    its dimensions swapped (``x.mm(w.t())`` with ``w`` in the ``nn.Linear`` layout (out, in))."""

    base: ParamV | TensorConstV


@dataclass(eq=False)
class InitV(Value):
    """A Keras initializer object, or a torch init function reference partly applied."""

    init: Init


@dataclass(eq=False)
class FunctionalModelV(Value):
    """keras.Model(inputs, outputs) in the functional API."""

    output: TensorV
    span: Span
    owned: bool = False
    others: tuple[TensorV, ...] = ()  # the model's other outputs (``outputs=[a, b]``)
    name: str | None = None
    factory: str | None = None  # the module-level function that builds it with default arguments
    configuration: Configuration | None = None  # the configuration-loop iteration that built it
    # a raw-tensor script's model (``torch_tensors``): the module-level variable holding its output
    # (``y_pred``), which the dynamic check reads after running the script up to its first backward
    script_output: str | None = None


@dataclass(eq=False)
class TypeV(Value):
    """type(x): the class of a value, compared against Refs and ClassVs."""

    of: Value


class BatchProbe:
    """A torch model's forward run on a training batch of known shape (``torch.randn(32, 60, 16)``):
    what it reads of the shape and how many steps its recurrent cells take.

    ``sizes``: the forward's parameter bound to the batch, when its body never rebinds it, -> the
    batch's shape; ``x.size(1)`` / ``x.shape[1]`` on that name resolve. ``loops``: the trip counts of
    the forward's own ``for``/``while`` loops open now, innermost last (None: unknown). ``cell_steps``:
    id of each RNNCell/LSTMCell/GRUCell layer stepped -> the trip count of the one loop it runs in
    (None: not one known loop, or not always the same)."""

    __slots__ = ("shape", "sizes", "loops", "cell_steps")

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.sizes: dict[str, tuple[int, ...]] = {}
        self.loops: list[int | None] = []
        self.cell_steps: dict[int, int | None] = {}

    def step_cell(self, layer: object) -> None:
        steps = self.loops[0] if len(self.loops) == 1 else None
        key = id(layer)
        if key in self.cell_steps and self.cell_steps[key] != steps:
            steps = None
        self.cell_steps[key] = steps


@dataclass(eq=False)
class Frame:
    """Per-call interpreter state."""

    cls: ClassInfo | None = None
    self_val: Value | None = None
    returned: list[Value] = field(default_factory=list)
    batch: BatchProbe | None = None  # a torch forward run on a training batch of known shape
    func: FunctionV | None = None  # the function called, and the scope of its arguments and locals
    scope: Any = None


@dataclass(eq=False)
class GradModeV(Value):
    """A context that turns gradient recording off or on (``torch.no_grad()``, ``torch.enable_grad()``):
    what a ``with`` block under it computes carries no gradient when ``enabled`` is False."""

    enabled: bool


@dataclass(eq=False)
class DefaultsScopeV(Value):
    """A context that changes other calls' default arguments while a ``with`` block runs (slim's
    ``arg_scope([fully_connected], activation_fn=...)``): ``ops`` the qualified names of the functions
    it applies to (None: not known which), ``kwargs`` their new defaults. A ``with`` statement pushes it
    on ``stack`` (its framework's per-file list) for the block and pops it after."""

    ops: frozenset[str] | None
    kwargs: dict[str, Value]
    stack: list[DefaultsScopeV]


@dataclass(eq=False)
class LossObjV(Value):
    """A loss object (``nn.BCEWithLogitsLoss()``, ``keras.losses.BinaryCrossentropy(...)``)."""

    spec: Any  # gradlint.training.LossSpec


@dataclass(eq=False)
class LossV(Value):
    """The result of applying a loss: ``loss.backward()`` on it is a training step."""

    use: Any  # gradlint.training.LossUse
    # A hand-written loss (``-tf.reduce_sum(y * tf.log(p))``) is a loss only once it is minimized or
    # differentiated: until then it is not in the training facts (a log inside model code is not one).
    pending: bool = False
    # Its values copied out of the graph (``loss.data``, ``loss.item()``, ``torch.tensor(loss)``): (span, op)
    # of the copy. ``Variable(loss.data, requires_grad=True).backward()`` reaches no model.
    severed: Any = None


@dataclass(eq=False)
class GradientTapeV(Value):
    """``tf.GradientTape()``: ``tape.gradient(loss, variables)`` takes the loss's gradient (TF 2 loops)."""


@dataclass(eq=False)
class OptimizerV(Value):
    span: Span
    clips: bool = False
    kind: str | None = None  # the class (``SGD``, ``Adam``, ``GradientDescentOptimizer``)
    lr: float | None = None  # the learning rate it uses (gradlint.extract.optimizers), None: unknown
    momentum: float | None = None
