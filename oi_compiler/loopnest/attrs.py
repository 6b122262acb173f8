"""Plain Python data <-> the builtin attributes `oi.schedule` and `oi.plan` are written in.

Dictionaries, lists, strings, integers and booleans only, so a plan reads the same in Python
and in `.mlir`: `{caches = [{name = "AA", source = "A", index = "ii", thrifty = true}]}`.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DictionaryAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    UnitAttr,
    i64,
)
from xdsl.ir import Attribute

from oi_compiler.errors import ScheduleError


def to_attr(value: object) -> Attribute:
    if isinstance(value, bool):
        return BoolAttr.from_bool(value)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, (list, tuple)):
        return ArrayAttr([to_attr(v) for v in value])
    if isinstance(value, dict):
        return DictionaryAttr({k: to_attr(v) for k, v in value.items()})
    raise ScheduleError(f"cannot write {value!r} as a plan attribute")


def to_py(attr: Attribute | None) -> object:
    if attr is None:
        return None
    if isinstance(attr, DictionaryAttr):
        return {k: to_py(v) for k, v in attr.data.items()}
    if isinstance(attr, ArrayAttr):
        return [to_py(v) for v in attr.data]
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, IntegerAttr):
        value = attr.value.data
        if isinstance(attr.type, IntegerType) and attr.type.width.data == 1:
            return bool(value)
        return value
    if isinstance(attr, UnitAttr):
        return True
    raise ScheduleError(f"unexpected attribute {attr} in a schedule or plan")
