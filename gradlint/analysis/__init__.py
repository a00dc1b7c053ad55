"""Shared reasoning over a model description, for rules. One module per concern:

* ``units``      weight units (a weight layer with its activation and norm)
* ``inits``      init semantics: σ_w²/σ_b² of a unit, which init matches which activation
* ``flow``       the main path as one chain of propagation items, split only at barriers
* ``estimation`` a ratio over a list of units; one plain-RNN step
* ``triage``     the protocol's verdict per segment, one ``Cause`` each, and the cause → rule table

The value object ``Estimate`` lives in ``gradlint.estimate`` (below the model description),
so the output layer can carry estimates without importing this package.
"""
