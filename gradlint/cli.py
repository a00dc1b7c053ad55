"""Command line: a thin layer over the engine and the reporters.

Exit codes: 0 no findings; 1 findings (warnings/errors, including files that cannot be read
or parsed); 2 usage error, configuration error or an internal error of gradlint.
Static linting imports neither torch nor keras nor tensorflow; only ``--dynamic`` does, in
subprocesses.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gradlint import __version__
from gradlint.cache import ResultCache, clear, default_cache_dir
from gradlint.config import ConfigError, FileConfig, find_config, load_config
from gradlint.diagnostics import Diagnostic
from gradlint.engine import (
    MAX_FILE_BYTES,
    FileResult,
    LintConfig,
    Selection,
    SourceError,
    collect_between_files,
    decode_source,
    lint_file,
    lint_paths,
)
from gradlint.records import dataclass
from gradlint.reporters import (
    STATISTICS_FORMATS,
    BaselineNote,
    Report,
    render,
    render_statistics,
)
from gradlint.rule import SYSTEM_ADVICE, SYSTEM_CODES, all_rules, code_for_selector, unknown_selector

if TYPE_CHECKING:
    from gradlint.dynamic import DynamicOptions, DynamicResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Failure(Exception):
    """A problem the user must fix before gradlint can report (exit 2, one line on stderr)."""


def _cli_codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    """Comma-separated codes, prefixes or rule names from the command line, as codes."""
    written = [part.strip() for value in values for part in value.split(",") if part.strip()]
    out = tuple(code_for_selector(part) for part in written)
    unknown = unknown_selector(out)
    if unknown is not None:
        typed = written[out.index(unknown)]
        raise click.BadParameter(f"unknown rule code, prefix or name {typed!r} (`gradlint rules` lists them)",
                                 param_hint=option)
    return out


def _limit(key: str, value: Any) -> Any:
    """A dynamic-check limit given on the command line, checked against gradlint.limits."""
    from gradlint.limits import limit_error

    problem = limit_error(key, value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


class _DefaultToCheck(click.Group):
    """``gradlint PATH...`` means ``gradlint check PATH...``, as users type it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Every way gradlint itself fails exits 2 with a message, never 1 ("findings")."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _tune_garbage_collector()  # the process is gradlint's own
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:  # usage errors: click's message, exit 2
            exc.show()
            sys.exit(exc.exit_code if exc.exit_code != EXIT_FINDINGS else EXIT_ERROR)
        except click.exceptions.Abort:  # Ctrl-C (click's own handler would exit 1)
            click.echo("\ngradlint: interrupted", err=True)
            sys.exit(EXIT_ERROR)
        except BrokenPipeError:  # the reader went away (`gradlint . | head`)
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            sys.exit(EXIT_ERROR)
        except (Exception, RecursionError, MemoryError) as exc:  # noqa: BLE001 -- a bug in gradlint
            import traceback

            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            click.echo(f"gradlint: internal error: {detail}\n(please report it at the gradlint issue tracker, "
                       f"with the command line; GRADLINT_DEBUG=1 prints the traceback)", err=True)
            if os.environ.get("GRADLINT_DEBUG"):
                traceback.print_exc()
            sys.exit(EXIT_ERROR)
        sys.exit(code if isinstance(code, int) else EXIT_CLEAN)


@click.group(cls=_DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradlint")
def main() -> None:
    """gradlint: find vanishing and exploding gradients in PyTorch and Keras model code.

    \b
    gradlint PATH...            lint files and directories (same as `gradlint check`)
    gradlint rules              list the rules
    gradlint explain CODE       print a rule's documentation
    gradlint server             language server for editors (LSP over stdio; needs pygls)
    """


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text",
              show_default=True, help="Output format.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Read [tool.gradlint] from this file instead of the nearest pyproject.toml.")
@click.option("--isolated", is_flag=True, help="Ignore all configuration files.")
@click.option("--statistics", is_flag=True,
              help="Print the number of findings per rule instead of the findings (text, json or github).")
@click.option("--show-source/--no-show-source", default=True, show_default=True,
              help="Text format: show the offending source line with a caret.")
@click.option("--select", multiple=True, help="Rule codes, prefixes or names to enable (comma-separated; ALL for all).")
@click.option("--extend-select", multiple=True,
              help="Codes, prefixes or names to enable on top of the default selection.")
