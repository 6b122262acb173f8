"""The step function of a graph at the table level: the walk that places its statements.

`emit_step(plan)` returns `func.func @step(%state: memref<?xi64>) -> i32` (0 on success). It
follows the reference executor statement by statement (`runtime/reference.py`,
`runtime/tables.py`), with the same checks in the same order; each check that can fail is an
error site (its message template and statement), an `oi_table.check`.

Two phases (lowering/statement_patterns.py): the walk emits the control flow (loops, branches,
`await` and the async blocks, `return`, `yield`) and places a copy of every other statement where
it runs; then one rewrite pattern per statement kind replaces each copy by its table-level code,
through the methods below (`cache_write`, `cache_read`, `kernel`...).

- **Variables** are host buffers reached through named state words (`analysis.py` says which kind).
- **Tables** are reached through the entry ops (`oi_table.write/read/view/reset`), after the
  statement's checks (negative indices, `@fixed` limits, slice bounds); a table's storage lowers
  them (`--lower-table-storage`). `cache.read` is a view of the entries (`view` destinations) or a
  copy into the destination's own buffer (`resizable` ones).
- **Rollback**: before a scalar's or buffer's bytes change, `oi_table.journal` names them for the
  undo log (a table's storage journals its own); the host puts logged bytes back, newest first,
  when a step fails (sizes are restored from a snapshot of the size words).
- **Ops** are the `oi.kernel`s of `--lower-ops`: each distinct nest one function, called with the
  variables' buffers.
"""
from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager


from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import (
    FloatAttr,
    IntAttr,
    IntegerType,
    MemRefType,
    NoneAttr,
    StringAttr,
    UnitAttr,
    UnrealizedConversionCastOp,
    i32,
)
from xdsl.ir import Operation, Region, SSAValue

from oi_compiler.dialects.oi import (
    AssignOp,
    BranchOp,
    CacheAppendOp,
    CacheDecrementOp,
    CacheForkOp,
    CacheIncrementOp,
    CachePopOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
    CacheWriteOp,
    LoopOp,
    ReturnOp,
    TransferOp,
    AwaitOp,
    YieldOp,
)
from oi_compiler.backend.llvm import NOINLINE_ATTR
from oi_compiler.dialects.oi_attrs import SliceAttr
from oi_compiler.dialects.oi_lowered import GPU_OP_ATTR, KernelOp
from oi_compiler.dialects.oi_table import (
    CommitOp,
    ErrorSiteAttr,
    ReadOp,
    ResetOp,
    StatementOp,
    TableOp,
    ViewOp,
    WriteOp,
    table_type,
)
from oi_compiler.dtypes import FLOAT_DTYPES, PACKED_DTYPES, dtype_type, numpy_dtype
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc, nearest_location
from oi_compiler.lowering import analysis as P
from oi_compiler.lowering.error_sites import BLOCK_ATTR, NODE_ATTR, site_attr, site_block, site_node
from oi_compiler.lowering.statement_patterns import PLACED_KINDS, Placement, lower_placed_statements
from oi_compiler.lowering.analysis import StepAnalysis, VarLayout, escape_braces, memref_type_of, unsupported
from oi_compiler.lowering.field_saves import apply_saves, clear_saves, save
from oi_compiler.lowering.ragged_append import lower_cache_append
from oi_compiler.lowering.sequences import lower_fork, lower_pop, lower_reset_where
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.lowering.step_ir import DYN, Helpers, StepIR, step_function_type
from oi_compiler.lowering.step_values import cast_shape, fill, nbytes, signless
from oi_compiler.ops.registry import dtype_debug_name
from oi_compiler.verify.scope import fixed_size_message, shape_text

CACHE, EXEC = "CacheError", "ExecutionError"


