"""Result cache: a file's diagnostics keyed by its content, the effective configuration and
gradlint's version. Entries are written atomically (temp file + rename), so concurrent runs
sharing a cache never see half-written data.

A cache directory may be shared, restored from an archive, or written by someone else: an
entry is trusted only if it is a regular file (never a FIFO, device or symlink: opened with
O_NOFOLLOW | O_NONBLOCK), at most ``MAX_ENTRY_BYTES``, and carries an HMAC-SHA256 of its key and
body under a per-user secret kept outside the cache (``$XDG_CACHE_HOME/gradlint/secret``, else
``~/.cache/gradlint/secret``; only if neither can be written, a secret inside the cache
directory). The body is parsed only after the MAC matches, and validated field by field
(finite numbers, bounded integers, strings where strings belong). Anything else is a miss:
the file is linted again and the entry rewritten.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import importlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from gradlint import __version__
from gradlint.diagnostics import Diagnostic
from gradlint.estimate import Estimate
from gradlint.model import InputHint, Model, Span
from gradlint.rule import InitFix, Severity

CACHE_DIR_NAME = ".gradlint_cache"
# 3: model summaries say whether the model was fully understood; 4: estimates carry the protocol's quantities;
# 5: entries carry the project modules the file's imports resolved to; 6: estimates carry the live share
_FORMAT = 7
MAX_ENTRY_BYTES = 32 * 1024 * 1024  # a 10 MB file with 100,000 models needs ~20 MB
_SECRET_BYTES = 32
_MAX_INT = 10**9  # lines, columns, layer counts: anything larger is not ours


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


class BadEntry(Exception):
    """A cache entry that is not exactly what gradlint writes: treated as a miss."""


def _open_regular(path: Path, flags: int, mode: int = 0o600) -> int:
    """A descriptor on a regular file, never following a symlink, never blocking on a FIFO."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file; OSError for anything else or anything larger."""
    fd = _open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "larger than a cache entry can be")
    return data


def _secret_locations(directory: Path) -> list[Path]:
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache")
                                                if os.path.expanduser("~") != "~" else "")
    out = [Path(base) / "gradlint" / "secret"] if base else []
    return out + [directory / "secret"]


def _load_secret(directory: Path) -> bytes | None:
    """The per-user key of entry MACs: read, or created (0600, O_EXCL) on first use."""
    for path in _secret_locations(directory):
        for _ in range(2):
            try:
                secret = read_regular(path, 4096)
                if len(secret) >= _SECRET_BYTES:
                    return secret
                break  # truncated or foreign: try the next location
            except FileNotFoundError:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    fd = _open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    continue  # another run created it just now: read that one
                except OSError:
                    break
                with os.fdopen(fd, "wb") as handle:
                    handle.write(os.urandom(_SECRET_BYTES))
            except OSError:
                break
    return None


