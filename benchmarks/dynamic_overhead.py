"""Overhead of the dynamic check's measurement vs a bare forward + backward.

    .venv/bin/python benchmarks/dynamic_overhead.py [--reps N]

For each model: the median wall time of a bare step (forward, MSE loss, backward) and of
one measured step (``gradlint.dynamic.measure.measure_once``: parameter discovery, the
function-mode recorder, activation statistics, norms, symmetry test). The target is a
ratio <= 1.5. The ResNet-50 is defined here (torchvision's bottleneck layout [3, 4, 6, 3]
and init) because torchvision does not import beside every torch build.
Subprocess start-up and torch import (~2 s per model) are not part of this figure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.dynamic import DynamicOptions
from gradlint.dynamic.measure import measure_once


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def mlp(width: int, depth: int, in_features: int = 256) -> nn.Module:
    dims = [in_features] + [width] * (depth - 1)
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b), nn.Sigmoid()]
    layers.append(nn.Linear(dims[-1], 10))
    return nn.Sequential(*layers)


def timed(steps: list[Callable[[], object]], reps: int) -> list[float]:
    """Median time of each step; reps alternate between the steps so load drift hits both."""
    for step in steps:
        step()  # warm-up: allocator and first-call costs are not measurement overhead
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(reps):
        for i, step in enumerate(steps):
            start = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench(name: str, model: nn.Module, x: torch.Tensor, reps: int) -> tuple[float, float]:
    model.train()
    thresholds = DynamicOptions().thresholds

    def bare() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x)
        F.mse_loss(out, torch.randn(out.shape)).backward()

    def measured() -> None:
        measure_once(model, lambda: model(x), "torch", thresholds, torch.Generator().manual_seed(0))

    t_bare, t_measured = timed([bare, measured], reps)
    print(f"{name:<28} bare {t_bare * 1e3:9.1f} ms   measured {t_measured * 1e3:9.1f} ms   "
          f"ratio {t_measured / t_bare:5.2f}x")
    return t_bare, t_measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine one thread gives steadier figures
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps} steps")
    cases = [
        ("ResNet-50, batch 8, 224px", ResNet50(), torch.randn(8, 3, 224, 224)),
        ("MLP 11x64 sigmoid, batch 32", mlp(64, 11, 20), torch.randn(32, 20)),
        ("MLP 11x1024 sigmoid, b 256", mlp(1024, 11), torch.randn(256, 256)),
        ("MLP 4x4096 sigmoid, b 64", mlp(4096, 4), torch.randn(64, 256)),
    ]
    ratios = [bench(name, model, x, args.reps) for name, model, x in cases]
    worst = max(m / b for b, m in ratios)
    print(f"worst ratio {worst:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