@click.option("--ignore", multiple=True, help="Rule codes, prefixes or names to disable.")
@click.option("--exclude", multiple=True,
              help="Glob patterns of files/directories to skip (replaces the configured ones).")
@click.option("--extend-exclude", multiple=True, help="Glob patterns to skip on top of the configured ones.")
@click.option("--stdin-filename", default=None, help="Path to report when linting standard input (`-`).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of standard output.")
@click.option("--color/--no-color", default=None,
              help="Colour the text output, also into a pipe or file"
              " (default: on a terminal, unless NO_COLOR is set).")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
              help="Report only findings not in this baseline file (created from the current findings if missing).")
@click.option("--update-baseline", is_flag=True, help="Rewrite the --baseline file from the current findings.")
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
@click.option("--timeout", default=60.0, show_default=True, callback=lambda c, p, v: _limit("timeout", v),
              help="Seconds per model for --dynamic.")
@click.option("--seeds", default=3, show_default=True, callback=lambda c, p, v: _limit("seeds", v),
              help="Seeds per model for --dynamic (medians are reported).")
@click.option("--plot", "plot_dir", default=None, type=click.Path(file_okay=False),
              help="With --dynamic: write a gradient-flow PNG per model into this directory.")
def check(**params: Any) -> None:
    """Lint PATHS (files or directories; `-` reads standard input)."""
    options = CheckOptions(**params)
    try:
        code = run_check(options)
    except _Failure as exc:
        click.echo(f"gradlint: error: {exc}", err=True)
        code = EXIT_ERROR
    sys.exit(code)


@dataclass
class CheckOptions:
    """The options of `gradlint check`, as click parsed them."""

    paths: tuple[str, ...]
    fmt: str
    config_path: str | None
    isolated: bool
    statistics: bool
    show_source: bool
    select: tuple[str, ...]
    extend_select: tuple[str, ...]
    ignore: tuple[str, ...]
    exclude: tuple[str, ...]
    extend_exclude: tuple[str, ...]
    stdin_filename: str | None
    exit_zero: bool
    output_file: str | None
    color: bool | None
    baseline_path: str | None
    update_baseline: bool
    apply_fix: bool
    unsafe_fixes: bool
    show_diff: bool
    fix_read_only: bool
    no_cache: bool
    cache_dir: str | None
    jobs: int | None
    dynamic: bool
    model_args: str | None
    input_shapes: tuple[str, ...]
    timeout: float
    seeds: int
    plot_dir: str | None


def _tune_garbage_collector() -> None:
    """A lint run allocates millions of short-lived, often cyclic objects (one file's
    interpretation) next to a small long-lived set. With CPython's defaults the oldest generation
    is collected dozens of times, each walking whatever is alive: 42 % of the CPU time of a cold
    lint of transformers/models (27 of 65 s). Objects that exist now (the imported modules) never
    become garbage, so they are frozen out of every collection; young collections run less often
    (as mypy does), and each file's garbage is collected when the file is done, its survivors
    frozen (``engine.collect_between_files``). Only a process gradlint's command line owns (and
    the workers it forks) is tuned, never a caller's that runs ``main`` with ``standalone_mode=False``."""
    gc.freeze()
    gc.set_threshold(200_000, 30, 30)
    collect_between_files()


def run_check(options: CheckOptions) -> int:
    """Option checks -> configuration -> lint -> fixes -> baseline -> report; the exit code."""
    _check_usage(options)
    file_config = _load_file_config(options)
    config = _lint_config(options, file_config)
    results, stdin = _lint(options, config)
    fix_failed, report_to_stderr = False, False
    if options.apply_fix or options.show_diff:
        results, fix_failed, report_to_stderr = _fix(options, config, results, stdin)
    _warn_empty_directories(options.paths, results)
    dynamic_results, measured = _run_dynamic(options, file_config, config, results)
    diagnostics = sorted([*(d for r in results for d in r.diagnostics), *measured], key=lambda d: d.sort_key())
    diagnostics, note = _apply_baseline(options, diagnostics)
    report = Report(
        diagnostics=diagnostics,
        files_linted=sum(1 for r in results if r.path and not r.path.startswith("<missing")),
        files_with_models=sum(1 for r in results if r.models),
        models=sum(len(r.models) for r in results),
        models_understood=sum(1 for r in results for m in r.models if m.fully_understood),
        source_lines=_source_loader(*stdin),
        baseline=note,
    )
    use_color = _use_color(options)
    dynamic_text = _dynamic_report(options, dynamic_results, report, use_color)
    if options.statistics:
        text = render_statistics(report, options.fmt)
    else:
        text = render(report, options.fmt, color=use_color and options.fmt == "text",
                      show_source=options.show_source) + dynamic_text
    _emit(text, options.output_file, use_color, to_stderr=report_to_stderr)
    _note_baseline(options, note)
    return EXIT_ERROR if fix_failed else _exit_code(report, options.exit_zero)


