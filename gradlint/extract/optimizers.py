"""An optimizer's settings as written: its kind and the learning rate and momentum it will use.

Read from the constructor's arguments (``torch.optim.SGD(params, lr=10)``, Keras ``SGD(learning_rate=...)``
or Keras 2's ``SGD(lr=...)``, TF 1 ``tf.train.GradientDescentOptimizer(0.5)``), or the framework's default
when the argument is left out. A value the interpreter cannot resolve to a number (a variable from the
command line, a schedule object) is None: unknown, never guessed."""

from __future__ import annotations

from gradlint.extract.api import Args, Kwargs
from gradlint.extract.values import Const, Value

# Plain and momentum SGD under their names in torch, Keras and TensorFlow 1.
SGD_KINDS = frozenset({"SGD", "GradientDescentOptimizer", "MomentumOptimizer"})
# The default learning rate of the optimizers whose default is documented and stable (torch 2.x, Keras 3).
_DEFAULT_LR = {
    "torch": {"SGD": 1e-3, "Adam": 1e-3, "AdamW": 1e-3, "RMSprop": 1e-2, "Adagrad": 1e-2},
    "keras": {"SGD": 1e-2, "Adam": 1e-3, "AdamW": 1e-3, "RMSprop": 1e-3, "Adagrad": 1e-3, "Nadam": 1e-3,
              "Adamax": 1e-3},
}
# Keras ``compile(optimizer="sgd")``: the string names the class with its defaults.
KERAS_OPTIMIZER_STRINGS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
                           "adagrad": "Adagrad", "nadam": "Nadam", "adamax": "Adamax"}


def _number(value: Value | None) -> float | None:
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        return float(value.value)
    return None


def _setting(args: Args, kwargs: Kwargs, names: tuple[str, ...], position: int) -> tuple[bool, float | None]:
    """(written, value): whether the argument is given, and its number when it resolves to one."""
    for name in names:
        if name in kwargs:
            return True, _number(kwargs[name])
    if len(args) > position:
        return True, _number(args[position])
    return False, None


def settings(framework: str, leaf: str, args: Args, kwargs: Kwargs) -> tuple[float | None, float | None]:
    """(learning rate, momentum) of an optimizer built as ``leaf(*args, **kwargs)`` in ``framework``
    (``torch``: the parameters come first; ``keras`` / ``tensorflow``: the learning rate does)."""
    first = 1 if framework == "torch" else 0
    written, lr = _setting(args, kwargs, ("lr", "learning_rate"), first)
    if not written:
        lr = _DEFAULT_LR.get(framework, {}).get(leaf)
    momentum: float | None = 0.0
    if leaf in SGD_KINDS:
        written, momentum = _setting(args, kwargs, ("momentum",), first + 1)
        if not written:
            momentum = None if leaf == "MomentumOptimizer" else 0.0
    return lr, momentum