class ResultCache:
    def __init__(self, directory: Path) -> None:
        self.root = directory
        self.directory = directory / f"v{_FORMAT}-{__version__}"
        self._secret: bytes | None | bool = False  # False: not loaded yet (loaded per process)

    def __getstate__(self) -> dict[str, Any]:  # pool workers load the secret themselves
        return {"root": self.root, "directory": self.directory, "_secret": False}

    def _key(self) -> bytes | None:
        if self._secret is False:
            self._secret = _load_secret(self.root)
        return self._secret if isinstance(self._secret, bytes) else None

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def _mac(self, secret: bytes, key: str, body: str) -> str:
        return hmac.new(secret, f"{_FORMAT}\0{key}\0{body}".encode(), hashlib.sha256).hexdigest()

    def load(self, key: str, path: str) -> tuple[list[Diagnostic], list[Model], bool] | None:
        secret = self._key()
        if secret is None:
            return None
        try:
            raw = _strict_json(read_regular(self._entry(key), MAX_ENTRY_BYTES))
            if not isinstance(raw, dict) or raw.get("format") != _FORMAT or raw.get("key") != key:
                return None
            body, mac = raw.get("body"), raw.get("mac")
            if not isinstance(body, str) or not isinstance(mac, str) or \
                    not hmac.compare_digest(mac, self._mac(secret, key, body)):
                return None  # forged, or written under another secret
            payload = _strict_json(body.encode())
            if not isinstance(payload, dict):
                return None
            if not _dependencies_unchanged(payload.get("deps", {}), payload.get("missing", [])):
                return None  # a module the file imports changed (or appeared): lint again
            diagnostics = [_diagnostic_from_json(d, path) for d in _list(payload["diagnostics"])]
            models = [_model_from_json(m) for m in _list(payload["models"])]
            return diagnostics, models, _bool(payload.get("skipped", False))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError,
                MemoryError, BadEntry):
            return None  # missing, corrupt, foreign or hostile: lint again

    def store(self, key: str, diagnostics: list[Diagnostic], models: list[Model], skipped: bool,
              dependencies: dict[str, str] | None = None, missing: list[str] | None = None) -> None:
        """``dependencies``: project modules the result depends on (path -> sha-256 of their bytes);
        ``missing``: files whose absence it depends on. The entry is a hit only while both hold."""
        secret = self._key()
        if secret is None:
            return
        body = json.dumps({"skipped": skipped, "diagnostics": [_diagnostic_to_json(d) for d in diagnostics],
                           "models": [_model_to_json(m) for m in models],
                           "deps": dict(dependencies or {}), "missing": list(missing or [])}, allow_nan=False)
        payload = {"format": _FORMAT, "key": key, "mac": self._mac(secret, key, body), "body": body}
        target = self._entry(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_tag()
            import tempfile  # here, not at start-up: it imports random and hashlib's seeding

            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(payload, handle)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except (OSError, ValueError):
            pass  # a read-only checkout still lints; it just does not cache

    def _write_tag(self) -> None:
        # Backup tools and git skip the directory (the same tag as other tools' caches).
        # O_EXCL | O_NOFOLLOW: a planted symlink named like the tag is never written through.
        for name, text in (("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# gradlint result cache\n"),
                           (".gitignore", "*\n")):
            try:
                fd = _open_regular(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError:
                continue  # exists already (or cannot be written): leave it
            with os.fdopen(fd, "w") as handle:
                handle.write(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text!r}")
    return value


def _reject_constant(text: str) -> float:
    raise ValueError(f"{text} is not allowed")


def _strict_json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), parse_float=_finite_float, parse_constant=_reject_constant)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -_MAX_INT <= value <= _MAX_INT:
        raise BadEntry(f"not a small integer: {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadEntry(f"not a finite number: {value!r}")
    return float(value)


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _enc(value: float | None) -> float | str | None:
    """JSON has no inf/nan (an exactly-zero gradient is log10 = -inf): spelled as strings."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _dec(value: Any) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return _float(value)


def _opt_dec(value: Any) -> float | None:
    return None if value is None else _dec(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise BadEntry(f"not a string: {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadEntry(f"not a boolean: {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BadEntry(f"not a list: {value!r}")
    return value


def _span(value: Any) -> Span:
    items = _list(value)
    if len(items) != 4:
        raise BadEntry("a span has four numbers")
    line, col, end_line, end_col = (_int(v) for v in items)
    return Span(line, col, end_line, end_col)


def clear(directory: Path) -> bool:
    """Delete a gradlint cache directory (one holding our CACHEDIR.TAG; never through a symlink)."""
    if directory.is_symlink() or not directory.is_dir() or not (directory / "CACHEDIR.TAG").is_file():
        return False
    import shutil  # here, not at start-up: it imports bz2 and lzma

    shutil.rmtree(directory)
    return True


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str) -> str | None:
    """sha-256 of a file's bytes (memoized per size and mtime), None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_size, st.st_mtime_ns)
    found = _DIGESTS.get(key)
    if found is None:
        try:
            found = hashlib.sha256(read_regular(Path(path), MAX_ENTRY_BYTES)).hexdigest()
        except OSError:
            return None
        _DIGESTS[key] = found
    return found


def _dependencies_unchanged(deps: Any, missing: Any) -> bool:
    if not isinstance(deps, dict) or not isinstance(missing, list):
        raise BadEntry("dependencies")
    for path, digest in deps.items():
        if not isinstance(path, str) or not isinstance(digest, str):
            raise BadEntry("dependency")
        if (file_digest(path) or "") != digest:
            return False
    for path in missing:
        if not isinstance(path, str):
            raise BadEntry("missing")
        if os.path.exists(path):
            return False
    return True


def _diagnostic_to_json(diag: Diagnostic) -> dict[str, Any]:
    out = diag.to_json()
    out.pop("path", None)
    fix = diag.fix
    if isinstance(fix, InitFix):
        out["fix_full"] = [[fix.span.line, fix.span.col, fix.span.end_line, fix.span.end_col], fix.framework,
                           fix.scheme, [list(k) for k in fix.keywords], fix.safe, fix.description]
    if diag.estimate is not None:
        e = diag.estimate
        out["estimate_full"] = [_enc(e.log10_weight_ratio), _enc(e.log10_backward_ratio), e.layers, e.exact,
                                list(e.assumptions), _enc(e.per_layer_gain), _enc(e.max_log10_q),
                                _enc(e.log10_loss), _enc(e.log10_forward_growth), _enc(e.log10_relative_grad),
                                _enc(e.log10_first_relative_grad), e.nonfinite, e.dead_output, e.verdict,
                                e.criterion, _enc(e.log10_live_share), _enc(e.log10_update)]
    return out


def _diagnostic_from_json(raw: Any, path: str) -> Diagnostic:
    if not isinstance(raw, dict):
        raise BadEntry("a diagnostic is an object")
    estimate = None
    if "estimate_full" in raw:
        (w, b, layers, exact, assumptions, gain, q, loss, growth, rel, first, nonfinite, dead, verdict,
         criterion, live, update) = _list(raw["estimate_full"])
        estimate = Estimate(_dec(w), _dec(b), _int(layers), _bool(exact), [_str(a) for a in _list(assumptions)],
                            _opt_dec(gain), _opt_dec(q), _opt_dec(loss), _opt_dec(growth), _opt_dec(rel),
                            _opt_dec(first), _bool(nonfinite), _bool(dead), _opt_str(verdict), _opt_str(criterion),
                            _opt_dec(live), _opt_dec(update))
    known = {"path", "line", "column", "end_line", "end_column", "code", "name", "severity", "message", "model",
             "estimate", "estimate_full", "fingerprint", "fix", "fix_full", "cell"}
    fix = None
    if "fix_full" in raw:
        span, framework, scheme, keywords, safe, description = _list(raw["fix_full"])
        pairs = []
        for pair in _list(keywords):
            k, v = _list(pair)
            pairs.append((_str(k), _str(v)))
        fix = InitFix(_span(span), _str(framework), _str(scheme), tuple(pairs), _bool(safe), _str(description))
    return Diagnostic(path, _int(raw["line"]), _int(raw["column"]), _int(raw["end_line"]), _int(raw["end_column"]),
                      _str(raw["code"]), _str(raw["name"]), Severity(_str(raw["severity"])), _str(raw["message"]),
                      _opt_str(raw.get("model")), estimate, {k: v for k, v in raw.items() if k not in known},
                      _opt_str(raw.get("fingerprint")), fix, None if raw.get("cell") is None else _int(raw["cell"]))


def _model_to_json(model: Model) -> dict[str, Any]:
    hint = model.input_hint
    return {"name": model.name, "framework": model.framework, "origin": model.origin,
            "span": [model.span.line, model.span.col, model.span.end_line, model.span.end_col],
            "symbol": model.symbol, "build": model.build, "end_line": model.end_line,
            "understood": model.fully_understood,
            "hint": None if hint is None else {"kind": hint.kind, "shape": list(hint.shape) if hint.shape else None,
                                               "vocab": hint.vocab}}


def _model_from_json(raw: Any) -> Model:
    """A model summary: everything but its layers (the rules already ran)."""
    if not isinstance(raw, dict):
        raise BadEntry("a model is an object")
    hint = raw.get("hint")
    input_hint = None
    if hint is not None:
        if not isinstance(hint, dict):
            raise BadEntry("a hint is an object")
        shape = hint.get("shape")
        vocab = hint.get("vocab")
        input_hint = InputHint(_str(hint["kind"]), tuple(_int(d) for d in _list(shape)) if shape else None,
                               None if vocab is None else _int(vocab))
    end_line = raw.get("end_line")
    return Model(name=_str(raw["name"]), framework=_str(raw["framework"]), origin=_str(raw["origin"]),
                 span=_span(raw["span"]), path=[], symbol=_opt_str(raw.get("symbol")),
                 build=_opt_str(raw.get("build")), end_line=None if end_line is None else _int(end_line),
                 input_hint=input_hint, understood=_bool(raw.get("understood", True)))


def summarize(model: Model) -> Model:
    return _model_from_json(_model_to_json(model))
