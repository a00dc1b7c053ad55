"""Model extraction: from a parsed file to the ``gradlint.model.Model`` descriptions in it.

Everything model-like the file builds (nn.Module subclasses, nn.Sequential anywhere,
Keras Sequential / functional / subclassed models) is built symbolically; the models
reported are the *roots*: those not owned by another model in the same file.
"""

from __future__ import annotations

import ast
import bisect
import functools
import time
from collections.abc import Callable
from dataclasses import field

from gradlint.extract.common import ANCHOR, longest_tensor, side_routes, span_of
from gradlint.extract.interpreter import BudgetExceeded, Interpreter
from gradlint.extract.paths import reset_stops
from gradlint.extract.reinit import mark_reinitialised
from gradlint.extract.syntax_index import SyntaxIndex, called_names
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    Const,
    ContainerV,
    FunctionalModelV,
    FunctionV,
    InstanceV,
    NodeSeq,
    TensorV,
    Value,
)
from gradlint.model import Init, InputHint, Layer, LayerKind, Model, Node, Residual, Span
from gradlint.records import dataclass
from gradlint.training import TrainingFacts

# Symbolic steps (~3-10 µs of CPU each, ~10 µs measured on 2 busy cores). Budgets are per
# definition, so that one runaway definition cannot starve the others: each top-level
# statement of the module body, each class or factory built, each model described has its own.
# Measured over timm, torchvision, transformers and keras applications: the costliest top-level
# statement takes 12.3k steps, the costliest class build or description that succeeds 21.5k,
# the largest file ~450k in all. FILE_BUDGET bounds a whole file (a generated file with
# thousands of definitions); FILE_CPU_SECONDS is a backstop for what steps do not measure.
# What a budget stops is reported (GRD903), never silently dropped. docs/reliability.md has
# the figures.
# One top-level statement: as much as building one model (a script builds its model in one).
STATEMENT_BUDGET = 150_000
# Building one class/factory or describing one model (running its forward()): first within
# PROBE_BUDGET, then -- after all the others -- within PER_ROOT_BUDGET.
PROBE_BUDGET = 25_000
PER_ROOT_BUDGET = 150_000
# Of a class's probe, what the functions of other project modules may spend (they are followed
# only there: its retry leaves them unknown). On timm/models, timm/layers, torchvision/models and
# a third of transformers' modeling files, probes that succeed spend at most 6.2k steps in them
# and the 13 that fail 12k-24k (timm's named_apply over every submodule), all wasted: stopping
# those early spares a tenth of timm/models' steps and changes no result.
FOREIGN_PROBE_BUDGET = 10_000
FILE_BUDGET = 1_500_000  # everything in one file: ~5-15 s of CPU at most
FILE_CPU_SECONDS = 15.0  # extraction of one file, CPU time of this process (not wall clock)
FACTORY_BUDGET = 100_000  # all the factory functions nothing in the file calls (a model zoo), together
# A root whose forward cannot be described (a detector returning losses or detections) is checked
# through its parts: the submodules that are models themselves, described on their own, descending
# into those that are opaque too. Bounded per root: torchvision's Faster R-CNN needs depth 3
# (FasterRCNN.rpn.head.conv) and 9 descriptions. Each part's description has its own budget
# (PROBE_BUDGET, then PER_ROOT_BUDGET) within the file's.
PART_DEPTH = 4
PARTS_PER_ROOT = 48

_TRAINING_CALLS = frozenset({"fit", "compile", "evaluate", "predict", "train_on_batch", "fit_generator", "save"})


@dataclass
class Extraction:
    models: list[Model]
    training: TrainingFacts
    # Definitions whose analysis ran out of budget: (what, line). Reported, never silently dropped.
    unanalysed: list[tuple[str, int]] = field(default_factory=list)
    # Root models whose forward could not be described (it always raises, returns None, passes
    # through no layer): no rule sees them, but the dynamic check still builds them and says
    # what became of each (path empty; the build target is set).
    opaque: list[Model] = field(default_factory=list)
    # Project modules the file's imports resolved to (path -> sha-256 of the bytes read), and
    # candidate files whose absence decided a resolution: the result cache depends on both.
    dependencies: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def extract_models(tree: ast.Module) -> list[Model]:
    """All root models of a module, in source order."""
    return extract(tree).models


