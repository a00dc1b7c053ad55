"""The dynamic check on models whose forward stops the gradient: a weight layer that autograd leaves
without any gradient (``.grad`` unset: a detach, ``no_grad`` or stop_gradient on every path) is
reported as such — named; vanishing when it is the first weight layer, as the protocol's first-layer
‖∂W‖/‖W‖ reads it — while a zero gradient that is connected (a zero-initialised branch end) stays
healthy. Static GRD012 findings on the same models are confirmed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gradlint.dynamic import DynamicOptions, DynamicResult, DynamicTarget, InputHint, run_dynamic

pytest.importorskip("torch")
MODELS = Path(__file__).parent / "models"
FILE = str(MODELS / "gradient_stops.py")
FEATURES = InputHint("features", (16,))


def _target(symbol: str, kind: str = "class", framework: str = "torch") -> DynamicTarget:
    return DynamicTarget(path=FILE, model=symbol, line=1, kind=kind, symbol=symbol, framework=framework,
                         input_hint=FEATURES)


@pytest.fixture(scope="module")
def results() -> dict[str, DynamicResult]:
    targets = [_target("DetachMiddle"), _target("DetachBranch"), _target("DetachedOutput"),
               _target("ZeroInitBranch"), _target("keras_stopped", "factory", "keras")]
    measured = run_dynamic(targets, DynamicOptions(seeds=2, jobs=2, timeout=120))
    return {r.model: r for r in measured}


def _disconnected(result: DynamicResult) -> list[str]:
    return [layer.name for layer in result.layers if not layer.connected]


def test_a_detached_first_layer_is_named(results: dict[str, DynamicResult]) -> None:
    r = results["DetachMiddle"]
    assert r.status == "measured" and r.verdict == "vanishing", r.reason
    assert _disconnected(r) == ["fc1"] and "fc1" in (r.reason or "")


def test_a_detached_branch_is_named_as_evidence(results: dict[str, DynamicResult]) -> None:
    """First and last layers are fine (ratio ~0.4): the protocol's label is healthy (it reads the first
    layer's gradient, as for an EMA teacher run under no_grad beside the model), and the layer nothing
    reaches is named in the evidence (a static GRD012 on it is confirmed: test_static_grd012...)."""
    r = results["DetachBranch"]
    assert r.verdict == "healthy" and _disconnected(r) == ["branch"], r.reason
    assert any("no gradient at all reaches 1 weight layer(s): branch" in e for e in r.evidence), r.evidence


def test_a_wholly_detached_output_is_measured_not_skipped(results: dict[str, DynamicResult]) -> None:
    r = results["DetachedOutput"]
    assert r.status == "measured" and r.verdict == "vanishing", r.reason
    assert _disconnected(r) == ["fc1", "fc2"]


def test_a_zero_but_connected_gradient_is_not_disconnected(results: dict[str, DynamicResult]) -> None:
    r = results["ZeroInitBranch"]
    assert r.status == "measured" and not _disconnected(r) and r.verdict == "healthy", r.reason


def test_keras_stop_gradient(results: dict[str, DynamicResult]) -> None:
    r = results["keras_stopped"]
    assert r.status == "measured" and r.verdict == "vanishing", r.reason
    assert len(_disconnected(r)) == 1 and _disconnected(r)[0] == r.layers[0].name


def test_static_grd012_is_confirmed(tmp_path: Path) -> None:
    from conftest import run_cli

    source = tmp_path / "net.py"
    source.write_text((MODELS / "gradient_stops.py").read_text(encoding="utf-8").split("class DetachBranch")[0],
                      encoding="utf-8")
    proc = run_cli("--no-cache", "--dynamic", "--seeds", "1", str(source))
    lines = [line for line in proc.stdout.splitlines() if " GRD012 " in line]
    assert len(lines) == 1 and "dynamic: confirmed" in lines[0], proc.stdout
    assert "GRD801" not in proc.stdout
