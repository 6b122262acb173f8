"""IR building blocks of the step function: state words, views, control flow, errors, undo log.

`StepIR` wraps an xDSL `Builder` positioned in the step function and emits:

- `word(slot)` / `set_word(slot, v)`: a state word as an `index` (loads and stores on the
  `memref<?xi64>` argument);
- `view(slot, type, sizes)`: the host buffer at word `slot` (`oi.state_view`);
- `if_(cond)`, `if_else(cond)` / `for_(lo, hi)`: `scf.if` / `scf.for` regions, as context managers;
- `fail(site, args)`: write the error record (site, four argument words) and leave the step
  (`oi.step_exit 1`);
- `grow(kind, a, b, c)`: call the host's `oi_grow` (it reallocates a table, a resizable buffer
  or the undo log and updates their words); a non-zero answer leaves the step with code 2;
- `log_bytes(slot, offset, nbytes)`: append `nbytes` bytes of the buffer at word `slot`, from
  byte `offset`, to the undo log, so the host can put them back if the step fails;
- `Helpers`: the functions shared by every table (undo log, size raising, presence marking),
  emitted once per module and called, which keeps the step function (and LLVM's work) small.

Constants are emitted once per function, at its top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    StringAttr,
    StridedLayoutAttr,
    SymbolRefAttr,
    UnitAttr,
    UnknownLoc,
    i32,
    i64,
)
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.llvm import NOINLINE_ATTR
from oi_compiler.dialects.oi_lowered import StateViewOp, StepExitOp
from oi_compiler.dialects.oi_table import (
    BufferOp,
    CheckOp,
    ErrorSiteAttr,
    FailOp,
    GrowOp,
    JournalOp,
    SetWordOp,
    STATE,
    SlotOp,
    WordOp,
)
from oi_compiler.lowering import analysis as P
from oi_compiler.lowering import quick_ops
from oi_compiler.lowering import step_llvm  # noqa: F401 - registers the emitters of the ops below

INDEX = IndexType()
DYN = DYNAMIC_INDEX
I8 = IntegerType(8)
I1 = IntegerType(1)
I64_MAX = (1 << 63) - 1
GROW_SYMBOL = "oi_grow"
CODE_ERROR, CODE_HOST = 1, 2  # step results besides 0: an error record, a failed host callback
GROW_KIND_NAMES = {P.GROW_TABLE: "table", P.GROW_RESIZABLE: "resizable", P.GROW_LOG: "log", P.GROW_VIEW: "view",
                   P.GROW_AUTO: "auto", P.GROW_REBIND: "rebind", P.GROW_PREFIX: "prefix", P.GROW_PAGE: "page",
                   P.GROW_RELEASE: "release", P.GROW_SIZES: "sizes"}  # fmt: skip


def grow_declaration() -> func.FuncOp:
    """`func.func private @oi_grow(state, kind, a, b, c) -> i64`, provided by the host at run time.

    The state array is an argument so that LLVM knows the call may change any word of it (the
    host moves buffers and rewrites their words): no load of a word is reused across it."""
    return func.FuncOp.external(GROW_SYMBOL, [MemRefType(i64, [DYN]), *[i64] * 4], [i64])


class StepIR:
    """Emits into one function; `helpers` is the module's shared `Helpers`."""

    def __init__(self, block: Block, state: SSAValue, helpers: Helpers | None = None, *,
                 at: InsertPoint | None = None):  # fmt: skip
        """Emits at the end of `block`, or at `at` (a pattern lowering one op: just before it)."""
        self.loc = None  # the statement being lowered: every op emitted for it carries its location
        self.names: dict[int, tuple[str, str]] | None = None  # state word -> (variable, field): table ops
        self.b = self._builder(at or InsertPoint.at_end(block))
        self.state = state
        self.helpers = helpers
        # constants go once each to the top of the function, so every use is dominated
        self._anchor = quick_ops.constant(0, INDEX)
        self.b.insert(self._anchor)
        self._constants: dict[tuple, SSAValue] = {(0, INDEX): self._anchor.result}
        self._attrs: dict[tuple[str, str], tuple[SymbolRefAttr, StringAttr]] = {}  # (variable, field) -> attributes

    def at(self, op) -> StepIR:
        """This function's builder emitting just before `op` (its constants still go to the top)."""
        other = object.__new__(StepIR)
        other.loc, other.names, other.state, other.helpers = self.loc, self.names, self.state, self.helpers
        other._anchor, other._constants, other._attrs = self._anchor, self._constants, self._attrs
        other.b = other._builder(InsertPoint.before(op))
        return other

    def _builder(self, at: InsertPoint) -> Builder:
        builder = Builder(at)
        builder.operation_insertion_handler.append(self._locate)
        return builder

    def _locate(self, op) -> None:
        if self.loc is not None:
            for inner in quick_ops.walk(op):
                if isinstance(inner.location, UnknownLoc):
                    inner.location = self.loc

    # --- values ----------------------------------------------------------------------------
    def emit(self, op):
        self.b.insert(op)
        return op.results[0] if op.results else None

    def const(self, value: int) -> SSAValue:
        return self.const_of(value, INDEX)

    def const_of(self, value: int, ty) -> SSAValue:
        key = (value, ty)
        found = self._constants.get(key)
        if found is None:
            op = quick_ops.constant(value, ty)
            self._anchor.parent_block().insert_op_before(op, self._anchor)
            found = self._constants[key] = op.result
        return found

    # index arithmetic folds constants, so literal indices leave no checks behind
    @staticmethod
    def known(value: SSAValue) -> int | None:
        """The value of a constant (an index or an i1), else None."""
        owner = value.owner
        if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
            return owner.value.value.data
        return None

    def _fold(self, a, b, fn, op):
        x, y = self.known(a), self.known(b)
        if x is not None and y is not None:
            return self.const_of(fn(x, y), a.type)
        return self.emit(quick_ops.with_overflow(op, a, b))

    def add(self, a, b):
        if self.known(b) == 0:
            return a
        return self._fold(a, b, lambda x, y: x + y, arith.AddiOp)

    def sub(self, a, b):
        return self._fold(a, b, lambda x, y: x - y, arith.SubiOp)

    def mul(self, a, b):
        if self.known(a) == 1:
            return b
        if self.known(b) == 1:
            return a
        return self._fold(a, b, lambda x, y: x * y, arith.MuliOp)

    _PREDICATES = {"slt": lambda x, y: x < y, "sgt": lambda x, y: x > y, "sge": lambda x, y: x >= y,
                   "sle": lambda x, y: x <= y, "eq": lambda x, y: x == y, "ne": lambda x, y: x != y}  # fmt: skip

    def cmp(self, pred: str, a, b):
        x, y = self.known(a), self.known(b)
        if x is not None and y is not None:
            return self.const_of(int(self._PREDICATES[pred](x, y)), I1)
        if a.type != b.type:
            raise TypeError(f"cmpi {pred}: operands of types {a.type} and {b.type}")
        return self.emit(quick_ops.cmpi(pred, a, b))

    def select(self, cond, a, b):
        c = self.known(cond)
        if c is not None:
            return a if c else b
        return self.emit(quick_ops.select(cond, a, b))

    def max(self, a, b):
        return self.select(self.cmp("sgt", a, b), a, b)

    def or_(self, a, b):
        x, y = self.known(a), self.known(b)
        if x == 0 or y is not None and y != 0:
            return b
        if y == 0 or x is not None and x != 0:
            return a
        return self.emit(quick_ops.binary(arith.OrIOp, a, b))

    def and_(self, a, b):
        x, y = self.known(a), self.known(b)
        if x == 0 or y is not None and y != 0:
            return a
        if y == 0 or x is not None and x != 0:
            return b
        return self.emit(quick_ops.binary(arith.AndIOp, a, b))

    def to_index(self, value: SSAValue) -> SSAValue:
        return self.emit(quick_ops.index_cast(value, INDEX))

    def to_i64(self, value: SSAValue) -> SSAValue:
        return self.emit(quick_ops.index_cast(value, i64))

    def size_after(self, k: SSAValue) -> SSAValue:
        """The size an index `k` asks for: k + 1, saturating at the largest index (whose size the
        host refuses, rather than wrapping to a negative one)."""
        return self.select(self.cmp("eq", k, self.const(I64_MAX)), k, self.add(k, self.const(1)))

    def product(self, values: Sequence[SSAValue | int]) -> SSAValue:
        result = self.const(1)
        for v in values:
            result = self.mul(result, self.const(v) if isinstance(v, int) else v)
        return result

    # --- state words and buffers -------------------------------------------------------------
    # With `names` (the step function), a word given by number is emitted as the table level's
    # named op (`oi_table.word @K "size.0"`: --assign-state-slots and --lower-tables place it);
    # without (the shared helpers, which compute word numbers at run time), as a load or store.
    # The named ops are built from their properties (made once per word): the step names
    # thousands of words, and the ops' constructors would build and check both attributes each time.
    def _named(self, slot) -> dict | None:
        """The properties (`var`, `field`) of the table-level op on word `slot`, or None."""
        if self.names is None or not isinstance(slot, int):
            return None
        found = self.names.get(slot)
        if found is None:
            raise AssertionError(f"state word {slot} has no name (lowering/state_layout.py word_names)")
        attrs = self._attrs.get(found)
        if attrs is None:
            var, field = found
            attrs = self._attrs[found] = (SymbolRefAttr(var or STATE), StringAttr(field))
        return {"var": attrs[0], "field": attrs[1]}

    def raw_word(self, slot: int | SSAValue) -> SSAValue:
        index = self.const(slot) if isinstance(slot, int) else slot
        return self.emit(quick_ops.load(self.state, [index]))

    def word(self, slot: int | SSAValue) -> SSAValue:
        if (named := self._named(slot)) is not None:
            return self.emit(WordOp.create(properties=named, result_types=[INDEX]))
        return self.to_index(self.raw_word(slot))

    def set_word(self, slot: int | SSAValue, value: SSAValue) -> None:
        if (named := self._named(slot)) is not None:
            self.emit(SetWordOp.create(properties=named, operands=[value]))
            return
        index = self.const(slot) if isinstance(slot, int) else slot
        self.emit(quick_ops.store(self.to_i64(value), self.state, [index]))

    def slot_value(self, slot: int) -> SSAValue:
        """A word's number as a value (what the shared helpers take)."""
        if (named := self._named(slot)) is not None:
            return self.emit(SlotOp.create(properties=named, result_types=[INDEX]))
        return self.const(slot)

    def view(self, slot: int | SSAValue, ty: MemRefType, sizes: Sequence[SSAValue] = ()) -> SSAValue:
        if (named := self._named(slot)) is not None:
            return self.emit(BufferOp.create(properties=named, operands=list(sizes), result_types=[ty]))
        index = self.const(slot) if isinstance(slot, int) else slot
        return self.emit(StateViewOp(self.state, index, list(sizes), ty))

    def view_at(self, words: SSAValue, index: SSAValue, ty: MemRefType) -> SSAValue:
        return self.emit(StateViewOp(words, index, [], ty))

    def bytes_view(self, slot: int | SSAValue, nbytes: SSAValue) -> SSAValue:
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
        op = quick_ops.if_(cond, [], Region(then), Region(Block([quick_ops.yield_()])))
        self.b.insert(op)
        outer, self.b = self.b, self._builder(InsertPoint.at_end(then))
        try:
            yield
        finally:
            self.b.insert(quick_ops.yield_())
            self.b = outer

    @contextmanager
    def if_else(self, cond: SSAValue) -> Iterator[Callable[[], None]]:
        """`scf.if` with both regions: the body emits the then part, calls the yielded function,
        then emits the else part."""
        then, other = Block(), Block()
        self.b.insert(quick_ops.if_(cond, [], Region(then), Region(other)))
        outer, self.b = self.b, self._builder(InsertPoint.at_end(then))

        def otherwise() -> None:
            self.b.insert(quick_ops.yield_())
            self.b = self._builder(InsertPoint.at_end(other))

        try:
            yield otherwise
        finally:
            self.b.insert(quick_ops.yield_())
            self.b = outer

    def choose(self, cond: SSAValue, then: Callable[[], SSAValue], other: Callable[[], SSAValue]) -> SSAValue:
        """`scf.if` yielding one value: what `then` emits and returns where `cond` holds, else `other`'s
        (both of one type)."""
        blocks = Block(), Block()
        outer, values = self.b, []
        for block, emit in zip(blocks, (then, other)):
            self.b = self._builder(InsertPoint.at_end(block))
            values.append(emit())
            self.b.insert(quick_ops.yield_(values[-1]))
        self.b = outer
        return self.emit(quick_ops.if_(cond, [values[0].type], Region(blocks[0]), Region(blocks[1])))

    @contextmanager
    def for_(self, lower: SSAValue, upper: SSAValue) -> Iterator[SSAValue]:
        body = Block(arg_types=[INDEX])
        self.b.insert(scf.ForOp(lower, upper, self.const(1), [], Region(body)))
        outer, self.b = self.b, self._builder(InsertPoint.at_end(body))
        try:
            yield body.args[0]
        finally:
            self.b.insert(quick_ops.yield_())
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

    def fail(self, site: ErrorSiteAttr, args: Sequence[SSAValue] = ()) -> None:
        """Leave the step with `site`'s error (its arguments: index values)."""
        self.emit(FailOp(site, list(args)))

    def fail_if(self, cond: SSAValue, site: ErrorSiteAttr | Callable[[], ErrorSiteAttr],
                args: Sequence[SSAValue] = ()) -> None:  # fmt: skip
        """`fail(site)` when `cond` holds; `site` may be a callable, called only when the check stays."""
        known = self.known(cond)
        if known == 0:
            return
        attr = site() if callable(site) else site
        if known is not None:
            self.fail(attr, args)
            return
        self.emit(CheckOp(cond, attr, list(args)))

    def grow(self, kind: int, a: SSAValue | int, b: SSAValue | int, c: SSAValue | int) -> None:
        if (named := self._named(a)) is not None:
            values = [self.const(v) if isinstance(v, int) else v for v in (b, c)]
            properties = {"kind": StringAttr(GROW_KIND_NAMES[kind]), **named}
            self.emit(GrowOp.create(properties=properties, operands=values))
            return
        args = [self.state, self.const_of(kind, i64)]
        for v in (a, b, c):
            args.append(self.const_of(v, i64) if isinstance(v, int) else self.to_i64(v))
        result = self.emit(quick_ops.call(GROW_SYMBOL, args, [i64]))
        with self.if_(self.emit(quick_ops.cmpi("ne", result, self.const_of(0, i64)))):
            self.exit(CODE_HOST)

    # --- shared helpers ---------------------------------------------------------------------
    def call_checked(self, callee: str, args: Sequence[SSAValue]) -> None:
        """Call a helper returning a step code; a non-zero code leaves this function with it."""
        code = self.emit(quick_ops.call(callee, [self.state, *args], [i32]))
        with self.if_(self.emit(quick_ops.cmpi("ne", code, self.const_of(0, i32)))):
            self.emit(StepExitOp(code))

    def log_bytes(self, slot: int | SSAValue, offset: SSAValue, nbytes: SSAValue) -> None:
        """Append `nbytes` bytes of the buffer at word `slot`, from byte `offset`, to the undo log."""
        if (named := self._named(slot)) is not None:
            self.emit(JournalOp.create(properties=named, operands=[offset, nbytes]))
            return
        if self.helpers is None:
            raise AssertionError("StepIR without Helpers cannot log")
        self.call_checked(self.helpers.need("oi_log"), [self.const(slot) if isinstance(slot, int) else slot,
                                                        offset, nbytes])  # fmt: skip


