"""Recurrent recall and precision in PyTorch (static):

- a torch cell stepped by a forward loop over ``torch.chunk(x, x.size(1), dim=1)``, ``torch.split(x, 1,
  dim=1)``, ``enumerate(x.unbind(1))`` (and the forms read before) runs over that axis of the training
  batch, so GRD007/GRD008/GRD004 see its length (fixtures/training/torch_rnncell_{chunk,split,enumerate}_*);
- an nn.RNN's output read at every step through a reduction over time, an elementwise function or a
  functional dropout is not a last-step read (measured 1.1-1.2 through 60 steps against 10^-15.2:
  fixtures/training/torch_rnn_{mean,sum,max}_over_time.py, ..._relu_every_step.py, ...), while a step
  selection (``out[:, -1]``, ``narrow``, ``select``, ``index_select``, a piece of ``unbind``), ``h_n`` and
  time-major ``out[-1]`` stay reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gradlint.engine import LintConfig, lint_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"

_CELL_MODEL = '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n_in=8, hidden=64):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.RNNCell(n_in, hidden)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden)
{loop}
        return self.fc(h)


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for it in range(100):
    x = torch.randn(32, 400, 8)
    loss = (model(x) - torch.randn(32, 1)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
'''


def _lint(source: str, name: str = "case.py") -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in lint_source(source, name, LintConfig()).diagnostics]


def _codes(source: str) -> list[str]:
    return [code for code, _ in _lint(source)]


def _fixture(name: str, replace: tuple[str, str] | None = None) -> str:
    source = (FIXTURES / name).read_text(encoding="utf-8")
    if replace is not None:
        assert replace[0] in source
        source = source.replace(*replace)
    return source


@pytest.mark.parametrize("loop", [
    "for t in range(x.size(1)):\n    h = self.cell(x[:, t], h)",
    "seq_len = x.size(1)\nfor t in range(seq_len):\n    h = self.cell(x[:, t], h)",
    "b, seq_len, _ = x.shape\nfor t in range(seq_len):\n    h = self.cell(x[:, t], h)",
    "for x_t in x.unbind(1):\n    h = self.cell(x_t, h)",
    "for x_t in torch.unbind(x, dim=1):\n    h = self.cell(x_t, h)",
    "for t, x_t in enumerate(x.unbind(1)):\n    h = self.cell(x_t, h)",
    "for x_t in x.split(1, dim=1):\n    h = self.cell(x_t.squeeze(1), h)",
    "for x_t in torch.split(x, 1, dim=1):\n    h = self.cell(x_t.squeeze(1), h)",
    "for x_t in torch.chunk(x, x.size(1), dim=1):\n    h = self.cell(x_t.squeeze(1), h)",
    "for x_t in x.chunk(x.shape[1], 1):\n    h = self.cell(x_t.squeeze(1), h)",
    "for t in range(x.size(1)):\n    h = self.cell(x.select(1, t), h)",
])
def test_a_cell_loop_over_the_batch_time_axis_gets_the_batch_length(loop: str) -> None:
    source = _CELL_MODEL.format(loop="\n".join("        " + line for line in loop.splitlines()))
    found = _lint(source)
    assert [code for code, _ in found] == ["GRD007"]
    assert "runs over 400 time steps" in found[0][1]


def test_a_batch_made_with_the_size_keyword_gives_its_length_too() -> None:
    loop = "        for t in range(x.size(1)):\n            h = self.cell(x[:, t], h)"
    source = _CELL_MODEL.format(loop=loop).replace("torch.randn(32, 400, 8)", "torch.randn(size=(32, 400, 8))")
    found = _lint(source)
    assert [code for code, _ in found] == ["GRD007"] and "400 time steps" in found[0][1]


@pytest.mark.parametrize("loop", [
    # four chunks of 100 steps: the cell runs 4 times, not 400
    "for x_t in torch.chunk(x, 4, dim=1):\n    h = self.cell(x_t[:, 0], h)",
    # chunks over the batch axis, whatever their count
    "for x_t in torch.chunk(x, x.size(1), dim=0):\n    h = self.cell(x_t[:, 0], h)",
    # pieces of two steps each
    "for x_t in torch.split(x, 2, dim=1):\n    h = self.cell(x_t[:, 0], h)",
])
def test_a_loop_over_pieces_that_are_not_single_steps_is_not_read_as_400_steps(loop: str) -> None:
    source = _CELL_MODEL.format(loop="\n".join("        " + line for line in loop.splitlines()))
    assert not any("400 time steps" in message for _, message in _lint(source))


def test_the_chunk_loop_fixture_is_reported_unclipped_and_clean_read_every_step_and_clipped() -> None:
    assert _codes(_fixture("torch_rnncell_chunk_loop_unclipped.py")) == ["GRD007"]
    assert _codes(_fixture("torch_rnncell_chunk_loop_every_step_clipped.py")) == []


def test_the_split_loop_fixture_vanishes_at_its_last_step_only() -> None:
    assert _codes(_fixture("torch_rnncell_split_loop_clipped.py")) == ["GRD008"]
    assert _codes(_fixture("torch_rnncell_split_loop_every_step_clipped.py")) == []


def test_an_exploding_init_over_an_enumerated_unbind_loop_is_judged_on_the_batch_length() -> None:
    found = _lint(_fixture("torch_rnncell_enumerate_unbind_sigma2p5.py"))
    assert [code for code, _ in found] == ["GRD004"] and "60 time steps" in found[0][1]
    assert _codes(_fixture("torch_rnncell_enumerate_unbind_sigma2p5_short.py")) == []


@pytest.mark.parametrize("name", [
    "torch_rnn_mean_over_time.py", "torch_rnn_sum_over_time.py", "torch_rnn_max_over_time.py",
    "torch_rnn_relu_every_step.py", "torch_rnn_functional_dropout_every_step.py",
    "torch_rnn_time_major_mean_over_time.py",
])
def test_an_rnn_read_at_every_step_draws_no_grd008(name: str) -> None:
    assert _codes(_fixture(name)) == []


@pytest.mark.parametrize("name", [
    "torch_rnn_hidden_state_relu.py", "torch_rnn_narrow_last_step.py", "torch_rnn_time_major_last_step.py",
])
def test_an_rnn_read_at_its_last_step_draws_grd008(name: str) -> None:
    assert _codes(_fixture(name)) == ["GRD008"]


@pytest.mark.parametrize("readout", [
    "self.fc(torch.mean(out, dim=1))", "self.fc(torch.sum(out, 1))", "self.fc(out.amax(dim=1))",
    "self.fc(torch.max(out, dim=1).values)", "self.fc(F.relu(out).mean(1))", "self.fc(out.tanh())",
    "self.fc(out).mean(1)", "self.fc(out.contiguous().view(-1, 128))",
])
def test_more_every_step_readouts_draw_no_grd008(readout: str) -> None:
    source = _fixture("torch_rnn_mean_over_time.py", ("self.fc(out.mean(1))", readout))
    assert "GRD008" not in _codes(source)


@pytest.mark.parametrize("readout", [
    "self.fc(torch.relu(out[:, -1]))", "self.fc(torch.relu(out)[:, -1])", "self.fc(out.select(1, -1))",
    "self.fc(out.unbind(1)[-1])", "self.fc(torch.unbind(out, 1)[-1])", "self.fc(out.narrow(1, 59, 1).mean(1))",
    "self.fc(out.split(1, dim=1)[-1].squeeze(1))",
])
def test_a_step_selection_before_or_after_an_every_step_op_still_draws_grd008(readout: str) -> None:
    source = _fixture("torch_rnn_mean_over_time.py", ("self.fc(out.mean(1))", readout))
    assert "GRD008" in _codes(source)


_EMBEDDED = '''import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, vocab=50, n_in=8, hidden=64):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(vocab, n_in)
        self.cell = nn.RNNCell(n_in, hidden)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, x):
{body}
        return self.fc(h)


model = Net()
opt = torch.optim.Adam(model.parameters())
crit = nn.CrossEntropyLoss()
for it in range(100):
    x = torch.randint(0, 50, (32, 400))
    loss = crit(model(x), torch.randint(0, 50, (32,)))
    opt.zero_grad()
    loss.backward()
    opt.step()
'''


@pytest.mark.parametrize("body", [
    "emb = self.embed(x)\nh = torch.zeros(x.size(0), self.hidden)\nfor t in range(emb.size(1)):\n"
    "    h = self.cell(emb[:, t], h)",
    "emb = self.embed(x)\nh = torch.zeros(x.size(0), self.hidden)\nfor e in emb.unbind(1):\n    h = self.cell(e, h)",
    "x = self.embed(x)\nh = torch.zeros(x.size(0), self.hidden)\nfor t in range(x.size(1)):\n"
    "    h = self.cell(x[:, t], h)",
    "b, t_len = x.shape\nemb = self.embed(x)\nh = torch.zeros(b, self.hidden)\nfor t in range(t_len):\n"
    "    h = self.cell(emb[:, t], h)",
])
def test_a_cell_stepped_over_the_embedded_tokens_gets_the_token_batch_length(body: str) -> None:
    source = _EMBEDDED.format(body="\n".join("        " + line for line in body.splitlines()))
    found = _lint(source)
    assert [code for code, _ in found] == ["GRD007"] and "400 time steps" in found[0][1]


def test_the_embedded_fixtures() -> None:
    assert _codes(_fixture("torch_rnncell_embedded_unbind_unclipped.py")) == ["GRD007"]
    assert _codes(_fixture("torch_rnncell_embedded_range_clipped.py")) == ["GRD008"]
    assert _codes(_fixture("torch_rnncell_embedded_unbind_every_step_clipped.py")) == []
