"""Which files are skipped unparsed: a file that mentions no framework is linted only when a
project module it imports (directly, or through other marker-free project modules) mentions one;
the result cache keeps such a skip only while those modules and absences hold."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gradlint.engine import LintConfig, lint_file
from gradlint.extract.framework_reach import may_build_a_model

from conftest import run_cli

DEEP_SIGMOID = """
import torch.nn as nn


def deep():
    return nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid()) for _ in range(12)])
"""


def write(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def reach(path: Path) -> bool:
    return may_build_a_model(str(path), path.read_bytes(), (str(path.parent),)).may


def codes(path: Path) -> list[str]:
    result = lint_file(str(path), LintConfig(search_roots=(str(path.parent),)))
    return [d.code for d in result.diagnostics]


def test_a_file_building_a_model_through_marker_free_modules_is_linted(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/layers.py": DEEP_SIGMOID,
        "pkg/factory.py": "from .layers import deep\n\ndef make():\n    return deep()\n",
        "pkg/run.py": "from .factory import make\n\nmodel = make()\n",
    })
    assert reach(tmp_path / "pkg" / "run.py")
    assert codes(tmp_path / "pkg" / "run.py") == ["GRD001"]


def test_a_submodule_named_in_from_package_import_is_followed(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/layers.py": DEEP_SIGMOID,
        "pkg/run.py": "from . import (\n    layers,  # the model\n)\n\nmodel = layers.deep()\n",
        "other.py": "import pkg.layers\n\nmodel = pkg.layers.deep()\n",
    })
    assert reach(tmp_path / "pkg" / "run.py") and reach(tmp_path / "other.py")
    assert codes(tmp_path / "pkg" / "run.py") == ["GRD001"]


def test_a_file_whose_imports_reach_no_framework_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/configuration.py": "from .defaults import WIDTH\nimport json\n\nclass Config:\n    width = WIDTH\n",
        "pkg/defaults.py": "WIDTH = 64\n",
        "pkg/tokenizer.py": "from ...above_the_root import Base\nfrom .configuration import Config\n",
    })
    for name in ("configuration.py", "tokenizer.py"):
        assert not reach(tmp_path / "pkg" / name)
        assert lint_file(str(tmp_path / "pkg" / name), LintConfig(search_roots=(str(tmp_path),))).skipped


def test_what_bytes_cannot_settle_is_parsed(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/missing.py": "from .nowhere import thing\n",  # a relative import of no module
        "pkg/continued.py": "from . import a, \\\n    layers\n",  # names continued on the next line
    })
    assert reach(tmp_path / "pkg" / "missing.py")
    assert reach(tmp_path / "pkg" / "continued.py")


def test_a_cached_skip_is_dropped_when_an_imported_module_gains_a_framework(tmp_path: Path) -> None:
    write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/helpers.py": "def deep():\n    return None\n",
        "pkg/run.py": "from .helpers import deep\n\nmodel = deep()\n",
    })
    cache = tmp_path / "cache"
    run = tmp_path / "pkg" / "run.py"
    first = run_cli("--format", "json", "--cache-dir", str(cache), str(run))
    assert json.loads(first.stdout)["diagnostics"] == []
    (tmp_path / "pkg" / "helpers.py").write_text(textwrap.dedent(DEEP_SIGMOID))
    second = run_cli("--format", "json", "--cache-dir", str(cache), str(run))
    assert [d["code"] for d in json.loads(second.stdout)["diagnostics"]] == ["GRD001"]


def test_a_cached_skip_is_dropped_when_an_absent_project_module_appears(tmp_path: Path) -> None:
    write(tmp_path, {"scripts/run.py": "import json\nfrom blocks import deep\n\nmodel = deep()\n"})
    cache = tmp_path / "cache"
    run = tmp_path / "scripts" / "run.py"
    assert json.loads(run_cli("--format", "json", "--cache-dir", str(cache), str(run)).stdout)["diagnostics"] == []
    (tmp_path / "blocks.py").write_text(textwrap.dedent(DEEP_SIGMOID))
    second = run_cli("--format", "json", "--cache-dir", str(cache), str(run))
    assert [d["code"] for d in json.loads(second.stdout)["diagnostics"]] == ["GRD001"]
