"""`plan.unroll` and `plan.vectorize` on the cpu: full unrolling of the marked loops.

A marked `scf.for` whose trip count is a constant (its upper bound is its lower bound plus a
constant, or both are constants) is replaced by that many copies of its body, the induction
variable in copy n being `lb + n*step`. A vectorized loop is unrolled the same way and left to
LLVM's SLP vectoriser, which turns the copies (consecutive addresses, the same operations)
into vector instructions; a boundary loop whose trip count varies stays a loop. Loops are
unrolled innermost first, so nested marks multiply.
"""

from __future__ import annotations

from xdsl.dialects import scf
from xdsl.ir import Block
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.loopnest.forms import emit_form, form_of

MARKS = ("oi.unroll", "oi.vectorize")


def constant_trip_count(loop: scf.ForOp) -> int | None:
    extent = form_of(loop.ub) - form_of(loop.lb)
    step = form_of(loop.step)
    if not extent.is_const or not step.is_const or step.const <= 0:
        return None
    return max(0, -(-extent.const // step.const))


def unroll(loop: scf.ForOp) -> bool:
    trips = constant_trip_count(loop)
    if trips is None:
        return False
    body: Block = loop.body.block
    iv = body.args[0]
    step = form_of(loop.step).const
    point = InsertPoint.before(loop)
    for n in range(trips):
        value = emit_form(form_of(loop.lb) + n * step, point) if n else loop.lb
        mapping = {iv: value}
        for op in body.ops:
            if isinstance(op, scf.YieldOp):
                continue
            Rewriter.insert_op(op.clone(mapping), point)
    Rewriter.erase_op(loop)
    return True


def unroll_marked(root) -> None:
    loops = [op for op in root.walk() if isinstance(op, scf.ForOp) and any(m in op.attributes for m in MARKS)]
    for loop in reversed(loops):  # walk() is pre-order: reversed visits inner loops first
        unroll(loop)
