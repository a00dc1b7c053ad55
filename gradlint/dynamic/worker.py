"""Child side of the dynamic check: ``python -m gradlint.dynamic.worker``.

Reads one JSON job on stdin, builds the user's model, runs forward/backward on synthetic
input once per seed, and writes one JSON result on stdout. This is the only place that
imports torch or keras; the parent never does. It runs the user's code: the parent puts it
in its own process with a timeout and a memory cap. The fork server
(``gradlint.dynamic.forkserver``) runs the same jobs in forked children instead.

User code may print: fd 1 is pointed at stderr before anything runs, and the result goes to
a private duplicate of the original stdout.
"""

from __future__ import annotations

import ast
import faulthandler
import inspect
import json
import os
import re
import signal
import sys
import tokenize
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradlint.dynamic.errors import Skip, Stage
from gradlint.dynamic.inputs import InputSpec, input_candidates, make_tensor
from gradlint.verdict import Thresholds

# Keras 3 must run on the torch backend: gradients are taken with torch autograd.
os.environ["KERAS_BACKEND"] = "torch"


# --------------------------------------------------------------------------- loading


def _module_name_for(path: Path) -> tuple[str, str | None, Path]:
    """Dotted name, package and sys.path root for a file, so relative imports work.

    Walks up while directories are packages (have __init__.py).
    """
    parts = [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file() and root.parent != root:
        parts.insert(0, root.name)
        root = root.parent
    if len(parts) == 1:
        # A loose script: a private name, never "__main__", so its main guard stays shut.
        return f"gradlint_target_{path.stem}", None, root
    return ".".join(parts), ".".join(parts[:-1]), root


def _statements_to_run(tree: ast.Module, kind: str, end_line: int | None) -> list[ast.stmt]:
    """Top-level statements to execute for this target.

    - 'variable' with end_line: everything up to the last statement that starts at or
      before end_line (script-style files: ``model.fit(...)`` after the model is not run).
    - otherwise: the whole module, as an import would (``if __name__ == "__main__"`` stays shut);
      ``load_namespace`` then skips the training statements among them.
    """
    body = tree.body
    if kind == "variable" and end_line is not None:
        return [stmt for stmt in body if stmt.lineno <= end_line]
    return list(body)


_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


_COMPOUND = (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.If, ast.Try)


def _model_types() -> tuple[type, ...]:
    """torch Module and Keras Layer, for the frameworks the user's code already imported
    (nothing is imported here)."""
    types_: list[type] = []
    torch_nn = sys.modules.get("torch.nn")
    if torch_nn is not None:
        types_.append(torch_nn.Module)
    layer = getattr(getattr(sys.modules.get("keras"), "layers", None), "Layer", None)
    if isinstance(layer, type):
        types_.append(layer)
    return tuple(types_)


def _is_model_object(value: Any, kinds: tuple[type, ...]) -> bool:
    """A built model, or a list/tuple/dict holding one (``models[0](x)``)."""
    if not kinds:
        return False
    if isinstance(value, kinds):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return any(isinstance(item, kinds) for item in value[:100])
    return False


def _uses_model(stmt: ast.stmt, namespace: dict[str, Any], skipped_names: set[str]) -> bool:
    """Training code, as the dynamic check skips it for class and factory targets: a statement
    that calls a model object the module already built (``model(x)``, ``model.fit(...)``,
    ``SGD(model.parameters())``), a loop or block that uses one or calls a model class
    (``for net in nets: net(x)``, ``Net()(x)`` in a loop), or a statement that reads a name only a
    skipped statement would have set."""
    kinds = _model_types()
    compound = isinstance(stmt, _COMPOUND)
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and (
                node.id in skipped_names or (compound and _is_model_object(namespace.get(node.id), kinds))):
            return True  # a loop or block over built models (`for net in nets: net(x)`) trains them
        if not isinstance(node, ast.Call):
            continue
        for inner in ast.walk(node):
            if not (isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load)):
                continue
            value = namespace.get(inner.id)
            if _is_model_object(value, kinds) or (compound and isinstance(value, type) and kinds
                                                  and issubclass(value, kinds)):
                return True
    return False