def extract(tree: ast.Module, path: str | None = None, roots: tuple[str, ...] = (),
            source: str | None = None) -> Extraction:
    """Root models and training facts of a module. With the file's ``path``, imports of its own
    project (under its project root, or under one of ``roots``) are read and interpreted too.
    ``source``, the module's text, only spares searches for what it does not spell."""
    ANCHOR.reset()
    reset_stops()
    interp = Interpreter(tree, budget=STATEMENT_BUDGET, file_budget=FILE_BUDGET, path=path, roots=roots)
    interp.deadline = time.process_time() + FILE_CPU_SECONDS
    try:
        return _extract(interp, tree, source)
    finally:
        ANCHOR.reset()
        interp.release()


def _extract(interp: Interpreter, tree: ast.Module, source: str | None = None) -> Extraction:
    unanalysed: list[tuple[str, int]] = []
    try:
        unanalysed.extend(interp.run_module(statement_budget=STATEMENT_BUDGET))
    except (BudgetExceeded, RecursionError):
        line = interp.statement_line
        unanalysed.append((f"the module body from line {line} on (the file's budget ran out there)", line))
    built_by: dict[int, str] = {}
    index = SyntaxIndex(tree, source)
    _build_unreached(interp, index, unanalysed, built_by)
    _run_training_steps(interp)
    index.note_spellings(interp.facts)
    for framework in interp.frameworks:  # TensorFlow graphs become models once everything has run
        framework.finish(interp)
    # Inits a re-initialisation hook gradlint cannot run may overwrite are unknown (reinit.py).
    mark_reinitialised(interp, [v for v in interp.built if not getattr(v, "owned", True)], built_by, index,
                       source)
    module_names = _module_level_names(interp)
    factories = _factory_names(interp)
    if not interp.facts.effective_clips():  # a misplaced clip_grad_norm_ (training.misplaced_clips) clips nothing
        interp.facts.clips.extend(index.unevaluated_clipping())
    module_facts = _ModuleFacts(tree, index, interp.facts)

    models: list[Model] = []
    opaque: list[Model] = []
    opaque_roots: list[tuple[str, Value]] = []  # (name, value) of the roots that went to ``opaque``
    seen: set[int] = set()
    deferred: list[Value] = []

    def describe_root(value: Value, budget: int) -> None:
        before = len(opaque)
        model = _describe(interp, value, module_names, factories, module_facts, opaque, budget)
        if model is not None:
            models.append(model)
        elif len(opaque) > before:
            opaque_roots.append((opaque[-1].name, value))

    # Two passes, as for builds: every root first within PROBE_BUDGET, then the costly ones.
    for value in interp.built:
        if id(value) in seen or getattr(value, "owned", True) or getattr(value, "abandoned", False):
            continue  # owned by another model; or built by a statement that ran out of budget
        seen.add(id(value))
        try:
            describe_root(value, PROBE_BUDGET)
        except _TooComplex:
            deferred.append(value)
    for value in deferred:
        try:
            describe_root(value, PER_ROOT_BUDGET)
        except _TooComplex as exc:
            unanalysed.append((exc.what, exc.line))
    models.sort(key=lambda m: (m.span.line, m.span.col))
    models = _drop_duplicates(models)
    parts = _describe_parts(interp, opaque_roots, module_names, factories, module_facts, unanalysed)
    # A part is the same definition as a root (or another part) when it is built alike where it
    # is defined, whatever it is called.
    keys = {_definition_key(m) for m in models}
    for part in parts:
        key = _definition_key(part)
        if key not in keys:
            keys.add(key)
            models.append(part)
    models.sort(key=lambda m: (m.span.line, m.span.col))
    facts = interp.facts
    for model in models:
        steps = _keras_time_steps(model)
        if steps is not None and model.origin_id is not None:
            facts.sequence_lengths[model.origin_id] = steps
    described = {(m.name, m.span.line) for m in models}
    opaque = [m for m in opaque if (m.name, m.span.line) not in described and m.symbol is not None]
    project = interp.project
    return Extraction(models, facts, unanalysed, _drop_duplicates(opaque),
                      dict(project.dependencies) if project else {}, sorted(project.missing) if project else [])


