"""Run a whole training program (fixtures/programs2/*.py) for real and say what its training did.

Usage: python tools/measure_programs.py FILE... [--seeds 0,1,2]

Each program runs in its own subprocess per seed (``random``/``numpy``/``torch`` seeded), with
the datasets it loads replaced by small synthetic stand-ins of the same type, shape, dtype and value
range (no network): ``keras.datasets.{mnist,fashion_mnist,cifar10}.load_data`` give 5000 / 1000 real
Fashion-MNIST images (uint8, 0..255; cifar10: padded to 32x32x3) from Debian's dataset-fashion-mnist
package (``FASHION_MNIST`` names the directory; class-template synthetic images without it), and a
fake ``torchvision`` (the installed one does not import here) gives ``datasets.MNIST`` with ``.data``
(uint8) / ``.targets`` and ``transforms.ToTensor`` (/255, as the real one) / ``Normalize`` / ``Compose``.

What is recorded, per seed:
- torch: every ``optimizer.step()`` (a global step pre-hook): the gradient norm over the optimizer's
  parameters at that step (``p.grad`` None counts as 0), the first and last weight's ‖∂L/∂W‖/‖W‖ at
  the first step, and ‖θ_end − θ_start‖/‖θ_start‖ over the run; ‖θ_end − θ_made‖/‖θ_made‖ over the first
  optimizer's parameters from when it was made (``param_change_since_made``: also for a run that never steps);
- keras (torch backend): before ``fit``, the first and last kernel's ‖∂L/∂W‖/‖W‖ on the first batch
  of 64, through ``model.compute_loss``; and the loss/accuracy history ``fit`` returns;
- the numbers the program prints (its last printed line's numbers) and any exception it raised.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

_CHILD = "GRADLINT_MEASURE_CHILD"


def _images(n: int, shape: tuple[int, ...], classes: int, rng) -> tuple:  # type: ignore[no-untyped-def]
    """uint8 images in 0..255, mostly 0 like MNIST, each class a sparse stroke template plus noise."""
    import numpy as np
    templates = (rng.random((classes, *shape)) < 0.2) * rng.integers(128, 256, (classes, *shape))
    labels = rng.integers(0, classes, n)
    keep = rng.random((n, *shape)) < 0.8
    noise = (rng.random((n, *shape)) < 0.05) * rng.integers(0, 256, (n, *shape))
    x = np.clip(templates[labels] * keep + noise, 0, 255).astype(np.uint8)
    return x, labels.astype(np.uint8)


FASHION = Path(os.environ.get("FASHION_MNIST", "/tmp/p2/fm/usr/share/datasets/fashion-mnist"))


def _fashion(n: int, train: bool, rng) -> tuple:  # type: ignore[no-untyped-def]
    """n real Fashion-MNIST images (uint8, 0..255) and labels, a random subset; synthetic ones when the
    files are not there (Debian's dataset-fashion-mnist package holds them)."""
    import gzip

    import numpy as np
    prefix = "train" if train else "t10k"
    images, labels = FASHION / f"{prefix}-images-idx3-ubyte.gz", FASHION / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists():
        return _images(n, (28, 28), 10, rng)
    x = np.frombuffer(gzip.open(images).read(), np.uint8, offset=16).reshape(-1, 28, 28)
    y = np.frombuffer(gzip.open(labels).read(), np.uint8, offset=8)
    pick = rng.choice(len(x), n, replace=False)
    return x[pick].copy(), y[pick].copy()


def _install_fakes(seed: int) -> None:
    import numpy as np
    rng = np.random.default_rng(1000 + seed)

    def loader(shape: tuple[int, ...], label_shape: str):  # type: ignore[no-untyped-def]
        def load_data(*args, **kwargs):  # type: ignore[no-untyped-def]
            (x, y), (xt, yt) = _fashion(5000, True, rng), _fashion(1000, False, rng)
            if shape != (28, 28):  # cifar10: the same images padded to 32x32, in 3 channels
                x, xt = (np.repeat(np.pad(a, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=-1) for a in (x, xt))
            if label_shape == "column":
                y, yt = y.reshape(-1, 1), yt.reshape(-1, 1)
            return (x, y), (xt, yt)
        return load_data

    if os.environ.get("KERAS_BACKEND") == "torch":
        import keras
        keras.datasets.mnist.load_data = loader((28, 28), "flat")
        keras.datasets.fashion_mnist.load_data = loader((28, 28), "flat")
        keras.datasets.cifar10.load_data = loader((32, 32, 3), "column")
        _hook_keras_fit()

    import torch
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    transforms = types.ModuleType("torchvision.transforms")

    class MNIST(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __init__(self, root: str = "", train: bool = True, download: bool = False, transform=None) -> None:  # type: ignore[no-untyped-def]
            x, y = _fashion(5000 if train else 1000, train, rng)
            self.data = torch.from_numpy(x)
            self.targets = torch.from_numpy(y.astype(np.int64))
            self.transform = transform

        def __len__(self) -> int:
            return len(self.data)

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            img = self.data[i].numpy()
            return (self.transform(img) if self.transform else img), int(self.targets[i])

    class ToTensor:
        def __call__(self, img):  # type: ignore[no-untyped-def]
            return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)

    class Normalize:
        def __init__(self, mean, std) -> None:  # type: ignore[no-untyped-def]
            self.mean, self.std = mean[0], std[0]

        def __call__(self, t):  # type: ignore[no-untyped-def]
            return (t - self.mean) / self.std

    class Compose:
        def __init__(self, parts) -> None:  # type: ignore[no-untyped-def]
            self.parts = parts

        def __call__(self, x):  # type: ignore[no-untyped-def]
            for part in self.parts:
                x = part(x)
            return x

    datasets.MNIST = datasets.FashionMNIST = MNIST  # type: ignore[attr-defined]
    transforms.ToTensor, transforms.Normalize, transforms.Compose = ToTensor, Normalize, Compose  # type: ignore[attr-defined]
    tv.datasets, tv.transforms = datasets, transforms  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": tv, "torchvision.datasets": datasets, "torchvision.transforms": transforms})


RECORD: dict = {"steps": 0, "grad_norms": [], "first": None}


def _weights(params: list) -> list:  # type: ignore[type-arg]
    return [p for p in params if p.dim() >= 2]


def _hook_torch() -> None:
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def pre(opt, args, kwargs):  # type: ignore[no-untyped-def]
        params = [p for g in opt.param_groups for p in g["params"]]
        total = math.sqrt(sum(float(p.grad.norm()) ** 2 for p in params if p.grad is not None))
        RECORD["steps"] += 1
        RECORD["grad_norms"].append(total)
        if RECORD["first"] is None:
            ws = _weights(params)
            rel = [float(w.grad.norm() / w.norm()) if w.grad is not None else 0.0 for w in ws]
            RECORD["first"] = {"first_rel": rel[0] if rel else None, "last_rel": rel[-1] if rel else None,
                               "params": [p.detach().clone() for p in params], "live": params}

    register_optimizer_step_pre_hook(pre)
    import torch
    made = torch.optim.Optimizer.__init__

    def init(self, params, *args, **kwargs):  # type: ignore[no-untyped-def]
        made(self, params, *args, **kwargs)
        if "made" not in RECORD:  # the first optimizer's parameters as it was made: a run that never steps
            live = [p for g in self.param_groups for p in g["params"]]
            RECORD["made"] = {"params": [p.detach().clone() for p in live], "live": live}

    torch.optim.Optimizer.__init__ = init  # type: ignore[method-assign]


def _hook_keras_fit() -> None:
    import keras
    import numpy as np
    import torch
    original = keras.Model.fit

    def fit(self, x=None, y=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            xb = torch.tensor(np.asarray(x[:64]), dtype=torch.float32)
            yb = torch.tensor(np.asarray(y[:64]))
            pred = self(xb)
            loss = self.compute_loss(x=xb, y=yb, y_pred=pred)
            kernels = [w for w in self.trainable_weights if len(w.shape) >= 2]
            grads = torch.autograd.grad(loss, [k.value for k in kernels], allow_unused=True)
            rel = [float(g.norm() / k.value.norm()) if g is not None else 0.0
                   for g, k in zip(grads, kernels, strict=True)]
            RECORD["keras_first_rel"], RECORD["keras_last_rel"] = rel[0], rel[-1]
            RECORD["keras_init_loss"] = float(loss)
        except Exception as exc:  # noqa: BLE001 -- the measurement must not hide the program's own run
            RECORD["keras_grad_error"] = repr(exc)
        history = original(self, x, y, *args, **kwargs)
        RECORD["history"] = {k: [float(v[0]), float(v[-1])] for k, v in history.history.items()}
        return history

    keras.Model.fit = fit


def _child(path: str, seed: int) -> None:
    import io
    import random
    import runpy
    from contextlib import redirect_stdout

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if os.environ.get("KERAS_BACKEND") == "torch":
        import keras
        keras.utils.set_random_seed(seed)
    _install_fakes(seed)
    _hook_torch()
    out = io.StringIO()
    error = None
    try:
        with redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
    except Exception as exc:  # noqa: BLE001 -- a crash is a measured outcome
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    first = RECORD.pop("first")
    result = {k: v for k, v in RECORD.items()}
    norms = result.pop("grad_norms")
    if norms:
        result["grad_norm_first"], result["grad_norm_last"] = norms[0], norms[-1]
        result["grad_norm_max"] = max(norms)
        result["nonfinite"] = any(not math.isfinite(n) for n in norms)
    if first is not None:
        before = first.pop("params")
        live = first.pop("live")
        delta = math.sqrt(sum(float((p.detach() - b).norm()) ** 2 for p, b in zip(live, before, strict=True)))
        size = math.sqrt(sum(float(b.norm()) ** 2 for b in before))
        result.update(first, param_change=delta / size if size else None)
    made = result.pop("made", None)
    if made is not None:  # ‖θ_end − θ_made‖/‖θ_made‖ over the first optimizer's parameters, stepped or not
        before, live = made["params"], made["live"]
        delta = math.sqrt(sum(float((p.detach() - b).norm()) ** 2 for p, b in zip(live, before, strict=True)))
        size = math.sqrt(sum(float(b.norm()) ** 2 for b in before))
        result["param_change_since_made"] = delta / size if size else None
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    result["printed_first"] = lines[0][:100] if lines else None
    result["printed_last"] = lines[-1][:100] if lines else None
    result["error"] = error
    print(json.dumps(result))


def main(argv: list[str]) -> int:
    seeds = [0, 1, 2]
    files = []
    for arg in argv:
        if arg.startswith("--seeds="):
            seeds = [int(s) for s in arg.split("=", 1)[1].split(",")]
        else:
            files.append(arg)
    for path in files:
        env = dict(os.environ, **{_CHILD: "1"})
        if "keras" in Path(path).read_text(encoding="utf-8"):
            env["KERAS_BACKEND"] = "torch"
        for seed in seeds:
            proc = subprocess.run([sys.executable, __file__, path, str(seed)], env=env, capture_output=True,
                                  text=True, timeout=600)
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
            print(f"{Path(path).name}\tseed {seed}\t{line}", flush=True)
    return 0


if __name__ == "__main__":
    if os.environ.get(_CHILD):
        _child(sys.argv[1], int(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
