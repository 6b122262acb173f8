"""`--tile`: schedule Accera-style nests (`oi.nest`) and tile linalg nests.

`oi.nest` ops become the loops of their `oi.schedule` (splits and order), with the plan's
unroll/vectorize/parallelize marks; see oi_compiler/loopnest/materialize.py. Linalg nests
(`linalg.generic` and named linalg ops on memrefs) are tiled:

    oi-opt nests.mlir --tile=sizes=32,32,64        every nest, one size per loop (0 = keep whole)
    oi-opt nests.mlir --tile                       only nests carrying `oi.schedule = {tile = array<i64: ...>}`

Each tiled loop becomes an `scf.for` stepping by its tile size; the nest inside
runs on `memref.subview`s of its operands, and a boundary tile is clamped to
`min(size, extent - iv)`, so sizes need not divide the extents (static or
dynamic). Nests with a non-memref operand (a `linalg.fill` of a scalar) stay whole.
A reduction loop keeps its ascending order (the tile loop is ascending
and so is each tile), so results stay bit-identical. The tiling itself is xDSL's
`tile_structured_op`; a nest's `oi.schedule` sizes win over the option.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import DYNAMIC_INDEX, DenseArrayBase, DictionaryAttr, IndexType, MemRefType
from xdsl.dialects.linalg.abstract_ops import LinalgStructuredOperation
from xdsl.dialects.linalg.transforms.tiling import tile_structured_op
from xdsl.passes import ModulePass
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from oi_compiler.errors import PassError, ScheduleError

SCHEDULE = "oi.schedule"


def schedule_tile_sizes(op) -> list[int] | None:
    """The `tile` entry of a nest's `oi.schedule` attribute, if it has one."""
    schedule = op.attributes.get(SCHEDULE)
    if not isinstance(schedule, DictionaryAttr) or "tile" not in schedule.data:
        return None
    sizes = schedule.data["tile"]
    if not isinstance(sizes, DenseArrayBase):
        raise PassError(f"{SCHEDULE} tile must be an array of integers, got {sizes}")
    return [int(v) for v in sizes.get_values()]


def _whole_extent(op, loop: int, rewriter: PatternRewriter) -> SSAValue | int:
    """0 (keep the loop whole) for a static extent; for a dynamic one, the extent itself as the
    tile size (one tile), since xDSL's tiling mis-sizes the subviews of untiled dynamic loops."""
    for operand, indexing_map in zip(op.operands, op.get_indexing_maps().data):
        memref_type = operand.type
        if not isinstance(memref_type, MemRefType):
            continue
        for dim, expr in enumerate(indexing_map.data.results):
            if isinstance(expr, AffineDimExpr) and expr.position == loop:
                if memref_type.get_shape()[dim] != DYNAMIC_INDEX:
                    return 0
                index = arith.ConstantOp.from_int_and_width(dim, IndexType())
                one = arith.ConstantOp.from_int_and_width(1, IndexType())
                extent = memref.DimOp(operand, index)
                step = arith.MaxSIOp(extent.result, one.result)  # an empty extent still steps
                rewriter.insert([index, one, extent, step], InsertPoint.before(op))
                return step.result
    return 0


@dataclass
class _TileNests(RewritePattern):
    sizes: tuple[int, ...]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: LinalgStructuredOperation, rewriter: PatternRewriter, /) -> None:
        if not all(isinstance(v.type, MemRefType) for v in op.operands):
            return  # e.g. a linalg.fill of a scalar: nothing to slice, and cheap whole
        sizes = schedule_tile_sizes(op)
        if sizes is None:
            sizes = list(self.sizes)
        if not any(sizes):
            return
        maps = op.get_indexing_maps().data
        loops = maps[0].data.num_dims if maps else 0
        sizes = (sizes + [0] * loops)[:loops]  # fewer sizes than loops: the rest stay whole
        if any(s < 0 for s in sizes):
            raise PassError(f"tile sizes cannot be negative: {sizes}")
        if SCHEDULE in op.attributes:
            del op.attributes[SCHEDULE]  # consumed: the tiles do not tile again
        tile_sizes = [s if s else _whole_extent(op, d, rewriter) for d, s in enumerate(sizes)]
        try:
            tile_structured_op(rewriter, op, tile_sizes)
        except PassFailedException as e:
            raise PassError(f"tile: {e}") from None


@dataclass(frozen=True)
class Tile(ModulePass):
    """Schedule oi.nest loop nests; tile linalg nests (sizes=32,32,64, or each nest's oi.schedule tile sizes)"""

    name = "tile"

    sizes: tuple[int, ...] = ()

    def apply(self, ctx, module) -> None:
        from oi_compiler.loopnest.materialize import materialize

        for_each_nest(module, materialize, scheduled=False)
        PatternRewriteWalker(_TileNests(tuple(self.sizes)), apply_recursively=False).rewrite_module(module)


def for_each_nest(module, transform, scheduled: bool | None = None) -> None:
    """`transform(nest)` on every `oi.nest` (only those with `nest.scheduled == scheduled`
    unless None), Accera's errors reported at the nest."""
    from oi_compiler.dialects.oi_nest import NestOp

    for nest in [op for op in module.walk() if isinstance(op, NestOp)]:
        if scheduled is None or nest.scheduled == scheduled:
            with nest_errors(nest):
                transform(nest)


@contextmanager
def nest_errors(nest):
    """Accera's errors found by a pass, as `PassError`s at the nest's location."""
    from oi_compiler.ir_context import nearest_loc

    try:
        yield
    except ScheduleError as e:
        raise PassError(e.message, nearest_loc(nest), subject="oi.nest") from None
