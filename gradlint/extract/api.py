"""The typed seams between the parts of the extraction interpreter.

The interpreter is assembled from mixins (statements, expressions, calls, builtins, modules), and
framework knowledge (torch, keras, ...) lives in handler modules. None of them imports the module
that assembles them: they talk to it through the protocols here, the way mypy's expression checker
talks to its type checker through a shared API class.

- ``Interp``: the small interface framework handlers, the training recorder and invocable values use.
- ``Core``: everything the mixins ask of each other (the mixins subclass it; ``Interpreter`` implements it).
- ``Framework``: one framework's handler, consulted by qualified-name prefix (registered in ``frameworks``).
- ``InvocableV``: a value with its own call semantics, dispatched by ``Interp.call`` like any other value.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from gradlint.extract.state import Scope
from gradlint.extract.values import (
    BatchProbe,
    ClassInfo,
    ContainerV,
    Frame,
    FunctionV,
    InstanceV,
    ListV,
    TensorV,
    Value,
)
from gradlint.model import Layer
from gradlint.training import TrainingFacts

Args = list[Value]
Kwargs = dict[str, Value]
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


class Interp(Protocol):
    """The interpreter as framework handlers, the training recorder and invocable values see it."""

    facts: TrainingFacts  # what training code does: losses, backward(), clipping, fit/compile
    built: list[Value]  # every model-like value built, in creation order (roots are the unowned ones)
    frame: Frame  # the current call: its class and ``self``
    tree: ast.Module  # the file
    module_scope: Scope  # its module-level names
    # Per-file state a framework handler keeps between calls, by framework name (TensorFlow: the
    # graph's placeholders and candidate outputs). Handlers themselves are shared and stateless.
    framework_state: dict[str, object]
    # Tensors the code hands on other than by returning them (stored on an attribute, given to a loss
    # or to Keras ``add_loss``): other routes a gradient can take back (``Model.side_routes``).
    escaped: list[TensorV]
    # The serial (``values.next_serial``) at which each open undecidable branch or loop began, innermost last.
    uncertain_since: list[int]
    # id -> (tensor, recurrence): tensors that hold a recurrence's output at every step (torch nn.RNN's
    # ``out``, tf.nn.dynamic_rnn's outputs), and what per-step layers (Linear, Dropout, activations,
    # norms; elementwise functions and reductions over time, see step_reads; TF's reshape, dense and
    # bias) made of them. The tensor is kept so its id is not reused. A model output among them reads
    # every step (``Layer.reads_every_step``).
    step_outputs: dict[int, tuple[TensorV, Layer]]
    # id -> (view, base, order): a tensor made by moving the axes of ``base`` (``x.transpose(0, 1)``), and for
    # each of its leading axes the base's axis it is (time_loops.moved). Kept so the id is not reused.
    axis_views: dict[int, tuple[TensorV, TensorV, tuple[int, ...]]]
    # id -> (pieces, tensor, axis): the one-step pieces of ``x.unbind(1)`` / ``x.split(1, dim=1)``.
    time_pieces: dict[int, tuple[Value, TensorV, int]]
    # id -> list: lists appended to in a loop over time of unknown length, run once (``outputs.append(h)``
    # under ``for x_t in x.transpose(0, 1)``): they hold one item per step (step_reads.note_stacked).
    step_lists: dict[int, ListV]
    loops: int  # open ``for`` / ``while`` statements, the called functions' included

    def tick(self, n: int = 1) -> None:
        """Spend ``n`` symbolic steps of the budget (raises ``BudgetExceeded`` when it runs out)."""
        ...

    def iterate(self, value: Value) -> list[Value] | None:
        """The items a ``for`` loop over ``value`` sees, or None when not knowable."""
        ...

    def trip_count(self, value: Value) -> int | None:
        """How many items a loop over ``value`` sees, when cheap to tell; None otherwise."""
        ...

    def own(self, value: Value) -> None:
        """Mark modules stored inside another module: they are not roots."""
        ...

    def call(self, func: Value, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def call_function(self, func: FunctionV, args: Args, kwargs: Kwargs, self_val: Value | None = None,
                      batch: BatchProbe | None = None) -> Value:
        ...

    def make_function(self, node: FunctionNode, scope: Scope, owner: ClassInfo | None = None) -> FunctionV:
        ...

    def unknown_call(self, args: Args, kwargs: Kwargs, node: ast.AST, name: str, reason: str | None = None) -> Value:
        """A call we cannot model: an UNKNOWN layer on the tensor it is applied to."""
        ...

    def sequential_items(self, args: Args) -> tuple[list[Value], list[str] | None, bool]:
        """(items, keys, partial) of ``Sequential(*args)`` / ``Sequential(OrderedDict(...))``."""
        ...

    def fill_sequential(self, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        ...

    def apply_module(self, module: Value, tensor: TensorV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def tensor_binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        ...

    def is_framework_base(self, qualname: str) -> bool:
        """``qualname`` is a model base class a registered framework defines (``torch.nn.Module``)."""
        ...


class Imports(Protocol):
    """Resolution of the file's imports inside its own project (``gradlint.extract.project``).
    Each method returns None when the module is not a project module (it stays an external ``Ref``)."""

    def import_module(self, node: ast.AST, dotted: str) -> Value | None:
        ...

    def import_name(self, node: ast.AST, module: str, level: int, name: str) -> Value | None:
        ...

    def star_import(self, node: ast.AST, module: str, level: int, scope: Scope) -> bool:
        ...

    def cannot_build(self, func: FunctionV) -> bool:
        ...

    def plain_data(self, values: Sequence[Value]) -> bool:
        ...


class Core(Interp, Protocol):
    """Everything the interpreter's mixins ask of each other."""

    project: Imports | None  # None: the file has no path on disk (stdin, a test string)
    entry_configs: dict[int, int] | None  # not None while unreached factory functions run
    foreign_depth: int  # calls of project modules' functions on the stack
    foreign_budget: int | None  # steps the current build may still spend in them (None: no limit)
    budget: int  # steps the current build may still spend
    file_budget: int  # steps the whole file may still spend
    steps: int  # countdown to the nearest step limit (see Interpreter.budget)
    deferrable: ast.AST | None  # the call a module-level ``name = f(...)`` assigns (see eval_Call)
    layer_flags: set[str]  # attribute names the file sets on some layer object (``fc.is_last = True``)
    depth: int
    classes: list[ClassInfo]
    functions: list[FunctionV]
    instantiated_classes: set[str]
    called_functions: set[int]
    frameworks: Sequence[Framework]
    # Armed by a training call of a torch model on a batch of known shape, taken by its forward (BatchProbe).
    batch_probe: BatchProbe | None
    unrolled: int  # iterations of the enclosing loop nest run one by one (see state.MAX_UNROLLED)
    # Open loops of unknown length over an axis of a tensor (``for t in range(x.size(1))``), innermost
    # last: the tensor iterated and the axis. A recurrent cell stepped in one runs over that axis.
    time_loops: list[tuple[TensorV, int]]
    # Syntax node class -> the ``eval_*`` / ``stmt_*`` method handling it (state.dispatch_table).
    eval_methods: dict[type, Callable[..., Any]]
    stmt_methods: dict[type, Callable[..., Any]]

    def enter_uncertain(self) -> None:
        ...

    def freeze(self, target: Value) -> None:
        """Mark every layer of a module frozen (``requires_grad_(False)``, ``trainable = False``)."""
        ...

    def leave_uncertain(self) -> None:
        ...

    def mutating_uncertainly(self, target: Value) -> bool:
        ...

    def framework_of_base(self, qualname: str) -> tuple[str, str | None] | None:
        ...

    def exec_block(self, body: list[ast.stmt], scope: Scope) -> None:
        ...

    def exec_stmt(self, stmt: ast.stmt, scope: Scope) -> None:
        ...

    def assign(self, target: ast.expr, value: Value, scope: Scope) -> None:
        ...

    def set_attribute(self, obj: Value, attr: str, value: Value, node: ast.AST) -> None:
        ...

    def list_extend(self, target: ListV | ContainerV, source: Value) -> None:
        ...

    def eval(self, node: ast.expr, scope: Scope) -> Value:
        ...

    def eval_safe(self, node: ast.expr, scope: Scope) -> Value:
        ...

    def get_attribute(self, obj: Value, attr: str, node: ast.AST | None = None) -> Value:
        ...

    def binop(self, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value:
        ...

    def truth(self, value: Value) -> bool | None:
        ...

    def isinstance_check(self, value: Value, classes: Value, exact: bool) -> bool | None:
        ...

    def call_builtin(self, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def call_stdlib(self, q: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST | None = None) -> Value | None:
        ...

    def call_method(self, target: Value, name: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def call_module(self, module: Value, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def instantiate(self, info: ClassInfo, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def forward(self, instance: InstanceV, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        ...

    def children_of(self, value: Value) -> list[tuple[str, Value]]:
        """A module's registered children (``named_children()``), by name."""
        ...


class Framework(Protocol):
    """One framework's API knowledge. The interpreter hands it every call of a qualified name that
    starts with one of its ``prefixes`` (after ``catalog.fold_name``); adding a framework is adding a
    handler to ``gradlint.extract.frameworks.FRAMEWORKS``, not editing the interpreter."""

    @property
    def name(self) -> str:
        """``Layer.framework`` / ``ClassInfo.framework`` of what it builds."""
        ...

    @property
    def prefixes(self) -> tuple[str, ...]:
        ...

    @property
    def model_bases(self) -> Mapping[str, str | None]:
        """Base classes that make a user class a model -> the container kind they imply (or None)."""
        ...

    @property
    def model_base_suffixes(self) -> tuple[str, ...]:
        """Base classes recognised by the end of their name (``*LightningModule``)."""
        ...

    def call(self, interp: Interp, qualname: str, leaf: str, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        """A call of a name under one of ``prefixes``."""
        ...

    def call_unprefixed(self, interp: Interp, qualname: str, leaf: str, args: Args, kwargs: Kwargs,
                        node: ast.AST) -> Value | None:
        """A call of a name no framework's prefix claimed (e.g. timm's ``trunc_normal_``); None: not mine."""
        ...

    def method(self, interp: Interp, target: Value, name: str, args: Args, kwargs: Kwargs,
               node: ast.AST) -> Value | None:
        """``target.name(...)`` on a tensor or parameter, or on a model-class instance whose class does
        not define ``name`` (Keras ``self.add_weight``); None: not mine."""
        ...

    def binop(self, interp: Interp, op: ast.operator, left: Value, right: Value, node: ast.AST) -> Value | None:
        """An operator with a parameter operand (``x @ W``, ``h + b`` with a ``tf.Variable``); None: not mine."""
        ...

    def before_call(self, interp: Interp, instance: InstanceV, args: Args, kwargs: Kwargs) -> None:
        """An instance of one of this framework's model classes is about to run its forward/call
        (Keras runs ``build(input_shape)`` on a layer's first call)."""
        ...

    def finish(self, interp: Interp) -> None:
        """The whole file ran (module body and unreached definitions): models the framework builds
        only from what the file did as a whole (TensorFlow graphs) go into ``interp.built`` now."""
        ...


class InvocableV(Value):
    """A value with its own call semantics (``super().f``, ``functools.partial``, a Keras merge layer)."""

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        raise NotImplementedError


class AttributedV(Value):
    """A value with its own attribute semantics (an argparse parser or namespace, a project module):
    ``Core.get_attribute`` and ``set_attribute`` hand it every attribute access."""

    def attribute(self, interp: Interp, name: str) -> Value:
        raise NotImplementedError

    def set_attribute(self, interp: Interp, name: str, value: Value) -> bool:
        """``obj.name = value``; False when the value does not model assignment."""
        return False