# ---------------------------------------------------------------------- option checks


def _check_usage(options: CheckOptions) -> None:
    """Option combinations that cannot work, refused before any file is read."""
    if not options.paths:
        options.paths = (".",)
    if options.update_baseline and not options.baseline_path:
        raise click.UsageError("--update-baseline needs --baseline FILE (the baseline to rewrite)")
    if options.statistics and options.fmt not in STATISTICS_FORMATS:
        raise click.UsageError(f"--statistics prints counts per rule, which {options.fmt} cannot hold; use "
                               f"--format {' or '.join(STATISTICS_FORMATS)}, or drop --statistics")
    if options.output_file:
        _check_output_file(options.output_file)


def _check_output_file(path: str) -> None:
    """-o FILE must be writable before linting starts (a long --dynamic run is not wasted)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise _Failure(f"cannot write the report to {path}: the directory {os.path.dirname(path) or '.'} "
                       f"does not exist")
    if os.path.isdir(path):
        raise _Failure(f"cannot write the report to {path}: it is a directory")
    target = path if os.path.exists(path) else directory
    if not os.access(target, os.W_OK):
        raise _Failure(f"cannot write the report to {path}: permission denied")


# ---------------------------------------------------------------------- configuration


def _load_file_config(options: CheckOptions) -> FileConfig:
    try:
        return _file_config(options.config_path, options.isolated, options.paths)
    except ConfigError as exc:
        raise _Failure(str(exc)) from None


def _selection(options: CheckOptions, file_config: FileConfig) -> Selection:
    """ruff semantics: --select replaces the configured selection, --extend-select and --ignore add."""
    selected = _cli_codes(options.select, "--select") or file_config.select
    extended = file_config.extend_select + _cli_codes(options.extend_select, "--extend-select")
    ignored = file_config.ignore + _cli_codes(options.ignore, "--ignore")
    if selected:
        return Selection(selected + extended, ignored)
    if extended:
        defaults = tuple(code for code, rule in all_rules().items() if rule.default_enabled) + tuple(
            code for code in SYSTEM_CODES if code != "GRD100")
        return Selection(defaults + extended, ignored)
    return Selection((), ignored)


def _lint_config(options: CheckOptions, file_config: FileConfig) -> LintConfig:
    exclude = ((tuple(options.exclude) or file_config.exclude) + file_config.extend_exclude
               + tuple(options.extend_exclude))
    return LintConfig(selection=_selection(options, file_config), options=file_config.options, exclude=exclude,
                      per_file_ignores=file_config.ignored_for if file_config.per_file_ignores else None,
                      project_root=str(file_config.root))


# ---------------------------------------------------------------------- linting


def _lint(options: CheckOptions, config: LintConfig) -> tuple[list[FileResult], tuple[str | None, bytes]]:
    """Results of stdin (`-`) and the paths; and (name, bytes) of stdin, for snippets."""
    results: list[FileResult] = []
    stdin: tuple[str | None, bytes] = (None, b"")
    if "-" in options.paths:
        name = options.stdin_filename or "<stdin>"
        stdin = (name, sys.stdin.buffer.read(MAX_FILE_BYTES + 1))  # more is reported as too large, not read
        results.append(lint_file(name, config, data=stdin[1]))
    file_paths = [p for p in options.paths if p != "-"]
    if file_paths:
        cache = None
        if not options.no_cache and not options.dynamic:
            directory = options.cache_dir or os.environ.get("GRADLINT_CACHE_DIR")
            cache = ResultCache(Path(directory) if directory else default_cache_dir(config.project_root))
        progress = _progress_printer() if _show_progress() else None
        results.extend(lint_paths(file_paths, config, jobs=options.jobs, cache=cache, on_progress=progress))
        if progress is not None:
            click.echo("\r\033[K", nl=False, err=True)
    return results, stdin


def _warn_empty_directories(paths: Sequence[str], results: list[FileResult]) -> None:
    for raw in paths:
        if raw != "-" and os.path.isdir(raw) and not any(
                r.path.startswith(os.path.join(raw, "")) or r.path == raw for r in results):
            click.echo(f"gradlint: warning: no Python files found under {raw}", err=True)


def _source_loader(stdin_name: str | None, stdin_data: bytes) -> Callable[[str], list[str] | None]:
    """Source lines for the text reporter's snippets: stdin from memory, files from disk."""

    def lines(path: str) -> list[str] | None:
        try:
            if stdin_name is not None and path == stdin_name:
                return decode_source(stdin_data).splitlines()
            with open(path, "rb") as handle:
                return decode_source(handle.read(MAX_FILE_BYTES)).splitlines()
        except (OSError, SourceError):
            return None

    return lines


