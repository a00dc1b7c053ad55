"""The learning-rate sweep GRD015 is calibrated on (docs/calibration.md, "GRD015").

Usage: python tools/sweep_learning_rate.py [FAMILIES [OPTIMIZERS]] > sweep.jsonl

Six MLPs (ReLU/tanh, PyTorch default / He / Glorot init, cross-entropy classification and MSE
regression on synthetic data), trained 300 steps of batch 64 with SGD, SGD + momentum 0.9, Adam and
RMSprop at lr 1e-3 … 100, seeds 0/1/2. One JSON line per run: the loss at the start and the end over
the whole set, diverged (end loss non-finite or > 10× the start, or weights non-finite), learns (not
diverged and the end loss < 0.9× the start), and the measured first-step ‖∂L/∂W‖/‖W‖ per weight layer
(first, last, largest) and rms(W) (smallest, largest)."""
import json
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import torch
import torch.nn as nn

torch.set_num_threads(1)

def mlp(din, widths, dout, act, init):
    layers, d = [], din
    for w in widths:
        layers += [nn.Linear(d, w), act()]
        d = w
    layers.append(nn.Linear(d, dout))
    m = nn.Sequential(*layers)
    for mod in m.modules():
        if isinstance(mod, nn.Linear) and init == "he":
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.zeros_(mod.bias)
        if isinstance(mod, nn.Linear) and init == "glorot":
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    return m

FAMILIES = {
 # name: (din, widths, dout, act, init, task)
 "relu8_he_ce": (20, [128]*7, 2, nn.ReLU, "he", "ce"),
 "relu3_def_ce10": (64, [256, 128], 10, nn.ReLU, "default", "ce"),
 "tanh3_def_ce": (32, [64, 64], 3, nn.Tanh, "default", "ce"),
 "relu2_def_mse": (10, [64, 64], 1, nn.ReLU, "default", "mse"),
 "relu4_glorot_mse": (16, [128]*4, 1, nn.ReLU, "glorot", "mse"),
 "tanh2_def_mse": (8, [32, 32], 1, nn.Tanh, "default", "mse"),
}

def data(din, dout, task, g):
    X = torch.randn(1024, din, generator=g)
    w = torch.randn(din, generator=g)
    if task == "ce":
        s = X @ w
        if dout == 2:
            y = (s > 0).long()
        else:
            y = torch.bucketize(s, torch.quantile(s, torch.linspace(0, 1, dout + 1)[1:-1]))
    else:
        y = (torch.sin(X @ w / math.sqrt(din)) + 0.1 * torch.randn(1024, generator=g)).unsqueeze(1)
    return X, y

def run(fam, opt, lr, seed, steps=300, bs=64):
    din, widths, dout, act, init, task = FAMILIES[fam]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(100 + seed)
    m = mlp(din, widths, dout, act, init)
    X, y = data(din, dout, task, g)
    crit = nn.CrossEntropyLoss() if task == "ce" else nn.MSELoss()
    o = {"sgd": lambda p: torch.optim.SGD(p, lr=lr), "sgdm": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
         "adam": lambda p: torch.optim.Adam(p, lr=lr),
         "rmsprop": lambda p: torch.optim.RMSprop(p, lr=lr)}[opt](m.parameters())
    ws = [p for p in m.parameters() if p.dim() >= 2]
    with torch.no_grad():
        start = crit(m(X), y).item()
    rel = None
    for step in range(steps):
        i = (step * bs) % 1024
        o.zero_grad()
        loss = crit(m(X[i:i+bs]), y[i:i+bs])
        loss.backward()
        if rel is None:
            rel = [float(w.grad.norm() / w.norm()) for w in ws]
            rms = [float(w.pow(2).mean().sqrt()) for w in ws]
        o.step()
    with torch.no_grad():
        end = crit(m(X), y).item()
    finite = all(torch.isfinite(p).all() for p in m.parameters())
    div = (not math.isfinite(end)) or (not finite) or end > 10 * start
    # "learns": ends below start (CE: below 0.9*start)
    learns = (not div) and end < 0.9 * start
    return dict(fam=fam, opt=opt, lr=lr, seed=seed, start=start, end=end, div=div, learns=learns,
                rel_first=rel[0], rel_last=rel[-1], rel_max=max(rel), rms_min=min(rms), rms_max=max(rms))

if __name__ == "__main__":
    fams = sys.argv[1].split(",") if len(sys.argv) > 1 else list(FAMILIES)
    opts = sys.argv[2].split(",") if len(sys.argv) > 2 else ["sgd", "sgdm", "adam", "rmsprop"]
    lrs = [1e-3, 1e-2, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]
    for fam in fams:
        for opt in opts:
            for lr in lrs:
                for seed in range(3):
                    print(json.dumps(run(fam, opt, lr, seed)), flush=True)
