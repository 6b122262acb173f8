"""Comparison: eq, ne, lt, le, gt, ge (-> bool).

Both inputs are compared in their common math dtype (exact for every DSL
dtype). Any comparison with NaN is false except `ne`, which is true (IEEE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, widen_all

_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def compare(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(_COMPARE[op](a, b), out)


KERNELS = dict.fromkeys(_COMPARE, compare)
