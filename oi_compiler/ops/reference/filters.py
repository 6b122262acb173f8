"""Filters: is_finite, is_nan, is_inf, is_neg (-> bool) and filter.

is_finite is a reduction to one scalar bool (upstream): true when every
element is finite (true for an empty input). is_nan/is_inf/is_neg are
elementwise. is_neg on floats is the sign bit (upstream's `is_sign_negative()`:
true for -0.0 and -NaN, false for +NaN), on signed integers `x < 0`, and always
false on unsigned ones; integers are never NaN or infinite.

filter(a, b, cond) = `cond != 0 ? a : b` elementwise; cond may have any dtype
(a NaN cond counts as non-zero, as in IEEE `NaN != 0`), a and b the output's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, widen, widen_all


def is_finite(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    return convert(np.isfinite(x).all() if x.dtype.kind == "f" else True, out)


def elementwise_test(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    if op == "is_neg":
        return convert(np.signbit(x) if x.dtype.kind == "f" else x < 0, out)
    if x.dtype.kind != "f":
        return convert(np.zeros(x.shape, np.bool_), out)
    return convert(np.isnan(x) if op == "is_nan" else np.isinf(x), out)


def select(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs[:2])
    cond = widen(inputs[2]) != 0
    return convert(np.where(cond, a, b), out)


KERNELS = {
    "is_finite": is_finite,
    "is_nan": elementwise_test,
    "is_inf": elementwise_test,
    "is_neg": elementwise_test,
    "filter": select,
}
