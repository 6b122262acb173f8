"""`--lower-undo-log`: each `oi_table.journal` becomes a call of `@oi_log`.

The undo log makes a step transactional: before any persistent byte changes, `oi_table.journal`
names the bytes, and `@oi_log` (one shared helper, added to the module when it has none) copies
them into the log the host replays, newest first, when the step fails; `oi_table.commit`, where
the step returns 0, empties it. A pipeline that drops the journal ops instead (a custom pass) gets
steps that keep what they wrote before failing.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class LowerUndoLog(ModulePass):
    """Lower the undo log: each oi_table.journal a call of the @oi_log helper (after --assign-state-slots)"""

    name = "lower-undo-log"

    def apply(self, ctx, module) -> None:
        from oi_compiler.lowering.table_lowering import lower_undo_log

        lower_undo_log(module)
