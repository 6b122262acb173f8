"""The table level (L2.5): what `--convert-graph-to-tables` makes, and the passes after it.

- the step reaches the state only through the table level's ops (named words and buffers), so
  no word number appears before `--assign-state-slots`;
- the table-level IR survives printing: lowering it from text gives what `--lower-cache` gives;
- tables are written, read and reset through whole-entry ops (`oi_table.write/read/view/reset`)
  that only `--lower-table-storage` turns into words, buffers, journal entries and helper calls;
- each of the five passes is a pass of its own: a custom pass between them sees and changes
  the table level (dropping the undo log's entries leaves no `@oi_log` call in the step).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects import func, memref
from xdsl.passes import ModulePass
from xdsl.printer import Printer

import pytest

import oi_compiler as oi
from oi_compiler.dialects.oi_table import LAYOUT_ATTR, TABLE_OPS, JournalOp
from oi_compiler.graph import parse_mlir
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.passes import run_passes
from oi_compiler.pipeline import bound_analysis

ROOT = Path(__file__).resolve().parents[2]
KV = ROOT / "examples" / "kv_decode.oi"
SIZES = "bind-sizes{D=4 T=8}"


def lowered(passes: str, path: Path = KV):
    module = oi.Graph.load(path).module.clone()
    run_passes(module, f"{SIZES},lower-ops,{passes}")
    return module


def text(module) -> str:
    out = io.StringIO()
    Printer(stream=out).print_op(module)
    return out.getvalue()


def step_of(module) -> func.FuncOp:
    return next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "step")


def test_the_step_reaches_its_state_through_named_table_ops_only() -> None:
    module = lowered("convert-graph-to-tables")
    step = step_of(module)
    state = step.body.block.args[0]
    assert [use.operation.name for use in state.uses if not isinstance(use.operation, func.CallOp)] == []
    kinds = {op.name for op in step.walk() if isinstance(op, TABLE_OPS)}
    assert {"oi_table.buffer", "oi_table.word", "oi_table.check", "oi_table.journal"} <= kinds
    layout = StateLayout.from_attr(module.attributes[LAYOUT_ATTR])
    assert layout.words == -1 and all(v.slot == -1 for v in layout.vars.values())


def test_slot_assignment_places_words_where_the_plan_does() -> None:
    module = lowered("convert-graph-to-tables,lower-table-storage,assign-state-slots")
    layout = StateLayout.from_attr(module.attributes[LAYOUT_ATTR])
    plan = bound_analysis(oi.Graph.load(KV).module, {"D": 4, "T": 8})
    assert {n: v.slot for n, v in layout.vars.items()} == {n: v.slot for n, v in plan.vars.items()}
    assert layout.words == plan.words


def test_lowering_the_table_level_from_text_gives_what_lower_cache_gives() -> None:
    table_level = text(lowered("convert-graph-to-tables"))
    reread = parse_mlir(table_level, "tables.mlir")
    run_passes(reread, "lower-table-storage,assign-state-slots,lower-undo-log,lower-tables")
    assert text(reread) == text(lowered("lower-cache"))


def test_tables_are_reached_through_entry_ops_until_their_storage_lowers_them() -> None:
    step = step_of(lowered("convert-graph-to-tables"))
    ops = [op.name for op in step.walk()]
    assert ops.count("oi_table.write") == 2 and ops.count("oi_table.view") == 2  # K and V
    assert not any(op.name == "func.call" and "oi_mark_present" in str(op) for op in step.walk())
    stored = step_of(lowered("convert-graph-to-tables,lower-table-storage"))
    names = {op.name for op in stored.walk()}
    assert not names & {"oi_table.write", "oi_table.read", "oi_table.view", "oi_table.reset"}
    assert {"oi_table.journal", "memref.subview", "memref.copy"} <= names


def test_lower_tables_refuses_entry_ops_no_storage_lowered() -> None:
    module = lowered("convert-graph-to-tables,assign-state-slots,lower-undo-log")
    with pytest.raises(oi.PassError, match=r"oi_table.write is lowered by a table storage: "
                                           r"run --lower-table-storage first"):  # fmt: skip
        run_passes(module, "lower-tables")


@dataclass(frozen=True)
class DropUndoLog(ModulePass):
    """A custom table-level pass: steps that keep what they wrote when they fail."""

    name = "drop-undo-log-test"

    def apply(self, ctx, module) -> None:
        for op in [op for op in module.walk() if isinstance(op, JournalOp)]:
            op.detach()
            op.erase()


def test_a_custom_pass_between_the_table_passes_drops_the_undo_log() -> None:
    module = lowered("convert-graph-to-tables,lower-table-storage")
    assert any(isinstance(op, JournalOp) for op in module.walk())
    DropUndoLog().apply(None, module)
    run_passes(module, "assign-state-slots,lower-undo-log,lower-tables")
    calls = {op.callee.string_value() for op in step_of(module).walk() if isinstance(op, func.CallOp)}
    assert "oi_log" not in calls
    assert not any(isinstance(op, TABLE_OPS) for op in module.walk())
    # with the undo log, the same step saves bytes before it writes them
    full = lowered("lower-cache")
    assert "oi_log" in {op.callee.string_value() for op in step_of(full).walk() if isinstance(op, func.CallOp)}


def test_after_lower_tables_every_state_access_is_a_load_store_or_view() -> None:
    step = step_of(lowered("lower-cache"))
    state = step.body.block.args[0]
    users = {use.operation.name for use in state.uses}
    assert users <= {"memref.load", "memref.store", "oi.state_view", "func.call"}
    assert any(isinstance(use.operation, memref.LoadOp) for use in state.uses)


def test_a_constant_negative_index_the_verifier_would_refuse_still_lowers() -> None:
    """Hand-written IR that skips the verifier (`K[-1]`): the step fails at the index check, and
    the code after it (an entry op at -1) still lowers to LLVM IR (diff finding #3)."""
    from oi_compiler.backend.llvm import llvm_ir_text

    module = oi.Graph.load(KV).module.clone()
    run_passes(module, SIZES)
    source = text(module).replace("@K[t]", "@K[-1]")
    assert "@K[-1]" in source
    negative = parse_mlir(source, "neg.mlir")
    run_passes(negative, "lower-ops,lower-cache,lower-nests", verify_each=False)
    step = step_of(negative)
    assert any(str(site.template.data) == "cache index cannot be negative" for site in step.attributes["oi.error_sites"])
    assert 'define i32 @"step"(' in llvm_ir_text(negative)
