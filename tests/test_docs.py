"""The README's rules table is generated from the rules themselves."""

from __future__ import annotations

import re

from gradlint.cli import rules_markdown

from conftest import ROOT


def test_readme_rules_table_in_sync() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- rules-table:start[^>]*-->\n(.*?)<!-- rules-table:end -->", readme, re.DOTALL)
    assert match, "README lacks the rules-table markers"
    assert match.group(1) == rules_markdown(), "README rules table is stale: paste `gradlint rules --format markdown`"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme


def test_readme_inspect_example_is_the_real_output() -> None:
    from conftest import run_cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "gradlint inspect fixtures/keras/seed_sigmoid_deep.py"
    match = re.search(rf"```\n\$ {re.escape(command)}\n(.*?)\n```", readme, re.DOTALL)
    assert match, "README lacks the `gradlint inspect` example"
    proc = run_cli(*command.split()[1:])
    assert proc.returncode == 0, proc.stderr
    assert match.group(1) == proc.stdout.rstrip("\n"), "README inspect example is stale: paste the real output"
