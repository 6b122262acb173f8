"""Rounding: clamp, floor, ceil, round, trunc.

floor/ceil/trunc are the IEEE operations, computed in float32 (float64 for f64).
round rounds half away from zero (Rust's `f32::round`: 2.5 -> 3, -0.5 -> -1).
On integer inputs (outside upstream's support set) they return the input.

clamp (upstream's kernel): `y = x.max(min).min(max)` with Rust's NaN-ignoring
`max`/`min`, so max wins when min > max and a NaN input becomes min (or max).
* Floats: min/max default to f64::MIN/f64::MAX and are rounded to float32 (kept in
  float64 for f64): without bounds NaN gives -inf in f32/f16/bf16/f8 (f64::MIN as f32)
  and f64::MIN in f64, and clamp(+inf) on f64 is f64::MAX.
* Integers: min and max must be integers (or bools). They are not limited to the
  dtype: the clamp runs in int64 (uint64 for unsigned dtypes) and the result wraps to
  the width like Rust's `as` (i8 5 with min=200 is 200 as i8 = -56). Defaults are
  i64::MIN/i64::MAX (0/u64::MAX unsigned). A negative bound on an unsigned dtype is an
  error. i4/u4 follow upstream's packed kernel: the bounds are first limited to the
  4-bit range (min from below, max from above).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.dtypes import INT_RANGES
from oi_compiler.ops.reference.core import UNSIGNED, convert, dtype_of, int_scalar, non_negative, widen_all
from oi_compiler.ops.reference.settings import as_int, read_number
from oi_compiler.ops.reference.shapes import fail


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (x float)."""
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


_ROUND = {"floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "round": round_half_away}


def rounding(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    return convert(_ROUND[op](x) if x.dtype.kind == "f" else x, out)


F64_MAX = float(np.finfo(np.float64).max)


def _int_bound(op: str, settings: Mapping[str, Any], name: str, dtype: str) -> int:
    """min/max for an integer dtype: i64 (u64 for unsigned) values as upstream reads them."""
    unsigned = dtype in UNSIGNED
    if name not in settings:  # i64::MIN/MAX, or 0/u64::MAX
        defaults = (0, (1 << 64) - 1) if unsigned else (-(1 << 63), (1 << 63) - 1)
        value = defaults[0] if name == "min" else defaults[1]
    else:
        given = read_number(op, settings, name)
        integer = as_int(given)
        if integer is None:
            raise fail(op, f"setting {name} must be an integer for integer inputs, got {given!r}")
        math = np.dtype(np.uint64 if unsigned else np.int64)  # `UInt(v) as i64` wraps
        value = int(int_scalar(non_negative(op, name, integer, dtype), math))
    if dtype in ("i4", "u4"):  # packed kernel: min.max(type min), max.min(type max)
        low, high = INT_RANGES[dtype]
        value = max(value, low) if name == "min" else min(value, high)
    return value


def clamp(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    if x.dtype.kind == "f":
        low = x.dtype.type(float(read_number(op, settings, "min", -F64_MAX)))
        high = x.dtype.type(float(read_number(op, settings, "max", F64_MAX)))
        return convert(np.fmin(np.fmax(x, low), high), out)  # Rust f64::max/min drop NaN
    dtype = dtype_of(inputs[0])
    low = int_scalar(_int_bound(op, settings, "min", dtype), x.dtype)
    high = int_scalar(_int_bound(op, settings, "max", dtype), x.dtype)
    return convert(np.minimum(np.maximum(x, low), high), out)


KERNELS = {"clamp": clamp, "floor": rounding, "ceil": rounding, "round": rounding, "trunc": rounding}
