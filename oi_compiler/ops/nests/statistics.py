"""Statistics nests: sign (-> i8), min, max.

Parallel generics. sign is `(x > 0) - (x < 0)` (NaN and -0.0 give 0); min and max of
floats ignore a NaN operand (`arith.minnumf`/`maxnumf`, numpy fmin/fmax), integers use
the signed or unsigned min/max of their math domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import I64, Scalar, domain_of, emit
from oi_compiler.ops.nests.structured import pointwise


def _as_int(s: Scalar, flag: SSAValue) -> SSAValue:
    return emit(s.b, arith.ExtUIOp(flag, I64))


def sign(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)

    def fn(s: Scalar, x: SSAValue) -> SSAValue:
        zero = s.const(0)
        return emit(s.b, arith.SubiOp(_as_int(s, s.gt(x, zero)), _as_int(s, s.lt(x, zero))))

    # the difference is an i64 in [-1, 1]; it narrows as a signed value
    pointwise(b, inputs, output, in_dtypes, out, domain, fn, result_domain=domain_of(["i64"]))


def extreme(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
            in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    if op == "min":
        pointwise(b, inputs, output, in_dtypes, out, domain, lambda s, x, y: s.minimum(x, y))
    else:
        pointwise(b, inputs, output, in_dtypes, out, domain, lambda s, x, y: s.maximum(x, y))


BUILDERS = {"sign": sign, "min": extreme, "max": extreme}
