"""Mutation: fill.

fill(x, value=v) returns an array of x's shape and dtype filled with v (the
setting is required). Float dtypes take any number, rounded like a computed
result; integer dtypes need an integer (or bool) and wrap it to the width
(`value=300` on u8 is 44, like Rust's `as`), and a negative value on an unsigned
dtype is an error (upstream's `fill_value_u64`); bool takes a bool or an integer
(`!= 0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.dtypes import FLOAT_DTYPES
from oi_compiler.ops.reference.core import convert, int_scalar, non_negative
from oi_compiler.ops.reference.settings import as_int, read_number
from oi_compiler.ops.reference.shapes import fail


def fill(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    value = read_number(op, settings, "value")
    shape = inputs[0].shape
    if out in FLOAT_DTYPES:
        return convert(np.full(shape, float(value), np.float64), out)
    if as_int(value) is None:
        raise fail(op, f"setting value must be an integer or bool for {out}, got {value!r}")
    math = np.dtype(np.int64 if out.startswith("i") else np.uint64)
    integer = non_negative(op, "value", int(value), out)
    return convert(np.full(shape, int_scalar(integer, math), math), out)


KERNELS = {"fill": fill}
