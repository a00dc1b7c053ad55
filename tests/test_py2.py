"""Python 2 scripts are read as Python 3 line for line (gradlint/py2.py) and their models checked."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from gradlint.py2 import python3_reading

from conftest import run_cli

PY2_SCRIPT = '''import sys
import torch.nn as nn

model = nn.Sequential()
for i in xrange(12):
    model.add_module("fc%d" % i, nn.Linear(64, 64))
    model.add_module("act%d" % i, nn.Sigmoid())
print "built", len(model)
try:
    open("weights.pt")
except IOError, e:
    print >>sys.stderr, "no weights:", e
'''


@pytest.mark.parametrize("source, expected", [
    ('print "a", b\n', 'print("a", b)\n'),
    ("print x,\n", "print(x,)\n"),
    ("print >>f, x\n", "print(f, x)\n"),
    ("print -x\n", "print(-x)\n"),
    ("try:\n    f()\nexcept (IOError, OSError), e:\n    pass\n",
     "try:\n    f()\nexcept (IOError, OSError) as e:\n    pass\n"),
    ("try:\n    f()\nexcept ValueError, e: print e\n", "try:\n    f()\nexcept ValueError as e: print(e)\n"),
    ('raise ValueError, "boom"\n', 'raise ValueError("boom")\n'),
    ('exec "x = 1"\n', 'exec("x = 1")\n'),
    ("for i in range(3): print i\n", "for i in range(3): print(i)\n"),
    ('print "multi", (1,\n       2)  # note\n', 'print("multi", (1,\n       2))  # note\n'),
])
def test_statements_rewritten_in_place(source: str, expected: str) -> None:
    reading = python3_reading(source)
    assert reading is not None and reading.text == expected
    assert reading.text.count("\n") == source.count("\n")
    ast.parse(reading.text)


@pytest.mark.parametrize("source", [
    'print("fine")\n', "print\n", "print = log\n", "x = print\n", "print.__doc__\n",
    'def f():\n    """print "not code" here"""\n', "d = {'except': 1, 'print': 2}\n",
    "try:\n    f()\nexcept (IOError, OSError) as e:\n    pass\n",
])
def test_python3_is_left_alone(source: str) -> None:
    assert python3_reading(source) is None


def _lint(tmp_path: Path, source: str, *extra: str) -> tuple[int, list[dict[str, object]]]:
    path = tmp_path / "script.py"
    path.write_text(source, encoding="utf-8")
    proc = run_cli("--no-cache", "--format", "json", *extra, str(path))
    return proc.returncode, json.loads(proc.stdout)["diagnostics"]


def test_python2_script_is_linted_with_a_note(tmp_path: Path) -> None:
    code, diagnostics = _lint(tmp_path, PY2_SCRIPT)
    by_code = {d["code"]: d for d in diagnostics}
    assert code == 1 and set(by_code) == {"GRD001", "GRD904"}
    assert by_code["GRD001"]["line"] == 6  # the file's own line: nothing moved
    note = by_code["GRD904"]
    assert note["severity"] == "info" and note["line"] == 8
    assert "2 print statements (lines 8, 12)" in note["message"] and "`except X, e` (line 11)" in note["message"]


def test_the_note_alone_never_fails_the_run(tmp_path: Path) -> None:
    code, diagnostics = _lint(tmp_path, 'import torch.nn as nn\nnet = nn.Linear(3, 4)\nprint "ok"\n')
    assert code == 0 and [d["code"] for d in diagnostics] == ["GRD904"]
    code, diagnostics = _lint(tmp_path, 'import torch.nn as nn\nnet = nn.Linear(3, 4)\nprint "ok"\n',
                              "--ignore", "python2-syntax")
    assert code == 0 and diagnostics == []


def test_other_syntax_errors_keep_their_own_location(tmp_path: Path) -> None:
    source = 'import torch.nn as nn\nprint "a"\nnet = nn.Linear(3, 4\nx = 1\n'
    code, diagnostics = _lint(tmp_path, source)
    assert code == 1 and [d["code"] for d in diagnostics] == ["GRD901"]
    assert diagnostics[0]["line"] == 2  # Python's own report for the original text
