"""The reference executor: a numpy interpreter of the graph-level (`oi` dialect) IR.

It runs one step of a `BoundGraph` with upstream OpenInfer's semantics
(reference/openinfer.md sections 3 and 4; docs/semantics.md lists each choice):

- non-persistent variables live in a `dict` of numpy buffers that persists across
  steps (upstream never clears them); a variable read before it is written comes
  from the model (its `@ref`, else its own name), else `@init`, else zeros;
- persistent variables live in the `PersistentStore` and are touched only by
  cache ops (`tables.py` holds the cache rules);
- ops call their registry entry's numpy `reference`; an op writing a buffer of
  the same shape and dtype writes into it in place, so `transfer` aliases see it;
- `branch` calls the target block and resumes after the branch; `return` ends
  the current block, or the loop around it; a loop's bounds are read once;
- `yield`/`await` are deterministic: the entry's `yield` snapshots the state,
  `await` runs the async blocks one after another in name order on copies of that
  snapshot and merges the awaited variables back.

Every node that completes emits a trace event (loops and branches before their
bodies, as upstream does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    StringAttr,
    SymbolRefAttr,
)

from oi_compiler.dialects.oi import (
    AssignOp,
    AwaitOp,
    BarrierOp,
    BranchOp,
    CacheAppendOp,
    CacheDecrementOp,
    CacheForkOp,
    CacheLoadOp,
    CachePopOp,
    CacheIncrementOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
    CacheWriteOp,
    DepOp,
    LoopOp,
    NamedOp,
    ReturnOp,
    TransferOp,
    YieldOp,
    describe,
)
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, SliceAttr, VarRefAttr
from oi_compiler.boundary import internal_error
from oi_compiler.dtypes import FLOAT_DTYPES, dtype_name, dtype_of_array, numpy_dtype
from oi_compiler.errors import CacheError, ExecutionError, OiError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.ops.reference.settings import SHAPE_FROM_OUTPUT
from oi_compiler.ops.registry import lookup_op, setting_spec
from oi_compiler.runtime import sequences
from oi_compiler.runtime.binding import BoundGraph, check_model_tensor
from oi_compiler.runtime.tables import (
    AutoDimStorage,
    PersistentStore,
    PlainStorage,
    TableStorage,
    init_array,
    step_scalar,
)
from oi_compiler.runtime.trace import EVENT_KINDS, TraceEvent
from oi_compiler.verify.scope import shape_text


@dataclass
class Frame:
    """What one running block sees: its name, the loop indices in scope, its variables."""

    block: str
    loop_vars: dict[str, int]
    values: dict[str, np.ndarray]
    is_entry: bool
    written: set[str] = field(default_factory=set)
    traced: bool = True  # False in async blocks, whose events upstream drops


@dataclass
class PendingYield:
    """The entry's `yield`, waiting for its `await`: the yielded names and a snapshot of the state."""

    names: list[str]
    snapshot: dict[str, np.ndarray]



class _Return(Exception):
    """A `return` node: ends the current block (or the loop around it)."""


class _EndBlock(_Return):
    """A `yield` outside the entry: ends its whole block, loops around it included."""


#: how deep branches may nest (blocks running inside blocks) before a step fails
MAX_BRANCH_DEPTH = 100


