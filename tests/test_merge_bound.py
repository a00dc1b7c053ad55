"""Merging many paths (``torch.stack(steps)`` / ``torch.cat(parts)``) stays bounded: once the merged
structure is too complex to follow, the rest of the tensors are not folded in (each fold costs
the length of a path, and a decoding loop stacks a growing list at every one of its steps)."""

from __future__ import annotations

import pytest

from gradlint.extract import paths
from gradlint.extract.paths import MAX_STRUCTURE, merge_many
from gradlint.extract.values import NodeSeq, TensorV
from gradlint.model import Layer, LayerKind, Span

SPAN = Span(1, 0, 1, 1)


def dense(i: int) -> Layer:
    return Layer(LayerKind.DENSE, f"fc{i}", SPAN, "torch")


def test_a_merge_past_the_structure_bound_stops_folding(monkeypatch: pytest.MonkeyPatch) -> None:
    folded: list[int] = []
    common_prefix = paths._common_prefix
    monkeypatch.setattr(paths, "_common_prefix", lambda a, b: folded.append(1) or common_prefix(a, b))
    stem = [dense(0)]
    steps = [TensorV(NodeSeq(stem + [dense(1000 * k + i) for i in range(MAX_STRUCTURE // 4)])) for k in range(40)]
    merged = paths.merge_many(steps, SPAN, concat=True)
    assert len(folded) < 10  # about 4 paths of MAX_STRUCTURE / 4 nodes fill the bound; 39 were left
    last = merged.nodes[-1]
    assert isinstance(last, Layer) and last.kind == LayerKind.UNKNOWN and last.op == "too-complex"
    assert merged.nodes[0] is stem[0]


def test_a_merge_within_the_bound_keeps_every_branch() -> None:
    stem = [dense(0)]
    steps = [TensorV(NodeSeq(stem + [dense(10 * k + i) for i in range(3)])) for k in range(4)]
    merged = merge_many(steps, SPAN, concat=True)
    assert len(merged.nodes) == 2 and merged.nodes[0] is stem[0]
    assert not isinstance(merged.nodes[-1], Layer)  # one concat structure of the four branches
