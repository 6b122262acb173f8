"""Casting: cast(x, to=dtype, rounding_mode=..., saturate=...).

* to a float dtype: the value goes through float64 then float32 (upstream's
  `to_f64` then `from_f32`), rounding to nearest-even at each step; f64 is
  reached directly. Overflow gives +-inf (f8 is e5m2, which has inf).
* float to integer: first rounded by `rounding_mode` (default "trunc";
  "floor", "ceil", "nearest" = half away from zero like Rust's `f64::round`),
  then NaN -> 0 and
  - `saturate=true` (default): clamped to the dtype's range (+-inf too);
  - `saturate=false`: wrapped modulo 2**bits (two's complement), +-inf -> 0.
* integer to integer: `saturate=true` clamps to the target range,
  `saturate=false` wraps. (Upstream only implements widening casts here and
  rejects the rest at run time; this reference defines them all.)
* to bool: `x != 0` (NaN -> true).

Upstream's `value as i8` saturates even with `saturate=false`; this reference
gives the flag its documented meaning instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.dtypes import FLOAT_DTYPES, INT_RANGES
from oi_compiler.ops.reference.core import SIGNED, bits, convert, dtype_of, int_scalar, widen, wrap
from oi_compiler.ops.reference.rounding import round_half_away
from oi_compiler.ops.reference.settings import read_bool, read_str
from oi_compiler.ops.reference.shapes import fail

ROUNDING_MODES = {"trunc": np.trunc, "floor": np.floor, "ceil": np.ceil, "nearest": round_half_away}


def exact_mod64(v: np.ndarray) -> np.ndarray:
    """Integer-valued finite float64 `v` modulo 2**64, exactly, as uint64."""
    r = np.fmod(v, 2.0**64)
    high = np.floor(r / 2.0**32)
    low = r - high * 2.0**32
    return (high.astype(np.int64).astype(np.uint64) << np.uint64(32)) + low.astype(np.uint64)


def float_to_int(v: np.ndarray, out: str, saturate: bool) -> np.ndarray:
    """Rounded float64 values as integer dtype `out` (NaN -> 0)."""
    if not saturate:
        return wrap(exact_mod64(np.where(np.isfinite(v), v, 0.0)), out)
    low, high = INT_RANGES[out]
    under = v < float(low)
    over = v >= 2.0 ** (bits(out) - 1 if out in SIGNED else bits(out))
    base = exact_mod64(np.where(np.isnan(v) | under | over, 0.0, v))
    base = np.where(under, int_scalar(low, np.dtype(np.uint64)), base)
    return wrap(np.where(over, int_scalar(high, np.dtype(np.uint64)), base), out)


def int_to_int(w: np.ndarray, out: str, saturate: bool) -> np.ndarray:
    """int64/uint64 values as integer dtype `out`."""
    if saturate:
        low, high = INT_RANGES[out]
        info = np.iinfo(w.dtype)
        w = np.clip(w, w.dtype.type(max(low, int(info.min))), w.dtype.type(min(high, int(info.max))))
    return wrap(w, out)


def cast(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    mode = read_str(op, settings, "rounding_mode", "trunc")
    if mode not in ROUNDING_MODES:
        raise fail(op, f"unsupported rounding_mode {mode!r} (expected trunc, floor, ceil or nearest)")
    saturate = read_bool(op, settings, "saturate", True)
    w = widen(inputs[0])
    if out in FLOAT_DTYPES:
        return convert(w.astype(np.float64), out)
    if out == "bool":
        return convert(w != 0, out)
    if dtype_of(inputs[0]) in FLOAT_DTYPES:
        return float_to_int(ROUNDING_MODES[mode](w.astype(np.float64)), out, saturate)
    return int_to_int(w, out, saturate)


KERNELS = {"cast": cast}
