"""`--lower-table-storage`: each table's entry ops lowered by its storage (dense or paged).

`--convert-graph-to-tables` writes a statement's table access as whole-entry ops, after its checks:
`oi_table.write @K [%t], %x`, `oi_table.read @K [%a : %b], %dst`, `%v = oi_table.view @K [...]`,
`oi_table.reset @K [%k]`, `oi_table.resize`, `oi_table.copy_row`. This pass lowers them, by the
storage the table's type names (`lowering/table_storage.py`: `dense`, lowering/dense_storage.py;
`paged 16`, lowering/paged_storage.py), to named words and buffers, `oi_table.journal` entries,
host requests (`oi_table.grow`) and calls of the shared helpers (`@oi_raise_size`,
`@oi_mark_present_<rank>`), which it adds to the module.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class LowerTableStorage(ModulePass):
    """Lower the table level's entry ops (write, read, view, reset, resize, copy_row) for each
    table's storage (dense or paged)"""

    name = "lower-table-storage"

    def apply(self, ctx, module) -> None:
        from oi_compiler.lowering.table_storage import lower_table_storage

        lower_table_storage(module)
