"""What a file's *training code* does, as facts rules can judge: which model is called, which
loss consumes its output, where ``backward()``/``step()``/``fit()`` happen and whether gradients
are clipped. Extracted by the same abstract interpreter as the models; rules see only this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from gradlint.model import Layer, Node, Span
from gradlint.records import dataclass

# Losses that apply sigmoid/softmax themselves and want raw logits.
TORCH_LOGIT_LOSSES = frozenset({"BCEWithLogitsLoss", "CrossEntropyLoss", "MultiLabelSoftMarginLoss",
                                "binary_cross_entropy_with_logits", "cross_entropy",
                                "multilabel_soft_margin_loss"})
# Losses that want probabilities (or log-probabilities) and are fed logits by mistake.
TORCH_PROBABILITY_LOSSES = frozenset({"BCELoss", "binary_cross_entropy"})
# TensorFlow losses that want probabilities: tf.losses.log_loss and a hand-written -sum(y * tf.log(p)).
TF_PROBABILITY_LOSSES = frozenset({"log_loss", "log"})
KERAS_PROBABILISTIC_LOSSES = frozenset({
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "binary_focal_crossentropy", "BinaryFocalCrossentropy", "categorical_focal_crossentropy",
    "CategoricalFocalCrossentropy"})


@dataclass(eq=False)
class LossSpec:
    """A loss as configured: its name, and whether it expects logits."""

    name: str
    framework: str
    from_logits: bool  # True: applies sigmoid/softmax itself
    span: Span
    explicit_from_logits: bool = False  # Keras: from_logits was written
    function: str | None = None  # a hand-written loss: the user function computing it (Keras compile(loss=f))
    # That function's log: what it applies to y_pred before (``1 - y_pred``: a SCALE; ``K.clip``/``+ K.epsilon()``:
    # OTHER bounds, ``paths.floored``), run symbolically; () when it takes the log of y_pred as it comes.
    before_log: tuple[Node, ...] = ()


@dataclass(eq=False)
class ModelCall:
    """``out = model(x)`` in training code: the model object and the output's path."""

    model_id: int
    output: Sequence[Node]
    span: Span
    # The model whose training-code output this call's input is (``D(G(z))``), and the gradient stop
    # between them (``D(G(z).detach())``), when there is one.
    fed_by: int | None = None
    cut: Node | None = None


@dataclass(eq=False)
class LossUse:
    """``loss = criterion(out, y)``: the loss and the path of the tensor it received."""

    loss: LossSpec
    prediction: Sequence[Node]
    span: Span
    model_id: int | None  # the model whose output feeds the loss, when known
    cut: Node | None = None  # a gradient stop between that model's output and the loss (training code)
    # A hand-written loss summing several logs (``y * log(p) + (1 - y) * log(1 - p)``): the others, each a
    # hand-written log of its own (GRD018 reads every one; the rest judge the first).
    companions: list[LossUse] = field(default_factory=list)
    # How a hand-written loss is reduced last, as far as read: "sum" over every axis, the batch's too
    # (``tf.reduce_sum(...)``, ``.sum()`` with no axis: the step grows with the batch), "mean" (a mean, or a
    # division: ``/ x.size(0)``); None: not read.
    reduction: str | None = None
    # torch: the shapes of the prediction and of the target when known (``gradlint.extract.torch_dims``;
    # an entry None: that size unknown)
    prediction_dims: tuple[int | None, ...] | None = None
    target_dims: tuple[int | None, ...] | None = None


@dataclass(eq=False)
class GradEvent:
    """What the training code does to the gradients, one event in the order the interpreter ran them:
    ``backward`` (a recorded ``loss.backward()``, ``tape.gradient``, ``opt.minimize``), ``zero_grad`` /
    ``step`` of an optimizer (``target``: its id), ``clear`` (gradients reset another way:
    ``model.zero_grad()``), ``clip`` (a torch ``clip_grad_norm_`` / ``clip_grad_value_``), ``opaque``
    (what may take or change gradients unseen: a ``backward()`` of something not recorded,
    ``optimizer.step(closure)``, an unresolved call given a loss, a model or an optimizer)."""

    kind: str
    span: Span
    target: int | None
    # The undecidable regions open when it ran (``Interp.uncertain_since``): an event whose regions
    # start with another's runs whenever that one does.
    regions: tuple[int, ...]
    loops: int  # the ``for`` / ``while`` statements open around it (the file's and its functions')


@dataclass(eq=False)
class OptimizerSpec:
    """An optimizer as configured (``gradlint.extract.optimizers``): None where not known."""

    kind: str | None  # its class: SGD, Adam, GradientDescentOptimizer, ...
    lr: float | None
    momentum: float | None
    span: Span
    layers: frozenset[int] = frozenset()  # ids of the layers whose parameters it is given (torch)
    model_id: int | None = None  # the model it is compiled into (Keras)
    params_known: bool = False  # torch: every parameter it is given was read, so ``layers`` is all it trains


