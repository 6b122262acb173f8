"""Bitwise: and, or, xor, not, shl, shr (by the `bits` setting), popcount (-> u8).

Integers operate on their two's-complement bits at the dtype's width (i4/u4:
4 bits); bools are logical (`not true` is false). shl shifts zeros in and
drops bits past the width; shr is arithmetic for signed dtypes (the sign bit
is copied in) and logical for unsigned ones. `bits` is required and must be
an integer; a negative count shifts by 0 (upstream reads it as `max(0)`).
Upstream's kernels shift `value as i64` (`as u64` for unsigned) with Rust's
`wrapping_shl`/`wrapping_shr` and cast back with `as`, so the count is taken
modulo 64 for i8..i64 and u8..u64 (i8 1 << 9 is 512 as i8 = 0; a count of 64
shifts by 0, 65 by 1). i4/u4 use the packed kernels, which shift the value as
i8/u8: the count is taken modulo 8 and the result keeps the low 4 bits.
popcount counts the one bits of the two's-complement pattern (i8 -1 -> 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import bits, convert, dtype_of, widen_all, wrap
from oi_compiler.ops.reference.settings import read_int

_LOGICAL = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
_BITWISE = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}


def binary(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    if dtype_of(inputs[0]) == "bool":
        return convert(_LOGICAL[op](inputs[0], inputs[1]), out)
    a, b = widen_all(inputs)
    return convert(_BITWISE[op](a, b), out)


def invert(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    if dtype_of(inputs[0]) == "bool":
        return convert(np.logical_not(inputs[0]), out)
    (a,) = widen_all(inputs)
    return convert(np.invert(a), out)


def shift(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    count = max(read_int(op, settings, "bits"), 0)  # Int(v) => v.max(0) as u32
    count %= 8 if dtype_of(inputs[0]) in ("i4", "u4") else 64  # wrapping_shl/shr on i8/u8 or i64/u64
    (a,) = widen_all(inputs)
    if op == "shl":
        return wrap(a.astype(np.uint64) << np.uint64(count), out)
    return convert(a >> a.dtype.type(count), out)


def popcount(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (a,) = widen_all(inputs)
    pattern = a.astype(np.uint64) & np.uint64((1 << bits(dtype_of(inputs[0]))) - 1)
    return convert(np.bitwise_count(pattern), out)


KERNELS = {
    "and": binary,
    "or": binary,
    "xor": binary,
    "not": invert,
    "shl": shift,
    "shr": shift,
    "popcount": popcount,
}