def _keras_time_steps(model: Model) -> int | None:
    """The time steps a Keras model's input declares: ``Input(shape=(T, F))`` / ``input_shape=`` (a TF
    graph's ``placeholder([None, T, F])``), or
    ``Input(shape=(T,))`` / ``Embedding(input_length=T)`` token ids into an embedding. (torch input
    hints are guesses; torch lengths come from the training batch, see recorder.)"""
    hint = model.input_hint
    if model.framework not in ("keras", "tensorflow") or hint is None or not hint.shape:
        return None
    if hint.kind == "sequence":
        return hint.shape[0]
    if model.framework != "keras":
        return None  # a TF graph's placeholder [None, T, F] into tf.nn.dynamic_rnn: the sequence case above
    first = next(iter(model.layers()), None)
    if hint.kind in ("features", "tokens") and len(hint.shape) == 1 and first is not None \
            and first.kind == LayerKind.EMBEDDING:
        return hint.shape[0]
    return None


class _TooComplex(Exception):
    def __init__(self, what: str, line: int) -> None:
        self.what, self.line = what, line


def _build_unreached(interp: Interpreter, index: SyntaxIndex, unanalysed: list[tuple[str, int]],
                     built_by: dict[int, str]) -> None:
    """Build what the module body did not: entry points first (classes and factory functions no
    other definition uses), then, as a fallback, helpers that nothing reached.

    Two passes: each build first gets PROBE_BUDGET; those that need more are retried with
    PER_ROOT_BUDGET once every other definition has been built, so a few runaway definitions
    cannot spend the file's budget before the cheap ones ran.

    Factory functions nothing calls are entry points too; a model zoo (timm registers dozens of
    variants of one class per file) must not cost a full build per variant:
    - functions of other project modules (generic builders, arch decoders) stay unknown for them,
      as when those modules were not read (``Core.entry_configs``); classes are built in full,
      helpers of other project modules included;
    - a factory calling only builders of this file that gave nothing new in an earlier factory
      gives nothing new either and is not run;
    - all factories share FACTORY_BUDGET steps; past it the rest are reported (GRD903), once.

    ``built_by`` receives, for each value built here (by id), the name of the definition built."""
    interp.entry_configs = {}
    try:
        _build_entry_points(interp, index, unanalysed, built_by)
    finally:
        interp.entry_configs = None


def _build_entry_points(interp: Interpreter, index: SyntaxIndex, unanalysed: list[tuple[str, int]],
                        built_by: dict[int, str]) -> None:
    """``index.is_used_in_definitions``: names read inside function and class bodies (such
    definitions are helpers), computed when a candidate asks."""
    deferred: list[tuple[Callable[[], object], str, int, str]] = []
    module_functions = {f.name for f in interp.functions}
    exhausted: set[str] = set()
    skipped: list[FunctionV] = []
    start = interp.file_budget
    for helpers in (False, True):
        # Later classes first: a network defined after its blocks instantiates them, so the
        # blocks are owned and not reported on their own.
        for info in reversed(interp.classes):
            if info.framework is None or info.name in interp.instantiated_classes:
                continue
            if not helpers and index.is_used_in_definitions(info.name):
                continue

            def build_class(info: ClassInfo = info, follow: bool = True) -> object:
                # A class follows the helpers it calls from other project modules (`from .blocks
                # import make_layer`); only unreached factory functions leave them unknown.
                saved = interp.entry_configs
                if follow:
                    interp.entry_configs = None
                    interp.foreign_budget = FOREIGN_PROBE_BUDGET
                try:
                    return interp.instantiate(info, [], {}, info.node)
                finally:
                    interp.entry_configs = saved
                    interp.foreign_budget = None

            if not _guarded(build_class, interp, PROBE_BUDGET, built_by, info.name):
                # Too large to build with its modules' helpers within the probe budget (timm's
                # networks run named_apply over every submodule): built as when those modules were
                # not read. Following them in full cost timm/models 2.4x the steps, and 5 networks
                # their analysis (GRD903).
                deferred.append((functools.partial(build_class, info, follow=False), f"class {info.name}",
                                 info.node.lineno, info.name))
        for func in interp.functions:
            if id(func.node) in interp.called_functions:
                continue
            if not helpers and index.is_used_in_definitions(func.name):
                continue
            builders = called_names(func.node) & module_functions if exhausted else set()
            if builders and builders <= exhausted:
                continue
            if start - interp.file_budget > FACTORY_BUDGET:
                skipped.append(func)
                continue

            def build_factory(func: FunctionV = func) -> object:
                _name_result(interp.call_function(func, [], {}), func.name, factory=True)
                return None

            before = len(interp.built)
            if not _guarded(build_factory, interp, PROBE_BUDGET, built_by, func.name):
                deferred.append((build_factory, f"function {func.name}", getattr(func.node, "lineno", 1), func.name))
            elif not any(not getattr(v, "owned", True) for v in interp.built[before:]):
                exhausted |= builders or called_names(func.node) & module_functions
    for action, what, line, name in deferred:
        if not _guarded(action, interp, PER_ROOT_BUDGET, built_by, name):
            unanalysed.append((what, line))
    if skipped:
        unanalysed.append((f"the model zoo from factory function {skipped[0].name} on ({len(skipped)} functions)",
                           getattr(skipped[0].node, "lineno", 1)))


