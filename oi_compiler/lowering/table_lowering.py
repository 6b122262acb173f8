"""The table level's ops to words of the state array: one rewrite pattern per op.

`--lower-undo-log` turns each `oi_table.journal` into a call of the shared `@oi_log` helper;
`--lower-tables` turns the rest into loads, stores, `oi.state_view`s, the host's `@oi_grow` and
`oi.step_exit`, reading where each named word is from the module's `oi_table.state_layout`
(`--assign-state-slots`), and numbers the error sites in the order the step meets them (their
list is the step's `oi.error_sites`), then outlines the step's repeated statement runs
(lowering/outline.py). Every function the ops are in takes the state array as its first argument.
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, IndexType, ModuleOp, SymbolRefAttr, UnknownLoc, i32, i64
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    RewritePattern,
    op_type_rewrite_pattern,
)

from oi_compiler.dialects.oi_lowered import StateViewOp, StepExitOp
from oi_compiler.dialects.oi_table import (
    LAYOUT_ATTR,
    SITES_ATTR,
    ENTRY_OPS,
    BufferOp,
    CommitOp,
    CheckOp,
    ErrorSiteAttr,
    FailOp,
    GrowOp,
    JournalOp,
    SetWordOp,
    TABLE_OPS,
    SlotOp,
    StatementOp,
    WordOp,
)
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering import analysis as P
from oi_compiler.lowering import quick_ops
from oi_compiler.lowering.outline import outline_repeats
from oi_compiler.lowering.state_layout import StateLayout

GROW_CODES = {"table": P.GROW_TABLE, "resizable": P.GROW_RESIZABLE, "log": P.GROW_LOG, "view": P.GROW_VIEW,
              "auto": P.GROW_AUTO, "rebind": P.GROW_REBIND, "prefix": P.GROW_PREFIX, "page": P.GROW_PAGE,
              "release": P.GROW_RELEASE, "sizes": P.GROW_SIZES}  # fmt: skip
_INDEX = IndexType()  # made once: building (and verifying) an attribute is not free
CODE_ERROR, CODE_HOST = 1, 2  # step results besides 0: an error record, a failed host callback
GROW_SYMBOL = "oi_grow"


def layout_of(module: ModuleOp, at: Operation | None = None) -> StateLayout:
    """The module's state layout (`at`: the op that needs it, for the diagnostic's location)."""
    attr = module.attributes.get(LAYOUT_ATTR)
    if attr is None:
        raise PassError("the table level's ops need the module's state layout: run --assign-state-slots first",
                        nearest_loc(at) if at is not None else None)  # fmt: skip
    return StateLayout.from_attr(attr)


def state_of(op: Operation) -> SSAValue:
    """The state array: the first argument of the function `op` is in."""
    return _state_in(_enclosing_function(op), op)


def _state_in(function: func.FuncOp | None, op: Operation) -> SSAValue:
    if function is None or not function.body.block.args:
        raise PassError(f"{op.name} outside a function taking the state array")
    return function.body.block.args[0]


def _enclosing_function(op: Operation) -> func.FuncOp | None:
    function = op.parent_op()
    while function is not None and not isinstance(function, func.FuncOp):
        function = function.parent_op()
    return function


def _located(new: Operation, loc) -> Operation:
    """`new` (and what it holds) at `loc`: lowered ops keep their statement's file:line:col."""
    for inner in quick_ops.walk(new) if new.regions else (new,):
        if isinstance(inner.location, UnknownLoc):
            inner.location = loc
    return new


def _exit(code: SSAValue) -> Operation:
    return StepExitOp.create(operands=[code])


def _slot(layout: StateLayout, op: Operation) -> int:
    try:
        return layout.word_slot(op.var.root_reference.data, op.field.data)
    except PassError as e:
        raise PassError(e.message, nearest_loc(op)) from None


class _Constants:
    """One `arith.constant` per function, value and type, at the top of the function's body (in
    the order first used): the slot numbers, site numbers and codes the patterns emit repeat
    thousands of times in a large step, and each op is Python work in every later pass (LLVM makes
    them immediates either way)."""

    def __init__(self):
        self._made: dict[tuple[int, int, object], SSAValue] = {}
        self._last: dict[int, Operation] = {}  # per function: the constant made last

    def get(self, function: func.FuncOp | None, at: Operation, value: int, ty) -> SSAValue:
        """The constant in `function`, the one `at` (for the diagnostic) is in."""
        if function is None:
            raise PassError(f"{at.name} outside a function", nearest_loc(at))
        key = (id(function), value, ty)
        found = self._made.get(key)
        if found is None:
            const = quick_ops.constant(value, ty)
            block = function.body.block
            last = self._last.get(id(function))
            if last is not None:
                block.insert_op_after(const, last)
            elif block.first_op is not None:
                block.insert_op_before(const, block.first_op)
            else:
                block.add_op(const)
            self._last[id(function)] = const
            found = self._made[key] = const.result
        return found


