"""Precision on real, well-built model code: torchvision, timm, Keras applications, transformers.

The packages are installed from the package index (see requirements/precision.txt) and read
in place from site-packages; gradlint never imports them. A warning here is a false alarm
unless it is listed in JUSTIFIED with a written reason.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from gradlint.engine import LintConfig, lint_paths
from gradlint.rule import Severity

# (package, sub-directories to lint)
TARGETS = [
    ("torchvision", ("models", "ops")),
    ("timm", ("models", "layers")),
    ("keras", ("src/applications",)),
    # All of transformers/models takes ~50 s cold: too slow for every run. These directories carry
    # what transformers code does that the others do not: custom layers in sibling modules whose
    # zero-filled weights `_init_weights` rewrites through `post_init()` of a base class gradlint
    # never reads (ibert's quant_modules, data2vec's audio/text/vision files, maskformer's swin,
    # idefics' perceiver and vision), layer counts from a config (every encoder), and conv feature
    # encoders (wav2vec2), detection heads (deformable_detr). The full directory is checked by hand
    # before a release (README, Precision).
    ("transformers", ("models/ibert", "models/bert", "models/data2vec", "models/maskformer", "models/idefics",
                      "models/wav2vec2", "models/deformable_detr")),
]

# path suffix -> (code, reason). Every entry needs a reason a reviewer can check.
JUSTIFIED: dict[tuple[str, str], str] = {}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name) if name != "keras" else importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _find_without_import(name: str) -> Path | None:
    # find_spec on a top-level name does not execute the package.
    try:
        return _package_dir(name)
    except (ImportError, ValueError):
        return None


@pytest.mark.parametrize("package,subdirs", TARGETS, ids=[t[0] for t in TARGETS])
def test_no_warnings_on_well_built_models(package: str, subdirs: tuple[str, ...]) -> None:
    root = _find_without_import(package)
    if root is None:
        pytest.skip(f"{package} is not installed (make setup-test installs it)")
    paths = [str(root / sub) for sub in subdirs if (root / sub).is_dir()]
    assert paths, f"{package} has none of {subdirs}"
    results = list(lint_paths(paths, LintConfig()))
    models = sum(len(r.models) for r in results)
    assert models > 10 or package == "keras", f"only {models} models extracted from {package}: extraction broke"
    unexpected = []
    for result in results:
        for diag in result.diagnostics:
            if diag.severity == Severity.INFO:
                continue
            rel = os.path.relpath(diag.path, root)
            if (rel, diag.code) in JUSTIFIED:
                continue
            unexpected.append(f"{rel}:{diag.line}: {diag.code} {diag.message}")
    assert not unexpected, "\n".join(unexpected)
