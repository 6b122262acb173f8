"""Arithmetic: add, sub, mul, div, floor_div, rem, fma, neg, abs, recip.

Inputs are computed in their math dtype (`core.widen`: float32/float64,
int64/uint64) and converted to the output dtype, so integers wrap around at
the output width and accumulate mode (`acc=[i32]` on i8 inputs) computes
without overflow. Bools compute as the integers 0/1 and convert back with
`!= 0`, so add is OR, mul is AND, sub is XOR (upstream's bool kernels).

Division (upstream's CPU kernels): a zero divisor writes `div_by_zero_mask`
(default NaN for floats, 0 for integers) in div, floor_div and recip; a negative
mask on unsigned inputs is an error; rem by zero gives 0 for integers. Integer div
truncates toward zero, floor_div is Rust's `div_euclid` (the remainder is never
negative), rem is Rust's `%` (truncated, the sign of the dividend).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, int_scalar, trunc_div, widen_all
from oi_compiler.ops.reference.settings import as_int, is_bool, read_number
from oi_compiler.ops.reference.shapes import fail


def add(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(a + b, out)


def sub(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(a - b, out)


def mul(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return convert(a * b, out)


def fma(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b, c = widen_all(inputs)
    return convert(a * b + c, out)  # not fused, like upstream's `a * b + c`


def neg(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (a,) = widen_all(inputs)
    return convert(np.negative(a), out)


def abs_(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (a,) = widen_all(inputs)
    return convert(np.abs(a), out)  # wrapping_abs: abs(i8 -128) = -128, 128 with acc=[i16]


def division_mask(op: str, settings: Mapping[str, Any], dtype: np.dtype) -> np.generic:
    """`div_by_zero_mask` in the math dtype (default NaN for floats, 0 for integers).

    On unsigned inputs (math dtype uint64) a negative mask is an error, as upstream's
    `div_mask_u64` has it.
    """
    if dtype.kind == "f":
        return dtype.type(read_number(op, settings, "div_by_zero_mask", float("nan")))
    value = read_number(op, settings, "div_by_zero_mask", 0)
    if not is_bool(value) and as_int(value) is None:
        raise fail(op, f"setting div_by_zero_mask must be an integer for integer inputs, got {value!r}")
    if dtype.kind == "u" and int(value) < 0:
        raise fail(op, "div_by_zero_mask must be non-negative for unsigned dtype")
    return int_scalar(int(value), dtype)


def _divide(op: str, a: np.ndarray, b: np.ndarray, settings: Mapping[str, Any], out: str) -> np.ndarray:
    zero = b == 0
    mask = division_mask(op, settings, a.dtype)
    if a.dtype.kind == "f":
        q = np.floor(a / b) if op == "floor_div" else a / b
    else:
        safe = np.where(zero, np.ones_like(b), b)
        q = euclid_div(a, safe) if op == "floor_div" else trunc_div(a, safe)
    return convert(np.where(zero, mask, q), out)


def euclid_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rust's `div_euclid` (b != 0): the quotient whose remainder is in [0, |b|)."""
    q = a // b
    if a.dtype.kind == "i":
        q = np.where(a - q * b < 0, q + 1, q)
    return q


def div(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    return _divide(op, a, b, settings, out)


def recip(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (b,) = widen_all(inputs)
    return _divide(op, np.ones_like(b), b, settings, out)


def rem(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = widen_all(inputs)
    if a.dtype.kind == "f":
        return convert(np.fmod(a, b), out)  # Rust `%` on floats; x % 0 = NaN
    zero = b == 0
    r = np.fmod(a, np.where(zero, np.ones_like(b), b))
    return convert(np.where(zero, np.zeros_like(r), r), out)


KERNELS = {
    "add": add,
    "sub": sub,
    "mul": mul,
    "div": div,
    "floor_div": div,
    "rem": rem,
    "fma": fma,
    "neg": neg,
    "abs": abs_,
    "recip": recip,
}
