"""PyTorch idioms of tutorials and research repos that extraction reads as torch runs them:
``copy.deepcopy`` of modules, ``self._modules``, Lightning's ``save_hyperparameters``,
``register_parameter`` and in-place tensor activations."""

from __future__ import annotations

import ast
import textwrap

from gradlint.extract import extract_models
from gradlint.model import Layer, LayerKind, Model


def models(src: str) -> list[Model]:
    return extract_models(ast.parse(textwrap.dedent(src)))


def named(src: str, name: str) -> Model:
    found = [m for m in models(src) if m.name == name]
    assert len(found) == 1, [m.name for m in models(src)]
    return found[0]


def dense(model: Model) -> list[Layer]:
    return [layer for layer in model.layers() if layer.kind == LayerKind.DENSE]


def acts(model: Model) -> list[str | None]:
    return [layer.activation for layer in model.layers() if layer.kind == LayerKind.ACTIVATION]


_CLONES = """
    import copy
    import torch
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.lin = nn.Linear(d, d)
            {block_init}

        def forward(self, x):
            return torch.tanh(self.lin(x))

    class Stack(nn.Module):
        def __init__(self, d=16, n=5):
            super().__init__()
            self.blocks = nn.ModuleList([copy.deepcopy(Block(d)) for _ in range(n)])
            {stack_init}

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x
"""


def test_deep_copies_are_distinct_layers_with_the_original_init() -> None:
    src = _CLONES.format(block_init="nn.init.xavier_normal_(self.lin.weight)", stack_init="pass")
    layers = dense(named(src, "Stack"))
    assert len(layers) == 5 and len({id(layer) for layer in layers}) == 5
    assert all(layer.fan_in == 16 and layer.weight_init is not None and layer.weight_init.scheme == "xavier_normal"
               for layer in layers)


def test_an_init_after_the_copy_reaches_each_copy_once() -> None:
    src = _CLONES.format(block_init="pass",
                         stack_init="nn.init.normal_(self.blocks[0].lin.weight, 0.0, 1.0)")
    inits = [layer.weight_init.scheme if layer.weight_init else None for layer in dense(named(src, "Stack"))]
    assert inits[0] == "normal" and all(i != "normal" for i in inits[1:]), inits


def test_a_layer_held_twice_stays_one_layer_in_the_copy() -> None:
    src = """
        import copy
        import torch.nn as nn

        class Tied(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 8)
                self.b = self.a

            def forward(self, x):
                return self.b(self.a(x))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.t = copy.deepcopy(Tied())

            def forward(self, x):
                return self.t(x)
    """
    layers = dense(named(src, "Net"))
    assert len(layers) == 2 and layers[0] is layers[1]


def test_modules_dict_reads_and_writes_registered_children() -> None:
    src = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, n=4):
                super().__init__()
                self.n = n
                for i in range(n):
                    self._modules["fc" + str(i)] = nn.Linear(8, 8)

            def forward(self, x):
                for i in range(self.n):
                    x = torch.sigmoid(self._modules["fc" + str(i)](x))
                for m in self._modules.values():
                    x = m(x)
                return x
    """
    model = named(src, "Net")
    assert len(dense(model)) == 8 and model.fully_understood


def test_save_hyperparameters_gives_hparams_the_init_arguments() -> None:
    src = """
        import torch.nn as nn
        import pytorch_lightning as pl

        class Lit(pl.LightningModule):
            def __init__(self, width=32, depth=6, dropped=3, lr=1e-3):
                super().__init__()
                depth = depth + 1
                self.save_hyperparameters(ignore=["dropped"])
                layers = [nn.Linear(self.hparams.width, self.hparams.width) for _ in range(self.hparams.depth)]
                self.net = nn.Sequential(*layers)

            def forward(self, x):
                return self.net(x)
    """
    layers = dense(named(src, "Lit"))
    assert len(layers) == 7 and layers[0].fan_in == 32


def test_an_ignored_hyperparameter_is_unknown() -> None:
    src = """
        import torch.nn as nn
        import pytorch_lightning as pl

        class Lit(pl.LightningModule):
            def __init__(self, depth=6):
                super().__init__()
                self.save_hyperparameters(ignore="depth")
                self.net = nn.Sequential(*[nn.Linear(8, 8) for _ in range(self.hparams.depth)])

            def forward(self, x):
                return self.net(x)
    """
    assert len(dense(named(src, "Lit"))) != 6


def test_register_parameter_is_read_back_by_getattr() -> None:
    src = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, n=3):
                super().__init__()
                self.n = n
                for i in range(n):
                    self.register_parameter(f"w{i}", nn.Parameter(torch.randn(16, 16)))

            def forward(self, x):
                for i in range(self.n):
                    x = torch.tanh(x @ getattr(self, f"w{i}"))
                return x
    """
    model = named(src, "Net")
    assert len(dense(model)) == 3 and model.fully_understood


