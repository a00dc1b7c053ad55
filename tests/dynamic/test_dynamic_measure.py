"""The dynamic check end to end: real torch and keras, each model in its own subprocess.

Models are files under tests/dynamic/models/ (the worker loads them; pytest never imports
them). All measured models run in one `run_dynamic` call per fixture, two at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gradlint.dynamic import (
    DynamicOptions,
    DynamicResult,
    DynamicTarget,
    InputHint,
    render_results,
    run_dynamic,
)

pytest.importorskip("torch")
MODELS = Path(__file__).parent / "models"


def target(file: str, symbol: str, kind: str = "class", framework: str = "torch", *, model: str | None = None,
           hint: InputHint | None = None, line: int = 1, end_line: int | None = None) -> DynamicTarget:
    return DynamicTarget(
        path=str(MODELS / file), model=model or symbol, line=line, kind=kind, symbol=symbol,
        framework=framework, input_hint=hint, end_line=end_line,
    )


TORCH_TARGETS = [
    target("torch_models.py", "DeepSigmoidNet"),
    target("torch_models.py", "DeepReluBNNet"),
    target("torch_models.py", "ZeroInitNet"),
    target("torch_models.py", "LargeInitTanhNet"),
    target("torch_models.py", "SmallCNN"),
    target("torch_models.py", "TokenModel"),
    target("torch_models.py", "NeedsArgs"),
    target("torch_models.py", "NeedsArgs", model="NeedsArgsGiven"),
    target("torch_models.py", "build_model", "factory"),
    target("torch_models.py", "model", "variable", line=109),
    target("torch_extra.py", "RawParamSigmoid"),
    target("torch_extra.py", "ReverseDefinitionOrder"),
    target("torch_extra.py", "DeadRelu"),
    target("torch_extra.py", "TwoInputs"),
    target("torch_extra.py", "FreeParamsOnes"),
    target("torch_extra.py", "RawTensorsRelu"),
    target("torch_raw_script.py", "y_pred", "script", model="raw_script"),
    target("pkg/net.py", "PackagedNet"),
    # Keras: the seed (tf.keras imports, model.fit after the model that must not run) and its fix.
    target("keras_seed.py", "model", "variable", "keras", model="keras_seed", line=11, end_line=15),
    target("keras_seed_fixed.py", "model", "variable", "keras", model="keras_seed_fixed", line=9, end_line=17),
    target("keras_models.py", "build_model", "factory", "keras", model="keras_functional"),
    target("keras_models.py", "DeepTanhKeras", "class", "keras", hint=InputHint("features", (20,))),
    target("keras_models.py", "DeepTanhKeras", "class", "keras", model="DeepTanhKerasNoHint"),
    target("keras_models.py", "token_model", "variable", "keras"),
    target("keras_models.py", "two_towers", "factory", "keras"),
    target("keras_models.py", "rescaled", "factory", "keras"),
]


@pytest.fixture(scope="module")
def results() -> dict[str, DynamicResult]:
    options = DynamicOptions(
        jobs=2,
        timeout=120,
        model_args={"NeedsArgsGiven": {"hidden": 8}},
        input_shapes={"SmallCNN": (3, 16, 16), "RawParamSigmoid": (10,)},
    )
    measured = run_dynamic(TORCH_TARGETS, options)
    assert [r.model for r in measured] == [t.model for t in TORCH_TARGETS]  # target order kept
    return {r.model: r for r in measured}


def _explain(result: DynamicResult) -> str:
    return f"{result.status} {result.verdict} ratio={result.ratio} reason={result.reason}"


# ----------------------------------------------------------------------------- verdicts


def test_seed_style_torch_sigmoid_stack_vanishes(results: dict[str, DynamicResult]) -> None:
    r = results["DeepSigmoidNet"]
    assert r.status == "measured" and r.verdict == "vanishing", _explain(r)
    assert r.ratio is not None and r.ratio < 1e-6
    # reference.md section 1: sigmoid, PyTorch default, 11 layers: ‖∂L/∂h₁‖/‖∂L/∂h₁₁‖ ≈ 3e-9
    assert r.activation_ratio is not None and 1e-10 < r.activation_ratio < 1e-7
    assert len(r.layers) == 11 and r.seeds == 3
    assert r.input_shape == (128, 20) and r.input_kind == "features"


def test_relu_batchnorm_fix_is_healthy(results: dict[str, DynamicResult]) -> None:
    r = results["DeepReluBNNet"]
    assert r.verdict == "healthy", _explain(r)
    norms = [layer for layer in r.layers if layer.is_norm]
    assert len(norms) == 10 and all(layer.kind == "BatchNorm1d" for layer in norms)
    assert r.layers[0].name == "net.0" and r.layers[-1].name == "net.30"  # norms never first/last


def test_zero_init_is_symmetric(results: dict[str, DynamicResult]) -> None:
    r = results["ZeroInitNet"]
    assert r.verdict == "symmetric", _explain(r)
    assert [layer.symmetric for layer in r.layers] == [True, True, False]  # the output layer is not hidden


def test_large_init_deep_tanh_explodes(results: dict[str, DynamicResult]) -> None:
    r = results["LargeInitTanhNet"]
    assert r.verdict == "exploding", _explain(r)
    assert r.ratio is not None and r.ratio > 1e3
    assert max(layer.saturation or 0 for layer in r.layers) > 0.3  # N(0,1) at width 64 saturates tanh


def test_keras_seed_vanishes_without_running_fit(results: dict[str, DynamicResult]) -> None:
    # keras_seed.py raises SystemExit right after the model: running past end_line would fail.
    r = results["keras_seed"]
    assert r.status == "measured" and r.verdict == "vanishing", _explain(r)
    assert [layer.kind for layer in r.layers] == ["Dense"] * 12
    assert r.input_shape == (128, 20)


def test_keras_seed_fix_is_healthy(results: dict[str, DynamicResult]) -> None:
    r = results["keras_seed_fixed"]
    assert r.verdict == "healthy", _explain(r)
    assert sum(layer.kind == "BatchNormalization" for layer in r.layers) == 11
    dense = [layer for layer in r.layers if layer.kind == "Dense"]
    assert all(layer.dead_fraction is not None for layer in dense[:-1])  # ReLU layers follow them


def test_keras_functional_factory_and_subclass(results: dict[str, DynamicResult]) -> None:
    assert results["keras_functional"].verdict == "healthy", _explain(results["keras_functional"])
    assert results["keras_functional"].input_shape == (128, 12)
    deep = results["DeepTanhKeras"]
    assert deep.verdict == "exploding", _explain(deep)
    assert len(deep.layers) == 17
    # No hint and unbuilt: a Dense takes any width, so a guessed one is used.
    unbuilt = results["DeepTanhKerasNoHint"]
    assert unbuilt.verdict == "exploding" and unbuilt.input_shape == (128, 32), _explain(unbuilt)


def test_keras_tokens(results: dict[str, DynamicResult]) -> None:
    r = results["token_model"]
    assert r.status == "measured", _explain(r)
    assert r.input_kind == "tokens" and r.input_shape == (128, 16)
    assert [layer.kind for layer in r.layers] == ["Embedding", "LSTMCell", "Dense"]


# ----------------------------------------------------------------------------- building and input


def test_constructor_arguments(results: dict[str, DynamicResult]) -> None:
    skipped = results["NeedsArgs"]
    assert (skipped.status == "skipped" and "hidden" in (skipped.reason or "")
            and "--model-args" in (skipped.reason or ""))
    given = results["NeedsArgsGiven"]
    assert given.status == "measured" and given.input_shape == (128, 10), _explain(given)


def test_factory_and_module_level_variable(results: dict[str, DynamicResult]) -> None:
    assert results["build_model"].status == "measured" and results["build_model"].input_shape == (128, 8)
    assert results["model"].status == "measured" and results["model"].input_shape == (128, 5)


def test_input_inference(results: dict[str, DynamicResult]) -> None:
    cnn = results["SmallCNN"]
    assert cnn.input_shape == (128, 3, 16, 16) and cnn.input_kind == "image"  # --input-shape override
    assert [layer.kind for layer in cnn.layers] == ["Conv2d", "Conv2d", "Linear"]
    tokens = results["TokenModel"]
    assert tokens.input_kind == "tokens" and tokens.input_shape == (128, 16), _explain(tokens)
    assert [layer.kind for layer in tokens.layers] == ["Embedding", "LSTM", "Linear"]
    assert all(layer.output_grad_norm is not None for layer in tokens.layers)


def test_raw_parameters_follow_first_use(results: dict[str, DynamicResult]) -> None:
    r = results["RawParamSigmoid"]
    assert [layer.name for layer in r.layers] == [f"weights.{i}" for i in range(11)]
    assert r.verdict == "vanishing", _explain(r)


def test_execution_order_not_definition_order(results: dict[str, DynamicResult]) -> None:
    r = results["ReverseDefinitionOrder"]
    assert [layer.name for layer in r.layers] == ["first", "middle", "last"]


def test_dead_relu_units(results: dict[str, DynamicResult]) -> None:
    r = results["DeadRelu"]
    assert r.layers[0].dead_fraction == 1.0
    assert r.layers[0].grad_norm == 0.0  # no gradient through dead units
    assert r.verdict == "vanishing", _explain(r)


def test_keras_preprocessing_layer_under_the_tf_shim(results: dict[str, DynamicResult]) -> None:
    r = results["rescaled"]
    assert r.status == "measured" and r.verdict == "healthy", _explain(r)


def test_keras_several_inputs(results: dict[str, DynamicResult]) -> None:
    r = results["two_towers"]
    assert r.status == "measured" and r.input_kind == "features+features", _explain(r)


def test_free_parameters_are_separate_layers(results: dict[str, DynamicResult]) -> None:
    r = results["FreeParamsOnes"]
    assert [layer.name for layer in r.layers] == ["w1", "b1", "w2"], _explain(r)
    assert r.verdict == "symmetric", _explain(r)  # ones/d: every hidden unit the same


def test_module_held_requires_grad_tensors_are_measured(results: dict[str, DynamicResult]) -> None:
    # not parameters (model.parameters() is empty): each leaf tensor attribute is a layer, in the
    # order the forward uses it; the tensor without requires_grad is none
    r = results["RawTensorsRelu"]
    assert r.status == "measured", _explain(r)
    assert [layer.name for layer in r.layers] == [f"weights[{i}]" for i in range(8)] + ["head"], _explain(r)
    assert r.verdict == "exploding", _explain(r)


def test_raw_tensor_script_runs_to_its_first_backward(results: dict[str, DynamicResult]) -> None:
    # the weights in the order the loop body uses them (not the order of their init calls), named
    # by the variables holding them; tanh layers of std 0.01: the first layer's gradient vanishes
    r = results["raw_script"]
    assert r.status == "measured", _explain(r)
    assert [layer.name for layer in r.layers] == ["w_in"] + [f"hidden[{i}]" for i in range(10)] + ["w_out"]
    assert r.verdict == "vanishing", _explain(r)


def test_multi_input_forward_is_skipped(results: dict[str, DynamicResult]) -> None:
    r = results["TwoInputs"]
    assert r.status == "skipped" and "2 inputs" in (r.reason or "")


def test_relative_import_in_package(results: dict[str, DynamicResult]) -> None:
    r = results["PackagedNet"]
    assert r.status == "measured", _explain(r)
    assert [layer.name for layer in r.layers] == ["body.0", "body.2.0", "body.3"]


# ----------------------------------------------------------------------------- output


def test_json_is_strict_and_complete(results: dict[str, DynamicResult]) -> None:
    for r in results.values():
        data = r.to_json()
        text = json.dumps(data, allow_nan=False)  # no NaN/Infinity in the report
        assert {"path", "model", "line", "status", "verdict", "ratio", "layers", "reason"} <= set(data)
        for layer in json.loads(text)["layers"]:
            assert {"name", "grad_norm", "weight_norm"} <= set(layer)
    zero = results["ZeroInitNet"].to_json()
    assert zero["layers"][0]["relative_grad"] is None  # 0/0 in the zero-init layer


def test_render_table(results: dict[str, DynamicResult]) -> None:
    text = render_results(list(results.values()), color=False)
    assert "\x1b[" not in text
    assert "DeepSigmoidNet" in text and "VANISHING" in text and "█" in text
    assert "SKIPPED" in text and "≡ symmetric" in text
    assert text.rstrip().splitlines()[-1].startswith(f"gradlint dynamic: {len(TORCH_TARGETS)} models:")
    assert "\x1b[33m" in render_results([results["DeepSigmoidNet"]], color=True)


def test_plot_png(results: dict[str, DynamicResult], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from gradlint.dynamic.plot import plot_result

    for name in ("DeepSigmoidNet", "ZeroInitNet"):  # ZeroInitNet: zero gradients on a log axis
        path = Path(plot_result(results[name], str(tmp_path)))
        assert path.name == f"torch_models.{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- failures


@pytest.fixture(scope="module")
def failures() -> dict[str, DynamicResult]:
    targets = [target("failing_models.py", name) for name in ("Crashing", "Segfaulting", "MemoryHog")]
    targets.append(target("no_such_file.py", "Model"))
    done = run_dynamic(targets, DynamicOptions(jobs=2, seeds=1, memory_mb=3072))
    return {r.model + ("" if Path(r.path).exists() else ":missing"): r for r in done}


def test_crash_fails_cleanly(failures: dict[str, DynamicResult]) -> None:
    r = failures["Crashing"]
    assert r.status == "failed" and r.reason is not None
    assert r.reason.startswith("RuntimeError: boom in __init__"), r.reason


def test_segfault_fails_cleanly(failures: dict[str, DynamicResult]) -> None:
    r = failures["Segfaulting"]
    assert r.status == "failed" and r.reason == "killed by signal 11 (SIGSEGV)", r.reason


def test_out_of_memory_fails_cleanly(failures: dict[str, DynamicResult]) -> None:
    r = failures["MemoryHog"]
    assert r.status == "failed" and (r.reason or "").startswith("out of memory"), r.reason


def test_missing_file_is_skipped(failures: dict[str, DynamicResult]) -> None:
    assert failures["Model:missing"].status == "skipped"


def test_hang_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    targets = [target("failing_models.py", "Hanging"), target("torch_models.py", "build_model", "factory")]
    plots = tmp_path / "plots"
    hang, after = run_dynamic(targets, DynamicOptions(timeout=5, seeds=1, plot_dir=str(plots)))
    assert hang.status == "failed" and hang.reason == "timed out after 5 s"
    assert hang.seconds is not None and hang.seconds < 15
    assert after.status == "measured", _explain(after)
    if after.plot is not None:  # --plot wiring (None only without matplotlib)
        assert Path(after.plot).parent == plots and hang.plot is None


def test_without_fork_server() -> None:
    """The plain path: one fresh interpreter per model (also the fallback)."""
    targets = [target("torch_models.py", "DeepSigmoidNet"), target("failing_models.py", "Segfaulting")]
    sig, seg = run_dynamic(targets, DynamicOptions(seeds=1, fork_server=False, jobs=2))
    assert sig.verdict == "vanishing", _explain(sig)
    assert seg.reason == "killed by signal 11 (SIGSEGV)"


# ----------------------------------------------------------------------------- import cost


def test_importing_the_package_loads_no_framework() -> None:
    code = (
        "import sys, gradlint.dynamic, gradlint.dynamic.runner, gradlint.dynamic.render;"
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
