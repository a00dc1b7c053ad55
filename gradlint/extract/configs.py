"""Where scripts take their hyperparameters from: argparse parsers and their defaults, click and
typer option defaults, dataclass (and ``NamedTuple``) config objects, environment variables read
with a default (``os.environ.get("DEPTH", 12)``, ``os.getenv``).

A script's ``parser.add_argument("--depth", type=int, default=20)`` is what its author runs by
default: ``args.depth`` is 20, exactly as ``argparse`` would make it with no command-line
arguments. A value that only the command line can give (a required option, a positional argument
without default) stays UNKNOWN.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

from gradlint.extract import ini_config, yaml_literal
from gradlint.extract.api import Args, AttributedV, Interp, InvocableV, Kwargs
from gradlint.extract.common import is_none
from gradlint.extract.values import (
    UNKNOWN,
    ClassInfo,
    ClassV,
    Const,
    DictV,
    InstanceV,
    ListV,
    MethodV,
    Ref,
    UnknownV,
    Value,
)


def _literal(text: str) -> Any:
    """``ast.literal_eval`` / ``json.loads`` as argparse ``type=``: data, never code (long texts refused)."""
    if len(text) > 10_000:
        raise ValueError("too long")
    return ast.literal_eval(text)


def _json(text: str) -> Any:
    if len(text) > 10_000:
        raise ValueError("too long")
    return json.loads(text)


# argparse ``type=`` converters applied to string defaults and parsed strings (argparse applies
# ``type`` to a default only when the default is a string). A string default under any other
# ``type=`` (a user function) is what that function makes of it: unknown.
_CONVERTERS: dict[str, Callable[[str], Any]] = {"builtins.int": int, "builtins.float": float, "builtins.str": str,
                                                "ast.literal_eval": _literal, "json.loads": _json}


class ArgParserV(AttributedV):
    """``argparse.ArgumentParser()``: the options added so far, with their defaults."""

    def __init__(self) -> None:
        self.defaults: dict[str, Value] = {}
        self.converters: dict[str, Callable[[str], Any]] = {}
        self.flags: dict[str, str] = {}  # "--depth" -> "depth"
        self.switches: dict[str, Value] = {}  # "--amp" -> the value a store_true/false switch stores

    def attribute(self, interp: Interp, name: str) -> Value:
        return _ParserMethodV(self, name)

    def add_argument(self, args: Args, kwargs: Kwargs) -> None:
        flags = [a.value for a in args if isinstance(a, Const) and isinstance(a.value, str)]
        if not flags or len(flags) != len(args):
            return
        dest_value = kwargs.get("dest")
        positional = not flags[0].startswith("-")
        if isinstance(dest_value, Const) and isinstance(dest_value.value, str):
            dest = dest_value.value
        elif positional:
            dest = flags[0]
        else:
            long = next((f for f in flags if f.startswith("--")), flags[0])
            dest = long.lstrip("-").replace("-", "_")
        action = _const_str(kwargs.get("action"))
        nargs = _const_str(kwargs.get("nargs"))
        required = kwargs.get("required")
        default: Value
        if "default" in kwargs:
            default = kwargs["default"]
        elif action == "store_true":
            default = Const(False)
        elif action == "store_false":
            default = Const(True)
        elif positional and nargs not in ("?", "*"):
            default = UNKNOWN  # required: only the command line gives it
        else:
            default = Const(None)
        if isinstance(required, Const) and required.value is True:
            default = UNKNOWN
        kind = kwargs.get("type")
        converter = _CONVERTERS.get(kind.qualname) if isinstance(kind, Ref) else None
        if converter is not None:
            self.converters[dest] = converter
            if isinstance(default, Const) and isinstance(default.value, str):
                default = _convert(converter, default.value)
        elif kind is not None and isinstance(default, Const) and isinstance(default.value, str):
            default = UNKNOWN  # type=parse_widths on "64,64": the function's result, not the text
        self.defaults[dest] = default
        for flag in flags:
            self.flags[flag] = dest
            if action in ("store_true", "store_false"):
                self.switches[flag] = Const(action == "store_true")

    def parse(self, argv: Value) -> Value:
        """The namespace ``parse_args(argv)`` returns: the defaults, then what a literal ``argv`` sets."""
        values = dict(self.defaults)
        if isinstance(argv, Const) and argv.value is None:
            return NamespaceV(values)
        items: list[Any] | None = None
        if isinstance(argv, ListV) and not argv.partial:
            items = [i.value if isinstance(i, Const) else None for i in argv.items]
        elif isinstance(argv, Const) and isinstance(argv.value, (list, tuple)):
            items = list(argv.value)
        if items is None or not all(isinstance(i, str) for i in items):
            return UNKNOWN  # sys.argv[1:] or a computed list: not knowable
        i = 0
        while i < len(items):
            flag, _, inline = items[i].partition("=")
            dest = self.flags.get(flag)
            if dest is None:
                return UNKNOWN
            if flag in self.switches:
                values[dest] = self.switches[flag]
                i += 1
                continue
            if inline:
                raw = inline
                i += 1
            elif i + 1 < len(items):
                raw = items[i + 1]
                i += 2
            else:
                return UNKNOWN
            converter = self.converters.get(dest, str)
            values[dest] = _convert(converter, raw)
        return NamespaceV(values)


class _ParserMethodV(InvocableV):
    def __init__(self, parser: ArgParserV, name: str) -> None:
        self.parser = parser
        self.name = name

    def invoke(self, interp: Interp, args: Args, kwargs: Kwargs, node: ast.AST) -> Value:
        parser, name = self.parser, self.name
        if name == "add_argument":
            parser.add_argument(args, kwargs)
            return UNKNOWN
        if name in ("add_argument_group", "add_mutually_exclusive_group"):
            return parser  # a group adds to its parser's namespace
        if name == "set_defaults":
            parser.defaults.update(kwargs)
            return Const(None)
        if name in ("parse_args", "parse_known_args", "parse_intermixed_args"):
            argv = args[0] if args else kwargs.get("args", Const(None))
            namespace = parser.parse(argv)
            if name == "parse_known_args":
                return ListV([namespace, UNKNOWN], is_tuple=True)
            return namespace
        if name in ("print_help", "print_usage", "error", "exit"):
            return Const(None)
        return UNKNOWN


class NamespaceV(AttributedV):
    """An ``argparse.Namespace`` (or ``types.SimpleNamespace``): attributes by name."""

    def __init__(self, attrs: dict[str, Value]) -> None:
        self.attrs = attrs

    def attribute(self, interp: Interp, name: str) -> Value:
        return self.attrs.get(name, UNKNOWN)

    def set_attribute(self, interp: Interp, name: str, value: Value) -> bool:
        self.attrs[name] = value
        return True


class AttrDictV(DictV, AttributedV):
    """A config dict read by key and by attribute (``OmegaConf.create({...})``, ``EasyDict``,
    ``ml_collections.ConfigDict``): ``cfg.model.depth`` is ``cfg["model"]["depth"]``; dict methods stay."""

    def attribute(self, interp: Interp, name: str) -> Value:
        if name in self.items:
            return self.items[name]
        if name in _DICT_METHODS:
            return MethodV(self, name)
        return UNKNOWN

    def set_attribute(self, interp: Interp, name: str, value: Value) -> bool:
        if interp.uncertain_since:  # set under an undecidable branch or loop: maybe not set
            self.partial = True
        self.items[name] = value
        return True


_DICT_METHODS = frozenset({"get", "items", "keys", "values", "pop", "update", "setdefault"})
# Constructors of attribute-access config dicts, from a dict (or keyword arguments).
_ATTR_DICTS = frozenset({"omegaconf.OmegaConf.create", "omegaconf.OmegaConf.structured", "easydict.EasyDict",
                         "ml_collections.ConfigDict", "ml_collections.config_dict.ConfigDict", "addict.Dict",
                         "box.Box", "munch.Munch", "munch.munchify"})


def attr_dict(value: Value) -> Value:
    """``value`` with every dict in it (nested, in lists too) read by attribute as well."""
    if isinstance(value, DictV) and not isinstance(value, AttrDictV):
        return AttrDictV({k: attr_dict(v) for k, v in value.items.items()}, value.partial)
    if isinstance(value, ListV):
        return ListV([attr_dict(v) for v in value.items], value.partial, value.is_tuple)
    return value


def _attr_dict_call(args: Args, kwargs: Kwargs) -> Value:
    if len(args) == 1 and not kwargs and isinstance(args[0], DictV):
        return attr_dict(args[0])
    if len(args) == 1 and not kwargs and isinstance(args[0], (InstanceV, NamespaceV)):
        return args[0]  # OmegaConf.structured(Config()): the dataclass instance's fields
    if not args:
        return attr_dict(DictV(dict(kwargs)))
    if len(args) == 1 and isinstance(args[0], Const) and isinstance(args[0].value, str):
        try:  # OmegaConf.create("model:\n  depth: 12"): YAML text
            return attr_dict(lift(yaml_literal.load(args[0].value)))
        except ValueError:
            return UNKNOWN
    return UNKNOWN


def lift(obj: Any) -> Value:
    """Parsed JSON / YAML data as values."""
    if isinstance(obj, dict):
        return DictV({k: lift(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return ListV([lift(v) for v in obj])
    return Const(obj)


class FieldV(Value):
    """``dataclasses.field(default=..., default_factory=...)`` in a dataclass body."""

    def __init__(self, default: Value | None, factory: Value | None) -> None:
        self.default = default
        self.factory = factory


def call_config(interp: Interp, q: str, leaf: str, args: Args, kwargs: Kwargs,
                node: ast.AST | None = None) -> Value | None:
    """Constructors of configuration sources; None for other names."""
    if q in ("collections.namedtuple", "typing.NamedTuple"):
        return namedtuple_class(q, args, kwargs, node)
    if q in ("os.getenv", "os.environ.get", "os.environ.setdefault"):
        # ``int(os.environ.get("DEPTH", 12))``: what the script runs with when the variable is not set
        default = args[1] if len(args) > 1 else kwargs.get("default")
        return default if default is not None else UNKNOWN
    if q == "argparse.ArgumentParser":
        return ArgParserV()
    if q in ("argparse.Namespace", "types.SimpleNamespace"):
        return NamespaceV(dict(kwargs))
    if q in _ATTR_DICTS:
        return _attr_dict_call(args, kwargs)
    if (ini := ini_config.make_parser(q, args, kwargs)) is not None:
        return ini
    if q == "dataclasses.field":
        factory = kwargs.get("default_factory")
        return FieldV(kwargs.get("default"), factory)
    if q in ("click.option", "click.argument"):
        return click_decorator(leaf, args, kwargs)
    if q.startswith("typer.") and leaf in ("Option", "Argument"):
        # def main(depth: int = typer.Option(20)): the option's default; ``...`` marks it required.
        default = args[0] if args else kwargs.get("default", UNKNOWN)
        return UNKNOWN if isinstance(default, Const) and default.value is Ellipsis else default
    return None


def namedtuple_class(q: str, args: Args, kwargs: Kwargs, node: ast.AST | None) -> Value:
    """``HParams = namedtuple("HParams", ["depth", "width"], defaults=[64])`` (or ``"depth width"``,
    or ``typing.NamedTuple("HParams", [("depth", int), ...])``): a config class whose generated
    ``__init__`` takes the fields in order, the defaults for the last ones. UNKNOWN when the names
    or the defaults are not literal."""
    name = _const_str(args[0] if args else kwargs.get("typename"))
    spec = args[1] if len(args) > 1 else kwargs.get("field_names", kwargs.get("fields"))
    fields: list[str] | None = None
    if isinstance(spec, Const) and isinstance(spec.value, str):
        fields = spec.value.replace(",", " ").split()
    elif isinstance(spec, ListV) and not spec.partial:
        names = [_const_str(item.items[0] if isinstance(item, ListV) and item.items else item) for item in spec.items]
        fields = [n for n in names if n is not None] if all(names) else None
    if name is None or fields is None or not all(f.isidentifier() for f in fields):
        return UNKNOWN
    class_attrs: dict[str, Value] = {}
    defaults = kwargs.get("defaults")
    if defaults is not None and q == "collections.namedtuple" and not is_none(defaults):  # ``defaults=None``
        if not isinstance(defaults, ListV) or defaults.partial or len(defaults.items) > len(fields):
            return UNKNOWN
        class_attrs = dict(zip(fields[len(fields) - len(defaults.items):], defaults.items, strict=True))
    where = node if node is not None else ast.Pass()
    cls = ast.ClassDef(name=name, bases=[], keywords=[], body=[], decorator_list=[])
    ast.copy_location(cls, where)
    return ClassV(ClassInfo(name, cls, [], {}, class_attrs, None, fields=fields))


def namespace_dict(value: Value) -> Value | None:
    """``vars(args)``."""
    if isinstance(value, NamespaceV):
        return DictV(dict(value.attrs))
    return None


def click_defaults(decorators: list[Value]) -> dict[str, Value]:
    """Parameter defaults a ``@click.option(...)`` / ``@click.argument(...)`` stack gives a command
    function (``main()`` called with no arguments runs with them)."""
    out: dict[str, Value] = {}
    for value in decorators:
        if isinstance(value, _ClickDecoratorV):
            out.setdefault(value.param, value.default)
    return out


class _ClickDecoratorV(Value):
    def __init__(self, param: str, default: Value) -> None:
        self.param = param
        self.default = default


def click_decorator(leaf: str, args: Args, kwargs: Kwargs) -> Value:
    """``click.option("--depth", default=20)`` / ``click.argument("path")``, as the parameter it fills."""
    decls = [a.value for a in args if isinstance(a, Const) and isinstance(a.value, str)]
    if not decls:
        return UNKNOWN
    names = [d for d in decls if d.isidentifier()]
    if names:
        param = names[0]
    else:
        long = next((d for d in decls if d.startswith("--")), decls[0])
        param = long.split("/")[0].lstrip("-").replace("-", "_").lower()
    default: Value
    if "default" in kwargs:
        default = kwargs["default"]
    elif isinstance(flag := kwargs.get("is_flag"), Const) and flag.value is True:
        default = Const(False)
    elif leaf == "argument":
        default = UNKNOWN  # required unless given a default
    else:
        default = Const(None)
    required = kwargs.get("required")
    if isinstance(required, Const) and required.value is True:
        default = UNKNOWN
    return _ClickDecoratorV(param, default)


def dataclass_fields(info: ClassInfo) -> list[str] | None:
    """The fields of a dataclass / NamedTuple, base classes first; None for other classes."""
    out: list[str] = []
    found = False
    for cls in reversed(info.mro()):
        if cls.fields is None:
            continue
        found = True
        out.extend(f for f in cls.fields if f not in out)
    return out if found else None


def construct_dataclass(interp: Interp, info: ClassInfo, fields: list[str], args: Args, kwargs: Kwargs,
                        node: ast.AST) -> dict[str, Value]:
    """The attributes the generated ``__init__`` sets: arguments, then defaults (factories called)."""
    attrs: dict[str, Value] = {}
    for i, name in enumerate(fields):
        if i < len(args):
            attrs[name] = args[i]
            continue
        if name in kwargs:
            attrs[name] = kwargs[name]
            continue
        default = info.find_class_attr(name)
        if isinstance(default, FieldV):
            if default.default is not None:
                attrs[name] = default.default
            elif default.factory is not None:
                attrs[name] = interp.call(default.factory, [], {}, node)
            else:
                attrs[name] = UNKNOWN
        else:
            attrs[name] = default if default is not None else UNKNOWN
    return attrs


def is_unknown(value: Value) -> bool:
    return isinstance(value, UnknownV)


def _const_str(value: Value | None) -> str | None:
    return value.value if isinstance(value, Const) and isinstance(value.value, str) else None


def _convert(converter: Callable[[str], Any], raw: str) -> Value:
    try:
        return lift(converter(raw))
    except (TypeError, ValueError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def saved_hyperparameters(interp: Interp, func: Any, scope: Any, args: Args, kwargs: Kwargs) -> Value:
    """Lightning's ``self.save_hyperparameters()`` in ``__init__``: ``self.hparams`` holds the arguments
    of the call it is made in, by name, with the values they have when it runs (Lightning reads the
    frame's locals); ``save_hyperparameters("depth", "width")`` keeps the named ones, ``ignore=`` drops
    some, and a single dict or namespace argument is the hyperparameters itself. Names it cannot know
    (``**kwargs`` not known, no calling function) read as UNKNOWN."""
    if len(args) == 1 and isinstance(args[0], DictV) and not args[0].partial:
        return NamespaceV({str(k): v for k, v in args[0].items.items()})
    if len(args) == 1 and isinstance(args[0], NamespaceV):
        return NamespaceV(dict(args[0].attrs))
    if func is None or scope is None or isinstance(func.node, ast.Lambda):
        return NamespaceV({})
    spec = func.node.args
    names = [a.arg for a in spec.posonlyargs + spec.args + spec.kwonlyargs]
    if func.owner is not None and names and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.node.decorator_list):
        names = names[1:]  # self
    picked = [a.value for a in args if isinstance(a, Const) and isinstance(a.value, str)]
    if picked:
        names = [n for n in names if n in picked]
    ignore = kwargs.get("ignore")
    if isinstance(ignore, Const) and isinstance(ignore.value, str):
        names = [n for n in names if n != ignore.value]
    elif isinstance(ignore, ListV):
        dropped = {i.value for i in ignore.items if isinstance(i, Const)}
        names = [n for n in names if n not in dropped]
    attrs: dict[str, Value] = {n: scope.vars.get(n, UNKNOWN) for n in names}
    if spec.kwarg is not None and not picked:
        extra = scope.vars.get(spec.kwarg.arg)
        if isinstance(extra, DictV):
            attrs.update({str(k): v for k, v in extra.items.items()})
    return NamespaceV(attrs)
