"""``from keras.layers import *`` / ``from torch.nn import *``: a star import of a framework module
binds the names its explicit import would (catalog.STAR_EXPORTS), so script-style code that
star-imports reads as the same model; names the catalog does not know stay UNKNOWN."""

from __future__ import annotations

import importlib
import os
import textwrap

import pytest

from gradlint.engine import lint_source
from gradlint.extract import catalog


def _codes(source: str) -> tuple[list[str], int]:
    result = lint_source(textwrap.dedent(source), "star.py")
    return sorted(d.code for d in result.diagnostics), len(result.models)


KERAS_BODY = """
model = Sequential()
model.add(Dense(128, input_dim=20))
model.add(Activation('{act}'))
for i in range(8):
    model.add(Dense(128))
    model.add(Activation('{act}'))
model.add(Dense(1, activation='sigmoid'))
model.compile(loss='binary_crossentropy', optimizer=SGD(lr=0.01))
"""


@pytest.mark.parametrize("head", [
    "from keras.models import *\nfrom keras.layers import *\nfrom keras.optimizers import *\n",
    "from tensorflow.keras.models import *\nfrom tensorflow.keras.layers import *\n"
    "from tensorflow.keras.optimizers import SGD\n",
])
def test_keras_star_imports_read_like_explicit_ones(head: str) -> None:
    explicit = "from keras.models import Sequential\nfrom keras.layers import Dense, Activation\n" \
               "from keras.optimizers import SGD\n"
    for act, flagged in (("sigmoid", True), ("relu", False)):
        star = _codes(head + KERAS_BODY.format(act=act))
        assert star == _codes(explicit + KERAS_BODY.format(act=act))
        assert star[1] == 1 and ("GRD001" in star[0]) is flagged, star


def test_torch_nn_star_import() -> None:
    source = """
    import torch
    from torch.nn import *

    layers = []
    for _ in range(10):
        layers += [Linear(128, 128), Sigmoid()]
    model = Sequential(*layers)
    for m in model.modules():
        if isinstance(m, Linear):
            init.zeros_(m.bias)
    """
    codes, models = _codes(source)
    assert models == 1 and "GRD001" in codes, codes


def test_a_name_the_catalog_does_not_know_stays_unknown() -> None:
    # MyBlock is not a keras.layers name gradlint knows: the model is not guessed through it.
    source = """
    from keras.models import *
    from keras.layers import *

    model = Sequential()
    model.add(Dense(64, input_dim=8, activation='sigmoid'))
    for _ in range(10):
        model.add(MyBlock(64))
        model.add(Dense(64, activation='sigmoid'))
    model.add(Dense(1))
    """
    codes, _ = _codes(source)
    assert "GRD001" not in codes, codes


def test_a_later_definition_shadows_a_star_imported_name() -> None:
    source = """
    from torch.nn import *

    class Sigmoid(Module):
        def forward(self, x):
            return x.clamp(min=0)

    model = Sequential(*[m for _ in range(12) for m in (Linear(64, 64), Sigmoid())])
    """
    codes, _ = _codes(source)
    assert "GRD001" not in codes, codes


@pytest.mark.parametrize("module", sorted(catalog.STAR_EXPORTS))
def test_star_exports_are_names_the_real_module_exports(module: str) -> None:
    """Every name bound for a star import is one the installed framework module really has."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        real = importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} not installed")
    exported = set(getattr(real, "__all__", None) or [n for n in dir(real) if not n.startswith("_")])
    missing = sorted(catalog.STAR_EXPORTS[module] - exported)
    assert not missing, f"{module} does not export {missing}"
