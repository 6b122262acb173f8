"""Filter nests: is_finite (-> one bool), is_nan, is_inf, is_neg (-> bool) and filter.

* is_finite is a reduction to a rank-0 bool: `linalg.fill` with true, then one generic
  whose loops all reduce, `acc = acc and |x| < inf` (an ordered compare: false on NaN).
  Integer inputs are always finite (just the fill).
* is_nan is `x uno x`, is_inf `|x| == inf`, is_neg the sign bit of a float (the f32/f64
  value bitcast to an integer, `< 0`: true for -0.0 and -NaN) or `x < 0` for a signed
  integer (false for unsigned).
* filter(a, b, cond) selects `cond != 0 ? a : b` on the stored elements (a NaN cond is
  non-zero); the maps broadcast nothing, the shapes are equal. Values of two dtypes, or of
  another dtype than the output, go through their math dtype and back, as the reference's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import F64, I1, Scalar, domain_of, emit, int_const, narrow, widen
from oi_compiler.ops.nests.structured import elementwise, fill, pointwise, rank, reduction


def _finite(s: Scalar, x: SSAValue) -> SSAValue:
    return emit(s.b, arith.CmpfOp(s.unary(mathd.AbsFOp, x), s.const(float("inf")), "olt"))


def is_finite(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
              in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    domain = domain_of(in_dtypes)
    fill(b, int_const(b, 1, I1), output)
    if not domain.is_float:
        return

    def body(bb: Builder, args: tuple) -> list[SSAValue]:
        s = Scalar(bb, domain)
        return [s.bool_and(args[1], _finite(s, s.widen(args[0], in_dtypes[0])))]

    reduction(b, x, [output], list(range(rank(x))), False, body)


def _sign_bit(s: Scalar, x: SSAValue) -> SSAValue:
    as_int = emit(s.b, arith.BitcastOp(x, IntegerType(64 if x.type == F64 else 32)))
    return emit(s.b, arith.CmpiOp(as_int, int_const(s.b, 0, as_int.type), "slt"))


def elementwise_test(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
                     in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)

    def fn(s: Scalar, x: SSAValue) -> SSAValue:
        if not s.is_float:
            if op == "is_neg" and s.signed:
                return s.lt(x, s.const(0))
            return int_const(s.b, 0, I1)
        if op == "is_nan":
            return emit(s.b, arith.CmpfOp(x, x, "uno"))
        if op == "is_inf":
            return emit(s.b, arith.CmpfOp(s.unary(mathd.AbsFOp, x), s.const(float("inf")), "oeq"))
        return _sign_bit(s, x)

    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


def select(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    cond_dtype = in_dtypes[2]
    cond_domain = domain_of([cond_dtype])
    exact = in_dtypes[0] == in_dtypes[1] == out  # a copy of the stored elements, bit for bit
    domain = domain_of(in_dtypes[:2])  # else, as the reference: both values in their math dtype, then `convert`

    def body(bb: Builder, args: tuple) -> SSAValue:
        cond = narrow(bb, widen(bb, args[2], cond_dtype, cond_domain), cond_domain, "bool")
        if exact:
            return emit(bb, arith.SelectOp(cond, args[0], args[1]))
        a, b_ = (widen(bb, v, d, domain) for v, d in zip(args[:2], in_dtypes[:2]))
        return narrow(bb, emit(bb, arith.SelectOp(cond, a, b_)), domain, out)

    elementwise(b, inputs, output, body)


BUILDERS = {
    "is_finite": is_finite,
    "is_nan": elementwise_test,
    "is_inf": elementwise_test,
    "is_neg": elementwise_test,
    "filter": select,
}
