"""GRD012 on stops in front of parts that are not meant to train from this model's loss.

A stop (``torch.no_grad()``, ``.detach()``) in front of a component gradlint cannot read -- a
module whose forward or weights come from a base class or a call it does not read (a pretrained
codec under ``PreTrainedModel``, ``timm.create_model(...)``) -- while the rest of the model still
trains is the frozen-component idiom (transformers' pe_audio runs its DAC codec so): not reported.
A stop that cuts off every trainable layer is reported whatever the layers are, and a part built
from scratch in the file stays reported (measured: fixtures/recall/torch/no_grad_block_in_forward.py,
nograd_eval_only_encoder_head.py -- its parameters require a gradient and get none).
Static: nothing is imported or run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gradlint.engine import LintConfig, lint_paths, lint_source


def _codes(source: str) -> list[str]:
    result = lint_source(textwrap.dedent(source), "model.py", LintConfig())
    return [d.code for d in result.diagnostics]


# A Hugging Face-style hierarchy: a base gradlint does not read (PreTrainedModel: post_init() runs
# _init_weights, from_pretrained() loads a checkpoint) governs the codec's weights.
_HF = """
import torch
import torch.nn as nn
from transformers import PreTrainedModel


class Codec(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv1d(1, width, 7, padding=3)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


class Embedder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.codec = Codec(width)
        self.bottleneck = nn.Conv1d(width, width, 1)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        with torch.no_grad():
            h = self.codec(x)
            h = self.bottleneck(h)
{after}


class AudioPreTrainedModel(PreTrainedModel):
    def _init_weights(self, module):
        if isinstance(module, nn.Conv1d):
            nn.init.trunc_normal_(module.weight, std=0.02)


class AudioEncoder(AudioPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embedder = Embedder(config.hidden_size)
        self.post_init()

    def forward(self, x):
        return self.embedder(x)
"""
_TRAINED_AFTER = "        return self.proj(h.transpose(1, 2))"
_CUT_TOO = "            return self.proj(h.transpose(1, 2))"


def test_a_codec_governed_by_an_unread_pretrained_base_is_a_frozen_component() -> None:
    assert "GRD012" not in _codes(_HF.format(after=_TRAINED_AFTER))


def test_the_same_stop_cutting_off_every_trainable_layer_is_reported() -> None:
    assert "GRD012" in _codes(_HF.format(after=_CUT_TOO))


def test_the_same_codec_in_a_hierarchy_read_in_full_is_built_from_scratch_and_reported() -> None:
    # Nothing unread sets the weights: the codec starts random and the stop keeps it so.
    source = _HF.format(after=_TRAINED_AFTER).replace("from transformers import PreTrainedModel\n", "").replace(
        "class AudioPreTrainedModel(PreTrainedModel):", "class AudioPreTrainedModel(nn.Module):").replace(
        "super().__init__(config)", "super().__init__()").replace("self.post_init()", "self.apply(self._init_weights)")
    assert "GRD012" in _codes(source)


_BACKBONE = """
import timm
import torch
import torch.nn as nn


class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("resnet18", pretrained=True, num_classes=0)
        self.proj = nn.Linear(512, 128)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        with torch.no_grad():
            f = self.proj(self.backbone(x))
{after}
"""


def test_an_unread_backbone_and_its_projection_under_no_grad_before_a_trained_head() -> None:
    assert "GRD012" not in _codes(_BACKBONE.format(after="        return self.head(f)"))


def test_an_unread_backbone_detached_before_a_trained_head() -> None:
    source = _BACKBONE.format(after="        return self.head(f)").replace(
        "        with torch.no_grad():\n            f = self.proj(self.backbone(x))",
        "        f = self.proj(self.backbone(x)).detach()")
    assert "GRD012" not in _codes(source)


def test_an_unread_backbone_with_every_visible_layer_cut_off_is_reported() -> None:
    assert "GRD012" in _codes(_BACKBONE.format(after="            return self.head(f)"))


def test_a_class_whose_forward_is_an_unread_bases_is_an_unread_module() -> None:
    # transformers' modular files: class PeAudioDacEncoder(DacEncoder) with the forward in ..dac.
    source = """
    import torch
    import torch.nn as nn
    from ..dac.modeling_dac import DacEncoder


    class AudioDacEncoder(DacEncoder):
        def __init__(self, config):
            super().__init__(config)


    class Embedder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dac_encoder = AudioDacEncoder(config)
            self.bottleneck = nn.Conv1d(64, 32, 1)
            self.data_proj = nn.Linear(32, 64)

        def forward(self, x):
            with torch.no_grad():
                h = self.bottleneck(self.dac_encoder(x))
            return self.data_proj(h.transpose(1, 2))
    """
    assert "GRD012" not in _codes(source)


def test_a_local_encoder_under_no_grad_before_a_trained_head_is_still_reported() -> None:
    source = """
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
            self.encoder.eval()
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            with torch.no_grad():
                f = self.encoder(x)
            return self.head(f)
    """
    assert _codes(source) == ["GRD012"]


def _site_packages_dir(package: str, sub: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / sub
    return path if path.is_dir() else None


def test_transformers_pe_audio_draws_no_finding() -> None:
    """Its PeAudioEncoderEmbedder runs the DAC codec (and its bottleneck) under torch.no_grad() and
    trains the projection after it; both the generated modeling file and the modular source."""
    root = _site_packages_dir("transformers", "models/pe_audio")
    if root is None:
        pytest.skip("transformers with pe_audio is not installed")
    found = [f"{d.path}:{d.line} {d.code}" for r in lint_paths([str(root)], LintConfig()) for d in r.diagnostics
             if d.code == "GRD012"]
    assert not found


_MODULAR = """
import torch
import torch.nn as nn
from transformers import PreTrainedModel


class Codec(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 64, 7, padding=3)
        self.conv2 = nn.Conv1d(64, 64, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


class AudioEmbedder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.codec = Codec()
        self.bottleneck = nn.Conv1d(64, 32, 1)
        self.data_proj = nn.Linear(32, 64)

    def forward(self, x):
        with torch.no_grad():
            h = self.bottleneck(self.codec(x))
        return self.data_proj(h.transpose(1, 2))


class AudioPreTrainedModel(PreTrainedModel):
    def _init_weights(self, module):
        if isinstance(module, nn.Conv1d):
            nn.init.trunc_normal_(module.weight, std=0.02)
"""


def test_a_helper_nothing_in_a_pretrained_file_builds_lives_in_its_unread_hierarchy() -> None:
    # transformers' modular files define a replacement for a class the unread parent builds; no
    # statement of the file names it, and the file's hierarchy with an unread base governs it.
    assert "GRD012" not in _codes(_MODULAR)


def test_the_same_helper_without_an_unread_hierarchy_is_reported() -> None:
    source = _MODULAR.replace("from transformers import PreTrainedModel\n", "").replace(
        "class AudioPreTrainedModel(PreTrainedModel):", "class AudioPreTrainedModel(nn.Module):")
    assert "GRD012" in _codes(source)


def test_the_same_helper_named_by_a_builder_outside_the_hierarchy_is_reported() -> None:
    # Something of the file builds it on its own, from scratch: it is not the hierarchy's.
    source = _MODULAR + "\n\ndef build(config):\n    return AudioEmbedder(config)\n"
    assert "GRD012" in _codes(source)


def test_transformers_pe_audio_read_with_its_sibling_models_draws_no_finding() -> None:
    """Linting all of transformers/models reads ``..dac`` and ``..pe_audio_video``: the modular file's
    codec then has visible layers (the failure seen there)."""
    from dataclasses import replace

    root = _site_packages_dir("transformers", "models/pe_audio")
    if root is None:
        pytest.skip("transformers with pe_audio is not installed")
    config = replace(LintConfig(), search_roots=(str(root.parent),))
    found = [f"{d.path}:{d.line} {d.code}" for r in lint_paths([str(root)], config) for d in r.diagnostics
             if d.code == "GRD012"]
    assert not found
