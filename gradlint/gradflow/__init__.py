"""Static gradient-flow estimator (mean-field theory at initialization).

Predicts, from layer types and init schemes only, how the gradient norm changes
from the last weight layer of a network back to the first.  Pure stdlib on
purpose: this module runs inside a pre-commit hook, where importing numpy or a
deep-learning framework would cost seconds and heavy dependencies.

Theory (Poole et al. 2016; Schoenholz et al. 2017; see docs/calibration.md):

* ``σ_w² = fan_in · Var(W)``; ``σ_b² = Var(b)``.
* forward, tracked from the input (not only at the fixed point):
  ``q_l = σ_w,l² · m_{l-1} + σ_b,l²`` with ``m_l = E[φ_l(√q_l z)²]`` the second
  moment of the layer's output and ``m_0 = input_q``.
* backward: ``‖δ_l‖² = ‖δ_{l+1}‖² · σ_w,l+1² · E[φ_l′(√q_l z)²]`` where
  ``δ_l = ∂L/∂h_l`` is the gradient at the output of weight layer *l*
  (before its normalization, if any; normalization divides by its input std).
* weight gradient: ``‖∂L/∂W_l‖ ≈ ‖δ_l‖ · ‖x_l‖`` with ``‖x_l‖² = fan_in_l · m_{l-1}``
  per example.
* two examples of a batch: the same recursions for the cross-covariance q_ab
  (shared per-unit offsets from biases and from activations with a nonzero
  mean).  BatchNorm removes it (and divides by √(q − q_ab), not √q); summed
  over a batch of B, weight gradients gain a coherent term (B−1)·ρ_δ·ρ_x, which
  is large for deep layers and absent for the first layer (independent inputs).

Calibrated against 636 torch MLP configurations: all within 10× (RMS error
0.11–0.16 decades) except a documented finite-width regime; see
docs/calibration.md.

Conventions ("first"/"last"): ratios are first weight layer over last weight
layer in execution order, where the last weight layer is the output head
(the final ``Linear``/``Dense``/conv, whatever its activation).  The first
layer whose gradient is structurally zero at init (inside a zero-initialised
residual branch) is skipped; this is recorded in ``assumptions``.
"""

from __future__ import annotations

from gradlint.gradflow.activations import (
    _SELU_ALPHA as _SELU_ALPHA,  # for tests and tools/calibration_support.py
)
from gradlint.gradflow.activations import (
    _SELU_SCALE as _SELU_SCALE,  # for tests and tools/calibration_support.py
)
from gradlint.gradflow.activations import (
    ACTIVATION_ALIASES,
    ACTIVATIONS,
    SATURATING,
    activation_alias,
    activation_moments,
    canonical_activation,
    per_layer_bound,
    relu_family,
)
from gradlint.gradflow.activations import (
    _act_stats as _act_stats,  # for tests and tools/calibration_support.py
)
from gradlint.gradflow.activations import (
    _hermite as _hermite,  # for tests and tools/calibration_support.py
)
from gradlint.gradflow.chain import (
    DEFAULT_BATCH_SIZE,
    ChainEstimate,
    LayerEstimate,
    ResidualBlock,
    WeightLayer,
    estimate_chain,
)
from gradlint.gradflow.chain import (
    _run as _run,  # for tests and tools/calibration_support.py
)
from gradlint.gradflow.inits import init_sigma_w2, init_weight_mean, torch_default_bias_var, torch_gain
from gradlint.gradflow.quadrature import gaussian_expectation, hermite_rule

__all__ = [
    "ACTIVATIONS",
    "hermite_rule",
    "ACTIVATION_ALIASES",
    "DEFAULT_BATCH_SIZE",
    "SATURATING",
    "ChainEstimate",
    "LayerEstimate",
    "ResidualBlock",
    "WeightLayer",
    "activation_alias",
    "activation_moments",
    "canonical_activation",
    "relu_family",
    "estimate_chain",
    "gaussian_expectation",
    "init_sigma_w2",
    "init_weight_mean",
    "per_layer_bound",
    "torch_default_bias_var",
    "torch_gain",
]

