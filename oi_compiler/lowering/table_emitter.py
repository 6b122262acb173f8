"""What every table storage's lowering shares (`dense_storage.DenseTable`,
`paged_storage.PagedTable`): the table's words, its shared helpers, and raising its sizes to
cover a selection."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import SSAValue

from oi_compiler.dialects.oi_table import SlotOp, WordOp
from oi_compiler.lowering.analysis import VarLayout
from oi_compiler.lowering.step_ir import StepIR
from oi_compiler.lowering.step_values import nbytes

Selection = Sequence[tuple[SSAValue] | tuple[SSAValue, SSAValue]]  # per index: (k,) or (start, end)


class TableEmitter:
    """Emits one table's entry operations through `ir` (positioned where the op was); a storage
    subclasses it with `write`, `read`, `view`, `reset`, `recompute_sizes` and `copy_row`."""

    def __init__(self, ir: StepIR, table: VarLayout):
        self.ir, self.table, self.name = ir, table, table.name

    # --- words -----------------------------------------------------------------------------
    def word(self, field: str) -> SSAValue:
        return self.ir.emit(WordOp(self.name, field))

    def capacities(self) -> list[SSAValue]:
        return [self.word(f"capacity.{d}") for d in range(self.table.rank)]

    def call(self, helper: str, args: Sequence[SSAValue]) -> None:
        """A shared helper taking the table's first word (`data`), then `args`."""
        ir = self.ir
        ir.call_checked(ir.helpers.need(helper), [ir.emit(SlotOp(self.name, "data")), *args])

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
