"""GRD801 (measured-gradient-problem) through the real command line with --dynamic.

Its Valid/Invalid cases cannot run statically (the rule never fires without a measurement), so
this file runs them: the Example is reported with GRD801 at the case's line and nothing else,
exit 1, in every output format; the Use instead is clean; a problem a static finding already
explains is not reported twice; ``# noqa: GRD801`` silences it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gradlint.rule import all_rules

from conftest import run_cli

pytest.importorskip("torch")
RULE = all_rules()["GRD801"]


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


def test_the_rule_is_measured_and_documented() -> None:
    assert RULE.measured and RULE.code == "GRD801"
    proc = run_cli("explain", "GRD801")
    assert proc.returncode == 0 and "## How it is measured" in proc.stdout and "1e-7" in proc.stdout


def test_example_fires_in_every_format_and_fails_ci(tmp_path: Path) -> None:
    case = RULE.example_case()
    path = _write(tmp_path, "example.py", case.source)
    static = run_cli("--no-cache", "--isolated", "--select", "ALL", str(path))
    assert static.returncode == 0, static.stdout  # nothing statically: the activation is chosen at run time
    proc = run_cli("--no-cache", "--isolated", "--select", "ALL", "--dynamic", "--format", "json", str(path))
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    found = payload["diagnostics"]
    assert [(d["code"], d["line"], d["severity"]) for d in found] == [("GRD801", case.line, "error")]
    assert case.message and re.search(case.message, found[0]["message"]), found[0]["message"]
    assert found[0]["dynamic"]["verdict"] == "vanishing" and found[0]["fingerprint"]
    outputs = {}
    for fmt, marker in (("text", f"{case.line}:1: GRD801"), ("github", "::error file="),
                        ("sarif", '"ruleId": "GRD801"')):
        out = run_cli("--no-cache", "--isolated", "--dynamic", "--format", fmt, str(path))
        assert out.returncode == 1 and marker in out.stdout, (fmt, out.stdout[-2000:])
        outputs[fmt] = out.stdout
    sarif = json.loads(outputs["sarif"])
    assert [(r["ruleId"], r["level"]) for r in sarif["runs"][0]["results"]] == [("GRD801", "error")]


def test_use_instead_is_clean_with_dynamic(tmp_path: Path) -> None:
    path = _write(tmp_path, "fixed.py", RULE.use_instead_case().source)
    proc = run_cli("--no-cache", "--isolated", "--select", "ALL", "--dynamic", "--format", "json", str(path))
    assert proc.returncode == 0, proc.stdout
    payload = json.loads(proc.stdout)
    assert payload["diagnostics"] == [] and payload["dynamic"][0]["verdict"] == "healthy"


STATIC_SIGMOID = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Linear(32, 128), nn.Sigmoid()]
        for _ in range(11):
            layers += [nn.Linear(128, 128), nn.Sigmoid()]
        self.body = nn.Sequential(*layers, nn.Linear(128, 10))

    def forward(self, x):
        return self.body(x)
"""


def test_a_problem_a_static_finding_explains_is_not_reported_twice(tmp_path: Path) -> None:
    path = _write(tmp_path, "sigmoid.py", STATIC_SIGMOID)
    proc = run_cli("--no-cache", "--isolated", "--dynamic", "--format", "json", str(path))
    payload = json.loads(proc.stdout)
    codes = [d["code"] for d in payload["diagnostics"]]
    assert codes and "GRD801" not in codes, codes
    assert payload["dynamic"][0]["verdict"] == "vanishing"
    assert all(d["dynamic"]["status"] == "confirmed" for d in payload["diagnostics"])


def test_noqa_and_ignore_silence_it(tmp_path: Path) -> None:
    case = RULE.example_case()
    lines = case.source.splitlines()
    lines[case.line - 1] += "  # noqa: GRD801"
    path = _write(tmp_path, "quiet.py", "\n".join(lines) + "\n")
    assert run_cli("--no-cache", "--isolated", "--dynamic", str(path)).returncode == 0
    loud = _write(tmp_path, "loud.py", case.source)
    assert run_cli("--no-cache", "--isolated", "--dynamic", "--ignore", "GRD801", str(loud)).returncode == 0
