"""Static-linting speed on real model code, against parse-only baselines, TorchFix and Fixit.

Reads the model code of timm, torchvision and transformers *in place* in site-packages (found
with ``importlib.util.find_spec``, never imported) and times, in one run, for each corpus:

* ``ast``        stdlib ``ast.parse`` of every file, serial, in this process (read + decode + parse);
* ``libcst``     ``libcst.parse_module`` of every file, serial, in this process;
* ``cold``       ``python -m gradlint --format json DIR`` in a subprocess with an empty cache directory;
* ``warm``       the same command again, same cache directory (nothing changed);
* ``no-cache``   the same command with ``--no-cache`` (what a cold run costs without writing the cache);
* ``torchfix``   ``torchfix -j JOBS DIR`` when TorchFix is installed (here or in ``--tools-bin``);
* ``fixit``      ``fixit lint DIR`` when Fixit is installed (idem), on an identical copy of DIR outside
                 this git checkout: Fixit obeys the checkout's .gitignore, which ignores .venv/;

then one small file end to end (``python -m gradlint FILE``, interpreter start included; the
median of several runs). It prints a table of seconds and ratios against the parse-only
baselines measured in the same run, and the issue-6 targets. No figure is asserted.

TorchFix pins ``libcst<1.6`` and Fixit ``click<8.2``: install them in a separate environment so
gradlint's own is left alone, and point ``--tools-bin`` (or ``GRADLINT_BENCH_TOOLS``) at its bin/::

    python -m venv ~/.cache/gradlint-bench-tools
    ~/.cache/gradlint-bench-tools/bin/pip install torchfix==0.7.0 fixit==2.2.1
    python benchmarks/bench_static.py --tools-bin ~/.cache/gradlint-bench-tools/bin

Options: ``--corpus NAME`` (repeatable; default all four), ``--external-corpus NAME`` (corpora
TorchFix and Fixit run on; default timm/models and torchvision/models, ``all`` for every
corpus; they take minutes each), ``--jobs N`` (default: CPU count), ``--json FILE``,
``--baseline-python PY`` (an interpreter with another gradlint installed, e.g. an older checkout's
venv: its cold runs are timed in the same run). gradlint's bytecode is compiled before timing, as
``pip install`` does (an editable install under PYTHONDONTWRITEBYTECODE=1 would compile every
module at every start).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = {
    "timm/models": ("timm", "models"),
    "timm/layers": ("timm", "layers"),
    "torchvision/models": ("torchvision", "models"),
    "transformers/models": ("transformers", "models"),
}
DEFAULT_EXTERNAL = ("timm/models", "torchvision/models")
SMALL_FILE = ROOT / "fixtures" / "torch" / "he_relu_mlp.py"
DEFAULT_TOOLS = Path.home() / ".cache" / "gradlint-bench-tools" / "bin"


def package_dir(package: str) -> Path | None:
    """The directory of an installed top-level package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


@dataclass
class Row:
    corpus: str
    path: str
    files: int
    lines: int
    bytes: int
    times: dict[str, float] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


def count_lines(files: list[Path]) -> tuple[int, int]:
    lines = size = 0
    for path in files:
        data = path.read_bytes()
        size += len(data)
        lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return lines, size


def time_ast(files: list[Path]) -> tuple[float, int]:
    errors = 0
    start = time.perf_counter()
    for path in files:
        try:
            with tokenize.open(path) as handle:  # decode as Python does (PEP 263)
                ast.parse(handle.read(), filename=str(path))
        except (SyntaxError, ValueError, UnicodeDecodeError):
            errors += 1
    return time.perf_counter() - start, errors


def time_libcst(files: list[Path]) -> tuple[float, int] | None:
    try:
        import libcst
    except ImportError:
        return None
    errors = 0
    start = time.perf_counter()
    for path in files:
        try:
            libcst.parse_module(path.read_bytes())
        except Exception:  # libcst.ParserSyntaxError and friends
            errors += 1
    return time.perf_counter() - start, errors


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    # Run outside any checkout: `python -m gradlint` in this one would import its gradlint/ whatever
    # gradlint the interpreter has installed (a --baseline-python's own, for instance).
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, cwd=tempfile.gettempdir())
    return time.perf_counter() - start, proc


