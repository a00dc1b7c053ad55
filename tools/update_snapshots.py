"""Rewrite the fixture snapshots (``fixtures/**/*.expected``) from gradlint's current output.

The format and the comparison live in tests/test_fixtures.py; this runs that test with
``--update-snapshots`` so there is one definition. Review ``git diff fixtures/`` before
committing: a line changes only when a finding or its message really should.

Usage: python tools/update_snapshots.py [extra pytest arguments, e.g. -k keras]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fixtures.py",
               "-k", "test_fixture_matches_expected or test_every_snapshot_has_its_fixture", "--update-snapshots",
               *sys.argv[1:]]
    code = subprocess.run(command, cwd=ROOT).returncode
    if code == 0:
        diff = subprocess.run(["git", "diff", "--stat", "--", "fixtures"], cwd=ROOT, capture_output=True, text=True)
        print(diff.stdout.strip() or "snapshots unchanged")
    return code


if __name__ == "__main__":
    sys.exit(main())
