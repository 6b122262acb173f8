"""Numeric machinery shared by the reference kernels.

* The math dtype of a DSL dtype (`widen`): f8/f16/bf16/f32 compute in float32,
  f64 in float64, signed integers (i4 included) in int64, unsigned integers
  and bool in uint64 (a bool is the integer 0 or 1).
* Conversion of a result to the output dtype (`convert`): floats round to the
  nearest representable value per element (via float32 for every float dtype
  but f64); integers wrap around in two's complement at the dtype's width
  (`wrap`, i4/u4 included); bool is `value != 0`.
* `guarded(op, fn)`: the wrapper that makes a kernel follow the reference
  contract (shape checks first, numpy warnings silenced, a fresh result of the
  right dtype and shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from oi_compiler.dtypes import FLOAT_DTYPES, dtype_of_array, numpy_dtype
from oi_compiler.ops.reference.shapes import fail, shape_of
from oi_compiler.ops.registry import dtype_debug_name

SIGNED = frozenset({"i4", "i8", "i16", "i32", "i64"})
UNSIGNED = frozenset({"u4", "u8", "u16", "u32", "u64"})

Kernel = Callable[[str, list[np.ndarray], Mapping[str, Any], str], np.ndarray]


def bits(dtype: str) -> int:
    """The width of an integer or bool dtype."""
    return 1 if dtype == "bool" else int(dtype[1:])


def dtype_of(array: np.ndarray) -> str:
    """The DSL dtype of an input array (its numpy dtype must be a DSL dtype's)."""
    name = dtype_of_array(array.dtype)
    if name is None:
        raise ValueError(f"numpy dtype {array.dtype} is not a DSL dtype")
    return name


def math_dtype(dtypes: Sequence[str]) -> np.dtype:
    """The numpy dtype arithmetic on these DSL dtypes is done in."""
    if any(d in FLOAT_DTYPES for d in dtypes):
        return np.dtype(np.float64 if "f64" in dtypes else np.float32)
    if any(d in SIGNED for d in dtypes):
        return np.dtype(np.int64)
    return np.dtype(np.uint64)


def widen(array: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """`array` in its math dtype (or in `dtype`), as a new array."""
    return np.asarray(array).astype(dtype or math_dtype([dtype_of(array)]))


def widen_all(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays in one common math dtype."""
    common = math_dtype([dtype_of(a) for a in arrays])
    return [widen(a, common) for a in arrays]


def require_float(op: str, array: np.ndarray) -> np.ndarray:
    """`array` in float32 (float64 for f64); integer inputs are refused."""
    dtype = dtype_of(array)
    if dtype not in FLOAT_DTYPES:
        raise fail(op, f"does not support {dtype_debug_name(dtype)} inputs")
    return widen(array)


def wrap(values: np.ndarray, out_dtype: str) -> np.ndarray:
    """Integer `values` (int64/uint64/bool) reduced modulo 2**bits into `out_dtype`."""
    width = bits(out_dtype)
    raw = np.asarray(values).astype(np.uint64)
    if width < 64:
        raw &= np.uint64((1 << width) - 1)
    if out_dtype in SIGNED:
        signed = raw.astype(np.int64)
        if width < 64:
            signed = np.where(signed >= 1 << (width - 1), signed - (1 << width), signed)
        return np.asarray(signed).astype(numpy_dtype(out_dtype))
    return raw.astype(numpy_dtype(out_dtype))


def convert(values: Any, out_dtype: str) -> np.ndarray:
    """Math-dtype results as a new array of `out_dtype` (see the module docstring)."""
    values = np.asarray(values)
    if out_dtype == "bool":
        return np.asarray(values != 0)
    if out_dtype in FLOAT_DTYPES:
        step = np.float64 if out_dtype == "f64" else np.float32
        return values.astype(step).astype(numpy_dtype(out_dtype))
    if values.dtype.kind == "f":
        raise ValueError(f"float results need an explicit rounding to become {out_dtype}")
    return wrap(values, out_dtype)


def int_scalar(value: int, dtype: np.dtype) -> np.generic:
    """A Python integer as a scalar of int64/uint64 `dtype`, wrapping modulo 2**64."""
    value %= 1 << 64
    if dtype == np.int64 and value >= 1 << 63:
        value -= 1 << 64
    return dtype.type(value)


def non_negative(op: str, name: str, value: int, dtype: str) -> int:
    """An integer setting checked for an unsigned dtype (upstream rejects negative values)."""
    if dtype in UNSIGNED and value < 0:
        raise fail(op, f"{name} must be non-negative for unsigned dtype")
    return value


def trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (b != 0), wrapping like Rust's `wrapping_div`."""
    q = a // b
    if a.dtype.kind == "i":
        q = np.where((a % b != 0) & ((a < 0) != (b < 0)), q + 1, q)
    return q


def guarded(op: str, kernel: Kernel) -> Callable[..., np.ndarray]:
    """`kernel` behind the reference contract `(inputs, settings, out_dtype) -> new array`."""

    def reference(inputs: Sequence[Any], settings: Mapping[str, Any] | None, out_dtype: str) -> np.ndarray:
        arrays = [np.asarray(x) for x in inputs]
        settings = settings or {}
        expected = shape_of(op, [a.shape for a in arrays], settings)
        with np.errstate(all="ignore"):
            result = np.asarray(kernel(op, arrays, settings, out_dtype))
        if result.shape != expected or result.dtype != numpy_dtype(out_dtype):
            raise AssertionError(f"reference {op} made {result.dtype}{list(result.shape)}")
        if any(np.may_share_memory(result, a) for a in arrays):
            result = result.copy()
        return result

    reference.__name__ = reference.__qualname__ = f"{op}_reference"
    return reference
