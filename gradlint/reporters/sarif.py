"""SARIF 2.1.0 output, as GitHub code scanning and other SARIF viewers read it."""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

from gradlint import __version__
from gradlint.diagnostics import Diagnostic
from gradlint.reporters.report import Report, printable_tree
from gradlint.rule import SYSTEM_CODES, Severity, all_rules

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule_descriptors() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for code, rule in all_rules().items():
        docs = rule.docs()
        out.append({
            "id": code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.what_it_does.strip()},
            "help": {"text": docs, "markdown": docs},
            "defaultConfiguration": {"level": "warning", "enabled": rule.default_enabled},
            "properties": {"tags": ["gradient-flow"], "fixable": rule.fixable},
        })
    for code, (name, text) in SYSTEM_CODES.items():
        out.append({
            "id": code,
            "name": name,
            "shortDescription": {"text": text},
            "fullDescription": {"text": text},
            "help": {"text": text},
            "defaultConfiguration": {"level": "error" if code != "GRD100" else "warning",
                                     "enabled": code != "GRD100"},
        })
    return out


def _uri(path: str) -> str:
    """Repository-relative URIs with forward slashes (what code scanning matches files by)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = path
    # Percent-encoded bytes (RFC 3986): a file name that is not UTF-8 stays exact and valid.
    if rel.startswith(".."):
        return "file://" + urllib.parse.quote(os.fsencode(Path(os.path.abspath(path)).as_posix()), safe="/")
    return urllib.parse.quote(os.fsencode(Path(rel).as_posix()), safe="/")


def _notebook_region(diag: Diagnostic) -> tuple[tuple[int, int], tuple[int, int]]:
    from gradlint.notebook import raw_location

    assert diag.cell is not None
    start = raw_location(diag.path, diag.cell, diag.line, diag.column)
    if diag.end_line == diag.line:
        return start, (start[0], start[1] + max(diag.end_column - diag.column, 0))
    return start, raw_location(diag.path, diag.cell, diag.end_line, diag.end_column)


def render_sarif(report: Report) -> str:
    rules = _rule_descriptors()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for diag in report.diagnostics:
        start, end = (diag.line, diag.column), (diag.end_line, diag.end_column)
        message = diag.message
        if diag.cell is not None:
            # SARIF has no notebook cells: the region points into the .ipynb file as stored
            # (the JSON string holding the line), the cell is named in the message, a
            # logical location and properties (docs/notebooks.md says what viewers show).
            start, end = _notebook_region(diag)
            message = f"{message} [notebook cell {diag.cell}, line {diag.line}]"
        region = {"startLine": max(start[0], 1), "startColumn": max(start[1], 1)}
        if end >= start:
            region["endLine"] = max(end[0], 1)
            region["endColumn"] = max(end[1], 1)
        location: dict[str, object] = {"physicalLocation": {
            "artifactLocation": {"uri": _uri(diag.path), "uriBaseId": "%SRCROOT%"},
            "region": region,
        }}
        if diag.cell is not None:
            location["logicalLocations"] = [{"name": f"cell {diag.cell}", "kind": "module",
                                             "fullyQualifiedName": f"{_uri(diag.path)}:cell {diag.cell}"}]
        result: dict[str, object] = {
            "ruleId": diag.code,
            "ruleIndex": index[diag.code],
            "level": _LEVEL[diag.severity],
            "message": {"text": message},
            "locations": [location],
        }
        if diag.fingerprint:
            result["partialFingerprints"] = {"gradlintFinding/v1": diag.fingerprint}
        properties: dict[str, object] = {}
        if diag.cell is not None:
            properties.update(cell=diag.cell, cellLine=diag.line, cellColumn=diag.column)
        if diag.model:
            properties["model"] = diag.model
        if diag.estimate is not None:
            properties["estimate"] = diag.estimate.to_json()
        if properties:
            result["properties"] = properties
        results.append(result)
    payload = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gradlint", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://github.com/gradlint/gradlint", "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(printable_tree(payload), indent=2, ensure_ascii=False) + "\n"
