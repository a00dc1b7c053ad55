"""Real code as others write it (issue 12): definitions judged on their own defaults when call sites
pass what gradlint cannot know, argparse / click / typer / dataclass configuration defaults."""

from __future__ import annotations

import textwrap

from gradlint.engine import LintConfig, lint_source

DEEP = """
import torch.nn as nn


class Deep(nn.Module):
    def __init__(self, depth=20, width=64):
        super().__init__()
        layers = []
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
"""


def codes(src: str) -> list[tuple[str, int]]:
    result = lint_source(textwrap.dedent(src), "t.py", LintConfig())
    return [(d.code, d.line) for d in result.diagnostics]


def messages(src: str) -> list[str]:
    return [d.message for d in lint_source(textwrap.dedent(src), "t.py", LintConfig()).diagnostics]


def test_unknown_call_site_values_fall_back_to_the_definitions_defaults() -> None:
    src = DEEP + """
import yaml
cfg = yaml.safe_load(open("c.yaml"))
model = Deep(depth=cfg["depth"], width=cfg["width"])
"""
    assert codes(src) == [("GRD001", 10)]


def test_unknown_values_through_an_unreached_helper() -> None:
    src = DEEP + """
def train_model(num_layers, activation_fn):
    return Deep(num_layers)

if __name__ == "__main__":
    import sys
    train_model(int(sys.argv[1]), None)
"""
    assert codes(src) == [("GRD001", 10)]


def test_known_call_site_values_win_over_defaults() -> None:
    assert codes(DEEP + "model = Deep(depth=2)\n") == []
    assert codes(DEEP + "model = Deep(2)\n") == []


def test_same_definition_built_twice_with_same_values_is_one_finding() -> None:
    src = DEEP + """
import sys
a = Deep(depth=sys.argv[1])
b = Deep()
"""
    assert codes(src) == [("GRD001", 10)]


def test_argparse_defaults_are_the_scripts_values() -> None:
    src = DEEP + """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--num-layers", type=int, default="3")
parser.add_argument("--wide", action="store_true")
args = parser.parse_args()
model = Deep(depth=args.num_layers, width=1024 if args.wide else 64)
"""
    assert codes(src) == []  # argparse's 3 (converted by type=int) wins over the signature's 20
    deep = src.replace('default="3"', "default=16")
    assert codes(deep) == [("GRD001", 10)]


def test_argparse_groups_set_defaults_vars_and_literal_argv() -> None:
    src = DEEP + """
import argparse
parser = argparse.ArgumentParser()
group = parser.add_argument_group("model")
group.add_argument("--depth", type=int, default=2)
parser.set_defaults(depth=2)
args = parser.parse_args(["--depth", "14"])
options = vars(args)
model = Deep(depth=options["depth"])
"""
    assert codes(src) == [("GRD001", 10)]


def test_required_argparse_option_is_unknown_then_the_default() -> None:
    src = DEEP.replace("depth=20", "depth=12") + """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, required=True)
parser.add_argument("data")
args = parser.parse_args()
model = Deep(depth=args.depth)
"""
    assert codes(src) == [("GRD001", 10)]


def test_click_option_defaults() -> None:
    src = DEEP.replace("depth=20", "depth") + """
import click

@click.command()
@click.option("--depth", default=12, type=int)
@click.option("--debug", is_flag=True)
def main(depth, debug):
    Deep(depth)

if __name__ == "__main__":
    main()
"""
    assert codes(src) == [("GRD001", 10)]
    assert codes(src.replace("default=12", "default=2")) == []


def test_typer_option_defaults() -> None:
    src = DEEP.replace("depth=20", "depth") + """
import typer

def main(depth: int = typer.Option(12)):
    Deep(depth)

if __name__ == "__main__":
    typer.run(main)
"""
    assert codes(src) == [("GRD001", 10)]


def test_dataclass_constructor_arguments_and_field_defaults() -> None:
    src = DEEP + """
from dataclasses import dataclass, field

@dataclass(frozen=True)
class Config:
    depth: int = 2
    widths: list = field(default_factory=list)

model = Deep(depth=Config(depth=14).depth)
"""
    assert codes(src) == [("GRD001", 10)]
    assert codes(src.replace("Config(depth=14)", "Config()")) == []


def test_dataclass_annotated_parameter_with_unknown_value_uses_the_field_defaults() -> None:
    src = DEEP + """
from dataclasses import dataclass

@dataclass
class Config:
    depth: int = 16

def build(cfg: Config):
    return Deep(depth=cfg.depth, width=64)

if __name__ == "__main__":
    import json
    build(Config(**json.load(open("c.json"))))
"""
    assert codes(src) == [("GRD001", 10)]
    assert codes(src.replace("depth: int = 16", "depth: int = 2")) == []  # the config's 2 wins over Deep's 20
    # a plain class annotation is not a config: nothing is constructed for it, Deep's default 20 is judged
    plain = src.replace("@dataclass\n", "").replace("depth: int = 16", "depth: int = 2")
    assert codes(plain.replace("build(Config(**json.load(open(\"c.json\"))))", "build(json.load(open(\"c\")))")) \
        == [("GRD001", 10)]
