"""`--assign-state-slots`: where each variable's words are in the state array.

`--convert-graph-to-tables` writes the module's `oi_table.state_layout` with every variable's kind
and words named but placed nowhere (`slot ?`); this pass places them, one variable after another
after the header's words, in the layout's order (`StateLayout.assign_slots`), and sets the array's
length. Only `--lower-tables` reads the slots; a table-level rewrite that adds or changes
variables runs before this pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class AssignStateSlots(ModulePass):
    """Place each variable's words in the state array (the module's oi_table.state_layout)"""

    name = "assign-state-slots"

    def apply(self, ctx, module) -> None:
        from oi_compiler.dialects.oi_table import LAYOUT_ATTR
        from oi_compiler.lowering.table_lowering import layout_of

        if LAYOUT_ATTR in module.attributes:
            layout = layout_of(module)
            layout.assign_slots()
            module.attributes[LAYOUT_ATTR] = layout.to_attr()