class Helpers:
    """Functions the step calls for work that is the same for every table (emitted once each).

    - `@oi_log(state, slot, offset, nbytes) -> i32`: append bytes to the undo log (growing it);
    - `@oi_raise_size(state, table, rank, dim, n) -> i32`: a growable index's size to at least `n`,
      asking the host for capacity past the current one (`table` is the table's first word);
    - `@oi_mark_present_<r>(state, table, starts..., counts...) -> i32`: every entry of the box
      becomes present, each change logged.
    """

    def __init__(self) -> None:
        self.functions: dict[str, func.FuncOp] = {}

    def need(self, name: str) -> str:
        if name not in self.functions:
            if name == "oi_log":
                self.functions[name] = self._log()
            elif name == "oi_raise_size":
                self.functions[name] = self._raise_size()
            elif name.startswith("oi_mark_present_"):
                self.functions[name] = self._mark_present(int(name.rsplit("_", 1)[1]))
            else:
                raise KeyError(name)
        return name

    def _function(self, name: str, params: int) -> tuple[func.FuncOp, StepIR, list[SSAValue]]:
        ty = FunctionType.from_lists([MemRefType(i64, [DYN]), *[INDEX] * params], [i32])
        function = func.FuncOp(name, ty, visibility="private")
        function.attributes[NOINLINE_ATTR] = UnitAttr()
        args = list(function.body.block.args)
        return function, StepIR(function.body.block, args[0], self), args[1:]

    @staticmethod
    def _finish(ir: StepIR, function: func.FuncOp) -> func.FuncOp:
        ir.b.insert(func.ReturnOp(ir.const_of(0, i32)))
        return function

    def log_function(self) -> func.FuncOp:
        """`@oi_log`, for a module whose journal ops `--lower-undo-log` lowers."""
        return self.functions[self.need("oi_log")]

    def _log(self) -> func.FuncOp:
        function, ir, (slot, offset, nbytes) = self._function("oi_log", 3)
        self._log_into(ir, slot, offset, nbytes, device=False)
        return self._finish(ir, function)

    @staticmethod
    def split_log(device_slots: Sequence[int]) -> tuple[func.FuncOp, memref.CopyOp]:
        """`@oi_log` for a step whose data at `device_slots` is in device memory: their bytes go to
        the device's log (a device-to-device copy, the one returned), every other slot's to the host's
        (a host copy: no trip to the device, which would wait for the kernels queued before it)."""
        function, ir, (slot, offset, nbytes) = Helpers()._function("oi_log", 3)
        on_device = ir.cmp("eq", slot, ir.const(device_slots[0]))
        for other in device_slots[1:]:
            on_device = ir.or_(on_device, ir.cmp("eq", slot, ir.const(other)))
        with ir.if_else(on_device) as otherwise:
            copy = Helpers._log_into(ir, slot, offset, nbytes, device=True)
            otherwise()
            Helpers._log_into(ir, slot, offset, nbytes, device=False)
        return Helpers._finish(ir, function), copy

    @staticmethod
    def _log_into(ir: StepIR, slot: SSAValue, offset: SSAValue, nbytes: SSAValue, device: bool) -> memref.CopyOp:
        """One record (slot, offset, nbytes, where) and the bytes: at `where` in the host's bytes, or
        at `-1 - where` in the device's (`device`)."""
        words = (P.DEVICE_LOG, P.DEVICE_LOG_CAP, P.DEVICE_LOG_USED) if device else (P.LOG_BYTES, P.LOG_BYTES_CAP,
                                                                                    P.LOG_USED)  # fmt: skip
        count, used = ir.word(P.LOG_COUNT), ir.word(words[2])
        records, total = ir.add(count, ir.const(1)), ir.add(used, nbytes)
        full = ir.or_(ir.cmp("sgt", records, ir.word(P.LOG_RECORDS_CAP)), ir.cmp("sgt", total, ir.word(words[1])))
        with ir.if_(full):
            ir.grow(P.GROW_LOG, records, total, int(device))
        table = ir.view(P.LOG_RECORDS, MemRefType(i64, [DYN, 4]), [records])
        where = ir.sub(ir.const(-1), used) if device else used
        for column, value in enumerate((slot, offset, nbytes, where)):
            ir.emit(quick_ops.store(ir.to_i64(value), table, [count, ir.const(column)]))
        source = ir.bytes_range(ir.bytes_view(slot, ir.add(offset, nbytes)), offset, nbytes)
        target = ir.bytes_range(ir.bytes_view(words[0], total), used, nbytes)
        copy = memref.CopyOp(source, target)
        ir.emit(copy)
        ir.set_word(P.LOG_COUNT, records)
        ir.set_word(words[2], total)
        return copy

    def _raise_size(self) -> func.FuncOp:
        """Words of a table from its first one: data, present, capacities, sizes (`analysis.VarLayout`)."""
        function, ir, (table, rank, dim, n) = self._function("oi_raise_size", 4)
        capacity = ir.add(ir.add(table, ir.const(2)), dim)
        size = ir.add(capacity, rank)
        with ir.if_(ir.cmp("sgt", n, ir.word(size))):
            ir.set_word(size, n)
            with ir.if_(ir.cmp("sgt", n, ir.word(capacity))):
                ir.grow(P.GROW_TABLE, table, dim, n)
        return self._finish(ir, function)

    def _mark_present(self, rank: int) -> func.FuncOp:
        function, ir, args = self._function(f"oi_mark_present_{rank}", 1 + 2 * rank)
        table, starts, counts = args[0], args[1 : 1 + rank], args[1 + rank :]
        with ir.for_each(counts) as ivs:
            key = [ir.add(s, iv) for s, iv in zip(starts, ivs)]
            caps = [ir.word(ir.add(table, ir.const(2 + d))) for d in range(rank)]
            linear = ir.const(0)
            for k, cap in zip(key, caps):
                linear = ir.add(ir.mul(linear, cap), k)
            present = ir.bytes_view(ir.add(table, ir.const(1)), ir.product(caps))
            flag = ir.emit(quick_ops.load(present, [linear]))
            with ir.if_(ir.emit(quick_ops.cmpi("eq", flag, ir.const_of(0, I8)))):
                ir.log_bytes(ir.add(table, ir.const(1)), linear, ir.const(1))
                present = ir.bytes_view(ir.add(table, ir.const(1)), ir.product(caps))
                ir.emit(quick_ops.store(ir.const_of(1, I8), present, [linear]))
        return self._finish(ir, function)


def step_function_type() -> FunctionType:
    return FunctionType.from_lists([MemRefType(i64, [DYN])], [i32])
