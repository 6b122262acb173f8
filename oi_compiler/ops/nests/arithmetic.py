"""Arithmetic nests: add, sub, mul, div, floor_div, rem, fma, neg, abs, recip.

Each is one parallel `linalg.generic` over the output, inputs broadcast to it by their
indexing maps (add/sub/mul/div/floor_div/rem). The body widens the elements into the
math domain (f32/f64, i64 signed or unsigned), computes, and narrows once, so integers
wrap at the output width and accumulate mode (`acc=[i16]` on i8) extends the inputs.

Division never divides by zero, nor i64 min by -1 (undefined in arith/LLVM): the divisor
is replaced by 1 where it is 0 or -1 and the result selected afterwards (a zero divisor
gives `div_by_zero_mask`; x / -1 is the wrapping `0 - x`; rem by 0 or -1 is 0).
floor_div is Rust's `div_euclid` (truncated quotient, minus one step toward the
remainder's sign when the remainder is negative). Float floor_div is `floor(a / b)` with
the mask; float rem (C fmod, outside the op's dtype set) has no nest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import math as mathd
from xdsl.ir import SSAValue

from oi_compiler.errors import PassError
from oi_compiler.ops.nests.scalar import Domain, Scalar, domain_of
from oi_compiler.ops.nests.structured import pointwise
from oi_compiler.ops.reference.settings import as_int, is_bool, read_number
from oi_compiler.ops.reference.shapes import fail


def division_mask(op: str, settings: Mapping[str, Any], domain: Domain) -> int | float:
    """`div_by_zero_mask` as the reference reads it (NaN / 0 by default; integers wrap); a value read
    at run time is an f64 or i64 `SSAValue` (its sign checked by the step for an unsigned dtype)."""
    if isinstance(settings.get("div_by_zero_mask"), SSAValue):
        return settings["div_by_zero_mask"]
    if domain.is_float:
        return float(read_number(op, settings, "div_by_zero_mask", float("nan")))
    value = read_number(op, settings, "div_by_zero_mask", 0)
    if not is_bool(value) and as_int(value) is None:
        raise fail(op, f"setting div_by_zero_mask must be an integer for integer inputs, got {value!r}")
    if not domain.is_float and domain.kind == "unsigned" and int(value) < 0:
        raise fail(op, "div_by_zero_mask must be non-negative for unsigned dtype")
    return int(value)


def _binary(fn):
    def build(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
              in_dtypes: list[str], out: str) -> None:  # fmt: skip
        pointwise(b, inputs, output, in_dtypes, out, domain_of(in_dtypes), fn)

    return build


def safe_divisor(s: Scalar, y: SSAValue) -> tuple[SSAValue, SSAValue, SSAValue | None]:
    """(divisor with 0 and -1 replaced by 1, y == 0, y == -1 or None for unsigned)."""
    zero = s.is_zero(y)
    one = s.const(1)
    if not s.signed:
        return s.select(zero, one, y), zero, None
    minus_one = s.cmp("eq", y, s.const(-1))
    return s.select(s.bool_or(zero, minus_one), one, y), zero, minus_one


def quotient(s: Scalar, op: str, x: SSAValue, y: SSAValue, mask: int | float) -> SSAValue:
    """x / y as div (truncating), floor_div (div_euclid) or recip computes it, with the mask."""
    if s.is_float:
        q = s.divf(x, y)
        if op == "floor_div":
            q = s.unary(mathd.FloorOp, q)
        return s.select(s.is_zero(y), s.const(mask), q)
    safe, zero, minus_one = safe_divisor(s, y)
    q = s.div_int(x, safe)
    if minus_one is not None:
        q = s.select(minus_one, s.neg(x), q)
        if op == "floor_div":  # a negative remainder moves q one step: down for y > 0, up for y < 0
            r = s.sub(x, s.mul(q, y))
            step = s.select(s.gt(y, s.const(0)), s.sub(q, s.const(1)), s.add(q, s.const(1)))
            q = s.select(s.lt(r, s.const(0)), step, q)
    return s.select(zero, s.const(mask), q)


def divide(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    mask = division_mask(op, settings, domain)
    if op == "recip":
        fn = lambda s, x: quotient(s, op, s.const(1), x, mask)  # noqa: E731
    else:
        fn = lambda s, x, y: quotient(s, op, x, y, mask)  # noqa: E731
    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


def rem(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
        in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    if domain.is_float:
        raise PassError(f"op {op}: no loop nest for float inputs (C fmod)")

    def fn(s: Scalar, x: SSAValue, y: SSAValue) -> SSAValue:
        safe, _, _ = safe_divisor(s, y)  # x % 1 == 0 covers y == 0 and y == -1
        return s.rem_int(x, safe)

    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


BUILDERS = {
    "add": _binary(lambda s, x, y: s.add(x, y)),
    "sub": _binary(lambda s, x, y: s.sub(x, y)),
    "mul": _binary(lambda s, x, y: s.mul(x, y)),
    "fma": _binary(lambda s, x, y, z: s.add(s.mul(x, y), z)),  # not fused: two roundings
    "neg": _binary(lambda s, x: s.neg(x)),
    "abs": _binary(lambda s, x: s.abs(x)),  # wrapping: abs(i8 -128) = -128, 128 with acc=[i16]
    "div": divide,
    "floor_div": divide,
    "recip": divide,
    "rem": rem,
}