# Models whose training_step is run (a file defining more is a zoo of variants: the first ones say it).
TRAINING_STEP_MODELS = 8


def _run_training_steps(interp: Interpreter) -> None:
    """A PyTorch Lightning module's ``training_step(batch, batch_idx)`` is its training loop: the
    Trainer calls it and takes the gradient of the loss it returns. Run it once per model, on a
    batch gradlint cannot see (``x, y = batch``: a model called on it gets a fresh input), so the
    loss it applies to the model's output is recorded, with a backward and an update as the
    Trainer does them. A model of the file that defines no training_step is left alone."""
    done = 0
    for value in list(interp.built):
        if done >= TRAINING_STEP_MODELS:
            return
        if not isinstance(value, InstanceV) or value.info.framework != "torch" or getattr(value, "owned", True) \
                or getattr(value, "abandoned", False):
            continue
        found = value.info.find_method("training_step")
        if found is None:
            continue
        cls, fnode = found
        done += 1
        step = interp.make_function(fnode, cls.scope, cls)
        losses_before = len(interp.facts.losses)

        def run(step: FunctionV = step, instance: InstanceV = value) -> object:
            return interp.call_function(step, [instance, UNKNOWN, Const(0)], {}, self_val=instance)

        if not _guarded(run, interp, PROBE_BUDGET):
            continue
        span = span_of(fnode)
        for use in interp.facts.losses[losses_before:]:
            interp.facts.backwards.append((span, use))
        if len(interp.facts.losses) > losses_before:
            interp.facts.steps.append(span)


def _guarded(action: Callable[[], object], interp: Interpreter, budget: int = PER_ROOT_BUDGET,
             built_by: dict[int, str] | None = None, name: str = "") -> bool:
    """Run one build within ``budget``; what a build that ran out had built is abandoned. What
    it built is recorded in ``built_by`` under ``name``."""
    if interp.file_budget <= 0:
        return False
    interp.budget = budget
    built_before = len(interp.built)
    try:
        action()
    except (BudgetExceeded, RecursionError):
        for value in interp.built[built_before:]:
            value.abandoned = True  # type: ignore[attr-defined]
        return False
    if built_by is not None:
        for value in interp.built[built_before:]:
            built_by.setdefault(id(value), name)
    return True


def _name_result(result: Value, name: str, factory: bool) -> None:
    if isinstance(result, (ContainerV, FunctionalModelV)) and result.name is None:
        result.name = name


