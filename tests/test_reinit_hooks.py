"""Re-initialisation hooks (gradlint/extract/reinit.py): an ``_init_weights(self, module)``-style
method that dispatches on module types and rewrites their weights decides the model's init.

Where gradlint can run it (``self.apply(self._init_weights)``) it does, and what the hook writes is
judged -- a zero init there is a bug. Where it cannot (the hook is applied by a base class it does
not read, Hugging Face's ``post_init()``; or the layer is a helper built on its own because its
network's depth comes from a config), the inits written before the hook are an explicit unknown:
no finding about them. A hook nothing applies in a hierarchy gradlint reads in full is dead code
and changes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

from gradlint.engine import FileResult, LintConfig, lint_file, lint_source
from gradlint.model import Layer, Model, Node, Residual

from conftest import run_cli

LAYERS = """
import torch
from torch import nn


class ScaledLinear(nn.Module):
    \"\"\"A linear layer with a learned output scale; the model's _init_weights sets its weights.\"\"\"

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias) * self.scale
"""

# The blocks of a Hugging Face-style model: the encoder's depth comes from the config, so the
# layer is built on its own (a fallback helper), outside the network whose hook re-initialises it.
BLOCKS = """
import torch
from torch import nn
{imports}


class TinyLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = ScaledLinear(config.hidden_size, config.intermediate_size)
        self.down = ScaledLinear(config.intermediate_size, config.hidden_size)
        self.mix = ScaledLinear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, hidden_states):
        h = self.mix(hidden_states)
        h = torch.tanh(self.up(h))
        return self.norm(hidden_states + self.down(h))


class TinyEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([TinyLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states)
        return hidden_states
"""

HOOK = """
    def _init_weights(self, module):
        \"\"\"Initialize the weights\"\"\"
        if isinstance(module, (ScaledLinear, nn.Linear)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
"""

# Not a re-initialisation: it dispatches on the module but writes no weight.
CHECKPOINTING = """
    def _set_gradient_checkpointing(self, module, value=False):
        if isinstance(module, TinyEncoder):
            module.gradient_checkpointing = value
"""

PRETRAINED = """
class TinyPreTrainedModel(PreTrainedModel):
    base_model_prefix = "tiny"
{hook}
"""

MODEL = """

class TinyModel(TinyPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.encoder = TinyEncoder(config)
        self.post_init()

    def forward(self, input_ids):
        return self.encoder(self.embeddings(input_ids))
"""


def write(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def lint(path: Path) -> tuple[list[tuple[str, int]], list[Model]]:
    result = lint_file(str(path), LintConfig(search_roots=(str(path.parent),)))
    return [(d.code, d.line) for d in result.diagnostics if d.code.startswith("GRD0")], result.models


def layers(path: list[Node]) -> list[Layer]:
    out: list[Layer] = []
    for node in path:
        if isinstance(node, Layer):
            out.append(node)
        elif isinstance(node, Residual):
            out += layers(node.branch) + layers(node.shortcut)
    return out


def weight_inits(models: list[Model], name: str) -> list[str]:
    model = next(m for m in models if m.name == name)
    return [layer.weight_init.scheme if layer.weight_init else "none" for layer in layers(model.path)
            if layer.op == "linear"]


def hf_project(tmp_path: Path, hook: str, split_base: bool = False) -> Path:
    """``tiny/modeling_tiny.py`` as a Hugging Face model is written: ``PreTrainedModel`` (not part
    of the project, never read), weights set by ``_init_weights`` through ``post_init()``, a
    custom layer from a sibling module whose own ``__init__`` leaves zeros."""
    imports = "from transformers import PreTrainedModel\n\nfrom .layers import ScaledLinear"
    pretrained = PRETRAINED.format(hook=hook)
    files = {"tiny/__init__.py": "", "tiny/layers.py": LAYERS}
    if split_base:  # the hierarchy's base class in a module of its own
        files["tiny/base.py"] = "from torch import nn\nfrom transformers import PreTrainedModel\n\n" \
            "from .layers import ScaledLinear\n\n" + pretrained
        imports += "\nfrom .base import TinyPreTrainedModel"
        pretrained = ""
    files["tiny/modeling_tiny.py"] = BLOCKS.format(imports=imports) + pretrained + MODEL
    write(tmp_path, files)
    return tmp_path / "tiny" / "modeling_tiny.py"


def test_hf_style_init_weights_through_post_init_leaves_the_layer_init_unknown(tmp_path: Path) -> None:
    path = hf_project(tmp_path, HOOK)
    found, models = lint(path)
    assert found == []
    # Still understood as a network -- only its weights' init is unknown, not the layer.
    assert weight_inits(models, "TinyLayer") == ["unknown"] * 3
    shown = run_cli("inspect", f"{path}:TinyLayer").stdout
    assert shown.count("init=unknown (TinyPreTrainedModel._init_weights may re-initialise it)") == 3


def test_hf_style_hook_in_a_sibling_modules_base_class(tmp_path: Path) -> None:
    found, models = lint(hf_project(tmp_path, HOOK, split_base=True))
    assert found == []
    assert weight_inits(models, "TinyLayer") == ["unknown"] * 3


def test_hf_style_model_without_a_reinitialising_hook_keeps_its_zero_init(tmp_path: Path) -> None:
    """The same project when nothing rewrites the sibling layer's zeros: a real bug, reported
    (a hook that only toggles a flag re-initialises nothing)."""
    for hook in ("    pass\n", CHECKPOINTING):
        found, models = lint(hf_project(tmp_path, hook))
        assert [code for code, _ in found] == ["GRD002", "GRD002"], hook
        assert weight_inits(models, "TinyLayer") == ["zeros"] * 3


PLAIN = """
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, width=256, depth=6):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.head = nn.Linear(width, 10)
{apply}
    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            {init}(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.head(x)
"""


def plain(init: str, apply: str = "        self.apply(self._init_weights)\n") -> list[str]:
    result = lint_source(textwrap.dedent(PLAIN.format(init=init, apply=apply)), "plain.py")
    return [d.code for d in result.diagnostics if d.code.startswith("GRD0")]


def test_a_hook_gradlint_runs_is_judged_by_what_it_writes() -> None:
    assert plain("nn.init.zeros_") == ["GRD002"]
    assert plain("nn.init.kaiming_normal_") == []


def test_a_hook_nothing_applies_does_not_hide_a_zero_init() -> None:
    """A model read in full whose __init__ zeroes its layers and never applies its hook."""
    zeroing = "        for layer in self.layers:\n            nn.init.zeros_(layer.weight)\n"
    assert plain("nn.init.xavier_uniform_", apply=zeroing) == ["GRD002"]


FALLBACK = """
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        nn.init.zeros_(self.fc1.weight)
        nn.init.zeros_(self.fc2.weight)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu()).relu()


class Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.blocks = nn.ModuleList([Block(cfg.width) for _ in range(cfg.depth)])
{apply}
    def _init_weights(self, module):
        if isinstance(module, {kind}):
            {init}(module.weight)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x
"""

APPLY = "        self.apply(self._init_weights)\n"


def fallback(apply: str = APPLY, kind: str = "nn.Linear", init: str = "nn.init.kaiming_normal_") -> FileResult:
    return lint_source(FALLBACK.format(apply=apply, kind=kind, init=init), "net.py")


def codes(result: FileResult) -> list[str]:
    return [d.code for d in result.diagnostics if d.code.startswith("GRD0")]


def test_a_helper_built_on_its_own_gets_the_hook_its_user_applies() -> None:
    """Block is built on its own (Net's depth comes from a config). Net applies its hook, which in
    the real program reaches Block's layers too: it is replayed on them, and judged by what it
    writes. When Net never applies it, Block's zeros are what the program runs with."""
    applied = fallback()
    assert codes(applied) == []
    block = next(m for m in applied.models if m.name == "Block")
    assert [layer.weight_init.scheme for layer in layers(block.path)
            if layer.weight_init is not None] == ["kaiming_normal"] * 2
    assert codes(fallback(init="nn.init.zeros_")) == ["GRD002"]  # the hook itself zeroes them
    assert codes(fallback(kind="nn.Conv2d")) == ["GRD002"]  # it rewrites no Linear
    assert codes(fallback(apply="")) == ["GRD002"]  # never applied


def test_a_hook_that_cannot_be_replayed_leaves_the_helper_unknown() -> None:
    """Net's hierarchy has a base gradlint does not read: Net's hook ran, but the unread base may
    apply more; Block's init is unknown, not its zeros."""
    unread = FALLBACK.replace("class Net(nn.Module):", "class Net(nn.Module, ExternalMixin):")
    result = lint_source("from elsewhere import ExternalMixin\n" + unread.format(
        apply=APPLY, kind="nn.Linear", init="nn.init.kaiming_normal_"), "net.py")
    assert codes(result) == []
    block = next(m for m in result.models if m.name == "Block")
    assert {layer.weight_init.scheme for layer in layers(block.path) if layer.weight_init is not None} == {"unknown"}


DIRECT = """
import torch.nn as nn
from transformers import PreTrainedModel


class TinyClassifier(PreTrainedModel):
    def __init__(self, config=None, width=256, depth=6):
        super().__init__(config)
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        for layer in self.layers:
            nn.init.zeros_(layer.weight)
        self.head = nn.Linear(width, 2)
        self.post_init()
{hook}
    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.head(x)
"""


def test_a_model_of_an_unread_base_with_a_hook_nothing_here_runs() -> None:
    """The network itself derives from the unread base: its post_init() may apply the hook, which
    rewrites the zeros; without a hook they stay."""
    hooked = lint_source(DIRECT.format(hook=textwrap.indent(textwrap.dedent(HOOK), "    ")), "clf.py")
    assert [d.code for d in hooked.diagnostics if d.code.startswith("GRD0")] == []
    assert hooked.models and all(layer.weight_init is not None and layer.weight_init.scheme == "unknown"
                                 for layer in layers(hooked.models[0].path) if layer.op == "Linear")
    bare = lint_source(DIRECT.format(hook=""), "clf.py")
    assert [d.code for d in bare.diagnostics if d.code.startswith("GRD0")] == ["GRD002"]


FACTORY = """
from torch import nn
from transformers import PreTrainedModel

from .layers import ScaledLinear


def build_layer(config):
    return nn.Sequential(
        ScaledLinear(config.hidden_size, config.hidden_size),
        nn.Tanh(),
        ScaledLinear(config.hidden_size, config.hidden_size),
        nn.Tanh(),
        ScaledLinear(config.hidden_size, config.hidden_size),
    )


class TinyEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([build_layer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states)
        return hidden_states


class TinyPreTrainedModel(PreTrainedModel):
{hook}

class TinyModel(TinyPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.encoder = TinyEncoder(config)
        self.post_init()

    def forward(self, x):
        return self.encoder(x)
"""


def test_a_helper_function_built_on_its_own_is_governed_like_a_class(tmp_path: Path) -> None:
    """The layers come from a module-level builder the encoder calls once per configured layer."""
    write(tmp_path, {"tiny/__init__.py": "", "tiny/layers.py": LAYERS,
                     "tiny/modeling_tiny.py": FACTORY.format(hook=HOOK)})
    assert lint(tmp_path / "tiny" / "modeling_tiny.py")[0] == []
    write(tmp_path, {"tiny/modeling_tiny.py": FACTORY.format(hook="    pass\n")})
    assert [code for code, _ in lint(tmp_path / "tiny" / "modeling_tiny.py")[0]] == ["GRD002"]


def test_the_text_prefilter_never_hides_a_hook() -> None:
    """A method whose lines never spell ``isinstance`` is not walked: checked against the walk on
    every method of every fixture and of the real model code the precision test reads."""
    import ast
    import importlib.util
    from pathlib import Path

    from gradlint.extract.reinit import _Hooks, _is_hook

    from conftest import ROOT

    paths = sorted((ROOT / "fixtures").rglob("*.py"))
    spec = importlib.util.find_spec("timm")
    if spec is not None and spec.submodule_search_locations:
        paths += sorted(Path(list(spec.submodule_search_locations)[0], "models").glob("*.py"))[:40]
    skipped = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue  # Python 2 fixtures
        hooks = _Hooks(None, text)  # type: ignore[arg-type]  # the prefilter reads no interpreter state
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and hooks._cannot_dispatch(node):
                skipped += 1
                assert not _is_hook(node), (path, node.name)
    assert skipped > 500


def test_the_spelled_read_search_agrees_with_a_walk() -> None:
    """``SyntaxIndex.is_read_outside_its_definition`` looks only where the text spells a name: on
    every top-level definition name of every fixture it answers as a walk of the whole module does
    (loads of the name in any top-level statement but a definition of that name)."""
    import ast

    from gradlint.extract.syntax_index import SyntaxIndex, _loaded_names

    from conftest import ROOT

    checked = read = 0
    for path in sorted((ROOT / "fixtures").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue  # Python 2 fixtures
        index = SyntaxIndex(tree, text)
        names = {stmt.name for stmt in tree.body if isinstance(stmt, (ast.FunctionDef, ast.ClassDef))}
        for name in sorted(names):
            walked = any(name in _loaded_names(stmt) for stmt in tree.body
                         if getattr(stmt, "name", None) != name)
            assert index.is_read_outside_its_definition(name) == walked, (path, name)
            checked += 1
            read += walked
    assert checked > 500 and 0 < read < checked
