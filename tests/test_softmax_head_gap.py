"""The softmax head's saturation is judged on the gap between an example's two largest logits (a
softmax is blind to what its logits share), not on each logit as a sigmoid."""

from __future__ import annotations

import math

import pytest

from gradlint.gradflow.heads import HeadIn, _softmax_head, top_two_gap_median
from gradlint.gradflow.items import Activation


@pytest.mark.parametrize("n,median", [(2, 0.954), (3, 0.691), (10, 0.413), (1000, 0.208)])
def test_top_two_gap_median_matches_sampling(n: int, median: float) -> None:
    # medians of X(1) - X(2) over 200,000 draws of n standard normals (numpy, seed 0)
    assert top_two_gap_median(n) == pytest.approx(median, abs=0.005)


def _head(q: float, qab: float) -> HeadIn:
    item = Activation(activation="softmax", act_param=None, label="softmax", width=10)
    return HeadIn(item=item, act="softmax", q=q, qab=qab, mu=-math.log(9.0), d2=0.0)


def test_a_common_mode_far_wider_than_each_example_saturates_the_softmax() -> None:
    # every example shares one winner by a gap of ≈ 0.41 × 400 = 165 logits: p₂ underflows
    why, _, _ = _softmax_head(_head(q=160_000.0, qab=159_999.0), batch=128, n=10, q=160_000.0)
    assert why is not None and "softmax head saturated" in why


def test_logits_spread_per_example_keep_the_softmax_alive() -> None:
    # the same width of logits, but drawn per example: some example always has a small gap
    why, _, ln_factor = _softmax_head(_head(q=6400.0, qab=0.0), batch=128, n=10, q=6400.0)
    assert why is None and ln_factor > -2.5  # Σ‖J‖² within e^-2.5 of the mean field's


def test_a_shared_winner_attenuates_more_than_a_per_example_one() -> None:
    # a shared gap of ≈ 33 moved by ≈ 4.5 per example: no example of a batch comes near a tie
    shared = _softmax_head(_head(q=6400.0, qab=6390.0), batch=128, n=10, q=6400.0)[2]
    per_example = _softmax_head(_head(q=6400.0, qab=0.0), batch=128, n=10, q=6400.0)[2]
    assert shared < per_example - 20.0
