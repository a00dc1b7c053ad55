"""GRD008 estimates the gradient carried back through time from the last step to the first. A
forward that reads the cell's output at every step (``outs.append(self.fc(h))`` then
``torch.stack``) gives each step's input a gradient of its own: measured over 60 steps of a
default-init nn.RNNCell, ‖∂L/∂x_1‖/‖∂L/∂x_60‖ = 1.3 (median of 3 seeds) against 6.3e-16 when only
the last step is read (fixtures/training/torch_rnncell_{every,last}_step_read.py). Static."""

from __future__ import annotations

from pathlib import Path

from gradlint.engine import LintConfig, lint_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"


def _codes(path: Path, replace: tuple[str, str] | None = None) -> list[str]:
    source = path.read_text(encoding="utf-8")
    if replace is not None:
        assert replace[0] in source
        source = source.replace(*replace)
    return [d.code for d in lint_source(source, path.name, LintConfig()).diagnostics]


def test_a_cell_read_at_every_step_draws_no_grd008() -> None:
    assert "GRD008" not in _codes(FIXTURES / "torch_rnncell_every_step_read.py")


def test_a_cell_read_at_the_last_step_draws_grd008() -> None:
    assert _codes(FIXTURES / "torch_rnncell_last_step_read.py") == ["GRD008"]


def test_stacking_the_hidden_states_reads_every_step_too() -> None:
    # torch.cat of the per-step hidden states (an attention over them, a pooled readout)
    codes = _codes(FIXTURES / "torch_rnncell_every_step_read.py", (
        "            outs.append(self.fc(h))\n        return torch.stack(outs, dim=1)",
        "            outs.append(h)\n        return self.fc(torch.stack(outs, dim=1).mean(1))"))
    assert "GRD008" not in codes


def test_one_step_concatenated_with_itself_is_still_the_last_step_only() -> None:
    codes = _codes(FIXTURES / "torch_rnncell_last_step_read.py",
                   ("        return self.fc(h)", "        return self.fc(torch.cat([h, h], 1)[:, :self.hidden])"))
    assert "GRD008" in codes


def test_a_keras_recurrence_returning_sequences_into_a_per_step_head_draws_no_grd008() -> None:
    # measured: ‖∂L/∂x_1‖/‖∂L/∂x_200‖ = 1.5 (fixtures/training/keras_simple_rnn_every_step_read.py)
    assert "GRD008" not in _codes(FIXTURES / "keras_simple_rnn_every_step_read.py")


def test_a_keras_recurrence_read_at_its_last_step_draws_grd008() -> None:
    assert _codes(FIXTURES / "keras_simple_rnn_last_step_read.py") == ["GRD008"]


def test_a_sequence_read_by_a_second_recurrence_still_reaches_the_output_through_time() -> None:
    codes = _codes(FIXTURES / "keras_simple_rnn_every_step_read.py", (
        "hidden = keras.layers.SimpleRNN(64, return_sequences=True)(inputs)\n",
        "hidden = keras.layers.SimpleRNN(64, return_sequences=True)(inputs)\n"
        "hidden = keras.layers.SimpleRNN(64)(hidden)\n"))
    assert codes.count("GRD008") == 2


def test_an_nn_rnn_whose_every_output_step_goes_through_the_head_draws_no_grd008() -> None:
    # measured: ‖∂L/∂x_1‖/‖∂L/∂x_60‖ = 1.3 (fixtures/training/torch_rnn_every_step_read.py)
    assert "GRD008" not in _codes(FIXTURES / "torch_rnn_every_step_read.py")


def test_an_nn_rnn_read_at_its_last_output_step_draws_grd008() -> None:
    assert _codes(FIXTURES / "torch_rnn_last_step_read.py") == ["GRD008"]


def test_an_nn_rnn_read_through_its_hidden_state_draws_grd008() -> None:
    codes = _codes(FIXTURES / "torch_rnn_every_step_read.py", (
        "        out, _ = self.rnn(x)\n        return self.fc(self.drop(out))",
        "        out, h = self.rnn(x)\n        return self.fc(self.drop(h[-1]))"))
    assert "GRD008" in codes
