"""`--lower-table-storage`: each table's entry ops lowered by its storage (dense today).

`--convert-graph-to-tables` writes a statement's table access as whole-entry ops, after its checks:
`oi_table.write @K [%t], %x`, `oi_table.read @K [%a : %b], %dst`, `%v = oi_table.view @K [...]`,
`oi_table.reset @K [%k]`. This pass lowers them, one rewrite pattern per op, for the storage the
table's layout names (`storage dense`: lowering/dense_storage.py) to named words and buffers,
`oi_table.journal` entries and calls of the shared helpers (`@oi_raise_size`,
`@oi_mark_present_<rank>`), which it adds to the module. A storage pass for another layout (paged,
ring) rewrites the same ops before this one runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class LowerTableStorage(ModulePass):
    """Lower the table level's entry ops (write, read, view, reset) for each table's storage (dense)"""

    name = "lower-table-storage"

    def apply(self, ctx, module) -> None:
        from oi_compiler.lowering.table_storage import lower_table_storage

        lower_table_storage(module)
