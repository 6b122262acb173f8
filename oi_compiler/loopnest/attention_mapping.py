"""attention's default GPU mapping: one block per (query, head), keys in chunks of the block's size.

attention(q [S, H, Dh] or [H, Dh], k [T, Hk, Dh], v [T, Hk, Dv], causal, scale) as the
reference computes it (ops/reference/attention.py), in f32 (f64 when an input is f64): query
head h reads kv head `h / (H / Hk)`; query s sees key t when `t <= T - S + s` if causal. Each
block of B threads (B = 128, or the keys rounded up to a power of two when fewer) runs three
passes over the keys, computing each score `(q . k_t) * scale` where it needs it (no score is
kept in memory, so nothing grows with S x T):

1. each thread the largest of its keys' scores (keys tid, tid + B, ...), then a shared-memory
   tree: the row's max m (the shift is m, or 0 when every score is -inf, as the nest does);
2. the same for `sum exp(score - shift)`: the row's total;
3. chunks of B keys: each thread puts its key's weight `exp(score - shift)` in shared memory,
   then accumulates `weight * v[t, d]` over the chunk's keys, in ascending order, for its output
   columns d = tid, tid + B, ... (kept in registers across chunks); at the end
   `out = acc / total`, rounded once to the output's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith, gpu, memref, scf
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import Float32Type, Float64Type, FloatAttr, IndexType, MemRefType
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from oi_compiler.ops.nests.scalar import index_const
from oi_compiler.loopnest.stage_mappings import delinearize, grid_id, guarded, shared_buffer, tree_reduce
from oi_compiler.ops.reference.settings import read_bool, read_float

ATTENTION_ROWS = "attention-rows"
THREADS = 128


def key_threads(keys: int) -> int:
    """The block size for `keys` keys: the keys rounded up to a power of two, at most `THREADS`."""
    return min(THREADS, 1 << max(0, keys - 1).bit_length())


def attention_kernel(name: str, types: list[MemRefType], settings: Mapping[str, Any], threads: int | None = None):
    """`gpu.func @name(q, k, v, out) kernel`; its grid and block. The keys' count (k's and v's
    first dim) may be dynamic (`?`): the kernel reads it from k, and `threads` (the block size,
    `key_threads` of a count) is then given, so one kernel serves every count of that block size."""
    q_type, k_type, v_type, out_type = types
    *queries, heads, head_dim = q_type.get_shape()
    static_keys, kv_heads, _ = k_type.get_shape()
    value_dim = v_type.get_shape()[2]
    rows = (queries[0] if queries else 1) * heads
    wide = any(isinstance(t.element_type, Float64Type) for t in types[:3])
    f = _Math(Float64Type() if wide else Float32Type())
    if threads is None:
        threads = key_threads(static_keys)
    body = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(body))
    q, k, v, out = body.args
    if static_keys >= 0:
        keys_value = index_const(b, static_keys)
    else:
        keys_value = b.insert(memref.DimOp(k, index_const(b, 0))).result
    s, h = delinearize(b, grid_id(b, "block"), [queries[0] if queries else 1, heads])
    g = b.insert(arith.DivUIOp(h, index_const(b, heads // kv_heads))).result
    thread = grid_id(b, "thread")
    scale = read_float("attention", settings, "scale", 1 / math.sqrt(head_dim))
    last_visible = None
    if read_bool("attention", settings, "causal", False):
        hidden = b.insert(arith.SubiOp(keys_value, index_const(b, queries[0] if queries else 1))).result
        last_visible = b.insert(arith.AddiOp(s, hidden)).result

    def query_index(d: SSAValue) -> list[SSAValue]:
        return [s, h, d] if queries else [h, d]

    def score(bb: Builder, t: SSAValue) -> SSAValue:
        def dot(inner: Builder, d: SSAValue, total: SSAValue) -> SSAValue:
            x = f.load(inner, q, query_index(d))
            return f.add(inner, total, f.mul(inner, x, f.load(inner, k, [t, g, d])))

        value = f.mul(bb, _reduce(bb, index_const(bb, 0), index_const(bb, head_dim), 1, f.const(bb, 0.0), dot),
                      f.const(bb, scale))  # fmt: skip
        if last_visible is None:
            return value
        visible = bb.insert(arith.CmpiOp(t, last_visible, "sle")).result
        return bb.insert(arith.SelectOp(visible, value, f.const(bb, -math.inf))).result

    def row_total(combine, start: float, term) -> SSAValue:
        partial = _reduce(b, thread, keys_value, threads, f.const(b, start),
                          lambda bb, t, acc: combine(bb, acc, term(bb, t)))  # fmt: skip
        shared = shared_buffer(b, f.type, threads)
        tree_reduce(b, shared, partial, thread, threads, combine)
        return b.insert(memref.LoadOp.get(shared, [index_const(b, 0)])).res

    top = row_total(f.max, -math.inf, score)
    unseen = b.insert(arith.CmpfOp(top, f.const(b, -math.inf), "oeq")).result
    shift = b.insert(arith.SelectOp(unseen, f.const(b, 0.0), top)).result

    def weight(bb: Builder, t: SSAValue) -> SSAValue:
        return bb.insert(mathd.ExpOp(f.sub(bb, score(bb, t), shift))).result

    total = row_total(f.add, 0.0, weight)
    columns = -(-value_dim // threads)
    weights = shared_buffer(b, f.type, threads)
    chunk = Block(arg_types=[IndexType(), *[f.type] * columns])
    c = Builder(InsertPoint.at_end(chunk))
    key = c.insert(arith.AddiOp(chunk.args[0], thread)).result
    mine = c.insert(arith.CmpiOp(key, keys_value, "ult")).result
    c.insert(memref.StoreOp.get(_select_if(c, mine, f.type, lambda bb: weight(bb, key), f.const), weights, [thread]))
    c.insert(gpu.BarrierOp())
    count = c.insert(arith.MinSIOp(c.insert(arith.SubiOp(keys_value, chunk.args[0])).result,
                                   index_const(c, threads))).result  # fmt: skip
    sums = []
    for n, acc in enumerate(chunk.args[1:]):
        d = c.insert(arith.AddiOp(thread, index_const(c, n * threads))).result

        def mix(bb: Builder, j: SSAValue, partial: SSAValue, d=d) -> SSAValue:
            t = bb.insert(arith.AddiOp(chunk.args[0], j)).result
            w = bb.insert(memref.LoadOp.get(weights, [j])).res
            return f.add(bb, partial, f.mul(bb, w, f.load(bb, v, [t, g, d])))

        inside = c.insert(arith.CmpiOp(d, index_const(c, value_dim), "ult")).result
        sums.append(_select_if(c, inside, f.type, lambda bb, acc=acc, mix=mix: _reduce(
            bb, index_const(bb, 0), count, 1, acc, mix), lambda bb, _value, acc=acc: acc))  # fmt: skip
    c.insert(gpu.BarrierOp())
    c.insert(scf.YieldOp(*sums))
    zero = f.const(b, 0.0)
    loop = b.insert(scf.ForOp(index_const(b, 0), keys_value, index_const(b, threads),
                              [zero] * columns, Region(chunk)))  # fmt: skip
    for n, acc in enumerate(loop.results):
        d = b.insert(arith.AddiOp(thread, index_const(b, n * threads))).result
        store = guarded(b, b.insert(arith.CmpiOp(d, index_const(b, value_dim), "ult")).result)
        result = f.narrow(store, f.div(store, acc, total), out_type.element_type)
        store.insert(memref.StoreOp.get(result, out, query_index(d)))
    b.insert(gpu.ReturnOp([]))
    kernel = gpu.FuncOp(name, (types, []), Region(body), kernel=True)
    return kernel, (rows, 1, 1), (threads, 1, 1)


def _reduce(b: Builder, lower: SSAValue, upper: SSAValue, step: int, start: SSAValue, update) -> SSAValue:
    """`acc = start; for i in [lower, upper) step: acc = update(builder, i, acc)`; the final acc."""
    body = Block(arg_types=[IndexType(), start.type])
    inner = Builder(InsertPoint.at_end(body))
    inner.insert(scf.YieldOp(update(inner, body.args[0], body.args[1])))
    return b.insert(scf.ForOp(lower, upper, index_const(b, step), [start], Region(body))).results[0]


def _select_if(b: Builder, condition: SSAValue, element, then, otherwise) -> SSAValue:
    """`scf.if condition -> then(builder) else otherwise(builder, 0.0)`: what runs only where it may."""
    branches = []
    for emit in (lambda bb: then(bb), lambda bb: otherwise(bb, 0.0)):
        block = Block()
        inner = Builder(InsertPoint.at_end(block))
        inner.insert(scf.YieldOp(emit(inner)))
        branches.append(Region(block))
    return b.insert(scf.IfOp(condition, [element], branches[0], branches[1])).results[0]


class _Math:
    """Float arithmetic in the math type (f32, or f64), loads widened to it."""

    def __init__(self, element):
        self.type = element

    def const(self, b: Builder, value: float) -> SSAValue:
        return b.insert(arith.ConstantOp(FloatAttr(value, self.type))).result

    def load(self, b: Builder, buffer: SSAValue, indices: list[SSAValue]) -> SSAValue:
        value = b.insert(memref.LoadOp.get(buffer, indices)).res
        return value if value.type == self.type else b.insert(arith.ExtFOp(value, self.type)).result

    def narrow(self, b: Builder, value: SSAValue, element) -> SSAValue:
        return value if element == self.type else b.insert(arith.TruncFOp(value, element)).result

    def add(self, b, x, y):
        return b.insert(arith.AddfOp(x, y)).result

    def sub(self, b, x, y):
        return b.insert(arith.SubfOp(x, y)).result

    def mul(self, b, x, y):
        return b.insert(arith.MulfOp(x, y)).result

    def div(self, b, x, y):
        return b.insert(arith.DivfOp(x, y)).result

    def max(self, b, x, y):
        return b.insert(arith.MaximumfOp(x, y)).result
