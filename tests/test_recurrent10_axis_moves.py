"""Recurrent loop styles read statically (extraction only; no new measured fixture): a cell stepped over
an axis move of the batch (``x.transpose(0, 1)``, ``permute(1, 0, 2)``, ``swapaxes``, ``movedim``), over
named step pieces (``steps = x.unbind(1)``; ``range(len(steps))``), ``enumerate`` of a moved tensor, a
list filled in such a loop and stacked (every step) or read at ``[-1]`` (last step), and
``model.forward(x)`` as a training call."""

from __future__ import annotations

import pytest

from gradlint.engine import LintConfig, lint_source

_MODEL = '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n_in=8, hidden=64):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.RNNCell(n_in, hidden)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden)
        outputs = []
{loop}
{read}


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for it in range(100):
    x = torch.randn(32, 400, 8)
    out = {call}
    loss = (out - torch.randn_like(out)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
{clip}    opt.step()
'''

_LOOPS = [
    "for x_t in x.transpose(0, 1):\n    h = self.cell(x_t, h)",
    "for x_t in x.permute(1, 0, 2):\n    h = self.cell(x_t, h)",
    "for x_t in x.swapaxes(0, 1):\n    h = self.cell(x_t, h)",
    "for x_t in x.movedim(1, 0):\n    h = self.cell(x_t, h)",
    "xs = x.transpose(0, 1)\nfor x_t in xs:\n    h = self.cell(x_t, h)",
    "x = x.permute(1, 0, 2)\nfor t in range(x.size(0)):\n    h = self.cell(x[t], h)",
    "seq = x.transpose(0, 1)\nfor t in range(len(seq)):\n    h = self.cell(seq[t], h)",
    "seq = x.transpose(0, 1)\nfor t, x_t in enumerate(seq):\n    h = self.cell(x_t, h)",
    "steps = x.unbind(1)\nfor t in range(len(steps)):\n    h = self.cell(steps[t], h)",
    "steps = torch.unbind(x, dim=1)\nfor x_t in steps:\n    h = self.cell(x_t, h)",
]


def _lint(loop: str, read: str = "return self.fc(h)", call: str = "model(x)",
          clip: bool = False) -> list[tuple[str, str]]:
    def indent(text: str) -> str:
        return "\n".join("        " + line for line in text.splitlines())

    source = _MODEL.format(loop=indent(loop + "\n    outputs.append(h)"), read=indent(read), call=call,
                           clip="    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n" if clip else "")
    return [(d.code, d.message) for d in lint_source(source, "case.py", LintConfig()).diagnostics]


def _codes(loop: str, read: str = "return self.fc(h)", call: str = "model(x)", clip: bool = False) -> list[str]:
    return [code for code, _ in _lint(loop, read, call, clip)]


@pytest.mark.parametrize("loop", _LOOPS)
def test_a_cell_stepped_over_a_moved_batch_axis_gets_the_batch_length(loop: str) -> None:
    assert _codes(loop) == ["GRD007"]
    assert _codes(loop, clip=True) == ["GRD008"]


@pytest.mark.parametrize("loop", [
    "for x_t in x.transpose(1, 2):\n    h = self.cell(x_t, h)",  # steps over the batch axis (32)
    "for x_t in x.transpose(-3, -2):\n    h = self.cell(x_t, h)",  # rank not known: not read
    "x = x.transpose(0, 1)\nfor t in range(x.size(1)):\n    h = self.cell(x[:, t], h)",  # the batch axis
])
def test_a_move_that_does_not_put_time_first_is_not_read_as_400_steps(loop: str) -> None:
    assert not any("400 time steps" in message for _, message in _lint(loop))


@pytest.mark.parametrize("read", [
    "return self.fc(torch.stack(outputs, 1))",
    "return self.fc(torch.stack(outputs, dim=1).mean(1))",
    "return self.fc(torch.stack(outputs).mean(0))",
    "return self.fc(torch.stack(outputs).transpose(0, 1))",
])
@pytest.mark.parametrize("loop", [_LOOPS[0], _LOOPS[7], _LOOPS[8]])
def test_outputs_stacked_from_a_loop_over_time_read_every_step(loop: str, read: str) -> None:
    assert _codes(loop, read, clip=True) == []


@pytest.mark.parametrize("loop", [_LOOPS[0], _LOOPS[8], "for t in range(x.size(1)):\n    h = self.cell(x[:, t], h)"])
def test_the_last_of_the_outputs_is_a_last_step_read(loop: str) -> None:
    assert _codes(loop, "return self.fc(outputs[-1])", clip=True) == ["GRD008"]


def test_model_forward_is_a_training_call() -> None:
    loop = "for t in range(x.size(1)):\n    h = self.cell(x[:, t], h)"
    assert _codes(loop, call="model.forward(x)") == ["GRD007"]
    assert _codes(loop, call="model.forward(x)", clip=True) == ["GRD008"]
