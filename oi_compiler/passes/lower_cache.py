"""`--lower-cache`: the graph becomes one `func.func @step(%state: memref<?xi64>) -> i32`.

Variables, tables, persistent scalars and every cache op become host buffers reached through
the state array, index arithmetic, size checks, copies and the undo log; each distinct
`oi.kernel` nest of `--lower-ops` becomes one private function (`@kernel_<n>_<op>`, called
where its statements were), and the work common to all tables goes to shared helpers
(`@oi_log`, `@oi_raise_size`, `@oi_mark_present_<rank>`) (`lowering/step_emitter.py`). The
function carries `oi.error_sites`: for each error site, `"<error class>:<message template>"`,
the statement's location, its description and its block (a JSON list), which the host turns into the reference's
exception when the step returns 1. The module keeps the step function, its kernels and helpers,
and `@oi_grow`'s declaration; the state array's layout is the graph's `StepPlan`
(`lowering/plan.py`).

Needs bound sizes (`--bind-sizes`); ops not lowered yet go through `--lower-ops` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.passes import ModulePass

from oi_compiler.dialects.oi import BlockOp, GraphOp, NamedOp, describe
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering.plan import StepPlan, build_plan, statements
from oi_compiler.lowering.step_emitter import emit_step
from oi_compiler.lowering.step_ir import grow_declaration
from oi_compiler.passes.lower_ops import LowerOps

SITES_ATTR = "oi.error_sites"
NODE_ATTR = "oi.node"  # a statement's description before --bind-sizes (what the reference prints)


@dataclass(frozen=True)
class LowerCache(ModulePass):
    """Lower the graph (variables, tables, cache ops, loops, kernels) to one step function"""

    name = "lower-cache"

    def apply(self, ctx, module) -> None:
        lower_graphs(module)


def lower_graphs(module) -> list[StepPlan]:
    """Replace each `oi.graph` of `module` by its step function; the plans, in order."""
    plans = []
    graphs = [op for op in module.ops if isinstance(op, GraphOp)]
    if len(graphs) > 1:
        from oi_compiler.errors import PassError

        raise PassError("--lower-cache lowers one graph per module")
    for graph in graphs:
        plan = build_plan(graph)
        # --lower-cache alone lowers the ops the step runs first (ops in blocks it never runs stay)
        if any(isinstance(op, NamedOp) for op, _ in statements(plan.entry.body.block.ops)):
            LowerOps().apply(None, graph.parent_op())
            plan = build_plan(graph)
        functions = emit_step(plan)
        functions[0].attributes[SITES_ATTR] = ArrayAttr([StringAttr(site_text(t, op)) for t, op in plan.sites[1:]])
        block = graph.parent_block()
        block.insert_op_before(grow_declaration(), graph)
        for function in functions:
            block.insert_op_before(function, graph)
        graph.detach()
        plans.append(plan)
    return plans


def site_text(template: str, op) -> str:
    """`[template, "file:line:col", node description, block name]` as JSON."""
    loc = nearest_loc(op) if op is not None else None
    node = ""
    if op is not None:  # the description as written (sizes unbound), when the pipeline kept it
        kept = op.attributes.get(NODE_ATTR)
        node = kept.data if isinstance(kept, StringAttr) else describe(op)
    block = op.parent_op() if op is not None else None
    while block is not None and not isinstance(block, BlockOp):
        block = block.parent_op()
    name = block.block_name if block is not None else ""
    return json.dumps([template, str(loc) if loc is not None else "", node, name])
