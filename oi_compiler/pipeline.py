"""The lowering pipeline from a graph to loops, as one list of named stages.

    oi-opt g.oi --bind-sizes="D=64" --lower-ops --lower-cache --lower-nests -t llvm

is what `device="cpu"` runs (`STEP_PIPELINE`); `oi-opt --dump-stages` prints the IR after
each stage. Each stage is a registered pass (`passes/`), so any prefix of the list can be run
by hand, and `--tile` can be put before `--lower-nests`.
"""

from __future__ import annotations

from collections.abc import Mapping

#: (pass, what the IR looks like after it)
STAGES: tuple[tuple[str, str], ...] = (
    ("bind-sizes", "every size variable replaced by its value"),
    ("lower-ops", "each op an oi.kernel: its loop nest (linalg.generic) over buffer arguments"),
    ("lower-cache", "one func.func @step over the state array: buffers, tables, checks, copies, undo log"),
    ("lower-nests", "linalg lowered to scf.for loops over memref loads and stores"),
)
STEP_PIPELINE = ",".join(name for name, _ in STAGES[1:])


def lower_to_loops(module, sizevars: Mapping[str, int]):
    """A lowered copy of `module` (one graph) with `sizevars` bound, and the graph's step plan."""
    from oi_compiler.ir_context import make_context
    from oi_compiler.passes import run_passes
    from oi_compiler.passes.bind_sizes import BindSizes
    from oi_compiler.passes.lower_cache import lower_graphs

    from xdsl.dialects.builtin import StringAttr

    from oi_compiler.dialects.oi import STATEMENT_OPS, describe
    from oi_compiler.passes.lower_cache import NODE_ATTR

    ctx = make_context()
    module = module.clone()
    for op in module.walk():  # error sites name statements as written, sizes unbound
        if isinstance(op, STATEMENT_OPS):
            op.attributes[NODE_ATTR] = StringAttr(describe(op))
    BindSizes(tuple(sorted(sizevars.items()))).apply(ctx, module)
    run_passes(module, "lower-ops", ctx)
    (plan,) = lower_graphs(module)
    run_passes(module, "lower-nests", ctx)
    return module, plan


def bound_plan(module, sizevars: Mapping[str, int]):
    """The step plan (state layout) of `module`'s graph with `sizevars` bound, without lowering."""
    from oi_compiler.dialects.oi import GraphOp
    from oi_compiler.ir_context import make_context
    from oi_compiler.lowering.plan import build_plan
    from oi_compiler.passes.bind_sizes import BindSizes

    module = module.clone()
    BindSizes(tuple(sorted(sizevars.items()))).apply(make_context(), module)
    return build_plan(next(op for op in module.walk() if isinstance(op, GraphOp)))
