"""Rounding nests: clamp, floor, ceil, round, trunc.

Parallel generics. floor/ceil/trunc are `math.floor`/`ceil`/`trunc`; round is
`math.round` (half away from zero, Rust's `round`); on integer inputs they copy.
clamp is `min(max(x, lo), hi)`: floats with the NaN-ignoring `maxnumf`/`minnumf` and the
bounds rounded to f32 (f64::MIN/MAX by default, so -inf/+inf in f32); integers in the
64-bit domain with the bounds read as the reference reads them (wrapped to 64 bits,
i4/u4 bounds limited to the 4-bit range first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import math as mathd
from xdsl.ir import SSAValue

from oi_compiler.dtypes import INT_RANGES
from oi_compiler.ops.nests.scalar import domain_of, float_setting
from oi_compiler.ops.nests.structured import pointwise
from oi_compiler.ops.reference.settings import as_int, read_number
from oi_compiler.ops.reference.shapes import fail

F64_MAX = 1.7976931348623157e308
_ROUND = {"floor": mathd.FloorOp, "ceil": mathd.CeilOp, "trunc": mathd.TruncOp, "round": mathd.RoundOp}


def rounding(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
             in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    if domain.is_float:
        pointwise(b, inputs, output, in_dtypes, out, domain, lambda s, x: s.unary(_ROUND[op], x))
    else:
        pointwise(b, inputs, output, in_dtypes, out, domain, lambda s, x: x)


def int_bound(op: str, settings: Mapping[str, Any], name: str, dtype: str) -> int:
    """clamp's `min`/`max` for an integer dtype, as the reference reads it."""
    unsigned = dtype.startswith("u")
    if name not in settings:
        if unsigned:
            value = 0 if name == "min" else (1 << 64) - 1
        else:
            value = -(1 << 63) if name == "min" else (1 << 63) - 1
    else:
        given = read_number(op, settings, name)
        integer = as_int(given)
        if integer is None:
            raise fail(op, f"setting {name} must be an integer for integer inputs, got {given!r}")
        if unsigned and integer < 0:
            raise fail(op, f"{name} must be non-negative for unsigned dtype")
        value = integer % (1 << 64)
        if not unsigned and value >= 1 << 63:
            value -= 1 << 64
    if dtype in ("i4", "u4"):  # the packed kernel: min.max(type min), max.min(type max)
        low, high = INT_RANGES[dtype]
        value = max(value, low) if name == "min" else min(value, high)
    return value


def clamp(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
          in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    if domain.is_float:
        low: Any = float_setting(op, settings, "min", -F64_MAX)
        high: Any = float_setting(op, settings, "max", F64_MAX)
    else:  # a bound read at run time is an i64 (its sign checked by the step for an unsigned dtype)
        low = settings["min"] if isinstance(settings.get("min"), SSAValue) else int_bound(op, settings, "min", in_dtypes[0])
        high = settings["max"] if isinstance(settings.get("max"), SSAValue) else int_bound(op, settings, "max", in_dtypes[0])
    fn = lambda s, x: s.minimum(s.maximum(x, s.const(low)), s.const(high))  # noqa: E731
    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


BUILDERS = {"clamp": clamp, **dict.fromkeys(_ROUND, rounding)}
