"""Casting nests: cast(x, to=dtype, rounding_mode=..., saturate=...).

One parallel generic; the body follows the reference step by step:

* to a float dtype: the value goes to f64 (`extf`, or `sitofp`/`uitofp` from integers),
  then `truncf` to f32, then to the dtype (f64 is reached directly);
* to bool: `x != 0` (`une`, so NaN is true);
* float to integer: in f64, rounded by `rounding_mode` (`math.trunc`/`floor`/`ceil`,
  `math.round` for "nearest", half away from zero), then
  - `saturate=true`: NaN -> 0, below the range -> min, at or above 2**(bits-1) (2**bits
    unsigned) -> max, the rest converted exactly (`fptosi`; `fptoui` for unsigned);
  - `saturate=false`: +-inf and NaN -> 0, the rest reduced exactly modulo 2**64
    (`r = v - trunc(v / 2**64) * 2**64` is exact, then folded into [-2**63, 2**63) and
    `fptosi`), then wrapped to the width;
* integer to integer: `saturate=true` clamps in the 64-bit domain to the target range
  (within the source's domain), `saturate=false` wraps (truncation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.ir import SSAValue

from oi_compiler.dtypes import FLOAT_DTYPES, INT_RANGES
from oi_compiler.ops.nests.scalar import (
    F64_DOMAIN,
    I64,
    SIGNED_DOMAIN,
    SIGNED_DTYPES,
    Scalar,
    bits,
    domain_of,
    emit,
    narrow,
    widen,
)
from oi_compiler.ops.nests.structured import elementwise
from oi_compiler.ops.reference.settings import read_bool, read_str
from oi_compiler.ops.reference.shapes import fail

ROUNDING = {"trunc": mathd.TruncOp, "floor": mathd.FloorOp, "ceil": mathd.CeilOp, "nearest": mathd.RoundOp}
TWO_63 = 2.0**63
TWO_64 = 2.0**64


def float_to_int(b: Builder, v: SSAValue, out: str, saturate: bool) -> SSAValue:
    """An integer-valued f64 `v` as a stored element of integer dtype `out`."""
    f = Scalar(b, F64_DOMAIN)
    i = Scalar(b, SIGNED_DOMAIN)
    if not saturate:
        finite = emit(b, arith.CmpfOp(f.unary(mathd.AbsFOp, v), f.const(float("inf")), "olt"))
        v = f.select(finite, v, f.const(0.0))
        r = f.sub(v, f.mul(f.unary(mathd.TruncOp, f.mul(v, f.const(1 / TWO_64))), f.const(TWO_64)))
        r = f.select(f.cmp("ge", r, f.const(TWO_63)), f.sub(r, f.const(TWO_64)), r)
        r = f.select(f.lt(r, f.const(-TWO_63)), f.add(r, f.const(TWO_64)), r)
        return narrow(b, emit(b, arith.FPToSIOp(r, I64)), SIGNED_DOMAIN, out)
    width = bits(out)
    signed = out in SIGNED_DTYPES
    low, high = INT_RANGES[out]
    under = f.lt(v, f.const(float(low)))
    over = f.cmp("ge", v, f.const(2.0 ** (width - 1 if signed else width)))
    nan = emit(b, arith.CmpfOp(v, v, "uno"))
    safe = f.select(i.bool_or(nan, i.bool_or(under, over)), f.const(0.0), v)
    value = emit(b, (arith.FPToSIOp if signed else arith.FPToUIOp)(safe, I64))
    value = i.select(under, i.const(low), value)
    value = i.select(over, i.const(high), value)
    return narrow(b, value, SIGNED_DOMAIN, out)


def cast(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    mode = read_str(op, settings, "rounding_mode", "trunc")
    if mode not in ROUNDING:
        raise fail(op, f"unsupported rounding_mode {mode!r} (expected trunc, floor, ceil or nearest)")
    saturate = read_bool(op, settings, "saturate", True)
    source = in_dtypes[0]

    def body(bb: Builder, args: tuple) -> SSAValue:
        x = args[0]
        if out in FLOAT_DTYPES:
            return narrow(bb, widen(bb, x, source, F64_DOMAIN), F64_DOMAIN, out)
        domain = domain_of([source])
        if out == "bool":
            return narrow(bb, widen(bb, x, source, domain), domain, out)
        if source in FLOAT_DTYPES:
            v = Scalar(bb, F64_DOMAIN).unary(ROUNDING[mode], widen(bb, x, source, F64_DOMAIN))
            return float_to_int(bb, v, out, saturate)
        s = Scalar(bb, domain)
        w = s.widen(x, source)
        if saturate:
            low, high = INT_RANGES[out]
            if domain.kind == "unsigned":
                low, high = max(low, 0), min(high, (1 << 64) - 1)
            else:
                low, high = max(low, -(1 << 63)), min(high, (1 << 63) - 1)
            w = s.minimum(s.maximum(w, s.const(low)), s.const(high))
        return s.narrow(w, out)

    elementwise(b, inputs, output, body)


BUILDERS = {"cast": cast}
