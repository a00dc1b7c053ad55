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
        made: Any = dataclasses.dataclass(klass, eq=False, repr=False, frozen=frozen, kw_only=kw_only)
        fields = dataclasses.fields(made)
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