def test_an_in_place_activation_statement_applies_to_the_tensor() -> None:
    src = """
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 8)
                self.b = nn.Linear(8, 8)

            def forward(self, x):
                x = self.a(x)
                x.sigmoid_()
                y = self.b(x)
                y.clamp_(min=0)
                return y
    """
    model = named(src, "Net")
    assert acts(model)[0] == "sigmoid" and len(acts(model)) == 2


def test_an_out_of_place_activation_whose_result_is_dropped_changes_nothing() -> None:
    src = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(8, 8)

            def forward(self, x):
                x = self.a(x)
                x.sigmoid()
                return x
    """
    assert acts(named(src, "Net")) == []


def test_fconv2d_over_a_free_weight_is_a_conv_layer_of_its_shape() -> None:
    src = """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.randn(16, 4, 3, 3))
                self.conv = nn.Conv2d(16, 8, 3)

            def forward(self, x):
                x = F.conv2d(x, self.w, padding=1)
                return F.conv2d(x, self.conv.weight, self.conv.bias)
    """
    model = named(src, "Net")
    convs = [layer for layer in model.layers() if layer.kind == LayerKind.CONV]
    assert [(c.fan_in, c.fan_out, c.receptive) for c in convs] == [(36, 144, 9), (144, 72, 9)]
    assert convs[0].weight_init is not None and convs[0].weight_init.scheme == "normal"
    assert convs[0].window is not None and model.fully_understood


def test_fconv2d_over_a_computed_weight_stays_unknown() -> None:
    src = """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.randn(16, 4, 3, 3))

            def forward(self, x):
                w = (self.w - self.w.mean()) / self.w.std()
                return F.conv2d(x, w)
    """
    assert not named(src, "Net").fully_understood


def test_variable_with_requires_grad_is_a_weight_and_without_it_data() -> None:
    src = """
        import torch
        from torch.autograd import Variable

        x = Variable(torch.randn(64, 10))
        w1 = Variable(torch.randn(10, 32), requires_grad=True)
        w2 = Variable(torch.randn(32, 2), requires_grad=True)
        y_pred = torch.sigmoid(x.mm(w1)).mm(w2)
    """
    (model,) = models(src)
    assert [(layer.fan_in, layer.fan_out) for layer in dense(model)] == [(10, 32), (32, 2)]


def test_a_long_training_loop_steps_the_forward_loop_of_its_first_iteration() -> None:
    src = """
        import torch

        x = torch.randn(128, 16)
        ws = [torch.randn(16, 16, requires_grad=True) for _ in range(20)]
        for step in range(1000):
            h = x
            for w in ws:
                h = torch.tanh(h @ w)
            loss = h.pow(2).mean()
            loss.backward()
    """
    (model,) = models(src)
    assert len(dense(model)) == 20 and model.fully_understood


def test_torch_nn_parameter_module_path_is_nn_parameter() -> None:
    src = """
        import torch
        from torch.nn.parameter import Parameter
        from torch.nn.modules.module import Module

        class Layer(Module):
            def __init__(self):
                super().__init__()
                self.weight = Parameter(torch.randn(8, 4))

            def forward(self, x):
                return torch.mm(x, self.weight)
    """
    layers = dense(named(src, "Layer"))
    assert [(layer.fan_in, layer.fan_out) for layer in layers] == [(8, 4)]


def test_sequential_setitem_replaces_the_module_at_that_index() -> None:
    src = """
        import torch.nn as nn

        model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
        for i, m in enumerate(model):
            if isinstance(m, nn.ReLU):
                model[i] = nn.Sigmoid()
    """
    (model,) = models(src)
    assert acts(model) == ["sigmoid", "sigmoid"]


def test_a_plain_class_instance_is_called_through_its_dunder_call() -> None:
    src = """
        import torch

        class Linear:
            def __init__(self, n, m):
                self.weight = torch.randn(n, m)

            def __call__(self, x):
                self.out = x @ self.weight
                return self.out

            def parameters(self):
                return [self.weight]

        layers = [Linear(16, 16) for _ in range(6)]
        for p in [p for layer in layers for p in layer.parameters()]:
            p.requires_grad = True
        x = torch.randn(32, 16)
        for step in range(10):
            h = x
            for layer in layers:
                h = torch.tanh(layer(h))
            loss = h.pow(2).mean()
            loss.backward()
            for p in [p for layer in layers for p in layer.parameters()]:
                p.data += -0.1 * p.grad
    """
    (model,) = models(src)
    assert len(dense(model)) == 6 and model.fully_understood


_NORM = """
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.g = nn.Parameter(torch.ones(8))

        def forward(self, x):
            x = self.fc(x)
            {body}
            return x
