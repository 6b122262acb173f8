"""`--lower-tables`: the table level's ops to the state array's words.

Each `oi_table` op becomes loads and stores of the words `--assign-state-slots` placed, an
`oi.state_view` of a host buffer, a call of the host's `@oi_grow`, or a check that stores an error
site's number and leaves the step (`oi.step_exit`); the step's `oi.error_sites` lists the sites in
the order the step meets them (lowering/table_lowering.py, one rewrite pattern per op). Then a
run of statements repeated back to back (an unrolled graph's layers), now the same ops over
different slot and site constants, becomes one function called once per copy
(lowering/outline.py), so the later stages see one copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class LowerTables(ModulePass):
    """Lower the table level (named words, buffers, checks, growth) to loads and stores of the state array"""

    name = "lower-tables"

    def apply(self, ctx, module) -> None:
        from oi_compiler.lowering.table_lowering import lower_tables

        lower_tables(module)
