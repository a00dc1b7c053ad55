"""One end-to-end propagation per model: the model description as ``gradflow.propagate`` items.

The whole main path — weight layers with the norm and activation that follow them, norms and
activations on their own (post-LN, ``tanh(x + f(x))``), residual blocks with their shortcut,
branch scale (ReZero, layer scale, SkipInit) or zero-initialised last layer, gates, the output
head — becomes one chain of items. Only what the estimate cannot see through splits it into
*segments*: unresolved calls, recurrent and attention layers, a scale or gate whose value is
unknown. A segment after such a barrier starts from an assumed unit-variance input, and its
absolute quantities are only judged when it ends the model.
"""

from __future__ import annotations

import math
from dataclasses import field, replace

from gradlint import gradflow
from gradlint.analysis.inits import bias_moments_of, sigma_w2_of, weight_mean_of
from gradlint.analysis.spatial import (
    Dims,
    conv_spatial,
    input_dims,
    is_resample,
    keeps_dims,
    pool_dims,
    reduced_dims,
    resampled_dims,
)
from gradlint.analysis.units import Unit, input_width
from gradlint.gradflow.chain import WeightLayer
from gradlint.gradflow.propagate import (
    Activation,
    Block,
    Dropout,
    Flatten,
    Gated,
    Item,
    MaxPool,
    Norm,
    Propagation,
    Scale,
    SpatialMean,
    propagate,
)
from gradlint.model import RESHAPE_OPS, Gate, Layer, LayerKind, Model, Node
from gradlint.records import dataclass

_WEIGHT_KINDS = (LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING)
_BARRIER_KINDS = (LayerKind.UNKNOWN, LayerKind.RECURRENT, LayerKind.ATTENTION)
_TRANSPARENT_KINDS = (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER)
# What keeps a (batch, features) stream flat: a sum/mean over axis 1 after these reduces its features.
_FLAT_KINDS = frozenset({LayerKind.DENSE, LayerKind.ACTIVATION, LayerKind.NORMALIZATION, LayerKind.DROPOUT,
                         LayerKind.SCALE})
_ALPHA_DROPOUTS = frozenset({"AlphaDropout", "FeatureAlphaDropout", "alpha_dropout", "feature_alpha_dropout"})
#: Spatial positions a conv layer's units are taken to see per example, for whether a whole batch
#: leaves them dead: the map's size is unknown statically; 32×32 errs towards "alive" (not reported).
_CONV_POSITIONS = 32 * 32
#: Plausible σ_w² for an init gradlint could not resolve (PyTorch default, Glorot/LeCun, He).
_UNKNOWN_CANDIDATES = (1.0 / 3.0, 1.0, 2.0)


class _Barrier(Exception):
    """A node the estimate cannot see through, inside a block or a gate: the block is a barrier."""


def norm_kind_of(op: str, stats: str | None = None) -> str | None:
    """``batch`` / ``layer`` / ``rms`` from a normalization's name, or ``stats`` when its arguments told
    (``Layer.norm_stats``: GroupNorm(C, C)); None: not a variance reset."""
    if stats is not None:
        return stats
    name = op.lower()
    if "batch" in name or "instance" in name:
        return "batch"  # statistics per unit (and per example for InstanceNorm): offsets removed
    if "rms" in name:
        return "rms"
    if "layer" in name or "group" in name:
        return "layer"
    return None  # LocalResponseNorm, F.normalize, UnitNormalization, SpectralNormalization


@dataclass
class Segment:
    """A stretch of the main path the propagation sees through, with what it needs to report."""

    items: list[Item]
    units: list[Unit]  # main-path weight layers in execution order
    starts_input: bool
    ends_output: bool
    after: Layer | None = None  # the barrier before it
    unknown_init: bool = False
    constant_hidden: bool = False  # a hidden weight layer with a constant init: GRD002's, not ours
    residual_blocks: int = 0
    unnormalized_blocks: int = 0  # residual blocks with no norm and no scale in their branch
    head: Layer | None = None  # the layer holding the output activation
    notes: list[str] = field(default_factory=list)
    # A gradient stop (``x.detach()``, ``torch.no_grad()``) on the main path after it: on that path the
    # segment's layers get exactly no gradient (GRD012's), so no estimate of its gradient applies.
    behind_cut: bool = False
    flow: Propagation | None = None
    n_out: int | None = None  # outputs per example the loss sees, when not the last layer's width

    @property
    def batch_normalized(self) -> bool:
        """Some weight layer or stream of the segment is batch-normalized."""
        def visit(items: list[Item] | tuple[Item, ...]) -> bool:
            for item in items:
                if isinstance(item, WeightLayer) and item.normalized and item.norm_kind == "batch":
                    return True
                if isinstance(item, Norm) and item.kind == "batch":
                    return True
                if isinstance(item, Block) and (visit(item.branch) or visit(item.shortcut)):
                    return True
            return False
        return visit(self.items)

    @property
    def unit_by_key(self) -> dict[int, Unit]:
        return {id(u.layer): u for u in self.units}


