"""Activation nests (decoder ops): exp, log, sqrt, rsqrt, tanh, sigmoid, silu, gelu, softmax.

Float inputs; the body computes in f32 (f64 for f64) and rounds once to the output.

* exp/log/sqrt/tanh are the `math` ops; rsqrt is `1 / sqrt(x)` (two roundings, as the
  reference); sigmoid is the overflow-free `x >= 0 ? 1 / (1 + e) : e / (1 + e)` with
  `e = exp(-|x|)`; silu is `x * sigmoid(x)`.
* gelu "none" computes `0.5 x (1 + erf(x / sqrt 2))` in f64 (`math.erf`) and rounds to
  f32; "tanh" is `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))` in f32 (`x**3` as
  `math.powf(x, 3)`).
* softmax(axis) has three phases over temporaries of the reduced shape: `m = max(x)` along
  the axis (`linalg.fill` -inf, `arith.maximumf`, which propagates NaN like numpy's max),
  then `e = exp(x - m)` stored in the output (in an f32 temporary for f16/bf16 outputs) with
  `s = sum(e)`, then the parallel `out = e / s`. The sum is marked `reassoc` (numpy's sum is
  pairwise, the reference fixes no order), so LLVM vectorises it. An all -inf slice gives
  NaN (-inf - -inf), as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import math as mathd
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import (
    F64_DOMAIN,
    Scalar,
    float_domain,
    narrow,
    reassociable,
    require_float,
    resize_float,
    widen,
)
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    REDUCTION,
    Accumulator,
    alloc,
    dealloc,
    elementwise,
    fill,
    generic,
    identity,
    pointwise,
    rank,
    reduced_map,
    reduced_sizes,
    reduction,
)
from oi_compiler.ops.reference.settings import read_int, read_str
from oi_compiler.ops.reference.shapes import fail, normalize_axis


def sigmoid_of(s: Scalar, x: SSAValue) -> SSAValue:
    e = s.exp(s.neg(s.abs(x)))
    one = s.const(1.0)
    denominator = s.add(one, e)
    return s.select(s.cmp("ge", x, s.const(0.0)), s.divf(one, denominator), s.divf(e, denominator))


_UNARY = {
    "exp": lambda s, x: s.exp(x),
    "log": lambda s, x: s.unary(mathd.LogOp, x),
    "sqrt": lambda s, x: s.sqrt(x),
    "rsqrt": lambda s, x: s.divf(s.const(1.0), s.sqrt(x)),
    "tanh": lambda s, x: s.unary(mathd.TanhOp, x),
    "sigmoid": sigmoid_of,
    "silu": lambda s, x: s.mul(x, sigmoid_of(s, x)),
}


def unary(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
          in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    pointwise(b, inputs, output, in_dtypes, out, float_domain(in_dtypes), _UNARY[op])


def gelu(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    approximate = read_str(op, settings, "approximate", "none")
    domain = float_domain(in_dtypes)
    if approximate == "tanh":

        def fn(s: Scalar, x: SSAValue) -> SSAValue:
            cube = s.pow(x, s.const(3.0))  # numpy's x**3 is pow
            inner = s.mul(s.const(math.sqrt(2 / math.pi)), s.add(x, s.mul(s.const(0.044715), cube)))
            return s.mul(s.mul(s.const(0.5), x), s.add(s.const(1.0), s.unary(mathd.TanhOp, inner)))

        pointwise(b, inputs, output, in_dtypes, out, domain, fn)
        return
    if approximate != "none":
        raise fail(op, f'unsupported approximate {approximate!r} (expected "none" or "tanh")')

    def body(bb: Builder, args: tuple) -> SSAValue:
        s = Scalar(bb, F64_DOMAIN)
        x = widen(bb, args[0], in_dtypes[0], F64_DOMAIN)
        erf = s.unary(mathd.ErfOp, s.divf(x, s.const(math.sqrt(2))))
        y = s.mul(s.mul(s.const(0.5), x), s.add(s.const(1.0), erf))
        return narrow(bb, resize_float(bb, y, domain.type), domain, out)

    elementwise(b, inputs, output, body)


def softmax(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
            in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    (x,) = inputs
    n = rank(x)
    axis = normalize_axis(op, read_int(op, settings, "axis", -1), n)
    domain = float_domain(in_dtypes)
    dtype = in_dtypes[0]
    rows = reduced_sizes(b, x, [axis], False)
    top, total = alloc(b, domain.type, rows), alloc(b, domain.type, rows)
    s = Scalar(b, domain)
    fill(b, s.const(float("-inf")), top)

    def row_max(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, max)
        t = Scalar(bb, domain)
        return [t.max_propagating(args[1], t.widen(args[0], dtype))]

    reduction(b, x, [top], [axis], False, row_max)

    # e = exp(x - m), kept in the output (or a temporary of the math dtype for a narrower one,
    # so that it is rounded once): the last phase divides it, not a second exp
    exps = Accumulator.make(b, output, out, domain).buffer
    row_map = reduced_map(n, [axis], False)

    def exp_and_sum(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, max, e, sum)
        t = Scalar(bb, domain)
        e = t.exp(t.sub(t.widen(args[0], dtype), args[1]))
        return [e, reassociable(t.add(args[3], e))]

    fill(b, s.const(0.0), total)
    generic(b, [x, top], [exps, total], [identity(n), row_map, identity(n), row_map],
            [REDUCTION if d == axis else PARALLEL for d in range(n)], exp_and_sum)  # fmt: skip

    def normalize(bb: Builder, args: tuple) -> list[SSAValue]:  # (e, sum, out)
        t = Scalar(bb, domain)
        return [t.narrow(t.divf(args[0], args[1]), out)]

    generic(b, [exps, total], [output], [identity(n), row_map, identity(n)], [PARALLEL] * n, normalize)
    for temporary in (top, total, exps):
        if temporary is not output:
            dealloc(b, temporary)


BUILDERS = {**dict.fromkeys(_UNARY, unary), "gelu": gelu, "softmax": softmax}
