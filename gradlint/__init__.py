"""gradlint: find vanishing and exploding gradients in model definitions before training."""

__version__ = "0.1.0"
__all__ = ["__version__", "check_model"]

TYPE_CHECKING = False  # not `from typing import ...`: importing typing would slow `import gradlint`
if TYPE_CHECKING:
    from gradlint.live import check_model


def __getattr__(name: str) -> object:
    # `gradlint.check_model` measures a live model (torch, keras, matplotlib): imported on
    # first use only, so `import gradlint` and the static path never load them (PEP 562).
    if name == "check_model":
        from gradlint.live import check_model

        return check_model
    raise AttributeError(f"module 'gradlint' has no attribute {name!r}")
