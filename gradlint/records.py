"""``dataclass``: ``dataclasses.dataclass`` with the same behaviour and a cheaper class creation.

The standard decorator writes the source of every generated method and compiles it with ``exec``
when the class is created, in every process: ``__init__``, ``__repr__`` and ``__eq__`` for a
plain dataclass, and also ``__hash__``, ``__setattr__`` and ``__delattr__`` for a frozen one. That
is about 2 M instructions per plain class and 4.5 M per frozen one (CPython 3.11, counted with
callgrind), and a lint run creates about 90 of them before it reads a file: a quarter of the
start-up of linting one small file. Here only ``__init__`` (and a frozen class's attribute guards)
is generated; ``__eq__``, ``__repr__`` and ``__hash__`` are closures over the class's field names
(read with ``operator.attrgetter``, as fast as the generated methods: they are hot, ``Span`` keys
dicts), with their semantics: equality compares the field tuples of two instances of the same
class, ``eq`` without ``frozen`` makes instances unhashable, a frozen class hashes its field
tuple, and methods the class body defines are kept.

``__init__`` itself is compiled on the class's first instantiation (most of the ~90 classes a
run creates are never instantiated by a given lint), and a frozen class's ``__setattr__`` and
``__delattr__`` guards are closures too: a frozen class cost three ``exec`` calls (800 µs), now none.

Instances are ordinary dataclass instances (``fields``, ``replace``, ``asdict`` work).
"""

from __future__ import annotations

import dataclasses
import operator
import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # in typing from Python 3.11 (3.10 is supported); at run time it only marks the function
    def dataclass_transform(**_: object) -> Callable[[object], object]:
        return lambda function: function

_T = TypeVar("_T", bound=type)

def _fields_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of an instance's ``names`` (``operator.attrgetter`` runs in C; one name is wrapped
    so that comparisons stay those of tuples, which test identity first, as for a NaN field)."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda instance: (one(instance),)
    return lambda instance: ()


def _eq_of(names: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    values = _fields_getter(names)

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash_of(names: tuple[str, ...]) -> Callable[[Any], int]:
    values = _fields_getter(names)

    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _repr_of(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _lazy_init(cls: Any, frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one on first use and puts it in its place. The
    argument order is checked now, as dataclasses does when it creates the class."""
    seen_default = False
    for f in dataclasses.fields(cls):
        if not f.init or f.kw_only:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        real = _compiled_init(cls, frozen)
        cls.__init__ = real
        real(self, *args, **kwargs)

    return __init__


_HAS_DEFAULT_FACTORY = object()  # the default of a parameter whose field has a default_factory


def _compiled_init(cls: Any, frozen: bool) -> Callable[..., None]:
    """The ``__init__`` dataclasses would generate for ``cls``'s fields (defaults, default
    factories, ``init=False`` and keyword-only fields, ``__post_init__``)."""
    namespace: dict[str, Any] = {"__set": object.__setattr__, "__HAS_FACTORY": _HAS_DEFAULT_FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        value: str | None = f.name
        if f.default_factory is not dataclasses.MISSING:
            namespace[f"__factory{i}"] = f.default_factory
            value = f"__factory{i}() if {f.name} is __HAS_FACTORY else {f.name}" if f.init else f"__factory{i}()"
            param = f"{f.name}=__HAS_FACTORY"
        elif f.default is not dataclasses.MISSING:
            namespace[f"__default{i}"] = f.default
            param = f"{f.name}=__default{i}"
            value = f.name if f.init else f"__default{i}"
        else:
            param = f.name
            value = f.name if f.init else None
        if f.init:
            (keyword if f.kw_only else positional).append(param)
        if value is not None:
            body.append(f"__set(__dataclass_self__, {f.name!r}, {value})" if frozen
                        else f"__dataclass_self__.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("__dataclass_self__.__post_init__()")
    params = ", ".join(["__dataclass_self__", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    exec(source, namespace)  # noqa: S102 -- the source is built from the class's own field names
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _set_frozen_guards(cls: Any, body: Any, names: frozenset[str]) -> None:
    """``__setattr__``/``__delattr__`` raising ``FrozenInstanceError`` as dataclasses' frozen
    classes do: for any attribute of the class itself, for its fields on a subclass."""
    for method in ("__setattr__", "__delattr__"):
        if method in body:
            raise TypeError(f"Cannot overwrite attribute {method} in class {cls.__name__}")

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    cls.__setattr__ = __setattr__
    cls.__delattr__ = __delattr__


@overload
def dataclass(cls: _T, /) -> _T: ...
@overload
def dataclass(*, eq: bool = True, frozen: bool = False, repr: bool = True,
              kw_only: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(cls: _T | None = None, /, *, eq: bool = True, frozen: bool = False, repr: bool = True,
              kw_only: bool = False) -> _T | Callable[[_T], _T]:
    """``dataclasses.dataclass(cls, eq=..., frozen=..., repr=..., kw_only=...)``, same behaviour."""

    def wrap(klass: _T) -> _T:
        body = klass.__dict__
        # what dataclasses would do with the hash (its table for unsafe_hash=False)
        explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
        if not klass.__doc__:  # dataclasses computes inspect.signature(cls) for a missing docstring
            klass.__doc__ = klass.__name__
        # frozen=False: the frozen guards are set below, without exec (the frozen flag dataclasses
        # records only serves its check that frozen and non-frozen classes do not inherit from
        # each other, which gradlint's records never do)
        made: Any = dataclasses.dataclass(klass, init=False, eq=False, repr=False, frozen=False, kw_only=kw_only)
        fields = dataclasses.fields(made)
        if "__init__" not in body:
            made.__init__ = _lazy_init(made, frozen)
        if frozen:
            _set_frozen_guards(made, body, frozenset(f.name for f in fields))
        if eq:
            if "__eq__" not in body:
                made.__eq__ = _eq_of(tuple(f.name for f in fields if f.compare))
            if not explicit_hash:
                if frozen:
                    made.__hash__ = _hash_of(tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)))
                else:
                    made.__hash__ = None
        if repr and "__repr__" not in body:
            made.__repr__ = _repr_of(tuple(f.name for f in fields if f.repr))
        return made

    return wrap if cls is None else wrap(cls)
