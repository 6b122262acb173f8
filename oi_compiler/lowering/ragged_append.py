"""`cache.append x >> K[off]` to the table level: checks, then one `oi_table.write` per cell.

For a table `K(b, ..., l)` and a source `x` of shape `[B, ..., L_new] + entry`, the statement is
`K[b, ..., off[b] + l] = x[b, ..., l]` for every cell (baracuda's `KvCacheAppendPlan`). It emits,
in `TableStorage.append`'s order (runtime/tables.py):

1. the source's shape and the number of offsets, checked (statically when the shapes are known);
2. when no extent is zero: every offset non-negative and, with policy `error` and a `@fixed` last
   index, `off[b] + L_new` within it (checked for every sample before anything is written);
3. a loop nest over the cells, each an `oi_table.write` of the source's entry (a strided view, no
   copy) at its key, after the same checks as a `cache.write` there (`@fixed` extents); with policy
   `skip`, cells past a `@fixed` last index are not written.

The table's storage (`--lower-table-storage`) journals each written entry, so a step that fails
later puts them back.
"""

from __future__ import annotations

from xdsl.dialects import memref
from xdsl.dialects.builtin import IntegerType, MemRefType, StridedLayoutAttr
from xdsl.ir import SSAValue

from oi_compiler.dialects.oi import CacheAppendOp
from oi_compiler.dialects.oi_table import WriteOp
from oi_compiler.dtypes import PACKED_DTYPES, dtype_type
from oi_compiler.lowering.analysis import VarLayout, escape_braces, unsupported
from oi_compiler.lowering.step_ir import DYN
from oi_compiler.lowering.step_values import cast_shape, strided_like
from oi_compiler.verify.scope import shape_text

CACHE = "CacheError"


def lower_cache_append(emitter, op: CacheAppendOp) -> None:
    """Emit `op` through the step emitter `emitter` (positioned where the statement runs)."""
    ir, name = emitter.ir, op.table.data
    table = emitter.storage(name, "cache.append", op)
    if table is None:
        return
    if table.kind != "table":
        emitter.static_error(CACHE, f"cache.append expects a @table variable, got {name}", op)
        return
    if table.dtype in PACKED_DTYPES:
        emitter.static_error(CACHE, "cache table packed dtypes not supported", op)
        return
    source_var = emitter.source_var(op)
    emitter.check_exists(source_var, op)
    source = emitter.source(op, source_var)
    offsets_var = emitter.plan.vars.get(op.offsets.data)
    if offsets_var is None or offsets_var.kind not in ("buffer", "resizable", "view"):
        raise unsupported(f"cache.append with offsets {op.offsets.data}", op)
    emitter.check_exists(offsets_var, op)
    offsets = emitter.var_memref(offsets_var)
    source = _checked_source(emitter, op, table, source_var, source)
    if source is None:
        return
    rank = table.rank
    extents = [_dim(ir, source, d) for d in range(rank)]
    _check_offsets_shape(emitter, op, table, offsets, extents[0])
    nonempty = ir.const_of(1, IntegerType(1))
    for extent in extents:
        nonempty = ir.and_(nonempty, ir.cmp("sgt", extent, ir.const(0)))
    limit = table.fixed[-1]
    skip = bool(op.skip.value.data)
    with ir.if_(nonempty):
        with ir.for_each(extents[:1]) as (b,):
            off = _offset(emitter, offsets, offsets_var, b)
            message = escape_braces(f"cache.append {name} offset ") + "{0}" + " of sample {1} is negative"
            ir.fail_if(ir.cmp("slt", off, ir.const(0)), lambda: emitter.site(CACHE, message, op), [off, b])
            if limit is not None and not skip:
                past = ir.cmp("sgt", off, ir.sub(ir.const(limit), extents[-1]))
                message = (escape_braces(f"cache.append {name} sample ") + "{0} at offset {1} with {2} new entries "
                           + f"exceeds fixed size {limit} of index {rank - 1}")  # fmt: skip
                ir.fail_if(past, lambda: emitter.site(CACHE, message, op), [b, off, extents[-1]])
        value = emitter.table(table)
        entry_type = source_entry_type(source.type, table)
        with ir.for_each(extents) as cell:
            off = _offset(emitter, offsets, offsets_var, cell[0])
            if skip and limit is not None:  # off + l < limit, asked without computing off + l (it may wrap)
                with ir.if_(ir.cmp("slt", off, ir.sub(ir.const(limit), cell[-1]))):
                    key = [*cell[:-1], ir.add(off, cell[-1])]
                    _write_cell(emitter, op, table, value, source, cell, key, entry_type)
            else:  # the offsets were checked: a fixed length holds every cell, a growable one refuses
                key = [*cell[:-1], ir.add(off, cell[-1])]  # a huge growth at the sample's first cell
                _write_cell(emitter, op, table, value, source, cell, key, entry_type)