def _bound_names(stmt: ast.stmt) -> set[str]:
    return {node.id for node in ast.walk(stmt) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}


def _future_flags(tree: ast.Module) -> int:
    """Compiler flags of the file's ``from __future__`` imports (statements are compiled one by one)."""
    import __future__

    flags = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            for alias in stmt.names:
                feature = getattr(__future__, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
    return flags


class _StderrTail:
    """sys.stderr while the file loads: passes everything on, keeps the tail, so that a
    SystemExit (argparse) can be reported with the message the user's code printed."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tail = ""

    def write(self, text: str) -> int:
        self.tail = (self.tail + text[-2000:])[-2000:]  # a 400 MB print costs no copy of it
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _exit_message(exc: SystemExit, printed: str) -> str:
    """What a SystemExit while loading says: its own text, or the last line the code printed."""
    if isinstance(exc.code, str):
        return exc.code
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def load_namespace(path: str, kind: str, end_line: int | None) -> dict[str, Any]:
    """Execute the user's file (or its model-building prefix) as a module; return its namespace.

    The source is decoded as Python decodes it (PEP 263 cookie, UTF-8 BOM); the code sees
    ``sys.argv == [path]``, as a script run without arguments would. For class and factory
    targets, top-level training statements (see ``_uses_model``) are not executed."""
    file = Path(path).resolve()
    if file.suffix.lower() == ".ipynb":
        # The code cells as the static pass read them (IPython lines masked): its line
        # numbers, so ``end_line`` means the same here.
        from gradlint.notebook import load_notebook

        source = load_notebook(file.read_bytes()).source().text
    else:
        with tokenize.open(file) as handle:  # PEP 263 cookie and BOM, as Python reads source
            source = handle.read()
    try:
        tree = ast.parse(source, filename=str(file))
    except SyntaxError:
        # An exported notebook's `!pip install` / `%cd` lines: masked, never run.
        from gradlint.notebook import mask_python

        tree = ast.parse(mask_python(source), filename=str(file))
    statements = _statements_to_run(tree, kind, end_line)
    name, package, root = _module_name_for(file)
    for entry in (str(file.parent), str(root)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module = types.ModuleType(name)
    module.__file__ = str(file)
    module.__package__ = package
    sys.modules[name] = module  # dataclasses, pickling and relative imports look it up here
    sys.argv = [str(file)]  # not the worker's own arguments (argparse in user code reads them)
    namespace = module.__dict__
    flags = _future_flags(tree)
    skipped: set[str] = set()
    tail = _StderrTail(sys.stderr)
    sys.stderr = tail
    try:
        for stmt in statements:
            if kind not in ("variable", "script") and not isinstance(stmt, _DEFINITIONS) \
                    and _uses_model(stmt, namespace, skipped):
                skipped |= _bound_names(stmt)
                continue
            code = compile(ast.Module(body=[stmt], type_ignores=[]), str(file), "exec", flags=flags, dont_inherit=True)
            exec(code, namespace)
    except SystemExit as exc:
        exc.gradlint_message = _exit_message(exc, tail.tail)  # type: ignore[attr-defined]
        raise
    finally:
        sys.stderr = tail.stream
    return namespace


class _ScriptStop(BaseException):
    """Raised by the first backward of a raw-tensor script: the forward has run, training has not.
    A BaseException, so the script's own ``except Exception`` does not swallow it."""


def run_script(path: str, output: str) -> tuple[Any, dict[str, Any]]:
    """Run a raw-tensor script as written (its training loop included) until its first
    ``backward()`` — or to its end — and return the module-level ``output`` (``y_pred``) and the
    namespace. What the forward computed is then measured by the protocol's own loss and backward."""
    import torch

    saved = torch.Tensor.backward, torch.autograd.backward

    def stop(*_args: Any, **_kwargs: Any) -> None:
        raise _ScriptStop

    torch.Tensor.backward = stop  # type: ignore[method-assign,assignment]
    torch.autograd.backward = stop  # type: ignore[assignment]
    namespace: dict[str, Any] = {}
    try:
        namespace = load_namespace(path, "script", None)
    except _ScriptStop:
        namespace = sys.modules[_module_name_for(Path(path).resolve())[0]].__dict__
    finally:
        torch.Tensor.backward, torch.autograd.backward = saved  # type: ignore[method-assign,assignment]
    if output not in namespace:
        raise Skip(f"the script defines no {output!r} at top level before its first backward()")
    return namespace[output], namespace


def run_script_job(job: dict[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """``kind == 'script'``: one run of the script per seed (it draws its own data and weights)."""
    from gradlint.dynamic import measure  # imports torch: only in the worker

    per_seed: list[dict[str, Any]] = []
    for seed in range(max(1, int(job["seeds"]))):
        generator = _seed_everything(seed, "torch")
        Stage.name = "running the script up to its first backward"
        per_seed.append(measure.measure_script(lambda: run_script(job["path"], job["symbol"]), thresholds,
                                               generator))
    Stage.name = "aggregating"
    result = measure.aggregate(per_seed, thresholds)
    result["input_shape"] = None
    result["input_kind"] = "the script's own data"
    result["seeds"] = len(per_seed)
    return result


# --------------------------------------------------------------------------- tf.keras shim


def _missing_tf_attr(name: str) -> Any:
    raise AttributeError(
        f"tensorflow.{name} is not available: TensorFlow is not installed, and gradlint's "
        "tf.keras shim (Keras 3 on the torch backend) maps only tensorflow.keras, tf.nn "
        "activations and tf.random.set_seed"
    )


def install_tf_shim() -> bool:
    """Let ``tensorflow.keras`` code run when only Keras 3 is installed.

    Puts a fake ``tensorflow`` module in sys.modules whose ``keras`` is the keras package,
    with the common submodules mapped. Returns False when real TensorFlow is importable
    (then nothing is installed).
    """
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        return False
    import keras  # type: ignore[import-untyped]

    # Keras probes for TensorFlow through a lazy module (e.g. set_random_seed calls
    # tf.random.set_seed when it is "available"); pin the probe to False before the fake
    # module exists, so Keras itself keeps knowing TensorFlow is absent.
    try:
        from keras.src.utils import module_utils  # type: ignore[import-untyped]

        module_utils.tensorflow._available = False
    except (ImportError, AttributeError):
        pass
    tf = types.ModuleType("tensorflow")
    tf.__dict__["__gradlint_shim__"] = True
    tf.__dict__["__getattr__"] = _missing_tf_attr  # PEP 562: clear message for anything unmapped
    tf.keras = keras  # type: ignore[attr-defined]
    tf.random = types.SimpleNamespace(set_seed=keras.utils.set_random_seed)  # type: ignore[attr-defined]
    tf.nn = types.SimpleNamespace(  # type: ignore[attr-defined]
        **{
            name: getattr(keras.activations, name)
            for name in ("relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu", "silu", "swish", "leaky_relu",
                         "relu6", "softplus")
            if hasattr(keras.activations, name)
        }
    )
    # Keras asks `"tensorflow" in sys.modules` and then whether TF runs eagerly (preprocessing
    # layers such as Rescaling, via backend_utils.in_tf_graph): with the torch backend it always is.
    tf.executing_eagerly = lambda: True  # type: ignore[attr-defined]
    tf.inside_function = lambda: False  # type: ignore[attr-defined]
    tf.__version__ = "0+gradlint-shim"  # type: ignore[attr-defined]
    sys.modules["tensorflow"] = tf
    sys.modules["tensorflow.keras"] = keras
    for sub in (
        "layers", "models", "initializers", "activations", "optimizers", "losses", "regularizers",
        "constraints", "callbacks", "metrics", "utils", "backend", "applications", "ops", "random",
    ):
        if hasattr(keras, sub):
            sys.modules[f"tensorflow.keras.{sub}"] = getattr(keras, sub)
    return True


# --------------------------------------------------------------------------- building


def build_model(job: dict[str, Any], namespace: dict[str, Any]) -> Any:
    kind, symbol = job["kind"], job["symbol"]
    if symbol not in namespace:
        raise Skip(f"{symbol!r} is not defined at top level of {job['path']}")
    obj = namespace[symbol]
    args: dict[str, Any] = job.get("model_args") or {}
    if kind == "variable":
        return obj
    if not callable(obj):
        raise Skip(f"{symbol!r} is not callable (kind {kind!r})")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in args
        ]
        if missing:
            raise Skip(
                f"{symbol} needs constructor arguments {', '.join(missing)}; "
                f"pass them with --model-args '{{\"{job['model']}\": {{...}}}}'"
            )
    return obj(**args)


# --------------------------------------------------------------------------- main


def _seed_everything(seed: int, framework: str) -> Any:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if framework == "keras":
        import keras

        keras.utils.set_random_seed(seed)
    generator = torch.Generator().manual_seed(10_000 + seed)
    return generator


def _is_model(obj: Any, framework: str) -> bool:
    import torch

    if framework == "keras":
        import keras

        return isinstance(obj, keras.layers.Layer)
    return isinstance(obj, torch.nn.Module)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    framework = job["framework"]
    if framework not in ("torch", "keras"):
        raise Skip(f"unknown framework {framework!r}")
    Stage.name = "importing torch"
    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    if framework == "keras":
        Stage.name = "importing keras"
        install_tf_shim()

    from gradlint.dynamic import measure  # imports torch: only in the worker

    thresholds = Thresholds.from_json(job.get("thresholds"))
    if job["kind"] == "script":
        if framework != "torch":
            raise Skip(f"a {framework} script is not measured")
        return run_script_job(job, thresholds)
    namespace: dict[str, Any] | None = None

    def fresh_model(seed: int) -> tuple[Any, Any]:
        nonlocal namespace
        generator = _seed_everything(seed, framework)
        if namespace is None or job["kind"] == "variable":
            # Module-level models are re-created per seed by re-running the file's prefix.
            Stage.name = "loading the file"
            namespace = load_namespace(job["path"], job["kind"], job.get("end_line"))
        Stage.name = "building the model"
        try:
            model = build_model(job, namespace)
        except NotImplementedError as exc:
            raise Skip(f"{job['symbol']} raised NotImplementedError when built (an abstract base?): {exc}") from exc
        if not _is_model(model, framework):
            raise Skip(f"{job['symbol']} is a {type(model).__name__}, not a {framework} model")
        return model, generator

    def measure_with(model: Any, spec: InputSpec, generator: Any) -> tuple[dict[str, Any], tuple[int, ...]]:
        Stage.name = "measuring (forward/backward)"
        x, full = make_tensor(spec, job, generator)
        forward = _forward_fn(model, x, framework)
        return measure.measure_once(model, forward, framework, thresholds, generator), full

    # Seed 0 settles the input: candidates are tried in order on a fresh model each (a Keras
    # model that saw a wrong shape stays built for it); the first error is the one reported.
    model, generator = fresh_model(0)
    Stage.name = "making the input"
    candidates = input_candidates(model, job)
    first_error: BaseException | None = None
    chosen: InputSpec | None = None
    per_seed: list[dict[str, Any]] = []
    full_shape: tuple[int, ...] = ()
    for number, spec in enumerate(candidates):
        if number:
            model, generator = fresh_model(0)
        try:
            measured, full_shape = measure_with(model, spec, generator)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            if "allocate memory" in str(exc):  # out of memory is not a wrong input
                raise
            first_error = first_error or exc
            continue
        per_seed.append(measured)
        chosen = spec
        break
    if chosen is None:
        assert first_error is not None
        raise first_error
    for seed in range(1, max(1, int(job["seeds"]))):
        model, generator = fresh_model(seed)
        per_seed.append(measure_with(model, chosen, generator)[0])
    Stage.name = "aggregating"
    result = measure.aggregate(per_seed, thresholds)
    result["input_shape"] = list(full_shape)
    result["input_kind"] = chosen.kind
    result["seeds"] = len(per_seed)
    return result


def _forward_fn(model: Any, x: Any, framework: str) -> Callable[[], Any]:
    if framework == "keras":
        structure = getattr(model, "_inputs_struct", None)
        if isinstance(x, list) and structure is not None:
            import keras

            # model.inputs is the flattened structure (a dict of inputs flattens by key)
            x = keras.tree.pack_sequence_as(structure, x)
        if not model.built or not model.trainable_weights:
            # A subclassed or input-less model creates its weights on the first call.
            import torch

            with torch.no_grad():
                model(x, training=False)
        return lambda: model(x, training=True)
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    required = [
        p.name for p in params
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) > 1:
        raise Skip(f"forward takes {len(required)} inputs ({', '.join(required)}); the dynamic check feeds one tensor")
    model.train()  # the gradients a user sees at the start of training
    return lambda: model(x)


def describe_exception(exc: BaseException) -> str:
    """The exception's last line, e.g. 'ValueError: bad shape', plus the stage it came from.

    Multi-line messages (Keras) are folded into one line without terminal colour codes.
    """
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, SystemExit):  # `SystemExit: 2` alone says nothing; argparse printed why
        said = getattr(exc, "gradlint_message", "")
        last = f"SystemExit: {exc.code}" + (f": {said}" if said and said != str(exc.code) else "")
    last = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", last).split())
    if len(last) > 400:
        last = last[:399] + "…"
    text = last
    if isinstance(exc, MemoryError) or "can't allocate memory" in last or "not enough memory" in last.lower():
        text = f"out of memory: {last}"
    return f"{text} (while {Stage.name})"


def run_guarded(job: dict[str, Any]) -> dict[str, Any]:
    """run_job, with every outcome turned into a JSON-able result."""
    try:
        result = run_job(job)
        result["status"] = "measured"
    except Skip as exc:
        result = {"status": "skipped", "reason": str(exc)}
    except BaseException as exc:  # noqa: BLE001 -- SystemExit/KeyboardInterrupt from user code too
        result = {
            "status": "failed",
            "reason": describe_exception(exc),
            "traceback": traceback.format_exc()[-4000:],
        }
    return result


GUARD_MARKER = "gradlint-worker: the model's process ended by signal"


def main() -> None:
    """One job from stdin, its result on stdout.

    Where ``fork`` exists the model runs in a child of this process, which stays a small
    guard: a subreaper for whatever the model starts, killed with all of it when the model
    ends. A model that kills its parent kills only the guard (gradlint sees the worker die
    and reports it); it never reaches gradlint itself."""
    job = json.load(sys.stdin)
    if not hasattr(os, "fork"):
        _run_and_write(job)
    from gradlint.dynamic.contain import become_subreaper, kill_tree

    become_subreaper()
    child = os.fork()
    if child == 0:
        _run_and_write(job)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    kill_tree(os.getpid(), include_root=False, group=False)  # what the model left running
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # die the same way, so the parent's reason ("killed by signal 9 ...") holds
        sys.stderr.write(f"\n{GUARD_MARKER} {-code}\n")  # the guard itself was not killed
        sys.stderr.flush()
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL/SIGSTOP: their default action cannot be changed anyway
        os.kill(os.getpid(), -code)
    os._exit(code)


def _run_and_write(job: dict[str, Any]) -> None:
    result_stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything the user's code prints goes to stderr, never into our JSON
    faulthandler.enable()  # a segfault leaves a Python traceback on stderr for the parent
    result = run_guarded(job)
    result_stream.write(json.dumps(result) + "\n")
    result_stream.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: user code may have left non-daemon threads or atexit hooks.
    os._exit(0)


if __name__ == "__main__":
    main()
