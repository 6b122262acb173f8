"""The ops the lowering passes build most often, built with `Op.create` from prepared attributes,
and a walk that lists a module's ops without xDSL's nested generators.

An op's generic constructor checks each operand, result and attribute against the op's definition
(20-60 µs an op); `Op.create` only links them (6-8 µs). What is built here is the op the generic
constructor would build: the same operands, results, properties and regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import IntegerAttr, SymbolRefAttr, i1
from xdsl.ir import Attribute, Operation, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

_NO_OVERFLOW = arith.IntegerOverflowAttr("none")  # what arith.addi's constructor sets by default
#: arith.cmpi's predicate attributes, by name, as its constructor would build them
PREDICATES = {name: IntegerAttr(n, 64) for n, name in enumerate(("eq", "ne", "slt", "sle", "sgt", "sge"))}


def constant(value: int, ty: Attribute) -> arith.ConstantOp:
    return arith.ConstantOp.create(properties={"value": IntegerAttr(value, ty)}, result_types=[ty])


def with_overflow(cls: type[Operation], a: SSAValue, b: SSAValue) -> Operation:
    """`arith.addi` / `subi` / `muli` (`cls`) of `a` and `b`, with no overflow flags."""
    return cls.create(operands=[a, b], result_types=[a.type], properties={"overflowFlags": _NO_OVERFLOW})


def binary(cls: type[Operation], a: SSAValue, b: SSAValue) -> Operation:
    """`arith.andi` / `ori` (`cls`) of `a` and `b`."""
    return cls.create(operands=[a, b], result_types=[a.type])


def select(cond: SSAValue, a: SSAValue, b: SSAValue) -> arith.SelectOp:
    return arith.SelectOp.create(operands=[cond, a, b], result_types=[a.type])


def cmpi(predicate: str, a: SSAValue, b: SSAValue) -> arith.CmpiOp:
    return arith.CmpiOp.create(operands=[a, b], result_types=[i1], properties={"predicate": PREDICATES[predicate]})


def load(ref: SSAValue, indices: Sequence[SSAValue]) -> memref.LoadOp:
    return memref.LoadOp.create(operands=[ref, *indices], result_types=[ref.type.element_type])


def store(value: SSAValue, ref: SSAValue, indices: Sequence[SSAValue]) -> memref.StoreOp:
    return memref.StoreOp.create(operands=[value, ref, *indices])


def index_cast(value: SSAValue, ty: Attribute) -> arith.IndexCastOp:
    return arith.IndexCastOp.create(operands=[value], result_types=[ty])


def call(callee: str, args: Sequence[SSAValue], result_types: Sequence[Attribute]) -> func.CallOp:
    return func.CallOp.create(operands=list(args), result_types=list(result_types),
                              properties={"callee": _callee(callee)})  # fmt: skip


@lru_cache(maxsize=4096)  # kernel and helper names repeat across compiles; a server's stay bounded
def _callee(name: str) -> SymbolRefAttr:
    return SymbolRefAttr(name)


def yield_(*values: SSAValue) -> scf.YieldOp:
    return scf.YieldOp.create(operands=list(values))


def if_(cond: SSAValue, result_types: Sequence[Attribute], then: Region, other: Region) -> scf.IfOp:
    return scf.IfOp.create(operands=[cond], result_types=list(result_types), regions=[then, other])


def rewrite_each(ops: Sequence[Operation], pattern: RewritePattern) -> None:
    """`pattern` applied once to each of `ops`, in order: for the ops a pass found with one walk,
    where a `PatternRewriteWalker` would visit every op of a large step for each pattern."""
    for op in ops:
        pattern.match_and_rewrite(op, PatternRewriter(op))


def walk(root: Operation) -> list[Operation]:
    """`root` and every op nested in it, in `root.walk()`'s order (each op before what it holds)."""
    found: list[Operation] = []
    _walk_into(root, found)
    return found


def _walk_into(op: Operation, found: list[Operation]) -> None:
    found.append(op)
    for region in op.regions:
        for block in region.blocks:
            inner = block.first_op
            while inner is not None:
                _walk_into(inner, found)
                inner = inner.next_op
