"""Rounding: clamp, floor, ceil, round, trunc.

floor/ceil/trunc are the IEEE operations, computed in float32 (float64 for f64).
round rounds half away from zero (Rust's `f32::round`: 2.5 -> 3, -0.5 -> -1).
On integer inputs (outside upstream's support set) they return the input.

clamp: `y = x < min ? min : x; y = y > max ? max : y` (so NaN stays NaN and
max wins when min > max). Defaults: the whole range (-inf/+inf for floats).
For integer dtypes min and max must be integers; they are limited to the
dtype's range first (min=-5 on u8 is 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.dtypes import INT_RANGES
from oi_compiler.ops.reference.core import convert, dtype_of, widen_all
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


def _int_bound(op: str, settings: Mapping[str, Any], name: str, dtype: str) -> int:
    low, high = INT_RANGES[dtype]
    value = read_number(op, settings, name, low if name == "min" else high)
    if as_int(value) is None:
        raise fail(op, f"setting {name} must be an integer for integer inputs, got {value!r}")
    return min(max(int(value), low), high)


def clamp(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    if x.dtype.kind == "f":
        low = x.dtype.type(read_number(op, settings, "min", float("-inf")))
        high = x.dtype.type(read_number(op, settings, "max", float("inf")))
    else:
        dtype = dtype_of(inputs[0])
        low = x.dtype.type(_int_bound(op, settings, "min", dtype))
        high = x.dtype.type(_int_bound(op, settings, "max", dtype))
    y = np.where(x < low, low, x)
    return convert(np.where(y > high, high, y), out)


KERNELS = {"clamp": clamp, "floor": rounding, "ceil": rounding, "round": rounding, "trunc": rounding}
