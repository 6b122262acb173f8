"""Statistics: sign (-> i8), min, max.

sign is -1, 0 or 1 (NaN and -0.0 give 0). min and max of floats ignore a NaN
operand like Rust's `f32::min`/`f32::max` (numpy `fmin`/`fmax`); the result is
NaN only when both operands are NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, widen_all


def sign(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    return convert((x > 0).astype(np.int64) - (x < 0).astype(np.int64), out)


def minimum(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(np.fmin(a, b) if a.dtype.kind == "f" else np.minimum(a, b), out)


def maximum(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(np.fmax(a, b) if a.dtype.kind == "f" else np.maximum(a, b), out)


KERNELS = {"sign": sign, "min": minimum, "max": maximum}
