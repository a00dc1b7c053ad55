"""One pass over a module's syntax for what extraction asks of the whole tree.

Three questions used to walk the whole tree each (``ast.walk``: ~5 Python calls per node): which
names definitions read, which names each top-level statement mentions, and where gradients are
clipped in code the interpreter did not run. On torchvision/models those walks were a sixth of
all the calls a cold lint made."""

from __future__ import annotations

import ast
import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterator

from gradlint.extract.common import span_of
from gradlint.model import Span
from gradlint.training import TrainingFacts

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp, ast.SetComp)
# Gradient-clipping calls by their unambiguous names (tf.clip_by_value is left to the interpreter:
# on a model's tensor it bounds an activation).
GRADIENT_CLIP_NAMES = frozenset(
    {"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grad_value", "clip_by_global_norm", "clip_by_norm"}
)
_CLAMPS = frozenset({"clamp_", "clamp", "clip_"})
_AST = ast.AST
_NAME = ast.Name
_CALL = ast.Call
_LOAD = ast.Load


# Fields that never hold a syntax node (names, operators' contexts, flags); a Constant's value is
# data. Skipping them makes a walk visit only what can hold a Name or a Call.
_SCALAR_FIELDS = frozenset({"ctx", "id", "attr", "name", "arg", "asname", "module", "level", "kind", "type_comment",
                            "conversion", "is_async", "simple", "names", "tag", "n", "s"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node kind that can hold a syntax node (not names, contexts, flags or a
    Constant's value)."""
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        skip = _SCALAR_FIELDS | ({"value"} if kind in (ast.Constant, ast.MatchSingleton) else set())
        fields = _CHILD_FIELDS[kind] = tuple(f for f in kind._fields if f not in skip)  # type: ignore[attr-defined]
    return fields


def iter_nodes(root: ast.AST) -> Iterator[ast.AST]:
    """The nodes under ``root`` (itself included) that can hold a Name or a Call, in no particular
    order: ``ast.walk`` without its per-node generators, expression contexts or aliases."""
    stack: list[object] = [root]
    pop, push, extend, fields_of = stack.pop, stack.append, stack.extend, _CHILD_FIELDS.get
    while stack:
        node = pop()
        if not isinstance(node, _AST):
            continue  # None in Dict.keys
        yield node
        kind = type(node)
        fields = fields_of(kind)
        if fields is None:
            fields = child_fields(kind)
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                extend(value)
            elif value is not None:
                push(value)


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def called_names(function: ast.AST) -> frozenset[str]:
    """Names a function calls directly (``_create_resnet(...)``), in its own body only (not in
    nested definitions or lambdas); kept on the node, as a model zoo asks for each of its
    factories twice."""
    memo = function.__dict__
    found = memo.get("_gradlint_called_names")
    if found is not None:
        return found  # type: ignore[no-any-return]
    out: set[str] = set()
    body = getattr(function, "body", [])
    stack: list[object] = list(body) if isinstance(body, list) else [body]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        if not isinstance(node, _AST):
            continue
        kind = type(node)
        if kind is _CALL:
            func = node.func  # type: ignore[attr-defined]
            if type(func) is _NAME:
                out.add(func.id)
        elif isinstance(node, _NESTED):
            continue
        for name in child_fields(kind):
            value = getattr(node, name, None)
            if type(value) is list:
                extend(value)
            elif value is not None:
                push(value)
    found = memo["_gradlint_called_names"] = frozenset(out)
    return found


def _loaded_names(root: ast.AST) -> set[str]:
    """The names ``root`` reads (``Name`` nodes in a load context): ``iter_nodes`` inlined, as
    this walks every definition of every linted file."""
    out: set[str] = set()
    stack: list[object] = [root]
    pop, push, extend, fields_of = stack.pop, stack.append, stack.extend, _CHILD_FIELDS.get
    while stack:
        node = pop()
        kind = type(node)
        if kind is _NAME:
            if type(node.ctx) is _LOAD:  # type: ignore[attr-defined]
                out.add(node.id)  # type: ignore[attr-defined]
            continue
        if not isinstance(node, _AST):
            continue
        fields = fields_of(kind)
        if fields is None:
            fields = child_fields(kind)
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                extend(value)
            elif value is not None:
                push(value)
    return out


def _first_line(node: ast.AST) -> int:
    """A node's first line; a decorated definition starts at its first decorator."""
    decorators = getattr(node, "decorator_list", None)
    line: int = node.lineno  # type: ignore[attr-defined]
    return min([line, *(d.lineno for d in decorators)]) if decorators else line


def _reads_at(root: ast.AST, line: int, column: int, name: str) -> bool:
    """Whether ``root`` holds a ``Name`` reading ``name`` at ``line`` and ``column``: descends only
    into the nodes whose lines hold ``line`` (nodes without lines, such as ``arguments``, are
    small and always entered)."""
    stack: list[object] = [root]
    pop, push, extend, fields_of, definitions = stack.pop, stack.append, stack.extend, _CHILD_FIELDS.get, _DEFINITIONS
    while stack:
        node = pop()
        kind = type(node)
        if kind is _NAME:
            if node.lineno == line and node.col_offset == column and node.id == name:  # type: ignore[attr-defined]
                return type(node.ctx) is _LOAD  # type: ignore[attr-defined]
            continue
        if not isinstance(node, _AST):
            continue
        first = getattr(node, "lineno", None)
        if first is not None and node is not root:
            if first > line and not (kind in definitions and _first_line(node) <= line):
                continue
            if (node.end_lineno or first) < line:  # type: ignore[attr-defined]
                continue
        fields = fields_of(kind)
        if fields is None:
            fields = child_fields(kind)
        for field in fields:
            value = getattr(node, field, None)
            if type(value) is list:
                extend(value)
            elif value is not None:
                push(value)
    return False


def may_clip(source: str) -> bool:
    """Whether ``unevaluated_clipping`` can find anything in this text: a clipping function's name
    (all of them spell ``clip_grad`` or ``clip_by_``), or a clamp of something reached through a
    ``.grad`` attribute. Most model files clamp activations (``x.clamp(min=eps)``) and never touch
    a gradient: their trees are not walked (on transformers/models that walk was 6 % of a lint)."""
    if "clip_grad" in source or "clip_by_" in source:
        return True
    return ("clamp" in source or "clip_" in source) and _GRAD_ATTRIBUTE.search(source) is not None


_GRAD_ATTRIBUTE = re.compile(r"\.\s*grad\b")
_WORD = re.compile(r"\w")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_WORD_RUN = re.compile(r"\w*")


# What may set a learning rate after the optimizer is made (SyntaxIndex.rewrites_learning_rate).
_LR_ATTRIBUTES = frozenset({"param_groups", "lr", "learning_rate"})
_LR_SETTERS = frozenset({"LambdaLR", "MultiplicativeLR", "OneCycleLR", "CyclicLR", "LinearLR", "ConstantLR",
                         "SequentialLR", "ChainedScheduler", "LearningRateScheduler", "get_linear_schedule_with_warmup",
                         "get_cosine_schedule_with_warmup", "get_scheduler", "create_scheduler"})
_LR_WORDS = ("param_groups", ".lr", "learning_rate", "LR", "Scheduler", "schedule")


class SyntaxIndex:
    """Computed once per linted module, each part on first use. With the module's ``source``, a
    file that cannot hold a clipping call (``may_clip``) is not searched for one."""

    def __init__(self, tree: ast.Module, source: str | None = None) -> None:
        self._tree = tree
        self._may_clip = source is None or may_clip(source)
        self._used: set[str] | None = None
        self._statement_names: list[set[str]] | None = None
        # Text to find a name's occurrences in, when its lines are ast's: no lone \r (a line break).
        self._text = source if source is not None and source.count("\r") == source.count("\r\n") else None
        self._normalized: frozenset[str] | None = None  # what identifiers spelled with non-ASCII read as
        self._definitions: list[tuple[int, int, ast.stmt]] | None = None  # (first line, last line, definition)
        self._used_memo: dict[str, bool] = {}
        self._firsts: list[int] | None = None  # the definitions' first lines
        self._line_starts: list[int] | None = None  # offset in the text of each line's start
        self._statements: list[tuple[int, int, ast.stmt]] | None = None  # (first line, last line, statement)
        self._statement_firsts: list[int] | None = None

    @property
    def used_in_definitions(self) -> set[str]:
        """Names read inside function and class bodies (such definitions are helpers); super(Net,
        self) inside Net does not make Net a helper."""
        if self._used is None:
            used: set[str] = set()
            for stmt in self._tree.body:
                if isinstance(stmt, _DEFINITIONS):
                    found = _loaded_names(stmt)
                    found.discard(stmt.name)
                    used |= found
            self._used = used
        return self._used

    def is_used_in_definitions(self, name: str) -> bool:
        """``name in used_in_definitions``, looking only where the text spells ``name``: whether a
        ``Name`` read sits at that line and column of a definition not named ``name`` (a file asks
        for a few of its class and function names; walking every definition of every linted file
        was 5 % of a cold lint of transformers/models)."""
        found = self._used_memo.get(name)
        if found is None:
            text = self._text
            if text is None or self._used is not None or name in self._spelled_otherwise(text):
                found = name in self.used_in_definitions
            else:
                found = self._read_where_spelled(name, text)
            self._used_memo[name] = found
        return found

    def _read_where_spelled(self, name: str, text: str) -> bool:
        definitions = self._definitions
        if definitions is None:
            definitions = self._definitions = [
                (_first_line(stmt), stmt.end_lineno or stmt.lineno, stmt) for stmt in self._tree.body
                if isinstance(stmt, _DEFINITIONS)]
        firsts = self._firsts
        if firsts is None:
            firsts = self._firsts = [first for first, _, _ in definitions]
        return self._read_in(name, text, definitions, firsts)

    def is_read_outside_its_definition(self, name: str) -> bool:
        """Whether a top-level statement reads ``name`` (a ``Name`` load), other than a definition
        named ``name`` reading itself: looked for only where the text spells ``name``."""
        text = self._text
        if text is None or name in self._spelled_otherwise(text):
            return any(name in (found - {stmt.name} if isinstance(stmt, _DEFINITIONS) else found)
                       for stmt in self._tree.body for found in (_loaded_names(stmt),))
        statements = self._statements
        if statements is None:
            statements = self._statements = [(_first_line(stmt), stmt.end_lineno or stmt.lineno, stmt)
                                              for stmt in self._tree.body]
            self._statement_firsts = [first for first, _, _ in statements]
        assert self._statement_firsts is not None
        return self._read_in(name, text, statements, self._statement_firsts)

    def _read_in(self, name: str, text: str, statements: list[tuple[int, int, ast.stmt]], firsts: list[int]) -> bool:
        """Whether one of ``statements`` (top-level, in order, with their first and last lines) other
        than a definition named ``name`` holds a ``Name`` reading ``name`` where the text spells it."""
        start, size, starts = 0, len(name), self._line_starts
        while True:
            pos = text.find(name, start)
            if pos < 0:
                return False
            start = pos + size
            if (pos and _WORD.match(text, pos - 1)) or _WORD.match(text, start):
                continue  # part of a longer word
            if starts is None:
                starts = self._line_starts = list(itertools.accumulate((len(t) + 1 for t in text.split("\n")),
                                                                       initial=0))
            line = bisect.bisect_right(starts, pos)
            before = text[starts[line - 1]:pos]
            column = len(before) if before.isascii() else len(before.encode("utf-8"))  # ast counts bytes
            i = bisect.bisect_right(firsts, line) - 1
            while i >= 0 and line <= statements[i][1]:  # statements sharing a line (``a = 1; b = x``)
                statement = statements[i][2]
                if getattr(statement, "name", None) != name and _reads_at(statement, line, column, name):
                    return True
                i -= 1

    def _spelled_otherwise(self, text: str) -> frozenset[str]:
        """The names that words with non-ASCII letters read as (identifiers are NFKC-normalized:
        ``ﬁle`` is ``file``), which a search for the name's own spelling would not find."""
        if self._normalized is None:
            words: set[str] = set()
            end = 0
            if not text.isascii():
                for match in _NON_ASCII.finditer(text):
                    start = match.start()
                    if start < end:
                        continue  # in the word just read
                    while start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                        start -= 1
                    end = _WORD_RUN.match(text, match.end()).end()  # type: ignore[union-attr]
                    words.add(unicodedata.normalize("NFKC", text[start:end]))
            self._normalized = frozenset(words)
        return self._normalized

    def statement_names(self) -> list[set[str]]:
        """Per top-level statement: every name it mentions (loads and stores)."""
        if self._statement_names is None:
            self._statement_names = [
                {n.id for n in iter_nodes(stmt) if type(n) is _NAME}  # type: ignore[attr-defined]
                for stmt in self._tree.body
            ]
        return self._statement_names

    def note_spellings(self, facts: TrainingFacts) -> None:
        """What training facts take from the syntax, run or not, computed only where a rule asks for it: the
        gradients spelled by hand (a step ran, or a backward with an optimizer and no step: GRD013/014/017),
        a learning rate set later (an optimizer), what may update parameters (a backward and no step ran)."""
        stepped = any(event.kind == "step" for event in facts.grad_events)
        unstepped = bool(facts.optimizers and facts.backwards and not facts.steps)
        if stepped or unstepped:
            facts.spells_grad, facts.spells_zero_grad = self.gradient_spellings()
        if facts.optimizers:
            facts.rewrites_lr = self.rewrites_learning_rate()
        if unstepped:
            facts.spells_update = self.spells_update()

    def gradient_spellings(self) -> tuple[bool, bool]:
        """(the module spells a ``.grad`` attribute, it spells ``zero_grad``), run or not: code that reads,
        sets or clears gradients by hand (``p.grad = None``, ``p.grad.zero_()``, ``grads = [p.grad ...]``)
        where the interpreter may not have followed it. A pure text search first, as ``may_clip``."""
        text = self._text
        if text is not None and ".grad" not in text and "zero_grad" not in text:
            return False, False
        grad = zero = False
        for node in iter_nodes(self._tree):
            if type(node) is ast.Attribute:
                attr = node.attr  # type: ignore[attr-defined]
                grad = grad or attr == "grad"
                zero = zero or attr == "zero_grad"
            elif type(node) is _NAME and node.id == "zero_grad":  # type: ignore[attr-defined]
                zero = True
        return grad, zero

    def rewrites_learning_rate(self) -> bool:
        """Whether the module spells what may set a learning rate after the optimizer is made, run or not:
        ``optimizer.param_groups`` (``g["lr"] = ...``), an ``.lr`` / ``.learning_rate`` attribute
        (``K.set_value(model.optimizer.lr, ...)``), or a scheduler that sets the first step's rate
        (warm-up, ``LambdaLR``, ``OneCycleLR``, Keras' ``LearningRateScheduler``). Schedulers that only
        lower the rate later (``StepLR``, ``ReduceLROnPlateau``) leave the first steps at the base rate."""
        text = self._text
        if text is not None and not any(word in text for word in _LR_WORDS):
            return False
        for node in iter_nodes(self._tree):
            if type(node) is ast.Attribute:
                if node.attr in _LR_ATTRIBUTES or node.attr in _LR_SETTERS:  # type: ignore[attr-defined]
                    return True
            elif type(node) is _NAME and node.id in _LR_SETTERS:  # type: ignore[attr-defined]
                return True
        return False

    def spells_update(self) -> bool:
        """Whether the module spells what may update parameters from their gradients, run or not (GRD017 is
        silent then): a ``.step`` attribute on anything but what the file only ever binds to a torch
        learning-rate scheduler (``scheduler = StepLR(opt, 10)``), a call of anything named ``*step*``
        (``scaler.step(opt)``, ``xm.optimizer_step(opt)``, ``train_step(...)``), ``apply_gradients`` /
        ``minimize``, or ``getattr(obj, "step")``."""
        text = self._text
        if text is not None and not any(word in text for word in ("step", "apply_gradients", "minimize")):
            return False
        receivers: set[str] = set()
        for node in iter_nodes(self._tree):
            if type(node) is ast.Attribute:
                attr = node.attr  # type: ignore[attr-defined]
                if attr == "step":
                    receivers.add(ast.unparse(node.value))  # type: ignore[attr-defined]
                elif attr in _UPDATES:
                    return True
            elif type(node) is _CALL:
                func = node.func  # type: ignore[attr-defined]
                leaf = func.attr if type(func) is ast.Attribute else func.id if type(func) is _NAME else ""
                if "step" in leaf.lower() and leaf != "step" and leaf not in _SCHEDULERS:
                    return True
                if leaf == "getattr" and any(isinstance(a, ast.Constant) and a.value == "step"
                                             for a in node.args):  # type: ignore[attr-defined]
                    return True
        return any(not self._only_a_scheduler(receiver) for receiver in receivers)

    def _only_a_scheduler(self, receiver: str) -> bool:
        """Whether every binding of ``receiver`` (a name or ``self.attr``) the module spells assigns a torch
        learning-rate scheduler, and there is one: nothing else (a parameter, a loop target, a ``with``
        target, an unpacking) may give it an optimizer."""
        found = False
        for node in iter_nodes(self._tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                arguments = node.args
                names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
                names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
                if receiver in names:
                    return False
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if any(isinstance(sub, (ast.Name, ast.Attribute)) and ast.unparse(sub) == receiver
                           for sub in ast.walk(target)):
                        if target is not None and ast.unparse(target) == receiver and _makes_scheduler(node.value):
                            found = True
                        else:
                            return False
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension, ast.withitem)):
                bound = node.optional_vars if isinstance(node, ast.withitem) else node.target
                if bound is not None and any(ast.unparse(sub) == receiver for sub in ast.walk(bound)
                                             if isinstance(sub, (ast.Name, ast.Attribute))):
                    return False
            elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom)):
                names = node.names if isinstance(node, (ast.Global, ast.Nonlocal)) else \
                    [alias.asname or alias.name for alias in node.names]
                if receiver in names:
                    return False
        return found

    def _clip_calls(self) -> tuple[list[ast.Call], bool]:
        """(calls named like a clipping or clamping function, whether clip_by_value is called)."""
        candidates: list[ast.Call] = []
        by_value = False
        for node in iter_nodes(self._tree):
            if type(node) is _CALL:
                func = node.func  # type: ignore[attr-defined]
                leaf = func.attr if type(func) is ast.Attribute else func.id if type(func) is _NAME else ""
                if leaf in GRADIENT_CLIP_NAMES or leaf in _CLAMPS:
                    candidates.append(node)  # type: ignore[arg-type]
                elif leaf == "clip_by_value":
                    by_value = True
        return candidates, by_value

    def unevaluated_clipping(self) -> list[Span]:
        """Clipping in code the interpreter did not run (a comprehension over gradients it cannot
        list, ``[tf.clip_by_norm(g, 1.0) for g in grads]``; a branch it could not decide), and
        gradients clamped by hand (``p.grad.data.clamp_(-1, 1)``). Missing one would make GRD007
        cry wolf."""
        found: list[Span] = []
        if not self._may_clip:
            return found
        candidates, by_value = self._clip_calls()
        for node in candidates:
            func = node.func
            leaf = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if leaf in GRADIENT_CLIP_NAMES:
                found.append(span_of(node))
            elif isinstance(func, ast.Attribute) and any(
                isinstance(sub, ast.Attribute) and sub.attr == "grad" for sub in iter_nodes(func.value)
            ):
                found.append(span_of(node))
        if not by_value:
            return _in_source_order(found)
        # [tf.clip_by_value(g, -1, 1) for g in grads]: clip_by_value of each item of a list, the
        # way gradient lists are clipped (a model's tensor is clipped whole).
        for comp in iter_nodes(self._tree):
            if isinstance(comp, _COMPREHENSIONS):
                items = {n.id for gen in comp.generators for n in iter_nodes(gen.target) if isinstance(n, ast.Name)}
                for call in iter_nodes(comp.elt):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "clip_by_value"
                        and call.args
                        and isinstance(call.args[0], ast.Name)
                        and call.args[0].id in items
                    ):
                        found.append(span_of(call))
        return _in_source_order(found)


# What updates parameters from gradients besides a ``.step`` (SyntaxIndex.spells_update).
_UPDATES = frozenset({"apply_gradients", "minimize"})
# torch's learning-rate schedulers, whose ``step()`` sets the rate and moves no parameter.
_SCHEDULERS = frozenset({"LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
                         "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "ChainedScheduler", "SequentialLR",
                         "ReduceLROnPlateau", "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts"})


def _makes_scheduler(value: ast.expr | None) -> bool:
    """``StepLR(opt, 10)``, ``torch.optim.lr_scheduler.OneCycleLR(...)``: a call of a torch scheduler class."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    leaf = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return leaf in _SCHEDULERS


def _in_source_order(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: (s.line, s.col))
