"""``tf.estimator.Estimator(model_fn=fn, params={...})`` (and TF 1.x's ``tf.contrib.learn.Estimator``):
TensorFlow calls ``fn(features, labels, mode, params)`` to build the graph; so does this, with the
params the call states (the hidden-unit list a model_fn loops over), in training mode. Nothing is
imported or run."""

from __future__ import annotations

import ast

from gradlint.extract.api import Interp
from gradlint.extract.values import UNKNOWN, Const, FunctionV, Value

NAMES = frozenset({"estimator.Estimator", "contrib.learn.Estimator"})


def build_model_fn(interp: Interp, args: list[Value], kwargs: dict[str, Value]) -> Value:
    fn = kwargs.get("model_fn", args[0] if args else UNKNOWN)
    if isinstance(fn, FunctionV) and isinstance(fn.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        params = kwargs.get("params", args[3] if len(args) > 3 else None)
        offered: dict[str, Value] = {"features": UNKNOWN, "labels": UNKNOWN, "mode": Const("train")}
        if params is not None:
            offered["params"] = params
        names = {a.arg for a in fn.node.args.args}  # model_fn may take any subset, by name
        interp.call_function(fn, [], {k: v for k, v in offered.items() if k in names})
    return UNKNOWN  # the estimator object: nothing a rule reads