def _write_cell(emitter, op, table: VarLayout, value, source, cell, key, entry_type: MemRefType) -> None:
    ir = emitter.ir
    if emitter.selection(table, [("index", k) for k in key], op) is None:
        return
    offsets = [*cell] + [0] * len(table.shape)
    sizes = [1] * len(cell) + list(table.shape)
    entry = ir.subview(source, offsets, sizes, entry_type)
    emitter.keep_stale_views(table, key)
    ir.emit(WriteOp(value, key, entry))


def source_entry_type(source: MemRefType, table: VarLayout) -> MemRefType:
    """One entry viewed in the source: its trailing dims' strides as the source's type has them
    (row-major in a buffer of its own; a view of another table's data may step otherwise), at a
    dynamic offset."""
    entry = MemRefType(dtype_type(table.dtype), list(table.shape))
    if not isinstance(source.layout, StridedLayoutAttr):
        return strided_like(entry, table)
    strides = list(source.layout.get_strides())[len(source.get_shape()) - len(table.shape) :]
    return MemRefType(entry.element_type, list(table.shape), StridedLayoutAttr(strides, None))


def _dim(ir, value: SSAValue, d: int) -> SSAValue:
    static = value.type.get_shape()[d]
    return ir.const(static) if static >= 0 else ir.emit(memref.DimOp(value, ir.const(d)))


def _offset(emitter, offsets: SSAValue, var: VarLayout, b: SSAValue) -> SSAValue:
    """Sample `b`'s offset as an index (a u64 of 2**63 or more wraps negative, as the reference)."""
    loaded = emitter.ir.emit(memref.LoadOp.get(offsets, [b]))
    return emitter.widen(loaded, var.dtype)


#: the error words a message can show (the state's four header argument words)
MAX_ERROR_ARGS = 4


def _shape_message(emitter, op, template: str, value: SSAValue, args: list[SSAValue]) -> str:
    """`template` followed by `value`'s shape as `[{n}, ...]`, its dims arguments after `args`
    (refused when they would not fit the error words)."""
    rank = len(value.type.get_shape())
    if len(args) + rank > MAX_ERROR_ARGS:
        raise unsupported(f"{op.description} with a {rank}-dimensional operand sized at run time", op)
    args += [_dim(emitter.ir, value, d) for d in range(rank)]
    first = len(args) - rank
    return template + "[" + ", ".join("{%d}" % (first + d) for d in range(rank)) + "]"


def _checked_source(emitter, op, table: VarLayout, var: VarLayout, source: SSAValue) -> SSAValue | None:
    """The source, checked to be `[B, ..., L_new] + entry` (`TableStorage.append`'s message, with
    the dims it has when the statement runs), as a memref whose entry dims are static; None when it
    never is."""
    ir, name = emitter.ir, table.name
    rank, entry = table.rank, list(table.shape)
    expected = escape_braces(f"cache.append {name} expects a source of rank {rank + len(entry)} ending in "
                             f"{shape_text(entry)}, got ")  # fmt: skip
    shape = list(var.shape)
    static_shape = all(d is not None for d in shape)
    if len(shape) != rank + len(entry) or any(d is not None and d != e for d, e in zip(shape[rank:], entry)):
        if static_shape:
            emitter.static_error(CACHE, f"cache.append {name} expects a source of rank {rank + len(entry)} ending "
                                        f"in {shape_text(entry)}, got {shape_text(shape)}", op)  # fmt: skip
        else:
            args: list[SSAValue] = []
            message = _shape_message(emitter, op, expected, source, args)
            ir.fail_if(ir.const_of(1, IntegerType(1)), lambda: emitter.site(CACHE, message, op), args)
        return None
    dynamic = [i for i, d in enumerate(shape[rank:], start=rank) if d is None]
    if not dynamic:
        return source
    bad = ir.const_of(0, IntegerType(1))
    for i in dynamic:
        bad = ir.or_(bad, ir.cmp("ne", _dim(ir, source, i), ir.const(entry[i - rank])))
    args = []
    message = _shape_message(emitter, op, expected, source, args)
    ir.fail_if(bad, lambda: emitter.site(CACHE, message, op), args)
    return cast_shape(ir, source, [DYN if d is None else d for d in shape[:rank]] + entry)


def _check_offsets_shape(emitter, op, table: VarLayout, offsets: SSAValue, batch: SSAValue) -> None:
    """One offset per sample (`TableStorage.append`'s message, with the offsets' dims)."""
    ir = emitter.ir
    args = [batch]
    message = _shape_message(emitter, op, escape_braces(f"cache.append {table.name} expects ") +
                             "{0} offsets (one per sample), got ", offsets, args)  # fmt: skip
    if len(offsets.type.get_shape()) != 1:
        ir.fail_if(ir.const_of(1, IntegerType(1)), lambda: emitter.site(CACHE, message, op), args)
        return
    ir.fail_if(ir.cmp("ne", args[1], batch), lambda: emitter.site(CACHE, message, op), args)
