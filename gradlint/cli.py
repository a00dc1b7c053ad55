"""Command line: a thin layer over the engine and the reporters.

Exit codes: 0 no findings; 1 findings (warnings/errors, including files that cannot be read
or parsed); 2 usage error, configuration error or an internal error of gradlint.
Static linting imports neither torch nor keras nor tensorflow; only ``--dynamic`` does, in
subprocesses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from gradlint import __version__
from gradlint.engine import FileResult, LintConfig, Selection, lint_file, lint_paths
from gradlint.cache import ResultCache, clear, default_cache_dir
from gradlint.config import ConfigError, FileConfig, find_config, load_config
from gradlint.reporters import Report, render, render_statistics
from gradlint.rule import SYSTEM_CODES, all_rules

if TYPE_CHECKING:  # the dynamic package is imported only with --dynamic
    from gradlint.dynamic import DynamicOptions

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split_codes(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        out.extend(part.strip().upper() for part in value.split(",") if part.strip())
    return tuple(out)


def _validate_codes(codes: Sequence[str], option: str) -> None:
    known = set(all_rules()) | set(SYSTEM_CODES)
    for code in codes:
        if code == "ALL":
            continue
        if not any(k.startswith(code) for k in known):
            raise click.BadParameter(f"unknown rule code or prefix {code!r}", param_hint=option)


class _DefaultToCheck(click.Group):
    """``gradlint PATH...`` means ``gradlint check PATH...``, as users type it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradlint")
def main() -> None:
    """gradlint: find vanishing and exploding gradients in PyTorch and Keras model code.

    \b
    gradlint PATH...            lint files and directories (same as `gradlint check`)
    gradlint rules              list the rules
    gradlint explain CODE       print a rule's documentation
    """


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text",
              show_default=True, help="Output format.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Read [tool.gradlint] from this file instead of the nearest pyproject.toml.")
@click.option("--isolated", is_flag=True, help="Ignore all configuration files.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings.")
@click.option("--show-source/--no-show-source", default=True, show_default=True,
              help="Text format: show the offending source line with a caret.")
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; ALL for all).")
@click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top of the default selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--exclude", multiple=True, help="Glob patterns of files/directories to skip (replaces the configured ones).")
@click.option("--extend-exclude", multiple=True, help="Glob patterns to skip on top of the configured ones.")
@click.option("--stdin-filename", default=None, help="Path to report when linting standard input (`-`).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of standard output.")
@click.option("--color/--no-color", default=None, help="Colour the text output (default: on a terminal).")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
              help="Report only findings not in this baseline file (created from the current findings if missing).")
@click.option("--update-baseline", is_flag=True, help="With --baseline: rewrite the baseline from the current findings.")
@click.option("--fix", "apply_fix", is_flag=True, help="Apply fixes (safe ones; with --unsafe-fixes, all).")
@click.option("--unsafe-fixes", is_flag=True, help="Allow fixes that change the model's behaviour (e.g. its init).")
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff; change no file.")
@click.option("--fix-read-only", is_flag=True, help="With --fix: also rewrite files without write permission bits.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the result cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache directory (default: .gradlint_cache in the project root; env GRADLINT_CACHE_DIR).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Parallel processes (default: one per CPU; only used for many files).")
@click.option("--dynamic", is_flag=True,
              help="Also BUILD each model found and measure its real gradients (executes your code, in subprocesses).")
@click.option("--model-args", default=None, metavar="JSON",
              help='Constructor arguments per model for --dynamic, e.g. \'{"Net": {"depth": 4}}\'.')
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[MODEL=]D1,D2,...",
              help="Per-sample input shape for --dynamic (no batch axis), for one model or all.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per model for --dynamic.")
@click.option("--seeds", default=3, show_default=True, help="Seeds per model for --dynamic (medians are reported).")
@click.option("--plot", "plot_dir", default=None, type=click.Path(file_okay=False),
              help="With --dynamic: write a gradient-flow PNG per model into this directory.")
