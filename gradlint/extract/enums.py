"""``enum.Enum`` classes in model code: ``class Act(Enum): SIGMOID = nn.Sigmoid`` and
``build(act=Act.SIGMOID)`` with ``act.value()``. A member read from the class is one value per
member (``is`` / ``==`` compare members by identity, as Python does), with its ``.value`` and
``.name``; anything else about a member (str-mixin methods, ``Act("sigmoid")`` lookups) stays
unknown."""

from __future__ import annotations

from gradlint.extract.api import AttributedV, Interp
from gradlint.extract.values import UNKNOWN, ClassInfo, ClassV, Const, Ref, Value

_ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"})


class EnumMemberV(AttributedV):
    """``Act.SIGMOID``: a member of an enum class defined in the file."""

    def __init__(self, owner: ClassInfo, name: str, value: Value) -> None:
        self.owner = owner
        self.name = name
        self.value = value

    def attribute(self, interp: Interp, name: str) -> Value:
        if name == "value":
            return self.value
        if name == "name":
            return Const(self.name)
        return UNKNOWN


def is_enum(info: ClassInfo) -> bool:
    for base in info.bases:
        if isinstance(base, Ref) and base.qualname in _ENUM_BASES:
            return True
        if isinstance(base, ClassV) and base.info is not info and is_enum(base.info):
            return True
    return False


def member(info: ClassInfo, name: str, value: Value) -> Value:
    """The member ``name`` of enum class ``info`` (the same value on every read); a dunder, sunder or
    method-like attribute is not a member and is returned as it is."""
    if name.startswith("_") or not is_enum(info):
        return value
    if name not in info.members:
        info.members[name] = EnumMemberV(info, name, value)
    return info.members[name]