# ---------------------------------------------------------------------- fixes


def _fix(options: CheckOptions, config: LintConfig, results: list[FileResult],
         stdin: tuple[str | None, bytes]) -> tuple[list[FileResult], bool, bool]:
    """--fix / --diff: the results after fixing, whether a write failed, and whether the report
    goes to stderr (stdin's fixed source or diff holds stdout, as in ruff)."""
    stdin_result = results[0] if stdin[0] is not None else None
    report_to_stderr = False
    if stdin_result is not None:
        fixed_stdin = _fix_stdin(stdin_result, stdin[1], options.unsafe_fixes, options.show_diff)
        if fixed_stdin is not None:
            results[0] = lint_file(stdin_result.path, config, data=fixed_stdin)
        report_to_stderr = not options.output_file
    rest = results[1:] if stdin_result is not None else results
    fixed_rest, fix_failed = _apply_fixes(rest, config, options.unsafe_fixes, options.show_diff,
                                          options.fix_read_only)
    return ([results[0]] if stdin_result is not None else []) + fixed_rest, fix_failed, report_to_stderr


# ---------------------------------------------------------------------- baseline


def _apply_baseline(
    options: CheckOptions, diagnostics: list[Diagnostic]
) -> tuple[list[Diagnostic], BaselineNote | None]:
    """First run (or --update-baseline): record every finding, report none. Later: hide the known."""
    if not options.baseline_path:
        return diagnostics, None
    from gradlint.baseline import load_baseline, new_findings, write_baseline

    target = Path(options.baseline_path)
    if options.update_baseline or not target.exists():
        try:
            count = write_baseline(target, diagnostics)
        except OSError as exc:
            raise _Failure(f"cannot write the baseline {target}: {exc.strerror or exc}") from None
        return [], BaselineNote(str(target), recorded=count)
    try:
        kept = new_findings(diagnostics, load_baseline(target), target)
    except ValueError as exc:
        raise _Failure(str(exc)) from None
    return kept, BaselineNote(str(target), hidden=len(diagnostics) - len(kept))


def _note_baseline(options: CheckOptions, note: BaselineNote | None) -> None:
    """What the baseline did, on stderr, when the report itself does not say it (machine formats,
    --statistics, -o): stdout stays parseable."""
    if note is None or (options.fmt == "text" and not options.statistics and not options.output_file):
        return
    if note.recorded is not None:
        click.echo(f"gradlint: recorded {note.recorded} finding{'s' if note.recorded != 1 else ''} in {note.path}",
                   err=True)
    elif note.hidden:
        click.echo(f"gradlint: {note.hidden} known finding{'s' if note.hidden != 1 else ''} hidden by the "
                   f"baseline {note.path}", err=True)


# ---------------------------------------------------------------------- dynamic check


