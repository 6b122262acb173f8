"""Bitwise nests: and, or, xor, not, shl, shr (by the `bits` setting), popcount (-> u8).

Parallel generics in the 64-bit domain (sign- or zero-extended inputs), narrowed to the
width, which keeps exactly the dtype's two's-complement bits. bool is logical (`not` is
`x xor 1`). The shift count is a constant: `max(bits, 0)` modulo 64 (modulo 8 for
i4/u4), as the reference reads it; shl is `shli` and shr is `shrsi` for signed dtypes
and `shrui` for unsigned ones, on the extended value, so counts of the width or more give
0 (or -1 for a negative signed value). popcount counts the ones of the value masked to
its width (`math.ctpop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import Scalar, bits, domain_of, emit
from oi_compiler.ops.nests.structured import pointwise
from oi_compiler.ops.reference.settings import read_int

_BINARY = {"and": arith.AndIOp, "or": arith.OrIOp, "xor": arith.XOrIOp}


def binary(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    fn = lambda s, x, y: emit(s.b, _BINARY[op](x, y))  # noqa: E731
    pointwise(b, inputs, output, in_dtypes, out, domain_of(in_dtypes), fn)


def invert(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    ones = 1 if in_dtypes[0] == "bool" else -1
    fn = lambda s, x: emit(s.b, arith.XOrIOp(x, s.const(ones)))  # noqa: E731
    pointwise(b, inputs, output, in_dtypes, out, domain_of(in_dtypes), fn)


def shift(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
          in_dtypes: list[str], out: str) -> None:  # fmt: skip
    count = max(read_int(op, settings, "bits"), 0)
    count %= 8 if in_dtypes[0] in ("i4", "u4") else 64
    domain = domain_of(in_dtypes)

    def fn(s: Scalar, x: SSAValue) -> SSAValue:
        if op == "shl":
            return emit(s.b, arith.ShLIOp(x, s.const(count)))
        return emit(s.b, (arith.ShRSIOp if s.signed else arith.ShRUIOp)(x, s.const(count)))

    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


def popcount(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
             in_dtypes: list[str], out: str) -> None:  # fmt: skip
    mask = (1 << bits(in_dtypes[0])) - 1

    def fn(s: Scalar, x: SSAValue) -> SSAValue:
        return emit(s.b, mathd.CtPopOp(emit(s.b, arith.AndIOp(x, s.const(mask)))))

    pointwise(b, inputs, output, in_dtypes, out, domain_of(in_dtypes), fn)


BUILDERS = {**dict.fromkeys(_BINARY, binary), "not": invert, "shl": shift, "shr": shift, "popcount": popcount}