def check(paths: tuple[str, ...], fmt: str, config_path: str | None, isolated: bool, statistics: bool,
          show_source: bool,
          select: tuple[str, ...], extend_select: tuple[str, ...],
          ignore: tuple[str, ...], exclude: tuple[str, ...], extend_exclude: tuple[str, ...],
          stdin_filename: str | None, exit_zero: bool,
          output_file: str | None, color: bool | None, baseline_path: str | None, update_baseline: bool,
          apply_fix: bool, unsafe_fixes: bool, show_diff: bool, fix_read_only: bool, no_cache: bool, cache_dir: str | None, jobs: int | None,
          dynamic: bool, model_args: str | None,
          input_shapes: tuple[str, ...], timeout: float, seeds: int, plot_dir: str | None) -> None:
    """Lint PATHS (files or directories; `-` reads standard input)."""
    if not paths:
        paths = (".",)
    try:
        file_config = _file_config(config_path, isolated, paths)
    except ConfigError as exc:
        click.echo(f"gradlint: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    for label, codes in (("select", file_config.select), ("ignore", file_config.ignore),
                         ("extend-select", file_config.extend_select)):
        try:
            _validate_codes(codes, label)
        except click.BadParameter as exc:
            click.echo(f"gradlint: error: {file_config.path}: {label}: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)
    selected = _split_codes(select) or file_config.select
    extended = file_config.extend_select + _split_codes(extend_select)
    ignored = file_config.ignore + _split_codes(ignore)
    _validate_codes(_split_codes(select), "--select")
    _validate_codes(_split_codes(extend_select), "--extend-select")
    _validate_codes(_split_codes(ignore), "--ignore")
    if selected:
        selection = Selection(selected + extended, ignored)
    elif extended:
        defaults = tuple(code for code, rule in all_rules().items() if rule.default_enabled) + tuple(
            code for code in SYSTEM_CODES if code != "GRD100")
        selection = Selection(defaults + extended, ignored)
    else:
        selection = Selection((), ignored)
    config = LintConfig(selection=selection, options=file_config.options,
                        exclude=(tuple(exclude) or file_config.exclude) + file_config.extend_exclude + tuple(extend_exclude),
                        per_file_ignores=file_config.ignored_for if file_config.per_file_ignores else None,
                        project_root=str(file_config.root))
    ctx = click.get_current_context()
    dyn_defaults = file_config.dynamic
    if ctx.get_parameter_source("timeout") == click.core.ParameterSource.DEFAULT and "timeout" in dyn_defaults:
        timeout = float(dyn_defaults["timeout"])
    if ctx.get_parameter_source("seeds") == click.core.ParameterSource.DEFAULT and "seeds" in dyn_defaults:
        seeds = int(dyn_defaults["seeds"])

    results = []
    file_paths = [p for p in paths if p != "-"]
    stdin_data: bytes | None = None
    if "-" in paths:
        stdin_data = sys.stdin.buffer.read()
        results.append(lint_file(stdin_filename or "<stdin>", config, data=stdin_data))
    if file_paths:
        cache = None
        if not no_cache and not dynamic:
            directory = cache_dir or os.environ.get("GRADLINT_CACHE_DIR")
            cache = ResultCache(Path(directory) if directory else default_cache_dir(config.project_root))
        progress = _progress_printer() if _show_progress() else None
        results.extend(lint_paths(file_paths, config, jobs=jobs, cache=cache, on_progress=progress))
        if progress is not None:
            click.echo("\r\033[K", nl=False, err=True)

    fix_failed = False
    report_to_stderr = False
    if apply_fix or show_diff:
        stdin_result = results[0] if stdin_data is not None else None
        if stdin_result is not None:
            # As ruff does: the fixed source (or, with --diff, the diff) on stdout, the report on stderr.
            fixed_stdin = _fix_stdin(stdin_result, stdin_data or b"", unsafe_fixes, show_diff)
            if fixed_stdin is not None:
                results[0] = lint_file(stdin_result.path, config, data=fixed_stdin)
            report_to_stderr = not output_file
        rest = results[1:] if stdin_result is not None else results
        fixed_rest, fix_failed = _apply_fixes(rest, config, unsafe_fixes, show_diff, fix_read_only)
        results = ([results[0]] if stdin_result is not None else []) + fixed_rest
    for raw in file_paths:
        if os.path.isdir(raw) and not any(r.path.startswith(os.path.join(raw, "")) or r.path == raw for r in results):
            click.echo(f"gradlint: warning: no Python files found under {raw}", err=True)
    diagnostics = sorted((d for r in results for d in r.diagnostics), key=lambda d: d.sort_key())
    if baseline_path:
        from gradlint.baseline import load_baseline, new_findings, write_baseline

        target = Path(baseline_path)
        if update_baseline or not target.exists():
            count = write_baseline(target, diagnostics)
            click.echo(f"gradlint: recorded {count} finding{'s' if count != 1 else ''} in {target}", err=True)
            diagnostics = []
        else:
            try:
                diagnostics = new_findings(diagnostics, load_baseline(target), target)
            except ValueError as exc:
                click.echo(f"gradlint: error: {exc}", err=True)
                sys.exit(EXIT_ERROR)
    report = Report(
        diagnostics=diagnostics,
        files_linted=sum(1 for r in results if r.path and not r.path.startswith("<missing")),
        files_with_models=sum(1 for r in results if r.models),
        models=sum(len(r.models) for r in results),
    )
    use_color = color if color is not None else (output_file is None and sys.stdout.isatty()
                                                  and "NO_COLOR" not in os.environ)
    dynamic_text = ""
    if dynamic:
        from gradlint.dynamic_bridge import run_dynamic_check  # only now: it starts subprocesses

        try:
            options = _dynamic_options(model_args, input_shapes, timeout, seeds, plot_dir, dyn_defaults)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        dynamic_results = run_dynamic_check(results, options, progress=sys.stderr.isatty())
        report.extra["dynamic"] = [r.to_json() for r in dynamic_results]
        if fmt == "text":
            from gradlint.dynamic import render_results

            dynamic_text = "\n" + render_results(dynamic_results, color=bool(use_color))
    if statistics:
        text = render_statistics(report)
    else:
        text = render(report, fmt, color=bool(use_color) and fmt == "text", show_source=show_source) + dynamic_text
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False, err=report_to_stderr)

    if fix_failed or any(d.code == "GRD902" for d in diagnostics):
        sys.exit(EXIT_ERROR)
    if report.failing and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_CLEAN)


