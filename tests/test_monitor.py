"""The training monitor on real training loops: PyTorch, and Keras 3 on the torch backend.

Each run is a real optimizer loop on synthetic data. Healthy runs must stay quiet; induced
explosions (weights scaled mid-run), NaN and a stuck deep-sigmoid run must be caught at the
first recorded step where they show. No timing assertions (benchmarks/monitor_overhead.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from conftest import ROOT

torch = pytest.importorskip("torch")
nn = torch.nn

from gradlint.monitor import (  # noqa: E402
    Alert,
    GradientAlert,
    GradientMonitor,
    LossPlateauAlert,
    PlateauDetector,
    read_log,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _small_cpu():
    # Tiny models: one thread is faster than two fighting over a shared machine. Denormals
    # (vanishing sigmoid gradients reach 1e-38) are flushed: they slow CPU math ~5x.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def _data(n: int = 512, features: int = 20, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = x @ torch.randn(features, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))


def _train(model, monitor, steps, *, lr=0.01, scale_weights_at=None, nan_at=None, loss_fn=None, data=None):
    x, y = data or _data()
    loss_fn = loss_fn or nn.functional.mse_loss
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(2)
    for i in range(steps):
        if i == scale_weights_at:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(10.0)
        idx = torch.randint(0, len(x), (32,), generator=g)
        xb = x[idx].clone()
        if i == nan_at:
            xb[0, 0] = float("nan")
        opt.zero_grad()
        loss = loss_fn(model(xb), y[idx])
        loss.backward()
        monitor.step(loss)
        opt.step()


def _alerts(caught) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, GradientAlert)]


# -- import cost -------------------------------------------------------------------------------


def test_importing_gradlint_monitor_loads_no_framework():
    code = (
        "import sys, gradlint.monitor as m; "
        "assert m.GradientAlert and m.PlateauDetector(10, 0.01); "
        "print(sorted(x for x in ('torch', 'keras', 'matplotlib') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- PyTorch -------------------------------------------------------------------------------------


def test_torch_healthy_run_is_quiet_and_logs_every_n_steps(tmp_path: Path):
    log = tmp_path / "monitor.jsonl"
    model = _mlp()
    monitor = GradientMonitor(model, every=10, log_path=log, plateau_window=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(model, monitor, 300)
    assert _alerts(caught) == [] and monitor.alerts == []
    records = read_log(log)
    assert [r["step"] for r in records] == list(range(0, 300, 10))
    assert monitor.layers == ["0", "2", "4"] and monitor.order_source == "autograd graph"
    first = records[0]
    assert first["framework"] == "torch" and first["model"] == "Sequential"
    assert [layer["name"] for layer in first["layers"]] == ["0", "2", "4"]
    assert first["first"] == "0" and first["last"] == "4"
    assert all(r["flags"] == [] and r["verdict"] == "healthy" and not r["nonfinite"] for r in records)
    assert all(1e-3 < r["ratio"] < 1e3 for r in records)
    assert records[-1]["loss"] < records[0]["loss"] / 10  # it did train
    # the ratio is the first/last layer's gradient norm, as the dynamic check defines it
    norms = {layer["name"]: layer["grad_norm"] for layer in first["layers"]}
    assert first["ratio"] == pytest.approx(norms["0"] / norms["4"], rel=1e-5)  # 6 significant digits in the log


def test_torch_catches_weights_scaled_mid_run(tmp_path: Path):
    seen: list[Alert] = []
    model = _mlp()
    monitor = GradientMonitor(
        model, every=10, log_path=tmp_path / "m.jsonl", plot_dir=tmp_path / "plots", on_alert=seen.append
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with monitor:
            _train(model, monitor, 140, scale_weights_at=100)
    assert seen, "no alert after the weights were scaled 10x"
    first = seen[0]
    assert (first.kind, first.step) == ("exploding", 100)  # the first recorded step after the blow-up
    # the loss jumped past 1e6 (outputs ~1000x): the forward-scale criterion of the protocol
    assert "loss" in first.message and "forward blow-up" in first.message and "clip_grad_norm_" in first.message
    assert all(a.step >= 100 for a in seen)
    assert [w for w in _alerts(caught) if "step 100: exploding" in str(w.message)]
    assert _alerts(caught)[0].filename == __file__  # the warning points at the monitor.step() call
    record = {r["step"]: r for r in read_log(tmp_path / "m.jsonl")}[100]
    assert record["flags"][:1] in (["exploding"], ["nan"]) and record["alerts"][0]["kind"] == "exploding"
    # a plot for the alert, and the final plot from the context manager
    assert Path(record["plot"]).read_bytes()[:8] == PNG
    assert (tmp_path / "plots" / "Sequential-final.png").read_bytes()[:8] == PNG


def test_torch_nan_is_flagged_once_and_logged_as_valid_json(tmp_path: Path):
    log = tmp_path / "m.jsonl"
    model = _mlp()
    monitor = GradientMonitor(model, every=10, log_path=log, warn=False)
    _train(model, monitor, 160, nan_at=120)  # NaN input at a recorded step; weights stay NaN after it
    assert [(a.kind, a.step) for a in monitor.alerts] == [("nan", 120)]  # raised once, not every record

    def strict(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant} in the log")

    lines = log.read_text().splitlines()  # strict JSON: non-finite numbers are written as null
    records = {r["step"]: r for r in (json.loads(line, parse_constant=strict) for line in lines)}
    bad = records[120]
    assert bad["nonfinite"] and bad["loss"] is None and bad["nonfinite_layers"] == ["0", "2", "4"]
    assert bad["flags"] == ["nan"] and records[150]["flags"] == ["nan"]  # still flagged, not re-alerted
    assert all(r["alerts"] == [] for step, r in records.items() if step != 120)
    assert monitor.flags == {"nan"}


def test_torch_deep_sigmoid_vanishes_and_plateaus():
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(20, 32), nn.Sigmoid()]
    for _ in range(10):
        layers += [nn.Linear(32, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 1))
    x, _ = _data(1024)
    y = (x[:, :5].sum(1, keepdim=True) > 0).float()
    monitor = GradientMonitor(model, every=5, log_path=None, plateau_window=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(model, monitor, 150, lr=0.1, loss_fn=nn.functional.binary_cross_entropy_with_logits, data=(x, y))
    kinds = [(a.kind, a.step) for a in monitor.alerts]
    assert kinds[0] == ("vanishing", 0)
    assert [k for k, _ in kinds] == ["vanishing", "plateau"]
    assert monitor.history[0]["ratio"] < 1e-6
    plateau = [w for w in caught if w.category is LossPlateauAlert]
    assert len(plateau) == 1 and "plateau: the loss (median of the last 5 records) has not improved by 1%" in str(
        plateau[0].message
    )
    assert monitor.latest["plateau"]["since"] >= 10


def test_torch_frozen_run_with_a_healthy_looking_ratio_is_vanishing():
    """Every layer's gradient ~1e-8 while the first/last ratio is ~1 (U(-0.05, 0.05) under 11 ReLU
    layers: the forward signal collapses): the ratio alone called this healthy. The first layer's
    ‖∂W‖/‖W‖ is below 1e-7 (frozen, under SGD and Adam alike), and the loss stops improving."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(20, 64), nn.ReLU()]
    for _ in range(10):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(64, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)
            nn.init.zeros_(m.bias)
    monitor = GradientMonitor(model, every=5, log_path=None, warn=False, plateau_window=10)
    _train(model, monitor, 200)
    first = monitor.history[0]
    assert 1e-2 < first["ratio"] < 1e2  # inside every "healthy" ratio band
    record0 = monitor.alerts[0].record
    assert all(layer["grad_norm"] < 1e-6 for layer in record0["layers"])
    assert (monitor.alerts[0].kind, monitor.alerts[0].step) == ("vanishing", 0)
    assert "frozen" in monitor.alerts[0].message and record0["first_relative_grad"] < 1e-7
    assert "plateau" in [a.kind for a in monitor.alerts]


