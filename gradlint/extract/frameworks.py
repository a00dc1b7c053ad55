"""The registered framework handlers, in the order the interpreter consults them.

A framework (PyTorch, Keras, TensorFlow graph code, ...) is one module with a ``Framework``
handler (``gradlint.extract.api``): add it here, and the interpreter hands it every call under its
qualified-name prefixes, method calls on tensors and parameters, and its model base classes.
"""

from __future__ import annotations

from gradlint.extract.api import Framework
from gradlint.extract.keras import KERAS
from gradlint.extract.tensorflow import TENSORFLOW
from gradlint.extract.torch import TORCH

# TensorFlow before Keras: it claims ``keras.ops.*`` (and hands what it does not model to Keras).
FRAMEWORKS: tuple[Framework, ...] = (TORCH, TENSORFLOW, KERAS)