class _Emit:
    """Inserts before the op being rewritten (`at`), at its location; constants come from the
    function's pool."""

    def __init__(self, rewriter: PatternRewriter, at: Operation, constants: _Constants):
        self.rewriter = rewriter
        self.at = at
        self.loc = at.location
        self.constants = constants
        self.function = _enclosing_function(at)

    @property
    def state(self) -> SSAValue:
        return _state_in(self.function, self.at)

    def __call__(self, op: Operation) -> SSAValue | None:
        self.rewriter.insert(_located(op, self.loc))
        return op.results[0] if op.results else None

    def index(self, value: int) -> SSAValue:
        return self.constants.get(self.function, self.at, value, _INDEX)

    def const(self, value: int, ty) -> SSAValue:
        return self.constants.get(self.function, self.at, value, ty)


class _Words(RewritePattern):
    """Words, buffers and slot numbers at the words the layout gives them."""

    def __init__(self, layout: StateLayout, constants: _Constants):
        self.layout = layout
        self.constants = constants
        self.labels: dict[str, SymbolRefAttr] = {}

    def slot(self, op) -> int:
        return _slot(self.layout, op)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, WordOp | SetWordOp | BufferOp | SlotOp):
            return
        emit = _Emit(rewriter, op, self.constants)
        slot = emit.index(self.slot(op))
        if isinstance(op, SlotOp):
            rewriter.replace(op, [], [slot])
        elif isinstance(op, WordOp):
            word = emit(quick_ops.load(emit.state, [slot]))
            rewriter.replace(op, _located(quick_ops.index_cast(word, _INDEX), op.location))
        elif isinstance(op, SetWordOp):
            value = emit(quick_ops.index_cast(op.value, i64))
            rewriter.replace(op, _located(quick_ops.store(value, emit.state, [slot]), op.location))
        else:
            view = StateViewOp.create(operands=[emit.state, slot, *op.sizes], result_types=[op.result.type],
                                      properties={"var": self.label(op)})  # fmt: skip
            rewriter.replace(op, _located(view, op.location))

    def label(self, op: BufferOp) -> SymbolRefAttr:
        """The view's `@K`, or `@K.<field>` for a buffer other than the variable's data."""
        if op.field.data in ("buffer", "data"):
            return op.var
        label = f"{op.var.root_reference.data}.{op.field.data}"
        found = self.labels.get(label)
        if found is None:
            found = self.labels[label] = SymbolRefAttr(label)
        return found


class _Checks(RewritePattern):
    """A check or failure stores its site's number and arguments and leaves the step (code 1); a
    statement marker stores its site's number only (the host reads it if a callback fails)."""

    def __init__(self, sites: list[ErrorSiteAttr], constants: _Constants):
        self.sites = sites
        self.constants = constants

    def number(self, site: ErrorSiteAttr) -> int:
        self.sites.append(site)
        return len(self.sites)

    def fail(self, emit: _Emit, site: ErrorSiteAttr, args) -> None:
        state = emit.state
        emit(quick_ops.store(emit.const(self.number(site), i64), state, [emit.index(P.ERROR_SITE)]))
        for n, value in enumerate(args):
            emit(quick_ops.store(emit(quick_ops.index_cast(value, i64)), state, [emit.index(P.ERROR_ARGS + n)]))
        emit(_exit(emit.const(CODE_ERROR, i32)))

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, StatementOp):  # the statement the host names if a callback fails
            emit = _Emit(rewriter, op, self.constants)
            emit(quick_ops.store(emit.const(self.number(op.site), i64), emit.state, [emit.index(P.ERROR_SITE)]))
            rewriter.erase(op)
        elif isinstance(op, FailOp):
            self.fail(_Emit(rewriter, op, self.constants), op.site, op.args)
            rewriter.erase(op)
        elif isinstance(op, CheckOp):
            then = Block()
            self.fail(_BlockEmit(then, op, self.constants), op.site, op.args)
            then.add_op(quick_ops.yield_())
            rewriter.replace(op, _located(quick_ops.if_(op.cond, [], Region(then), Region()), op.location))


class _BlockEmit(_Emit):
    """Appends to a block (the body of a check's `scf.if`)."""

    def __init__(self, block: Block, at: Operation, constants: _Constants):
        super().__init__(None, at, constants)
        self.block = block

    def __call__(self, op: Operation) -> SSAValue | None:
        self.block.add_op(_located(op, self.loc))
        return op.results[0] if op.results else None


