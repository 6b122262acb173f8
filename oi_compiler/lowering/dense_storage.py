"""Dense storage of a table: the lowering of the entry ops (`oi_table.write/read/view/reset/resize/copy_row`).

A dense table keeps its entries in one row-major box of shape `capacity ++ entry` (`data`, unwritten
entries hold `@init`), a present byte per entry (`present`), and per index a capacity and a size
(`analysis.var_words`). On it:

- a **selection** raises each growable index's size to cover it (`@oi_raise_size`, which asks the
  host for capacity past the current one: the host doubles it); `@fixed` sizes never change (the
  conversion checked the selection against them, at the statement's site);
- `write` journals the entry's present byte and marks it present if it was absent, else journals
  its bytes (an absent entry holds `@init`: undoing its present byte, the host refills it,
  `NativeState.rollback`; an append journals one byte, not a row), then copies the source in;
  `read` copies the selection out, `view` is a strided `memref.subview` of it; both mark the
  selected entries present (`@oi_mark_present_<rank>`, which journals each change);
- `reset` journals and refills the entries under a prefix with `@init`, clears their present
  bytes, then recomputes the sizes from the entries still present (`TableStorage.reset`), unless
  `keep_sizes` asks a later `resize` to do it once;
- `copy_row` views each source entry and writes it to the destination row, one by one.

Everything it emits is the table level's own (named words and buffers, `oi_table.journal`, calls
of the shared helpers), so `--lower-undo-log` and `--lower-tables` run after it unchanged. The paged
storage (`lowering/paged_storage.py`) is another lowering of the same ops.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import IntegerType, MemRefType, StridedLayoutAttr
from xdsl.ir import SSAValue

from oi_compiler.dialects.oi_table import (
    BufferOp,
    JournalOp,
    SetWordOp,
)
from oi_compiler.dtypes import dtype_type
from oi_compiler.lowering.step_ir import DYN, I8
from oi_compiler.lowering.step_values import fill, strided_like
from oi_compiler.lowering.table_emitter import Selection, TableEmitter


class DenseTable(TableEmitter):
    """Emits one dense table's entry operations through `ir` (positioned where the op was)."""

    # --- buffers ---------------------------------------------------------------------------
    def data(self) -> SSAValue:
        ty = MemRefType(dtype_type(self.table.dtype), [DYN] * self.table.rank + list(self.table.shape))
        return self.ir.emit(BufferOp(self.name, "data", self.capacities(), ty))

    def present(self) -> SSAValue:
        return self.ir.emit(BufferOp(self.name, "present", self.capacities(), MemRefType(I8, [DYN] * self.table.rank)))

    def linear(self, key: Sequence[SSAValue]) -> SSAValue:
        """The entry number of `key` in the current capacity box (row-major)."""
        ir, result = self.ir, self.ir.const(0)
        for k, cap in zip(key, self.capacities()):
            result = ir.add(ir.mul(result, cap), k)
        return result

    # --- selections ------------------------------------------------------------------------
    def mark_present(self, selection: Selection) -> None:
        self.call(f"oi_mark_present_{self.table.rank}", [*(item[0] for item in selection), *self.counts(selection)])

    def subview(self, selection: Selection, result: MemRefType) -> SSAValue:
        """The selected entries of the data, indexed dims dropped (a strided view)."""
        offsets = [item[0] for item in selection] + [0] * len(self.table.shape)
        static = iter(result.get_shape())  # a slice's extent, when the result type knows it
        sizes = []
        for item in selection:
            if len(item) == 2:
                extent = next(static)
                sizes.append(extent if extent >= 0 else self.ir.sub(item[1], item[0]))
            else:
                sizes.append(1)
        return self.ir.subview(self.data(), offsets, sizes + list(self.table.shape), result)

    # --- the four ops ----------------------------------------------------------------------
    def write(self, key: Sequence[SSAValue], source: SSAValue) -> None:
        ir = self.ir
        self.raise_sizes([(k,) for k in key])
        linear = self.linear(key)
        size = ir.const(self.entry_bytes)
        present = self.present()
        absent = ir.emit(arith.CmpiOp(ir.emit(memref.LoadOp.get(present, list(key))), ir.const_of(0, I8), "eq"))
        with ir.if_else(absent) as otherwise:
            ir.emit(JournalOp(self.name, "present", linear, ir.const(1)))
            ir.emit(memref.StoreOp.get(ir.const_of(1, I8), present, list(key)))
            otherwise()  # an absent entry holds @init: its bytes need no journal (the host refills them)
            ir.emit(JournalOp(self.name, "data", ir.mul(linear, size), size))
        entry = strided_like(MemRefType(dtype_type(self.table.dtype), list(self.table.shape)), self.table)
        ir.emit(memref.CopyOp(source, self.subview([(k,) for k in key], entry)))

    def read(self, selection: Selection, target: SSAValue) -> None:
        self.raise_sizes(selection)
        self.mark_present(selection)
        self.ir.emit(memref.CopyOp(self.subview(selection, strided_like(target.type, self.table)), target))

    def view(self, selection: Selection, result: MemRefType, gather: str | None = None) -> SSAValue:
        """The selected entries in place (a dense table never gathers: `gather` is None)."""
        self.raise_sizes(selection)
        self.mark_present(selection)
        return self.subview(selection, result)

    def copy_row(self, source: list[SSAValue], bounds: tuple[SSAValue, SSAValue], dest: list[SSAValue]) -> None:
        """Entries `(source..., t)`, `t` in `bounds`, copied to `(dest..., t)` one by one (a view of
        each, then a write of it)."""
        ir = self.ir
        entry = strided_like(MemRefType(dtype_type(self.table.dtype), list(self.table.shape)), self.table)
        with ir.for_(bounds[0], bounds[1]) as t:
            view = self.view([(k,) for k in [*source, t]], entry)
            self.write([*dest, t], view)

    def reset(self, prefix: Sequence[SSAValue], *, keep_sizes: bool = False) -> None:
        if len(prefix) <= self.table.rank:  # a longer prefix names no entry
            self.clear(list(prefix))
        if not keep_sizes:
            self.recompute_sizes()

    def clear(self, prefix: list[SSAValue]) -> None:
        """Entries whose first indices are `prefix` go back to `@init` and stop being present."""
        ir, table = self.ir, self.table
        caps = self.capacities()
        inside = ir.const_of(1, IntegerType(1))
        for k, cap in zip(prefix, caps):
            inside = ir.and_(inside, ir.cmp("slt", k, cap))
        with ir.if_(inside):
            caps = self.capacities()
            first = ir.const(0)
            for k, cap in zip(prefix + [ir.const(0)] * (table.rank - len(prefix)), caps):
                first = ir.add(ir.mul(first, cap), k)
            count = ir.product(caps[len(prefix) :])
            size = ir.const(self.entry_bytes)
            ir.emit(JournalOp(self.name, "data", ir.mul(first, size), ir.mul(count, size)))
            ir.emit(JournalOp(self.name, "present", first, count))
            total = ir.product(caps)
            entry = ir.product(list(table.shape))
            element = dtype_type(table.dtype)
            flat = ir.emit(BufferOp(self.name, "data", [ir.mul(total, entry)], MemRefType(element, [DYN])))
            region = ir.subview(flat, [ir.mul(first, entry)], [ir.mul(count, entry)],
                                MemRefType(element, [DYN], StridedLayoutAttr([1], None)))  # fmt: skip
            fill(ir, region, table.init, table.dtype)
            present = ir.emit(BufferOp(self.name, "present", [total], MemRefType(I8, [DYN])))
            fill(ir, ir.bytes_range(present, first, count), 0, "u8")

    def recompute_sizes(self) -> None:
        """Sizes from the present entries (`TableStorage.reset`); `@fixed` sizes stay."""
        ir, table = self.ir, self.table
        for d in range(table.rank):
            ir.emit(SetWordOp(self.name, f"size.{d}", ir.const(table.fixed[d] or 0)))
        if all(f is not None for f in table.fixed):
            return
        present = self.present()
        with ir.for_each(self.capacities()) as key:
            flag = ir.emit(memref.LoadOp.get(present, key))
            with ir.if_(ir.emit(arith.CmpiOp(flag, ir.const_of(0, I8), "ne"))):
                for d, k in enumerate(key):
                    if table.fixed[d] is None:
                        size = self.word(f"size.{d}")
                        ir.emit(SetWordOp(self.name, f"size.{d}", ir.max(size, ir.add(k, ir.const(1)))))
