"""The result cache and parallel linting give exactly the results of a plain serial run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FIXTURES, run_cli


def _payload(proc) -> list[dict]:
    return json.loads(proc.stdout)["diagnostics"]


def test_warm_cache_and_parallel_match_serial_uncached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    serial = run_cli("--format", "json", "--no-cache", "-j", "1", str(FIXTURES))
    cold = run_cli("--format", "json", "--cache-dir", str(cache), "-j", "2", str(FIXTURES))
    warm = run_cli("--format", "json", "--cache-dir", str(cache), "-j", "2", str(FIXTURES))
    assert _payload(serial) == _payload(cold) == _payload(warm)
    assert serial.returncode == cold.returncode == warm.returncode == 1
    assert any(cache.rglob("*.json"))


def test_corrupt_and_foreign_cache_entries_are_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = tmp_path / "zero.py"
    model.write_text("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
                     "        super().__init__()\n"
                     "        self.a = nn.Linear(4, 4)\n        self.b = nn.Linear(4, 1)\n"
                     "        nn.init.zeros_(self.a.weight)\n    def forward(self, x):\n"
                     "        return self.b(self.a(x))\n")
    first = run_cli("--format", "json", "--cache-dir", str(cache), str(model))
    entries = list(cache.rglob("*.json"))
    assert entries
    for entry in entries:
        entry.write_text("{not json")
    second = run_cli("--format", "json", "--cache-dir", str(cache), str(model))
    assert _payload(first) == _payload(second)
    for entry in cache.rglob("*.json"):
        entry.write_text(json.dumps({"format": 1, "key": "someone-else", "diagnostics": [], "models": []}))
    assert _payload(run_cli("--format", "json", "--cache-dir", str(cache), str(model))) == _payload(first)


def test_changed_file_or_config_is_linted_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = tmp_path / "m.py"
    model.write_text("import torch.nn as nn\nm = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid()) "
                     "for _ in range(8)])\n")
    assert run_cli("--cache-dir", str(cache), str(model)).returncode == 1
    assert run_cli("--cache-dir", str(cache), "--ignore", "GRD001", str(model)).returncode == 0
    model.write_text("import torch.nn as nn\nm = nn.Sequential(nn.Linear(64, 64), nn.ReLU())\n")
    assert run_cli("--cache-dir", str(cache), str(model)).returncode == 0


def test_clean_removes_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run_cli("--cache-dir", str(cache), str(FIXTURES / "torch"))
    assert cache.exists()
    proc = run_cli("clean", "--cache-dir", str(cache))
    assert proc.returncode == 0 and not cache.exists()


def test_garbage_is_collected_between_files_only_when_the_command_line_asks(tmp_path: Path) -> None:
    """A library caller's process keeps its own collector settings: lint_paths never freezes its
    objects. The command line opts in (engine.collect_between_files), and then each linted file's
    survivors are frozen out of later collections."""
    import gc
    import subprocess
    import sys
    import textwrap

    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text((FIXTURES / "torch" / "he_relu_mlp.py").read_text())
    script = textwrap.dedent(f"""
        import gc
        from gradlint import engine
        files = [{str(tmp_path / "a.py")!r}, {str(tmp_path / "b.py")!r}]
        before = gc.get_freeze_count()
        list(engine.lint_paths(files, engine.LintConfig(), jobs=1))
        library = gc.get_freeze_count() - before
        engine.collect_between_files()
        list(engine.lint_paths(files, engine.LintConfig(), jobs=1))
        print(library, gc.get_freeze_count() - before - library)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0"
    assert int(out[1]) > 0
    assert gc.isenabled()  # and the test process itself was never touched


def test_parallel_batches_cover_every_file_once_largest_first(tmp_path: Path) -> None:
    from gradlint.engine import balanced_batches

    sizes = [10, 5000, 30, 30, 20000, 1, 400, 7, 7, 7] * 4
    files = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"m{i}.py"
        path.write_text("#" * size)
        files.append(str(path))
    batches = balanced_batches(files, workers=2)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(files)))  # each file once
    assert [sizes[i] for i in flat] == sorted(sizes, reverse=True)  # largest first
    assert all(len(batch) == 1 for batch in batches if sizes[batch[0]] == 20000)  # the big ones alone
    assert len(batches[-1]) > 1  # small ones batched


def test_a_small_directory_stays_in_one_batch_in_discovery_order(tmp_path: Path) -> None:
    from gradlint.engine import balanced_batches

    files = []
    for d in range(40):  # forty model packages: configuration, then the modeling module importing it
        for name, size in (("__init__.py", 10), ("configuration.py", 300), ("modeling.py", 3000 + 10 * d)):
            path = tmp_path / f"model{d}" / name
            path.parent.mkdir(exist_ok=True)
            path.write_text("#" * size)
            files.append(str(path))
    batches = balanced_batches(files, workers=2)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(files)))
    where = {i: b for b, batch in enumerate(batches) for i in batch}
    for d in range(40):
        package = [3 * d, 3 * d + 1, 3 * d + 2]
        assert len({where[i] for i in package}) == 1  # one worker reads the package once
        batch = batches[where[package[0]]]
        assert [batch.index(i) for i in package] == sorted(batch.index(i) for i in package)
    assert where[3 * 39] == 0  # the heaviest package starts first


def test_every_estimate_field_survives_the_cache() -> None:
    """A field added to ``Estimate`` must be written and read by the cache, or a warm run's JSON differs
    from a cold one's (the cached entry would drop it)."""
    from dataclasses import fields

    from gradlint.cache import _diagnostic_from_json, _diagnostic_to_json
    from gradlint.diagnostics import Diagnostic
    from gradlint.estimate import Estimate
    from gradlint.rule import Severity

    values: dict[str, object] = {}
    for number, f in enumerate(fields(Estimate), start=1):
        kind = str(f.type)
        if "bool" in kind:
            values[f.name] = True
        elif "list" in kind:
            values[f.name] = ["an assumption"]
        elif kind == "int":
            values[f.name] = number
        elif "str" in kind:
            values[f.name] = f"text {number}"
        else:
            values[f.name] = -number - 0.25
    estimate = Estimate(**values)  # type: ignore[arg-type]
    diag = Diagnostic("m.py", 1, 1, 1, 2, "GRD001", "saturating-stack", Severity.ERROR, "message", "Net", estimate)
    back = _diagnostic_from_json(json.loads(json.dumps(_diagnostic_to_json(diag))), "m.py")
    assert back.estimate is not None
    assert {f.name: getattr(back.estimate, f.name) for f in fields(Estimate)} == values