"""


def norms(body: str) -> list[str]:
    model = named(_NORM.format(body=body), "Net")
    return [layer.op for layer in model.layers() if layer.kind == LayerKind.NORMALIZATION]


def test_written_out_normalizations_are_read_by_their_dims() -> None:
    assert norms("x = self.g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)") == ["layer_norm"]
    assert norms("m = x.mean(0, keepdim=True); v = x.var(0, keepdim=True); x = (x - m) / torch.sqrt(v + 1e-5)") \
        == ["batch_norm"]
    assert norms("x = (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, keepdim=True) + 1e-5)") == ["layer_norm"]
    assert norms("x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)") == ["rms_norm"]
    assert norms("x = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6)") == ["rms_norm"]
    c = "c = x - x.mean(1, keepdim=True); x = c / torch.sqrt((c ** 2).mean(1, keepdim=True) + 1e-5)"
    assert norms(c) == ["layer_norm"]


def test_statistics_that_are_no_normalization_keep_their_meaning() -> None:
    assert norms("x = x / (x.std(-1, keepdim=True) + 1e-6)") == []  # not centred
    assert norms("x = (x - x.mean(0)) / x.std(-1)") == []  # centred and scaled over different dims
    y = "y = torch.relu(x); x = (y - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)"
    assert norms(y) == []  # the mean of another tensor
    pooled = named(_NORM.format(body="x = x.mean(dim=1)"), "Net")
    assert pooled.fully_understood


def test_pairwise_sizes_and_a_starred_unpack_of_the_layers() -> None:
    src = """
        import itertools
        import torch
        import torch.nn as nn

        class MLP(nn.Module):
            def __init__(self, sizes=(8, 16, 16, 4)):
                super().__init__()
                self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

            def forward(self, x):
                *hidden, last = self.layers
                for layer in hidden:
                    x = torch.tanh(layer(x))
                return last(x)
    """
    model = named(src, "MLP")
    assert [(layer.fan_in, layer.fan_out) for layer in dense(model)] == [(8, 16), (16, 16), (16, 4)]
    assert acts(model) == ["tanh", "tanh"] and model.fully_understood
