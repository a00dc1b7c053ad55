"""Result cache: a file's diagnostics keyed by its content, the effective configuration and
gradlint's version. Plain JSON, validated on load: a corrupt or foreign entry is ignored and
rebuilt. Entries are written atomically (temp file + rename), so concurrent runs sharing a
cache never see half-written data.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gradlint import __version__
from gradlint.diagnostics import Diagnostic
from gradlint.estimate import Estimate
from gradlint.model import InputHint, Model, Span
from gradlint.rule import InitFix, Severity

CACHE_DIR_NAME = ".gradlint_cache"
_FORMAT = 1


def default_cache_dir(project_root: str | None) -> Path:
    return Path(project_root or os.getcwd()) / CACHE_DIR_NAME


_CODE_STAMP: str | None = None


def _code_stamp() -> str:
    """Identity of the installed gradlint code (sizes and mtimes of its modules): an editable
    install that changes keeps no stale results, without reading every module."""
    global _CODE_STAMP
    if _CODE_STAMP is None:
        import gradlint

        # By name: gradlint.rules is the checkout's rules/ folder mapped at install time (mypy cannot follow it).
        rules = importlib.import_module("gradlint.rules")
        digest = hashlib.sha256()
        for package in (gradlint, rules):
            for directory in package.__path__:
                for path in sorted(Path(directory).rglob("*.py")):
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        _CODE_STAMP = digest.hexdigest()
    return _CODE_STAMP


def cache_key(data: bytes, config_fingerprint: str) -> str:
    digest = hashlib.sha256()
    digest.update(__version__.encode())
    digest.update(_code_stamp().encode())
    digest.update(b"\0")
    digest.update(config_fingerprint.encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


class ResultCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory / f"v{_FORMAT}-{__version__}"

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def load(self, key: str, path: str) -> tuple[list[Diagnostic], list[Model], bool] | None:
        try:
            raw = json.loads(self._entry(key).read_text(encoding="utf-8"))
            if raw.get("format") != _FORMAT or raw.get("key") != key:
                return None
            diagnostics = [_diagnostic_from_json(d, path) for d in raw["diagnostics"]]
            models = [_model_from_json(m) for m in raw["models"]]
            return diagnostics, models, bool(raw.get("skipped", False))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, corrupt or foreign: lint again

    def store(self, key: str, diagnostics: list[Diagnostic], models: list[Model], skipped: bool) -> None:
        payload = {"format": _FORMAT, "key": key, "skipped": skipped,
                   "diagnostics": [_diagnostic_to_json(d) for d in diagnostics],
                   "models": [_model_to_json(m) for m in models]}
        target = self._entry(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_tag()
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
            os.replace(tmp, target)
        except OSError:
            pass  # a read-only checkout still lints; it just does not cache

    def _write_tag(self) -> None:
        # Backup tools and git skip the directory (the same tag as other tools' caches).
        tag = self.directory.parent / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# gradlint result cache\n")
        ignore = self.directory.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")


def clear(directory: Path) -> bool:
    if directory.is_dir() and (directory / "CACHEDIR.TAG").exists():
        shutil.rmtree(directory)
        return True
    return False


def _diagnostic_to_json(diag: Diagnostic) -> dict[str, Any]:
    out = diag.to_json()
    out.pop("path", None)
    fix = diag.fix
    if isinstance(fix, InitFix):
        out["fix_full"] = [[fix.span.line, fix.span.col, fix.span.end_line, fix.span.end_col], fix.framework,
                           fix.scheme, [list(k) for k in fix.keywords], fix.safe, fix.description]
    if diag.estimate is not None:
        e = diag.estimate
        out["estimate_full"] = [e.log10_weight_ratio, e.log10_backward_ratio, e.layers, e.exact,
                                list(e.assumptions), e.per_layer_gain, e.max_log10_q]
    return out


def _diagnostic_from_json(raw: dict[str, Any], path: str) -> Diagnostic:
    estimate = None
    if "estimate_full" in raw:
        w, b, layers, exact, assumptions, gain, q = raw["estimate_full"]
        estimate = Estimate(float(w), float(b), int(layers), bool(exact), [str(a) for a in assumptions],
                            gain, q)
    known = {"path", "line", "column", "end_line", "end_column", "code", "name", "severity", "message", "model",
             "estimate", "estimate_full", "fingerprint", "fix", "fix_full"}
    fix = None
    if "fix_full" in raw:
        span, framework, scheme, keywords, safe, description = raw["fix_full"]
        fix = InitFix(Span(*[int(v) for v in span]), str(framework), str(scheme),
                      tuple((str(k), str(v)) for k, v in keywords), bool(safe), str(description))
    return Diagnostic(path, int(raw["line"]), int(raw["column"]), int(raw["end_line"]), int(raw["end_column"]),
                      str(raw["code"]), str(raw["name"]), Severity(raw["severity"]), str(raw["message"]),
                      raw.get("model"), estimate, {k: v for k, v in raw.items() if k not in known},
                      raw.get("fingerprint"), fix)


def _model_to_json(model: Model) -> dict[str, Any]:
    hint = model.input_hint
    return {"name": model.name, "framework": model.framework, "origin": model.origin,
            "span": [model.span.line, model.span.col, model.span.end_line, model.span.end_col],
            "symbol": model.symbol, "build": model.build, "end_line": model.end_line,
            "hint": None if hint is None else {"kind": hint.kind, "shape": list(hint.shape) if hint.shape else None,
                                               "vocab": hint.vocab}}


def _model_from_json(raw: dict[str, Any]) -> Model:
    """A model summary: everything but its layers (the rules already ran)."""
    hint = raw.get("hint")
    return Model(name=str(raw["name"]), framework=str(raw["framework"]), origin=str(raw["origin"]),
                 span=Span(*[int(v) for v in raw["span"]]), path=[], symbol=raw.get("symbol"),
                 build=raw.get("build"), end_line=raw.get("end_line"),
                 input_hint=None if hint is None else InputHint(
                     str(hint["kind"]), tuple(hint["shape"]) if hint.get("shape") else None, hint.get("vocab")))


def summarize(model: Model) -> Model:
    return _model_from_json(_model_to_json(model))
