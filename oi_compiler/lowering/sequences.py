"""The sequence statements to the table level: `cache.fork`, `cache.pop`, `cache.reset ... where`.

Each follows `runtime/sequences.py` step by step (the same checks in the same order, then the
same table operations), through the entry ops, so the table's storage journals every change:

- **fork** `src >> dst at p`: `reset` of the prefix `[dst]`, then per middle key an
  `oi_table.copy_row` of `[src, ..., 0 : p]` to `[dst, ...]` (a paged storage shares whole pages);
  `len[dst] = p`;
- **pop** `n ... b`: per middle key a `reset ... keep_sizes` of each full key `[b, ..., t]`,
  `len[b] - n <= t < len[b]`, then one `resize` per table; `len[b] -= n`;
- **reset where m**: per sequence with `m[b]` nonzero, a `reset` of the prefix `[b]`; `len[b] = 0`.

The middle keys range over the tables' sizes when the statement starts (as the reference's). The
lengths vector's bytes are journaled before it changes.
"""

from __future__ import annotations

from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import IntegerType, MemRefType
from xdsl.ir import SSAValue

from oi_compiler.dialects.oi import CacheForkOp, CachePopOp, CacheResetWhereOp
from oi_compiler.dialects.oi_table import CopyRowOp, ResetOp, ResizeOp
from oi_compiler.dtypes import FLOAT_DTYPES, numpy_dtype
from oi_compiler.lowering.analysis import VarLayout, escape_braces, unsupported
from oi_compiler.lowering.step_values import signless

CACHE = "CacheError"


class SequenceGroup:
    """The tables and lengths vector of one sequence statement, emitted through `emitter`."""

    def __init__(self, emitter, op, what: str):
        self.emitter, self.op, self.what = emitter, op, what
        self.ir = emitter.ir
        self.tables: list[VarLayout] = []
        for name in op.table_names:
            table = emitter.storage(name, what, op)
            if table is not None and table.kind != "table":
                emitter.static_error(CACHE, f"{what} expects a @table variable, got {name}", op)
                table = None
            self.tables.append(table)
        self.lengths = emitter.storage(op.lengths.data, what, op)
        if self.lengths is not None and self.lengths.kind != "buffer":
            raise unsupported(f"{what} with lengths {op.lengths.data}", op)

    @property
    def ok(self) -> bool:
        return self.lengths is not None and all(t is not None for t in self.tables)

    def fail_if(self, cond: SSAValue, message: str, args=()) -> None:
        self.ir.fail_if(cond, lambda: self.emitter.site(CACHE, message, self.op), list(args))

    # --- the lengths ---------------------------------------------------------------------
    def count(self) -> SSAValue:
        return self.ir.const(self.lengths.shape[0])

    def memref(self) -> SSAValue:
        return self.ir.view(self.lengths.slot, MemRefType(signless(self.lengths.dtype), list(self.lengths.shape)))

    def length(self, b: SSAValue) -> SSAValue:
        return self.emitter.widen(self.ir.emit(memref.LoadOp.get(self.memref(), [b])), self.lengths.dtype)

    def set_length(self, b: SSAValue, value: SSAValue) -> None:
        """`len[b] = value`, truncated to the vector's width (journaled first)."""
        ir, element = self.ir, signless(self.lengths.dtype)
        size = numpy_dtype(self.lengths.dtype).itemsize
        ir.log_bytes(self.lengths.slot, ir.mul(b, ir.const(size)), ir.const(size))
        word = ir.to_i64(value)
        if element.width.data < 64:
            word = ir.emit(arith.TruncIOp(word, element))
        ir.emit(memref.StoreOp.get(word, self.memref(), [b]))

    def index(self, value) -> SSAValue:
        """A sequence, position or count: an index value, never negative."""
        ir = self.ir
        k = self.emitter.index_value(value, self.op, cache=True)
        self.fail_if(ir.cmp("slt", k, ir.const(0)), "cache index cannot be negative")
        return k

    def check_sequence(self, b: SSAValue) -> None:
        message = escape_braces(f"{self.what} sequence ") + "{0}" + f" is out of range for {self.lengths.shape[0]} sequences"
        self.fail_if(self.ir.cmp("sge", b, self.count()), message, [b])

    # --- the tables ----------------------------------------------------------------------
    def middle_sizes(self, table: VarLayout) -> list[SSAValue]:
        return [self.ir.word(table.size_slot(d)) for d in range(1, table.rank - 1)]

    def reset(self, table: VarLayout, key: list[SSAValue], *, keep_sizes: bool = False) -> None:
        self.emitter.keep_stale_views(table, None)
        self.ir.emit(ResetOp(self.emitter.table(table), key, keep_sizes))


