"""Shared reasoning over a model description, for rules. One module per concern:

* ``units``      weight units (a weight layer with its activation and norm) and plain runs
* ``inits``      init semantics: σ_w²/σ_b² of a unit, which init matches which activation
* ``estimation`` glue from units to ``gradlint.gradflow`` chains and back to ``Estimate``
* ``triage``     diagnoses with one ``Cause`` each, and the cause → rule ownership table

The value object ``Estimate`` lives in ``gradlint.estimate`` (below the model description),
so the output layer can carry estimates without importing this package.
"""