def _module_level_names(interp: Interpreter) -> dict[int, str]:
    """Models bound to module-level names that a plain import would define (not in a main block)."""
    importable = _importable_names(interp.tree.body)
    names: dict[int, str] = {}
    for name, value in interp.module_scope.vars.items():
        model_like = isinstance(value, (ContainerV, FunctionalModelV, InstanceV))
        if name in importable and model_like and id(value) not in names:
            names[id(value)] = name
    return names


def _importable_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ast.If) and any(
            isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(stmt.test)
        ):
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        for attr in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, attr, None)
            if isinstance(inner, list) and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names |= _importable_names(inner)
    return names


def _factory_names(interp: Interpreter) -> dict[int, str]:
    return {
        id(v): v.factory for v in interp.built if isinstance(v, (ContainerV, FunctionalModelV, InstanceV)) and v.factory
    }


def _describe(
    interp: Interpreter,
    value: Value,
    module_names: dict[int, str],
    factories: dict[int, str],
    facts: _ModuleFacts,
    opaque: list[Model] | None = None,
    budget: int = PER_ROOT_BUDGET,
) -> Model | None:
    interp.budget = budget
    # A model of an imported class: what its forward builds is reported where the file built it.
    ANCHOR.span = (
        value.span
        if isinstance(value, (InstanceV, ContainerV, FunctionalModelV)) and value.span.origin is not None
        else None
    )
    # What the module level handed on (``interp.escaped``) outlives this description: a forward's own
    # side routes are collected from an empty list, a functional graph's on top of the module's.
    module_level = list(interp.escaped)
    try:
        return _describe_one(interp, value, module_names, factories, facts, opaque)
    finally:
        ANCHOR.span = None
        interp.escaped[:] = module_level


def _describe_one(
    interp: Interpreter,
    value: Value,
    module_names: dict[int, str],
    factories: dict[int, str],
    facts: _ModuleFacts,
    opaque: list[Model] | None = None,
) -> Model | None:
    try:
        if isinstance(value, InstanceV):
            if value.info.framework is None:
                return None
            name = value.info.name
            span = value.span
            origin = "class"
            hint = None
            interp.escaped.clear()
            result = interp.forward(value, [TensorV(NodeSeq(), None)], {}, value.info.node)
        elif isinstance(value, ContainerV):
            if value.kind in ("modulelist", "moduledict"):
                return None
            name = value.name or module_names.get(id(value)) or f"Sequential@{value.span.line}"
            span = value.span
            origin = "sequential"
            hint = value.input_hint
            interp.escaped.clear()
            result = interp.apply_module(value, TensorV(NodeSeq(), hint), [], {}, facts.tree)
        elif isinstance(value, FunctionalModelV):
            name = value.name or module_names.get(id(value)) or f"Model@{value.span.line}"
            span = value.span
            origin = "functional"
            hint = value.output.hint
            result = value.output
            # A graph built at module level: what its layers handed on (``add_loss``) was recorded then.
            interp.escaped.extend(value.others)
        else:
            return None
    except (BudgetExceeded, RecursionError):
        raise _TooComplex(f"model {name}", span.line) from None
    tensor = _as_tensor(result)
    stepped = interp.step_outputs.get(id(tensor)) if tensor is not None else None
    if stepped is not None and stepped[0] is tensor:
        stepped[1].reads_every_step = True  # the output holds every step of the recurrence
    path = list(tensor.nodes) if tensor is not None else []
    if not any(isinstance(n, (Layer, Residual)) for n in path):
        if opaque is not None and isinstance(value, (InstanceV, ContainerV)):
            skeleton = Model(
                name=name,
                framework=_framework_of(value, []),
                origin=origin,
                span=span,
                path=[],
                input_hint=hint,
                origin_id=id(value),
            )
            _set_build_target(skeleton, value, module_names, factories, facts)
            opaque.append(skeleton)
        return None
    framework = _framework_of(value, path)
    model = Model(
        name=name,
        framework=framework,
        origin=origin,
        span=span,
        path=path,
        input_hint=hint or (tensor.hint if tensor is not None else None) or _infer_input(path),
        origin_id=id(value),
        configuration=value.configuration,
        side_routes=side_routes(result, tensor, interp.escaped),
    )
    _set_build_target(model, value, module_names, factories, facts)
    return model