def _group(emitter, op, what: str) -> SequenceGroup | None:
    """The statement's group, or None when a check that always fails was emitted instead."""
    group = SequenceGroup(emitter, op, what)
    if not group.ok:
        return None
    lengths = group.lengths
    if lengths.dtype in FLOAT_DTYPES or lengths.dtype == "bool" or len(lengths.shape) != 1:
        emitter.static_error(CACHE, f"{what} lengths {lengths.name} must be an integer vector", op)
        return None
    return group


def lower_fork(emitter, op: CacheForkOp) -> None:
    group = _group(emitter, op, "cache.fork")
    if group is None:
        return
    ir = group.ir
    src, dst, position = group.index(op.src), group.index(op.dst), group.index(op.position)
    group.check_sequence(src)
    group.check_sequence(dst)
    group.fail_if(ir.cmp("eq", src, dst), "cache.fork source and destination are both sequence {0}", [src])
    length = group.length(src)
    group.fail_if(ir.cmp("sgt", position, length),
                  "cache.fork position {0} is past the length {1} of sequence {2}", [position, length, src])  # fmt: skip
    for table in group.tables:
        middles = group.middle_sizes(table)
        group.reset(table, [dst])
        value = group.emitter.table(table)
        with ir.for_each(middles) as middle, ir.if_(ir.cmp("sgt", position, ir.const(0))):
            # the reference reads and writes entry by entry: the first entry's checks, then the
            # entry past a @fixed last index, if the row reaches it
            for row in (src, dst):
                if emitter.selection(table, [("index", k) for k in [row, *middle, ir.const(0)]], op) is None:
                    return
            limit = table.fixed[-1]
            if limit is not None:
                emitter.check_fixed(table, table.rank - 1, position, op, "index value", ir.const(limit))
            ir.emit(CopyRowOp(value, [src, *middle], ir.const(0), position, [dst, *middle]))
    group.set_length(dst, position)


def lower_pop(emitter, op: CachePopOp) -> None:
    group = _group(emitter, op, "cache.pop")
    if group is None:
        return
    ir = group.ir
    count, b = group.index(op.count), group.index(op.sequence)
    group.check_sequence(b)
    length = group.length(b)
    group.fail_if(ir.cmp("sgt", count, length), "cache.pop {0} entries from sequence {1} of length {2}", [count, b, length])
    first = ir.sub(length, count)
    for table in group.tables:  # each popped entry cleared, then the sizes recomputed once
        extents = [*group.middle_sizes(table), count]
        with ir.for_each(extents) as key:
            group.reset(table, [b, *key[:-1], ir.add(first, key[-1])], keep_sizes=True)
        cleared = ir.const_of(1, IntegerType(1))  # as the reference, only if some entry was reset
        for extent in extents:
            cleared = ir.and_(cleared, ir.cmp("sgt", extent, ir.const(0)))
        with ir.if_(cleared):
            ir.emit(ResizeOp(emitter.table(table)))
    group.set_length(b, first)


def lower_reset_where(emitter, op: CacheResetWhereOp) -> None:
    group = _group(emitter, op, "cache.reset")
    if group is None:
        return
    ir = group.ir
    mask_var = emitter.plan.vars.get(op.mask.data)
    if mask_var is None or mask_var.kind != "buffer" or len(mask_var.shape) != 1:
        raise unsupported(f"cache.reset where {op.mask.data}", op)
    emitter.check_exists(mask_var, op)
    if mask_var.shape != group.lengths.shape:
        emitter.static_error(CACHE, f"cache.reset where: the mask has shape {list(mask_var.shape)}, "
                                    f"the lengths {list(group.lengths.shape)}", op)  # fmt: skip
        return
    mask = emitter.var_memref(mask_var)
    with ir.for_each([group.count()]) as (b,):
        flag = ir.emit(memref.LoadOp.get(mask, [b]))  # an integer or bool (the verifier's rule)
        with ir.if_(ir.emit(arith.CmpiOp(flag, ir.const_of(0, flag.type), "ne"))):
            for table in group.tables:
                group.reset(table, [b])
            group.set_length(b, ir.const(0))



