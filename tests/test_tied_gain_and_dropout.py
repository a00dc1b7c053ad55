"""The tied-weight gated-recurrence gain and train-mode dropout (gradlint.analysis.estimation,
gradlint.gradflow.Dropout): their closed forms at the limits the derivations state, and the measured
numbers they were checked against (docs/calibration.md, *Recurrent layers*, *Exploding models across styles*)."""

from __future__ import annotations

import math

from gradlint.analysis.estimation import _tied_gain, gru_step_gain, lstm_step_gain
from gradlint.gradflow.items import Dropout


def test_tied_gain_limits() -> None:
    # no carried path or no coherent recurrent part: the untied λ_u
    assert math.isclose(_tied_gain(0.49, 0.0, 0.5), 0.7)
    assert math.isclose(_tied_gain(0.49, 0.5, 0.0), 0.7)
    # no fluctuation (λ_u = ā² + B²): the spectral radius ā + B of the mean Jacobian
    assert math.isclose(_tied_gain(0.5 ** 2 + 0.3 ** 2, 0.5, 0.3), 0.8)


def test_gated_gain_is_between_untied_and_measured_margin() -> None:
    """torch LSTM/GRU, hidden 128, σ_rec = 2 (σ_in² = 16/(3·128) + 2/(3·128)): measured 0.950–0.956 (LSTM)
    and 0.918–0.957 (GRU) per step over 20–400 steps; the untied estimate 0.69 / 0.72."""
    sigma_in2 = 16 / (3 * 128) + 2 / (3 * 128)
    for step, measured in ((lstm_step_gain, 0.953), (gru_step_gain, 0.95)):
        tied, untied = step(4.0, sigma_in2), step(4.0, sigma_in2, tied=False)
        assert untied < 0.75 < tied
        assert abs(tied / measured - 1) < 0.04, (step, tied)


def test_dropout_moments() -> None:
    d = Dropout(0.5)
    assert d.moments(2.0, 0.5, 0.3) == (4.0, 0.5, 0.3)
    assert d.backward_gain() == 2.0
    # AlphaDropout keeps a SELU fixed point (mean 0, variance 1) and its backward is 1/(1 + p·α′²)
    a = Dropout(0.1, alpha=True)
    m, mab, mu = a.moments(1.0, 0.0, 0.0)
    assert math.isclose(m, 1.0, rel_tol=1e-9) and abs(mu) < 1e-12 and abs(mab) < 1e-12
    assert math.isclose(a.backward_gain(), 1 / (1 + 0.1 * 1.7580993408473766 ** 2))