class ReferenceInterpreter:
    """Runs steps of one bound graph over one executor's state."""

    def __init__(
        self,
        bound: BoundGraph,
        store: PersistentStore,
        values: dict[str, np.ndarray],
        emit: Callable[[TraceEvent], None] | None = None,
        *,
        timer: bool = False,
    ):
        self.bound = bound
        self.store = store
        self.values = values
        self.emit = emit
        self.timer = timer
        self.pending: PendingYield | None = None
        self.saves: dict[str, tuple] = {}  # field -> (its last cache.save, that save's frame, the rows)
        self.last_event: TraceEvent | None = None
        self.branch_depth = 0  # blocks entered by `branch` and not yet left
        self._descriptions: dict[int, str] = {}
        self.temp_types = {op.var_name: op.var_type for op in bound.op.walk() if isinstance(op, AssignOp)}
        self._handlers: dict[type, Callable] = {
            AssignOp: self._assign,
            NamedOp: self._named_op,
            CacheReadOp: self._cache_read,
            CacheWriteOp: self._cache_write,
            CacheIncrementOp: self._cache_step,
            CacheDecrementOp: self._cache_step,
            CacheResetOp: self._cache_reset,
            CacheAppendOp: self._cache_append,
            CacheSaveOp: self._cache_save,
            CacheForkOp: self._cache_fork,
            CachePopOp: self._cache_pop,
            CacheResetWhereOp: self._cache_reset_where,
            CacheLoadOp: self._cache_read,  # a field changes only at the step's end: its value now is the last step's
            TransferOp: self._transfer,
            BranchOp: self._branch,
            LoopOp: self._loop,
            YieldOp: self._yield,
            AwaitOp: self._await,
            BarrierOp: self._no_op,
            DepOp: self._no_op,
            ReturnOp: self._return,
        }

    # --- steps and blocks ----------------------------------------------------------

    def run_step(self) -> TraceEvent | None:
        """Run the entry block once; on any error, persistent state is put back as it was."""
        self.last_event = None
        self.store.begin_step()
        self.saves = {}
        try:
            self._run_block(self.bound.entry, Frame(self.bound.entry, {}, self.values, is_entry=True))
            if self.pending is not None:  # yielded and never awaited: the async blocks still run
                pending, self.pending = self.pending, None
                self._run_async_blocks(pending)
            self._apply_saves()
        except BaseException:
            self.store.rollback()
            self.pending = None
            raise
        self.store.commit()
        return self.last_event

    def _run_block(self, name: str, frame: Frame) -> None:
        try:
            self._run_ops(self.bound.blocks[name].body.block.ops, frame)
        except _Return:
            pass

    def _run_ops(self, ops, frame: Frame) -> None:
        for op in ops:
            start = time.perf_counter_ns() if self.timer else 0
            try:
                self._handlers[type(op)](op, frame, start)
            except _Return:
                if not isinstance(op, LoopOp):  # a loop's event went out before its body ran
                    self._event(op, frame, start)
                raise
            except OiError as e:
                raise _located(e, op, frame) from None
            except Exception as e:  # a bug: an InternalError at this statement (`Executor.step`'s boundary)
                raise _located(internal_error(e, "step", nearest_loc(op)), op, frame) from e
            if not isinstance(op, LoopOp | BranchOp):  # those emit before their bodies run
                self._event(op, frame, start)

    def _event(self, op, frame: Frame, start: int) -> None:
        """The node's trace event: kept as the step's last event, and recorded when tracing.

        Only op nodes are timed (upstream's engine times `exec_op_node` alone); events of
        async blocks are dropped, as upstream's `run_block` drops them.
        """
        if not frame.traced:
            return
        index, uuid = self.bound.numbers[id(op)]
        is_op = isinstance(op, NamedOp)
        event = TraceEvent(
            block_name=frame.block,
            node_index=index,
            node_uuid=uuid,
            kind=EVENT_KINDS[type(op)],
            node_desc=self._description(op),
            op_name=op.kind if is_op else "",
            nanos=time.perf_counter_ns() - start if self.timer and is_op else 0,
        )
        self.last_event = event
        if self.emit is not None:
            self.emit(event)

    def _description(self, op) -> str:
        text = self._descriptions.get(id(op))
        if text is None:
            text = self._descriptions[id(op)] = describe(op)
        return text

    # --- reading variables ---------------------------------------------------------

    def value(self, name: str, frame: Frame) -> np.ndarray:
        """A variable's current buffer, created (from the model, `@init` or zeros) on first read."""
        buffer = frame.values.get(name)
        if buffer is not None:
            return buffer
        decl = self.bound.decls.get(name)
        if decl is None:
            raise ExecutionError(f"unknown variable: {name}")
        if decl.memory == "persistent":
            return self.store[name].current()
        key = decl.ref.data if decl.ref is not None else name
        model = self.bound.model
        shape, dtype = self.bound.shapes[name], numpy_dtype(decl.dtype)
        if model.has_tensor(key):
            buffer = np.array(model.tensor(key), dtype=dtype).reshape(shape)
        elif key in model.metadata:  # upstream's `load_metadata_tensor`: a number or array
            buffer = _metadata_tensor(key, model.metadata[key], dtype, shape)
        else:
            buffer = init_array(shape, decl.dtype, decl.init_value)
        frame.values[name] = buffer
        return buffer

    def _input(self, ref: VarRefAttr, frame: Frame) -> np.ndarray:
        """An operand: a variable, or one entry of a prefix table (`W[l]` -> the model's `W.3`)."""
        if not ref.indices.data:
            return self.value(ref.var_name, frame)
        decl = self.bound.decls[ref.var_name]
        indices = [self._index_value(i, frame, cache=False) for i in ref.indices]
        slot = f"{ref.var_name}[{','.join(map(str, indices))}]"
        buffer = frame.values.get(slot)
        if buffer is not None:
            return buffer
        key = _pattern_key(decl.pattern.data, decl.index_names, indices) if decl.pattern is not None else slot
        model = self.bound.model
        if model.has_tensor(key):
            buffer = self._model_entry(decl, key)
        elif decl.memory == "constant":
            raise ExecutionError(f"model variable not found: {key}")
        else:
            buffer = init_array(self.bound.shapes[decl.var_name], decl.dtype, decl.init_value)
        frame.values[slot] = buffer
        return buffer

    def _model_entry(self, decl, key: str) -> np.ndarray:
        """Model tensor `key` for an entry of prefix table `decl`, checked as the binder checks variables."""
        model, shape = self.bound.model, self.bound.shapes[decl.var_name]
        check_model_tensor(model, key, key, decl.dtype, shape)
        return np.array(model.tensor(key), dtype=numpy_dtype(decl.dtype)).reshape(shape)

    def _scalar_setting(self, name: str, frame: Frame):
        value = self.value(name, frame)
        if value.size != 1:
            raise ExecutionError(f"attr {name} must reference a scalar, got shape {shape_text(value.shape)}")
        return value.reshape(-1)[0].item()

    # --- cache indices ---------------------------------------------------------------

    def _index_value(self, index, frame: Frame, *, cache: bool) -> int:
        """Upstream's resolution order: literal, size variable, loop index, scalar variable.

        A cache index may only name a persistent scalar; a prefix-table index any scalar.
        """
        if isinstance(index, IntAttr):
            return index.data
        name = index.data
        if name in self.bound.sizevars:
            return self.bound.sizevars[name]
        if name in frame.loop_vars:
            return frame.loop_vars[name]
        if not cache:
            return _scalar_int(self.value(name, frame), CacheError)
        if name in self.store and isinstance(self.store[name], PlainStorage):
            return _scalar_int(self.store[name].current(), CacheError)
        raise CacheError(f"unknown cache index {name}")

    def _access(self, access: CacheAccessAttr, frame: Frame) -> list:
        """Each index as an int, or a slice as a (start, end) pair with None for an absent end."""
        out = []
        for index in access.indices:
            if isinstance(index, SliceAttr):
                bounds = (index.start, index.end)
                out.append(tuple(None if isinstance(b, NoneAttr) else self._index_value(b, frame, cache=True) for b in bounds))
            else:
                value = self._index_value(index, frame, cache=True)
                if value < 0:  # a loop index or a persistent scalar can be negative at run time
                    raise CacheError("cache index cannot be negative")
                out.append(value)
        return out

    def _storage(self, name: str, op_name: str):
        if name not in self.store:
            decl = self.bound.decls.get(name)
            kind = decl.memory.capitalize() if decl is not None else "Unknown"
            raise CacheError(f"{op_name} expects persistent variable, got {kind} {name}")
        return self.store.touch(name)

    # --- statements ------------------------------------------------------------------

    def _assign(self, op: AssignOp, frame: Frame, start: int) -> None:
        name = op.var_name
        if name not in frame.values:
            frame.values[name] = init_array(self.bound.shape_of_type(op.var_type), op.var_type.dtype, None)

    def _named_op(self, op: NamedOp, frame: Frame, start: int) -> None:
        spec = lookup_op(op.kind)
        if spec is None:
            raise ExecutionError(f"unsupported op {op.kind}")
        if spec.reference is None:
            raise ExecutionError(f"op {op.kind} has no reference implementation")
        inputs = [self._input(ref, frame) for ref in op.inputs]
        settings = {key: self._setting(key, value, frame) for key, value in op.settings.data.items()}
        if op.kind in SHAPE_FROM_OUTPUT and SHAPE_FROM_OUTPUT[op.kind] not in settings:
            settings[SHAPE_FROM_OUTPUT[op.kind]] = list(self._declared_shape(op.output_name))
        out_dtype = self._output_dtype(op, spec, inputs, settings)
        try:
            result = spec.reference(inputs, settings, out_dtype)
        except OiError:
            raise
        except Exception as e:  # a custom op's own failure: one diagnostic, not a traceback
            raise ExecutionError(f"op {op.kind} failed: {e}") from e
        self._write(op, np.asarray(result, dtype=numpy_dtype(out_dtype)), frame)

    def _output_dtype(self, op: NamedOp, spec, inputs, settings) -> str:
        if "acc" in settings and settings["acc"]:
            return settings["acc"][-1]
        names = [dtype_name_of(a) for a in inputs]
        ruled = spec.output_dtype_for(names, settings)
        return ruled if ruled is not None else self._declared_dtype(op.output_name)

    def _declared_dtype(self, name: str) -> str:
        decl = self.bound.decls.get(name)
        if decl is not None:
            return decl.dtype
        if name in self.temp_types:
            return self.temp_types[name].dtype
        raise ExecutionError(f"unknown output variable {name}")

    def _declared_shape(self, name: str) -> tuple[int, ...]:
        if name in self.bound.shapes:
            return self.bound.shapes[name]
        if name in self.temp_types:
            return self.bound.shape_of_type(self.temp_types[name])
        raise ExecutionError(f"unknown output variable {name}")

    def _setting(self, key: str, value, frame: Frame):
        if isinstance(value, IntegerAttr):
            data = value.value.data
            return bool(data) if value.type == IntegerType(1) else int(data)
        if isinstance(value, FloatAttr):
            return float(value.value.data)
        if isinstance(value, StringAttr):
            return value.data
        if isinstance(value, DenseArrayBase):
            return [int(v) for v in value.get_values()]
        if isinstance(value, ArrayAttr):
            return [dtype_name(t) for t in value]
        if isinstance(value, SymbolRefAttr):
            name = value.root_reference.data  # upstream tries a metadata string first, then a scalar
            text = self.bound.model.metadata_string(name)
            if text is not None:
                return text
            spec = setting_spec(key)
            if spec is not None and spec.kind == "string" and name not in self.bound.decls:
                raise ExecutionError(f"unknown attribute string: {name}")
            return self._scalar_setting(name, frame)
        return dtype_name(value)

    def _write(self, op: NamedOp, result: np.ndarray, frame: Frame) -> None:
        """Write an op's result into its output buffer, which keeps its shape (aliases see the write).

        As upstream's `ensure_output`, the buffer is the variable's current one, else one of its
        declared shape; a result of another shape is an error.
        """
        name = op.output_name
        buffer = frame.values.get(name)
        expected = buffer.shape if buffer is not None else self._declared_shape(name)
        if result.shape != tuple(expected):
            raise ExecutionError(
                f"op {op.kind} output shape {shape_text(expected)} does not match result shape {shape_text(result.shape)}"
            )
        if buffer is None:
            frame.values[name] = result if result.flags.writeable and result.base is None else result.copy()
        else:
            np.copyto(buffer, result, casting="unsafe")
        frame.written.add(name)

    def _cache_read(self, op: CacheReadOp, frame: Frame, start: int) -> None:
        access = op.src
        storage = self._storage(access.var_name, "cache.read")
        if isinstance(storage, PlainStorage):
            if access.is_bracketed:  # `A[]` too, before any index is resolved, as upstream's run time
                raise CacheError(f"cache {access.var_name} does not support indexed access")
            value = storage.read()
        else:
            value = storage.read(self._access(access, frame))
        frame.values[op.dst.var_name] = value
        frame.written.add(op.dst.var_name)

    def _cache_write(self, op: CacheWriteOp, frame: Frame, start: int) -> None:
        access = op.dst
        storage = self._storage(access.var_name, "cache.write")
        if isinstance(storage, PlainStorage) and access.indices.data:
            raise CacheError(f"cache.write {access.var_name} does not support indexed writes")
        value = self._input(op.src, frame)
        if isinstance(storage, PlainStorage):
            storage.write(value)
        else:
            storage.write(self._access(access, frame), value)

    def _cache_step(self, op: CacheIncrementOp | CacheDecrementOp, frame: Frame, start: int) -> None:
        name, amount = op.target.data, op.amount.data
        word = "increment" if isinstance(op, CacheIncrementOp) else "decrement"
        storage = self._storage(name, "cache operation")
        if not isinstance(storage, PlainStorage):
            raise CacheError(f"cache {word} expects scalar {name}")
        step_scalar(storage, amount if word == "increment" else -amount, op=word)

    def _cache_reset(self, op: CacheResetOp, frame: Frame, start: int) -> None:
        access = op.target
        storage = self._storage(access.var_name, "cache.reset")
        if isinstance(storage, TableStorage):
            prefix = self._access(access, frame)
            if any(isinstance(i, tuple) for i in prefix):
                raise CacheError(f"cache.reset {access.var_name} requires scalar indices")
            storage.reset(prefix)
        elif isinstance(storage, AutoDimStorage | PlainStorage):
            storage.reset()

    def _cache_append(self, op: CacheAppendOp, frame: Frame, start: int) -> None:
        name = op.table.data
        storage = self._storage(name, "cache.append")
        if not isinstance(storage, TableStorage):
            raise CacheError(f"cache.append expects a @table variable, got {name}")
        value = self._input(op.src, frame)
        storage.append(value, self.value(op.offsets.data, frame), skip=bool(op.skip.value.data))

    def _cache_save(self, op: CacheSaveOp, frame: Frame, start: int) -> None:
        """vortex_torch's Save: the rows of x, kept until the step ends (`_apply_saves`)."""
        name = op.dst.var_name
        self._storage(name, "cache.save")
        value = self._input(op.src, frame)
        self.saves.pop(name, None)  # the step's last save wins, applied in its order
        self.saves[name] = (op, frame, value.copy())

    def _sequence_group(self, op, what: str) -> tuple[list[TableStorage], PlainStorage]:
        tables = []
        for name in op.table_names:
            storage = self._storage(name, what)
            if not isinstance(storage, TableStorage):
                raise CacheError(f"{what} expects a @table variable, got {name}")
            tables.append(storage)
        lengths = self._storage(op.lengths.data, what)
        if not isinstance(lengths, PlainStorage):
            raise CacheError(f"{what} lengths {op.lengths.data} must be a plain vector, not a table")
        return tables, lengths

    def _sequence_index(self, value, frame: Frame) -> int:
        index = self._index_value(value, frame, cache=True)
        if index < 0:
            raise CacheError("cache index cannot be negative")
        return index

    def _cache_fork(self, op: CacheForkOp, frame: Frame, start: int) -> None:
        tables, lengths = self._sequence_group(op, "cache.fork")
        src, dst, position = (self._sequence_index(v, frame) for v in (op.src, op.dst, op.position))
        sequences.fork(tables, lengths, src, dst, position)

    def _cache_pop(self, op: CachePopOp, frame: Frame, start: int) -> None:
        tables, lengths = self._sequence_group(op, "cache.pop")
        count, b = (self._sequence_index(v, frame) for v in (op.count, op.sequence))
        sequences.pop(tables, lengths, count, b)

    def _cache_reset_where(self, op: CacheResetWhereOp, frame: Frame, start: int) -> None:
        tables, lengths = self._sequence_group(op, "cache.reset")
        sequences.reset_where(tables, lengths, self.value(op.mask.data, frame))

    def _apply_saves(self) -> None:
        """Each saved field becomes its rows (its size the number of rows), at the end of the step."""
        for name, (op, frame, rows) in self.saves.items():
            storage = self.store.touch(name)
            try:
                storage.reset()
                for s in range(rows.shape[0]):
                    storage.write([s], rows[s])
            except OiError as e:
                raise _located(e, op, frame) from None

    def _transfer(self, op: TransferOp, frame: Frame, start: int) -> None:
        buffer = self._input(op.src, frame)
        frame.values[op.dst.var_name] = buffer  # an alias: both names share one buffer
        frame.written.add(op.dst.var_name)

    def _branch(self, op: BranchOp, frame: Frame, start: int) -> None:
        target = op.then_block.data
        if op.cond is not None:
            cond = self.value(op.cond.data, frame)
            if cond.size != 1:
                raise ExecutionError("expected scalar value")
            if not cond.reshape(-1)[0]:
                target = op.else_block.data if op.else_block is not None else None
        if target is not None and target not in self.bound.blocks:
            raise ExecutionError(f"unknown block {target} for branch target")
        self._event(op, frame, start)
        if target is not None:
            if self.branch_depth >= MAX_BRANCH_DEPTH:  # upstream's engine would overflow its stack
                raise ExecutionError(f"branch to block {target} nests more than {MAX_BRANCH_DEPTH} blocks deep "
                                     "(does a block branch back into itself?)")  # fmt: skip
            callee = Frame(target, dict(frame.loop_vars), frame.values, False, frame.written, frame.traced)
            self.branch_depth += 1
            try:
                self._run_block(target, callee)
            finally:
                self.branch_depth -= 1

    def _loop(self, op: LoopOp, frame: Frame, start: int) -> None:
        first, last = (self._loop_bound(which, b, frame) for which, b in zip(("start", "end"), op.bounds))
        self._event(op, frame, start)
        index = op.index.data
        body = op.body.block.ops
        for i in range(first, last):
            inner = Frame(frame.block, {**frame.loop_vars, index: i}, frame.values, frame.is_entry, frame.written,
                          frame.traced)
            try:
                self._run_ops(body, inner)
            except _EndBlock:
                raise
            except _Return:
                return

    def _loop_bound(self, which: str, bound, frame: Frame) -> int:
        """A literal, a size variable, or a scalar variable's value (upstream's `tensor_to_i64`)."""
        if isinstance(bound, int):
            return bound
        if bound in self.bound.sizevars:
            return self.bound.sizevars[bound]
        value = self.value(bound, frame)
        if value.size != 1:
            raise ExecutionError("expected scalar value")
        return _as_i64(value)

    def _yield(self, op: YieldOp, frame: Frame, start: int) -> None:
        if not frame.is_entry:
            raise _EndBlock()  # upstream: a yield outside the entry ends its block; nothing starts
        if self.pending is not None:
            raise ExecutionError("await required before next yield")
        names = list(op.var_names)
        self.pending = PendingYield(names, {name: self.value(name, frame).copy() for name in names})

    def _await(self, op: AwaitOp, frame: Frame, start: int) -> None:
        if not frame.is_entry or self.pending is None:
            return
        pending, self.pending = self.pending, None
        self._merge(self._run_async_blocks(pending), pending.names, frame)

    def _run_async_blocks(self, pending: PendingYield) -> list[tuple[dict[str, np.ndarray], set[str]]]:
        """Each async block, in name order, on its own copy of the yielded variables only."""
        results = []
        for block in self.bound.async_blocks:
            values = {name: buffer.copy() for name, buffer in pending.snapshot.items()}
            fork = Frame(block, {}, values, is_entry=False, traced=False)
            self._run_block(block, fork)
            results.append((values, fork.written))
        return results

    @staticmethod
    def _merge(results, names: list[str], frame: Frame) -> None:
        """Every yielded variable one block wrote comes back; two writers are an error."""
        for name in names:
            writers = [values for values, written in results if name in written]
            if len(writers) > 1:
                raise ExecutionError(f"multiple blocks mutated {name}")
            if writers:
                frame.values[name] = writers[0][name]
                frame.written.add(name)

    def _no_op(self, op, frame: Frame, start: int) -> None:
        pass

    def _return(self, op: ReturnOp, frame: Frame, start: int) -> None:
        raise _Return()


