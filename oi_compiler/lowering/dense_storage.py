"""Dense storage of a table: the lowering of the entry ops (`oi_table.write/read/view/reset/resize`).

A dense table keeps its entries in one row-major box of shape `capacity ++ entry` (`data`, unwritten
entries hold `@init`), a present byte per entry (`present`), and per index a capacity and a size
(`state_layout.var_words`). On it:

- a **selection** raises each growable index's size to cover it (`@oi_raise_size`, which asks the
  host for capacity past the current one: the host doubles it); `@fixed` sizes never change (the
  conversion checked the selection against them, at the statement's site);
- `write` journals the entry's bytes and its present byte, marks it present and copies the source
  in; `read` copies the selection out, `view` is a strided `memref.subview` of it; both mark the
  selected entries present (`@oi_mark_present_<rank>`, which journals each change);
- `reset` journals and refills the entries under a prefix with `@init`, clears their present
  bytes, then recomputes the sizes from the entries still present (`TableStorage.reset`), unless
  `keep_sizes` asks a later `resize` to do it once.

Everything it emits is the table level's own (named words and buffers, `oi_table.journal`, calls
of the shared helpers), so `--lower-undo-log` and `--lower-tables` run after it unchanged. A paged
or ring storage is another lowering of the same four ops.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import IntegerType, MemRefType, ModuleOp, StridedLayoutAttr
from xdsl.ir import Block, Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.rewriter import InsertPoint

from oi_compiler.dialects.oi_table import (
    ENTRY_OPS,
    LAYOUT_ATTR,
    BufferOp,
    JournalOp,
    ReadOp,
    ResizeOp,
    SetWordOp,
    SlotOp,
    TableOp,
    ViewOp,
    WordOp,
    WriteOp,
)
from oi_compiler.dtypes import dtype_type
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering.analysis import VarLayout
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.lowering.step_ir import DYN, GROW_SYMBOL, I8, Helpers, StepIR, grow_declaration
from oi_compiler.lowering.step_values import fill, nbytes, strided_like
from oi_compiler.lowering.table_lowering import state_of

Selection = Sequence[tuple[SSAValue] | tuple[SSAValue, SSAValue]]  # per index: (k,) or (start, end)


class DenseTable:
    """Emits one table's entry operations through `ir` (positioned where the op was)."""

    def __init__(self, ir: StepIR, table: VarLayout):
        self.ir, self.table, self.name = ir, table, table.name

    # --- words and buffers -----------------------------------------------------------------
    def word(self, field: str) -> SSAValue:
        return self.ir.emit(WordOp(self.name, field))

    def capacities(self) -> list[SSAValue]:
        return [self.word(f"capacity.{d}") for d in range(self.table.rank)]

    def data(self) -> SSAValue:
        ty = MemRefType(dtype_type(self.table.dtype), [DYN] * self.table.rank + list(self.table.shape))
        return self.ir.emit(BufferOp(self.name, "data", self.capacities(), ty))

    def present(self) -> SSAValue:
        return self.ir.emit(BufferOp(self.name, "present", self.capacities(), MemRefType(I8, [DYN] * self.table.rank)))

    def call(self, helper: str, args: Sequence[SSAValue]) -> None:
        """A shared helper taking the table's first word (`data`), then `args`."""
        ir = self.ir
        ir.call_checked(ir.helpers.need(helper), [ir.emit(SlotOp(self.name, "data")), *args])

    def linear(self, key: Sequence[SSAValue]) -> SSAValue:
        """The entry number of `key` in the current capacity box (row-major)."""
        ir, result = self.ir, self.ir.const(0)
        for k, cap in zip(key, self.capacities()):
            result = ir.add(ir.mul(result, cap), k)
        return result

    @property
    def entry_bytes(self) -> int:
        return nbytes(self.table.dtype, self.table.shape)

    # --- selections ------------------------------------------------------------------------
    def raise_sizes(self, selection: Selection) -> None:
        ir = self.ir
        for dim, item in enumerate(selection):
            if self.table.fixed[dim] is not None:
                continue
            if len(item) == 2:
                end = item[1]
            else:
                end = ir.size_after(item[0])
            self.call("oi_raise_size", [ir.const(self.table.rank), ir.const(dim), end])

    def counts(self, selection: Selection) -> list[SSAValue]:
        return [self.ir.sub(item[1], item[0]) if len(item) == 2 else self.ir.const(1) for item in selection]

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
        ir.emit(JournalOp(self.name, "data", ir.mul(linear, size), size))
        present = self.present()
        absent = ir.emit(arith.CmpiOp(ir.emit(memref.LoadOp.get(present, list(key))), ir.const_of(0, I8), "eq"))
        with ir.if_(absent):
            ir.emit(JournalOp(self.name, "present", linear, ir.const(1)))
            ir.emit(memref.StoreOp.get(ir.const_of(1, I8), present, list(key)))
        entry = strided_like(MemRefType(dtype_type(self.table.dtype), list(self.table.shape)), self.table)
        ir.emit(memref.CopyOp(source, self.subview([(k,) for k in key], entry)))

    def read(self, selection: Selection, target: SSAValue) -> None:
        self.raise_sizes(selection)
        self.mark_present(selection)
        self.ir.emit(memref.CopyOp(self.subview(selection, strided_like(target.type, self.table)), target))

    def view(self, selection: Selection, result: MemRefType) -> SSAValue:
        self.raise_sizes(selection)
        self.mark_present(selection)
        return self.subview(selection, result)

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


