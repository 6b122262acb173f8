"""The `scf` dialect's emitters: structured control flow as LLVM basic blocks and phis.

- `scf.for`: a header testing `iv < ub` (signed, as MLIR's scf-to-cf does), the body, a latch
  adding the step; iter_args are phis in the header. LLVM's loop passes rotate it.
- `scf.if`: then/else blocks meeting in a block whose phis are the results.
- `scf.while`: the `before` region is the loop header (its arguments are phis), `scf.condition`
  branches to the `after` region or out; the forwarded values are the results.
- `scf.parallel`: a serial loop nest, outermost dimension first; `scf.reduce` regions combine
  each iteration's values into accumulators carried through every loop of the nest.

Each loop iteration is an automatic allocation scope (`FunctionEmitter.allocation_scope`): a
`memref.alloca` emitted inside it (a dynamic one; static ones go to the entry block) is
released at the end of the iteration with `llvm.stacksave`/`llvm.stackrestore`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir
from xdsl.dialects import scf
from xdsl.ir import Operation, Region

from oi_compiler.backend.llvm_memref import Emitter, LoweredValue

if TYPE_CHECKING:
    from oi_compiler.backend.llvm import FunctionEmitter


def emit_for(fx: FunctionEmitter, op: scf.ForOp) -> list[LoweredValue]:
    block = op.body.block

    def body(iv: ir.Value, carried: list[LoweredValue]) -> list[LoweredValue]:
        fx.bind(block.args, [iv, *carried])
        return fx.emit_region_values(op.body)

    inits = [fx.value(v) for v in op.iter_args]
    bounds = fx.value(op.lb), fx.value(op.ub), fx.value(op.step)
    return fx.counted_loop(*bounds, [v.type for v in op.iter_args], inits, body)


def emit_if(fx: FunctionEmitter, op: scf.IfOp) -> list[LoweredValue]:
    b = fx.builder
    then_bb, merge_bb = fx.new_block("if.then"), fx.new_block("if.end")
    has_else = bool(op.false_region.blocks)
    else_bb = fx.new_block("if.else") if has_else else merge_bb
    b.cbranch(fx.value(op.cond), then_bb, else_bb)
    incoming: list[tuple[list[LoweredValue], ir.Block]] = []
    for region, start in [(op.true_region, then_bb)] + ([(op.false_region, else_bb)] if has_else else []):
        b.position_at_end(start)
        incoming.append((fx.emit_region_values(region), b.block))
        b.branch(merge_bb)
    b.position_at_end(merge_bb)
    results = fx.phis([r.type for r in op.results])
    for values, block in incoming:
        results.add_incoming(values, block)
    return results.values


def emit_while(fx: FunctionEmitter, op: scf.WhileOp) -> list[LoweredValue]:
    b = fx.builder
    preheader = b.block
    before_bb, after_bb, exit_bb = (fx.new_block(f"while.{part}") for part in ("cond", "body", "end"))
    b.branch(before_bb)
    b.position_at_end(before_bb)
    arguments = fx.phis([v.type for v in op.arguments])
    arguments.add_incoming([fx.value(v) for v in op.arguments], preheader)
    fx.bind(op.before_region.block.args, arguments.values)
    with fx.allocation_scope(before_bb):  # one iteration: both regions (not released on exit)
        condition = fx.emit_block(op.before_region.block)
        assert isinstance(condition, scf.ConditionOp)
        forwarded = [fx.value(v) for v in condition.args]
        b.cbranch(fx.value(condition.condition), after_bb, exit_bb)
        b.position_at_end(after_bb)
        fx.bind(op.after_region.block.args, forwarded)
        next_arguments = fx.emit_region_values(op.after_region)
    arguments.add_incoming(next_arguments, b.block)
    b.branch(before_bb)
    b.position_at_end(exit_bb)
    return forwarded


def emit_parallel(fx: FunctionEmitter, op: scf.ParallelOp) -> list[LoweredValue]:
    lower = [fx.value(v) for v in op.lowerBound]
    upper = [fx.value(v) for v in op.upperBound]
    steps = [fx.value(v) for v in op.step]
    types = [v.type for v in op.initVals]
    block = op.body.block

    def nest(ivs: list[ir.Value], carried: list[LoweredValue]) -> list[LoweredValue]:
        depth = len(ivs)
        if depth == len(lower):
            fx.bind(block.args, ivs)
            reduce = fx.emit_block(block)
            assert isinstance(reduce, scf.ReduceOp)
            values = [fx.value(v) for v in reduce.args]
            return [_combine(fx, region, acc, value)
                    for region, acc, value in zip(reduce.reductions, carried, values)]  # fmt: skip
        return fx.counted_loop(lower[depth], upper[depth], steps[depth], types, carried,
                               lambda iv, inner: nest([*ivs, iv], inner))  # fmt: skip

    return nest([], [fx.value(v) for v in op.initVals])


def _combine(fx: FunctionEmitter, region: Region, acc: LoweredValue, value: LoweredValue) -> LoweredValue:
    """One `scf.reduce` region applied to the accumulator and this iteration's value."""
    fx.bind(region.block.args, [acc, value])
    (result,) = fx.emit_region_values(region)
    return result


SCF_EMITTERS: dict[type[Operation], Emitter] = {
    scf.ForOp: emit_for,
    scf.IfOp: emit_if,
    scf.WhileOp: emit_while,
    scf.ParallelOp: emit_parallel,
}