@dataclass(eq=False)
class TrainingFacts:
    model_calls: list[ModelCall] = field(default_factory=list)
    losses: list[LossUse] = field(default_factory=list)
    backwards: list[tuple[Span, LossUse | None]] = field(default_factory=list)
    steps: list[Span] = field(default_factory=list)  # optimizer.step()
    fits: list[tuple[Span, int | None]] = field(default_factory=list)  # model.fit / trainer.fit (span, model id)
    compiled: dict[int, tuple[LossSpec | None, bool, Span]] = field(default_factory=dict)  # keras: loss, clips
    clips: list[Span] = field(default_factory=list)  # clip_grad_*, clipnorm=, gradient_clip_val=
    sequence_lengths: dict[int, int] = field(default_factory=dict)  # model id -> known time steps
    # ids of the layers whose parameters an optimizer is given (torch.optim.Adam(G.parameters())), and of
    # the models called in training code that own any of them
    optimized_layers: set[int] = field(default_factory=set)
    optimized_models: set[int] = field(default_factory=set)
    model_layers: dict[int, frozenset[int]] = field(default_factory=dict)  # model id -> ids of its layers
    # models whose training-code output is added to a loss as tensor arithmetic (``loss + 0.1 * reg``)
    term_models: set[int] = field(default_factory=set)
    # backward() of a loss whose values were copied out of the graph first: (the copy's span and op, the
    # loss it copied, where backward runs)
    severed: list[tuple[Span, str, LossUse, Span]] = field(default_factory=list)
    grad_events: list[GradEvent] = field(default_factory=list)  # in execution order
    # id of each torch softmax/log_softmax layer a training call ran on a tensor of known shape -> the layer
    # (held, so that its id stays its own) and that shape (None: calls that disagree), from
    # ``gradlint.extract.torch_dims``
    softmax_inputs: dict[int, tuple[Layer, tuple[int | None, ...] | None]] = field(default_factory=dict)
    optimizer_loops: dict[int, int] = field(default_factory=dict)  # optimizer id -> loops open where it was made
    # The file spells a ``.grad`` attribute / a ``zero_grad`` somewhere, run or not (syntax_index): code
    # that reads, sets or clears gradients by hand, maybe where the interpreter did not go.
    optimizers: list[OptimizerSpec] = field(default_factory=list)  # torch optimizers made, Keras ones compiled
    # The file spells what may set a learning rate after the optimizer is made (syntax_index): a scheduler
    # that sets the first steps' rate, ``param_groups``, an optimizer's ``.lr`` attribute.
    rewrites_lr: bool = False
    spells_grad: bool = False
    spells_zero_grad: bool = False
    # The file spells what may update parameters from their gradients, run or not (SyntaxIndex.spells_update):
    # a ``.step`` of anything but a learning-rate scheduler, a ``*step*(...)`` call, ``apply_gradients``.
    spells_update: bool = False

    def misplaced_clips(self) -> list[tuple[Span, str]]:
        """The torch clipping calls that clip no gradient a step applies, with where they run: ``"before
        backward()"`` (the nearest gradient events around it in its loop are a ``zero_grad()`` before and a
        ``backward()`` after: it clips the cleared gradients) or ``"after step()"`` (a ``step()`` before, a
        ``zero_grad()`` after: it clips gradients already applied, then erased). The loop's events are read
        cyclically (the next iteration follows the last event). Nothing opaque in the loop, and every
        neighbour in the same undecidable regions as the call; anything else counts as clipping."""
        events = self.grad_events
        found: list[tuple[Span, str]] = []
        seen: set[tuple[int, int]] = set()  # a loop the interpreter ran more than once records its clip each time
        for index, clip in enumerate(events):
            if clip.kind != "clip" or clip.loops == 0 or (clip.span.line, clip.span.col) in seen:
                continue
            seen.add((clip.span.line, clip.span.col))
            start, end = index, index + 1
            while start > 0 and events[start - 1].loops >= clip.loops:
                start -= 1
            while end < len(events) and events[end].loops >= clip.loops:
                end += 1
            loop = events[start:end]
            at = index - start
            around = [e for e in loop[at + 1:] + loop[:at] if e.kind != "clip"]  # after it, cyclically
            if not around or any(e.kind == "opaque" or e.regions != clip.regions for e in around):
                continue
            after, before = around[0].kind, around[-1].kind
            if before in ("zero_grad", "clear") and after == "backward":
                found.append((clip.span, "before backward()"))
            elif before == "step" and after in ("zero_grad", "clear"):
                found.append((clip.span, "after step()"))
        return found

    def effective_clips(self) -> list[Span]:
        """Where gradients are clipped, the misplaced torch clipping calls left out."""
        misplaced = {span for span, _ in self.misplaced_clips()}
        return [span for span in self.clips if span not in misplaced]

    def trained(self) -> list[tuple[int | None, Span]]:
        """Each model the file trains (its id, None when unknown) with where it is updated: the
        optimizer step after a ``backward()`` of a loss on its output, or ``fit``."""
        sites: list[tuple[int | None, Span]] = []
        for span, use in self.backwards if self.steps else []:
            # The step that follows this backward (another model's loop may come first in the file).
            after = [step for step in self.steps if (step.line, step.col) >= (span.line, span.col)]
            sites.append((use.model_id if use else None, min(after, key=lambda s: (s.line, s.col)) if after
                          else self.steps[0]))
        sites += [(model_id, span) for span, model_id in self.fits]
        return sites

    @property
    def trains(self) -> bool:
        return bool(self.backwards and self.steps) or bool(self.fits)
