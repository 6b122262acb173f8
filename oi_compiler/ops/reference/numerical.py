"""Numerical: relu and matmul.

relu (upstream CPU kernel): `y = x >= 0 ? x : x * alpha; y = min(y, clamp_max)`,
defaults alpha = 0 and clamp_max = +inf (integers: i64::MAX). Floats compute in
float32 (float64 for f64) with alpha/clamp_max rounded to that dtype; integers
compute in int64 (alpha and clamp_max must be integers) and wrap to the width.

matmul: `[..., M, K] x [..., K, N] -> [..., M, N]`, batch dims broadcast like
numpy, rank >= 2. Floats follow upstream's loop `acc = 0; acc = acc + a[m, k] *
b[k, n]` for k ascending, a separate multiply and add (no FMA), in float32
(float64 for f64); f8/f16/bf16 accumulate in float32 too and round once at the
end (upstream rounds to the narrow type after every step). Integers and bools
compute in int64/uint64 and wrap, which is exact in any order (bool: OR of ANDs).
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


def sequential_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a @ b` summed over k in ascending order from 0.0, one rounding per multiply and add.

    Each step is two vectorised numpy ops over the whole [..., M, N] accumulator, so the
    Python loop runs K times (BLAS would reorder and may fuse).
    """
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    acc = np.zeros(batch + (a.shape[-2], b.shape[-1]), a.dtype)
    columns = np.ascontiguousarray(np.moveaxis(a, -1, 0))[..., None]  # [K, ..., M, 1]
    rows = np.ascontiguousarray(np.moveaxis(b, -2, 0))[..., None, :]  # [K, ..., 1, N]
    product = np.empty_like(acc)
    for column, row in zip(columns, rows):
        np.multiply(column, row, out=product)
        np.add(acc, product, out=acc)
    return acc


def matmul(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    if a.dtype.kind == "f":
        return convert(sequential_matmul(a, b), out)
    return convert(np.matmul(a, b), out)


KERNELS = {"relu": relu, "matmul": matmul}
