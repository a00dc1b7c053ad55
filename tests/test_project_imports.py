"""Project-wide resolution (issue 12.2): imports of the linted file's own project are read and
interpreted like same-file definitions, never imported or run; findings about an imported
definition are reported in the linted file, at the line that uses it, naming the definition."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

from gradlint.engine import LintConfig, lint_file

from conftest import run_cli

TANH_BLOCK = """
import torch
import torch.nn as nn

WIDTH = 128


class TanhBlock(nn.Module):
    def __init__(self, dim=WIDTH):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        nn.init.normal_(self.fc.weight, std=1.0)

    def forward(self, x):
        return torch.tanh(self.fc(x))
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def lint(path: Path) -> list[tuple[str, int, str]]:
    result = lint_file(str(path), LintConfig(search_roots=(str(path.parent),)))
    return [(d.code, d.line, d.message) for d in result.diagnostics]


def project(tmp_path: Path, train: str, extra: dict[str, str] | None = None) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write(tmp_path, {"models/__init__.py": "", "models/blocks.py": TANH_BLOCK, "train.py": train, **(extra or {})})
    return tmp_path / "train.py"


def test_relative_and_absolute_imports_resolve_and_report_at_the_use(tmp_path: Path) -> None:
    train = project(tmp_path, """
        import torch.nn as nn
        from models.blocks import TanhBlock

        model = nn.Sequential(*[TanhBlock() for _ in range(12)])
    """)
    found = lint(train)
    assert [(c, line) for c, line, _ in found] == [("GRD004", 5)]
    assert "(set in blocks.py:12)" in found[0][2]


def test_module_alias_package_reexport_and_star_import(tmp_path: Path) -> None:
    write(tmp_path, {"models/net.py": """
        import torch.nn as nn
        from .blocks import *

        class Net(nn.Module):
            def __init__(self, depth=12):
                super().__init__()
                self.body = nn.Sequential(*[TanhBlock(WIDTH) for _ in range(depth)])

            def forward(self, x):
                return self.body(x)
    """})
    train = project(tmp_path, """
        import models.net as M

        model = M.Net()
    """, {"models/__init__.py": "from .net import Net\n"})
    assert [(c, line) for c, line, _ in lint(train)] == [("GRD004", 4)]
    (tmp_path / "train.py").write_text("import models\nmodel = models.Net()\n")
    assert [(c, line) for c, line, _ in lint(train)] == [("GRD004", 2)]
    (tmp_path / "train.py").write_text("from models import net\nmodel = net.Net(depth=2)\n")
    assert lint(train) == []  # the call site's 2 wins: too shallow to explode


def test_namespace_package_without_init(tmp_path: Path) -> None:
    write(tmp_path, {"layers/tanh.py": TANH_BLOCK,
                     "train.py": "import torch.nn as nn\nfrom layers.tanh import TanhBlock\n"
                                 "m = nn.Sequential(*[TanhBlock() for _ in range(12)])\n"})
    assert [c for c, _, _ in lint(tmp_path / "train.py")] == ["GRD004"]


def test_missing_module_and_missing_name_stay_unknown(tmp_path: Path) -> None:
    train = project(tmp_path, """
        import torch.nn as nn
        from models.missing import Block
        from models.blocks import NotThere

        model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid(), Block(), NotThere())
                                for _ in range(12)])
    """)
    assert lint(train) == []  # unknown blocks between the sigmoids: never guessed across