def gradlint_cmd(*args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "gradlint", "--format", "json", *args]


def ensure_bytecode(python: str) -> str:
    """Compile the bytecode of the gradlint that ``python`` imports, as ``pip install`` does: an
    editable install (and PYTHONDONTWRITEBYTECODE=1) would otherwise compile every module on every
    start, which no installed copy does. Returns the package directories compiled."""
    where = subprocess.run(
        [python, "-c", "import os, gradlint, gradlint.rules as r; print(os.path.dirname(gradlint.__file__)); "
                       "print(os.path.dirname(r.__file__))"],
        capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=120)
    dirs = where.stdout.split()
    if dirs:
        subprocess.run([python, "-m", "compileall", "-q", *dirs], capture_output=True, timeout=600)
    return ", ".join(dirs) or "?"


def gradlint_env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", CI="true")  # CI: no progress display
    env.pop("GRADLINT_CACHE_DIR", None)
    return env


def summarize_gradlint(proc: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    if proc.returncode not in (0, 1):
        return {"exit": proc.returncode, "stderr": proc.stderr.decode(errors="replace")[-500:]}
    payload = json.loads(proc.stdout)
    codes: dict[str, int] = {}
    for diag in payload["diagnostics"]:
        codes[diag["code"]] = codes.get(diag["code"], 0) + 1
    return {"exit": proc.returncode, "summary": payload["summary"], "codes": codes}


def find_tool(name: str, tools_bin: Path | None) -> str | None:
    candidates = []
    if tools_bin is not None:
        candidates.append(tools_bin / name)
    candidates.append(Path(sys.executable).parent / name)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def tool_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        return (out.stdout or out.stderr).strip().splitlines()[-1]
    except Exception as exc:  # pragma: no cover - reported, not fatal
        return f"unknown ({exc})"


def small_file_baseline(python: str, repeats: int = 7) -> float:
    env = gradlint_env()
    samples = [run_timed([python, "-m", "gradlint", "--no-cache", str(SMALL_FILE)], env)[0] for _ in range(repeats)]
    return statistics.median(samples)


def small_file_wall(repeats: int = 7) -> dict[str, float]:
    env = gradlint_env()
    out: dict[str, float] = {}
    samples = [run_timed([sys.executable, "-c", "pass"], env)[0] for _ in range(repeats)]
    out["python -c pass"] = statistics.median(samples)
    samples = [run_timed([sys.executable, "-m", "gradlint", "--no-cache", str(SMALL_FILE)], env)[0]
               for _ in range(repeats)]
    out["python -m gradlint FILE (--no-cache)"] = statistics.median(samples)
    with tempfile.TemporaryDirectory() as cache:
        run_timed([sys.executable, "-m", "gradlint", "--cache-dir", cache, str(SMALL_FILE)], env)
        samples = [run_timed([sys.executable, "-m", "gradlint", "--cache-dir", cache, str(SMALL_FILE)], env)[0]
                   for _ in range(repeats)]
    out["python -m gradlint FILE (warm cache)"] = statistics.median(samples)
    script = Path(sys.executable).parent / "gradlint"
    if script.exists():
        samples = [run_timed([str(script), "--no-cache", str(SMALL_FILE)], env)[0] for _ in range(repeats)]
        out["gradlint FILE (console script, --no-cache)"] = statistics.median(samples)
    return out


def fmt_s(value: float | None) -> str:
    return "—" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")


def fmt_x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _render_baseline(rows: list[Row], small: dict[str, float], facts: dict[str, object]) -> list[str]:
    out: list[str] = []
    baselined = [r for r in rows if "baseline" in r.times]
    if not baselined:
        return out
    out.append("\n## Against the baseline gradlint (same run)\n")
    out.append(f"Baseline: {facts.get('baseline', '?')}\n")
    out.append("| corpus | baseline cold | cold | cold / baseline | baseline cold / libcst | cold / libcst |")
    out.append("|---|---|---|---|---|---|")
    for row in baselined:
        t = row.times
        out.append("| " + " | ".join([row.corpus, fmt_s(t["baseline"]), fmt_s(t.get("cold")),
                                       fmt_x(ratio(t.get("cold"), t["baseline"])),
                                       fmt_x(ratio(t["baseline"], t.get("libcst"))),
                                       fmt_x(ratio(t.get("cold"), t.get("libcst")))]) + " |")
    if "baseline" in small:
        one = small.get("python -m gradlint FILE (--no-cache)")
        out.append(f"| one small file (--no-cache) | {small['baseline']:.3f} | "
                   f"{fmt_s(one)} | {fmt_x(ratio(one, small['baseline']))} | | |")
    return out


def _render_issue12_targets(tm: Row | None, tr: Row | None, small: dict[str, float]) -> list[str]:
    out: list[str] = []
    out.append("\n## Issue 12 targets (2 cores)\n")
    checks12 = []
    if tm is not None:
        r = ratio(tm.times.get("cold"), tm.times.get("libcst"))
        if r is not None:
            checks12.append(("timm/models cold ≤ 1.0 × libcst parse", f"{r:.2f}×", r <= 1.0))
        if "warm" in tm.times:
            checks12.append(("warm re-run ≤ 0.5 s (timm/models)", f"{tm.times['warm']:.2f} s", tm.times["warm"] <= 0.5))
    one = small.get("python -m gradlint FILE (--no-cache)")
    if one is not None:
        checks12.append(("one small file ≤ 0.4 s end to end", f"{one:.2f} s", one <= 0.4))
    if tr is not None:
        r = ratio(tr.times.get("cold"), tr.times.get("ast"))
        if r is not None:
            checks12.append(("transformers/models cold ≤ 3 × serial ast.parse", f"{r:.2f}×", r <= 3.0))
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    for name, value, ok in checks12:
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
    return out


def render(rows: list[Row], small: dict[str, float], facts: dict[str, object]) -> str:
    out = []
    out.append("## Machine\n")
    for key, value in facts.items():
        out.append(f"- {key}: {value}")
    out.append("\n## Seconds (wall clock)\n")
    head = ["corpus", "files", "lines", "ast.parse", "libcst parse", "gradlint cold", "gradlint warm",
            "gradlint --no-cache", "TorchFix", "Fixit"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    total = Row("total", "", 0, 0, 0)
    for row in rows:
        t = row.times
        out.append("| " + " | ".join([row.corpus, str(row.files), f"{row.lines:,}", fmt_s(t.get("ast")),
                                       fmt_s(t.get("libcst")), fmt_s(t.get("cold")), fmt_s(t.get("warm")),
                                       fmt_s(t.get("nocache")), fmt_s(t.get("torchfix")), fmt_s(t.get("fixit"))])
                   + " |")
        total.files += row.files
        total.lines += row.lines
        for key in ("ast", "libcst", "cold", "warm", "nocache"):
            if key in t:
                total.times[key] = total.times.get(key, 0.0) + t[key]
    if len(rows) > 1:
        t = total.times
        out.append("| " + " | ".join(["**all (sum)**", str(total.files), f"{total.lines:,}", fmt_s(t.get("ast")),
                                       fmt_s(t.get("libcst")), fmt_s(t.get("cold")), fmt_s(t.get("warm")),
                                       fmt_s(t.get("nocache")), "", ""]) + " |")
    out.append("\n## Ratios (same run)\n")
    head = ["corpus", "cold / libcst parse", "cold / ast.parse", "--no-cache / libcst parse", "warm / cold",
            "TorchFix / cold", "Fixit / cold"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for row in rows + ([total] if len(rows) > 1 else []):
        t = row.times
        out.append("| " + " | ".join([row.corpus, fmt_x(ratio(t.get("cold"), t.get("libcst"))),
                                       fmt_x(ratio(t.get("cold"), t.get("ast"))),
                                       fmt_x(ratio(t.get("nocache"), t.get("libcst"))),
                                       fmt_x(ratio(t.get("warm"), t.get("cold"))),
                                       fmt_x(ratio(t.get("torchfix"), t.get("cold"))),
                                       fmt_x(ratio(t.get("fixit"), t.get("cold")))]) + " |")
    out.append("\n## One small file, end to end (median wall seconds, interpreter start included)\n")
    out.append(f"File: `{SMALL_FILE.relative_to(ROOT)}`\n")
    out.append("| command | seconds |")
    out.append("|---|---|")
    for key, value in small.items():
        out.append(f"| `{key}` | {value:.3f} |")
    by_name = {r.corpus: r for r in rows}
    tm = by_name.get("timm/models")
    tr = by_name.get("transformers/models")
    out.append("\n## What gradlint found\n")
    for row in rows:
        cold = row.notes.get("cold")
        out.append(f"- {row.corpus}: {json.dumps(cold, sort_keys=True)}")
        for key in ("ast_errors", "libcst_errors", "torchfix_exit", "fixit_exit", "fixit_tail"):
            if key in row.notes:
                out.append(f"  - {key}: {row.notes[key]}")
    out.extend(_render_baseline(rows, small, facts))
    out.extend(_render_issue12_targets(tm, tr, small))
    out.append("\n## Issue 6 targets (2 cores)\n")
    checks = []
    for row in rows + ([total] if len(rows) > 1 else []):
        r = ratio(row.times.get("cold"), row.times.get("libcst"))
        if r is not None:
            checks.append((f"cold ≤ 1.3 × libcst parse-only ({row.corpus})", f"{r:.2f}×", r <= 1.3))
    if tm is not None:
        for tool in ("torchfix", "fixit"):
            r = ratio(tm.times.get(tool), tm.times.get("cold"))
            if r is not None:
                checks.append((f"≥ 15 × faster than {tool} (timm/models)", f"{r:.1f}×", r >= 15))
        if "warm" in tm.times:
            checks.append(("warm ≤ 0.5 s (timm/models)", f"{tm.times['warm']:.2f} s", tm.times["warm"] <= 0.5))
    one = small.get("python -m gradlint FILE (--no-cache)")
    if one is not None:
        checks.append(("one file ≤ 0.4 s wall incl. interpreter start", f"{one:.2f} s", one <= 0.4))
    if tr is not None and "cold" in tr.times:
        checks.append(("transformers/models cold < 60 s", f"{tr.times['cold']:.1f} s", tr.times["cold"] < 60))
    out.append("| target | measured | met |")
    out.append("|---|---|---|")
    for name, value, ok in checks:
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="corpus to time (repeatable)")
    parser.add_argument("--external-corpus", action="append", help="corpora for TorchFix/Fixit ('all', 'none')")
    parser.add_argument("--tools-bin", type=Path,
                        default=Path(os.environ["GRADLINT_BENCH_TOOLS"]) if os.environ.get("GRADLINT_BENCH_TOOLS")
                        else DEFAULT_TOOLS, help="bin/ directory holding torchfix and fixit")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--baseline-python", help="an interpreter with another gradlint installed (an older "
                        "checkout's venv): its cold runs are timed in the same run, for same-run ratios")
    args = parser.parse_args(argv)

    corpora = args.corpus or list(CORPORA)
    external = args.external_corpus or list(DEFAULT_EXTERNAL)
    if "all" in external:
        external = list(CORPORA)
    if "none" in external:
        external = []
    torchfix = find_tool("torchfix", args.tools_bin)
    fixit = find_tool("fixit", args.tools_bin)
    try:
        import libcst

        libcst_version = getattr(libcst, "__version__", None) or _dist_version("libcst")
    except ImportError:
        libcst_version = "not installed"
    from gradlint import __version__ as gradlint_version

    facts: dict[str, object] = {
        "CPU": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        "Python": platform.python_version(),
        "gradlint": f"{gradlint_version} (git {_git_head()})",
        "gradlint jobs": args.jobs,
        "libcst": libcst_version,
        "TorchFix": tool_version(torchfix) + f" ({torchfix})" if torchfix else "not installed",
        "Fixit": tool_version(fixit) + f" ({fixit})" if fixit else "not installed",
    }
    facts["bytecode"] = "compiled before timing, as pip install does: " + ensure_bytecode(sys.executable)
    if args.baseline_python:
        facts["baseline"] = f"{args.baseline_python} ({ensure_bytecode(args.baseline_python)})"
    rows: list[Row] = []
    env = gradlint_env()
    for name in corpora:
        package, sub = CORPORA[name]
        base = package_dir(package)
        if base is None or not (base / sub).is_dir():
            print(f"skip {name}: {package} is not installed (pip install --no-deps -r requirements/precision.txt)",
                  file=sys.stderr)
            continue
        facts[f"{package} version"] = _dist_version(package)
        directory = base / sub
        files = python_files(directory)
        lines, size = count_lines(files)
        row = Row(name, str(directory), len(files), lines, size)
        print(f"[{name}] {len(files)} files, {lines:,} lines", file=sys.stderr, flush=True)

        row.times["ast"], row.notes["ast_errors"] = time_ast(files)
        print(f"  ast.parse      {row.times['ast']:.2f} s", file=sys.stderr, flush=True)
        result = time_libcst(files)
        if result is not None:
            row.times["libcst"], row.notes["libcst_errors"] = result
            print(f"  libcst parse   {row.times['libcst']:.2f} s", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="gradlint-bench-cache-") as cache:
            jobs = ["--jobs", str(args.jobs)]
            row.times["cold"], proc = run_timed(gradlint_cmd("--cache-dir", cache, *jobs, str(directory)), env)
            row.notes["cold"] = summarize_gradlint(proc)
            print(f"  gradlint cold  {row.times['cold']:.2f} s", file=sys.stderr, flush=True)
            row.times["warm"], proc = run_timed(gradlint_cmd("--cache-dir", cache, *jobs, str(directory)), env)
            row.notes["warm"] = summarize_gradlint(proc)
            print(f"  gradlint warm  {row.times['warm']:.2f} s", file=sys.stderr, flush=True)
        row.times["nocache"], proc = run_timed(gradlint_cmd("--no-cache", "--jobs", str(args.jobs), str(directory)),
                                               env)
        print(f"  gradlint --no-cache {row.times['nocache']:.2f} s", file=sys.stderr, flush=True)
        if args.baseline_python:
            with tempfile.TemporaryDirectory(prefix="gradlint-bench-cache-") as cache:
                row.times["baseline"], proc = run_timed(
                    gradlint_cmd("--cache-dir", cache, "--jobs", str(args.jobs), str(directory),
                                 python=args.baseline_python), env)
            row.notes["baseline"] = summarize_gradlint(proc)
            print(f"  baseline cold  {row.times['baseline']:.2f} s", file=sys.stderr, flush=True)
        if name in external and torchfix:
            row.times["torchfix"], proc = run_timed([torchfix, "-j", str(args.jobs), str(directory)])
            row.notes["torchfix_exit"] = proc.returncode
            print(f"  torchfix       {row.times['torchfix']:.2f} s", file=sys.stderr, flush=True)
        if name in external and fixit:
            # Fixit obeys the .gitignore of the enclosing repository even for files named explicitly, and
            # this checkout's ignores .venv/: it would lint nothing in place. It reads an identical copy
            # outside any repository instead (copied before the clock starts).
            with tempfile.TemporaryDirectory(prefix="gradlint-bench-fixit-") as scratch:
                copy = Path(scratch) / package / sub
                shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
                row.times["fixit"], proc = run_timed([fixit, "lint", str(copy)])
            row.notes["fixit_exit"] = proc.returncode
            row.notes["fixit_tail"] = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            print(f"  fixit          {row.times['fixit']:.2f} s", file=sys.stderr, flush=True)
        rows.append(row)

    small = small_file_wall()
    if args.baseline_python:
        small["baseline"] = small_file_baseline(args.baseline_python)
    text = render(rows, small, facts)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "small_file": small,
                                         "rows": [vars(r) for r in rows]}, indent=2, default=str))
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
