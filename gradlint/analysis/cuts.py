"""Gradient stops: which weight layers no gradient reaches because every route from what the model
computes back to them passes through a stop (``x.detach()``, ``x.data``, a ``torch.no_grad()``
block, a numpy round trip, ``tf.stop_gradient``).

The question is one of the tensor-path algebra, not of tokens. A route runs backwards from an
output along the path: a STOP node ends it (everything before it on that path is reached only if
another route reaches it); a residual passes the gradient on through its branch *and* its shortcut,
so a sum of a stopped and a live value is live (the straight-through estimator
``x + (q - x).detach()``); a gate's sub-path is a route of its own into the gating layers. The
outputs are the model's main path and its side routes (``Model.side_routes``: the other tensors its
forward returns, stores or hands to a loss), so a stop on a side branch (a target network, a
predictor's target, ``mse(p, z.detach())``) leaves whatever another route reaches live. Only stops
on the main path are reported: a side output stopped as a whole (an EMA teacher computed under
``no_grad``) is trained some other way by design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

from gradlint.model import Gate, Layer, LayerKind, Model, Node, Residual, gradient_blocked
from gradlint.records import dataclass

#: Layers with weights a gradient stop can leave untrained.
_TRAINED_KINDS = frozenset({LayerKind.DENSE, LayerKind.CONV, LayerKind.EMBEDDING, LayerKind.RECURRENT})


@dataclass
class Cut:
    """Weight layers that get no gradient at all, and the stops every route to them passes through."""

    stops: list[Layer]  # in execution order (one, or both sides of a residual that stops either way)
    layers: list[Layer] = field(default_factory=list)  # in execution order
    concat: bool = False  # the stops are on the inputs of a concatenation (torch.cat, stack), not of a sum


class _Walk:
    """Marks every layer a route from an output reaches; records what lies behind each stop."""

    def __init__(self) -> None:
        self.record = True  # stops on the main path are reported; side routes only reach layers
        self.live: set[int] = set()
        self.visited: set[int] = set()  # residuals and gates already walked (paths are DAGs)
        # (stops, the paths before them, whether they meet at a concatenation): what a route ends in front of
        self.behind: list[tuple[list[Layer], list[Sequence[Node]], bool]] = []

    def route(self, nodes: Sequence[Node]) -> None:
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            if isinstance(node, Layer):
                if node.kind == LayerKind.STOP:
                    if self.record:
                        self.behind.append(([node], [nodes[:index]], False))
                    return
                self.live.add(id(node))
            elif isinstance(node, Residual):
                inner = len(self.behind)
                if id(node) not in self.visited:
                    self.visited.add(id(node))
                    self.route(node.branch)
                    self.route(node.shortcut)
                if gradient_blocked(node.branch) and gradient_blocked(node.shortcut):
                    # Stopped on both sides: one cut, in front of the sides' layers and of the path before.
                    paths = [p for _, ps, _ in self.behind[inner:] for p in ps]
                    del self.behind[inner:]
                    if self.record:
                        self.behind.append((_stops_in([node]), paths + [nodes[:index]], node.concat))
                    return
            elif isinstance(node, Gate) and id(node) not in self.visited:
                self.visited.add(id(node))
                self.route(node.path)


def _stops_in(nodes: Sequence[Node]) -> list[Layer]:
    """The last stop on each side of a blocked residual (what the gradient cannot get past)."""
    out: list[Layer] = []
    for node in nodes:
        if isinstance(node, Residual):
            for side in (node.branch, node.shortcut):
                last = next((n for n in reversed(side) if isinstance(n, Layer) and n.kind == LayerKind.STOP), None)
                if last is not None:
                    out.append(last)
                else:
                    out.extend(_stops_in(side))
    return out


def _weight_layers(nodes: Sequence[Node], seen: set[int], out: list[Layer]) -> None:
    for node in nodes:
        if isinstance(node, Layer):
            if node.kind in _TRAINED_KINDS and id(node) not in seen:
                seen.add(id(node))
                out.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            if isinstance(node, Residual):
                _weight_layers(node.shortcut, seen, out)
                _weight_layers(node.branch, seen, out)
            else:
                _weight_layers(node.path, seen, out)


def _has_stop(nodes: Sequence[Node], seen: set[int]) -> bool:
    for node in nodes:
        if isinstance(node, Layer):
            if node.kind == LayerKind.STOP:
                return True
        elif id(node) not in seen:
            seen.add(id(node))
            parts = (node.branch, node.shortcut) if isinstance(node, Residual) else (node.path,)
            if any(_has_stop(part, seen) for part in parts):
                return True
    return False


def _reads_unread_module(paths: Sequence[Sequence[Node]], seen: set[int]) -> bool:
    """Whether the paths behind a stop apply a module gradlint cannot read (an UNKNOWN node with
    ``external_weights``: ``self.backbone = timm.create_model(...)``, a class with an unread base)."""
    for nodes in paths:
        for node in nodes:
            if isinstance(node, Layer):
                if node.kind == LayerKind.UNKNOWN and node.external_weights:
                    return True
            elif id(node) not in seen:
                seen.add(id(node))
                parts = [node.branch, node.shortcut] if isinstance(node, Residual) else [node.path]
                if _reads_unread_module(parts, seen):
                    return True
    return False


class _ByDesign:
    """Whether a layer behind a stop is kept out of training on purpose. Frozen or loaded layers
    (``Layer.frozen``) always are. More are when the model still trains through other weight
    layers (``trains``) -- a stop that cuts off every trainable layer leaves nothing to learn, and
    is reported whatever they are: layers whose weights a base gradlint cannot read sets
    (``Layer.external_weights``: a pretrained component, e.g. a codec run under ``no_grad`` in
    front of a trained projection), and (``gradient_cuts``) a stop in front of a module gradlint
    cannot read, with the layers computed with it. A module built from scratch in the file and
    only put in eval mode (``self.encoder.eval()``) is none of these: measured, its parameters
    still require a gradient and get none, so they stay at their random init."""

    def __init__(self, model: Model, live: set[int]) -> None:
        weights: list[Layer] = []
        seen: set[int] = set()
        for route in [model.path, *model.side_routes]:
            _weight_layers(route, seen, weights)
        self.trains = any(id(layer) in live and not layer.frozen for layer in weights)

    def __call__(self, layer: Layer) -> bool:
        return layer.frozen or (self.trains and layer.external_weights)


def gradient_cuts(model: Model) -> list[Cut]:
    """The model's weight layers that no route reaches, grouped by the stop(s) in front of them, in
    the order of the stops (cached per model). Layers the code freezes or loads on purpose
    (``Layer.frozen``) are not listed: a stop before them is by design."""
    cached = model.__dict__.get("_gradient_cuts")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    cuts: list[Cut] = []
    if _has_stop(model.path, set()):
        walk = _Walk()
        walk.route(model.path)
        walk.record = False  # a side output stopped as a whole (an EMA teacher's) is no finding
        for route in model.side_routes:
            walk.route(route)
        by_design = _ByDesign(model, walk.live)
        reported: set[int] = set()
        for stops, paths, concat in walk.behind:
            layers: list[Layer] = []
            seen: set[int] = set()
            for before in reversed(paths):  # the path before the stop first: execution order
                _weight_layers(before, seen, layers)
            dead = [layer for layer in layers if id(layer) not in walk.live and id(layer) not in reported]
            reported.update(id(layer) for layer in dead)
            if by_design.trains and _reads_unread_module(paths, set()):
                continue  # a frozen component: the stop cuts off a module gradlint cannot read (a pretrained backbone)
            if dead and not all(by_design(layer) for layer in dead):
                cuts.append(Cut(stops, [layer for layer in dead if not by_design(layer)], concat))
        cuts.sort(key=lambda c: (c.stops[0].span.line, c.stops[0].span.col) if c.stops else (0, 0))
    model.__dict__["_gradient_cuts"] = cuts
    return cuts