def test_import_cycles_end_in_unknown(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/a.py": """
        from .b import B
        A = B
    """, "pkg/b.py": """
        from .a import A
        B = A
    """, "train.py": """
        import torch.nn as nn
        from pkg.a import A
        model = nn.Sequential(nn.Linear(4, 4), A)
    """})
    assert lint(tmp_path / "train.py") == []


def test_nothing_is_imported_or_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    train = project(tmp_path, """
        from models.side import Net
        model = Net()
    """, {"models/side.py": f"""
        import torch.nn as nn
        open({str(marker)!r}, "w").write("imported")
        class Net(nn.Module):
            def forward(self, x):
                return x
    """})
    lint(train)
    assert not marker.exists()


def test_a_modules_own_main_block_and_top_level_models_are_not_this_files(tmp_path: Path) -> None:
    train = project(tmp_path, "from models.script import helper\nx = helper()\n", {"models/script.py": """
        import torch.nn as nn
        deep = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid()) for _ in range(12)])
        def helper():
            return 1
        if __name__ == "__main__":
            other = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid()) for _ in range(12)])
    """})
    assert lint(train) == []


def test_framework_helpers_keep_their_meaning_when_their_module_is_read(tmp_path: Path) -> None:
    # a project copy of timm's trunc_normal_ is still the init it names, not its body's uniform_ step
    train = project(tmp_path, """
        import torch.nn as nn
        from models.init import trunc_normal_
        layers = []
        for _ in range(12):
            lin = nn.Linear(256, 256)
            trunc_normal_(lin.weight, std=0.02)
            layers += [lin, nn.Tanh()]
        model = nn.Sequential(*layers)
    """, {"models/init.py": """
        def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
            tensor.uniform_(-1, 1)
            tensor.erfinv_()
            tensor.mul_(std)
            return tensor
    """})
    messages = [m for _, _, m in lint(train)]
    assert not any("uniform" in m for m in messages), messages


def test_cache_is_invalidated_when_an_imported_module_changes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    train = project(tmp_path, """
        import torch.nn as nn
        from models.blocks import TanhBlock
        model = nn.Sequential(*[TanhBlock() for _ in range(12)])
    """)
    first = run_cli("--format", "json", "--cache-dir", str(cache), str(train))
    assert [d["code"] for d in json.loads(first.stdout)["diagnostics"]] == ["GRD004"]
    blocks = tmp_path / "models" / "blocks.py"
    blocks.write_text(blocks.read_text().replace("nn.init.normal_(self.fc.weight, std=1.0)", "pass"))
    second = run_cli("--format", "json", "--cache-dir", str(cache), str(train))
    assert json.loads(second.stdout)["diagnostics"] == []
    # a module that did not exist and now does changes the result too
    (tmp_path / "train.py").write_text("import torch.nn as nn\nfrom models.late import Deep\nmodel = Deep()\n")
    assert json.loads(run_cli("--format", "json", "--cache-dir", str(cache), str(train)).stdout)["diagnostics"] == []
    (tmp_path / "models" / "late.py").write_text(
        "import torch.nn as nn\ndef Deep():\n    return nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid())"
        " for _ in range(12)])\n")
    third = run_cli("--format", "json", "--cache-dir", str(cache), str(train))
    assert [d["code"] for d in json.loads(third.stdout)["diagnostics"]] == ["GRD001"]


def test_parallel_jobs_give_the_serial_results(tmp_path: Path) -> None:
    files = {"pyproject.toml": "", "models/__init__.py": "", "models/blocks.py": TANH_BLOCK}
    for i in range(30):
        files[f"scripts/train_{i}.py"] = (f"import torch.nn as nn\nfrom models.blocks import TanhBlock\n"
                                         f"model = nn.Sequential(*[TanhBlock() for _ in range({i % 14 + 1})])\n")
    write(tmp_path, files)
    serial = run_cli("--format", "json", "--no-cache", "-j", "1", str(tmp_path))
    parallel = run_cli("--format", "json", "--no-cache", "-j", "2", str(tmp_path))
    assert json.loads(serial.stdout)["diagnostics"] == json.loads(parallel.stdout)["diagnostics"]
    assert len(json.loads(serial.stdout)["diagnostics"]) > 5


def test_a_long_lived_process_sees_a_module_created_since_the_last_lint(tmp_path: Path) -> None:
    # the language server and watch mode lint the same file again in one process
    train = project(tmp_path, """
        import torch.nn as nn
        from models.late import Deep
        model = Deep()
    """)
    assert lint(train) == []
    (tmp_path / "models" / "late.py").write_text(
        "import torch.nn as nn\ndef Deep():\n    return nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid())"
        " for _ in range(12)])\n")
    assert [c for c, _, _ in lint(train)] == ["GRD001"]
    (tmp_path / "models" / "late.py").unlink()
    assert lint(train) == []


def test_a_notebook_imports_its_projects_modules(tmp_path: Path) -> None:
    project(tmp_path, "")
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["import torch.nn as nn\n", "from models.blocks import TanhBlock\n"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["model = nn.Sequential(*[TanhBlock() for _ in range(12)])\n"]}]
    notebook = tmp_path / "explore.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = lint_file(str(notebook), LintConfig(search_roots=(str(tmp_path),)))
    assert [(d.code, d.cell, d.line) for d in result.diagnostics] == [("GRD004", 2, 1)]
    assert str(tmp_path / "models" / "blocks.py") in result.dependencies


def test_a_config_function_of_the_project_gives_its_values_when_read(tmp_path: Path) -> None:
    # get_config reaches no framework: its call is computed when `cfg` is read, and then it counts
    train = project(tmp_path, """
        import torch.nn as nn
        from models.config import get_config
        from models.blocks import TanhBlock
        cfg = get_config()
        unused = get_config(depth=2)
        model = nn.Sequential(*[TanhBlock(cfg["width"]) for _ in range(cfg["depth"])])
    """, {"models/config.py": """
        from dataclasses import dataclass, field

        DEFAULTS = {"width": 128, "depth": 12}

        def get_config(**overrides):
            out = dict(DEFAULTS)
            out.update(overrides)
            return out
    """})
    assert [c for c, _, _ in lint(train)] == ["GRD004"]


def test_which_project_functions_provably_build_nothing(tmp_path: Path) -> None:
    import ast

    from gradlint.extract.interpreter import Interpreter
    from gradlint.extract.values import FunctionV

    train = project(tmp_path, "from models.helpers import *\n", {"models/helpers.py": """
        import collections
        import torch.nn as nn
        from .blocks import TanhBlock
        from .stats import mean

        def pure(xs):
            return [mean(x) for x in xs if x] + list(collections.Counter(xs))

        def recursive(n):
            return 1 if n <= 1 else n * recursive(n - 1)

        def layer(width):
            return nn.Linear(width, width)

        def via_helper(width):
            return layer(width)

        def via_block():
            return TanhBlock()

        def imports_inside():
            import torch
            return torch.zeros(3)

        def calls_its_argument(make):
            return make()

        def opaque(name):
            return eval(name)

        def unknown_name():
            return undefined_helper()
    """, "models/stats.py": "def mean(x):\n    return sum(x) / len(x)\n"})
    interp = Interpreter(ast.parse(train.read_text()), path=str(train), roots=(str(tmp_path),))
    interp.run_module()
    assert interp.project is not None
    verdicts = {}
    for name in ("pure", "recursive", "layer", "via_helper", "via_block", "imports_inside", "calls_its_argument",
                 "opaque", "unknown_name"):
        func = interp.module_scope.lookup(name)
        assert isinstance(func, FunctionV), name
        verdicts[name] = interp.project.cannot_build(func)
    # calls_its_argument is provably framework-free by itself: its call is deferred only with plain-data arguments
    assert verdicts == {"pure": True, "recursive": True, "layer": False, "via_helper": False, "via_block": False,
                        "imports_inside": False, "calls_its_argument": True, "opaque": False, "unknown_name": False}


def test_a_class_follows_helper_functions_imported_from_a_sibling(tmp_path: Path) -> None:
    """A network class that nothing in its file instantiates is built on its own defaults; the
    layer helpers it calls from another project module are followed (only unreached factory
    functions of a model zoo leave other modules' builders unknown)."""
    train = project(tmp_path, """
        import torch.nn as nn
        from models.layers import make_sigmoid_layer


        class Deep(nn.Module):
            def __init__(self, depth=12):
                super().__init__()
                self.body = nn.Sequential(*[make_sigmoid_layer(128) for _ in range(depth)])
                self.head = nn.Linear(128, 10)

            def forward(self, x):
                return self.head(self.body(x))
    """, {"models/layers.py": """
        import torch.nn as nn


        def make_sigmoid_layer(width):
            return nn.Sequential(nn.Linear(width, width), nn.Sigmoid())
    """})
    assert [(c, line) for c, line, _ in lint(train)] == [("GRD001", 9)]


def test_relative_imports_stop_at_the_project_root(tmp_path: Path) -> None:
    """Without a project marker the given path is the root: a relative import inside it is read,
    one that climbs above it (an installed package linted in site-packages: `from ...modeling_utils
    import PreTrainedModel`) is not the project's code and stays unknown, unread."""
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/blocks.py": TANH_BLOCK,
        "pkg/models/__init__.py": "",
        "pkg/models/net.py": """
            import torch.nn as nn
            from ..blocks import TanhBlock

            model = nn.Sequential(*[TanhBlock() for _ in range(12)])
        """,
    })
    outside = lint_file(str(tmp_path / "pkg/models/net.py"),
                        LintConfig(search_roots=(str(tmp_path / "pkg/models"),)))
    assert [d.code for d in outside.diagnostics if d.code.startswith("GRD0")] == []
    inside = lint_file(str(tmp_path / "pkg/models/net.py"), LintConfig(search_roots=(str(tmp_path / "pkg"),)))
    assert [d.code for d in inside.diagnostics] == ["GRD004"]


