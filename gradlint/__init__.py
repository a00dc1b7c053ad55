"""gradlint: find vanishing and exploding gradients in model definitions before training."""

__version__ = "0.1.0"
