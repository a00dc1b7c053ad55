"""Measure one Keras / tf.keras or TensorFlow graph-code model file by the protocol, on TensorFlow.

``tools/measure_file.py`` measures PyTorch and Keras 3 (torch backend) files; this measures the
files it cannot run: ``tf.compat.v1`` graph code (placeholders, ``tf.layers``, ``tf.get_variable``)
and tf.keras models that call TensorFlow ops. It runs in a separate environment that has
TensorFlow, never in gradlint's own (static mode must not depend on it)::

    python3 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow-cpu tf_keras tf-slim
    /work/tfvenv/bin/python tools/measure_tf.py FILE.py 64            # Keras: the model's entry point
    /work/tfvenv/bin/python tools/measure_tf.py FILE.py "16;10,4"     # two inputs (a list, in order)
    /work/tfvenv/bin/python tools/measure_tf.py FILE.py 64 --graph X:logits [--feed keep_prob=1.0]
    /work/tfvenv/bin/python tools/measure_tf.py FILE.py 8 --graph model_fn:logits --json  # an Estimator

TF 2 has no ``tf.contrib`` or ``tf.estimator``: contrib/slim calls run on ``tf_slim``, and an
Estimator file's last ``Estimator(model_fn=..., params=...)`` is recorded and its ``model_fn`` called
on ``{"x": placeholder}`` in train mode, the output ``predictions[KEY]``. A file is ``borderline``
when any seed's own verdict differs from the median's (the ambiguous band); ``--json`` prints every
quantity and the per-seed labels and ratios (tools/tf_graph_corpus.py reads it).

The protocol (``../shared/reference.md`` §1b, as ``tools/gradgen.py``): seeds 0-2, batch 128 of
N(0, 1) inputs of the per-example SHAPE, MSE of the raw output to N(0, 1) targets, one backward
pass in train mode, medians; weight layers are the trainable variables with ndim >= 2 in the order
the forward pass first reads them (Keras: ``GradientTape.watched_variables()``; graph code: the
order the variables were created, which is the order the file builds its layers). Keras models
come from the file's ``build_model``/``make_model``/``get_model``/``create_model`` or its module
level ``model``; graph code from the placeholder and output tensor named by ``--graph``. ``tf.layers``
needs ``TF_USE_LEGACY_KERAS=1`` (tf_keras): set automatically in graph mode. The verdict is
``gradlint.verdict.judge`` (read from its file: no gradlint import in this environment).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)
BATCH = 128


def _verdict():  # type: ignore[no-untyped-def]
    # verdict.py imports gradlint.records (standard library only): the checkout, not an installed gradlint
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("_gradlint_verdict", ROOT / "gradlint" / "verdict.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _shim_tf1() -> None:
    """TF 2.x dropped ``tf.contrib`` and ``tf.estimator``: graph code written for them runs here on
    their replacements — ``tf_slim`` (the same ``fully_connected``/``stack``/``arg_scope``, xavier
    default, zero bias) and a recording ``Estimator`` whose ``model_fn`` the measurement calls itself
    (``--model-fn``). Measurement only: what the file computes is unchanged."""
    import types

    import tensorflow as tf

    v1 = tf.compat.v1
    try:
        import tf_slim
    except ImportError:  # pragma: no cover - only files that use contrib need it
        tf_slim = None
    if tf_slim is not None:
        contrib = types.ModuleType("tensorflow.contrib")
        contrib.layers = tf_slim  # type: ignore[attr-defined]
        contrib.slim = tf_slim  # type: ignore[attr-defined]
        contrib.rnn = v1.nn.rnn_cell  # type: ignore[attr-defined]
        for owner in (tf, v1):
            owner.contrib = contrib  # type: ignore[attr-defined]
        sys.modules["tensorflow.contrib"] = contrib
        sys.modules["tensorflow.contrib.slim"] = tf_slim
        sys.modules["tensorflow.contrib.layers"] = tf_slim

    class EstimatorSpec:
        def __init__(self, mode=None, predictions=None, loss=None, train_op=None, **kw):  # type: ignore[no-untyped-def]
            self.mode, self.predictions, self.loss, self.train_op = mode, predictions, loss, train_op

    class Estimator:
        made: list = []

        def __init__(self, model_fn=None, params=None, **kw):  # type: ignore[no-untyped-def]
            self.model_fn, self.params = model_fn, params or {}
            Estimator.made.append(self)

    estimator = types.SimpleNamespace(Estimator=Estimator, EstimatorSpec=EstimatorSpec,
                                      ModeKeys=types.SimpleNamespace(TRAIN="train", EVAL="eval", PREDICT="infer"))
    for owner in (tf, v1):
        owner.estimator = estimator  # type: ignore[attr-defined]


def _exec(path: Path, seed: int):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"measured_{seed}_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _symmetric(kernels, grads) -> bool:  # type: ignore[no-untyped-def]
    """A weight layer other than the last whose output units (the last axis) are identical copies."""
    import numpy as np

    for w, g in zip(kernels[:-1], grads[:-1], strict=True):
        if g is None:
            continue
        rows = np.reshape(np.moveaxis(w, -1, 0), (w.shape[-1], -1))
        grows = np.reshape(np.moveaxis(g, -1, 0), (g.shape[-1], -1))
        if rows.shape[0] < 2:
            continue
        tol_w = 1e-6 * float(np.abs(rows).max()) + 1e-12
        tol_g = 1e-6 * float(np.abs(grows).max()) + 1e-30
        if float(np.abs(rows - rows[0]).max()) <= tol_w and float(np.abs(grows - grows[0]).max()) <= tol_g:
            return True
    return False


def _row(loss: float, kernels, grads, params, pgrads) -> dict:  # type: ignore[no-untyped-def]
    import numpy as np

    g = [float(np.linalg.norm(x)) if x is not None else 0.0 for x in grads]
    grad2 = sum(float(np.linalg.norm(x)) ** 2 for x in pgrads if x is not None)
    par2 = sum(float(np.linalg.norm(p)) ** 2 for p in params)
    w0 = float(np.linalg.norm(kernels[0]))
    return {
        "ratio": g[0] / g[-1] if g[-1] > 0 else (math.nan if g[0] == 0 else math.inf),
        "loss": loss, "rel": math.sqrt(grad2 / par2) if par2 > 0 else math.nan,
        "first_rel": g[0] / w0 if w0 > 0 else math.nan,
        "nonfinite": not math.isfinite(loss) or not all(math.isfinite(v) for v in g) or not math.isfinite(grad2),
        "symmetric": _symmetric(kernels, grads),
        "per_layer": [math.log10(v) if v > 0 else -math.inf for v in g],
    }


def _keras_row(path: Path, shape: list[tuple[int, ...]], seed: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    module = _exec(path, seed)
    model = None
    for name in ("build_model", "make_model", "get_model", "create_model"):
        if callable(getattr(module, name, None)):
            model = getattr(module, name)()
            break
    if model is None:
        model = getattr(module, "model", None)
    if model is None:
        classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, keras.Model)
                   and v.__module__ == module.__name__]
        model = classes[-1]()
    rng = np.random.RandomState(1000 + seed)
    xs = [tf.constant(rng.standard_normal((BATCH, *s)).astype("float32")) for s in shape]
    x = xs[0] if len(xs) == 1 else xs
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        outs = list(y.values()) if isinstance(y, dict) else list(y) if isinstance(y, (list, tuple)) else [y]
        loss = tf.add_n([tf.reduce_mean((o - tf.constant(rng.standard_normal(o.shape).astype("float32"))) ** 2)
                         for o in outs])
    order = [v for v in tape.watched_variables() if v.trainable]
    kernels = [v for v in order if len(v.shape) >= 2]
    grads = tape.gradient(loss, kernels + order)
    kgrads, pgrads = grads[: len(kernels)], grads[len(kernels):]
    return _row(float(loss), [k.numpy() for k in kernels], [g.numpy() if g is not None else None for g in kgrads],
                [p.numpy() for p in order], [g.numpy() if g is not None else None for g in pgrads])


def _graph_row(path: Path, shape: list[tuple[int, ...]], seed: int, names: str, feeds: dict[str, float]) -> dict:
    import numpy as np
    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    v1.reset_default_graph()
    v1.set_random_seed(seed)
    np.random.seed(seed)
    _shim_tf1()
    module = _exec(path, seed)
    input_name, output_name = names.split(":")
    if input_name == "model_fn":
        # ``--graph model_fn:KEY``: the Estimator the file builds; its model_fn on a features dict of one
        # placeholder, train mode, its own params; the output is predictions[KEY]
        est = tf.estimator.Estimator.made[-1]
        x = v1.placeholder(tf.float32, [None, *shape[0]])
        labels = v1.placeholder(tf.float32, [None, None])
        spec = est.model_fn({"x": x}, labels, "train", est.params)
        y = spec.predictions[output_name] if isinstance(spec.predictions, dict) else spec.predictions
    else:
        x, y = getattr(module, input_name), getattr(module, output_name)
    rng = np.random.RandomState(1000 + seed)
    target = v1.placeholder(tf.float32, y.shape)
    loss = tf.reduce_mean((y - target) ** 2)
    params = v1.trainable_variables()
    kernels = [v for v in params if len(v.shape) >= 2]
    grads = tf.gradients(loss, kernels + params)
    feed = {x: rng.standard_normal((BATCH, *shape[0])).astype("float32")}
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        out_shape = [BATCH if d is None else d for d in y.shape.as_list()]
        feed[target] = rng.standard_normal(out_shape).astype("float32")
        for key, value in feeds.items():
            feed[getattr(module, key)] = value
        got = sess.run([loss, kernels, params, [g if g is not None else tf.constant(0.0) for g in grads]], feed)
    lval, kv, pv, gv = got
    return _row(float(lval), kv, gv[: len(kernels)], pv, gv[len(kernels):])


def measure(path: Path, shape: list[tuple[int, ...]], graph: str | None, feeds: dict[str, float]) -> dict:
    verdict = _verdict()
    rows = []
    for seed in SEEDS:
        if graph:
            rows.append(_graph_row(path, shape, seed, graph, feeds))
        else:
            rows.append(_keras_row(path, shape, seed))
    out: dict = {}
    for key in ("ratio", "loss", "rel", "first_rel"):
        finite = [r[key] for r in rows if not math.isnan(r[key])]
        out[key] = statistics.median(finite) if finite else math.nan
    out["nonfinite"] = sum(r["nonfinite"] for r in rows) >= 2
    out["symmetric"] = sum(r["symmetric"] for r in rows) >= 2
    out["per_layer"] = [statistics.median(v) for v in zip(*[r["per_layer"] for r in rows], strict=True)]
    q = verdict.Quantities(ratio=out["ratio"], loss=out["loss"], nonfinite=out["nonfinite"],
                           relative_grad=out["rel"], first_relative_grad=out["first_rel"],
                           symmetric=["hidden"] if out["symmetric"] else ())
    out["label"] = verdict.judge(q).label
    # the ambiguous band: every seed on its own must give the median's label, or the file is borderline
    out["seed_labels"] = [verdict.judge(verdict.Quantities(
        ratio=r["ratio"], loss=r["loss"], nonfinite=r["nonfinite"], relative_grad=r["rel"],
        first_relative_grad=r["first_rel"], symmetric=["hidden"] if r["symmetric"] else ())).label for r in rows]
    out["seed_ratios"] = [r["ratio"] for r in rows]
    if any(lab != out["label"] for lab in out["seed_labels"]):
        out["label"] = "borderline"
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("shape")
    parser.add_argument("--graph", help="INPUT:OUTPUT module-level names of the placeholder and the output tensor")
    parser.add_argument("--feed", action="append", default=[], help="NAME=VALUE for another placeholder")
    parser.add_argument("--json", action="store_true", help="print the measurement as one JSON object")
    args = parser.parse_args(argv)
    if args.graph:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers needs Keras 2 (tf_keras)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    feeds = {k: float(v) for k, v in (f.split("=", 1) for f in args.feed)}
    shape = [tuple(int(d) for d in part.split(",")) for part in args.shape.split(";")]
    out = measure(args.file, shape, args.graph, feeds)
    if args.json:
        import json

        print(json.dumps(out))
        return 0
    print(f"# label: {out['label']}")
    print(f"# measured: weight-gradient ratio first/last = {out['ratio']:.1e} (median of 3 seeds, batch {BATCH}); "
          f"loss at init {out['loss']:.1e}; ‖∂L/∂θ‖/‖θ‖ {out['rel']:.1e}; first-layer ‖∂W‖/‖W‖ "
          f"{out['first_rel']:.1e}" + ("; loss/gradients non-finite" if out["nonfinite"] else "")
          + ("; identical weight and gradient rows in a hidden layer" if out["symmetric"] else ""))
    print("per-layer log10 ‖∂W‖:", [round(v, 1) if math.isfinite(v) else v for v in out["per_layer"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
