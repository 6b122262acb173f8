"""Reduction nests: sum_axis, mean_axis, prod_axis, max_axis, min_axis, argmax_axis, argmin_axis.

Each reduction is a generic over the input's dims whose reduced dims are `reduction`
iterators, accumulating into outputs of the reduced shape (`keepdims` keeps them as size 1
through a constant-0 result in the output's map). The loops run in the input's dim order,
so every output element meets its elements in row-major order of the reduced coordinates,
one at a time, as the reference does.

* sum/prod: `linalg.fill` with 0 (1), then `acc = acc + x` (`* x`). Floats accumulate in
  f32 (f64): f16/bf16 through an f32 temporary rounded once at the end. Integers accumulate
  in the output at its width (accumulate mode extends the inputs), which wraps exactly as
  the reference's 64-bit sum wrapped to the width.
* mean: the sum as above (integers in an i64 temporary), then one parallel generic divides
  by the element count (`x.dtype(count)` for floats, so an empty mean is NaN; a truncating
  64-bit division for integers). An empty integer mean is an error for static shapes; with
  dynamic shapes the nest divides by 1 instead (the reference raises).
* max/min: one generic copies each slice's first element (reduced coordinates 0) into the
  output, then the scan `best = x > best ? x : best` (`<` for min) runs over all elements.
  A leading NaN stays (compares are false), later NaNs are skipped, and of equal extremes
  (0.0 and -0.0) the first stays.
* argmax/argmin: the same scan over one `axis` with two outputs, a temporary holding the
  best value and the i64 index (`linalg.index` of the axis); `select_first=false` moves on
  `>=` (`<=`) and so ends on the last of equal extremes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from oi_compiler.dtypes import dtype_type
from oi_compiler.ops.nests.scalar import I64, Scalar, domain_of, emit, int_const
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    Accumulator,
    alloc,
    dealloc,
    domain_dtype,
    element_type,
    elementwise,
    fill,
    first_element_map,
    generic,
    identity,
    loop_index,
    mul_sizes,
    rank,
    reduced_sizes,
    reduction,
    shape,
    size,
)
from oi_compiler.ops.reference.settings import read_bool
from oi_compiler.ops.reference.shapes import fail, reduction_axes, reduction_axis, shape_text


def _accumulate(op: str, b: Builder, x: SSAValue, acc: Accumulator, in_dtype: str, axes, keepdims: bool) -> None:
    """fill + the sequential sum (or product) of `x` over `axes` into `acc.buffer`."""
    domain = acc.domain
    product = op == "prod_axis"
    s = Scalar(b, domain)
    fill(b, s.narrow(s.const(1 if product else 0), acc.dtype), acc.buffer)

    def body(bb: Builder, args: tuple) -> list[SSAValue]:
        t = Scalar(bb, domain)
        value, total = t.widen(args[0], in_dtype), t.widen(args[1], acc.dtype)
        return [t.narrow(t.mul(total, value) if product else t.add(total, value), acc.dtype)]

    reduction(b, x, [acc.buffer], axes, keepdims, body)


def total(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
          in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    axes = reduction_axes(op, rank(x), settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    acc = Accumulator.make(b, output, out, domain_of(in_dtypes))
    _accumulate(op, b, x, acc, in_dtypes[0], axes, keepdims)
    acc.finish(b)


def mean(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    axes = reduction_axes(op, rank(x), settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    domain = domain_of(in_dtypes)
    count = mul_sizes(b, [size(b, x, a) for a in axes])
    s = Scalar(b, domain)
    if domain.is_float:
        acc = Accumulator.make(b, output, out, domain)
        divisor = s.const(float(count)) if isinstance(count, int) else s.from_index(count)
    else:  # the 64-bit sum, divided before wrapping to the width
        dtype = domain_dtype(domain)
        buffer = alloc(b, dtype_type(dtype), reduced_sizes(b, x, axes, keepdims))
        acc = Accumulator(buffer, dtype, output, out, domain)
        if isinstance(count, int):
            if count == 0:
                raise fail(op, f"reduces over an empty axis of {shape_text(shape(x))}")
            divisor = s.const(count)
        else:
            n = s.from_index(count)
            divisor = s.select(s.is_zero(n), s.const(1), n)
    _accumulate(op, b, x, acc, in_dtypes[0], axes, keepdims)

    def body(bb: Builder, args: tuple) -> SSAValue:  # (count, sum, output) or (count, output = sum)
        t = Scalar(bb, domain)
        sums = t.widen(args[1], acc.dtype)
        return t.narrow(t.divf(sums, args[0]) if domain.is_float else t.div_int(sums, args[0]), out)

    if acc.buffer is output:
        elementwise(b, [divisor], output, body)
    else:
        elementwise(b, [divisor, acc.buffer], output, body)
        dealloc(b, acc.buffer)


def _init_first(b: Builder, x: SSAValue, target: SSAValue, axes, keepdims: bool) -> None:
    """target = the first element (reduced coordinates 0) of each slice of `x`."""
    n = rank(target)
    maps = [first_element_map(rank(x), axes, keepdims), identity(n)]
    generic(b, [x], [target], maps, [PARALLEL] * n, lambda bb, args: [args[0]])


def extreme(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
            in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    axes = reduction_axes(op, rank(x), settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    domain = domain_of(in_dtypes)
    predicate = "gt" if op == "max_axis" else "lt"
    _init_first(b, x, output, axes, keepdims)

    def body(bb: Builder, args: tuple) -> list[SSAValue]:
        s = Scalar(bb, domain)
        better = s.cmp(predicate, s.widen(args[0], in_dtypes[0]), s.widen(args[1], out))
        return [s.select(better, args[0], args[1])]

    reduction(b, x, [output], axes, keepdims, body)


def arg_extreme(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
                in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    axis = reduction_axis(op, rank(x), settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    select_first = read_bool(op, settings, "select_first", True)
    domain = domain_of(in_dtypes)
    predicate = ("gt" if op == "argmax_axis" else "lt") if select_first else ("ge" if op == "argmax_axis" else "le")
    best = alloc(b, element_type(x), reduced_sizes(b, x, [axis], keepdims))
    _init_first(b, x, best, [axis], keepdims)
    fill(b, int_const(b, 0, I64), output)

    def body(bb: Builder, args: tuple) -> list[SSAValue]:
        s = Scalar(bb, domain)
        value, best_value, best_index = args
        better = s.cmp(predicate, s.widen(value, in_dtypes[0]), s.widen(best_value, in_dtypes[0]))
        index = emit(bb, arith.IndexCastOp(loop_index(bb, axis), I64))
        return [s.select(better, value, best_value), s.select(better, index, best_index)]

    reduction(b, x, [best, output], [axis], keepdims, body)
    dealloc(b, best)


BUILDERS = {
    "sum_axis": total,
    "prod_axis": total,
    "mean_axis": mean,
    "max_axis": extreme,
    "min_axis": extreme,
    "argmax_axis": arg_extreme,
    "argmin_axis": arg_extreme,
}