class _Root:
    """An opaque root whose parts are described: how many descriptions it has left, and whether a
    bound (PART_DEPTH, PARTS_PER_ROOT, the file's budget) left some of its parts unchecked."""

    __slots__ = ("name", "line", "left", "cut")

    def __init__(self, name: str, line: int) -> None:
        self.name, self.line, self.left, self.cut = name, line, PARTS_PER_ROOT, False


def _describe_parts(
    interp: Interpreter,
    roots: list[tuple[str, Value]],
    module_names: dict[int, str],
    factories: dict[int, str],
    facts: _ModuleFacts,
    unanalysed: list[tuple[str, int]],
) -> list[Model]:
    """The parts of opaque roots that are models themselves, each described as a model of its own
    and named by its attribute path (``FasterRCNN.roi_heads.box_head``, ``Net.heads.0``), so that
    what such a root owns is checked although its own forward cannot be. Parts that are opaque
    too (or module lists/dicts) are descended into, up to PART_DEPTH levels and PARTS_PER_ROOT
    descriptions per root. Two passes, as for roots: each part within PROBE_BUDGET, the costly
    ones (and what they hold) after all others within PER_ROOT_BUDGET; a part that still runs out
    is reported (GRD903), and so, once per root, are parts a bound left unchecked."""
    parts = _PartDescriber(interp, module_names, factories, facts, unanalysed, {id(value) for _, value in roots})
    states = [_Root(name, value.span.line if isinstance(value, (InstanceV, ContainerV)) else 1)
              for name, value in roots]
    for (name, value), root in zip(roots, states, strict=True):
        parts.visit(name, value, 1, PROBE_BUDGET, root)
    for name, part, depth, root in parts.deferred:  # grows no more: these run with PER_ROOT_BUDGET
        parts.describe(name, part, depth, PER_ROOT_BUDGET, root)
    for root in states:
        if root.cut:
            # Read by GRD903 as "<what> is too large to analyse within gradlint's budget".
            unanalysed.append((f"model {root.name} past its first {PARTS_PER_ROOT} parts or {PART_DEPTH} levels of "
                               f"parts (its forward could not be described)", root.line))
    return parts.models


class _PartDescriber:
    """``_describe_parts``' walk: ``visit`` and ``describe`` call each other (as nested functions
    they would be a reference cycle holding the whole interpretation until the collector ran)."""

    def __init__(self, interp: Interpreter, module_names: dict[int, str], factories: dict[int, str],
                 facts: _ModuleFacts, unanalysed: list[tuple[str, int]], seen: set[int]) -> None:
        self.interp, self.module_names, self.factories, self.facts = interp, module_names, factories, facts
        self.unanalysed = unanalysed
        self.seen = seen  # a part shared by two owners: described once
        self.models: list[Model] = []
        self.deferred: list[tuple[str, Value, int, _Root]] = []

    def visit(self, name: str, value: Value, depth: int, budget: int, root: _Root) -> None:
        for attr, part in _parts_of(value):
            if id(part) in self.seen:
                continue
            if root.left <= 0 or depth > PART_DEPTH:
                root.cut = True
                return
            self.seen.add(id(part))
            root.left -= 1
            self.describe(f"{name}.{attr}", part, depth, budget, root)

    def describe(self, name: str, part: Value, depth: int, budget: int, root: _Root) -> None:
        interp = self.interp
        if interp.file_budget <= 0:
            root.cut = True
            return
        scratch: list[Model] = []
        try:
            model = _describe(interp, part, self.module_names, self.factories, self.facts, scratch, budget)
        except _TooComplex as exc:
            if budget < PER_ROOT_BUDGET:
                self.deferred.append((name, part, depth, root))
            elif interp.file_budget > 0:
                self.unanalysed.append((f"model {name}", exc.line))
            else:
                root.cut = True
            return
        if model is not None:
            model.name = name
            _keep_build_target_sound(model, part, self.facts)
            self.models.append(model)
        elif scratch or isinstance(part, ContainerV):
            self.visit(name, part, depth + 1, budget, root)  # opaque as well, or a module list/dict


