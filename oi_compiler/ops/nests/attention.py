"""Attention nests (decoder ops): rope and attention.

rope(x [..., Dh], position, theta) has two phases:

1. a generic over `[Dh/2]` fills f32 (f64) tables `cos[j]`, `sin[j]` of
   `angle = position * theta ** (-2j / Dh)`, computed in f64 (`math.powf`, `math.cos`,
   `math.sin`) and rounded to the math type, as the reference's `rope_angles`;
2. a parallel generic over `x[..., :Dh/2]` reads both halves of x through
   `memref.subview`s and writes both halves of the output:
   `out1 = x1 cos - x2 sin`, `out2 = x2 cos + x1 sin`. Each iteration reads before it
   writes, so the output may be x itself (inplace).

`position` is a Python int or an `SSAValue` (index, i32 or i64) read at run time; Dh may be
dynamic.

attention(q [S, H, Dh] or [H, Dh], k [T, Hk, Dh], v [T, Hk, Dh], causal, scale) computes
in f32 (f64 when any input is f64) through temporaries `scores [S, H, T]`, `m [S, H]`,
`l [S, H]`, in six phases:

1. `scores = q . k` over d (`fill` 0, reduction loop d innermost, ascending);
2. in place: `scores = scores * scale`, or -inf where `causal` hides key t from query s
   (`t > T - S + s`, from `linalg.index`);
3. `m = max_t scores` (`fill` -inf, `maximumf`);
4. `l = sum_t exp(scores - m)`;
5. in place: `scores = exp(scores - m) / l` (the weights);
6. `out = sum_t weights * v` (reduction loop t innermost, ascending), accumulated in the
   output, or in a temporary rounded once when the output is f16/bf16.

Query head h reads kv head `h floordiv (H / Hk)` through the maps (grouped-query attention);
that needs H and Hk static unless Hk is statically 1 (or the counts are equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import IndexType, IntegerType
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap

from oi_compiler.errors import PassError
from oi_compiler.ops.nests.scalar import (
    F64,
    F64_DOMAIN,
    I64,
    Domain,
    Scalar,
    emit,
    float_domain,
    float_setting,
    reassociable,
    require_float,
    resize_float,
)
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    REDUCTION,
    Size,
    alloc,
    as_index,
    dealloc,
    fill,
    generic,
    loop_index,
    make_map,
    rank,
    shape,
    size,
    sub_sizes,
    subview,
)
from oi_compiler.ops.reference.settings import read_bool, read_int


def _position(b: Builder, op: str, settings: Mapping[str, Any]) -> SSAValue:
    """rope's `position` as an f64 value (a constant, or converted from a run-time value)."""
    value = settings.get("position")
    if isinstance(value, SSAValue):
        if isinstance(value.type, IndexType):
            value = emit(b, arith.IndexCastOp(value, I64))
        elif not (isinstance(value.type, IntegerType) and value.type.width.data in (32, 64)):
            raise PassError(f"op {op}: a run-time position must be index, i32 or i64, got {value.type}")
        return emit(b, arith.SIToFPOp(value, F64))
    return Scalar(b, F64_DOMAIN).const(float(read_int(op, settings, "position")))


def _half(b: Builder, dim: int | SSAValue) -> int | SSAValue:
    if isinstance(dim, int):
        return dim // 2
    return emit(b, arith.DivUIOp(dim, as_index(b, 2)))