def test_a_class_gives_up_following_a_costly_helper_of_another_module_early(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class nothing in its file builds is first built following the helpers it calls from
    other project modules; when those cost more than FOREIGN_PROBE_BUDGET steps (timm's
    named_apply over every submodule), it is built again leaving them unknown. The first attempt
    stops as soon as the helpers have spent that budget, not at the whole probe's, and the
    network is still checked."""
    from gradlint import extract as extraction
    from gradlint.extract.interpreter import Interpreter

    train = project(tmp_path, """
        import torch.nn as nn
        from models.walk import visit


        class Deep(nn.Module):
            def __init__(self, depth=12):
                super().__init__()
                self.body = nn.Sequential(*[nn.Sequential(nn.Linear(128, 128), nn.Sigmoid()) for _ in range(depth)])
                self.head = nn.Linear(128, 10)
                visit(self)

            def forward(self, x):
                return self.head(self.body(x))
    """, {"models/walk.py": """
        def visit(module, depth=0):
            total = 0
            for i in range(40):
                for j in range(40):
                    total = total + i * j - depth
            for child in module.children():
                visit(child, depth + 1)
            return total
    """})
    spent = [0]
    call = Interpreter._call_foreign_within_budget

    def counting_call(self: Interpreter, *args: object) -> object:
        before = self.foreign_budget
        try:
            return call(self, *args)  # type: ignore[arg-type]
        finally:
            spent[0] += (before or 0) - (self.foreign_budget or 0)

    monkeypatch.setattr(Interpreter, "_call_foreign_within_budget", counting_call)
    assert [(c, line) for c, line, _ in lint(train)] == [("GRD001", 9)]
    limit = extraction.FOREIGN_PROBE_BUDGET
    assert 0 < spent[0] <= limit + 1
    monkeypatch.setattr(extraction, "FOREIGN_PROBE_BUDGET", extraction.PROBE_BUDGET)
    spent[0] = 0
    assert [(c, line) for c, line, _ in lint(train)] == [("GRD001", 9)]
    assert spent[0] > 2 * limit  # the helper is costly: without the limit the probe spends more in it


def test_a_linted_files_parse_is_reused_by_its_importers_until_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradlint.extract import project_files as project_module

    parsed: list[str] = []
    real_parse = project_module._parse_module

    def counting_parse(path: str) -> tuple[project_module.ParsedModule, list[ast.stmt] | None]:
        parsed.append(path)
        return real_parse(path)

    monkeypatch.setattr(project_module, "_parse_module", counting_parse)
    train = project(tmp_path, """
        import torch.nn as nn
        from models.blocks import TanhBlock
        model = nn.Sequential(*[TanhBlock() for _ in range(12)])
    """)
    statement_parses: list[str] = []
    real_statement_parse = project_module._parse

    def counting_statement_parse(text: str, path: str) -> ast.Module:
        statement_parses.append(path)
        return real_statement_parse(text, path)

    monkeypatch.setattr(project_module, "_parse", counting_statement_parse)
    blocks = tmp_path / "models" / "blocks.py"
    lint(blocks)  # linted first, as a directory walk does with a package's modules
    assert [c for c, _, _ in lint(train)] == ["GRD004"]
    assert str(blocks) not in parsed  # its own parse served the import
    assert str(blocks) not in statement_parses  # ... its statements too, handed over once its lint was done
    # edited on disk since: read again, the new text counts
    blocks.write_text(blocks.read_text().replace("nn.init.normal_(self.fc.weight, std=1.0)", "pass  # default"))
    assert lint(train) == []
    assert parsed.count(str(blocks)) == 1


def test_an_editor_buffer_is_not_what_importers_read(tmp_path: Path) -> None:
    train = project(tmp_path, """
        import torch.nn as nn
        from models.blocks import TanhBlock
        model = nn.Sequential(*[TanhBlock() for _ in range(12)])
    """)
    blocks = tmp_path / "models" / "blocks.py"
    unsaved = TANH_BLOCK.replace("nn.init.normal_(self.fc.weight, std=1.0)", "pass")
    lint_file(str(blocks), LintConfig(search_roots=(str(tmp_path),)), data=unsaved.encode())
    assert [c for c, _, _ in lint(train)] == ["GRD004"]  # the saved file, not the buffer


def test_statements_of_a_whole_parse_match_their_own_parse(tmp_path: Path) -> None:
    """A module read whole hands its importers its statements while the parse is held; once it is
    evicted they are parsed from their lines. Both give the same syntax, in the module's line range."""
    import ast
    import copy

    from gradlint.extract.project_files import ParsedModule, ProjectFiles, _shift_lines

    def local(module: ParsedModule, i: int) -> str:  # its syntax at the file's own line numbers
        stmt = copy.deepcopy(module.statement(i))
        _shift_lines(stmt, -module.offset)
        return ast.dump(stmt, include_attributes=True)

    module = tmp_path / "blocks.py"
    module.write_text("import torch.nn as nn\n\nWIDTH = 4; DEPTH = 2\n\n\n@staticmethod\ndef make(w=WIDTH):\n"
                      "    return nn.Linear(w,\n                     w)\n\nclass Block(nn.Module):\n    pass\n")
    files = ProjectFiles()
    parsed = files.parse(str(module))
    assert parsed.held is not None
    held = [local(parsed, i) for i in range(len(parsed.ranges))]
    again = ProjectFiles()
    reparsed = again.parse(str(module))
    reparsed.held = None  # as when evicted (ProjectFiles keeps HELD_LINES): statements come from their lines
    fresh = [local(reparsed, i) for i in range(len(reparsed.ranges))]
    assert held == fresh
    assert [parsed.statement(i).lineno - parsed.offset for i in range(len(parsed.ranges))] == [1, 3, 3, 7, 11]


def test_shifting_a_statement_moves_every_position_as_increment_lineno_does() -> None:
    import ast

    from gradlint.extract.project_files import _shift_lines

    source = textwrap.dedent('''
        from a import (b as c,
                       d)
        @deco(x=1)
        class K(Base, metaclass=M):
            def f(self, a: int = 2, *args, k=3, **kw) -> None:
                try:
                    y = [i for i in a if i] + {k: v for k, v in kw.items()}
                except (E1, E2) as e:
                    raise ValueError(f"{e!r:>4}") from e
                match a:
                    case {"k": [1, *rest]} | Point(x=0) as p if p:
                        pass
                lambda q, /, r: q @ r
                async def g():
                    async with z as w:
                        await w
    ''')
    ours, reference = ast.parse(source), ast.parse(source)
    _shift_lines(ours, 1 << 24)
    ast.increment_lineno(reference, 1 << 24)
    assert ast.dump(ours, include_attributes=True) == ast.dump(reference, include_attributes=True)


def test_a_module_read_for_an_importer_lints_as_when_read_first(tmp_path: Path) -> None:
    """A module imported before its own lint hands that lint the parse it was read with (its
    statements back at their own lines): the findings are those of a lint that came first."""
    from gradlint.extract.project_files import FILES

    blocks_text = TANH_BLOCK + textwrap.dedent("""
        class Deep(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.Sequential(*[TanhBlock() for _ in range(12)])

            def forward(self, x):
                return self.blocks(x)
    """)
    train = project(tmp_path, """
        import torch.nn as nn
        from models.blocks import TanhBlock, Deep
        model = nn.Sequential(*[TanhBlock() for _ in range(12)])
        other = Deep()
    """, {"models/blocks.py": blocks_text})
    blocks = tmp_path / "models" / "blocks.py"
    FILES.__init__()  # type: ignore[misc]  # a fresh process
    first = lint(blocks)
    assert first  # the deep tanh stack is reported where it is defined
    FILES.__init__()  # type: ignore[misc]
    from_train = lint(train)
    after_import = lint(blocks)
    assert after_import == first
    assert lint(train) == from_train  # and the importer, served from the lint's parse given back, too
    assert lint(blocks) == first


def test_a_module_parsed_again_after_an_edit_is_held_once(tmp_path: Path) -> None:
    """The whole parse held for a module is replaced, not added to, when the module is read again
    (its size or mtime changed): the bound on held lines counts each module once."""
    import os

    from gradlint.extract.project_files import ProjectFiles

    module = tmp_path / "blocks.py"
    module.write_text("A = 1\nB = 2\n")
    files = ProjectFiles()
    first = files.parse(str(module))
    module.write_text("A = 1\nB = 2\nC = 3\n")
    os.utime(module, ns=(1, 1))
    second = files.parse(str(module))
    assert second is not first and second.held is not None
    assert first.held is None
    assert files._held_lines == 3
