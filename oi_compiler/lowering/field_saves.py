"""`cache.save x >> F` to the table level (vortex_torch's Save, applied when the step ends).

A field `F(s): T[D0, D1]` changes only at the end of a step that succeeds, so a `cache.load`
anywhere in the step sees the last step's value (a `cache.read F[..]` copy: `analysis.view_safe`
never makes it a view). The step keeps, per saved field:

- `F@saved`, a resizable `[S, D0, D1]` buffer: each `cache.save` copies its source there (the
  step's last save wins), and sets the field's "saved" control word;
- at the end of the step (`apply_saves`, before `oi_table.commit`): when the word is set, `F` is
  reset and its entries `0..S` written from the buffer, through the entry ops (so journaled:
  nothing after it can fail the step, but the undo log is the table level's single rule).

The word is cleared when the step starts, so a failed step's save is dropped with it.
"""

from __future__ import annotations

from xdsl.dialects import memref
from xdsl.dialects.builtin import MemRefType, StridedLayoutAttr

from oi_compiler.dialects.oi import CacheSaveOp
from oi_compiler.dialects.oi_table import ResetOp, StatementOp, WriteOp
from oi_compiler.dtypes import dtype_type

EXEC = "ExecutionError"


def clear_saves(emitter) -> None:
    """At the start of the step: no field saved yet."""
    for name in emitter.plan.saved:
        emitter.ir.set_word(emitter.plan.control[("saved", name)], emitter.ir.const(0))


def save(emitter, op: CacheSaveOp) -> None:
    """Copy the source into the field's buffer (sized to it) and mark the field saved."""
    ir, name = emitter.ir, op.dst.var_name
    buffer = emitter.plan.saved[name]  # in an async block too: one buffer per field
    source_var = emitter.source_var(op)
    emitter.check_exists(source_var, op)
    source = emitter.source(op, source_var)
    emitter.resize(buffer, [ir.emit(memref.DimOp(source, ir.const(d))) for d in range(3)])
    ir.emit(memref.CopyOp(source, emitter.var_memref(buffer)))
    ir.set_word(emitter.plan.control[("saved", name)], ir.const(1))


def apply_saves(emitter, saves: dict[str, CacheSaveOp]) -> None:
    """At the end of the step: each saved field becomes its buffer's rows (`saves`: a save of each
    field, whose site a growth the host refuses is reported at)."""
    ir = emitter.ir
    for name, buffer in emitter.plan.saved.items():
        table = emitter.plan.vars[name]
        with ir.if_(ir.cmp("ne", ir.word(emitter.plan.control[("saved", name)]), ir.const(0))):
            ir.emit(StatementOp(emitter.site(EXEC, "", saves[name])))
            value = emitter.table(table)
            emitter.keep_stale_views(table, None)
            ir.emit(ResetOp(value, []))
            rows = emitter.var_memref(buffer)
            entry_type = MemRefType(dtype_type(table.dtype), list(table.shape),
                                    StridedLayoutAttr([table.shape[1], 1], None))  # fmt: skip
            with ir.for_each([ir.word(buffer.count_base)]) as (s,):
                entry = ir.subview(rows, [s, 0, 0], [1, *table.shape], entry_type)
                ir.emit(WriteOp(value, [s], entry))

