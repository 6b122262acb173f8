"""`--lower-cache`: the graph to one `func.func @step(%state: memref<?xi64>) -> i32`, in five passes.

    --convert-graph-to-tables   the table level: named state words and buffers, typed checks, entry ops, undo-log entries
    --lower-table-storage       each entry op (write, read, view, reset) as its table's storage does it (dense)
    --assign-state-slots        each variable's words placed in the state array (oi_table.state_layout)
    --lower-undo-log            each undo-log entry a call of @oi_log
    --lower-tables              named words as loads and stores of the state array, checks as error records

`--lower-cache` runs them in that order (each is also a pass of its own, and a stage of
`pipeline.STEP_STAGES`, so `oi-opt --dump-stages` shows the table level). The result keeps the
step function, its kernels and helpers, and `@oi_grow`'s declaration; the state array's layout is
the module's `oi_table.state_layout`, the error sites the step's `oi.error_sites`, which the
runtime reads back.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass

from oi_compiler.passes.assign_state_slots import AssignStateSlots
from oi_compiler.passes.convert_graph_to_tables import ConvertGraphToTables
from oi_compiler.passes.lower_table_storage import LowerTableStorage
from oi_compiler.passes.lower_tables import LowerTables
from oi_compiler.passes.lower_undo_log import LowerUndoLog

PASSES = (ConvertGraphToTables, LowerTableStorage, AssignStateSlots, LowerUndoLog, LowerTables)


@dataclass(frozen=True)
class LowerCache(ModulePass):
    """Lower the graph (variables, tables, cache ops, loops, kernels) to one step function (the five table passes)"""

    name = "lower-cache"

    def apply(self, ctx, module) -> None:
        for cls in PASSES:
            cls().apply(ctx, module)