def _run_dynamic(options: CheckOptions, file_config: FileConfig, config: LintConfig,
                 results: list[FileResult]) -> tuple[list[DynamicResult] | None, list[Diagnostic]]:
    """--dynamic: measure the models (static findings get confirmed / not reproduced); a measured
    problem no static finding covers becomes a diagnostic of its own (GRD801)."""
    if not options.dynamic:
        return None, []
    from gradlint.dynamic_bridge import (  # only now: it starts subprocesses
        measured_diagnostics,
        run_dynamic_check,
    )

    try:
        dynamic_options = _dynamic_options(options.model_args, options.input_shapes,
                                           *_dynamic_budget(options, file_config), options.plot_dir,
                                           file_config.dynamic)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    dynamic_results = run_dynamic_check(results, dynamic_options, progress=sys.stderr.isatty(),
                                        warn=lambda message: click.echo(f"gradlint: warning: {message}", err=True))
    return dynamic_results, measured_diagnostics(results, dynamic_results, config)


def _dynamic_report(options: CheckOptions, dynamic_results: list[DynamicResult] | None, report: Report,
                    use_color: bool) -> str:
    """The measurements in the JSON report; the text block for the text format ('' otherwise)."""
    if dynamic_results is None:
        return ""
    report.extra["dynamic"] = [r.to_json() for r in dynamic_results]
    if options.fmt != "text":
        return ""
    from gradlint.dynamic import render_results

    return "\n" + render_results(dynamic_results, color=use_color) + "\n"


def _dynamic_budget(options: CheckOptions, file_config: FileConfig) -> tuple[float, int]:
    """--timeout and --seeds, or [tool.gradlint.dynamic] when they were not given."""
    ctx = click.get_current_context()
    defaults = file_config.dynamic
    timeout, seeds = options.timeout, options.seeds
    if ctx.get_parameter_source("timeout") == click.core.ParameterSource.DEFAULT and "timeout" in defaults:
        timeout = float(defaults["timeout"])
    if ctx.get_parameter_source("seeds") == click.core.ParameterSource.DEFAULT and "seeds" in defaults:
        seeds = int(defaults["seeds"])
    return timeout, seeds


# ---------------------------------------------------------------------- output


