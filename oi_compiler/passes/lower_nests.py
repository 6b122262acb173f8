"""`--lower-nests`: loop nests to `scf.for` loops over `memref.load`/`memref.store`.

A scheduled `oi.nest` (after `--tile`) has its marked loops unrolled (loopnest/unroll.py) and
its loops moved out where the op was.

xDSL's `convert-linalg-to-loops` lowers each `linalg.generic` (and named linalg op)
to one `scf.for` per loop, innermost last, in the nest's loop order; the
`affine.min`/`affine.apply` that tiling leaves for boundary tiles become `arith`
ops (loopnest/affine_lowering.py), so the result is plain func/scf/memref/arith/math, what the backend takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriteWalker
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.transforms.convert_linalg_to_loops import LowerLinalgStructuredOpPattern

from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.loopnest.affine_lowering import lower_affine
from oi_compiler.lowering import quick_ops


@dataclass(frozen=True)
class LowerNests(ModulePass):
    """Lower loop nests (linalg; scheduled oi.nest, unrolling its marked loops) to scf.for loops over memref loads and stores"""

    name = "lower-nests"

    def apply(self, ctx, module) -> None:
        from oi_compiler.dialects.oi_nest import NestOp
        from oi_compiler.loopnest.unroll import unroll_marked

        for nest in [op for op in quick_ops.walk(module) if isinstance(op, NestOp)]:
            if not nest.scheduled:
                raise PassError("lower-nests: an oi.nest must be scheduled by --tile first", nearest_loc(nest))
            unroll_marked(nest)
            for op in list(nest.body.block.ops):
                op.detach()
                Rewriter.insert_op(op, InsertPoint.before(nest))
            Rewriter.erase_op(nest)
        # only the functions that hold linalg or affine ops (a step's kernels, not the step):
        # each walker visits every op of what it is given, and a large step is most of the module
        for top in [op for op in module.ops if _holds_nest_ops(op)]:
            for region in top.regions:
                PatternRewriteWalker(LowerLinalgStructuredOpPattern(), apply_recursively=False).rewrite_region(region)
                lower_affine(region)


def _holds_nest_ops(op) -> bool:
    return any(inner.name.startswith(("linalg.", "affine.")) for inner in quick_ops.walk(op))
