"""Reading an op's resolved settings, with defaults and kind checks (pure Python, no numpy).

The executor hands a reference the settings written on the node, already
resolved to Python values (see `oi_compiler.ops.reference`). These readers
apply the defaults and reject values of the wrong kind with an
`ExecutionError` naming the op: `op argmax_axis setting axis must be an
integer, got 1.5`. Numpy scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from oi_compiler.errors import ExecutionError

REQUIRED: Any = object()  # default meaning "the setting must be present"

#: ops whose shape setting, when absent, is the output variable's declared shape
#: (`op reshape(q) >> qh` with `qh: f32[H, Dh]`: the DSL's int lists cannot name sizes)
SHAPE_FROM_OUTPUT = {"reshape": "shape"}


def _missing(op: str, name: str) -> ExecutionError:
    return ExecutionError(f"op {op} requires setting {name}")


def _wrong(op: str, name: str, what: str, value: Any) -> ExecutionError:
    return ExecutionError(f"op {op} setting {name} must be {what}, got {value!r}")


def is_bool(value: Any) -> bool:
    """True for Python and numpy booleans."""
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def as_int(value: Any) -> int | None:
    """The integer a bool or integer setting stands for; None for anything else."""
    if is_bool(value):
        return int(bool(value))
    if isinstance(value, numbers.Integral):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """The float a bool, integer or float setting stands for; None for anything else."""
    if is_bool(value):
        return float(bool(value))
    if isinstance(value, (str, bytes, list, tuple, dict)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _default(op: str, name: str, default: Any) -> Any:
    if default is REQUIRED:
        raise _missing(op, name)
    return default


def _read(op: str, settings: Mapping[str, Any], name: str, default: Any, convert, expected: str) -> Any:
    if name not in settings:
        return _default(op, name, default)
    value = settings[name]
    result = convert(value)
    if result is None:
        raise _wrong(op, name, expected, value)
    return result


def read_int(op: str, settings: Mapping[str, Any], name: str, default: Any = REQUIRED) -> Any:
    """An integer setting (bools count as 0/1; floats are refused, as upstream does)."""
    return _read(op, settings, name, default, as_int, "an integer")


def read_float(op: str, settings: Mapping[str, Any], name: str, default: Any = REQUIRED) -> Any:
    """A float setting (bools and integers are converted)."""
    return _read(op, settings, name, default, as_float, "a number")


def read_bool(op: str, settings: Mapping[str, Any], name: str, default: Any = REQUIRED) -> Any:
    """A bool setting (integers count as `!= 0`, as upstream reads them)."""
    if name not in settings:
        return _default(op, name, default)
    return _read(op, settings, name, default, as_int, "a bool") != 0


def read_number(op: str, settings: Mapping[str, Any], name: str, default: Any = REQUIRED) -> Any:
    """A scalar setting as given (bool, int or float), checked to be a number."""
    if name not in settings:
        return _default(op, name, default)
    value = settings[name]
    if is_bool(value):
        return bool(value)
    integer = as_int(value)
    if integer is not None:
        return integer
    number = as_float(value)
    if number is None:
        raise _wrong(op, name, "a number", value)
    return number


def read_int_list(op: str, settings: Mapping[str, Any], name: str) -> list[int] | None:
    """An int_list setting, or None when absent."""
    if name not in settings:
        return None
    value = settings[name]
    try:
        items = list(value)
    except TypeError:
        raise _wrong(op, name, "a list of integers", value) from None
    result = [as_int(v) for v in items]
    if any(r is None or is_bool(v) for r, v in zip(result, items)):
        raise _wrong(op, name, "a list of integers", value)
    return [int(r) for r in result if r is not None]


def read_str(op: str, settings: Mapping[str, Any], name: str, default: Any = REQUIRED) -> Any:
    if name not in settings:
        return _default(op, name, default)
    value = settings[name]
    if not isinstance(value, str):
        raise _wrong(op, name, "a string", value)
    return value