# --- the pass --------------------------------------------------------------------------------


class LowerDenseEntryOp(RewritePattern):
    """One entry op of a dense table to the table level's words, buffers, journal and helpers (the
    table's name from its `oi_table.table` op, its `@init` from the state layout)."""

    def __init__(self, layout: StateLayout, helpers: Helpers):
        self.layout, self.helpers = layout, helpers
        self.roots: dict[Block, StepIR] = {}  # per function's entry block: its constants, once each, at its top

    def function_ir(self, op: Operation) -> StepIR:
        state = state_of(op)
        entry = state.owner
        if entry not in self.roots:
            self.roots[entry] = StepIR(entry, state, self.helpers, at=InsertPoint.at_start(entry))
        return self.roots[entry]

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, ENTRY_OPS):
            return
        if op.table_type.storage.data != "dense":  # a paged or ring table: its storage pass runs first
            raise PassError(f"{op.name}: no storage pass lowered this {op.table_type.storage.data} table "
                            "(only dense storage is implemented)", nearest_loc(op))  # fmt: skip
        name = op.table_name
        table = self.layout.vars.get(name) if name is not None else None
        if table is None or table.kind != "table":
            what = f"@{name}" if name is not None else "a table value not made by oi_table.table"
            raise PassError(f"{op.name}: {what} is not a table of the module's state layout", nearest_loc(op))
        typed = op.table_type
        fixed = [None if f.data < 0 else f.data for f in typed.fixed]
        if (table.dtype, list(table.shape), list(table.fixed)) != (typed.dtype.data, typed.entry_shape, fixed):
            raise PassError(f"{op.name}: the type {op.table_type} does not match @{name} in the state layout",
                            nearest_loc(op))  # fmt: skip
        selection = op.selection()
        ir = self.function_ir(op).at(op)
        ir.loc = op.location
        dense = DenseTable(ir, table)
        if isinstance(op, WriteOp):
            dense.write([item[0] for item in selection], op.source)
        elif isinstance(op, ReadOp):
            dense.read(selection, op.target)
        elif isinstance(op, ViewOp):
            rewriter.replace(op, [], [dense.view(selection, op.result.type)])
            return
        elif isinstance(op, ResizeOp):
            dense.recompute_sizes()
        else:
            dense.reset([item[0] for item in selection], keep_sizes=op.keep_sizes is not None)
        rewriter.erase(op)


def lower_table_storage(module: ModuleOp) -> None:
    """Lower every entry op (all tables are dense today), adding the shared helpers they call."""
    attr = module.attributes.get(LAYOUT_ATTR)
    if attr is None:
        if any(isinstance(op, ENTRY_OPS) for op in module.walk()):
            raise PassError("the entry ops need the module's state layout (made by --convert-graph-to-tables)")
        return
    helpers = Helpers()
    pattern = LowerDenseEntryOp(StateLayout.from_attr(attr), helpers)
    PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(module)
    for op in [op for op in module.walk() if isinstance(op, TableOp) and not op.result.uses]:
        op.detach()  # a table value the lowered ops no longer take
        op.erase()
    present = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    for name, function in helpers.functions.items():
        if name not in present:
            module.body.block.add_op(function)
    if helpers.functions and GROW_SYMBOL not in present:  # the helpers grow tables through the host
        module.body.block.insert_op_before(grow_declaration(), module.body.block.first_op)
