"""``gradlint.records.dataclass`` behaves as ``dataclasses.dataclass`` for every option gradlint uses.

Each shape is declared twice, once with each decorator, and the two are compared on equality,
hashing, repr, frozenness, ``replace`` and inheritance; pickling on a class gradlint sends between processes."""

from __future__ import annotations

import dataclasses
import pickle
import re
from typing import Any

import pytest

from gradlint import records

OPTIONS = [{}, {"eq": False}, {"frozen": True}, {"repr": False}, {"kw_only": True}]


def _shapes(decorate: Any, options: dict[str, Any]) -> dict[str, type]:
    @decorate(**options)
    class Point:
        x: float
        y: float = 0.0
        tags: list[str] = dataclasses.field(default_factory=list, compare=False, repr=False)
        weight: tuple[int, ...] = dataclasses.field(default=(), hash=False)

    @decorate(**options)
    class Labelled(Point):
        label: str = ""

    @decorate(**options)
    class OwnEquality:
        key: str
        other: int = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, OwnEquality) and other.key == self.key

        def __hash__(self) -> int:
            return hash(self.key)

        def __repr__(self) -> str:
            return f"<{self.key}>"

    return {"Point": Point, "Labelled": Labelled, "OwnEquality": OwnEquality}


def _behaviour(cls: type, kw_only: bool) -> dict[str, Any]:
    def make(*args: Any) -> Any:
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        return cls(**dict(zip(names, args, strict=False))) if kw_only else cls(*args)

    a, b, c = make("k", 2.0), make("k", 2.0), make("j", 3.0)
    out: dict[str, Any] = {
        "eq": (a == b, a == c, a != b, a == "k"),
        "repr": re.sub(r" at 0x[0-9a-f]+", "", repr(a).replace(cls.__qualname__, "CLS")),
        "fields": [(f.name, f.compare, f.repr, f.hash) for f in dataclasses.fields(cls)],
        "replace": dataclasses.replace(a, y=5.0) == dataclasses.replace(b, y=5.0) if "y" in cls.__dataclass_fields__
        else None,
    }
    try:
        out["hash"] = (hash(a) == hash(b), hash(a) == hash(a))
    except TypeError:
        out["hash"] = "unhashable"
    try:
        a.x = "changed"
        out["setattr"] = "allowed"
    except dataclasses.FrozenInstanceError:
        out["setattr"] = "frozen"
    return out


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_same_behaviour_as_dataclasses(options: dict[str, Any]) -> None:
    ours = _shapes(records.dataclass, options)
    theirs = _shapes(dataclasses.dataclass, options)
    for name in ours:
        assert _behaviour(ours[name], options.get("kw_only", False)) == \
            _behaviour(theirs[name], options.get("kw_only", False)), name


def test_without_parentheses_and_with_a_subclass_that_is_not_decorated() -> None:
    @records.dataclass
    class Base:
        a: int

    class Child(Base):
        pass

    assert Base(1) == Base(1) and Base(1) != Base(2)
    assert Child(1) != Base(1)  # the same class only, as dataclasses compares
    assert repr(Child(1)) == "test_without_parentheses_and_with_a_subclass_that_is_not_decorated.<locals>.Child(a=1)"
    assert Base.__doc__ == "Base"  # dataclasses would build it from inspect.signature at import


def test_recursive_repr_does_not_recurse_forever() -> None:
    @records.dataclass
    class Node:
        children: list[Any]

    node = Node([])
    node.children.append(node)
    assert repr(node).endswith("Node(children=[...])")


def test_instances_pickle_as_dataclasses_do() -> None:
    from gradlint.model import Span  # a frozen record gradlint sends between processes

    span = Span(3, 4, 3, 9)
    assert pickle.loads(pickle.dumps(span)) == span
    assert hash(pickle.loads(pickle.dumps(span))) == hash(span)


def test_gradlint_declares_its_dataclasses_with_records() -> None:
    """Every class gradlint creates at start-up pays the exec-compiled methods of the standard
    decorator otherwise (the reason ``records`` exists): only records.py may import it."""
    import ast
    from pathlib import Path

    root = Path(records.__file__).resolve().parent.parent
    offenders = []
    for path in sorted([*(root / "gradlint").rglob("*.py"), *(root / "rules").rglob("*.py")]):
        if path.name == "records.py" and path.parent.name == "gradlint":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "dataclasses" and \
                    any(a.name == "dataclass" for a in node.names):
                offenders.append(str(path.relative_to(root)))
            elif isinstance(node, ast.Attribute) and node.attr == "dataclass" and \
                    isinstance(node.value, ast.Name) and node.value.id == "dataclasses":
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


def _init_shapes(decorate: Any, frozen: bool) -> Any:
    @decorate(frozen=frozen)
    class Built:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        c: str = "c"
        hidden: dict[str, int] = dataclasses.field(default_factory=dict, init=False)
        fixed: int = dataclasses.field(default=7, init=False)
        post: int = dataclasses.field(default=0, init=False)
        d: int = dataclasses.field(default=1, kw_only=True)

        def __post_init__(self) -> None:
            object.__setattr__(self, "post", self.a + self.fixed)

    return Built


@pytest.mark.parametrize("frozen", [False, True])
def test_the_compiled_init_is_dataclasses_init(frozen: bool) -> None:
    ours, theirs = _init_shapes(records.dataclass, frozen), _init_shapes(dataclasses.dataclass, frozen)
    for cls in (ours, theirs):
        first, second = cls(1), cls(2, [3], "x", d=4)
        assert first.b is not cls(1).b  # a fresh default per instance, from the first call on
        assert dataclasses.asdict(first) == {"a": 1, "b": [], "c": "c", "hidden": {}, "fixed": 7, "post": 8, "d": 1}
        assert dataclasses.asdict(second) == {"a": 2, "b": [3], "c": "x", "hidden": {}, "fixed": 7, "post": 9, "d": 4}
        with pytest.raises(TypeError):
            cls(1, [], "c", 5)  # d is keyword-only
        with pytest.raises(TypeError):
            cls()  # a has no default
    assert dataclasses.replace(ours(1), c="y") == ours(1, [], "y")


def test_argument_order_is_checked_when_the_class_is_created() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @records.dataclass
        class Wrong:
            a: int = 0
            b: int  # type: ignore[misc]


def test_frozen_guards_as_dataclasses() -> None:
    @records.dataclass(frozen=True)
    class Frozen:
        a: int

    class Child(Frozen):
        pass

    item, child = Frozen(1), Child(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.other = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del item.a
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.a = 2  # type: ignore[misc]
    child.extra = 3  # type: ignore[attr-defined]  # a subclass's own attributes, as dataclasses allows
    assert child.extra == 3  # type: ignore[attr-defined]
