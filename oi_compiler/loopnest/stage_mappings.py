"""The default GPU mappings of one stage of an op's nest (a `linalg.generic` or `linalg.fill`).

A stage's loops are its parallel dims P and its reduction dims R. What the mapping emits is the
body of a kernel (`gpu.thread_id`/`block_id`, shared memory, barriers), run by the launch it
returns:

- **elementwise** (no R): one thread per point of P, 256 threads a block, bounds-checked;
- **row-tree** (every reduction output updated by a combiner that may be reordered: integer
  add/mul/and/or/xor/min/max, float `maximumf`/`minimumf`, float add/mul the nest marks
  `fastmath<reassoc>`): one block per point of P; its threads stride over R keeping partial
  values in registers, then combine them in shared memory by a tree (a barrier per level);
  thread 0 combines the tree's result with the output's initial value;
- **row-sequential** (any other reduction: float sums the nest keeps in order, max/min/arg
  scans with their NaN rules): one thread per point of P, running R in the nest's order, so
  the result is the nest's (and the reference's) bit for bit;
- **single-thread**: one thread running the whole stage, for a stage whose outputs the others
  cannot prove each point writes alone (an output map that is not one-to-one over the loops).

Each mapping honours `init`: an output's initial value given as a scalar (a `linalg.fill` just
before the stage, folded into it) instead of read from memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from xdsl.builder import Builder
from xdsl.dialects import arith, gpu, memref, scf
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, IntegerType
from xdsl.ir import Block, Region, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr
from xdsl.rewriter import InsertPoint

from oi_compiler.loopnest.generic_points import emit_point, operand_indices, store_outputs
from oi_compiler.ops.nests.scalar import index_const
from oi_compiler.loopnest.gpu_mapping import SHARED_SPACE, grid_id_op

ELEMENTWISE, ROW_TREE, ROW_SEQUENTIAL, SINGLE_THREAD = "elementwise", "row-tree", "row-sequential", "single-thread"
THREADS = 256  # a block's threads, at most: elementwise blocks and the tree's width

_ALWAYS_REORDERABLE = (arith.MaximumfOp, arith.MinimumfOp, arith.AddiOp, arith.MuliOp, arith.AndIOp, arith.OrIOp,
                       arith.XOrIOp, arith.MaxSIOp, arith.MinSIOp, arith.MaxUIOp, arith.MinUIOp)  # fmt: skip
_REORDERABLE_IF_REASSOC = (arith.AddfOp, arith.MulfOp)


@dataclass(frozen=True)
class StageLaunch:
    """How a mapped stage is launched."""

    mapping: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


@dataclass(frozen=True)
class StageShape:
    """A stage's loops by kind, and its outputs: written once per point (`pointwise`) or
    accumulated over R once per point of P (`reductions`)."""

    extents: tuple[int, ...]
    parallel: tuple[int, ...]
    reduction: tuple[int, ...]
    pointwise: tuple[int, ...]
    reductions: tuple[int, ...]


def stage_shape(nest) -> StageShape | None:
    """The stage's `StageShape`, or None when an output map is not one-to-one over the loops
    that must give each point its own element (only the single-thread mapping is safe then)."""
    extents = tuple(nest.get_static_loop_ranges())
    kinds = [str(t.data) for t in nest.get_iterator_types()]
    parallel = tuple(d for d, k in enumerate(kinds) if k.endswith("parallel"))
    reduction = tuple(d for d, k in enumerate(kinds) if not k.endswith("parallel"))
    maps = nest.get_indexing_maps().data[len(nest.inputs):]
    pointwise, reductions = [], []
    for k, indexing in enumerate(maps):
        used = set(indexing.data.used_dims())
        if used.isdisjoint(reduction) and _one_to_one(indexing.data, parallel, extents):
            reductions.append(k)
        elif _one_to_one(indexing.data, parallel + reduction, extents):
            pointwise.append(k)
        else:
            return None
    return StageShape(extents, parallel, reduction, tuple(pointwise), tuple(reductions))


def _one_to_one(indexing, dims: Sequence[int], extents: Sequence[int]) -> bool:
    """Whether `indexing` gives distinct elements to distinct values of `dims` over `extents`:
    each result a sum of positive multiples of dims (each dim in one result), whose coefficients
    grow as a mixed radix does (`d1 * 2 + d2` with d2 < 2)."""
    seen: set[int] = set()
    for expr in indexing.results:
        terms = _linear_terms(expr)
        if terms is None or seen & terms.keys() or any(c <= 0 for c in terms.values()):
            return False
        seen |= terms.keys()
        reach = 0
        for dim, coefficient in sorted(terms.items(), key=lambda t: t[1]):
            if coefficient <= reach:
                return False
            reach += coefficient * (extents[dim] - 1)
    return set(dims) <= seen


def _linear_terms(expr) -> dict[int, int] | None:
    """`expr` as {dim: coefficient} (constants dropped), or None when it is not linear."""
    if isinstance(expr, AffineDimExpr):
        return {expr.position: 1}
    if isinstance(expr, AffineConstantExpr):
        return {}
    if isinstance(expr, AffineBinaryOpExpr) and expr.kind == AffineBinaryOpKind.Add:
        left, right = _linear_terms(expr.lhs), _linear_terms(expr.rhs)
        if left is None or right is None or left.keys() & right.keys():
            return None
        return left | right
    if isinstance(expr, AffineBinaryOpExpr) and expr.kind == AffineBinaryOpKind.Mul:
        for term, factor in ((expr.lhs, expr.rhs), (expr.rhs, expr.lhs)):
            inner = _linear_terms(term)
            if isinstance(factor, AffineConstantExpr) and inner is not None:
                return {d: c * factor.value for d, c in inner.items()}
    return None


def combiners(nest, shape: StageShape) -> dict[int, object] | None:
    """Per reduction output, the op that folds one value into it, when every reduction output's
    update may be reordered (see the module docstring); else None."""
    block = nest.body.block
    found = {}
    for k in shape.reductions:
        accumulator = block.args[len(nest.inputs) + k]
        update = block.last_op.operands[k].owner
        reorderable = isinstance(update, _ALWAYS_REORDERABLE) or (
            isinstance(update, _REORDERABLE_IF_REASSOC) and "reassoc" in update.fastmath.data)  # fmt: skip
        if not reorderable or accumulator not in update.operands or len(list(accumulator.uses)) != 1:
            return None
        found[k] = update
    return found


def map_stage(b: Builder, nest, operands: Sequence[SSAValue], init: Mapping[int, SSAValue],
              outside: Callable[[SSAValue], SSAValue]) -> StageLaunch:  # fmt: skip
    """Emit `nest` mapped by its default mapping at `b` (a kernel body); its launch."""
    shape = stage_shape(nest)
    if shape is None:
        return _single_thread(b, nest, operands, outside)
    if not shape.reduction:
        return _thread_per_point(b, nest, shape, operands, init, outside, ELEMENTWISE)
    folds = combiners(nest, shape)
    if folds is not None and math.prod(shape.extents[d] for d in shape.reduction) > 1:
        return _block_per_row(b, nest, shape, folds, operands, init, outside)
    return _thread_per_point(b, nest, shape, operands, init, outside, ROW_SEQUENTIAL)


# --- ids and loops -------------------------------------------------------------------------------


def grid_id(b: Builder, kind: str) -> SSAValue:
    """`gpu.thread_id x` (kind "thread") or `gpu.block_id x`, inserted."""
    return b.insert(grid_id_op(kind, "x")).result


def delinearize(b: Builder, linear: SSAValue, extents: Sequence[int]) -> list[SSAValue]:
    """Row-major coordinates of `linear` over `extents` (the last fastest)."""
    coordinates = []
    for extent in reversed(extents[1:]):
        size = index_const(b, extent)
        coordinates.append(b.insert(arith.RemUIOp(linear, size)).result)
        linear = b.insert(arith.DivUIOp(linear, size)).result
    if extents:
        coordinates.append(linear)
    return coordinates[::-1]


def guarded(b: Builder, condition: SSAValue) -> Builder:
    """A builder inside `scf.if condition { }` (no else)."""
    then = Block()
    then.add_op(scf.YieldOp())
    b.insert(scf.IfOp(condition, [], Region(then)))
    return Builder(InsertPoint.before(then.last_op))


def _loops(b: Builder, extents: Sequence[int]) -> tuple[Builder, list[SSAValue]]:
    """Nested `scf.for` from 0 to each extent (the first outermost); a builder in the innermost."""
    ivs = []
    for extent in extents:
        body = Block(arg_types=[IndexType()])
        body.add_op(scf.YieldOp())
        b.insert(scf.ForOp(index_const(b, 0), index_const(b, extent), index_const(b, 1), [], Region(body)))
        b = Builder(InsertPoint.before(body.last_op))
        ivs.append(body.args[0])
    return b, ivs


def _merge(shape: StageShape, p_dims: Sequence[SSAValue], r_dims: Sequence[SSAValue]) -> list[SSAValue]:
    dims: list[SSAValue | None] = [None] * len(shape.extents)
    for d, v in zip(shape.parallel, p_dims):
        dims[d] = v
    for d, v in zip(shape.reduction, r_dims):
        dims[d] = v
    return dims  # type: ignore[return-value]


def _store_init(b: Builder, nest, operands, dims, init: Mapping[int, SSAValue]) -> None:
    store_outputs(b, nest, operands, dims, [init.get(k) for k in range(len(nest.outputs))], sorted(init))


def _launch(mapping: str, grid: int, block: int) -> StageLaunch:
    return StageLaunch(mapping, (max(1, grid), 1, 1), (max(1, block), 1, 1))


# --- the mappings --------------------------------------------------------------------------------


def _thread_per_point(b, nest, shape: StageShape, operands, init, outside, mapping: str) -> StageLaunch:
    """One thread per point of P; R (if any) in the nest's order inside."""
    points = math.prod(shape.extents[d] for d in shape.parallel)
    threads = min(THREADS, points)
    block_start = b.insert(arith.MuliOp(grid_id(b, "block"), index_const(b, max(1, threads)))).result
    linear = b.insert(arith.AddiOp(block_start, grid_id(b, "thread"))).result
    inside = guarded(b, b.insert(arith.CmpiOp(linear, index_const(b, points), "ult")).result)
    p_dims = delinearize(inside, linear, [shape.extents[d] for d in shape.parallel])
    zeros = [index_const(inside, 0) for _ in shape.reduction]
    _store_init(inside, nest, operands, _merge(shape, p_dims, zeros), init)
    body, r_dims = _loops(inside, [shape.extents[d] for d in shape.reduction])
    dims = _merge(shape, p_dims, r_dims)
    values = emit_point(body, nest, operands, dims, outside=outside)
    store_outputs(body, nest, operands, dims, values, range(len(nest.outputs)))
    return _launch(mapping, -(-points // max(1, threads)), threads)


def _single_thread(b, nest, operands, outside) -> StageLaunch:
    body, dims = _loops(b, list(nest.get_static_loop_ranges()))
    values = emit_point(body, nest, operands, dims, outside=outside)
    store_outputs(body, nest, operands, dims, values, range(len(nest.outputs)))
    return _launch(SINGLE_THREAD, 1, 1)


def _block_per_row(b, nest, shape: StageShape, folds: Mapping[int, object], operands, init, outside) -> StageLaunch:
    """One block per point of P: threads stride over R with partials, then a shared-memory tree."""
    rows = math.prod(shape.extents[d] for d in shape.parallel)
    length = math.prod(shape.extents[d] for d in shape.reduction)
    threads = min(THREADS, 1 << (length - 1).bit_length())
    p_dims = delinearize(b, grid_id(b, "block"), [shape.extents[d] for d in shape.parallel])
    thread = grid_id(b, "thread")
    reductions = list(folds)
    types = [nest.outputs[k].type.element_type for k in reductions]
    identities = [_identity(b, folds[k], t) for k, t in zip(reductions, types)]
    body = Block(arg_types=[IndexType(), *types])
    loop = b.insert(scf.ForOp(thread, index_const(b, length), index_const(b, threads), identities, Region(body)))
    inner = Builder(InsertPoint.at_end(body))
    dims = _merge(shape, p_dims, delinearize(inner, body.args[0], [shape.extents[d] for d in shape.reduction]))
    values = emit_point(inner, nest, operands, dims, dict(zip(reductions, body.args[1:])), outside)
    store_outputs(inner, nest, operands, dims, values, shape.pointwise)
    inner.insert(scf.YieldOp(*[values[k] for k in reductions]))
    shared = [shared_buffer(b, t, threads) for t in types]
    for buffer, partial, k in zip(shared, loop.results, reductions):
        tree_reduce(b, buffer, partial, thread, threads, lambda bb, x, y, k=k: _combine(bb, folds[k], x, y))
    first = guarded(b, b.insert(arith.CmpiOp(thread, index_const(b, 0), "eq")).result)
    out_dims = _merge(shape, p_dims, [index_const(first, 0) for _ in shape.reduction])
    inputs = len(nest.inputs)
    totals = {}
    for buffer, k in zip(shared, reductions):
        output = operands[inputs + k]
        where = operand_indices(first, nest, inputs + k, out_dims)
        start = init.get(k) or first.insert(memref.LoadOp.get(output, where)).res
        tree = first.insert(memref.LoadOp.get(buffer, [index_const(first, 0)])).res
        totals[k] = _combine(first, folds[k], start, tree)
    store_outputs(first, nest, operands, out_dims, [totals.get(k) for k in range(len(nest.outputs))], reductions)
    return _launch(ROW_TREE, rows, threads)


def shared_buffer(b: Builder, element, threads: int) -> SSAValue:
    """A block-wide buffer of one `element` per thread, in shared memory."""
    return b.insert(memref.AllocaOp.get(element, 16, [threads], memory_space=IntegerAttr(SHARED_SPACE, 64))).memref


def tree_reduce(b: Builder, shared: SSAValue, value: SSAValue, thread: SSAValue, threads: int,
                combine: Callable[[Builder, SSAValue, SSAValue], SSAValue]) -> None:  # fmt: skip
    """Every thread's `value` combined into `shared[0]` (`threads` a power of two): stored, then
    halved level by level, a barrier after each, so every thread may read `shared[0]` after."""
    b.insert(memref.StoreOp.get(value, shared, [thread]))
    b.insert(gpu.BarrierOp())
    half = threads // 2
    while half:
        active = guarded(b, b.insert(arith.CmpiOp(thread, index_const(b, half), "ult")).result)
        other = active.insert(arith.AddiOp(thread, index_const(active, half))).result
        mine = active.insert(memref.LoadOp.get(shared, [thread])).res
        theirs = active.insert(memref.LoadOp.get(shared, [other])).res
        active.insert(memref.StoreOp.get(combine(active, mine, theirs), shared, [thread]))
        b.insert(gpu.BarrierOp())
        half //= 2


def _combine(b: Builder, fold, left: SSAValue, right: SSAValue) -> SSAValue:
    """`fold` (the nest's update op, its flags kept) applied to two partial values."""
    clone = fold.clone()
    clone.operands = (left, right)
    return b.insert(clone).results[0]


def _identity(b: Builder, fold, element) -> SSAValue:
    """The value `fold` leaves the other operand unchanged with."""
    if isinstance(element, IntegerType):
        width = element.width.data
        value = {arith.MuliOp: 1, arith.AndIOp: -1, arith.MinUIOp: -1, arith.MaxSIOp: -(1 << (width - 1)),
                 arith.MinSIOp: (1 << (width - 1)) - 1}.get(type(fold), 0)  # fmt: skip
        value %= 1 << width  # as a signless constant of the width: all ones is -1
        if value >> (width - 1):
            value -= 1 << width
        return b.insert(arith.ConstantOp(IntegerAttr(value, element))).result
    value = {arith.AddfOp: -0.0, arith.MulfOp: 1.0, arith.MaximumfOp: -math.inf, arith.MinimumfOp: math.inf}[type(fold)]
    return b.insert(arith.ConstantOp(FloatAttr(value, element))).result

