"""`affine.min` and `affine.apply` (what tiling leaves for boundary tiles) as `arith` ops on indices.

`--lower-nests` runs `lower_affine` on every function it lowers; the GPU op kernels
(loopnest/op_kernels.py) run it on the kernels the loop-nest GPU machinery maps, and emit their
own index arithmetic with `emit_affine_expr`.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import affine, arith
from xdsl.dialects.builtin import IndexType
from xdsl.ir import Operation, Region, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from oi_compiler.errors import PassError

_ARITH = {
    AffineBinaryOpKind.Add: arith.AddiOp,
    AffineBinaryOpKind.Mul: arith.MuliOp,
    AffineBinaryOpKind.FloorDiv: arith.FloorDivSIOp,
    AffineBinaryOpKind.CeilDiv: arith.CeilDivSIOp,
    AffineBinaryOpKind.Mod: arith.RemSIOp,  # equal to affine `mod` on the non-negative indices tiling makes
}


def emit_affine_expr(expr: AffineExpr, dims: list[SSAValue], insert: Callable[[Operation], object]) -> SSAValue:
    """`expr` over `dims` as arith ops on index values, each handed to `insert` in order."""
    if isinstance(expr, AffineDimExpr):
        return dims[expr.position]
    if isinstance(expr, AffineConstantExpr):
        op = arith.ConstantOp.from_int_and_width(expr.value, IndexType())
    elif isinstance(expr, AffineBinaryOpExpr) and expr.kind in _ARITH:
        lhs = emit_affine_expr(expr.lhs, dims, insert)
        rhs = emit_affine_expr(expr.rhs, dims, insert)
        op = _ARITH[expr.kind](lhs, rhs)
    else:
        raise PassError(f"lower-nests: unsupported affine expression {expr}")
    insert(op)
    return op.results[0]


def _inserter(rewriter: PatternRewriter, point: InsertPoint) -> Callable[[Operation], None]:
    return lambda op: rewriter.insert(op, point)


class _LowerAffineMin(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: affine.MinOp, rewriter: PatternRewriter, /) -> None:
        insert = _inserter(rewriter, InsertPoint.before(op))
        values = [emit_affine_expr(e, list(op.operands), insert) for e in op.map.data.results]
        result = values[0]
        for value in values[1:]:
            minimum = arith.MinSIOp(result, value)
            insert(minimum)
            result = minimum.result
        rewriter.replace(op, [], [result])


class _LowerAffineApply(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: affine.ApplyOp, rewriter: PatternRewriter, /) -> None:
        (expr,) = op.map.data.results
        result = emit_affine_expr(expr, list(op.operands), _inserter(rewriter, InsertPoint.before(op)))
        rewriter.replace(op, [], [result])


def lower_affine(region: Region) -> None:
    """Every `affine.min` and `affine.apply` in `region` as arith ops."""
    PatternRewriteWalker(_LowerAffineMin()).rewrite_region(region)
    PatternRewriteWalker(_LowerAffineApply()).rewrite_region(region)
