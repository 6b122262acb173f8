"""Numerical nests: relu and matmul.

relu is one parallel generic: `y = x >= 0 ? x : x * alpha; y = y > clamp_max ? clamp_max : y`
in the math domain (floats: alpha and clamp_max rounded to f32/f64; integers: the product
wraps at 64 bits and the comparison is a 64-bit one, as the reference's int64 math).

matmul `[..., M, K] x [..., K, N]` is `linalg.fill` with 0 and one generic over the loops
`(batch..., m, n, k)` with k, the innermost loop, a `reduction`: `acc = acc + a[.., m, k] *
b[.., k, n]` (a separate multiply and add, no FMA), so each output element sums over k in
ascending order as the reference's loop does. Batch dims broadcast through the maps (a
static size-1 batch dim reads index 0, a missing one is dropped). Floats accumulate in
f32 (f64): f16/bf16 outputs through an f32 temporary rounded once at the end. Integers
accumulate in the output at its width (accumulate mode extends the inputs); bool is
OR-of-ANDs. An output that is also an input (inplace) accumulates in a temporary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import Scalar, domain_of, emit, float_setting, int_const
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    REDUCTION,
    ZERO,
    Accumulator,
    fill,
    generic,
    make_map,
    pointwise,
    shape,
)
from oi_compiler.ops.reference.settings import as_int, read_number
from oi_compiler.ops.reference.shapes import fail

INT64_MAX = (1 << 63) - 1


def _int_setting(op: str, settings: Mapping[str, Any], name: str, default: int) -> int:
    value = read_number(op, settings, name, default)
    if as_int(value) is None:
        raise fail(op, f"setting {name} must be an integer for integer inputs, got {value!r}")
    return int(value)


def relu(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    if domain.is_float:
        alpha: Any = float_setting(op, settings, "alpha", 0.0)
        clamp_max: Any = float_setting(op, settings, "clamp_max", float("inf"))
    else:
        alpha = settings["alpha"] if isinstance(settings.get("alpha"), SSAValue) else _int_setting(op, settings, "alpha", 0)
        limit = settings.get("clamp_max")
        if isinstance(limit, SSAValue):  # read at run time (i64): an unsigned domain starts at 0
            unsigned = domain.kind == "unsigned"
            clamp_max = emit(b, arith.MaxSIOp(limit, int_const(b, 0, limit.type))) if unsigned else limit
        else:
            limit = _int_setting(op, settings, "clamp_max", INT64_MAX)
            low, high = (0, (1 << 64) - 1) if domain.kind == "unsigned" else (-(1 << 63), INT64_MAX)
            clamp_max = min(max(limit, low), high)

    def fn(s: Scalar, x: SSAValue) -> SSAValue:
        y = s.select(s.cmp("ge", x, s.const(0)), x, s.mul(x, s.const(alpha)))
        limit = s.const(clamp_max)
        return s.select(s.gt(y, limit), limit, y)

    pointwise(b, inputs, output, in_dtypes, out, domain, fn)


def batch_results(operand: tuple, out: tuple) -> list:
    """Map results of an operand's batch dims (right-aligned to the output's, broadcasting)."""
    batch, own = len(out) - 2, operand[:-2]
    results: list = []
    for j, d in enumerate(own):
        loop = batch - len(own) + j
        results.append(ZERO if d == 1 and out[loop] != 1 else loop)
    return results


def matmul(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    x, y = inputs
    domain = domain_of(in_dtypes)
    out_shape = shape(output)
    r = len(out_shape)
    # loops: batch..., i, k, j. The reduction sits between the output's last two dims, so the
    # innermost loop walks a row of y and of the output with unit stride (it vectorises) while
    # each output element still accumulates in ascending k, as the reference does.
    i, k, j = r - 2, r - 1, r
    maps = [
        make_map(r + 1, [*batch_results(shape(x), out_shape), i, k]),
        make_map(r + 1, [*batch_results(shape(y), out_shape), k, j]),
        make_map(r + 1, [*range(r - 2), i, j]),
    ]
    acc = Accumulator.make(b, output, out, domain, aliases=inputs)
    fill(b, Scalar(b, domain).narrow(Scalar(b, domain).const(0), acc.dtype), acc.buffer)

    def body(bb: Builder, args: tuple) -> list[SSAValue]:
        s = Scalar(bb, domain)
        product = s.mul(s.widen(args[0], in_dtypes[0]), s.widen(args[1], in_dtypes[1]))
        return [s.narrow(s.add(s.widen(args[2], acc.dtype), product), acc.dtype)]

    generic(b, [x, y], [acc.buffer], maps, [PARALLEL] * (r - 1) + [REDUCTION, PARALLEL], body)
    acc.finish(b)


BUILDERS = {"relu": relu, "matmul": matmul}