def rules_markdown() -> str:
    """The README's rules table (a test keeps the README in sync with this)."""
    lines = ["| Code | Name | Default | Fixable | What it finds |", "|---|---|---|---|---|"]
    for code, rule in all_rules().items():
        lines.append(f"| {code} | `{rule.name}` | {'on' if rule.default_enabled else 'off'} | "
                     f"{'yes' if rule.fixable else 'no'} | {rule.summary} |")
    for code, (name, text) in SYSTEM_CODES.items():
        lines.append(f"| {code} | `{name}` | on | no | {text} |")
    return "\n".join(lines) + "\n"


def _fix_stdin(result: FileResult, data: bytes, unsafe: bool, diff_only: bool) -> bytes | None:
    """Standard input with --fix: the fixed source on stdout (the input as is when nothing
    applies); with --diff: the diff. Returns the fixed bytes, None when nothing changed."""
    from gradlint.fixes import fix_source

    plan = fix_source(data, result.diagnostics, unsafe)
    if diff_only:
        if plan is not None:
            click.echo(plan.diff(result.path), nl=False)
        return None
    sys.stdout.buffer.write(plan.fixed if plan is not None else data)
    sys.stdout.buffer.flush()
    return plan.fixed if plan is not None else None


def _apply_fixes(results: list, config: LintConfig, unsafe: bool, diff_only: bool,
                 allow_read_only: bool) -> tuple[list, bool]:
    """Fix what can be fixed, say per file what changed or why it did not, then lint the changed
    files again (what remains is reported). Returns the results and whether any write failed."""
    from gradlint.fixes import fix_results

    run = fix_results(results, unsafe, diff_only, allow_read_only)
    for diff in run.diffs:
        click.echo(diff, nl=False)
    for entry in run.files:
        if entry.error is not None:
            click.echo(f"gradlint: error: {entry.path}: not fixed: {entry.error}", err=True)
        elif entry.applied and not diff_only:
            lines = ", ".join(str(f.span.line) for f in sorted(entry.applied, key=lambda f: f.span.line))
            count = len(entry.applied)
            note = f" ({entry.note})" if entry.note else ""
            click.echo(f"gradlint: fixed {count} problem{'s' if count != 1 else ''} in {entry.path}, "
                       f"line{'s' if count != 1 else ''} {lines}{note}", err=True)
        elif entry.note:
            click.echo(f"gradlint: {entry.path}: {entry.note}", err=True)
    total = run.applied if not diff_only else sum(len(f.applied) for f in run.files if f.error is None)
    if diff_only and run.files:
        click.echo(f"gradlint: {total} fix{'es' if total != 1 else ''} available (--diff changed nothing)", err=True)
    elif run.changed:
        files = len(run.changed)
        click.echo(f"gradlint: fixed {total} problem{'s' if total != 1 else ''} in {files} "
                   f"file{'s' if files != 1 else ''}", err=True)
    if run.hidden_unsafe and not unsafe:
        n = run.hidden_unsafe
        click.echo(f"gradlint: {n} fix{'es' if n != 1 else ''} available with `--unsafe-fixes`", err=True)
    changed = {entry.path for entry in run.changed}
    if diff_only or not changed:
        return results, bool(run.failed)
    return [lint_file(r.path, config) if r.path in changed else r for r in results], bool(run.failed)


