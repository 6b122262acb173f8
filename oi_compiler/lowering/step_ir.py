"""IR building blocks of the step function: state words, views, control flow, errors, undo log.

`StepIR` wraps an xDSL `Builder` positioned in the step function and emits:

- `word(slot)` / `set_word(slot, v)`: a state word as an `index` (loads and stores on the
  `memref<?xi64>` argument);
- `view(slot, type, sizes)`: the host buffer at word `slot` (`oi.state_view`);
- `if_(cond)` / `for_(lo, hi)`: `scf.if` / `scf.for` regions, as context managers;
- `fail(site, args)`: write the error record (site, four argument words) and leave the step
  (`oi.step_exit 1`);
- `grow(kind, a, b, c)`: call the host's `oi_grow` (it reallocates a table, a resizable buffer
  or the undo log and updates their words); a non-zero answer leaves the step with code 2;
- `log_bytes(slot, offset, nbytes)`: append `nbytes` bytes of the buffer at word `slot`, from
  byte `offset`, to the undo log, so the host can put them back if the step fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from xdsl.builder import Builder
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    FunctionType,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StridedLayoutAttr,
    i32,
    i64,
)
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from oi_compiler.dialects.oi_lowered import StateViewOp, StepExitOp
from oi_compiler.lowering import plan as P

INDEX = IndexType()
DYN = DYNAMIC_INDEX
I8 = IntegerType(8)
GROW_SYMBOL = "oi_grow"
CODE_ERROR, CODE_HOST = 1, 2  # step results besides 0: an error record, a failed host callback


def grow_declaration() -> func.FuncOp:
    """`func.func private @oi_grow(handle, kind, a, b, c) -> i64`, provided by the host at run time."""
    return func.FuncOp.external(GROW_SYMBOL, [i64] * 5, [i64])


class StepIR:
    def __init__(self, block: Block, state: SSAValue):
        self.b = Builder(InsertPoint.at_end(block))
        self.state = state

    # --- values ----------------------------------------------------------------------------
    def emit(self, op):
        self.b.insert(op)
        return op.results[0] if op.results else None

    def const(self, value: int) -> SSAValue:
        return self.emit(arith.ConstantOp(IntegerAttr(value, INDEX)))

    def const_of(self, value: int, ty) -> SSAValue:
        return self.emit(arith.ConstantOp(IntegerAttr(value, ty)))

    def add(self, a, b):
        return self.emit(arith.AddiOp(a, b))

    def sub(self, a, b):
        return self.emit(arith.SubiOp(a, b))

    def mul(self, a, b):
        return self.emit(arith.MuliOp(a, b))

    def cmp(self, pred: str, a, b):
        return self.emit(arith.CmpiOp(a, b, pred))

    def select(self, cond, a, b):
        return self.emit(arith.SelectOp(cond, a, b))

    def max(self, a, b):
        return self.select(self.cmp("sgt", a, b), a, b)

    def or_(self, a, b):
        return self.emit(arith.OrIOp(a, b))

    def to_index(self, value: SSAValue) -> SSAValue:
        return self.emit(arith.IndexCastOp(value, INDEX))

    def to_i64(self, value: SSAValue) -> SSAValue:
        return self.emit(arith.IndexCastOp(value, i64))

    def product(self, values: Sequence[SSAValue | int]) -> SSAValue:
        result = self.const(1)
        for v in values:
            result = self.mul(result, self.const(v) if isinstance(v, int) else v)
        return result

    # --- state words and buffers -------------------------------------------------------------
    def raw_word(self, slot: int) -> SSAValue:
        return self.emit(memref.LoadOp.get(self.state, [self.const(slot)]))

    def word(self, slot: int) -> SSAValue:
        return self.to_index(self.raw_word(slot))

    def set_word(self, slot: int, value: SSAValue) -> None:
        self.emit(memref.StoreOp.get(self.to_i64(value), self.state, [self.const(slot)]))

    def view(self, slot: int, ty: MemRefType, sizes: Sequence[SSAValue] = ()) -> SSAValue:
        return self.emit(StateViewOp(self.state, self.const(slot), list(sizes), ty))

    def view_at(self, words: SSAValue, index: SSAValue, ty: MemRefType) -> SSAValue:
        return self.emit(StateViewOp(words, index, [], ty))

    def bytes_view(self, slot: int, nbytes: SSAValue) -> SSAValue:
        return self.view(slot, MemRefType(I8, [DYN]), [nbytes])

    def subview(self, source: SSAValue, offsets, sizes, result_type: MemRefType) -> SSAValue:
        strides = [1] * len(offsets)
        return self.emit(memref.SubviewOp.get(source, list(offsets), list(sizes), strides, result_type))

    def bytes_range(self, source: SSAValue, offset: SSAValue, count: SSAValue) -> SSAValue:
        ty = MemRefType(I8, [DYN], StridedLayoutAttr([1], None))
        return self.subview(source, [offset], [count], ty)

    # --- control flow ------------------------------------------------------------------------
    @contextmanager
    def if_(self, cond: SSAValue) -> Iterator[None]:
        then = Block()
        op = scf.IfOp(cond, [], Region(then), Region(Block([scf.YieldOp()])))
        self.b.insert(op)
        outer, self.b = self.b, Builder(InsertPoint.at_end(then))
        try:
            yield
        finally:
            self.b.insert(scf.YieldOp())
            self.b = outer

    @contextmanager
    def for_(self, lower: SSAValue, upper: SSAValue) -> Iterator[SSAValue]:
        body = Block(arg_types=[INDEX])
        self.b.insert(scf.ForOp(lower, upper, self.const(1), [], Region(body)))
        outer, self.b = self.b, Builder(InsertPoint.at_end(body))
        try:
            yield body.args[0]
        finally:
            self.b.insert(scf.YieldOp())
            self.b = outer

    @contextmanager
    def for_each(self, sizes: Sequence[SSAValue]) -> Iterator[list[SSAValue]]:
        """Nested loops over a box `[0, sizes)`, outermost first; yields the indices."""
        with self._nest(list(sizes), []) as indices:
            yield indices

    @contextmanager
    def _nest(self, sizes: list[SSAValue], indices: list[SSAValue]) -> Iterator[list[SSAValue]]:
        if not sizes:
            yield indices
            return
        with self.for_(self.const(0), sizes[0]) as iv, self._nest(sizes[1:], [*indices, iv]) as inner:
            yield inner

    # --- leaving the step --------------------------------------------------------------------
    def exit(self, code: int) -> None:
        self.emit(StepExitOp(self.const_of(code, i32)))

    def fail(self, site: int, args: Sequence[SSAValue] = ()) -> None:
        """Record error `site` with up to four index arguments and leave the step."""
        self.emit(memref.StoreOp.get(self.const_of(site, i64), self.state, [self.const(P.ERROR_SITE)]))
        for n, value in enumerate(args):
            self.set_word(P.ERROR_ARGS + n, value)
        self.exit(CODE_ERROR)

    def fail_if(self, cond: SSAValue, site: int, args: Sequence[SSAValue] = ()) -> None:
        with self.if_(cond):
            self.fail(site, args)

    def grow(self, kind: int, a: SSAValue | int, b: SSAValue | int, c: SSAValue | int) -> None:
        args = [self.raw_word(P.HANDLE), self.const_of(kind, i64)]
        for v in (a, b, c):
            args.append(self.const_of(v, i64) if isinstance(v, int) else self.to_i64(v))
        result = self.emit(func.CallOp(GROW_SYMBOL, args, [i64]))
        with self.if_(self.emit(arith.CmpiOp(result, self.const_of(0, i64), "ne"))):
            self.exit(CODE_HOST)

    # --- the undo log ------------------------------------------------------------------------
    def log_bytes(self, slot: int, offset: SSAValue, nbytes: SSAValue) -> None:
        count, used = self.word(P.LOG_COUNT), self.word(P.LOG_USED)
        records, total = self.add(count, self.const(1)), self.add(used, nbytes)
        full = self.or_(self.cmp("sgt", records, self.word(P.LOG_RECORDS_CAP)),
                        self.cmp("sgt", total, self.word(P.LOG_BYTES_CAP)))  # fmt: skip
        with self.if_(full):
            self.grow(P.GROW_LOG, records, total, 0)
        table = self.view(P.LOG_RECORDS, MemRefType(i64, [DYN, 4]), [records])
        for column, value in enumerate((self.const(slot), offset, nbytes, used)):
            self.emit(memref.StoreOp.get(self.to_i64(value), table, [count, self.const(column)]))
        source = self.bytes_range(self.bytes_view(slot, self.add(offset, nbytes)), offset, nbytes)
        target = self.bytes_range(self.bytes_view(P.LOG_BYTES, total), used, nbytes)
        self.emit(memref.CopyOp(source, target))
        self.set_word(P.LOG_COUNT, records)
        self.set_word(P.LOG_USED, total)


def step_function_type() -> FunctionType:
    return FunctionType.from_lists([MemRefType(i64, [DYN])], [i32])
