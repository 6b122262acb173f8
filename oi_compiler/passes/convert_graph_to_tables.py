"""`--convert-graph-to-tables`: the graph becomes the table level, one `func.func @step`.

Variables, tables, persistent scalars and every cache op become the table level's ops over named
state words and host buffers (`oi_table.word @K "size.0"`, `oi_table.buffer @K "data"`), index
arithmetic, checks with typed error sites (`oi_table.check %bad, <CacheError "..." at loc(...)
...>`), copies, growth requests and undo-log entries (`oi_table.journal`) before every change of a
persistent byte (lowering/step_emitter.py). Each distinct `oi.kernel` nest of `--lower-ops` becomes
one private function (`@kernel_<n>_<op>`, called where its statements were); the work common to
all tables goes to shared helpers (`@oi_raise_size`, `@oi_mark_present_<rank>`). The module's
`oi_table.state_layout` says each variable's kind and words, not yet placed (`slot ?`:
`--assign-state-slots`).

Needs bound sizes (`--bind-sizes`) and ops lowered to `oi.kernel` (`--lower-ops`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xdsl.passes import ModulePass

from oi_compiler.dialects.oi import GraphOp, NamedOp
from oi_compiler.dialects.oi_table import LAYOUT_ATTR
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering.analysis import StepAnalysis, analyze_step, statements
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.lowering.step_emitter import emit_step
from oi_compiler.lowering.step_ir import grow_declaration


@dataclass(frozen=True)
class ConvertGraphToTables(ModulePass):
    """Convert the graph to the table level: one step function over named state words, checks with error sites, undo-log entries"""

    name = "convert-graph-to-tables"

    def apply(self, ctx, module) -> None:
        convert_graphs(module)


def convert_graphs(module) -> list[StepAnalysis]:
    """Replace each `oi.graph` of `module` by its step function; the plans, in order."""
    plans = []
    graphs = [op for op in module.ops if isinstance(op, GraphOp)]
    if len(graphs) > 1:
        raise PassError("--lower-cache lowers one graph per module")
    for graph in graphs:
        plan = analyze_step(graph)
        for op, _ in statements(plan.entry.body.block.ops):
            if isinstance(op, NamedOp):
                raise PassError(f"--lower-cache takes ops lowered to oi.kernel: run --lower-ops first ({op.kind})",
                                nearest_loc(op))  # fmt: skip
        functions = emit_step(plan)
        layout = StateLayout.of(plan)
        layout.vars = {name: dataclasses.replace(var, slot=-1) for name, var in layout.vars.items()}
        layout.words = -1  # where the words go is --assign-state-slots' business
        module.attributes[LAYOUT_ATTR] = layout.to_attr()
        block = graph.parent_block()
        block.insert_op_before(grow_declaration(), graph)
        for function in functions:
            block.insert_op_before(function, graph)
        graph.detach()
        plans.append(plan)
    return plans
