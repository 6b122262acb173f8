"""`--lower-nests`: loop nests to `scf.for` loops over `memref.load`/`memref.store`.

A scheduled `oi.nest` (after `--tile`) has its marked loops unrolled (loopnest/unroll.py) and
its loops moved out where the op was.

xDSL's `convert-linalg-to-loops` lowers each `linalg.generic` (and named linalg op)
to one `scf.for` per loop, innermost last, in the nest's loop order; the
`affine.min`/`affine.apply` that tiling leaves for boundary tiles become `arith`
ops, so the result is plain func/scf/memref/arith/math, what the backend takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import affine, arith
from xdsl.dialects.builtin import IndexType
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.transforms.convert_linalg_to_loops import LowerLinalgStructuredOpPattern

from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc

_ARITH = {
    AffineBinaryOpKind.Add: arith.AddiOp,
    AffineBinaryOpKind.Mul: arith.MuliOp,
    AffineBinaryOpKind.FloorDiv: arith.FloorDivSIOp,
    AffineBinaryOpKind.CeilDiv: arith.CeilDivSIOp,
    AffineBinaryOpKind.Mod: arith.RemSIOp,  # equal to affine `mod` on the non-negative indices tiling makes
}


def emit_affine_expr(expr: AffineExpr, dims: list[SSAValue], rewriter: PatternRewriter, point: InsertPoint) -> SSAValue:
    """`expr` over `dims` as arith ops on index values, inserted at `point`."""
    if isinstance(expr, AffineDimExpr):
        return dims[expr.position]
    if isinstance(expr, AffineConstantExpr):
        op = arith.ConstantOp.from_int_and_width(expr.value, IndexType())
    elif isinstance(expr, AffineBinaryOpExpr) and expr.kind in _ARITH:
        lhs = emit_affine_expr(expr.lhs, dims, rewriter, point)
        rhs = emit_affine_expr(expr.rhs, dims, rewriter, point)
        op = _ARITH[expr.kind](lhs, rhs)
    else:
        raise PassError(f"lower-nests: unsupported affine expression {expr}")
    rewriter.insert(op, point)
    return op.results[0]


class _LowerAffineMin(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: affine.MinOp, rewriter: PatternRewriter, /) -> None:
        point = InsertPoint.before(op)
        values = [emit_affine_expr(e, list(op.operands), rewriter, point) for e in op.map.data.results]
        result = values[0]
        for value in values[1:]:
            minimum = arith.MinSIOp(result, value)
            rewriter.insert(minimum, point)
            result = minimum.result
        rewriter.replace(op, [], [result])


class _LowerAffineApply(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: affine.ApplyOp, rewriter: PatternRewriter, /) -> None:
        (expr,) = op.map.data.results
        result = emit_affine_expr(expr, list(op.operands), rewriter, InsertPoint.before(op))
        rewriter.replace(op, [], [result])


@dataclass(frozen=True)
class LowerNests(ModulePass):
    """Lower loop nests (linalg; scheduled oi.nest, unrolling its marked loops) to scf.for loops over memref loads and stores"""

    name = "lower-nests"

    def apply(self, ctx, module) -> None:
        from oi_compiler.dialects.oi_nest import NestOp
        from oi_compiler.loopnest.unroll import unroll_marked

        for nest in [op for op in module.walk() if isinstance(op, NestOp)]:
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
                PatternRewriteWalker(_LowerAffineMin()).rewrite_region(region)
                PatternRewriteWalker(_LowerAffineApply()).rewrite_region(region)


def _holds_nest_ops(op) -> bool:
    return any(inner.name.startswith(("linalg.", "affine.")) for inner in op.walk())