class StepEmitter:
    def __init__(self, plan: StepAnalysis):
        self.plan = plan
        self.func = func.FuncOp("step", step_function_type())
        self.helpers = Helpers()
        self.kernels: dict[str, func.FuncOp] = {}  # one function per distinct loop nest
        self.ir = StepIR(self.func.body.block, self.func.body.block.args[0], self.helpers)
        self.ir.names = StateLayout.of(plan).word_names()  # the table level: words by name
        self.loop_vars: dict[str, SSAValue] = {}
        self.views: dict[str, SSAValue] = {}
        self.depth = 0  # blocks entered by `branch` (inlined) around what is being emitted
        self.store_vars: dict[str, VarLayout] | None = None  # in an async block: the entry's, for cache ops
        self.in_entry = True  # the entry's own statements (its loops too): `yield`/`await` act there only
        self.written: dict[str, int] = {}  # in an async block: its "wrote this yielded variable" words
        self.yield_ids = {id(op): n + 1 for n, op in enumerate(P.entry_yields(plan.entry.body.block.ops))}
        # the two phases (lowering/statement_patterns.py): statements placed by the walk, then lowered
        self.root = self.ir  # the step's builder at the walk's position
        self.scope: tuple[int, ...] = (0,)  # the view scope being walked (a loop body, an inlined block...)
        self._scopes = itertools.count(1)
        self.placed: dict[Operation, Placement] = {}
        self.view_log: list[tuple[tuple[int, ...], str, SSAValue]] = []  # views read so far, with their scope
        #: while a statement is lowered: its fixed buffers' views by (block, slot) (`var_memref`)
        self.buffers: dict[tuple[int, int], SSAValue] | None = None

    # --- errors ------------------------------------------------------------------------------
    def site(self, kind: str, template: str, op: Operation) -> ErrorSiteAttr:
        return site_attr(kind, template, op)

    def static_error(self, kind: str, message: str, op: Operation) -> None:
        self.ir.fail(self.site(kind, escape_braces(message), op))

    # --- the walk ----------------------------------------------------------------------------
    def emit(self) -> func.FuncOp:
        if "pending" in self.plan.control:  # a failed step may have left a yield pending
            self.ir.set_word(self.plan.control["pending"], self.ir.const(0))
        clear_saves(self)
        self.statements(self.plan.entry.body.block.ops)
        if self.plan.forks:  # yielded and never awaited: the async blocks still run
            self.ir.loc = nearest_location(self.plan.entry)
            which = self.ir.word(self.plan.control["pending"])
            with self.ir.if_(self.ir.cmp("ne", which, self.ir.const(0))):
                self.ir.set_word(self.plan.control["pending"], self.ir.const(0))
                self.run_forks(None, which)
        self.ir.loc = nearest_location(self.plan.entry)
        apply_saves(self, {op.dst.var_name: op for op in self.plan.graph.walk() if isinstance(op, CacheSaveOp)})
        self.ir.emit(CommitOp())  # the step ran: its undo log is dropped
        self.ir.b.insert(func.ReturnOp(self.ir.const_of(0, i32)))
        lower_placed_statements(self)
        return self.func

    def statements(self, ops) -> None:
        ops = list(ops)
        for n, op in enumerate(ops):
            if isinstance(op, YieldOp) and not self.in_entry:  # ends its whole block, loops around it too
                self.ir.set_word(self.plan.control["ended"], self.ir.const(1))
                return
            self.statement(op)
            if isinstance(op, ReturnOp):  # ends its block (or the loop around it): the rest never runs
                return
            if not self.in_entry and isinstance(op, LoopOp) and _yields_inside(op):  # it may have ended the block
                with self.ir.if_(self.ir.cmp("eq", self.ir.word(self.plan.control["ended"]), self.ir.const(0))):
                    self.statements(ops[n + 1 :])
                return

    # --- yield and await (the reference runs the async blocks one by one at the await) -------
    def yield_(self, op: YieldOp) -> None:
        """The entry's `yield`: a snapshot of the yielded variables; the async blocks wait for `await`."""
        ir, pending = self.ir, self.plan.control["pending"]
        ir.fail_if(ir.cmp("ne", ir.word(pending), ir.const(0)),
                   lambda: self.site(EXEC, "await required before next yield", op))  # fmt: skip
        for name in op.var_names:
            var = self.plan.vars.get(name)
            if var is None:
                self.static_error(EXEC, f"unknown variable: {name}", op)
                return
            self.check_exists(var, op)
            snapshot = self.plan.vars.get(f"{name}@yield")
            if snapshot is not None:
                ir.emit(memref.CopyOp(self.var_memref(var), self.var_memref(snapshot)))
        ir.set_word(pending, ir.const(self.yield_ids[id(op)]))  # which yield: the names it yielded

    def await_(self, op: AwaitOp) -> None:
        if not self.in_entry or "pending" not in self.plan.control:
            return  # nothing pending can be awaited here
        ir, pending = self.ir, self.plan.control["pending"]
        which = ir.word(pending)
        with ir.if_(ir.cmp("ne", which, ir.const(0))):
            ir.set_word(pending, ir.const(0))
            self.run_forks(op, which)

    def yielded_now(self, name: str, which: SSAValue) -> SSAValue | None:
        """Whether the pending yield (`which`) yielded `name`; None: every yield does."""
        ids = [n + 1 for n, names in enumerate(self.plan.yield_lists) if name in names]
        if len(ids) == len(self.plan.yield_lists):
            return None
        cond = self.ir.const_of(0, IntegerType(1))
        for k in ids:
            cond = self.ir.or_(cond, self.ir.cmp("eq", which, self.ir.const(k)))
        return cond

    def run_forks(self, merge: AwaitOp | None, which: SSAValue) -> None:
        """Each async block in name order on its own copies: of the snapshot for yielded variables,
        of their initial value for the others; then (at an `await`) what one block wrote comes back."""
        ir, plan = self.ir, self.plan
        saved = (plan.vars, self.in_entry, self.loop_vars, self.views, self.written, self.scope)
        self.store_vars = plan.vars  # a yielded persistent variable: cache ops still see the shared one
        try:
            for fork in plan.forks:
                block = fork.block.block_name
                for name, copy in fork.vars.items():
                    if copy.aliases and copy.kind == "buffer":  # an earlier run's `transfer` may have moved it
                        ir.grow(P.GROW_REBIND, copy.slot, 0, 0)
                    if name not in plan.yielded:
                        self.fork_copy(copy, plan.vars[f"{name}@fresh"], False)
                        continue
                    ir.set_word(plan.control[("written", block, name)], ir.const(0))
                    now = self.yielded_now(name, which)
                    if now is None:  # every yield yields it
                        self.fork_copy(copy, plan.vars[f"{name}@yield"], True)
                        continue
                    with ir.if_else(now) as otherwise:
                        self.fork_copy(copy, plan.vars[f"{name}@yield"], True)
                        otherwise()
                        self.fork_copy(copy, plan.vars[f"{name}@fresh"], False)
                plan.vars = {**saved[0], **fork.vars}
                self.in_entry, self.loop_vars, self.views, self.scope = False, {}, {}, (next(self._scopes),)
                self.written = {n: plan.control[("written", block, n)] for n in plan.yielded if n in fork.vars}
                ir.set_word(plan.control["ended"], ir.const(0))
                self.statements(fork.block.body.block.ops)
                plan.vars = saved[0]
        finally:
            plan.vars, self.in_entry, self.loop_vars, self.views, self.written, self.scope = saved
            self.store_vars = None
        if merge is None:
            return
        for name in plan.yielded:
            writers = [f for f in plan.forks if name in f.vars]
            if not writers:
                continue
            now = self.yielded_now(name, which)
            if now is None:
                self.merge(merge, name, writers)
            else:
                with ir.if_(now):
                    self.merge(merge, name, writers)

    def fork_copy(self, copy: VarLayout, source: VarLayout, exists: bool) -> None:
        ir = self.ir
        if copy.kind == "resizable":  # a copy a cache.read in the block resizes: the declared shape first
            self.resize(copy, list(source.shape), ir.const(max(1, math.prod(source.shape))))
            target = self.var_memref(copy)
            ir.emit(memref.CopyOp(cast_shape(ir, self.var_memref(source), target.type.get_shape()), target))
        else:
            ir.emit(memref.CopyOp(self.var_memref(source), self.var_memref(copy)))
        if copy.temp:
            self.ir.set_word(copy.exists_slot, self.ir.const(int(exists)))

    def merge(self, op: AwaitOp, name: str, writers) -> None:
        """A yielded variable one block wrote comes back; two writers are the reference's error."""
        ir, plan = self.ir, self.plan
        flags = [ir.word(plan.control[("written", f.block.block_name, name)]) for f in writers]
        count = ir.const(0)
        for flag in flags:
            count = ir.add(count, flag)
        ir.fail_if(ir.cmp("sgt", count, ir.const(1)),
                   lambda: self.site(EXEC, escape_braces(f"multiple blocks mutated {name}"), op))  # fmt: skip
        target = self.var_memref(plan.vars[name])
        for fork, flag in zip(writers, flags):
            with ir.if_(ir.cmp("ne", flag, ir.const(0))):
                ir.emit(memref.CopyOp(self.var_memref(fork.vars[name]), target))

    def mark_written(self, name: str) -> None:
        if name in self.written:
            self.ir.set_word(self.written[name], self.ir.const(1))

    def statement(self, op: Operation) -> None:
        outer, self.ir.loc = self.ir.loc, nearest_location(op)  # what it emits keeps its file:line:col
        try:
            if isinstance(op, PLACED_KINDS):
                self.place(op)
                return
            lowering = STRUCTURE.get(type(op))
            if lowering is None:
                raise unsupported(f"statement {op.name}", op)
            lowering(self, op)
        finally:
            self.ir.loc = outer

    def place(self, op: Operation) -> None:
        """A copy of the statement where it runs, for its pattern (statement_patterns.py)."""
        copy = op.clone()
        copy.location = nearest_location(op)
        copy.attributes[NODE_ATTR] = StringAttr(site_node(op))
        copy.attributes[BLOCK_ATTR] = StringAttr(site_block(op))
        if id(op) in self.yield_ids:
            self.yield_ids[id(copy)] = self.yield_ids[id(op)]
        self.ir.b.insert(copy)
        self.placed[copy] = Placement(dict(self.loop_vars), self.scope, self.plan.vars, self.store_vars,
                                      self.in_entry, dict(self.written))  # fmt: skip

    @contextmanager
    def placed_at(self, op: Operation) -> Iterator[None]:
        """Emit `op`'s code just before it, seeing what it sees where it was placed."""
        where, outer_vars = self.placed.pop(op), self.plan.vars
        self.ir = self.root.at(op)
        self.ir.loc = op.location
        self.loop_vars, self.plan.vars, self.store_vars = where.loop_vars, where.vars, where.store_vars
        self.in_entry, self.written = where.in_entry, where.written
        self.views = {name: view for scope, name, view in self.view_log if where.scope[: len(scope)] == scope}
        before = dict(self.views)
        if isinstance(op, HOST_CALLING):  # a growth the host cannot make is reported at this statement
            self.ir.emit(StatementOp(self.site(EXEC, "", op)))
        self.buffers = {}
        try:
            yield
        finally:
            self.view_log += [(where.scope, n, v) for n, v in self.views.items() if before.get(n) is not v]
            self.ir, self.plan.vars, self.buffers = self.root, outer_vars, None

    def enter_scope(self) -> tuple[int, ...]:
        """A new view scope inside the current one; returns the one to restore."""
        outer, self.scope = self.scope, (*self.scope, next(self._scopes))
        return outer

    def assign(self, op: AssignOp) -> None:
        """The host made the zero buffer; the temporary exists from now."""
        var = self.plan.vars.get(op.var_name)
        if var is not None and var.temp and var.kind == "resizable":
            self.assign_resizable(op, var)
        elif var is not None and var.temp:
            self.ir.set_word(var.exists_slot, self.ir.const(1))

    def nothing(self, op: Operation) -> None:
        """barrier and dep do nothing; return: `statements` stops after it."""

    def assign_resizable(self, op: AssignOp, var: VarLayout) -> None:
        """`assign t` on a temporary a `cache.read` also fills: zeros of its declared shape, unless it exists."""
        ir = self.ir
        declared = [d.size({}) for d in op.var_type.dims]
        with ir.if_(ir.cmp("eq", ir.word(var.exists_slot), ir.const(0))):
            self.resize(var, declared, ir.const(max(1, math.prod(declared))))
            fill(self.ir, self.var_memref(var), 0, var.dtype)
            ir.set_word(var.exists_slot, ir.const(1))

    def transfer(self, op: TransferOp) -> None:
        """`transfer a >> b`: b's word takes a's buffer address (one buffer, two names; analysis.py)."""
        ir = self.ir
        src = self.plan.vars.get(op.src.var_name)
        if src is None:
            self.static_error(EXEC, f"unknown variable: {op.src.var_name}", op)
            return
        dst = self.plan.vars[op.dst.var_name]
        if src.kind == "prefix" and src.memory != "constant":
            self.volatile_entry(op.src, src, op)
            address = ir.word(src.slot)
        elif src.kind == "prefix":
            table, flat = self.prefix_slot(op.src, src, op)
            address = ir.to_index(ir.emit(memref.LoadOp.get(table, [flat])))
        else:
            self.check_exists(src, op)
            address = ir.word(src.slot)
        ir.set_word(dst.slot, address)
        self.mark_written(op.dst.var_name)
        if dst.temp:
            ir.set_word(dst.exists_slot, ir.const(1))

    # --- variables ---------------------------------------------------------------------------
    def resize(self, var: VarLayout, shape: list[SSAValue | int], need: SSAValue | None = None, *,
               fresh: bool = False) -> None:  # fmt: skip
        """A resizable variable made to hold `shape` (a value per dim): the host grows its buffer
        past the capacity to `need` elements (their count by default; `fresh`: a new array
        whatever the capacity, as a read binds one), and its run-time dims' count words are set."""
        ir = self.ir
        need = ir.product(shape) if need is None else need
        if fresh:
            ir.grow(P.GROW_RESIZABLE, var.slot, need, 1)
        else:
            with ir.if_(ir.cmp("sgt", need, ir.word(var.slot + 1))):
                ir.grow(P.GROW_RESIZABLE, var.slot, need, 0)
        for d, size in enumerate(n for n, dim in zip(shape, var.shape) if dim is None):
            ir.set_word(var.count_base + d, ir.const(size) if isinstance(size, int) else size)

    def var_memref(self, var: VarLayout) -> SSAValue:
        ir = self.ir
        if var.kind == "view":
            return self.views[var.name]
        ty = memref_type_of(var, self.plan)
        if var.kind == "resizable":
            sizes = [ir.word(var.count_base + d) for d in range(sum(1 for d in var.shape if d is None))]
            return ir.view(var.slot, ty, sizes)
        if self.buffers is None:
            return ir.view(var.slot, ty)
        # a fixed buffer does not move while a statement runs: one view of it per block the
        # statement emits into (`add(a, y) >> a` reads and writes a through one)
        key = (id(ir.b.insertion_point.block), var.slot)
        found = self.buffers.get(key)
        if found is None or found.type != ty:
            found = self.buffers[key] = ir.view(var.slot, ty)
        return found

    def scalar(self, var: VarLayout) -> SSAValue:
        """The element of a one-element buffer, as its signless type."""
        element = signless(var.dtype)
        view = self.ir.view(var.slot, MemRefType(element, list(var.shape)))
        zeros = [self.ir.const(0) for _ in var.shape]
        return self.ir.emit(memref.LoadOp.get(view, zeros))

    def scalar_as_index(self, var: VarLayout, op: Operation, error: str) -> SSAValue:
        """Upstream's `scalar_to_i64`: bools count 0/1, floats are refused (`error` class)."""
        if any(d != 1 for d in var.shape):
            self.static_error(error, "cache index must be scalar", op)
            return self.ir.const(0)
        if var.dtype in FLOAT_DTYPES:
            self.static_error(error, "cache index must be integer", op)
            return self.ir.const(0)
        return self.widen(self.scalar(var), var.dtype)

    def widen(self, value: SSAValue, dtype: str) -> SSAValue:
        width = value.type.width.data
        if width < 64:
            ext = arith.ExtUIOp if dtype == "bool" or dtype.startswith("u") else arith.ExtSIOp
            value = self.ir.emit(ext(value, IntegerType(64)))
        return self.ir.to_index(value)

    def index_value(self, index, op: Operation, *, cache: bool) -> SSAValue:
        """Upstream's order: literal, (bound) size, loop index, then a scalar variable."""
        if isinstance(index, IntAttr):
            return self.ir.const(index.data)
        name = index.data
        if name in self.loop_vars:
            return self.loop_vars[name]
        var = (self.store_vars if cache and self.store_vars else self.plan.vars).get(name)
        if cache:
            if var is None or var.memory != "persistent" or var.kind != "buffer":
                self.static_error(CACHE, f"unknown cache index {name}", op)
                return self.ir.const(0)
            return self.scalar_as_index(var, op, CACHE)
        if var is None or var.kind in ("table", "prefix"):
            self.static_error(EXEC, f"unknown variable: {name}", op)
            return self.ir.const(0)
        if var.kind != "buffer":  # a cache.read destination: its current value
            if any(d is None for d in var.shape):
                raise unsupported(f"{name}, sized at run time, as an index", op)
            if any(d != 1 for d in var.shape):
                self.static_error(CACHE, "cache index must be scalar", op)
                return self.ir.const(0)
            view = self.var_memref(var)
            value = self.ir.emit(memref.LoadOp.get(view, [self.ir.const(0) for _ in var.shape]))
            if var.dtype in FLOAT_DTYPES:
                self.static_error(CACHE, "cache index must be integer", op)
                return self.ir.const(0)
            return self.widen(_signless_value(self.ir, value), var.dtype)
        self.check_exists(var, op)
        return self.scalar_as_index(var, op, CACHE)

    def access(self, access, op: Operation) -> list:
        """Each index as ("index", v) (checked non-negative) or ("slice", start|None, end|None)."""
        out = []
        for index in access.indices:
            if isinstance(index, SliceAttr):
                bounds = [None if isinstance(x, NoneAttr) else self.index_value(x, op, cache=True)
                          for x in (index.start, index.end)]  # fmt: skip
                out.append(("slice", *bounds))
            else:
                value = self.index_value(index, op, cache=True)
                self.ir.fail_if(self.ir.cmp("slt", value, self.ir.const(0)),
                                lambda: self.site(CACHE, "cache index cannot be negative", op))  # fmt: skip
                out.append(("index", value))
        return out

    def storage(self, name: str, op_name: str, op: Operation) -> VarLayout | None:
        var = (self.store_vars or self.plan.vars).get(name)  # an async block's cache ops: the shared state
        if var is None or var.memory != "persistent":
            kind = var.memory.capitalize() if var is not None else "Unknown"
            self.static_error(CACHE, f"{op_name} expects persistent variable, got {kind} {name}", op)
            return None
        return var

    # --- tables: the statement's checks; the entry ops do the rest (lowering/dense_storage.py) ---
    def table(self, table: VarLayout) -> SSAValue:
        """The table as a value of its type (what the entry ops take)."""
        ty = table_type(table.dtype, table.shape, table.indices, table.fixed, table.page)
        return self.ir.emit(TableOp(table.name, ty))

    def check_fixed(self, table: VarLayout, dim: int, size: SSAValue, op: Operation,
                    what: str, value: SSAValue) -> None:  # fmt: skip
        """A `@fixed` index never grows: a selection past its size is the reference's error, naming
        the value that overflowed (`what`: "index value" or "slice end"; `value`: the message's {0})."""
        limit = table.fixed[dim]
        if limit is not None:
            message = fixed_size_message(escape_braces(table.name), dim, limit, what + " {0}")
            self.ir.fail_if(self.ir.cmp("sgt", size, self.ir.const(limit)), lambda: self.site(CACHE, message, op), [value])

    def selection(self, table: VarLayout, resolved: list, op: Operation) -> list | None:
        """`TableStorage._selection`'s checks: per index ("index", k) or ("slice", start, end)."""
        ir = self.ir
        if table.dtype in PACKED_DTYPES:
            self.static_error(CACHE, "cache table packed dtypes not supported", op)
            return None
        if len(resolved) > table.rank:
            self.static_error(CACHE, f"cache table {table.name} expects {table.rank} indices, got {len(resolved)}", op)
            return None
        full = resolved + [("slice", None, None)] * (table.rank - len(resolved))
        out = []
        for dim, item in enumerate(full):
            if item[0] == "slice":
                start, end = self.slice_bounds(table, dim, item[1], item[2], op)
                self.check_fixed(table, dim, end, op, "slice end", end)
                out.append(("slice", start, end))
            else:
                k = item[1]
                if table.fixed[dim] is not None:
                    self.check_fixed(table, dim, ir.size_after(k), op, "index value", k)
                out.append(item)
        return out

    def slice_bounds(self, table: VarLayout, dim: int, start, end, op: Operation):
        ir = self.ir
        size = ir.word(table.size_slot(dim))
        if start is None:
            start = ir.const(0)
        else:
            ir.fail_if(ir.cmp("slt", start, ir.const(0)), lambda: self.site(CACHE, "slice start cannot be negative", op))
        if end is None:
            end = size
        else:
            negative = ir.cmp("slt", end, ir.const(0))
            underflow = ir.and_(negative, ir.cmp("slt", end, ir.sub(ir.const(0), size)))  # -end > size
            ir.fail_if(underflow, lambda: self.site(CACHE, "slice end underflow for size {0}", op), [size])
            end = ir.select(negative, ir.add(size, end), end)
        ir.fail_if(ir.cmp("slt", end, start), lambda: self.site(CACHE, "slice end {0} before start {1}", op), [end, start])
        return start, end

    # --- statements --------------------------------------------------------------------------
    def cache_read(self, op: CacheReadOp) -> None:
        ir = self.ir
        table = self.storage(op.src.var_name, "cache.read", op)
        if table is None:
            return
        dest = self.plan.vars[op.dst.var_name]
        if table.kind == "auto":
            self.auto_read(op, table, dest)
            return
        if table.kind == "buffer":
            if op.src.is_bracketed:
                self.static_error(CACHE, f"cache {table.name} does not support indexed access", op)
                return
            if dest.kind != "buffer" or tuple(dest.shape) != tuple(table.shape) or dest.dtype != table.dtype:
                raise unsupported(f"cache.read of {table.name} into {dest.name} of another shape or dtype", op)
            if dest.aliases:  # the reference binds the read value anew: a name sharing the buffer keeps it
                ir.grow(P.GROW_REBIND, dest.slot, 0, 0)
            ir.emit(memref.CopyOp(self.var_memref(table), self.var_memref(dest)))
            self.mark_written(op.dst.var_name)
            return
        selection = self.selection(table, self.access(op.src, op), op)
        if selection is None:
            return
        bounds, slices = _entry_bounds(selection)
        if dest.kind == "view":
            gather = dest.name if table.page and any(s[0] == "slice" for s in selection) else None  # may span pages
            view = ViewOp(self.table(table), bounds, slices, memref_type_of(dest, self.plan), gather)
            self.views[dest.name] = ir.emit(view)
            # what fetch re-reads: the table, then start and count per index (-1: index dropped)
            ir.set_word(dest.slot, ir.const(dest.tables.index(table.name)))
            ir.set_word(dest.slot + 1, ir.word(P.STEP_STAMP))
            for d, s in enumerate(selection):
                ir.set_word(dest.slot + 2 + 2 * d, s[1])
                ir.set_word(dest.slot + 3 + 2 * d, ir.sub(s[2], s[1]) if s[0] == "slice" else ir.const(-1))
            return
        assert dest.kind == "resizable"
        counts = [ir.sub(s[2], s[1]) for s in selection if s[0] == "slice"]
        # the reference's read binds a new array: a name a `transfer` gave the old one keeps it
        self.resize(dest, [*counts, *table.shape], fresh=bool(dest.aliases))
        target = self.var_memref(dest)
        ir.emit(ReadOp(self.table(table), bounds, slices, target))
        self.mark_written(op.dst.var_name)
        if dest.temp:  # a read creates the temporary, as an assign does
            ir.set_word(dest.exists_slot, ir.const(1))

    def cache_write(self, op: CacheWriteOp) -> None:
        ir = self.ir
        table = self.storage(op.dst.var_name, "cache.write", op)
        if table is None:
            return
        if table.kind == "buffer" and op.dst.indices.data:
            self.static_error(CACHE, f"cache.write {table.name} does not support indexed writes", op)
            return
        source_var = self.source_var(op)
        self.check_exists(source_var, op)
        source = self.source(op, source_var)  # the reference reads the source before the indices
        if table.kind == "auto":
            self.auto_write(op, table, source_var, source)
            return
        if table.kind == "buffer":
            if self.check_write_shape(op, table, source_var, table.shape, source) is False:
                return
            source = self.static_source(source, source_var, table)
            ir.log_bytes(table.slot, ir.const(0), ir.const(nbytes(table.dtype, table.shape)))
            ir.emit(memref.CopyOp(source, self.var_memref(table)))
            return
        selection = self.selection(table, self.access(op.dst, op), op)
        if selection is None:
            return
        if any(s[0] == "slice" for s in selection):
            self.static_error(CACHE, f"cache.write {table.name} does not support slice indices", op)
            return
        if self.check_write_shape(op, table, source_var, table.shape, source) is False:
            return
        source = self.static_source(source, source_var, table)
        key = [s[1] for s in selection]
        self.keep_stale_views(table, key)
        ir.emit(WriteOp(self.table(table), key, source))

    def cache_append(self, op: CacheAppendOp) -> None:
        lower_cache_append(self, op)

    def cache_save(self, op: CacheSaveOp) -> None:
        save(self, op)

    def cache_fork(self, op: CacheForkOp) -> None:
        lower_fork(self, op)

    def cache_pop(self, op: CachePopOp) -> None:
        lower_pop(self, op)

    def cache_reset_where(self, op: CacheResetWhereOp) -> None:
        lower_reset_where(self, op)

    # --- @auto_dim tensors (`AutoDimStorage`) ---------------------------------------------------
    def auto_grow(self, var: VarLayout, op: Operation, access) -> list[SSAValue] | None:
        """Counts raised to the given indices (each checked against its fixed max first), the
        tensor zero-padded by the host when they change; its current dims (base + counts)."""
        ir = self.ir
        resolved = self.access(access, op)
        if len(resolved) > var.rank:
            self.static_error(CACHE, f"cache access {var.name} expects at most {var.rank} indices, "
                                     f"got {len(resolved)}", op)  # fmt: skip
            return None
        if any(r[0] == "slice" for r in resolved):
            self.static_error(CACHE, f"cache access {var.name} does not support slice indices", op)
            return None
        counts = [ir.word(var.count_base + d) for d in range(var.rank)]
        for d, (_, k) in enumerate(resolved):
            limit = var.fixed[d]
            if limit is not None:
                message = escape_braces(f"auto_dim {var.name} exceeds fixed max {limit} for {d}")
                ir.fail_if(ir.cmp("sgt", k, ir.const(limit)), lambda m=message: self.site(CACHE, m, op))
        changed = ir.const_of(0, IntegerType(1))
        for d, (_, k) in enumerate(resolved):
            changed = ir.or_(changed, ir.cmp("sgt", k, counts[d]))
            counts[d] = ir.max(counts[d], k)
        with ir.if_(changed):
            for d in range(len(resolved)):
                ir.set_word(var.count_base + d, counts[d])
            ir.grow(P.GROW_AUTO, var.slot, 0, 0)
        return [ir.add(ir.const(base), ir.word(var.count_base + d)) for d, base in enumerate(var.shape)]

    def auto_view(self, var: VarLayout, dims: list[SSAValue]) -> SSAValue:
        return self.ir.view(var.slot, MemRefType(dtype_type(var.dtype), [DYN] * var.rank), dims)

    def auto_read(self, op: CacheReadOp, var: VarLayout, dest: VarLayout) -> None:
        ir = self.ir
        dims = self.auto_grow(var, op, op.src)
        if dims is None:
            return
        if dest.kind != "resizable":
            raise unsupported(f"cache.read of {var.name} into {dest.name}", op)
        self.resize(dest, dims)
        ir.emit(memref.CopyOp(self.auto_view(var, dims), self.var_memref(dest)))
        self.mark_written(op.dst.var_name)
        if dest.temp:
            ir.set_word(dest.exists_slot, ir.const(1))

    def auto_write(self, op: CacheWriteOp, var: VarLayout, source_var: VarLayout, source: SSAValue) -> None:
        ir = self.ir
        dims = self.auto_grow(var, op, op.dst)
        if dims is None:
            return
        runtime = [i for i, d in enumerate(source_var.shape) if d is None]  # a read destination's sizes
        if source_var.dtype != var.dtype or var.rank + len(runtime) > 4:
            raise unsupported(f"cache.write of {source_var.name} into the @auto_dim {var.name}", op)
        got = [ir.emit(memref.DimOp(source, ir.const(i))) if d is None else ir.const(d)
               for i, d in enumerate(source_var.shape)]  # fmt: skip
        bad = ir.const_of(int(len(source_var.shape) != var.rank), IntegerType(1))
        for size, want in zip(dims, got):
            bad = ir.or_(bad, ir.cmp("ne", size, want))
        expected = "[" + ", ".join("{%d}" % d for d in range(var.rank)) + "]"
        shown = iter(range(var.rank, var.rank + len(runtime)))
        given = "[" + ", ".join(str(d) if d is not None else "{%d}" % next(shown) for d in source_var.shape) + "]"
        message = f"cache.write {escape_braces(var.name)} expects shape {expected}, got {given}"
        ir.fail_if(bad, lambda: self.site(CACHE, message, op), [*dims, *(got[i] for i in runtime)])
        if len(source_var.shape) != var.rank:
            return
        nbytes = ir.mul(ir.product(dims), ir.const(numpy_dtype(var.dtype).itemsize))
        ir.log_bytes(var.slot, ir.const(0), nbytes)
        ir.emit(memref.CopyOp(source, self.auto_view(var, dims)))

    def keep_stale_views(self, table: VarLayout, key: list[SSAValue] | None) -> None:
        """A view read in an earlier step still shows the table; before a write changes an entry it
        shows (`key`; None: a reset, any entry), the host copies it out, as the reference's copy
        would have been. Views read in this step never overlap later writes (`analysis.view_safe`)."""
        ir = self.ir
        for view in self.plan.vars.values():
            if view.kind != "view" or table.name not in view.tables:
                continue
            stale = ir.and_(ir.cmp("eq", ir.word(view.slot), ir.const(view.tables.index(table.name))),
                            ir.cmp("ne", ir.word(view.slot + 1), ir.word(P.STEP_STAMP)))  # fmt: skip
            if key is not None:
                for d, k in enumerate(key):
                    start, count = ir.word(view.slot + 2 + 2 * d), ir.word(view.slot + 3 + 2 * d)
                    at = ir.cmp("eq", k, start)
                    inside = ir.and_(ir.cmp("sge", k, start), ir.cmp("slt", k, ir.add(start, count)))
                    stale = ir.and_(stale, ir.select(ir.cmp("slt", count, ir.const(0)), at, inside))
            with ir.if_(stale):
                ir.grow(P.GROW_VIEW, view.slot, 0, 0)

    def source_var(self, op: CacheWriteOp) -> VarLayout:
        var = self.plan.vars.get(op.src.var_name)
        if var is None or var.kind in ("table",):
            raise unsupported(f"cache.write from {op.src.var_name}", op)
        return var

    def check_write_shape(self, op, table: VarLayout, source: VarLayout, shape, value: SSAValue) -> bool:
        """The reference's shape check of a written value; False when it always fails."""
        if source.dtype != table.dtype:
            raise unsupported(f"cache.write of {source.dtype} into {table.dtype} table {table.name}", op)
        runtime = [i for i, d in enumerate(source.shape) if d is None]  # a read destination's sizes
        if runtime:
            if len(runtime) > 4:
                raise unsupported(f"cache.write from {source.name}, sized at run time", op)
            ir = self.ir
            sizes = [ir.emit(memref.DimOp(value, ir.const(i))) for i in runtime]
            bad = ir.const_of(int(len(source.shape) != len(shape)), IntegerType(1))
            if len(source.shape) == len(shape):
                for i, size in zip(runtime, sizes):
                    bad = ir.or_(bad, ir.cmp("ne", size, ir.const(shape[i])))
            shown = iter(range(len(runtime)))
            given = "[" + ", ".join(str(d) if d is not None else "{%d}" % next(shown) for d in source.shape) + "]"
            message = escape_braces(f"cache.write {table.name} expects shape {shape_text(shape)}, got ") + given
            ir.fail_if(bad, lambda: self.site(CACHE, message, op), sizes)
            return len(source.shape) == len(shape) and all(d is None or d == s for d, s in zip(source.shape, shape))
        if tuple(source.shape) != tuple(shape):
            self.static_error(CACHE, f"cache.write {table.name} expects shape {shape_text(shape)}, "
                                     f"got {shape_text(source.shape)}", op)  # fmt: skip

    def static_source(self, value: SSAValue, source: VarLayout, table: VarLayout) -> SSAValue:
        """A value sized at run time, checked to have the entry's shape, as that static shape."""
        if all(d is not None for d in source.shape):
            return value
        return cast_shape(self.ir, value, table.shape)

    def source(self, op: CacheWriteOp, var: VarLayout) -> SSAValue:
        if var.kind == "prefix":
            return self.prefix_entry(op.src, var, op)
        return self.var_memref(var)

    def cache_step(self, op: CacheIncrementOp | CacheDecrementOp) -> None:
        ir = self.ir
        name, amount = op.target.data, op.amount.data
        word = "increment" if isinstance(op, CacheIncrementOp) else "decrement"
        var = self.storage(name, "cache operation", op)
        if var is None:
            return
        if var.kind != "buffer":
            self.static_error(CACHE, f"cache {word} expects scalar {name}", op)
            return
        if any(d != 1 for d in var.shape):
            self.static_error(CACHE, f"cache {word} expects scalar {name}", op)
            return
        if var.dtype == "bool" or var.dtype in PACKED_DTYPES:
            self.static_error(CACHE, f"cache {word} does not support dtype {dtype_debug_name(var.dtype)} for {name}", op)
            return
        delta = amount if word == "increment" else -amount
        ir.log_bytes(var.slot, ir.const(0), ir.const(nbytes(var.dtype, var.shape)))
        value = self.scalar(var)
        if var.dtype in FLOAT_DTYPES:
            wide = value.type if var.dtype == "f64" else _F32
            widened = value if value.type == wide else ir.emit(arith.ExtFOp(value, wide))
            summed = ir.emit(arith.AddfOp(widened, ir.emit(arith.ConstantOp(FloatAttr(float(delta), wide)))))
            result = summed if wide == value.type else ir.emit(arith.TruncFOp(summed, value.type))
        else:
            width = value.type.width.data  # the amount wraps to the counter's width, as the sum does
            wrapped = delta % (1 << width)
            wrapped = wrapped - (1 << width) if wrapped >= 1 << (width - 1) else wrapped
            result = ir.emit(arith.AddiOp(value, ir.const_of(wrapped, value.type)))
        view = ir.view(var.slot, MemRefType(value.type, list(var.shape)))
        ir.emit(memref.StoreOp.get(result, view, [ir.const(0) for _ in var.shape]))

    def cache_reset(self, op: CacheResetOp) -> None:
        ir = self.ir
        var = self.storage(op.target.var_name, "cache.reset", op)
        if var is None:
            return
        if var.kind == "buffer":
            ir.log_bytes(var.slot, ir.const(0), ir.const(nbytes(var.dtype, var.shape)))
            fill(self.ir, self.var_memref(var), var.init, var.dtype)
            return
        if var.kind == "auto":  # counts back to 0; the host makes a fresh @init tensor of the base shape
            for d in range(var.rank):
                ir.set_word(var.count_base + d, ir.const(0))
            ir.grow(P.GROW_AUTO, var.slot, 1, 0)
            return
        prefix = self.access(op.target, op)
        if any(p[0] == "slice" for p in prefix):
            self.static_error(CACHE, f"cache.reset {var.name} requires scalar indices", op)
            return
        self.keep_stale_views(var, None)
        ir.emit(ResetOp(self.table(var), [p[1] for p in prefix]))

    def loop(self, op: LoopOp) -> None:
        ir = self.ir
        lower, upper = (self.loop_bound(b, op) for b in op.bounds)
        if any(isinstance(inner, ReturnOp) for inner in op.body.block.ops):  # the first iteration ends it
            upper = ir.select(ir.cmp("slt", lower, upper), ir.add(lower, ir.const(1)), upper)
        saved_loops, saved_views, scope = dict(self.loop_vars), dict(self.views), self.enter_scope()
        with ir.for_(lower, upper) as iv:
            self.loop_vars[op.index.data] = iv
            if not self.in_entry and _yields_inside(op):  # once a yield ended the block, nothing runs
                with ir.if_(ir.cmp("eq", ir.word(self.plan.control["ended"]), ir.const(0))):
                    self.statements(op.body.block.ops)
            else:
                self.statements(op.body.block.ops)
        self.loop_vars, self.views, self.scope = saved_loops, saved_views, scope

    def branch(self, op: BranchOp) -> None:
        """`branch c a b`: block a's statements when c is not zero, else b's (inlined in an scf.if)."""
        ir = self.ir
        blocks = P.blocks_of(op)
        then, other = op.then_block.data, op.else_block.data if op.else_block is not None else None
        if op.cond is None:
            self.call_block(blocks, then, op)
            return
        var = self.plan.vars.get(op.cond.data)
        if var is None or var.kind != "buffer":
            if var is None:
                self.static_error(EXEC, f"unknown variable: {op.cond.data}", op)
                return
            raise unsupported(f"branching on {op.cond.data}", op)
        self.check_exists(var, op)
        if any(d != 1 for d in var.shape):
            self.static_error(EXEC, "expected scalar value", op)
            return
        value = self.scalar(var)
        if isinstance(value.type, IntegerType):
            taken = ir.emit(arith.CmpiOp(value, ir.const_of(0, value.type), "ne"))
        else:  # NaN counts as true, as Python's truth test of the reference does
            taken = ir.emit(arith.CmpfOp(value, ir.emit(arith.ConstantOp(FloatAttr(0.0, value.type))), "une"))
        with ir.if_else(taken) as otherwise:
            self.call_block(blocks, then, op)
            otherwise()
            if other is not None:
                self.call_block(blocks, other, op)

    def call_block(self, blocks, name: str, op: BranchOp) -> None:
        if name not in blocks:
            self.static_error(EXEC, f"unknown block {name} for branch target", op)
            return
        if self.depth >= P.MAX_BRANCH_DEPTH:  # the reference's limit (a block branching back into itself)
            self.static_error(EXEC, f"branch to block {name} nests more than {P.MAX_BRANCH_DEPTH} blocks deep "
                                    "(does a block branch back into itself?)", op)  # fmt: skip
            return
        self.depth += 1
        try:
            self.inline_block(blocks, name)
        finally:
            self.depth -= 1

    def inline_block(self, blocks, name: str) -> None:
        saved_views, in_entry = dict(self.views), self.in_entry  # reads in the block serve only the block
        self.in_entry, scope = False, self.enter_scope()  # a `yield` there ends the block; an `await` does nothing
        self.statements(blocks[name].body.block.ops)
        self.views, self.in_entry, self.scope = saved_views, in_entry, scope
        if "ended" in self.plan.control and _yields_inside_list(blocks[name].body.block.ops):
            self.ir.set_word(self.plan.control["ended"], self.ir.const(0))  # the caller goes on

    def loop_bound(self, bound, op: LoopOp) -> SSAValue:
        ir = self.ir
        if isinstance(bound, int):
            return ir.const(bound)
        var = self.plan.vars.get(bound)
        if var is None or var.kind not in ("buffer",):
            if var is None:
                self.static_error(EXEC, f"unknown variable: {bound}", op)
                return ir.const(0)
            raise unsupported(f"loop bound {bound}", op)
        if any(d != 1 for d in var.shape):
            self.static_error(EXEC, "expected scalar value", op)
            return ir.const(0)
        value = self.scalar(var)
        if var.dtype in FLOAT_DTYPES:
            if value.type != _F64:
                value = ir.emit(arith.ExtFOp(value, _F64))
            return ir.to_index(ir.emit(arith.FPToSIOp(value, IntegerType(64))))
        return self.widen(value, var.dtype)

    # --- ops ---------------------------------------------------------------------------------
    def kernel(self, op: KernelOp, guards: int = 0) -> None:
        checks = json.loads(op.shape_checks.data) if op.shape_checks is not None else {}
        if len(checks.get("if_vars", [])) > guards:  # a setting read from a variable picks the kernel
            name, *test = checks["if_vars"][guards]
            var = self.plan.vars[name]
            self.check_exists(var, op)
            value = self.scalar(var)
            if test[0] == "eq":  # [name, "eq", value] (an axis); else [name, truth] (a bool setting)
                cond = self.ir.cmp("eq", self.widen(value, var.dtype), self.ir.const(test[1]))
            else:
                cond = self.ir.emit(arith.CmpiOp(value, self.ir.const_of(0, value.type), "ne" if test[0] else "eq"))
            with self.ir.if_(cond):
                self.kernel(op, guards + 1)
            return
        if "unless_var" in checks:  # none of the values it was lowered for: the op's error, the value shown
            spec = checks["unless_var"]
            var = self.plan.vars[spec["var"]]
            self.check_exists(var, op)
            value = self.widen(self.scalar(var), var.dtype)
            bad = self.ir.const_of(1, IntegerType(1))
            for number in spec["values"]:
                bad = self.ir.and_(bad, self.ir.cmp("ne", value, self.ir.const(number)))
            self.ir.fail_if(bad, lambda: self.site(EXEC, spec["message"], op), [value])
            return
        if "when" in checks or "unless" in checks:
            self.specialized_kernel(op, checks)
            return
        self.kernel_call(op)

    def specialized_kernel(self, op: KernelOp, checks: dict) -> None:
        """One of an op's kernels by input sizes (`lower_ops._specialized_kernels`): run when the
        run-time sizes are its own; the last fails with the shape rule's error when none were."""
        ir = self.ir
        inputs = []
        for ref in op.inputs:
            var = self.plan.vars[ref.var_name]
            self.check_exists(var, op)
            inputs.append(None if ref.indices.data else self.var_memref(var))
        spec = checks.get("when") or checks["unless"]
        sizes = [ir.emit(memref.DimOp(inputs[i], ir.const(d))) for i, d in spec["dims"]]

        def matches(values) -> SSAValue:
            cond = ir.const_of(1, IntegerType(1))
            for size, value in zip(sizes, values):
                cond = ir.and_(cond, ir.cmp("eq", size, ir.const(value)))
            return cond

        if "unless" in checks:
            none = ir.const_of(1, IntegerType(1))
            for values in spec["values"]:
                none = ir.and_(none, ir.emit(arith.XOrIOp(matches(values), ir.const_of(1, IntegerType(1)))))
            ir.fail_if(none, lambda: self.site(EXEC, checks["message"], op), sizes)
            return
        with ir.if_(matches(spec["values"])):
            self.kernel_call(op, cast=True)

    def kernel_call(self, op: KernelOp, cast: bool = False) -> None:
        ir = self.ir
        if op.static_error is not None:
            self.static_error(EXEC, op.static_error.data, op)
            return
        values = []
        for ref in op.inputs:
            var = self.plan.vars[ref.var_name]
            self.check_exists(var, op)
            values.append(self.prefix_entry(ref, var, op) if ref.indices.data else self.var_memref(var))
        output = self.var_memref(self.plan.vars[op.output_name])
        checks = json.loads(op.shape_checks.data) if op.shape_checks is not None else {}
        if not cast and any(k in checks for k in ("dims", "output", "equal", "empty")):
            if self.check_result_dims(op, values, output):
                return  # the result never fits the output: the check always fails
        values.append(output)
        function = self.kernel_function(op)  # a block two branches call emits its kernels twice
        params = function.function_type.inputs.data
        for key in op.runtime_settings:
            var = self.plan.vars[op.settings.data[key.data].root_reference.data]
            self.check_exists(var, op)
            value = self.scalar(var)
            if params[len(values)] == _F64 and value.type != _F64:  # a number the float nests take as f64
                value = self.to_f64(value, var.dtype)
            elif params[len(values)] == _I64 and value.type != _I64:  # ... the integer nests as i64
                ext = arith.ExtUIOp if var.dtype == "bool" or var.dtype.startswith("u") else arith.ExtSIOp
                value = ir.emit(ext(value, _I64))
            values.append(value)
        settings_at = len(values) - len(op.runtime_settings)
        for n, message in checks.get("negative", []):  # the reference refuses these for an unsigned dtype
            ir.fail_if(ir.emit(arith.CmpiOp(values[settings_at + n], ir.const_of(0, _I64), "slt")),
                       lambda m=message: self.site(EXEC, escape_braces(m), op))  # fmt: skip
        if cast:  # sizes known to match the kernel's static input types
            values = [ir.emit(memref.CastOp.get(v, p)) if p != v.type else v for v, p in zip(values, params)]
        for param, value in zip(function.function_type.inputs.data, values):
            if param != value.type:
                raise PassError(f"oi.kernel {op.kind}: argument of type {param} given {value.type} "
                                "(run --lower-ops on this graph again)", nearest_loc(op))  # fmt: skip
        if function.function_type.outputs.data:  # GPU op kernels (`oi.gpu_op`): a launch that fails fails the step
            status = ir.emit(func.CallOp(function.sym_name.data, values, [i32]))
            ir.fail_if(ir.emit(arith.CmpiOp(status, ir.const_of(0, i32), "ne")),
                       lambda: self.site(EXEC, escape_braces(f"op {op.kind}: its GPU kernels failed"), op))  # fmt: skip
        else:
            ir.emit(func.CallOp(function.sym_name.data, values, []))
        self.mark_written(op.output_name)
        output = self.plan.vars[op.output_name]
        if output.temp:  # writing a temporary creates it, as assign does
            ir.set_word(output.exists_slot, ir.const(1))

    def to_f64(self, value: SSAValue, dtype: str) -> SSAValue:
        """A scalar as the reference's `float(value.item())`: integers and bools converted, floats widened."""
        if dtype in FLOAT_DTYPES:
            if value.type != _F32:  # narrow floats (f8 too) reach f64 through f32, exactly
                value = self.ir.emit(arith.ExtFOp(value, _F32))
            return self.ir.emit(arith.ExtFOp(value, _F64))
        signed = dtype != "bool" and not dtype.startswith("u")
        return self.ir.emit((arith.SIToFPOp if signed else arith.UIToFPOp)(value, _F64))

    def check_exists(self, var: VarLayout, op: Operation) -> None:
        """An `assign` temporary read before its assign ran is an unknown variable (the reference's)."""
        if var.temp:
            ir = self.ir
            ir.fail_if(ir.cmp("eq", ir.word(var.exists_slot), ir.const(0)),
                       lambda: self.site(EXEC, escape_braces(f"unknown variable: {var.name.partition('@')[0]}"), op))  # fmt: skip

    def check_result_dims(self, op: KernelOp, inputs: list[SSAValue], output: SSAValue) -> bool:
        """The reference's output-shape error when a run-time sized result differs from the output;
        True when it always fails (a result of another rank, or a static dim that differs)."""
        ir = self.ir
        checks = json.loads(op.shape_checks.data)
        equal = checks.get("equal")
        if equal:  # sizes the shape rule needs equal (attention's keys and values)
            (i0, d0), *rest = equal["dims"]
            first = ir.emit(memref.DimOp(inputs[i0], ir.const(d0)))
            for i, d in rest:
                other = ir.emit(memref.DimOp(inputs[i], ir.const(d)))
                ir.fail_if(ir.cmp("ne", first, other), lambda: self.site(EXEC, equal["message"], op), [first, other])
        for check in checks.get("empty", []):  # the reference refuses an empty axis here
            i, d = check["dim"]
            size = ir.emit(memref.DimOp(inputs[i], ir.const(d)))
            args = [ir.emit(memref.DimOp(inputs[a], ir.const(b))) for a, b in check["args"]]
            ir.fail_if(ir.cmp("eq", size, ir.const(0)), lambda c=check: self.site(EXEC, c["message"], op), args)
        if checks.get("output"):  # an output sized at run time: its current dims against the result's
            def size(ref):
                if ref[0] == "const":
                    return ir.const(ref[1])
                memref_value, dim = (output, ref[1]) if ref[0] == "out" else (inputs[ref[1]], ref[2])
                return ir.emit(memref.DimOp(memref_value, ir.const(dim)))

            spec = checks["output"]
            bad = ir.const_of(0, IntegerType(1))
            for left, right in spec["compare"]:
                bad = ir.or_(bad, ir.cmp("ne", size(left), size(right)))
            ir.fail_if(bad, lambda: self.site(EXEC, checks["message"], op), [size(a) for a in spec["args"]])
            return False
        dims, bad = [], ir.const_of(0, IntegerType(1))
        for *ref, expected in checks["dims"]:
            if ref[0] == "linear":  # const + sum(coeff * size) (`concat(k, k)`)
                size = ir.const(ref[1])
                for i, d, coeff in ref[2]:
                    size = ir.add(size, ir.mul(ir.emit(memref.DimOp(inputs[i], ir.const(d))), ir.const(coeff)))
            else:
                size = ir.emit(memref.DimOp(inputs[ref[0]], ir.const(ref[1])))
            dims.append(size)
            bad = ir.or_(bad, ir.cmp("ne", size, ir.const(expected)))
        if checks.get("always"):
            bad = ir.const_of(1, IntegerType(1))
        ir.fail_if(bad, lambda: self.site(EXEC, checks["message"], op), dims)
        return bool(checks.get("always"))

    def kernel_function(self, op: KernelOp) -> func.FuncOp:
        """The kernel's nest as a function; kernels with the same nest share one."""
        key = op.nest_key.data if op.nest_key is not None else f"kernel {id(op)}"
        function = self.kernels.get(key)
        if function is None:
            block = op.body.detach_block(0)
            gpu_op = op.attributes.get(GPU_OP_ATTR)
            if gpu_op is None:
                block.add_op(func.ReturnOp())
            else:  # returns a status: 0 here, where the nest still runs; the launch's after --launch-op-kernels
                zero = arith.ConstantOp.from_int_and_width(0, 32)
                block.add_ops([zero, func.ReturnOp(zero)])
            ty = func.FunctionType.from_lists([a.type for a in block.args], [i32] if gpu_op is not None else [])
            name = f"kernel_{len(self.kernels)}_{op.kind}"
            function = func.FuncOp(name, ty, Region(block), visibility="private")
            function.attributes[NOINLINE_ATTR] = UnitAttr()
            if gpu_op is not None:
                function.attributes[GPU_OP_ATTR] = gpu_op
            function.location = nearest_location(op)  # a shared kernel: where its first statement is
            self.ir._locate(function)
            self.kernels[key] = function
        return function

    def prefix_entry(self, ref, var: VarLayout, op: Operation) -> SSAValue:
        """Entry `W[i, j]` of a constant prefix table: its address from the host's table of addresses."""
        ty = MemRefType(dtype_type(var.dtype), list(var.shape))
        if var.memory != "constant":
            self.volatile_entry(ref, var, op)
            return self.ir.view(var.slot, ty)
        table, flat = self.prefix_slot(ref, var, op)
        return self.ir.view_at(table, flat, ty)

    def volatile_entry(self, ref, var: VarLayout, op: Operation) -> None:
        """Entry `W[i, j]` of a volatile prefix table: any index, from the model or made of `@init` on
        first use and kept (the reference's `W[i,j]` value); the host puts its address in the var's word."""
        ir = self.ir
        indices = [self.index_value(i, op, cache=False) for i in ref.indices]
        if len(indices) != var.rank:
            raise unsupported(f"{ref.var_name} with {len(indices)} of its {var.rank} indices", op)
        for d, k in enumerate(indices):  # the error words (and the last words, past four) are free until an error
            ir.set_word(P.ERROR_ARGS + d if d < 4 else self.plan.words - (var.rank - 4) + d - 4, k)
        ir.grow(P.GROW_PREFIX, var.slot, var.rank, 0)

    def prefix_slot(self, ref, var: VarLayout, op: Operation) -> tuple[SSAValue, SSAValue]:
        """The host's table of entry addresses and the (checked) position of `W[i, j]` in it."""
        ir = self.ir
        indices = [self.index_value(i, op, cache=False) for i in ref.indices]
        if len(indices) != var.rank:
            raise unsupported(f"{ref.var_name} with {len(indices)} of its {var.rank} indices", op)
        counts = [ir.word(var.count_base + d) for d in range(var.rank)]
        pattern = self._key_template(ref.var_name, var)
        sites: list[int] = []

        def site() -> ErrorSiteAttr:  # one site for both checks
            if not sites:
                sites.append(self.site(EXEC, "model variable not found: " + pattern, op))
            return sites[0]

        bad = ir.const_of(0, IntegerType(1))
        for k, count in zip(indices, counts):
            bad = ir.or_(bad, ir.or_(ir.cmp("slt", k, ir.const(0)), ir.cmp("sge", k, count)))
        for d, k in enumerate(indices[4:]):  # a fifth index on: the message's arguments past four
            ir.set_word(self.plan.words - (var.rank - 4) + d, k)
        ir.fail_if(bad, site, indices[:4])
        flat = ir.const(0)
        for k, count in zip(indices, counts):
            flat = ir.add(ir.mul(flat, count), k)
        table = ir.view(var.slot, MemRefType(_I64, [DYN]), [ir.product(counts)])
        address = ir.emit(memref.LoadOp.get(table, [flat]))
        ir.fail_if(ir.emit(arith.CmpiOp(address, ir.const_of(0, _I64), "eq")), site, indices[:4])
        return table, flat

    def _key_template(self, name: str, var: VarLayout) -> str:
        decl = next(v for v in self.plan.graph.vars if v.var_name == name)
        if decl.pattern is None:
            return escape_braces(name) + "[" + ",".join("{%d}" % d for d in range(var.rank)) + "]"
        key = escape_braces(decl.pattern.data)
        for d, index in enumerate(var.indices):
            key = key.replace("{{" + index + "}}", "{%d}" % d)
        return key