def dtype_name_of(array: np.ndarray) -> str:
    name = dtype_of_array(array.dtype)
    if name is None:
        raise ExecutionError(f"unsupported array dtype {array.dtype}")
    return name


def _scalar_int(value: np.ndarray, error: type[OiError]) -> int:
    """Upstream's `scalar_to_i64`: bools count as 0/1, floats are refused, and a u64 is cast as
    Rust's `as i64` does (2**63 and above wrap to negative: `cache index cannot be negative`)."""
    if value.size != 1:
        raise error("cache index must be scalar")
    item = value.reshape(-1)[0]
    if value.dtype.kind == "b":
        return int(bool(item))
    if value.dtype.kind not in "iu" and not str(value.dtype).startswith(("int", "uint")):
        raise error("cache index must be integer")
    return _as_i64(value)


def _pattern_key(pattern: str, names: list[str], values: list[int]) -> str:
    """`attn.{head}.qkv.{layer}` with each `{index}` replaced by its value."""
    key = pattern
    for name, value in zip(names, values):
        key = key.replace("{" + name + "}", str(value))
    return key


_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _as_i64(value: np.ndarray) -> int:
    """A one-element array as Rust's `as i64` reads it: floats truncate toward zero and
    saturate (NaN -> 0); u64 wraps."""
    item = value.reshape(-1)[0]
    if dtype_of_array(value.dtype) in FLOAT_DTYPES:
        number = float(item)
        if number != number:
            return 0
        if number >= 2.0**63:
            return _I64_MAX
        if number < -(2.0**63):
            return _I64_MIN
        return int(number)
    whole = int(item)
    return whole - (1 << 64) if whole > _I64_MAX else whole


def _metadata_tensor(name: str, value, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(value, str | bytes):
        raise ExecutionError(f"metadata {name} is a string, not a tensor")
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise ExecutionError(f"metadata {name} is not a {dtype} tensor: {value!r}") from None
    return array.reshape(shape) if array.size == int(np.prod(shape)) else array


def _located(error: OiError, op, frame: Frame) -> OiError:
    """`error` with the node's source location and upstream's `block B node N` context."""
    if error.loc is None and error.subject is None:
        error.loc = nearest_loc(op)
    if getattr(error, "node", None) is None:
        error.node = f"block {frame.block} node {describe(op)}"
    return error
