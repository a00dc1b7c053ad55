"""The generated, measured calibration corpus (tools/measured_corpus.py, docs/measured_corpus.json).

The labels table is committed; these tests check that the generator still writes exactly the
labelled sources (SHA-256 per file), and re-measure a small mixed subset with the labelling
harness: the same label and the same numbers.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import measured_corpus as mc  # noqa: E402

TABLE = mc.load_labels()
BY_FILE = {m["file"]: m for m in TABLE["models"]}


def test_the_generator_writes_the_labelled_sources(tmp_path: Path) -> None:
    configs = [mc.config_of(m) for m in TABLE["models"]]
    assert [c.path for c in configs] == [c.path for c in mc.corpus_configs()]  # same corpus, same order
    written = mc.generate(tmp_path, configs)
    stale = [cfg.path for (cfg, _, sha), entry in zip(written, TABLE["models"], strict=True) if sha != entry["sha256"]]
    assert stale == [], f"relabel: python tools/calibrate.py corpus label ({len(stale)} changed)"
    for _cfg, path, _ in written[:40]:  # real, compilable source files
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_the_table_is_complete_and_balanced() -> None:
    counts = TABLE["counts"]
    assert "error" not in counts
    assert sum(counts.values()) == len(TABLE["models"]) >= 300
    for label in ("healthy", "vanishing", "exploding", "symmetric"):
        assert counts.get(label, 0) >= 30, counts
    configs = [mc.config_of(m) for m in TABLE["models"]]
    for factor, levels in (("act", mc.ACTIVATIONS), ("init", mc.INITS), ("width", mc.WIDTHS), ("depth", mc.DEPTHS),
                           ("norm", mc.NORMS), ("residual", mc.RESIDUALS), ("head", mc.HEADS)):
        assert {getattr(c, factor) for c in configs} >= set(levels), factor  # named cases may add levels
    assert {c.framework for c in configs} == {"torch", "keras"}


def _pick() -> list[str]:
    """A few models of each label (and one Keras model), deterministic, small ones first."""
    chosen: list[str] = []
    for label in ("healthy", "vanishing", "exploding", "symmetric", "borderline"):
        entries = sorted((m for m in TABLE["models"] if m["label"] == label and m["framework"] == "torch"),
                         key=lambda m: (m["config"]["width"] * m["config"]["depth"], m["file"]))
        chosen += [m["file"] for m in entries[:2]]
    keras_models = sorted((m for m in TABLE["models"] if m["framework"] == "keras"),
                          key=lambda m: (m["config"]["width"] * m["config"]["depth"], m["file"]))
    return chosen + [keras_models[0]["file"]]


@pytest.mark.parametrize("file", _pick())
def test_a_subset_measures_the_same(file: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    entry = BY_FILE[file]
    cfg = mc.config_of(entry)
    ((_, path, _),) = mc.generate(tmp_path, [cfg])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = mc.measure(path, cfg.framework)
    finally:
        torch.set_num_threads(threads)
    assert again["label"] == entry["label"], (again["reason"], entry["reason"])
    for key in ("ratio", "loss", "relative_grad", "first_relative_grad"):
        old, new = mc.number(entry["measured"][key]), mc.number(again["measured"][key])
        if old is None or new is None or not (math.isfinite(old) and math.isfinite(new)) or old == 0:
            assert old == new or (old is not None and new is not None and math.isnan(old) and math.isnan(new)), key
        else:
            assert new == pytest.approx(old, rel=2e-2), key