def _show_progress() -> bool:
    """Progress only for a person watching: a terminal, and not under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI") and "NO_PROGRESS" not in os.environ


def _progress_printer():  # type: ignore[no-untyped-def]
    import time

    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if total >= 20 and (now - last[0] > 0.1 or done == total):
            last[0] = now
            click.echo(f"\rgradlint: {done}/{total} files", nl=False, err=True)

    return show


def _file_config(config_path: str | None, isolated: bool, paths: Sequence[str]) -> FileConfig:
    if isolated:
        return FileConfig()
    if config_path:
        return load_config(Path(config_path))
    start = Path.cwd()
    found = find_config(start)
    if found is None:
        first = next((p for p in paths if p != "-"), None)
        if first is not None and os.path.exists(first):
            found = find_config(Path(first).resolve())
    return load_config(found) if found else FileConfig()


def _dynamic_options(model_args: str | None, input_shapes: Sequence[str], timeout: float, seeds: int,
                     plot_dir: str | None, defaults: dict | None = None) -> DynamicOptions:
    import json
    from dataclasses import replace

    from gradlint.dynamic import DynamicOptions
    from gradlint.verdict import Thresholds

    args: dict[str, dict] = {}
    if model_args:
        try:
            parsed = json.loads(model_args)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--model-args is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
            raise ValueError('--model-args must map model names to keyword arguments: {"Net": {"depth": 4}}')
        args = parsed
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in input_shapes:
        name, _, dims = spec.rpartition("=")
        try:
            shapes[name or "*"] = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            raise ValueError(f"--input-shape {spec!r}: expected [MODEL=]D1,D2,...") from None
    extra: dict = {}
    for key, field_name in (("batch-size", "batch_size"), ("memory-mb", "memory_mb")):
        if defaults and key in defaults:
            extra[field_name] = type(getattr(DynamicOptions(), field_name))(defaults[key])
    # The verdict's two ratio bounds can be set in [tool.gradlint.dynamic]; the rest of the
    # protocol's thresholds are fixed (gradlint.verdict).
    bounds = {name.replace("-", "_"): float(defaults[name]) for name in ("vanishing-ratio", "exploding-ratio")
              if defaults and name in defaults}
    return DynamicOptions(timeout=timeout, seeds=seeds, model_args=args, input_shapes=shapes, plot_dir=plot_dir,
                          thresholds=replace(Thresholds(), **bounds), **extra)


@main.command("clean")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
def clean_command(cache_dir: str | None) -> None:
    """Delete the result cache."""
    directory = Path(cache_dir or os.environ.get("GRADLINT_CACHE_DIR") or default_cache_dir(None))
    click.echo(f"removed {directory}" if clear(directory) else f"no gradlint cache at {directory}")


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules_command(fmt: str) -> None:
    """List the rules: code, name, default on/off, fixable, summary."""
    rules = all_rules()
    if fmt == "markdown":
        click.echo(rules_markdown(), nl=False)
        return
    if fmt == "json":
        import json

        click.echo(json.dumps([
            {"code": code, "name": rule.name, "default": rule.default_enabled, "fixable": rule.fixable,
             "summary": rule.summary} for code, rule in rules.items()], indent=2))
        return
    for code, rule in rules.items():
        default = "on " if rule.default_enabled else "off"
        fixable = "fix" if rule.fixable else "   "
        click.echo(f"{code}  {rule.name:<32} {default} {fixable}  {rule.summary}")


@main.command("explain")
@click.argument("code")
def explain_command(code: str) -> None:
    """Print the documentation of rule CODE (e.g. GRD001 or saturating-activation-stack)."""
    rules = all_rules()
    wanted = code.upper()
    for rule_code, rule in rules.items():
        if rule_code == wanted or rule.name == code.lower():
            click.echo(rule.docs())
            return
    if wanted in SYSTEM_CODES:
        name, text = SYSTEM_CODES[wanted]
        click.echo(f"{wanted} ({name})\n\n{text}")
        return
    click.echo(f"gradlint: unknown rule {code!r}; `gradlint rules` lists them.", err=True)
    sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
