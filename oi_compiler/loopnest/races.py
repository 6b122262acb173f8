"""Loops whose iterations would race when they run at once (bound to a GPU grid, or parallelized).

A loop whose body stores to one of the nest's arrays through indices that do not depend on the
loop's variable (a reduction: `C[i, j] += A[i, k] * B[k, j]` at `k`) would have its iterations
write the same elements concurrently: refused, naming the loop and the array.
"""

from __future__ import annotations

from xdsl.dialects import memref, scf
from xdsl.ir import BlockArgument, SSAValue

from oi_compiler.errors import ScheduleError


def refuse_races(nest, loops: list[scf.ForOp], what: str, consequence: str) -> None:
    """`ScheduleError` for the first of `loops` (run at once by `what`) the logic reduces over."""
    memo: dict[SSAValue, frozenset] = {}
    arguments = set(nest.operands)
    for loop in loops:
        for op in loop.body.walk():
            if not isinstance(op, memref.StoreOp) or op.memref not in arguments:
                continue
            if not any(loop in loops_of(v, memo) for v in op.indices):
                name = loop.attributes["oi.index"].data
                array = nest.array_names[list(nest.operands).index(op.memref)]
                raise ScheduleError(f"{what}: the logic reduces over {name} (every iteration of {name} updates "
                                    f"the same elements of {array}): {consequence}")  # fmt: skip


def loops_of(value: SSAValue, memo: dict) -> frozenset:
    """The loops whose variables `value` depends on (a loop's variable depends on its bounds)."""
    if value in memo:
        return memo[value]
    memo[value] = frozenset()
    if isinstance(value, BlockArgument):
        loop = value.block.parent_op()
        found = frozenset()
        if isinstance(loop, scf.ForOp) and value is loop.body.block.args[0]:
            found = frozenset({loop}) | loops_of(loop.lb, memo) | loops_of(loop.ub, memo)
    else:
        found = frozenset().union(*(loops_of(v, memo) for v in value.owner.operands)) \
            if value.owner.operands else frozenset()  # fmt: skip
    memo[value] = found
    return found
