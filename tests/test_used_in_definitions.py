"""``SyntaxIndex.is_used_in_definitions`` (a text search, then walks of the definitions that spell
the name) answers exactly what the walk of every definition (``used_in_definitions``) answers."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from gradlint.extract.syntax_index import SyntaxIndex

CRAFTED = {
    "decorators_and_defaults": (
        "import torch.nn as nn\n\n@register(Block)\nclass Net(nn.Module):\n    pass\n\n"
        "class Block(nn.Module):\n    pass\n\ndef make(depth=DEPTH, cls=Net):\n    return Helper()\n\n"
        "def Helper():\n    return Helper\n"),
    "only_in_strings_and_attributes": (
        "class Net:\n    '''Builds a Net and a Block.'''\n    def f(self):\n        return self.Block  # Block\n\n"
        "class Block:\n    x = 'Net'\n"),
    "prefixes_and_suffixes": "class Net:\n    pass\n\nclass NetBlock:\n    y = MyNet + Net_2 + Net2\n",
    "windows_newlines": "class Net:\r\n    pass\r\n\r\ndef build():\r\n    return Net()\r\n",
    "lone_carriage_return": "class Net:\r    pass\r\rdef build():\r    return Net()\r",
    "non_ascii_identifier": "class ﬁle:\n    pass\n\ndef build():\n    return ﬁle()\n",
    "fullwidth_spelling": "class Net:\n    pass\n\ndef build():\n    return Ｎｅｔ()\n",
    "non_ascii_before_the_name": "class Net:\n    pass\n\ndef build():\n    s = 'é—ü'; return Net()  # ß\n",
    "semicolons_and_one_liners": "class A: pass\nclass B: x = A; y = C\ndef C(): return B\n",
    "f_strings": ('class Net:\n    pass\n\ndef f(x):\n    return f"{Net} {x!r:>{Width}}"\n\n'
                  'def g():\n    return (f"""\n  {Other}\n"""\n            f"{Net2}")\n'),
    "nested_decorated_definitions": ("class Outer:\n    @staticmethod\n    @wrap(Inner)\n    def make():\n"
                                     "        return 1\n\nclass Inner:\n    pass\n"),
    "redefined_name": "class Net:\n    pass\n\nclass Net:\n    z = Net\n\ndef f():\n    return g\n",
}


def _names(tree: ast.Module) -> set[str]:
    out = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    out |= {s.name for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return out | {"missing_name"}


def _check(text: str) -> None:
    tree = ast.parse(text)
    expected = SyntaxIndex(tree, None).used_in_definitions
    lazy = SyntaxIndex(tree, text)
    for name in sorted(_names(tree)):
        assert lazy.is_used_in_definitions(name) == (name in expected), name


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_lazy_answer_matches_the_full_walk_on_crafted_sources(case: str) -> None:
    _check(CRAFTED[case])


def test_lazy_answer_matches_the_full_walk_on_real_model_code() -> None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        pytest.skip("torchvision is not installed")
    files = sorted((Path(spec.origin).parent / "models").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        _check(path.read_text(encoding="utf-8"))
