"""Static gradlint against the measured labels of both generated corpora (docs/calibration.md).

The labels (docs/measured_corpus.json, docs/style_corpus.json) come from real forward/backward
passes; this test only regenerates the sources and runs the static linter on them (~30 s), so a
change to extraction or estimation that loses recall or precision on models written in any of
the corpora's styles fails here, with the disagreements listed. The bars sit just below the
numbers of docs/calibration.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import measured_corpus as mc  # noqa: E402
import style_corpus as sc  # noqa: E402

PROBLEMS = ("vanishing", "exploding", "symmetric")


def _score(table: dict, directory: Path) -> tuple[float, float, float, list[str]]:
    payload = mc.run_gradlint(directory)
    by_file: dict[str, list[dict]] = {}
    for diag in payload.get("diagnostics", []):
        by_file.setdefault(mc._relative(diag["path"], directory), []).append(diag)
    scored = [(m["file"], m["label"], mc.static_class(by_file.get(m["file"], []))) for m in table["models"]
              if m["label"] in mc.SCORED]
    agree = sum(lab == pred for _, lab, pred in scored) / len(scored)
    problems = [pred for _, lab, pred in scored if lab in PROBLEMS]
    recall = sum(p in PROBLEMS for p in problems) / len(problems)
    flagged = [lab for _, lab, pred in scored if pred in PROBLEMS]
    precision = sum(lab in PROBLEMS for lab in flagged) / len(flagged)
    wrong = [f"{f}: measured {lab}, static {pred}" for f, lab, pred in scored if lab != pred]
    return agree, recall, precision, wrong


@pytest.mark.parametrize("corpus", ["measured", "style"])
def test_static_verdicts_agree_with_the_measured_labels(corpus: str, tmp_path: Path) -> None:
    if corpus == "measured":
        table = mc.load_labels()
        written = mc.generate(tmp_path, [mc.config_of(m) for m in table["models"]])
        bars = (0.99, 0.99, 0.99)
    else:
        table = json.loads(sc.LABELS_PATH.read_text(encoding="utf-8"))
        written = sc.generate(tmp_path, [sc.StyleConfig(**m["config"]) for m in table["models"]])
        bars = (0.96, 0.94, 0.98)
    stale = [cfg.path for (cfg, _, sha), m in zip(written, table["models"], strict=True) if sha != m["sha256"]]
    assert not stale, f"sources changed since they were labelled (relabel): {stale[:5]}"
    agree, recall, precision, wrong = _score(table, tmp_path)
    detail = "\n".join(wrong)
    assert agree >= bars[0], f"agreement {agree:.3f}\n{detail}"
    assert recall >= bars[1], f"problem recall {recall:.3f}\n{detail}"
    assert precision >= bars[2], f"problem precision {precision:.3f}\n{detail}"