class _Grow(RewritePattern):
    """`oi_grow(state, kind, word, a, b)`; a non-zero answer leaves the step with code 2."""

    def __init__(self, layout: StateLayout, constants: _Constants):
        self.layout = layout
        self.constants = constants

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GrowOp, rewriter: PatternRewriter, /) -> None:
        emit = _Emit(rewriter, op, self.constants)
        state = emit.state
        slot = _slot(self.layout, op)
        args = [emit(quick_ops.index_cast(v, i64)) for v in op.args]
        args += [emit.const(0, i64)] * (2 - len(args))
        call = [state, emit.const(GROW_CODES[op.kind.data], i64), emit.const(slot, i64), *args]
        result = emit(quick_ops.call(GROW_SYMBOL, call, [i64]))
        failed = emit(quick_ops.cmpi("ne", result, emit.const(0, i64)))
        then = Block([_exit(emit.const(CODE_HOST, i32)), quick_ops.yield_()])
        rewriter.replace(op, _located(quick_ops.if_(failed, [], Region(then), Region()), op.location))


class _Journal(RewritePattern):
    """`@oi_log(state, word, offset, nbytes)`: the bytes go to the undo log before the write."""

    def __init__(self, layout: StateLayout, constants: _Constants):
        self.layout = layout
        self.constants = constants

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: JournalOp, rewriter: PatternRewriter, /) -> None:
        emit = _Emit(rewriter, op, self.constants)
        state = emit.state
        slot = emit.index(_slot(self.layout, op))
        code = emit(quick_ops.call("oi_log", [state, slot, op.offset, op.nbytes], [i32]))
        failed = emit(quick_ops.cmpi("ne", code, emit.const(0, i32)))
        then = Block([_exit(code), quick_ops.yield_()])
        rewriter.replace(op, _located(quick_ops.if_(failed, [], Region(then), Region()), op.location))


class _Commit(RewritePattern):
    """The log's record count and used bytes back to zero: nothing to put back."""

    def __init__(self, constants: _Constants):
        self.constants = constants

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: CommitOp, rewriter: PatternRewriter, /) -> None:
        emit = _Emit(rewriter, op, self.constants)
        zero = emit.const(0, i64)
        for word in (P.LOG_COUNT, P.LOG_USED, P.DEVICE_LOG_USED):
            emit(quick_ops.store(zero, emit.state, [emit.index(word)]))
        rewriter.erase(op)


def lower_undo_log(module: ModuleOp) -> None:
    """Each `oi_table.journal` a call of `@oi_log` (added to the module when it has none), each
    `oi_table.commit` the log emptied."""
    constants = _Constants()
    found = [op for op in quick_ops.walk(module) if isinstance(op, CommitOp | JournalOp)]  # one walk, not a walker per
    commits = [op for op in found if isinstance(op, CommitOp)]  # pattern over a step of thousands of ops
    journals = [op for op in found if isinstance(op, JournalOp)]
    quick_ops.rewrite_each(commits, _Commit(constants))
    if not journals:
        return
    layout = layout_of(module, journals[0])
    from oi_compiler.lowering.step_ir import GROW_SYMBOL, Helpers, grow_declaration

    names = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    if "oi_log" not in names:
        module.body.block.add_op(Helpers().log_function())
    if GROW_SYMBOL not in names:  # @oi_log grows the log through the host
        module.body.block.insert_op_before(grow_declaration(), module.body.block.first_op)
    quick_ops.rewrite_each(journals, _Journal(layout, constants))


def lower_tables(module: ModuleOp) -> None:
    """Words, buffers, checks and growth to the state array (see the module docstring)."""
    sites: list[ErrorSiteAttr] = []
    found = [op for op in quick_ops.walk(module) if isinstance(op, TABLE_OPS)]  # in program order (the entry ops among them)
    entry = next((op for op in found if isinstance(op, ENTRY_OPS)), None)
    if entry is not None:
        raise PassError(f"{entry.name} is lowered by a table storage: run --lower-table-storage first",
                        nearest_loc(entry))  # fmt: skip
    if found:
        layout = layout_of(module, found[0])
        constants = _Constants()
        patterns = GreedyRewritePatternApplier([_Words(layout, constants), _Checks(sites, constants),
                                                _Grow(layout, constants)])  # fmt: skip
        quick_ops.rewrite_each(found, patterns)
    step = next((op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "step"), None)
    if step is not None:
        step.attributes[SITES_ATTR] = ArrayAttr(sites)
        outline_repeats(module, step)