@dataclass
class _Ctx:
    units: list[Unit] = field(default_factory=list)
    unknown_init: bool = False
    constant_hidden: bool = False
    blocks: int = 0
    unnormalized: int = 0
    notes: list[str] = field(default_factory=list)
    head: Layer | None = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class _Builder:
    def __init__(self, framework: str, flat_input: bool, dims: Dims | None = None) -> None:
        self.framework = framework
        # torch's nn.Softmax(dim=1) after a 1-unit Linear is the constant 1 only when dim 1 holds the
        # features: on flat (batch, features) inputs; on sequences it is attention pooling over time.
        self.flat_input = flat_input
        # The per-example spatial size of the stream at the node being read (gradlint.analysis.spatial):
        # () for flat features, None when unknown. ``spatial``: some layer's estimate used it.
        self.dims = dims
        self.spatial = False
        # A symmetric zero padding just read (the size before it, the zeros per axis): a conv right after
        # it sees them as its own padding.
        self.padded: tuple[Dims, tuple[int, ...]] | None = None
        self.reductions: set[int] = set()  # ids of the Scale items of heads reducing the output features

    def _spatial_weight(self, layer: Layer, fan_in: int | None, width: int | None, sigma_w2: float | None
                        ) -> tuple[dict[str, int], float | None, bool]:
        """The spatial fields of a weight layer's WeightLayer (uses, out_positions, and for a conv whose
        in-bounds taps differ from its kernel the forward fan-in and kernel rows), its σ_w² over the
        taps it really sums, and whether a flatten comes before it; updates ``self.dims``."""
        dims, self.dims = self.dims, None
        transposed = layer.kind == LayerKind.CONV and "Transpose" in layer.op
        if transposed and fan_in and layer.stride_area and (dims is None or not dims):
            # no spatial size: the interior's share of the kernel, k²/∏stride taps per output
            return {"fan_in": max(1, fan_in // layer.stride_area), "rows": fan_in}, sigma_w2, False
        if dims is None and layer.kind == LayerKind.DENSE and self.spatial:
            # A dense layer after feature maps whose size was lost on the way: read as a flatten (each
            # position its own weights), the estimate's view before it followed positions.
            return {}, sigma_w2, True
        if dims is None or layer.kind == LayerKind.EMBEDDING or (layer.kind == LayerKind.OTHER):
            return {}, sigma_w2, False
        positions = math.prod(dims)
        if layer.kind == LayerKind.CONV:
            window, padded, self.padded = layer.window, self.padded, None
            if padded is not None and window is not None and isinstance(window.padding, tuple) \
                    and len(window.padding) == len(padded[0]) == len(padded[1]):
                dims = padded[0]
                window = replace(window, padding=tuple(p + z for p, z in zip(window.padding, padded[1], strict=True)))
            cs = conv_spatial(window, dims, self.framework) if window is not None and dims else None
            if cs is None or not fan_in or not layer.receptive:
                return {}, sigma_w2, False
            self.dims = cs.out_dims
            forward = max(1, round(fan_in / layer.receptive * cs.taps))
            if sigma_w2 is not None:  # σ_w² as the init gives it is over fan_in (a transposed conv's: fan_in/∏stride)
                stride = (layer.stride_area or 1) if transposed else 1
                sigma_w2 *= forward * stride / fan_in
            self.spatial = self.spatial or cs.out_positions > 1 or cs.uses > 1
            return {"uses": max(1, round(cs.uses)), "out_positions": cs.out_positions, "fan_in": forward,
                    "rows": fan_in}, sigma_w2, False
        if positions <= 1:
            self.dims = ()
            return {}, sigma_w2, False
        if self.framework == "keras":  # Dense maps the last axis: applied at every position
            self.dims = dims
            self.spatial = True
            return {"uses": positions, "out_positions": positions}, sigma_w2, False
        if fan_in is not None and width is not None and fan_in == width * positions:
            self.dims = ()  # the map flattened into its features (x.view(n, -1), torch.flatten)
            return {}, sigma_w2, True
        if fan_in is not None and width is not None and fan_in != width and fan_in % width == 0:
            # Neither the channels nor channels × the positions followed: the map's size differs from the
            # one followed (torch code does not state its input; a guess) but a flatten it is, each
            # position its own weights, as when the size is lost.
            return {}, sigma_w2, True
        return {}, sigma_w2, False

    def weight(self, layer: Layer, width: int | None, ctx: _Ctx, main: bool
               ) -> tuple[WeightLayer, Unit, int | None, bool]:
        receptive = layer.receptive or 1
        fan_in = layer.fan_in
        rows = None
        if layer.kind == LayerKind.EMBEDDING:
            rows, fan_in = layer.fan_in, 1
        elif fan_in is None and width is not None:
            fan_in = width * receptive
        grad_fan_in = fan_in
        if fan_in is None and layer.kind == LayerKind.DENSE and layer.fan_out is not None:
            # A dense layer whose input width nothing states (a subclassed Keras model never given a shape):
            # its weight gradient taken as a square layer's, as its Glorot σ_w² is (analysis.inits), not as
            # one input feature's. (A first conv keeps the small fan-in: images have few channels.)
            grad_fan_in = layer.fan_out
            if main:
                ctx.note(f"input width of {layer.describe()} unknown: its gradient taken as a square layer's")
        unit = Unit(layer, fan_in=fan_in, fan_out=layer.fan_out)
        if layer.activation and layer.activation != "linear":
            unit.activation, unit.act_param, unit.act_layer = layer.activation, layer.act_param, layer
        sigma_w2, note = sigma_w2_of(unit)
        if note:
            ctx.note(note)
        if sigma_w2 is None:
            ctx.unknown_init = True
        spatial, sigma_w2, flatten = self._spatial_weight(layer, fan_in, width, sigma_w2)
        conv = layer.fan_out is not None and layer.kind == LayerKind.CONV
        out = layer.fan_out // receptive if conv and layer.fan_out is not None else layer.fan_out
        act = unit.activation if unit.activation in gradflow.ACTIVATIONS else "linear"
        if unit.activation not in gradflow.ACTIVATIONS and unit.activation not in ("linear", "softmax"):
            ctx.note(f"activation {unit.activation} treated as linear")
        has_bias = layer.bias is not False and layer.kind != LayerKind.EMBEDDING
        bias_mean, bias_var = bias_moments_of(unit) if has_bias else (0.0, 0.0)
        wl = WeightLayer(sigma_w2, act, bias_var, False, unit.act_param, layer.describe(),
                         spatial.get("fan_in", grad_fan_in), fan_out=out, embedding=layer.kind == LayerKind.EMBEDDING,
                         rows=spatial.get("rows", rows),
                         bias_width=out if has_bias else None, key=id(layer), bias_mean=bias_mean,
                         positions=_CONV_POSITIONS if conv else 1,
                         weight_mean=max(weight_mean_of(unit), 0.0) if sigma_w2 is not None else 0.0,
                         uses=spatial.get("uses", 1), out_positions=spatial.get("out_positions", 1))
        if main:
            ctx.units.append(unit)
        return wl, unit, out if out is not None else width, flatten

    def path(self, nodes: list[Node], width: int | None, ctx: _Ctx, main: bool, top: bool = False
             ) -> tuple[list[list[Item]], list[Layer | None], int | None]:
        """Items of ``nodes`` split at barriers (only at the top level; inside, a barrier raises)."""
        segments: list[list[Item]] = [[]]
        barriers: list[Layer | None] = [None]
        pending: tuple[int, Unit] | None = None  # the last weight layer, while a norm/act can still fold in
        last_meaningful = _last_meaningful(nodes) if top else None
        heads = _flat_head_reductions(nodes, last_meaningful, top and main and self.flat_input)
        for node in nodes:
            items = segments[-1]
            self._meet(node)
            if isinstance(node, Layer):
                kind = node.kind
                if kind in _WEIGHT_KINDS or (kind == LayerKind.OTHER and node.op == "matmul"):
                    wl, unit, width, flatten = self.weight(node, width, ctx, main)
                    if flatten:
                        items.append(Flatten(node.describe()))
                    items.append(wl)
                    pending = (len(items) - 1, unit)
                    if top and node is last_meaningful:
                        ctx.head = node
                    if unit.activation == "softmax":  # Keras Dense(k, activation="softmax"): the last axis
                        if top and node is last_meaningful or self._hidden_softmax(node, top, main, nodes):
                            items.append(Activation("softmax", label=node.describe(), width=width))
                        pending = None
                    continue
                if kind == LayerKind.ACTIVATION:
                    pending = self._activation_node(node, items, pending, width, ctx, top and node is last_meaningful,
                                                    top and main)
                    continue
                if kind == LayerKind.NORMALIZATION:
                    pending = self._norm_node(node, items, pending, width, segments, barriers, top)
                    continue
                if kind == LayerKind.SCALE and node.scale_value == 1.0 and node.shift_value is not None \
                        and math.isfinite(node.shift_value) and pending is not None:
                    folded_into = items[pending[0]]
                    if isinstance(folded_into, WeightLayer) and folded_into.activation == "linear" \
                            and not folded_into.normalized:
                        # ``sigmoid(fc(x) + 6)``: a constant added to a weight layer's output is a bias
                        # offset; the activation still folds in (its saturation is the layer's).
                        items[pending[0]] = replace(folded_into, bias_mean=folded_into.bias_mean + node.shift_value)
                        continue
                if kind == LayerKind.SCALE:
                    if node.scale_value is None or not math.isfinite(node.scale_value):
                        pending = None
                        self._barrier(node, segments, barriers, top)
                        continue
                    items.append(Scale(node.scale_value, node.describe(), node.shift_value or 0.0,
                                       node.scale_params or 0))
                    pending = None
                    continue
                if kind == LayerKind.POOLING:
                    reset, width = self._pool_node(node, items, width, id(node) in heads)
                    if reset:
                        pending = None
                    continue
                if kind == LayerKind.OTHER and node.op in RESHAPE_OPS:
                    width = node.fan_out  # re-arranged features: the width after it as extracted, or unknown
                    self._reshape(node, items)
                    continue
                if self._other_dims(node):
                    continue
                if kind in _TRANSPARENT_KINDS:
                    _dropout(node, items)
                    continue
                # recurrent, attention, unknown
                pending = None
                self._barrier(node, segments, barriers, top)
                if node.fan_out is not None:
                    width = node.fan_out
                continue
            if isinstance(node, Gate):
                if pending is not None:
                    pending[1].gated = True
                dims, self.dims = self.dims, None  # a gate path is read without spatial terms
                try:
                    sub, _, _ = self.path(node.path, width, _Ctx(), main=False)
                except _Barrier:
                    pending = None
                    self._barrier(None, segments, barriers, top)
                    continue
                finally:
                    self.dims = dims
                items.append(Gated(tuple(sub[0]), "gate"))
                pending = None
                continue
            # Residual
            pending = None
            start = self.dims
            try:
                branch, _, w_branch = self.path(node.branch, width, ctx, main)
                branch_dims, self.dims = self.dims, start
                shortcut, _, w_short = self.path(node.shortcut, width, ctx, main)
            except _Barrier:
                self.dims = None
                self._barrier(None, segments, barriers, top)
                continue
            self.dims = branch_dims if branch_dims == (self.dims if node.shortcut else start) else None
            self._check_branch(branch[0], ctx)
            ctx.blocks += 1
            if not any(isinstance(i, (Norm, Scale)) or (isinstance(i, WeightLayer) and i.normalized)
                       for i in branch[0]):
                ctx.unnormalized += 1
            items.append(Block(tuple(branch[0]), tuple(shortcut[0]), node.concat, "residual block",
                               (w_short if node.shortcut else width, w_branch)))
            width = (w_short or 0) + (w_branch or 0) if node.concat and w_short and w_branch else (w_branch or width)
        return segments, barriers, width

    def _meet(self, node: Node) -> None:
        if self.padded is not None and not (isinstance(node, Layer) and node.kind == LayerKind.CONV):
            self.padded = None  # the zeros met something else first: positions like any other

    def _other_dims(self, node: Layer) -> bool:
        """The spatial size after a layer that is not a weight, norm, pooling or reshape; True for a
        resampling (nothing else to do with it)."""
        if is_resample(node):
            self._resample(node)
            return True
        if not keeps_dims(node):
            self.dims = None
        return False

    def _resample(self, node: Layer) -> None:
        """Upsampling, pixel (un)shuffle, padding: the values passed on, the spatial size they leave."""
        w, before = node.window, self.dims
        assert w is not None
        if node.op in ("view", "Unflatten"):  # x.view(-1, 256, 4, 4): a feature map of that size, whatever before
            self.dims = w.output
            return
        self.dims = resampled_dims(w, before) if before else None
        if self.dims is not None and before and w.zero_pad and len(w.zero_pad) == len(before):
            self.padded = (before, w.zero_pad)

    def _pool_node(self, node: Layer, items: list[Item], width: int | None, head: bool) -> tuple[bool, int | None]:
        """A pooling node (``head``: a reduction ``_flat_head_reductions`` found): whether it ends the
        fold of an activation into the last weight layer, and the width after it. A sum other than a
        head's is read as before (the stream goes on unchanged)."""
        if self._reduce_features(node, items, width if head else None):
            return True, 1
        return node.op != "sum" and self._pool(node, items), width

    def _reduce_features(self, node: Layer, items: list[Item], width: int | None) -> bool:
        """A head summing (averaging) the ``width`` features of a flat (batch, features) output
        (``.sum(dim=1)``, ``.mean(dim=-1)``; ``width`` None when not such an output): the loss sees one
        output of variance n·q (q/n), a scale of √n (1/√n) into a single output. True when it is one."""
        if not width or node.window is None or node.window.reduce not in ((1,), (-1,)):
            return False
        items.append(Scale(math.sqrt(width) if node.op == "sum" else 1.0 / math.sqrt(width), node.describe()))
        self.reductions.add(id(items[-1]))
        return True

    def _reshape(self, node: Layer, items: list[Item]) -> None:
        """A flatten (the map's positions become features) or a reshape: the spatial size after it."""
        if node.op == "Flatten" and self.dims:
            if math.prod(self.dims) > 1:
                items.append(Flatten(node.describe()))
            self.dims = ()
        elif node.op == "Reshape" and self.framework == "keras" and node.window is not None and node.window.output:
            self.dims = node.window.output  # Reshape((4, 4, 256)): a map again, channels last
        else:
            self.dims = None

    def _pool(self, node: Layer, items: list[Item]) -> bool:
        """A pooling layer: its item (max over windows, a spatial mean) when it has one; True then."""
        op = node.op.lower()
        is_max = "max" in op
        got = None
        if self.dims and node.window is not None:
            w = node.window
            got = reduced_dims(w, self.dims) if w.reduce else pool_dims(w, self.dims, self.framework)
        if got is None:
            self.dims = None
            if op.startswith("max") and (node.receptive or 0) > 1:
                items.append(MaxPool(int(node.receptive or 1), node.describe()))
                return True
            return False
        self.dims, k = got
        if k <= 1:
            return False
        items.append(MaxPool(k, node.describe()) if is_max else SpatialMean(k, node.describe()))
        return True

    def _hidden_softmax(self, layer: Layer, top: bool, main: bool, nodes: list[Node] | None = None,
                        softmax: Layer | None = None) -> bool:
        """A softmax inside the stack right after a Dense/Linear, over that layer's own units (Keras:
        ``Dense(64, activation="softmax")`` or ``Activation("softmax")`` after a Dense, always the last
        axis; torch: ``nn.Softmax``/``F.softmax`` after a Linear, over ``dim=-1``, or ``dim=1`` of a flat
        input): modelled as the head's softmax is, per unit sigmoid(u − ln(k − 1)), whose derivative
        ≈ 1/k shrinks the gradient by about the width per layer (6 such Dense(64) layers measured
        3.3e-10, 4 torch Linear(64) + Softmax(dim=1) 1.4e-7). Elsewhere (attention scores after a matmul,
        gates, other axes) a mid-path softmax keeps passing the values on."""
        if not (top and main and layer.kind == LayerKind.DENSE):
            return False
        if self.framework == "keras":
            return True
        if softmax is None and nodes is not None:  # the torch Linear's softmax is the node after it
            index = next((i for i, n in enumerate(nodes) if n is layer), -1)
            after = nodes[index + 1] if 0 <= index < len(nodes) - 1 else None
            softmax = after if isinstance(after, Layer) and after.activation == "softmax" else None
        return softmax is not None and (self.flat_input or softmax.axis == -1)

    def _activation_node(self, node: Layer, items: list[Item], pending: tuple[int, Unit] | None,
                         width: int | None, ctx: _Ctx, is_head: bool, top_level: bool = False
                         ) -> tuple[int, Unit] | None:
        """An activation layer: folded into the weight layer before it when it can be; the new pending."""
        act = node.activation or "other"
        if act == "softmax":
            if is_head:
                after_dense = pending is not None and pending[1].layer.kind == LayerKind.DENSE
                # A Linear maps the last axis: a softmax over dim=-1 right after it normalizes
                # over its outputs whatever the input's layout; over dim=1 only on flat inputs.
                known = after_dense and (self.framework == "keras" or self.flat_input or node.axis == -1)
                items.append(Activation("softmax", label=node.describe(), width=width if known else None))
                ctx.head = node
            elif top_level and pending is not None and pending[1].activation in (None, "linear") \
                    and self._hidden_softmax(pending[1].layer, True, True, softmax=node):
                items.append(Activation("softmax", label=node.describe(), width=width))
                pending[1].activation, pending[1].act_layer = "softmax", node  # described as that layer's activation
            return None  # mid-path softmax (attention weights): passes the values on
        if act not in gradflow.ACTIVATIONS:
            ctx.note(f"activation {act} treated as linear")
            return pending
        if is_head:
            ctx.head = node
        if pending is not None and isinstance(items[pending[0]], WeightLayer) and \
                items[pending[0]].activation == "linear":  # type: ignore[union-attr]
            index, unit = pending
            items[index] = replace(items[index], activation=act, act_param=node.act_param)  # type: ignore[arg-type]
            unit.activation, unit.act_param, unit.act_layer = act, node.act_param, node
        else:
            items.append(Activation(act, node.act_param, node.describe(), width))
            if pending is not None and pending[1].activation == "linear":
                pending[1].activation, pending[1].act_layer = act, node
        return None

    def _norm_node(self, node: Layer, items: list[Item], pending: tuple[int, Unit] | None, width: int | None,
                   segments: list[list[Item]], barriers: list[Layer | None], top: bool) -> tuple[int, Unit] | None:
        """A normalization layer: folded into the weight layer before it when it can be; the new pending."""
        norm = norm_kind_of(node.op, node.norm_stats)
        if norm is None:
            if "normalize" in node.op.lower() or "unit" in node.op.lower():
                pending = None
                self._barrier(node, segments, barriers, top)
            return pending  # local response norm: close to the identity
        zero_gamma = node.weight_init is not None and node.weight_init.constant_value == 0
        folded = False
        if pending is not None:
            index, unit = pending
            folded_into = items[index]
            if isinstance(folded_into, WeightLayer) and folded_into.activation == "linear" \
                    and not folded_into.normalized:
                items[index] = replace(folded_into, normalized=True,
                                       norm_kind="batch" if norm == "batch" else "layer",
                                       norm_group=node.norm_group if norm == "layer" else None)
                unit.normalized, unit.norm_layer = True, node
                folded = True
        if not folded:
            items.append(Norm(norm, node.describe(), width, node.norm_group if norm == "layer" else None))
            pending = None
        if zero_gamma:
            items.append(Scale(0.0, f"zero-initialised {node.op} weight"))
            pending = None
        return pending

    def _barrier(self, node: Layer | None, segments: list[list[Item]], barriers: list[Layer | None],
                 top: bool) -> None:
        if not top:
            raise _Barrier()
        segments.append([])
        barriers.append(node)

    def _check_branch(self, branch: list[Item], ctx: _Ctx) -> None:
        """A zero init is a design at a branch's last weight layer (Fixup, ReZero, SkipInit),
        a symmetry problem anywhere else (GRD002's)."""
        weights = [i for i in branch if isinstance(i, WeightLayer)]
        for wl in weights[:-1]:
            if wl.sigma_w2 == 0.0:
                ctx.constant_hidden = True


def _dropout(node: Layer, items: list[Item]) -> None:
    """A dropout layer of known rate, as it acts in train mode (the protocol's): ``gradflow.Dropout``.
    One whose rate is not a literal stays transparent (as every dropout did before it was modelled)."""
    if node.kind == LayerKind.DROPOUT and node.rate:
        items.append(Dropout(node.rate, node.op in _ALPHA_DROPOUTS, node.describe()))


def _flat_head_reductions(nodes: list[Node], last_meaningful: Node | None, flat_input: bool) -> set[int]:
    """The sums/means after the model's last weight layer or activation (``last_meaningful``) while the
    stream is still the (batch, features) of a flat input: only dense layers and plain ops before."""
    found: set[int] = set()
    if not flat_input:
        return found
    past_head = False
    for node in nodes:
        past_head = past_head or node is last_meaningful
        if not isinstance(node, Layer):
            break
        if node.kind == LayerKind.POOLING and node.op in ("sum", "mean"):
            if past_head:
                found.add(id(node))
        elif node.kind not in _FLAT_KINDS:
            break
    return found


def _last_meaningful(nodes: list[Node]) -> Node | None:
    for node in reversed(nodes):
        if isinstance(node, Layer) and node.kind in (LayerKind.DROPOUT, LayerKind.POOLING, LayerKind.OTHER,
                                                     LayerKind.SCALE) and node.op != "matmul":
            continue
        return node
    return None


def model_segments(model: Model) -> list[Segment]:
    """The model's main path as propagation segments (cached on the model)."""
    cached = model.__dict__.get("_flow_segments")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    ctx = _Ctx()
    hint = model.input_hint
    dims = input_dims(hint, model.framework)
    builder = _Builder(model.framework, hint is not None and hint.kind == "features" and hint.shape is not None
                       and len(hint.shape) == 1, dims)
    try:
        raw, barriers, _ = builder.path(model.path, input_width(model), ctx, main=True, top=True)
    except (_Barrier, RecursionError):
        raw, barriers = [], []
    if builder.spatial and model.framework == "torch" and dims:
        # torch code does not declare its input: the model's input hint is the guess the dynamic check uses
        ctx.note(f"input of spatial size {'×'.join(str(d) for d in dims)} assumed for the conv layers")
    # Units per segment, in order: split ctx.units by which segment holds their weight layer.
    where: dict[int, int] = {}
    for index, items in enumerate(raw):
        for key in _keys(items):
            where[key] = index
    segments: list[Segment] = []
    last_cut = max((i for i, b in enumerate(barriers) if b is not None and b.kind == LayerKind.STOP), default=0)
    for index, items in enumerate(raw):
        units = [u for u in ctx.units if where.get(id(u.layer)) == index]
        seg = Segment(items, units, starts_input=index == 0, ends_output=index == len(raw) - 1,
                      after=barriers[index])
        seg.unknown_init = any(_is_unknown(i) for i in items)
        top_weights = [i for i in items if isinstance(i, WeightLayer)]
        seg.constant_hidden = ctx.constant_hidden or any(w.sigma_w2 == 0.0 for w in top_weights)
        seg.residual_blocks = sum(isinstance(i, Block) for i in items)
        seg.unnormalized_blocks = ctx.unnormalized if seg.residual_blocks else 0
        seg.head = ctx.head if seg.ends_output else None
        seg.notes = list(ctx.notes)
        seg.behind_cut = index < last_cut
        reduced = [i for i, item in enumerate(items) if id(item) in builder.reductions]
        if reduced and seg.ends_output and not any(isinstance(item, (WeightLayer, Block, Gated))
                                                   for item in items[reduced[-1]:]):
            seg.n_out = 1  # the loss sees the reduced output only
        segments.append(seg)
    model.__dict__["_flow_segments"] = segments
    return segments


def _keys(items: list[Item] | tuple[Item, ...]) -> list[int]:
    out: list[int] = []
    for item in items:
        if isinstance(item, WeightLayer) and item.key is not None:
            out.append(item.key)
        elif isinstance(item, Block):
            out += _keys(item.shortcut) + _keys(item.branch)
    return out


def _is_unknown(item: Item) -> bool:
    if isinstance(item, WeightLayer):
        return item.sigma_w2 is None
    if isinstance(item, Block):
        return any(_is_unknown(i) for i in item.branch + item.shortcut)
    if isinstance(item, Gated):
        return any(_is_unknown(i) for i in item.path)
    return False


def _fill(items: list[Item] | tuple[Item, ...], value: float, override: dict[int, float] | None,
          zero_bias: bool = False) -> list[Item]:
    out: list[Item] = []
    for item in items:
        if isinstance(item, WeightLayer):
            if override and item.key in override:  # the matched init: fan-aware, centred
                item = replace(item, sigma_w2=override[item.key], weight_mean=0.0)
            elif item.sigma_w2 is None:
                item = replace(item, sigma_w2=value)
            if zero_bias and item.bias_mean:
                item = replace(item, bias_mean=0.0)
        elif isinstance(item, Block):
            item = replace(item, branch=tuple(_fill(item.branch, value, override, zero_bias)),
                           shortcut=tuple(_fill(item.shortcut, value, override, zero_bias)))
        elif isinstance(item, Gated):
            item = replace(item, path=tuple(_fill(item.path, value, override, zero_bias)))
        out.append(item)
    return out


def _unknown_fan_in(items: list[Item] | tuple[Item, ...]) -> bool:
    for item in items:
        if isinstance(item, WeightLayer):
            if item.fan_in is None and item.fan_out and not item.embedding:
                return True
        elif isinstance(item, Block):
            if _unknown_fan_in(item.branch) or _unknown_fan_in(item.shortcut):
                return True
        elif isinstance(item, Gated) and _unknown_fan_in(item.path):
            return True
    return False


def _with_fan_in(items: list[Item] | tuple[Item, ...], square: bool) -> list[Item]:
    """Weight layers whose input width nothing states (a first ``nn.LazyLinear``, a Keras ``Dense``
    before any input shape) read with fan-in 1 or as square (fan-in = fan-out): ‖∂L/∂W‖ grows with
    √fan_in, and a fixed-scale init's σ_w² with fan_in."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, WeightLayer):
            if item.fan_in is None and item.fan_out and not item.embedding:
                item = replace(item, fan_in=item.fan_out if square else 1)
        elif isinstance(item, Block):
            item = replace(item, branch=tuple(_with_fan_in(item.branch, square)),
                           shortcut=tuple(_with_fan_in(item.shortcut, square)))
        elif isinstance(item, Gated):
            item = replace(item, path=tuple(_with_fan_in(item.path, square)))
        out.append(item)
    return out


def _badness(p: Propagation) -> float:
    """How far a propagation is from healthy (to keep, for an unknown init, the most benign guess)."""
    bad = max(0.0, abs(p.log10_ratio) - 2.0) if math.isfinite(p.log10_ratio) else 50.0
    if p.log10_loss is not None:
        bad += max(0.0, p.log10_loss - 3.0)
    first = p.log10_first_relative_grad
    if first is not None and math.isfinite(first):
        bad += max(0.0, -4.0 - first)
    return bad + (50.0 if p.nonfinite else 0.0)


def run_segment(seg: Segment, override: dict[int, float] | None = None, zero_bias: bool = False
                ) -> Propagation | None:
    """Propagate one segment; ``override`` maps layer keys to a σ_w² to use instead, ``zero_bias``
    sets constant biases to 0 (what-ifs).

    An unknown init is tried at each plausible σ_w² and the most benign result kept, so that a
    finding survives whatever common init was used; an unknown input width likewise at fan-in 1 and
    square (``_with_fan_in``)."""
    if not seg.units:
        return None
    candidates = _UNKNOWN_CANDIDATES if seg.unknown_init else (1.0,)
    widths: tuple[bool | None, ...] = (False, True) if _unknown_fan_in(seg.items) else (None,)
    best: Propagation | None = None
    for value in candidates:
        for square in widths:
            items = _fill(seg.items, value, override, zero_bias)
            if square is not None:
                items = _with_fan_in(items, square)
            try:
                prop = propagate(items, ends_output=seg.ends_output, n_out=seg.n_out)
            except (ArithmeticError, ValueError):
                return None  # absurd constants: no number rather than a made-up one
            if best is None or _badness(prop) < _badness(best):
                best = prop
    assert best is not None
    if widths != (None,):
        best.exact = False
        best.assumptions.insert(0, "input width of some layers unknown: tried fan-in 1 and square, kept the most "
                                   "benign")
    if seg.unknown_init:
        best.exact = False
        best.assumptions.insert(0, "init unknown for some layers: tried σ_w² ∈ {1/3, 1, 2}, kept the most benign")
    if not seg.starts_input and seg.after is not None:
        best.exact = False
        best.assumptions.insert(0, f"after {seg.after.describe()}: unit-variance input assumed")
    for note in seg.notes:
        if note not in best.assumptions:
            best.assumptions.append(note)
            best.exact = False
    return best


def segment_flow(seg: Segment) -> Propagation | None:
    if seg.flow is None:
        seg.flow = run_segment(seg)
    return seg.flow