def test_torch_constant_init_is_symmetric():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.05)
            nn.init.zeros_(m.bias)
    monitor = GradientMonitor(model, every=5, log_path=None, warn=False)
    _train(model, monitor, 20)
    assert [(a.kind, a.step) for a in monitor.alerts][:1] == [("symmetric", 0)]
    assert (monitor.latest["symmetric_layers"] == ["0", "2"]
            and "initialize the weights randomly" in monitor.alerts[0].message)


class _OutOfOrder(nn.Module):
    """Registered head-first, runs input-first: the log must follow execution."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(32, 1)
        self.norm = nn.LayerNorm(32)
        self.body = nn.Linear(20, 32)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.body(x))))


def test_torch_no_work_between_records_and_execution_order(monkeypatch):
    model = _OutOfOrder()
    monitor = GradientMonitor(model, every=50, log_path=None)
    calls = []
    original = monitor._finish
    monkeypatch.setattr(monitor, "_finish", lambda *a, **k: calls.append(a[0]) or original(*a, **k))
    _train(model, monitor, 120)
    assert calls == [0, 50, 100]
    assert monitor.steps == 120
    assert monitor.layers == ["body", "norm", "head"]
    assert [layer["is_norm"] for layer in monitor.latest["layers"]] == [False, True, False]
    assert (monitor.latest["first"], monitor.latest["last"]) == ("body", "head")  # norm layers are never first/last
    # nothing is left attached to the model
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())
    assert all(not p._backward_hooks for p in model.parameters())
    # record() forces a record now; plot() draws it
    assert monitor.record()["step"] == 119


def test_torch_plot_and_missing_gradients(tmp_path: Path):
    model = _mlp()
    monitor = GradientMonitor(model, every=1, log_path=None)
    with pytest.raises(RuntimeError, match="nothing recorded"):
        monitor.plot(tmp_path / "none.png")
    with pytest.warns(RuntimeWarning, match="no gradients"):
        monitor.step(None)  # before any backward: every .grad is None
    assert monitor.latest["has_grads"] is False and monitor.latest["flags"] == []
    _train(model, monitor, 3)
    out = monitor.plot(tmp_path / "sub" / "flow.png")
    assert Path(out).read_bytes()[:8] == PNG


def _feed(losses, window=10, threshold=0.01):
    detector = PlateauDetector(window, threshold)
    return detector, [detector.update(loss, step) for step, loss in enumerate(losses)]


def test_plateau_rule():
    # steady improvement: a new best (rolling median of 5) at almost every record
    _, states = _feed([1.0 * 0.97**i for i in range(60)])
    assert not any(states)
    # flat: the plateau starts once `window` records passed without a new best, and stays
    detector, states = _feed([1.0] * 30)
    assert states.index(True) == 4 + 10 and all(states[14:])
    assert detector.best == 1.0 and detector.best_step == 4 and detector.since == 25
    # a noisy flat loss: single outliers do not move the median, so no false "improvement"
    noisy = [1.0, 0.5, 1.0, 1.0, 1.0] * 10
    assert _feed(noisy)[1][-1] is True
    # it ends at the next improvement beyond the threshold
    detector, states = _feed([1.0] * 20 + [0.5] * 5)
    assert states[19] and not states[-1] and detector.best == 0.5
    # a rising loss is a plateau too; NaN is skipped
    assert _feed([1.0 + 0.1 * i for i in range(20)])[1][-1] is True
    assert _feed([float("nan")] * 30)[1] == [False] * 30


# -- Keras (torch backend) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("KERAS_BACKEND is not torch")
    keras = pytest.importorskip("keras")
    if keras.config.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    return keras


def _keras_mlp(keras, seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((20,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(32, activation="relu"),
         keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def test_keras_healthy_fit_is_quiet(keras, tmp_path: Path):
    from gradlint.monitor import GradientMonitorCallback

    x, y = (t.numpy() for t in _data())
    model = _keras_mlp(keras)
    callback = GradientMonitorCallback(every=4, log_path=tmp_path / "k.jsonl", plateau_window=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=32, epochs=6, verbose=0, callbacks=[callback])
    assert _alerts(caught) == [] and callback.alerts == []
    records = read_log(tmp_path / "k.jsonl")
    assert [r["step"] for r in records] == list(range(0, 96, 4))  # 16 batches x 6 epochs, across epochs
    assert callback.layers == ["dense", "dense_1", "dense_2"]
    assert {r["framework"] for r in records} == {"keras"} and records[0]["model"] == model.name
    assert [r["epoch"] for r in records[:5]] == [0, 0, 0, 0, 1] and records[4]["batch"] == 0
    assert all(r["flags"] == [] and r["layers"][0]["grad_norm"] > 0 for r in records)
    # loss = mean batch loss since the previous record; Keras' running epoch mean is kept beside it
    assert records[0]["loss"] == pytest.approx(records[0]["loss_epoch_mean"])
    assert records[-1]["loss"] < records[0]["loss"] / 5


def test_keras_catches_weights_scaled_mid_fit_and_stops_on_nan(keras, tmp_path: Path):
    from gradlint.monitor import GradientMonitorCallback

    x, y = (t.numpy() for t in _data())
    model = _keras_mlp(keras)
    state = {"batches": 0}

    def blow_up(batch, logs=None):
        if state["batches"] == 40:
            for v in model.trainable_weights:
                v.assign(v.value * 10.0)
        state["batches"] += 1

    seen: list[Alert] = []
    callback = GradientMonitorCallback(every=4, log_path=tmp_path / "k.jsonl", on_alert=seen.append, stop_on_nan=True)
    scale = keras.callbacks.LambdaCallback(on_train_batch_begin=blow_up)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=32, epochs=30, verbose=0, callbacks=[scale, callback])
    assert [w.filename for w in _alerts(caught)] == [__file__, __file__]  # they point at model.fit(...)
    assert [(a.kind, a.step) for a in seen][:1] == [("exploding", 40)]  # the first record after the blow-up
    assert [a.kind for a in seen] == ["exploding", "nan"] and seen[1].step > 40
    assert len(history.history["loss"]) < 30  # stop_on_nan ended the 30-epoch fit early
    assert read_log(tmp_path / "k.jsonl")[10]["alerts"][0]["kind"] == "exploding"


def test_keras_subclassed_model_in_execution_order(keras, tmp_path: Path):
    from gradlint.monitor import GradientMonitorCallback

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.head = keras.layers.Dense(1, name="head")  # defined first, runs last
            self.norm = keras.layers.BatchNormalization(name="norm")
            self.body = keras.layers.Dense(32, activation="relu", name="body")

        def call(self, x, training=False):
            return self.head(self.norm(self.body(x), training=training))

    x, y = (t.numpy() for t in _data(128))
    keras.utils.set_random_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss="mse")
    callback = GradientMonitorCallback(every=2, log_path=None)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert callback.layers == ["body", "norm", "head"]
    assert (callback.latest["first"], callback.latest["last"]) == ("body", "head")
    # the order hooks are gone after the first recorded batch
    assert all(not v.value._backward_hooks for v in model.trainable_weights)
    assert callback.plot(tmp_path / "k.png") and (tmp_path / "k.png").read_bytes()[:8] == PNG