def _use_color(options: CheckOptions) -> bool:
    """--color / --no-color decide; otherwise colour on a terminal unless NO_COLOR is set."""
    if options.color is not None:
        return options.color
    return options.output_file is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _emit(text: str, output_file: str | None, color: bool, to_stderr: bool = False) -> None:
    if output_file:
        try:
            with open(output_file, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise _Failure(f"cannot write the report to {output_file}: {exc.strerror or exc}") from None
        return
    # color=True keeps the escape codes even when stdout is a pipe (click strips them otherwise).
    click.echo(text, nl=False, color=color, err=to_stderr)


def _exit_code(report: Report, exit_zero: bool) -> int:
    if any(d.code == "GRD902" for d in report.diagnostics):
        return EXIT_ERROR
    if report.failing and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


@dataclass(frozen=True)
class _RuleRow:
    code: str
    name: str
    default: bool
    fixable: bool
    summary: str


def _rule_rows() -> list[_RuleRow]:
    """Every code gradlint reports: the rules, then the system codes (GRD100 is off by default)."""
    rows = [_RuleRow(code, rule.name, rule.default_enabled, rule.fixable, rule.summary)
            for code, rule in all_rules().items()]
    rows += [_RuleRow(code, name, code != "GRD100", False, text) for code, (name, text) in SYSTEM_CODES.items()]
    return rows


def rules_markdown() -> str:
    """The README's rules table (a test keeps the README in sync with this)."""
    lines = ["| Code | Name | Default | Fixable | What it finds |", "|---|---|---|---|---|"]
    for row in _rule_rows():
        lines.append(f"| {row.code} | `{row.name}` | {'on' if row.default else 'off'} | "
                     f"{'yes' if row.fixable else 'no'} | {row.summary} |")
    return "\n".join(lines) + "\n"


def _fix_stdin(result: FileResult, data: bytes, unsafe: bool, diff_only: bool) -> bytes | None:
    """Standard input with --fix: the fixed source on stdout (the input as is when nothing
    applies); with --diff: the diff. Returns the fixed bytes, None when nothing changed."""
    from gradlint.fixes import fix_source

    plan = fix_source(data, result.diagnostics, unsafe, notebook=result.path.lower().endswith(".ipynb"))
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
            where = ", ".join(entry.where) if entry.where else f"line{'s' if count != 1 else ''} {lines}"
            click.echo(f"gradlint: fixed {count} problem{'s' if count != 1 else ''} in {entry.path}, "
                       f"{where}{note}", err=True)
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


def _project_root() -> str | None:
    """The directory of the configuration `gradlint check` would read from here (None: the cwd)."""
    try:
        found = find_config(Path.cwd())
    except ConfigError:
        return None
    return str(found.parent) if found else None


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
            extra[field_name] = defaults[key]  # validated as is (config, DynamicOptions): never rounded
    # The verdict's two ratio bounds can be set in [tool.gradlint.dynamic]; the rest of the
    # protocol's thresholds are fixed (gradlint.verdict).
    bounds = {name.replace("-", "_"): float(defaults[name]) for name in ("vanishing-ratio", "exploding-ratio")
              if defaults and name in defaults}
    return DynamicOptions(timeout=timeout, seeds=seeds, model_args=args, input_shapes=shapes, plot_dir=plot_dir,
                          thresholds=replace(Thresholds(), **bounds), **extra)


@main.command("inspect")
@click.argument("target", metavar="PATH[:MODEL]")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def inspect_command(target: str, fmt: str) -> None:
    """Show what gradlint understood of each model in a file (or the named one): layers, structure,
    unknowns with their reasons, and the estimated forward scale and gradient per layer."""
    import json

    from gradlint.inspection import ModelNotFound, describe_file, render_text, select, split_target

    path, name = split_target(target, os.path.exists)
    if not os.path.isfile(path):
        click.echo(f"gradlint: error: {path}: {'not a file' if os.path.exists(path) else 'no such file'}", err=True)
        sys.exit(EXIT_ERROR)
    result = lint_file(path, LintConfig())  # the engine's reading: encodings, notebooks, masked magics
    try:
        models = select(result.models, name)
    except ModelNotFound as exc:
        click.echo(f"gradlint: error: {path}: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    report = describe_file(path, models)
    text = json.dumps(report, indent=2, ensure_ascii=False) if fmt == "json" else render_text(report)
    click.echo(text, nl=fmt == "json")


@main.command("server")
def server_command() -> None:
    """Run the language server (LSP over stdio) for editors: see docs/editors.md."""
    try:
        from gradlint.server import serve  # pygls: the optional `server` extra
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol", "cattrs", "attrs"):
            raise
        click.echo("gradlint: error: `gradlint server` needs pygls 2: pip install 'pygls>=2' "
                   "(the `server` extra of gradlint)", err=True)
        sys.exit(EXIT_ERROR)
    serve()


@main.command("clean")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="The cache directory to delete (default: the one `gradlint check` uses, .gradlint_cache in "
                   "the project root; env GRADLINT_CACHE_DIR).")
def clean_command(cache_dir: str | None) -> None:
    """Delete the result cache."""
    directory = Path(cache_dir or os.environ.get("GRADLINT_CACHE_DIR") or default_cache_dir(_project_root()))
    click.echo(f"removed {directory}" if clear(directory) else f"no gradlint cache at {directory}")


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules_command(fmt: str) -> None:
    """List the rules and system codes: code, name, default on/off, fixable, summary."""
    rows = _rule_rows()
    if fmt == "markdown":
        click.echo(rules_markdown(), nl=False)
        return
    if fmt == "json":
        import json

        click.echo(json.dumps([{"code": r.code, "name": r.name, "default": r.default, "fixable": r.fixable,
                                "summary": r.summary} for r in rows], indent=2))
        return
    width = max(len(r.name) for r in rows)
    for row in rows:
        click.echo(f"{row.code}  {row.name:<{width}}  {'on ' if row.default else 'off'}  "
                   f"{'fix' if row.fixable else '   '}  {row.summary}")


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
    system = code_for_selector(code)
    if system in SYSTEM_CODES:
        name, text = SYSTEM_CODES[system]
        advice = SYSTEM_ADVICE.get(system, "")
        click.echo(f"{system} ({name})\n\n{text}\n" + (f"\n{advice}\n" if advice else ""), nl=False)
        return
    click.echo(f"gradlint: unknown rule {code!r}; `gradlint rules` lists them.", err=True)
    sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
