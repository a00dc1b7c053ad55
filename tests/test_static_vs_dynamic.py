"""The estimate quoted in a finding is within 10x of what the model really measures."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from conftest import FIXTURES, run_cli

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("the dynamic check needs torch and keras (make setup-test installs them)", allow_module_level=True)

CASES = [
    "keras/seed_sigmoid_deep.py",     # the seed article's example
    "torch/relu_plain_deep.py",       # 20 plain ReLU layers at PyTorch's default init
    "torch/sigmoid_mlp_attrs.py",
    "torch/tanh_tiny_init.py",
]


@pytest.mark.parametrize("fixture", CASES)
def test_estimate_within_10x_of_measurement(fixture: str) -> None:
    proc = run_cli("--dynamic", "--format", "json", "--seeds", "3", str(FIXTURES / fixture))
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    (finding,) = [d for d in payload["diagnostics"] if "estimate" in d]
    measured = [r for r in payload["dynamic"] if r["status"] == "measured"]
    assert measured, payload["dynamic"]
    ratio = measured[0]["ratio"]
    assert ratio is not None and ratio > 0
    assert abs(finding["estimate"]["log10_gain"] - math.log10(ratio)) <= 1.0, (finding["message"], ratio)
    assert finding["dynamic"]["status"] == "confirmed"