def _yields_inside(loop: LoopOp) -> bool:
    """A `yield` in the loop's body or in a loop inside it (a branch target's yield ends that block)."""
    return _yields_inside_list(loop.body.block.ops)


def _yields_inside_list(ops) -> bool:
    return any(isinstance(op, YieldOp) or (isinstance(op, LoopOp) and _yields_inside(op)) for op in ops)


# --- types and constants ---------------------------------------------------------------------

_I64 = IntegerType(64)
_F32 = dtype_type("f32")
_F64 = dtype_type("f64")


def _signless_value(ir: StepIR, value: SSAValue) -> SSAValue:
    """An element loaded as `uiN` reinterpreted as `iN` (arith takes signless integers)."""
    ty = value.type
    if isinstance(ty, IntegerType) and ty != IntegerType(ty.width.data):
        return ir.emit(UnrealizedConversionCastOp.get([value], [IntegerType(ty.width.data)]))
    return value


def _entry_bounds(selection: list) -> tuple[list[SSAValue], list[int]]:
    """A checked selection as an entry op's bounds and slice flags."""
    bounds, slices = [], []
    for item in selection:
        bounds.extend(item[1:])
        slices.append(int(item[0] == "slice"))
    return bounds, slices


#: statements that may call the host (growth): each starts with an `oi_table.statement` marker
HOST_CALLING = (CacheWriteOp, CacheReadOp, CacheResetOp, CacheAppendOp, CacheSaveOp, CacheForkOp, CachePopOp,
                CacheResetWhereOp, AssignOp)  # fmt: skip

#: the statements the walk emits itself (the control flow); the others are placed, then lowered by
#: their patterns (`statement_patterns.STATEMENT_PATTERNS`). Outside the entry, a `yield` ends its
#: block: `statements` handles that.
STRUCTURE = {
    LoopOp: StepEmitter.loop,
    BranchOp: StepEmitter.branch,
    AwaitOp: StepEmitter.await_,
    ReturnOp: StepEmitter.nothing,
}


def emit_step(plan: StepAnalysis) -> list[func.FuncOp]:
    """The step function, then the kernels and shared helpers it calls."""
    emitter = StepEmitter(plan)
    step = emitter.emit()
    return [step, *emitter.kernels.values(), *emitter.helpers.functions.values()]