def _parts_of(value: Value) -> list[tuple[str, Value]]:
    """The submodules of a model that could be models themselves, in attribute order, named as
    ``named_modules()`` names them (``box_head``; ``0`` or a key for module list/dict items)."""
    if isinstance(value, InstanceV):
        items = list(value.attrs.items())
    elif isinstance(value, ContainerV):
        keys = value.keys if value.keys is not None and len(value.keys) == len(value.items) else None
        items = list(zip(keys or [str(i) for i in range(len(value.items))], value.items, strict=True))
    else:
        return []
    return [
        (str(attr), part) for attr, part in items
        if (isinstance(part, InstanceV) and part.info.framework is not None)
        or (isinstance(part, ContainerV) and part.framework)
    ]


def _keep_build_target_sound(model: Model, part: Value, facts: _ModuleFacts) -> None:
    """A part is built by its owner, with the arguments its owner passes: building its class on its
    own (``TwoMLPHead()``) measures something else, unless the class takes no arguments at all. A
    module-level variable or a factory holding the part builds it as it is."""
    if model.build != "class" or not isinstance(part, InstanceV):
        return
    init = part.info.find_method("__init__")
    # No __init__ of its own: dataclass fields, or a constructor of a class gradlint did not read.
    arguments = init[1].args if init is not None else None
    if arguments is None or len(arguments.posonlyargs) + len(arguments.args) > 1 or arguments.vararg \
            or arguments.kwarg or arguments.kwonlyargs:
        model.symbol = model.build = None


def _as_tensor(result: Value) -> TensorV | None:
    """The main output of forward(): a tensor, or the deepest tensor of a tuple/list/dict."""
    return longest_tensor(result)


def _framework_of(value: Value, path: list[Node]) -> str:
    if isinstance(value, InstanceV) and value.info.framework:
        return value.info.framework
    if isinstance(value, ContainerV):
        return value.framework
    for node in path:
        if isinstance(node, Layer):
            return node.framework
    return "keras"


def _infer_input(path: list[Node]) -> InputHint | None:
    for node in path:
        if isinstance(node, Residual):
            return None
        if not isinstance(node, Layer):
            continue
        if node.kind == LayerKind.DENSE and node.fan_in:
            return InputHint("features", (node.fan_in,))
        if node.kind == LayerKind.CONV and node.fan_in and node.receptive:
            channels = node.fan_in // node.receptive
            # A transposed conv first decodes a latent: (channels, 1, 1), as generators take their noise.
            size = 1 if "Transpose" in node.op else None
            if node.op.endswith("1d"):
                return InputHint("sequence", (channels, size or 64))
            if node.op.endswith("3d"):
                return InputHint("image", (channels, *(size or 16,) * 3))
            return InputHint("image", (channels, size or 32, size or 32))
        if node.kind == LayerKind.EMBEDDING:
            return InputHint("tokens", (16,), vocab=node.fan_in)
        if node.kind == LayerKind.RECURRENT and node.fan_in:
            return InputHint("sequence", (16, node.fan_in))
        if node.kind in (LayerKind.DENSE, LayerKind.CONV, LayerKind.RECURRENT, LayerKind.UNKNOWN, LayerKind.ATTENTION):
            return None
    return None


class _ModuleFacts:
    """What the dynamic check needs to know about the module's top level, computed in one pass
    (per-model scans were quadratic on generated files with thousands of models), and only when a
    model bound to a module-level name asks for it."""

    def __init__(self, tree: ast.Module, index: SyntaxIndex, training: TrainingFacts | None = None) -> None:
        self.tree = tree
        self.class_names = {s.name for s in tree.body if isinstance(s, ast.ClassDef)}
        self._index = index
        # The training lines as they are now: describing models runs their forward(), which must not
        # change what counts as training code.
        self._trained = _training_lines(training) if training is not None else []
        self._building_line: dict[str, int] | None = None

    @property
    def building_line(self) -> dict[str, int]:
        """Name -> last line of the top-level statements that build it (up to the first training
        statement, fit/compile, that touches it)."""
        if self._building_line is None:
            self._building_line = {}
            frozen: set[str] = set()  # names a training statement (fit/compile) has touched
            for stmt, names in zip(self.tree.body, self._index.statement_names(), strict=True):
                if _is_training_statement(stmt) or _holds_training(stmt, self._trained):
                    frozen |= names
                    continue
                end = stmt.end_lineno or stmt.lineno
                for name in names - frozen:
                    self._building_line[name] = end
        return self._building_line


