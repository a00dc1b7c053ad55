"""Where a hand-written log(softmax) / log(sigmoid) cross-entropy turns NaN in float32 training, against
the same training with the stable form (log_softmax / binary_cross_entropy_with_logits): GRD018's docs.

Usage: python tools/sweep_log_probability.py [STEPS=2000] [binary]

Synthetic data, seeded per seed (0, 1, 2): 2000 points of 20 standardized features around 10 (or 2, with
``binary``) Gaussian class means 4 apart per axis (separable); a linear model or an MLP of 2 ReLU layers of
128; SGD 0.1 / 0.5 or Adam 1e-3 / 1e-2; the per-example loss averaged or summed over the batch of 100.
One JSON line per configuration: per seed, the first step (0-based) whose loss or gradient is non-finite
(null: none), the largest logit gap (softmax) or |logit| (sigmoid) seen, and the final training accuracy.
"""
from __future__ import annotations

import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


def data(kind: str, seed: int, n: int = 2000, d: int = 20, k: int = 10, sep: float = 4.0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(100 + seed)
    if kind == "binary":
        k = 2
    means = torch.randn(k, d, generator=g) * sep
    y = torch.randint(0, k, (n,), generator=g)
    x = means[y] + torch.randn(n, d, generator=g)
    return (x - x.mean(0)) / x.std(0), y, k


def model(depth: int, d: int, k_out: int, width: int = 128) -> nn.Module:
    if depth == 0:
        return nn.Linear(d, k_out)
    layers: list[nn.Module] = []
    w = d
    for _ in range(depth):
        layers += [nn.Linear(w, width), nn.ReLU()]
        w = width
    return nn.Sequential(*layers, nn.Linear(w, k_out))


def _per_example(cfg: dict, z: torch.Tensor, yb: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """The per-example loss in the configuration's form, and the largest logit gap (|logit| for one unit)."""
    if cfg["data"] == "binary":
        z, t = z.squeeze(1), yb.float()
        if cfg["form"] == "unstable":
            p = torch.sigmoid(z)
            per = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
        else:
            per = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        return per, z.detach().abs().max().item()
    onehot = F.one_hot(yb, k).float()
    logp = torch.log(torch.softmax(z, 1)) if cfg["form"] == "unstable" else torch.log_softmax(z, 1)
    zd = z.detach()
    return -(onehot * logp).sum(1), (zd.max(1).values - zd.min(1).values).max().item()


def run(cfg: dict, seed: int) -> dict:
    torch.manual_seed(seed)
    x, y, k = data(cfg["data"], seed)
    binary = cfg["data"] == "binary"
    net = model(cfg["depth"], x.shape[1], 1 if binary else k)
    opt: torch.optim.Optimizer = (torch.optim.Adam(net.parameters(), lr=cfg["lr"]) if cfg["opt"] == "adam"
                                  else torch.optim.SGD(net.parameters(), lr=cfg["lr"]))
    bs, first_bad, max_gap = 100, None, 0.0
    for step in range(cfg["steps"]):
        i = (step * bs) % len(x)
        per, gap = _per_example(cfg, net(x[i:i + bs]), y[i:i + bs], k)
        loss = per.sum() if cfg["reduce"] == "sum" else per.mean()
        opt.zero_grad()
        loss.backward()
        max_gap = max(max_gap, gap) if math.isfinite(gap) else max_gap
        if not math.isfinite(loss.item()) or any(not torch.isfinite(p.grad).all() for p in net.parameters()):
            first_bad = step
            break
        opt.step()
    with torch.no_grad():
        out = net(x)
        hits = (out.squeeze(1) > 0).long() == y if binary else out.argmax(1) == y
    return {"nan_step": first_bad, "max_gap": round(max_gap, 1), "acc": round(hits.float().mean().item(), 3)}


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    kind = "binary" if "binary" in sys.argv[2:] else "multi"
    for depth in (0, 2):
        for opt, lr in (("sgd", 0.1), ("sgd", 0.5), ("adam", 1e-3), ("adam", 1e-2)):
            for reduce in ("mean", "sum"):
                for form in ("unstable", "stable"):
                    cfg = dict(data=kind, depth=depth, opt=opt, lr=lr, reduce=reduce, form=form, steps=steps)
                    print(json.dumps({**cfg, "seeds": [run(cfg, seed) for seed in (0, 1, 2)]}), flush=True)


if __name__ == "__main__":
    main()