def rope(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    (x,) = inputs
    domain = float_domain(in_dtypes)
    dtype = in_dtypes[0]
    last = rank(x) - 1
    theta = float_setting(op, settings, "theta", 10000.0)
    position = _position(b, op, settings)
    head_dim = size(b, x, last)
    half = _half(b, head_dim)
    f = Scalar(b, F64_DOMAIN)
    head_dim_f = f.const(float(head_dim)) if isinstance(head_dim, int) else f.from_index(head_dim)
    cos_table, sin_table = alloc(b, domain.type, [half]), alloc(b, domain.type, [half])

    def angles(bb: Builder, args: tuple) -> list[SSAValue]:  # (position, Dh, cos, sin)
        t = Scalar(bb, F64_DOMAIN)
        j = t.from_index(loop_index(bb, 0))
        exponent = t.divf(t.mul(t.const(-2.0), j), args[1])
        angle = t.mul(args[0], t.pow(t.const(theta), exponent))
        cos, sin = t.unary(mathd.CosOp, angle), t.unary(mathd.SinOp, angle)
        return [resize_float(bb, cos, domain.type), resize_float(bb, sin, domain.type)]

    scalar_map, table_map = make_map(1, []), make_map(1, [0])
    generic(b, [position, head_dim_f], [cos_table, sin_table], [scalar_map, scalar_map, table_map, table_map],
            [PARALLEL], angles)  # fmt: skip

    n = rank(x)
    x1, x2 = subview(b, x, last, 0, half), subview(b, x, last, half, half)
    o1, o2 = subview(b, output, last, 0, half), subview(b, output, last, half, half)
    ident, column = make_map(n, list(range(n))), make_map(n, [last])

    def rotate(bb: Builder, args: tuple) -> list[SSAValue]:  # (x1, x2, cos, sin, o1, o2)
        t = Scalar(bb, domain)
        a, c = t.widen(args[0], dtype), t.widen(args[1], dtype)
        cos, sin = args[2], args[3]
        first = t.sub(t.mul(a, cos), t.mul(c, sin))
        second = t.add(t.mul(c, cos), t.mul(a, sin))
        return [t.narrow(first, out), t.narrow(second, out)]

    generic(b, [x1, x2, cos_table, sin_table], [o1, o2], [ident, ident, column, column, ident, ident],
            [PARALLEL] * n, rotate)  # fmt: skip
    dealloc(b, cos_table)
    dealloc(b, sin_table)


@dataclass(frozen=True)
class HeadGroups:
    """Query heads grouped by the kv head they read (grouped-query attention): query head
    `h = g * group + j` reads kv head g, for g < kv and j < group (`group = H / Hk`)."""

    kv: Size
    group: Size

    def head(self, g: int, j: int) -> AffineExpr:
        """The query head of loops `g` (kv head) and `j` (member of its group)."""
        if self.kv == 1:
            return AffineDimExpr(j)
        if self.group == 1:
            return AffineDimExpr(g)
        return AffineDimExpr(g) * self.group + AffineDimExpr(j)


def head_groups(op: str, b: Builder, q: SSAValue, k: SSAValue) -> HeadGroups:
    heads, kv_heads = shape(q)[-2], shape(k)[1]
    if kv_heads == 1:
        return HeadGroups(1, size(b, q, rank(q) - 2))
    if heads is not None and kv_heads is not None:
        return HeadGroups(kv_heads, heads // kv_heads)
    raise PassError(f"op {op}: no loop nest for grouped kv heads of dynamic counts (q {_dims(q)}, k {_dims(k)})")


def _dims(value: SSAValue) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape(value)) + "]"


def _default_scale(b: Builder, domain: Domain, head_dim: int | SSAValue) -> SSAValue:
    """1 / sqrt(Dh), computed in f64 and rounded to the math type (as `dtype.type(1 / math.sqrt(Dh))`)."""
    s = Scalar(b, domain)
    if isinstance(head_dim, int):  # (Dh = 0 is the shape rule's error; here +inf, as the run-time division gives)
        return s.const(1 / math.sqrt(head_dim) if head_dim else math.inf)
    f = Scalar(b, F64_DOMAIN)
    return resize_float(b, f.divf(f.const(1.0), f.sqrt(f.from_index(head_dim))), domain.type)


def attention(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
              in_dtypes: list[str], out: str) -> None:  # fmt: skip
    require_float(op, in_dtypes)
    q, k, v = inputs
    domain = float_domain(in_dtypes)
    q_dtype, k_dtype, v_dtype = in_dtypes
    single = rank(q) == 2  # one query: [H, Dh]
    queries = 1 if single else size(b, q, 0)
    keys = size(b, k, 0)
    causal = read_bool(op, settings, "causal", False)
    s = Scalar(b, domain)
    if "scale" in settings:
        scale = s.const(float_setting(op, settings, "scale", None))
    else:
        scale = _default_scale(b, domain, size(b, q, rank(q) - 1))

    groups = head_groups(op, b, q, k)
    rows = [queries, groups.kv, groups.group]  # (s, g, j): one softmax row per query and head
    scores = alloc(b, domain.type, [*rows, keys])
    top, total = alloc(b, domain.type, rows), alloc(b, domain.type, rows)
    query = [] if single else [0]  # q and the output have no s dim for one query

    # 1. scores[s, g, j, t] = sum_d q[s, h, d] * k[t, g, d]; loops (s, t, g, j, d): one pass over
    # k, each row k[t] read once for every head
    def dot(bb: Builder, args: tuple) -> list[SSAValue]:
        # The sum over d may be reassociated (the reference's einsum fixes no order): LLVM then
        # vectorises a long d loop with partial sums. Products are still rounded one by one.
        t = Scalar(bb, domain)
        return [reassociable(t.add(args[2], t.mul(t.widen(args[0], q_dtype), t.widen(args[1], k_dtype))))]

    fill(b, s.const(0.0), scores)
    q_map = make_map(5, [*query, groups.head(2, 3), 4])
    generic(b, [q, k], [scores], [q_map, make_map(5, [1, 2, 4]), make_map(5, [0, 2, 3, 1])],
            [PARALLEL] * 4 + [REDUCTION], dot)  # fmt: skip

    # 2. one pass over t: scores *= scale, or -inf where `causal` hides key t from query s
    # (`t > T - S + s`, from `linalg.index`); m = max_t scores (`fill` -inf, `maximumf`)
    row_t, row, scalar = make_map(4, [0, 1, 2, 3]), make_map(4, [0, 1, 2]), make_map(4, [])
    softmax_iterators = [PARALLEL] * 3 + [REDUCTION]
    extra = [scale]
    if causal:
        extra.append(as_index(b, sub_sizes(b, keys, queries)))  # query s sits at position T - S + s

    def scale_mask_max(bb: Builder, args: tuple) -> list[SSAValue]:  # (scale, [offset], score, max)
        t = Scalar(bb, domain)
        scaled = t.mul(args[-2], args[0])
        if causal:
            last_visible = emit(bb, arith.AddiOp(loop_index(bb, 0), args[1]))
            visible = emit(bb, arith.CmpiOp(loop_index(bb, 3), last_visible, "sle"))
            scaled = t.select(visible, scaled, t.const(float("-inf")))
        return [scaled, t.max_propagating(args[-1], scaled)]

    fill(b, s.const(float("-inf")), top)
    generic(b, extra, [scores, top], [scalar] * len(extra) + [row_t, row], softmax_iterators, scale_mask_max)

    # 3. one pass over t: scores = exp(scores - m), l = their sum; the sum may be reassociated
    # (the reference's numpy sum is pairwise, in no fixed order), so it vectorises
    def exp_and_sum(bb: Builder, args: tuple) -> list[SSAValue]:  # (max, score, sum)
        t = Scalar(bb, domain)
        e = t.exp(t.sub(args[1], args[0]))
        return [e, reassociable(t.add(args[2], e))]

    fill(b, s.const(0.0), total)
    generic(b, [top], [scores, total], [row, row_t, row], softmax_iterators, exp_and_sum)

    # 4. in place: the weights, scores / l
    generic(b, [total], [scores], [row, row_t], [PARALLEL] * 4,
            lambda bb, args: [Scalar(bb, domain).divf(args[1], args[0])])  # fmt: skip

    # 5. acc[s, g, j, e] = sum_t weights[s, g, j, t] * v[t, g, e], t in order, in a private
    # buffer: a kernel's arguments carry no `noalias`, so LLVM would keep an output argument in
    # memory across t (a store to it may alias v) where a private buffer's rows stay in registers
    head_dim = size(b, v, 2)
    acc = alloc(b, domain.type, [*rows, head_dim])
    fill(b, s.const(0.0), acc)

    def mix(bb: Builder, args: tuple) -> list[SSAValue]:
        t = Scalar(bb, domain)
        return [t.add(args[2], t.mul(args[0], t.widen(args[1], v_dtype)))]

    generic(b, [scores, v], [acc], *_mix_loops(groups, head_dim), mix)

    # 6. the output, rounded once: out[s, h, e] = acc[s, g, j, e]
    out_map = make_map(4, [*query, groups.head(1, 2), 3])
    generic(b, [acc], [output], [make_map(4, [0, 1, 2, 3]), out_map], [PARALLEL] * 4,
            lambda bb, args: [Scalar(bb, domain).narrow(args[0], out)])  # fmt: skip
    for temporary in (scores, top, total, acc):
        dealloc(b, temporary)


#: The most accumulator elements (every head's row of the output) that stay in vector registers.
REGISTER_ELEMENTS = 64


def _mix_loops(groups: HeadGroups, head_dim: Size) -> tuple[list[AffineMap], list[str]]:
    """The maps (weights, v, acc) and iterators of the weights . v loops.

    (s, t, g, j, e) when every head's accumulator row fits in registers together: v is read
    once, row by row, and each t updates all of them; otherwise (s, g, t, j, e): one kv head's
    group at a time, v read once per kv head (its slice of each row)."""
    static = [x for x in (groups.kv, groups.group, head_dim) if isinstance(x, int)]
    fits = len(static) == 3 and math.prod(static) <= REGISTER_ELEMENTS
    s, t, g, j, e = (0, 1, 2, 3, 4) if fits else (0, 2, 1, 3, 4)
    maps = [make_map(5, [s, g, j, t]), make_map(5, [t, g, e]), make_map(5, [s, g, j, e])]
    iterators = [PARALLEL] * 5
    iterators[t] = REDUCTION
    return maps, iterators


BUILDERS = {"rope": rope, "attention": attention}