def _training_lines(training: TrainingFacts) -> list[int]:
    """Lines where the interpreter saw training code run: a model called outside model code,
    ``backward()``, an optimizer step, ``fit``."""
    spans = (
        [c.span for c in training.model_calls]
        + [s for s, _ in training.backwards]
        + list(training.steps)
        + [s for s, _ in training.fits]
    )
    return sorted({span.line for span in spans})


def _holds_training(stmt: ast.stmt, lines: list[int]) -> bool:
    """A top-level statement (not a definition) that contains training code: a training loop is
    not part of building the model, so the dynamic check does not run it."""
    if not lines or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    start, end = stmt.lineno, stmt.end_lineno or stmt.lineno
    index = bisect.bisect_left(lines, start)
    return index < len(lines) and lines[index] <= end


def _set_build_target(
    model: Model, value: Value, module_names: dict[int, str], factories: dict[int, str], facts: _ModuleFacts
) -> None:
    """How the dynamic check can build this model from the module namespace."""
    if isinstance(value, FunctionalModelV) and value.script_output is not None:
        # a raw-tensor script: run as written up to its first backward, its output read from there
        model.symbol, model.build = value.script_output, "script"
        return
    if isinstance(value, InstanceV):
        var = module_names.get(id(value))
        if var is not None:
            model.symbol, model.build = var, "variable"
            model.end_line = facts.building_line.get(var)
        elif id(value) in factories:
            model.symbol, model.build = factories[id(value)], "factory"
        elif value.info.name in facts.class_names:
            model.symbol, model.build = value.info.name, "class"
        return
    if id(value) in factories:
        model.symbol, model.build = factories[id(value)], "factory"
        return
    var = module_names.get(id(value))
    if var is not None:
        model.symbol, model.build = var, "variable"
        model.end_line = facts.building_line.get(var)


def _is_training_statement(stmt: ast.stmt) -> bool:
    call = None
    if isinstance(stmt, ast.Expr) or isinstance(stmt, ast.Assign):
        call = stmt.value
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _TRAINING_CALLS


def _drop_duplicates(models: list[Model]) -> list[Model]:
    """The same definition built twice (two calls of one factory with equal result) is one model."""
    out: list[Model] = []
    keys: set[tuple[str, int, int, int, str | None]] = set()
    for model in models:
        key = (
            model.name,
            model.span.line,
            model.span.col,
            _signature(model.path),
            model.configuration.label if model.configuration else None,
        )
        if key in keys:
            continue
        keys.add(key)
        out.append(model)
    return out


def _definition_key(model: Model) -> tuple[object, ...]:
    """Where a model is defined (a project module's line, not the call site its span is placed
    at) and how it is built -- its layers with their widths and inits: a part built twice with other
    arguments (``Level(32)``, ``Level(64)``) is two models --, whatever it is called."""
    span = model.span
    layers = tuple(
        (layer.op, _where(layer.span), layer.fan_in, layer.fan_out, layer.activation, layer.act_param,
         _init_key(layer.weight_init), _init_key(layer.bias_init), layer.scale_value, layer.shift_value)
        for layer in model.layers()
    )
    return (span.origin or (span.line, span.col), _signature(model.path), layers,
            model.configuration.label if model.configuration else None)


def _init_key(init: Init | None) -> object:
    return None if init is None else (init.scheme, tuple(sorted(init.params.items())))


def _signature(path: list[Node]) -> int:
    # A node of a project module is known by its own line (``origin``), not by the call site it is
    # placed at.
    return hash(tuple((type(n).__name__, getattr(n, "op", ""), _where(getattr(n, "span", None))) for n in path))


def _where(span: Span | None) -> object:
    if span is None:
        return 0
    return span.origin or span.line


__all__ = ["Extraction", "extract", "extract_models"]
