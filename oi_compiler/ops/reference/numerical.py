"""Numerical: relu and matmul.

relu (upstream CPU kernel): `y = x >= 0 ? x : x * alpha; y = min(y, clamp_max)`,
defaults alpha = 0 and clamp_max = +inf (integers: i64::MAX). Floats compute in
float32 (float64 for f64) with alpha/clamp_max rounded to that dtype; integers
compute in int64 (alpha and clamp_max must be integers) and wrap to the width.

matmul: `[..., M, K] x [..., K, N] -> [..., M, N]`, batch dims broadcast like
numpy, rank >= 2. Low-precision floats compute in float32 and round once at the
end; integers and bools compute in int64/uint64 and wrap (bool: OR of ANDs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, int_scalar, widen_all
from oi_compiler.ops.reference.settings import as_int, read_number
from oi_compiler.ops.reference.shapes import fail


def _int_setting(op: str, settings: Mapping[str, Any], name: str, default: int) -> int:
    value = read_number(op, settings, name, default)
    if as_int(value) is None:
        raise fail(op, f"setting {name} must be an integer for integer inputs, got {value!r}")
    return int(value)


def relu(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    if x.dtype.kind == "f":
        alpha = x.dtype.type(read_number(op, settings, "alpha", 0.0))
        clamp_max = x.dtype.type(read_number(op, settings, "clamp_max", float("inf")))
    else:
        int64_max = (1 << 63) - 1
        alpha = int_scalar(_int_setting(op, settings, "alpha", 0), x.dtype)
        limit = _int_setting(op, settings, "clamp_max", int64_max)
        low, high = (0, (1 << 64) - 1) if x.dtype.kind == "u" else (-(1 << 63), int64_max)
        clamp_max = x.dtype.type(min(max(limit, low), high))
    y = np.where(x >= 0, x, x * alpha)
    return convert(np.where(y > clamp_max, clamp_max, y), out)


def matmul(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(np.matmul(a, b), out)


KERNELS = {"relu": relu, "matmul": matmul}
