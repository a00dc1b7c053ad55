"""No module of ``gradlint/`` or ``rules/`` grows past the size a reader can hold (issue 10: "no module
over ~800 lines"): when one does, split it by concern, as extract/ and analysis/ were split."""

from __future__ import annotations

from conftest import ROOT

MAX_LINES = 850  # "~800": a little slack, so that a fix of a few lines need not wait for a split


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for package in ("gradlint", "rules") for path in sorted((ROOT / package).rglob("*.py"))}
    assert len(sizes) > 100
    too_long = {path: lines for path, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"split these by concern: {too_long}"
