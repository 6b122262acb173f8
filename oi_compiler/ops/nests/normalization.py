"""Normalization nests (decoder ops): rms_norm and layer_norm over the last axis.

Float inputs, computed in f32 (f64 for f64) with one rounding at the end; N is the last
dim (static, or `memref.dim` converted to float at run time).

* rms_norm: `ss = sum(x * x)` along the last axis into a temporary of the row shape, then
  the parallel `out = x / sqrt(ss / N + eps)`.
* layer_norm: `s1 = sum(x)`, then `s2 = sum((x - s1 / N)**2)`, then the parallel
  `out = (x - s1 / N) / sqrt(s2 / N + eps)` (population variance). The mean is recomputed
  in each phase from s1 (the same rounding every time).

The sums are marked `reassoc` (the reference's numpy mean sums pairwise, in no fixed order),
so LLVM vectorises them with partial sums; each square is still rounded alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import Scalar, float_domain, float_setting, reassociable, require_float
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    alloc,
    dealloc,
    fill,
    generic,
    identity,
    make_map,
    rank,
    reduced_map,
    reduced_sizes,
    reduction,
    size,
)


def _row_count(s: Scalar, b: Builder, x: SSAValue) -> SSAValue:
    n = size(b, x, rank(x) - 1)
    return s.const(float(n)) if isinstance(n, int) else s.from_index(n)


def rms_norm(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
             in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    (x,) = inputs
    n = rank(x)
    domain = float_domain(in_dtypes)
    dtype = in_dtypes[0]
    eps = float_setting(op, settings, "eps", 1e-6)
    s = Scalar(b, domain)
    count = _row_count(s, b, x)
    squares = alloc(b, domain.type, reduced_sizes(b, x, [n - 1], False))
    fill(b, s.const(0.0), squares)

    def add_square(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, ss)
        t = Scalar(bb, domain)
        v = t.widen(args[0], dtype)
        return [reassociable(t.add(args[1], t.mul(v, v)))]

    reduction(b, x, [squares], [n - 1], False, add_square)

    def normalize(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, ss, N, out)
        t = Scalar(bb, domain)
        rms = t.sqrt(t.add(t.divf(args[1], args[2]), t.const(eps)))
        return [t.narrow(t.divf(t.widen(args[0], dtype), rms), out)]

    maps = [identity(n), reduced_map(n, [n - 1], False), make_map(n, []), identity(n)]
    generic(b, [x, squares, count], [output], maps, [PARALLEL] * n, normalize)
    dealloc(b, squares)


def layer_norm(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
               in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    (x,) = inputs
    n = rank(x)
    domain = float_domain(in_dtypes)
    dtype = in_dtypes[0]
    eps = float_setting(op, settings, "eps", 1e-5)
    s = Scalar(b, domain)
    count = _row_count(s, b, x)
    rows = reduced_sizes(b, x, [n - 1], False)
    sums, squares = alloc(b, domain.type, rows), alloc(b, domain.type, rows)
    row_map, scalar_map = reduced_map(n, [n - 1], False), make_map(n, [])
    fill(b, s.const(0.0), sums)

    def add_value(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, s1)
        t = Scalar(bb, domain)
        return [reassociable(t.add(args[1], t.widen(args[0], dtype)))]

    reduction(b, x, [sums], [n - 1], False, add_value)

    def centered(t: Scalar, value: SSAValue, total: SSAValue, count: SSAValue) -> SSAValue:
        return t.sub(t.widen(value, dtype), t.divf(total, count))

    def add_square(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, s1, N, s2)
        t = Scalar(bb, domain)
        c = centered(t, args[0], args[1], args[2])
        return [reassociable(t.add(args[3], t.mul(c, c)))]

    fill(b, s.const(0.0), squares)
    reduction(b, x, [squares], [n - 1], False, add_square, extra_inputs=[(sums, row_map), (count, scalar_map)])

    def normalize(bb: Builder, args: tuple) -> list[SSAValue]:  # (x, s1, s2, N, out)
        t = Scalar(bb, domain)
        deviation = t.sqrt(t.add(t.divf(args[2], args[3]), t.const(eps)))
        return [t.narrow(t.divf(centered(t, args[0], args[1], args[3]), deviation), out)]

    maps = [identity(n), row_map, row_map, scalar_map, identity(n)]
    generic(b, [x, sums, squares, count], [output], maps, [PARALLEL] * n, normalize)
    dealloc(b, sums)
    dealloc(b, squares)


BUILDERS = {"rms_norm": rms_norm, "layer_norm": layer_norm}
