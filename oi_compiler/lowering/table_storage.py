"""`--lower-table-storage`: each entry op (`oi_table.write/read/view/reset/resize/copy_row`) lowered by its
table's storage: `dense` (`lowering/dense_storage.py`) or `paged` (`lowering/paged_storage.py`).
What they emit is the table level's own (words, buffers, journal, host requests, shared helpers),
so `--lower-undo-log` and `--lower-tables` run after it unchanged.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern
from xdsl.rewriter import InsertPoint

from oi_compiler.dialects.oi_table import (
    ENTRY_OPS,
    LAYOUT_ATTR,
    CopyRowOp,
    ReadOp,
    ResizeOp,
    TableOp,
    ViewOp,
    WriteOp,
)
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering import quick_ops
from oi_compiler.lowering.dense_storage import DenseTable
from oi_compiler.lowering.paged_storage import PagedTable
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.lowering.step_ir import GROW_SYMBOL, Helpers, StepIR, grow_declaration
from oi_compiler.lowering.table_emitter import TableEmitter
from oi_compiler.lowering.table_lowering import state_of

STORAGES: dict[str, type[TableEmitter]] = {"dense": DenseTable, "paged": PagedTable}


class LowerEntryOp(RewritePattern):
    """One entry op of a table, by its storage, to the table level's words, buffers, journal and helpers (the
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
        storage = STORAGES.get(op.table_type.storage.data)
        if storage is None:  # a ring table
            raise PassError(f"{op.name}: no storage pass lowers a {op.table_type.storage.data} table "
                            "(dense and paged storages are implemented)", nearest_loc(op))  # fmt: skip
        name = op.table_name
        table = self.layout.vars.get(name) if name is not None else None
        if table is None or table.kind != "table":
            what = f"@{name}" if name is not None else "a table value not made by oi_table.table"
            raise PassError(f"{op.name}: {what} is not a table of the module's state layout", nearest_loc(op))
        typed = op.table_type
        fixed = [None if f.data < 0 else f.data for f in typed.fixed]
        if (table.dtype, list(table.shape), list(table.fixed), table.page) != \
                (typed.dtype.data, typed.entry_shape, fixed, typed.page.data):
            raise PassError(f"{op.name}: the type {op.table_type} does not match @{name} in the state layout",
                            nearest_loc(op))  # fmt: skip
        selection = op.selection()
        ir = self.function_ir(op).at(op)
        ir.loc = op.location
        lowered = storage(ir, table)
        if isinstance(op, WriteOp):
            lowered.write([item[0] for item in selection], op.source)
        elif isinstance(op, ReadOp):
            lowered.read(selection, op.target)
        elif isinstance(op, ViewOp):
            rewriter.replace(op, [], [lowered.view(selection, op.result.type, op.gather_var)])
            return
        elif isinstance(op, ResizeOp):
            lowered.recompute_sizes()
        elif isinstance(op, CopyRowOp):
            lowered.copy_row([item[0] for item in selection[:-1]], selection[-1], op.dest)
        else:
            lowered.reset([item[0] for item in selection], keep_sizes=op.keep_sizes is not None)
        rewriter.erase(op)


def lower_table_storage(module: ModuleOp) -> None:
    """Lower every entry op by its table's storage, adding the shared helpers they call."""
    attr = module.attributes.get(LAYOUT_ATTR)
    if attr is None:
        if any(isinstance(op, ENTRY_OPS) for op in module.walk()):
            raise PassError("the entry ops need the module's state layout (made by --convert-graph-to-tables)")
        return
    helpers = Helpers()
    pattern = LowerEntryOp(StateLayout.from_attr(attr), helpers)
    found = [op for op in quick_ops.walk(module) if isinstance(op, (*ENTRY_OPS, TableOp))]
    quick_ops.rewrite_each([op for op in found if isinstance(op, ENTRY_OPS)], pattern)
    for op in [op for op in found if isinstance(op, TableOp) and not op.result.uses]:
        op.detach()  # a table value the lowered ops no longer take
        op.erase()
    present = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    for name, function in helpers.functions.items():
        if name not in present:
            module.body.block.add_op(function)
    if helpers.functions and GROW_SYMBOL not in present:  # the helpers grow tables through the host
        module.body.block.insert_op_before(grow_declaration(), module.body.block.first_op)
