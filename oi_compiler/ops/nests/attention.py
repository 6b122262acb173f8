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
in f32 (f64 when any input is f64) one query at a time, over chunks of keys, with a running
softmax (online softmax, as flash-decoding does; `_Kernel` lists the passes of a chunk): the
sums so far are rescaled whenever a chunk raises the max, and the output is their quotient.
Its temporaries (`_Buffers`) hold one chunk of scores and a few values per head, none of T's
size, so with static head counts and Dh they are small static buffers the backend keeps on
the stack: a call allocates nothing (the decode step calls it once per layer), and a chunk's
scores stay in L1 between its passes. The chunk's length is `_chunk_length`'s.

Query head h reads kv head `h floordiv (H / Hk)` through the maps (grouped-query attention);
that needs H and Hk static unless Hk is statically 1 (or the counts are equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith, scf
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import IndexType, IntegerType
from xdsl.ir import Block, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.rewriter import InsertPoint

from oi_compiler.errors import PassError
from oi_compiler.ops.nests.scalar import (
    F64,
    F64_DOMAIN,
    I64,
    Domain,
    Scalar,
    emit,
    float_domain,
    index_const,
    float_setting,
    reassociable,
    require_float,
    resize_float,
)
from oi_compiler.ops.nests.structured import (
    PARALLEL,
    REDUCTION,
    ZERO,
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
    if "scale" in settings:
        scale = Scalar(b, domain).const(float_setting(op, settings, "scale", None))
    else:
        scale = _default_scale(b, domain, size(b, q, rank(q) - 1))
    groups = head_groups(op, b, q, k)
    keys = size(b, k, 0)
    buffers = _Buffers.make(b, domain, groups, _chunk_length(domain, groups, keys), size(b, v, 2))
    kernel = _Kernel(domain, in_dtypes, out, groups, scale, k, v, keys, buffers)
    if rank(q) == 2:  # one query [H, Dh]: it comes after every key, so `causal` hides none
        kernel.query(b, q, output, [], None)
    else:
        queries = size(b, q, 0)
        causal = read_bool(op, settings, "causal", False)
        first = as_index(b, sub_sizes(b, keys, queries)) if causal else None  # query s sits at T - S + s

        def one_query(bb: Builder, s: SSAValue) -> None:
            position = None if first is None else emit(bb, arith.AddiOp(first, s))
            kernel.query(bb, subview(bb, q, 0, s, 1), subview(bb, output, 0, s, 1), [ZERO], position)

        _loop(b, queries, 1, one_query)
    buffers.release(b)


#: The scores of one chunk of keys (every head's) take at most this many bytes: they stay in L1
#: from one pass over them to the next, and the backend keeps them on the stack
#: (`backend/llvm_memref.STACK_BUFFER_BYTES`).
CHUNK_BYTES = 16 * 1024
#: The most keys in a chunk.
MAX_CHUNK = 256


def _chunk_length(domain: Domain, groups: HeadGroups, keys: Size) -> int:
    """Keys per chunk: as many as CHUNK_BYTES of scores hold (MAX_CHUNK when the head counts are
    dynamic), and no more than there are keys when that is known."""
    chunk = MAX_CHUNK
    if isinstance(groups.kv, int) and isinstance(groups.group, int):
        row_bytes = groups.kv * groups.group * (8 if domain.type == F64 else 4)
        chunk = max(1, min(chunk, CHUNK_BYTES // row_bytes))
    return min(chunk, keys) if isinstance(keys, int) and keys > 0 else chunk


def _loop(b: Builder, count: Size, step: int, body: Callable[[Builder, SSAValue], None]) -> None:
    """`for i in range(0, count, step): body(builder, i)` as an `scf.for`; no loop when a static
    `count` takes one step."""
    if isinstance(count, int) and count <= step:
        body(b, index_const(b, 0))
        return
    block = Block(arg_types=[IndexType()])
    inner = Builder(InsertPoint.at_end(block))
    body(inner, block.args[0])
    inner.insert(scf.YieldOp())
    b.insert(scf.ForOp(index_const(b, 0), as_index(b, count), index_const(b, step), [], block))


@dataclass(frozen=True)
class _Buffers:
    """The temporaries of one query, reused by every query and chunk (their rows are (g, j), as
    HeadGroups orders the heads):

    - scores [Hk, G, chunk]: a chunk's scores, then its weights `exp(score - shift)`;
    - chunk_max [Hk, G]: the chunk's largest score; top [Hk, G]: the largest so far;
    - shift [Hk, G]: what the weights subtract: top, or 0 while top is -inf (no key seen, or
      only -inf scores: `-inf - -inf` would be NaN where the reference's weight is 0);
    - rescale [Hk, G]: `exp(previous top - shift)`, which brings the sums so far to the new shift;
    - total [Hk, G], acc [Hk, G, Dh]: the sums so far of the weights and of weights * v.

    None depends on the number of keys: with static head counts and Dh they are small static
    buffers, which the backend places in the stack frame (no allocation per call)."""

    scores: SSAValue
    chunk_max: SSAValue
    top: SSAValue
    shift: SSAValue
    rescale: SSAValue
    total: SSAValue
    acc: SSAValue

    @staticmethod
    def make(b: Builder, domain: Domain, groups: HeadGroups, chunk: int, head_dim: Size) -> _Buffers:
        rows = [groups.kv, groups.group]
        scores = alloc(b, domain.type, [*rows, chunk])
        per_row = [alloc(b, domain.type, rows) for _ in range(5)]
        return _Buffers(scores, *per_row, alloc(b, domain.type, [*rows, head_dim]))

    @property
    def chunk(self) -> int:
        return shape(self.scores)[2]

    def release(self, b: Builder) -> None:
        for buffer in (self.scores, self.chunk_max, self.top, self.shift, self.rescale, self.total, self.acc):
            dealloc(b, buffer)


#: loops (g, j, t) over a chunk's scores [Hk, G, t], (g, j) rows, scalars
CHUNK_ROW_T, CHUNK_ROW, CHUNK_SCALAR = make_map(3, [0, 1, 2]), make_map(3, [0, 1]), make_map(3, [])
SOFTMAX_ITERATORS = [PARALLEL, PARALLEL, REDUCTION]


@dataclass(frozen=True)
class _Kernel:
    """Attention, one query at a time over chunks of keys, with a running softmax (as online
    softmax and flash-decoding do). Each chunk takes five passes, each one generic:

    1. `scores[g, j, t] = sum_d q[h, d] * k[t, g, d]`, t outside the heads: one pass over the
       chunk's keys, each row k[t] read once for every head;
    2. `scores *= scale`, or -inf where `causal` hides key t (`t > position`); chunk_max;
    3. per row: the new top, shift and rescale; `total *= rescale`, then `acc *= rescale`;
    4. `scores = exp(scores - shift)`, added to total (exp once per score);
    5. `acc[g, j, e] += sum_t scores[g, j, t] * v[t, g, e]`, t in order (see `_mix_loops`).

    The output, `acc / total` rounded once, comes after the last chunk."""

    domain: Domain
    in_dtypes: list[str]
    out: str
    groups: HeadGroups
    scale: SSAValue
    k: SSAValue
    v: SSAValue
    keys: Size
    buffers: _Buffers

    def query(self, b: Builder, q: SSAValue, out: SSAValue, query: list[AffineExpr],
              position: SSAValue | None) -> None:  # fmt: skip
        """`out` = attention of `q` over the keys (up to `position`, when causal). q and out are
        [H, Dh], or [1, H, Dh] views with `query` = [0] (the index of their first dim)."""
        s, buf = Scalar(b, self.domain), self.buffers
        fill(b, s.const(float("-inf")), buf.top)
        fill(b, s.const(0.0), buf.total)
        fill(b, s.const(0.0), buf.acc)
        _loop(b, self.keys, buf.chunk, lambda bb, start: self._chunk(bb, q, query, start, position))

        def divide(bb: Builder, args: tuple) -> list[SSAValue]:  # (acc, total, out)
            t = Scalar(bb, self.domain)
            return [t.narrow(t.divf(args[0], args[1]), self.out)]

        out_map = make_map(3, [*query, self.groups.head(0, 1), 2])
        generic(b, [buf.acc, buf.total], [out], [make_map(3, [0, 1, 2]), make_map(3, [0, 1]), out_map],
                [PARALLEL] * 3, divide)  # fmt: skip

    def _chunk(self, b: Builder, q: SSAValue, query: list[AffineExpr], start: SSAValue,
               position: SSAValue | None) -> None:  # fmt: skip
        length = self._chunk_keys(b, start)
        k, v = subview(b, self.k, 0, start, length), subview(b, self.v, 0, start, length)
        scores = subview(b, self.buffers.scores, 2, 0, length)
        self._dot(b, q, query, k, scores)
        last_visible = None if position is None else emit(b, arith.SubiOp(position, start))
        self._scale_mask_max(b, scores, last_visible)
        self._rescale(b)
        self._exp_and_sum(b, scores)
        generic(b, [scores, v], [self.buffers.acc], *_mix_loops(self.groups, shape(v)[2]), self._mix)

    def _chunk_keys(self, b: Builder, start: SSAValue) -> Size:
        """The keys of the chunk at `start`: min(chunk, T - start)."""
        chunk = self.buffers.chunk
        if isinstance(self.keys, int) and self.keys <= chunk:
            return self.keys
        rest = emit(b, arith.SubiOp(as_index(b, self.keys), start))
        return emit(b, arith.MinSIOp(index_const(b, chunk), rest))

    def _dot(self, b: Builder, q: SSAValue, query: list[AffineExpr], k: SSAValue, scores: SSAValue) -> None:
        """Loops (t, g, j, d). The sum over d may be reassociated (the reference's einsum fixes
        no order): LLVM then vectorises a long d loop with partial sums. Products are still
        rounded one by one."""
        q_dtype, k_dtype = self.in_dtypes[:2]

        def dot(bb: Builder, args: tuple) -> list[SSAValue]:  # (q, k, score)
            t = Scalar(bb, self.domain)
            return [reassociable(t.add(args[2], t.mul(t.widen(args[0], q_dtype), t.widen(args[1], k_dtype))))]

        fill(b, Scalar(b, self.domain).const(0.0), scores)
        q_map = make_map(4, [*query, self.groups.head(1, 2), 3])
        generic(b, [q, k], [scores], [q_map, make_map(4, [0, 1, 3]), make_map(4, [1, 2, 0])],
                [PARALLEL] * 3 + [REDUCTION], dot)  # fmt: skip

    def _scale_mask_max(self, b: Builder, scores: SSAValue, last_visible: SSAValue | None) -> None:
        """In place: scores * scale, or -inf after `last_visible` (a chunk index); chunk_max."""
        extra = [self.scale] if last_visible is None else [self.scale, last_visible]

        def body(bb: Builder, args: tuple) -> list[SSAValue]:  # (scale, [last visible], score, max)
            t = Scalar(bb, self.domain)
            scaled = t.mul(args[-2], args[0])
            if last_visible is not None:
                visible = emit(bb, arith.CmpiOp(loop_index(bb, 2), args[1], "sle"))
                scaled = t.select(visible, scaled, t.const(float("-inf")))
            return [scaled, t.max_propagating(args[-1], scaled)]

        fill(b, Scalar(b, self.domain).const(float("-inf")), self.buffers.chunk_max)
        maps = [CHUNK_SCALAR] * len(extra) + [CHUNK_ROW_T, CHUNK_ROW]
        generic(b, extra, [scores, self.buffers.chunk_max], maps, SOFTMAX_ITERATORS, body)

    def _rescale(self, b: Builder) -> None:
        """Per row: top = max(top, chunk_max); shift; rescale = exp(old top - shift), which is 1
        when the top did not move and 0 at the first chunk; total and acc times rescale."""
        buf = self.buffers

        def row(bb: Builder, args: tuple) -> list[SSAValue]:  # (chunk_max, top, shift, rescale, total)
            t = Scalar(bb, self.domain)
            top = t.max_propagating(args[1], args[0])
            shift = t.select(t.cmp("eq", top, t.const(float("-inf"))), t.const(0.0), top)
            rescale = t.exp(t.sub(args[1], shift))
            return [top, shift, rescale, t.mul(args[4], rescale)]

        rows = make_map(2, [0, 1])
        generic(b, [buf.chunk_max], [buf.top, buf.shift, buf.rescale, buf.total], [rows] * 5, [PARALLEL] * 2, row)
        generic(b, [buf.rescale], [buf.acc], [make_map(3, [0, 1]), make_map(3, [0, 1, 2])], [PARALLEL] * 3,
                lambda bb, args: [Scalar(bb, self.domain).mul(args[1], args[0])])  # fmt: skip

    def _exp_and_sum(self, b: Builder, scores: SSAValue) -> None:
        """In place: scores = exp(scores - shift), added to total; the sum may be reassociated
        (the reference's numpy sum is pairwise, in no fixed order), so it vectorises."""

        def body(bb: Builder, args: tuple) -> list[SSAValue]:  # (shift, score, total)
            t = Scalar(bb, self.domain)
            e = t.exp(t.sub(args[1], args[0]))
            return [e, reassociable(t.add(args[2], e))]

        generic(b, [self.buffers.shift], [scores, self.buffers.total], [CHUNK_ROW, CHUNK_ROW_T, CHUNK_ROW],
                SOFTMAX_ITERATORS, body)  # fmt: skip

    def _mix(self, b: Builder, args: tuple) -> list[SSAValue]:  # (weight, v, acc)
        t = Scalar(b, self.domain)
        return [t.add(args[2], t.mul(args[0], t.widen(args[1], self.in_dtypes[2])))]


#: The most accumulator elements (every head's row of the output) that stay in vector registers.
REGISTER_ELEMENTS = 64


def _mix_loops(groups: HeadGroups, head_dim: int | None) -> tuple[list[AffineMap], list[str]]:
    """The maps (weights, v, acc) and iterators of a chunk's weights . v loops, into acc: a
    private buffer, since a kernel's arguments carry no `noalias` and LLVM would keep an output
    argument in memory across t (a store to it may alias v) where acc's rows stay in registers.

    (t, g, j, e) when every head's row of acc fits in registers together: v is read once, row
    by row, and each t updates all of them; otherwise (g, t, j, e): one kv head's group at a
    time, v read once per kv head (its slice of each row)."""
    static = [x for x in (groups.kv, groups.group, head_dim) if isinstance(x, int)]
    fits = len(static) == 3 and math.prod(static) <= REGISTER_ELEMENTS
    t, g, j, e = (0, 1, 2, 3) if fits else (1, 0, 2, 3)
    maps = [make_map(4, [g, j, t]), make_map(4, [t, g, e]), make_map(4, [g, j, e])]
    iterators = [PARALLEL] * 4
    iterators[t] = REDUCTION
    return maps, iterators


BUILDERS = {"rope": rope, "attention": attention}
