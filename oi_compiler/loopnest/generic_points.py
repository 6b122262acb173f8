"""One iteration point of a linalg nest (`linalg.generic`, `linalg.fill`), emitted as scalar code.

A GPU mapping decides which thread runs which points of an op's nest; this is what each thread
then runs at a point: the inputs loaded through their indexing maps, the nest's body cloned with
`linalg.index` replaced by the point's coordinates, and the yielded values handed back (the
caller stores them, or keeps a reduction's running value in a register: `accumulators`).

    values = emit_point(b, nest, operands, dims, accumulators={1: partial})

`operands` are the nest's operands as seen where the code goes (a kernel's arguments, views
cloned into it), `dims` one index value per loop of the nest; values the body captures from
outside are taken through `outside(value)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from xdsl.builder import Builder
from xdsl.dialects import memref
from xdsl.dialects.builtin import MemRefType
from xdsl.dialects.linalg.ops import IndexOp, YieldOp
from xdsl.ir import Operation, SSAValue

from oi_compiler.errors import PassError
from oi_compiler.loopnest.affine_lowering import emit_affine_expr

def operand_indices(b: Builder, nest, operand: int, dims: Sequence[SSAValue]) -> list[SSAValue]:
    """The element of operand `operand` that the point `dims` touches."""
    indexing = nest.get_indexing_maps().data[operand].data
    return [emit_affine_expr(expr, list(dims), b.insert) for expr in indexing.results]


def emit_point(b: Builder, nest, operands: Sequence[SSAValue], dims: Sequence[SSAValue],
               accumulators: Mapping[int, SSAValue] | None = None,
               outside: Callable[[SSAValue], SSAValue] = lambda v: v) -> list[SSAValue]:  # fmt: skip
    """The values the nest's body yields at point `dims` (one per output). Output `k` of
    `accumulators` enters the body as the given value instead of being loaded."""
    accumulators = accumulators or {}
    inputs = len(nest.inputs)
    entry: list[SSAValue] = []
    for n, value in enumerate(operands):
        output = n - inputs
        if output in accumulators:
            entry.append(accumulators[output])
        elif isinstance(value.type, MemRefType):
            entry.append(b.insert(memref.LoadOp.get(value, operand_indices(b, nest, n, dims))).res)
        else:
            entry.append(value)
    body = nest.body.block
    mapped: dict[SSAValue, SSAValue] = dict(zip(body.args, entry, strict=True))
    for op in body.ops:
        if isinstance(op, YieldOp):
            return [mapped.get(v) or outside(v) for v in op.operands]
        if isinstance(op, IndexOp):
            mapped[op.result] = dims[op.dim.value.data]
            continue
        for operand in captured_values(op):
            if operand not in mapped:
                mapped[operand] = outside(operand)
        clone = op.clone(value_mapper=dict(mapped))
        b.insert(clone)
        mapped.update(zip(op.results, clone.results))
    raise PassError(f"gpu op kernels: {nest.name} body without a linalg.yield")


def captured_values(op) -> list[SSAValue]:
    """The values `op` (its nested regions included) uses but does not define."""
    found = []
    for inner in op.walk():
        for operand in inner.operands:
            owner = operand.owner if isinstance(operand.owner, Operation) else operand.owner.parent_op()
            if owner is None or not op.is_ancestor(owner):
                found.append(operand)
    return found


def store_outputs(b: Builder, nest, operands: Sequence[SSAValue], dims: Sequence[SSAValue],
                  values: Sequence[SSAValue], which: Sequence[int]) -> None:  # fmt: skip
    """Store the yielded `values` of outputs `which` at point `dims`."""
    inputs = len(nest.inputs)
    for k in which:
        target = operands[inputs + k]
        b.insert(memref.StoreOp.get(values[k], target, operand_indices(b, nest, inputs + k, dims)))
