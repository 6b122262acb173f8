"""Paged storage of a table (`@paged(page = P)`): the lowering of the entry ops on pages.

A paged table keeps its entries in fixed-size **pages** of `P` entries along its last index, taken
from one **pool**, with a **page table** per row of its other indices (vLLM's block table,
FlashInfer's paged KV layout). Its words are a dense table's (`data` is the pool's entries,
`present` their present bytes, per index a capacity and a size) and three more:

- `pages`: the page table, `[rows' capacities..., columns]` of i64 page numbers (-1: no page yet),
  where entry `(row..., t)` lives in page `pages[row..., t / P]` at `t % P`; `columns` is
  `ceil(capacity / P)` of the last index (capacities are a dense table's);
- `refs`: each page's reference count (a page `cache.fork` shares has more than one);
- `pool`: the pool's size in pages.

So entry `(row..., t)` is pool entry `pages[row..., t / P] * P + t % P`. On it:

- `write`, and a `read` that marks an absent entry present, first make the entry's page the
  row's own: when it has no page, or shares it, the host (`oi_grow "page"`) takes a free page
  (filled with `@init`) or copies the shared one (copy-on-write), and records how to undo it; then
  the entry's bytes are journaled by pool offset and changed as on dense storage;
- `read` gathers the selection into the destination a run at a time: per row, each page the slice
  touches gives one contiguous run of pool entries, marked present entry by entry, then copied
  with one `memref.copy`; `view` of one entry is a view of it in its page, of a slice of one row
  within one page a view of that run of the pool, and otherwise a view of the entries gathered
  into the destination's own gather buffer (as `read` gathers);
- `reset` of whole rows gives their pages back to the pool (`oi_grow "release"`); of one entry,
  refills it with `@init`; sizes are recomputed from the present entries by the host
  (`oi_grow "sizes"`), which also gives back pages left without a present entry (after `pop`);
- `copy_row` (fork) shares the source's whole pages (copy on write) and copies partial ones;
- growth of an index asks the host for a larger page table (`oi_grow "table"`, as on dense
  storage): the entries themselves never move; the pool doubles only when all its pages are taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import IntegerType, MemRefType, StridedLayoutAttr, i64
from xdsl.ir import SSAValue

from oi_compiler.dialects.oi_table import BufferOp, GrowOp, JournalOp, WordOp
from oi_compiler.dtypes import dtype_type
from oi_compiler.lowering.step_ir import DYN, I8
from oi_compiler.lowering.step_values import fill, strided_like
from oi_compiler.lowering.table_emitter import Selection, TableEmitter


class PagedTable(TableEmitter):
    """Emits one paged table's entry operations through `ir` (positioned where the op was)."""

    @property
    def page(self) -> int:
        return self.table.page

    # --- words and buffers -----------------------------------------------------------------
    def pool_entries(self) -> SSAValue:
        return self.ir.mul(self.word("pool"), self.ir.const(self.page))

    def data(self) -> SSAValue:
        ty = MemRefType(dtype_type(self.table.dtype), [DYN, *self.table.shape])
        return self.ir.emit(BufferOp(self.name, "data", [self.pool_entries()], ty))

    def present(self) -> SSAValue:
        return self.ir.emit(BufferOp(self.name, "present", [self.pool_entries()], MemRefType(I8, [DYN])))

    def columns(self, capacity: SSAValue) -> SSAValue:
        """The page table's columns for the last index's capacity: `ceil(capacity / P)`."""
        ir = self.ir
        return ir.emit(arith.DivUIOp(ir.add(capacity, ir.const(self.page - 1)), ir.const(self.page)))

    def page_table(self) -> SSAValue:
        caps = self.capacities()
        sizes = [*caps[:-1], self.columns(caps[-1])]
        return self.ir.emit(BufferOp(self.name, "pages", sizes, MemRefType(i64, [DYN] * self.table.rank)))

    def refs(self) -> SSAValue:
        return self.ir.emit(BufferOp(self.name, "refs", [self.word("pool")], MemRefType(i64, [DYN])))

    def column(self, key: Sequence[SSAValue]) -> SSAValue:
        """The page-table column of `key`: its last index over the page size."""
        return self.ir.emit(arith.DivUIOp(key[-1], self.ir.const(self.page)))

    def page_of(self, key: Sequence[SSAValue]) -> SSAValue:
        """The page number holding `key` (-1: none yet), as an index."""
        column = self.column(key)
        number = self.ir.emit(memref.LoadOp.get(self.page_table(), [*key[:-1], column]))
        return self.ir.to_index(number)

    def row(self, leading: Sequence[SSAValue]) -> SSAValue:
        """The row number of the leading indices in the page table's current capacity box."""
        ir, row = self.ir, self.ir.const(0)
        for k, cap in zip(leading, self.capacities()[:-1]):
            row = ir.add(ir.mul(row, cap), k)
        return row

    def ask_page(self, key: Sequence[SSAValue]) -> None:
        """The host gives `key`'s row a page of its own for `key` (a new one, or a copy of a shared one)."""
        column = self.column(key)
        self.ir.emit(GrowOp("page", self.name, "data", [self.row(key[:-1]), column]))

    def entry(self, key: Sequence[SSAValue], *, own: bool) -> SSAValue:
        """The pool entry of `key`, after giving it a page (`own`: one no other row shares, as a
        change needs)."""
        ir = self.ir
        page = self.page_of(key)
        with ir.if_else(ir.cmp("slt", page, ir.const(0))) as otherwise:
            self.ask_page(key)
            otherwise()
            if own:
                count = ir.emit(memref.LoadOp.get(self.refs(), [page]))
                with ir.if_(ir.emit(arith.CmpiOp(count, ir.const_of(1, i64), "ne"))):
                    self.ask_page(key)
        offset = ir.emit(arith.RemUIOp(key[-1], ir.const(self.page)))
        return ir.add(ir.mul(self.page_of(key), ir.const(self.page)), offset)

    def entry_view(self, number: SSAValue) -> SSAValue:
        entry = strided_like(MemRefType(dtype_type(self.table.dtype), list(self.table.shape)), self.table)
        return self.ir.subview(self.data(), [number] + [0] * len(self.table.shape), [1, *self.table.shape], entry)

    def mark(self, key: Sequence[SSAValue]) -> None:
        """`key` present (journaled), on a page of its row's own if it was not."""
        ir = self.ir
        number = self.entry(key, own=False)
        flag = ir.emit(memref.LoadOp.get(self.present(), [number]))
        with ir.if_(ir.emit(arith.CmpiOp(flag, ir.const_of(0, I8), "eq"))):
            number = self.entry(key, own=True)
            ir.emit(JournalOp(self.name, "present", number, ir.const(1)))
            ir.emit(memref.StoreOp.get(ir.const_of(1, I8), self.present(), [number]))

    # --- the ops ---------------------------------------------------------------------------
    def write(self, key: Sequence[SSAValue], source: SSAValue) -> None:
        ir = self.ir
        self.raise_sizes([(k,) for k in key])
        number = self.entry(key, own=True)
        size = ir.const(self.entry_bytes)
        ir.emit(JournalOp(self.name, "data", ir.mul(number, size), size))
        flag = ir.emit(memref.LoadOp.get(self.present(), [number]))
        with ir.if_(ir.emit(arith.CmpiOp(flag, ir.const_of(0, I8), "eq"))):
            ir.emit(JournalOp(self.name, "present", number, ir.const(1)))
            ir.emit(memref.StoreOp.get(ir.const_of(1, I8), self.present(), [number]))
        ir.emit(memref.CopyOp(source, self.entry_view(number)))

    def read(self, selection: Selection, target: SSAValue) -> None:
        """The selected entries into `target`, a run of the last index at a time: each run within
        one page is one copy out of the pool (a gather across pages)."""
        self.raise_sizes(selection)
        self.read_selection(selection, target)

    def read_selection(self, selection: Selection, target: SSAValue) -> None:
        """`read` once the sizes cover the selection."""
        ir = self.ir
        *leading, last = selection
        sliced = [d for d, item in enumerate(leading) if len(item) == 2]
        with ir.for_each(self.counts(leading)) as ivs:
            row = [ir.add(item[0], iv) for item, iv in zip(leading, ivs)]
            place = [ivs[d] for d in sliced]
            if len(last) == 1:  # one entry of the row
                self.mark([*row, last[0]])
                entry = self.entry_view(self.entry([*row, last[0]], own=False))
                ir.emit(memref.CopyOp(entry, self.place(target, place, None)))
            else:
                self.read_runs(row, last, target, place)

    def read_runs(self, row: list[SSAValue], last: tuple[SSAValue, SSAValue], target: SSAValue,
                  place: list[SSAValue]) -> None:  # fmt: skip
        """Entries `(row..., start .. end - 1)` to `target` at `place`, one copy per page."""
        ir, P = self.ir, self.ir.const(self.page)
        start, end = last
        first = ir.emit(arith.DivUIOp(start, P))
        columns = ir.emit(arith.DivUIOp(ir.add(end, ir.sub(P, ir.const(1))), P))
        columns = ir.select(ir.cmp("slt", start, end), columns, first)  # an empty run takes no page
        with ir.for_(first, columns) as column:
            low = ir.max(start, ir.mul(column, P))
            high = ir.add(ir.mul(column, P), P)
            high = ir.select(ir.cmp("slt", end, high), end, high)
            run, count = self.page_run(row, low, high)
            ir.emit(memref.CopyOp(run, self.place(target, [*place, ir.sub(low, start)], count)))

    def page_run(self, row: list[SSAValue], low: SSAValue, high: SSAValue,
                 ty: MemRefType | None = None) -> tuple[SSAValue, SSAValue]:  # fmt: skip
        """Entries `(row..., low .. high - 1)`, which lie in one page, marked present, then seen in
        place in the pool (as `ty`, default a row-major run); and their count."""
        ir, shape = self.ir, list(self.table.shape)
        with ir.for_(low, high) as t:
            self.mark([*row, t])
        count = ir.sub(high, low)
        if ty is None:
            ty = MemRefType(dtype_type(self.table.dtype), [DYN, *shape], StridedLayoutAttr(_row_major([DYN, *shape]), None))
        number = self.entry([*row, low], own=False)
        run = ty.get_shape()[0]  # a view's type knows the run's length where the read's slice fixes it
        size = run if run >= 0 else count  # (a full slice of a @fixed index), as gather_view's does
        return ir.subview(self.data(), [number] + [0] * len(shape), [size, *shape], ty), count

    def place(self, target: SSAValue, place: list[SSAValue], count: SSAValue | None) -> SSAValue:
        """Where in `target` its entries at `place` go (its leading indices; with `count`, a run of
        that many along the last)."""
        shape = list(self.table.shape)
        run = [DYN] if count is not None else []
        strided = isinstance(target.type.layout, StridedLayoutAttr)  # its strides are run-time values
        strides = [None] * (len(run) + len(shape)) if strided else _row_major([*run, *shape])
        ty = MemRefType(target.type.element_type, [*run, *shape], StridedLayoutAttr(strides, None))
        sizes = [1] * (len(place) - len(run)) + ([count] if count is not None else []) + shape
        return self.ir.subview(target, place + [0] * len(shape), sizes, ty)

    def view(self, selection: Selection, result: MemRefType, gather: str | None = None) -> SSAValue:
        """One entry: a view of it in its page. A slice (`gather` names a variable, the verifier
        makes sure): where it is a run of one row within one page, a view of that run in the pool;
        otherwise the entries gathered into that variable's gather buffer, and a view of it."""
        self.raise_sizes(selection)
        if not any(len(item) == 2 for item in selection):
            key = [item[0] for item in selection]
            self.mark(key)
            return self.entry_view(self.entry(key, own=False))
        *leading, last = selection
        if any(len(item) == 2 for item in leading):  # entries of several rows: never one page
            return self.gather_view(selection, result, gather)
        ir, P = self.ir, self.ir.const(self.page)
        start, end = last
        first, last_page = ir.emit(arith.DivUIOp(start, P)), ir.emit(arith.DivUIOp(ir.sub(end, ir.const(1)), P))
        in_page = ir.and_(ir.cmp("slt", start, end), ir.cmp("eq", first, last_page))
        row = [item[0] for item in leading]
        return ir.choose(in_page, lambda: self.page_run(row, start, end, result)[0],
                         lambda: self.gather_view(selection, result, gather))  # fmt: skip

    def gather_view(self, selection: Selection, result: MemRefType, gather: str) -> SSAValue:
        """The selection copied into the gather buffer of the variable `gather` (grown by the host
        past its capacity, as a resizable destination's), seen as the view's type."""
        ir, table = self.ir, self.table
        counts = [ir.sub(item[1], item[0]) for item in selection if len(item) == 2]
        need = ir.product([*counts, ir.const(math.prod(table.shape))])
        with ir.if_(ir.cmp("sgt", need, ir.emit(WordOp(gather, "gather.capacity")))):
            ir.emit(GrowOp("resizable", gather, "gather", [need, ir.const(0)]))
        ty = MemRefType(dtype_type(table.dtype), [DYN] * len(counts) + list(table.shape))
        buffer = ir.emit(BufferOp(gather, "gather", counts, ty))
        self.read_selection(selection, buffer)
        sizes = [d if d >= 0 else n for d, n in zip(result.get_shape(), [*counts, *table.shape])]
        return ir.subview(buffer, [0] * len(sizes), sizes, result)

    def copy_row(self, source: list[SSAValue], bounds: tuple[SSAValue, SSAValue], dest: list[SSAValue]) -> None:
        """As on dense storage, but a whole page of the source the destination has no page for is
        shared (its page number copied, its count raised: copy on write), not copied."""
        ir, P = self.ir, self.ir.const(self.page)
        start, end = bounds
        with ir.if_(ir.cmp("slt", start, end)):
            self.raise_sizes([*((k,) for k in source), (start, end)])
            self.raise_sizes([*((k,) for k in dest), (start, end)])
            with ir.for_(start, end) as t:  # what the reads do: each source entry present
                self.mark([*source, t])
            first = ir.emit(arith.DivUIOp(ir.add(start, ir.sub(P, ir.const(1))), P))  # whole pages inside
            last = ir.emit(arith.DivUIOp(end, P))
            head = ir.select(ir.cmp("slt", end, ir.mul(first, P)), end, ir.mul(first, P))  # the first page's part
            with ir.for_(start, head) as t:
                self.copy_entry(source, dest, t)
            with ir.for_(first, ir.max(first, last)) as column:
                self.share_page(source, dest, column)
            with ir.for_(ir.max(ir.mul(last, P), head), end) as t:  # the last page's part
                self.copy_entry(source, dest, t)

    def copy_entry(self, source: list[SSAValue], dest: list[SSAValue], t: SSAValue) -> None:
        self.write([*dest, t], self.entry_view(self.entry([*source, t], own=False)))

    def share_page(self, source: list[SSAValue], dest: list[SSAValue], column: SSAValue) -> None:
        """The destination's page at `column` becomes the source's (journaled), unless it has one:
        then its entries are copied one by one."""
        ir = self.ir
        page = self.ir.to_index(ir.emit(memref.LoadOp.get(self.page_table(), [*source, column])))
        mine = self.ir.to_index(ir.emit(memref.LoadOp.get(self.page_table(), [*dest, column])))
        with ir.if_else(ir.cmp("slt", mine, ir.const(0))) as otherwise:
            columns = self.columns(self.capacities()[-1])
            where = ir.add(ir.mul(self.row(dest), columns), column)
            eight = ir.const(8)
            ir.emit(JournalOp(self.name, "pages", ir.mul(where, eight), eight))
            ir.emit(memref.StoreOp.get(ir.to_i64(page), self.page_table(), [*dest, column]))
            ir.emit(JournalOp(self.name, "refs", ir.mul(page, eight), eight))
            refs = self.refs()
            count = ir.emit(memref.LoadOp.get(refs, [page]))
            ir.emit(memref.StoreOp.get(ir.emit(arith.AddiOp(count, ir.const_of(1, i64))), refs, [page]))
            otherwise()
            base = ir.mul(column, ir.const(self.page))
            with ir.for_(base, ir.add(base, ir.const(self.page))) as t:
                self.copy_entry(source, dest, t)

    def reset(self, prefix: Sequence[SSAValue], *, keep_sizes: bool = False) -> None:
        ir, rank = self.ir, self.table.rank
        prefix = list(prefix)
        if len(prefix) <= rank:  # a longer prefix names no entry
            caps = self.capacities()
            inside = ir.const_of(1, IntegerType(1))
            for k, cap in zip(prefix, caps):
                inside = ir.and_(inside, ir.cmp("slt", k, cap))
            with ir.if_(inside):
                if len(prefix) == rank:
                    self.clear_entry(prefix)
                else:  # whole rows: their pages go back to the pool
                    first = self.row(prefix + [ir.const(0)] * (rank - 1 - len(prefix)))
                    count = ir.product(self.capacities()[len(prefix) : rank - 1])
                    ir.emit(GrowOp("release", self.name, "data", [first, count]))
        if not keep_sizes:
            self.recompute_sizes()

    def clear_entry(self, key: list[SSAValue]) -> None:
        """One entry back to `@init`, absent (nothing to do when its page was never taken)."""
        ir = self.ir
        with ir.if_(ir.cmp("sge", self.page_of(key), ir.const(0))):
            number = self.entry(key, own=True)
            size = ir.const(self.entry_bytes)
            ir.emit(JournalOp(self.name, "data", ir.mul(number, size), size))
            ir.emit(JournalOp(self.name, "present", number, ir.const(1)))
            fill(ir, self.entry_view(number), self.table.init, self.table.dtype)
            ir.emit(memref.StoreOp.get(ir.const_of(0, I8), self.present(), [number]))

    def recompute_sizes(self) -> None:
        """Sizes from the present entries (the host scans the pages; `@fixed` sizes stay) and pages
        left with no present entry back to the pool."""
        zero = self.ir.const(0)
        self.ir.emit(GrowOp("sizes", self.name, "data", [zero, zero]))


def _row_major(shape: list[int]) -> list[int | None]:
    """Row-major strides of `shape`, the first dim's included (a dynamic first extent is fine)."""
    strides, running = [], 1
    for d in reversed(shape):
        strides.insert(0, running)
        running *= max(d, 1)
    return strides
