"""The CPU executor's state: host buffers the compiled step reads and writes in place.

`NativeState` owns every buffer of one executor as a numpy array and writes their addresses
into the state array (`lowering/analysis.py` gives the layout). It grows tables by capacity
doubling when the step asks (`grow`), puts persistent bytes back from the undo log when a step
fails (`rollback`, with the host's own changes undone in order: `undo`), and converts tables to
and from the reference executor's form, so `state()`, `save_state` and `load_state` behave as on
`device="reference"`. A `@paged` table's pool, page table and allocator are a `PagePool` each
(`runtime/page_pool.py`), which serves the step's page requests.

With a `DeviceMemory` (`device="cuda"`), the variables the layout marks `device` (`--place-buffers`)
and the undo log's bytes are `DeviceBuffer`s there instead of numpy arrays: the state words hold
their device addresses, and every read or write of them here is an explicit copy (`_host`,
`_write`, `DeviceBuffer.copy_box_from` for growth, `DeviceMemory.copy_bytes` for rollback).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from oi_compiler.dtypes import numpy_dtype
from oi_compiler.errors import ExecutionError, OiError, exception_summary
from oi_compiler.lowering import analysis as P
from oi_compiler.lowering.analysis import VarLayout
from oi_compiler.runtime.binding import BoundGraph, check_model_tensor
from oi_compiler.runtime.device_memory import DeviceBuffer, DeviceMemory
from oi_compiler.runtime.native_step import NativeStep, register_state
from oi_compiler.runtime.page_pool import PagePool
from oi_compiler.runtime.reference import Frame, ReferenceInterpreter, _pattern_key
from oi_compiler.runtime.tables import (  # FIRST_CAPACITY: the rule the reference mirrors, in one place
    FIRST_CAPACITY,
    AutoDimStorage,
    Declaration,
    PersistentStore,
    PlainStorage,
    TableStorage,
    allocation_error,
    first_capacity,
    frozen,
    growth_error,
    init_array,
)


class NativeState:
    def __init__(self, bound: BoundGraph, step: NativeStep, memory: DeviceMemory | None = None):
        self.bound = bound
        self.step = step
        self.plan = step.plan
        self.memory = memory
        self.on_device: set[int] = set()  # the slots whose buffers are `DeviceBuffer`s in `memory`
        if memory is not None:
            self.on_device = set(P.device_slots(self.plan.vars)) | {P.DEVICE_LOG}
        self.words = np.zeros(self.plan.words, dtype=np.int64)
        self._size_words = np.array(self.plan.size_words(), dtype=np.intp)
        self._call, self._address, self._length = step.native, self.words.ctypes.data, len(self.words)
        self.arrays: dict[int, np.ndarray] = {}  # state word -> the array whose address it holds
        self.keep: list[np.ndarray] = []  # arrays only reached through address tables
        self.host_error: BaseException | None = None
        self.host_undo: list[tuple[int, Callable[[], None]]] = []  # (undo log position, how to undo a host change)
        self.pools: dict[str, PagePool] = {}  # the host side of each `@paged` table
        self.loaded_views: dict[str, np.ndarray] = {}
        self.displaced: list[np.ndarray] = []  # buffers `insert` took a name off while another shares them
        self.entries: dict[str, dict[tuple[int, ...], np.ndarray]] = {}  # volatile prefix tables' entries
        self._present_of = {v.present_slot: v for v in self.plan.vars.values() if v.kind == "table" and not v.page}
        self.words[P.HANDLE] = register_state(self)
        self._set(P.LOG_RECORDS, np.zeros((64, 4), np.int64), P.LOG_RECORDS_CAP, 64)
        self._set(P.LOG_BYTES, np.zeros(4096, np.uint8), P.LOG_BYTES_CAP, 4096)
        if memory is not None:  # device data's saved bytes (`@oi_log` sends them there: place_buffers)
            self._set(P.DEVICE_LOG, np.zeros(4096, np.uint8), P.DEVICE_LOG_CAP, 4096)
        values: dict[str, np.ndarray] = {}
        reader = self.reader = ReferenceInterpreter(bound, PersistentStore({}), values)
        frame = Frame(bound.entry, {}, values, True)
        for var in self.plan.vars.values():
            if var.kind == "buffer":
                self._set(var.slot, self._initial(var, reader, frame))
            elif var.kind == "view":
                self.words[var.slot] = -1  # until a read: the declared value, as on the reference
                self.loaded_views[var.name] = self.initial_value(var)
            elif var.kind == "table":
                try:
                    self._new_table(var, [f if f is not None else FIRST_CAPACITY for f in var.fixed])
                except ExecutionError as e:  # a table no device could hold
                    raise bound.allocation_refused(var.name, e) from None
                for d, f in enumerate(var.fixed):
                    self.words[var.size_slot(d)] = f or 0
            elif var.kind == "resizable":  # a temporary: empty until its assign or a read
                self._set_resizable(var, flat_empty(var) if var.temp else self.initial_value(var))
            elif var.kind == "prefix" and var.memory != "constant":
                self.entries[var.name] = {}
            elif var.kind == "prefix":
                self._prefix(var)
            elif var.kind == "auto":  # base shape, counts 0: @init (growth pads with zeros)
                self._set(var.slot, init_array(var.shape, var.dtype, var.init))

    # --- buffers ---------------------------------------------------------------------------
    def _set(self, slot: int, array: np.ndarray | DeviceBuffer, cap_slot: int | None = None, capacity: int = 0) -> None:
        if slot in self.on_device and not isinstance(array, DeviceBuffer):
            array = DeviceBuffer.of(self.memory, array)
        assert isinstance(array, DeviceBuffer) or array.flags.c_contiguous and array.flags.writeable
        self.arrays[slot] = array
        self.words[slot] = address_of(array)
        if cap_slot is not None:
            self.words[cap_slot] = capacity

    def _device_array(self, shape: Sequence[int], dtype: str) -> DeviceBuffer:
        """An allocation on the device (contents undefined); what does not fit is the host's error,
        `cannot allocate <dtype>[shape]: out of memory`."""
        try:
            return DeviceBuffer(self.memory, shape, numpy_dtype(dtype))
        except (MemoryError, ValueError, OverflowError, ExecutionError):  # (the driver's out-of-memory error)
            raise allocation_error(dtype, shape) from None

    def _write(self, slot: int, value) -> None:
        """Every element of the buffer at `slot` from `value` (broadcast)."""
        array = self.arrays[slot]
        if isinstance(array, DeviceBuffer):
            array.set(value)
        else:
            np.copyto(array, value)

    def _initial(self, var: VarLayout, reader: ReferenceInterpreter, frame: Frame) -> np.ndarray:
        dtype = numpy_dtype(var.dtype)
        if var.memory == "persistent":
            return init_array(var.shape, var.dtype, var.init)
        name = var.name.partition("@")[0]  # an async block's copy starts as the variable does (plan.is_internal)
        decl = self.bound.decls.get(name)
        if decl is not None and decl.memory == "persistent":  # a yielded persistent variable's snapshot
            value = init_array(var.shape, var.dtype, decl.init_value)
        elif decl is not None:
            value = reader.value(name, frame)
        else:  # an `assign` temporary
            value = np.zeros(var.shape, dtype)
        return np.array(value, dtype=dtype, order="C").reshape(var.shape)

    def _prefix(self, var: VarLayout) -> None:
        """Entry addresses of a constant prefix table, for every index the model has."""
        decl = self.bound.decls[var.name]
        model = self.bound.model
        entries = _prefix_entries(decl, model)
        counts = [max((key[d] + 1 for key in entries), default=0) for d in range(len(decl.index_names))]
        try:
            table = init_array([max(1, math.prod(counts))], "i64", None)
        except ExecutionError:
            raise ExecutionError(
                f"prefix table {var.name}: the model's indices up to {[c - 1 for c in counts]} are too many for "
                f"device 'cpu' (it keeps a dense table of {math.prod(counts)} entry addresses)") from None  # fmt: skip
        for key, name in entries.items():
            check_model_tensor(model, name, name, var.dtype, var.shape)
            entry = np.array(model.tensor(name), dtype=numpy_dtype(var.dtype), order="C").reshape(var.shape)
            kept = DeviceBuffer.of(self.memory, entry) if var.device and self.memory is not None else entry
            self.keep.append(kept)
            table[np.ravel_multi_index(key, counts)] = address_of(kept)
        self._set(var.slot, table)
        for d, c in enumerate(counts):
            self.words[var.count_base + d] = c

    def _volatile_entry(self, var: VarLayout, key: tuple[int, ...]) -> np.ndarray:
        """What the reference's `_input` makes of `W[key]`: the model's tensor, else `@init`."""
        decl = self.bound.decls[var.name]
        name = _pattern_key(decl.pattern.data, decl.index_names, list(key)) if decl.pattern is not None \
            else f"{var.name}[{','.join(map(str, key))}]"  # fmt: skip
        model = self.bound.model
        if model.has_tensor(name):
            check_model_tensor(model, name, name, var.dtype, var.shape)
            return np.array(model.tensor(name), dtype=numpy_dtype(var.dtype), order="C").reshape(var.shape)
        return np.array(init_array(var.shape, var.dtype, decl.init_value), order="C")

    # --- tables ----------------------------------------------------------------------------
    def _new_table(self, var: VarLayout, caps: list[int], entries: dict | None = None) -> None:
        """A table of capacities `caps`, holding `entries` (key -> value) if given, else none."""
        if var.page:
            self.pools.setdefault(var.name, PagePool(self, var)).create(caps)
            return
        if var.data_slot in self.on_device and not entries:  # filled on the device: nothing uploaded
            data = self._device_array([*caps, *var.shape], var.dtype)
            data.fill(init_array([], var.dtype, var.init).tobytes())
        else:
            data = init_array([*caps, *var.shape], var.dtype, var.init)
        present = init_array(caps, "u8", None)  # (out of memory: an ExecutionError)
        for key, entry in (entries or {}).items():
            data[key] = entry
            present[key] = 1
        self._set(var.data_slot, data)
        self._set(var.present_slot, present)
        for d, c in enumerate(caps):
            self.words[var.capacity_slot(d)] = c

    def capacities(self, var: VarLayout) -> list[int]:
        return [int(self.words[var.capacity_slot(d)]) for d in range(var.rank)]

    def counts(self, var: VarLayout) -> list[int]:
        """An `@auto_dim` tensor's count per auto dim."""
        return [int(self.words[var.count_base + d]) for d in range(var.rank)]

    def sizes(self, var: VarLayout) -> list[int]:
        return [int(self.words[var.size_slot(d)]) for d in range(var.rank)]

    def grow(self, kind: int, a: int, b: int, c: int) -> None:
        """The step's request (`oi_grow`): a table index past its capacity, a resizable buffer or the
        undo log to grow, a stale view to copy out before a write changes what it shows, or a paged
        table's page of a row's own, rows' pages given back, or sizes recomputed (`PagePool`)."""
        if kind in (P.GROW_PAGE, P.GROW_RELEASE, P.GROW_SIZES):
            pool = next(p for p in self.pools.values() if p.var.slot == a)
            if kind == P.GROW_PAGE:
                pool.page_for(b, c)
            elif kind == P.GROW_RELEASE:
                pool.release(b, c)
            else:
                pool.recompute_sizes()
        elif kind == P.GROW_TABLE:
            var = next(v for v in self.plan.vars.values() if v.kind == "table" and v.slot == a)
            if var.page:
                self.pools[var.name].grow_index(b, c)
                return
            old_caps = self.capacities(var)
            old_data, old_present = self.arrays[var.data_slot], self.arrays[var.present_slot]
            self.undo(lambda: self._restore_table(var, old_data, old_present, old_caps))
            caps = list(old_caps)
            caps[b] = max(2 * caps[b], c)
            try:
                self._new_table(var, caps)
            except (MemoryError, ValueError, ExecutionError):  # init_array's out-of-memory error
                raise growth_error(var.name, b, c, caps) from None
            box = tuple(slice(0, n) for n in old_present.shape)
            data = self.arrays[var.data_slot]
            if isinstance(data, DeviceBuffer):  # a device-to-device copy of the old box
                data.copy_box_from(old_data)
            else:
                data[box] = old_data
            self.arrays[var.present_slot][box] = old_present
        elif kind == P.GROW_RESIZABLE:  # c = 1: a new array, whatever the capacity (a read rebinding it)
            var = next(v for v in self.plan.vars.values()
                       if v.slot == a or v.kind == "view" and v.gather_slot(self.plan.vars) == a)  # fmt: skip
            old = self.arrays.get(a)
            capacity = max(FIRST_CAPACITY, b) if c else max(2 * int(self.words[a + 1]), b)
            dtype = numpy_dtype(var.dtype)
            if a in self.on_device:  # zeros by a device fill, not a copy from the host (in a step)
                fresh = self._device_array((capacity,), var.dtype)
                fresh.fill(bytes(np.dtype(dtype).itemsize))
            else:
                fresh = np.zeros(capacity, dtype)
            self._set(a, fresh, a + 1, capacity)
            if var.aliases and old is not None:  # a `transfer` may have given it to another name
                held = {int(self.words[v.slot]) for v in self.plan.vars.values() if v.kind == "buffer"}
                self.displaced = [x for x in self.displaced if x.ctypes.data in held] + [old]
        elif kind == P.GROW_LOG:  # c = 1: the device's bytes
            records = self.arrays[P.LOG_RECORDS]
            slot, cap_slot = (P.DEVICE_LOG, P.DEVICE_LOG_CAP) if c else (P.LOG_BYTES, P.LOG_BYTES_CAP)
            used = self.arrays[slot]
            if a > len(records):
                grown = np.zeros((max(2 * len(records), a), 4), np.int64)
                grown[: len(records)] = records
                self._set(P.LOG_RECORDS, grown, P.LOG_RECORDS_CAP, len(grown))
            if b > used.size:
                capacity = max(2 * used.size, b)
                if isinstance(used, DeviceBuffer):
                    grown_bytes = DeviceBuffer(self.memory, (capacity,), np.uint8)
                    grown_bytes.copy_box_from(used)
                else:
                    grown_bytes = np.zeros(capacity, np.uint8)
                    grown_bytes[: used.size] = used
                self._set(slot, grown_bytes, cap_slot, capacity)
        elif kind == P.GROW_AUTO:  # counts already raised (b = 0) or reset (b = 1) in the words
            var = next(v for v in self.plan.vars.values() if v.kind == "auto" and v.slot == a)
            old = self.arrays[var.slot]
            self.undo(lambda: self._set(var.slot, old))  # its counts come back with the size words
            shape = [base + int(self.words[var.count_base + d]) for d, base in enumerate(var.shape)]
            if isinstance(old, DeviceBuffer):  # filled on the device, the old box copied device to device
                grown = self._device_array(shape, var.dtype)
                grown.fill(init_array([], var.dtype, var.init if b else None).tobytes())
                if not b:
                    grown.copy_box_from(old)
            else:
                grown = init_array(shape, var.dtype, var.init if b else None)  # (out of memory: an ExecutionError)
                if not b:
                    grown[tuple(slice(0, n) for n in old.shape)] = old
            self._set(var.slot, grown)
        elif kind == P.GROW_REBIND:
            self.rebind(next(v for v in self.plan.vars.values() if v.kind == "buffer" and v.slot == a))
        elif kind == P.GROW_PREFIX:  # the entry at the indices in the error words, made on first use
            var = next(v for v in self.plan.vars.values() if v.kind == "prefix" and v.slot == a)
            tail = len(self.words) - P.extra_error_args(self.plan.vars.values())
            key = tuple(int(k) for k in [*self.words[P.ERROR_ARGS : P.ERROR_ARGS + min(b, 4)],
                                         *self.words[tail : tail + max(0, b - 4)]])  # fmt: skip
            entry = self.entries[var.name].get(key)
            if entry is None:
                entry = self._volatile_entry(var, key)
                self.entries[var.name][key] = entry
                self.keep.append(entry)
            self.words[var.slot] = entry.ctypes.data
        elif kind == P.GROW_VIEW:  # a view from an earlier step, about to be overwritten: keep a copy
            var = next(v for v in self.plan.vars.values() if v.kind == "view" and v.slot == a)
            self.loaded_views[var.name] = self.value(var)
            self.words[var.slot] = -1
        else:
            raise ExecutionError(f"internal error: unknown grow request {kind}")

    # --- steps -----------------------------------------------------------------------------
    def run(self) -> None:
        """One step; on failure persistent state is put back and the reference's error raised."""
        words = self.words
        sizes = words[self._size_words]  # a copy (fancy indexing): the sizes before the step
        words[P.LOG_COUNT] = words[P.LOG_USED] = words[P.DEVICE_LOG_USED] = words[P.ERROR_SITE] = 0
        words[P.STEP_STAMP] += 1
        code = self._call(self._address, self._address, 0, self._length, 1)
        if code == 0:
            if self.host_undo:
                self.host_undo.clear()
            return
        self._keep_views_read(int(words[P.STEP_STAMP]))
        try:
            self.rollback(sizes)
        except Exception as e:  # a device copy failing (a lost GPU): say so, not the step's own error
            failure = ExecutionError(f"the failed step could not be undone ({exception_summary(e)}): the "
                                     "persistent state may be partly restored; reset or load a saved state")  # fmt: skip
            failure.rollback_failed = True
            raise failure from e
        site = int(self.words[P.ERROR_SITE])
        if code == 2:  # the host refused a callback: at the statement the last marker named
            error, self.host_error = self.host_error, None
            error = error or ExecutionError("internal error: the step's host callback failed")
            if isinstance(error, OiError) and error.loc is None and 0 < site < len(self.step.sites):
                where = self.step.sites[site]
                error.loc = where.loc
                error.node = f"block {where.block or self.step.block} node {where.node}"
            raise error
        args = [int(x) for x in self.words[P.ERROR_ARGS : P.ERROR_ARGS + 4]]
        extra = P.extra_error_args(self.plan.vars.values())
        args += [int(x) for x in self.words[len(self.words) - extra :]] if extra else []
        raise self.step.sites[site].error(args, self.step.block)

    def _keep_views_read(self, stamp: int) -> None:
        """Views the failed step read keep what they showed: non-persistent values are not rolled back."""
        for var in self.plan.vars.values():
            if var.kind == "view" and self.words[var.slot] >= 0 and self.words[var.slot + 1] == stamp:
                self.loaded_views[var.name] = self.value(var)
                self.words[var.slot] = -1

    def rollback(self, sizes) -> None:
        records = self.arrays[P.LOG_RECORDS]
        saved = self.arrays[P.LOG_BYTES]
        for n in range(int(self.words[P.LOG_COUNT]) - 1, -1, -1):
            while self.host_undo and self.host_undo[-1][0] > n:
                self._undo_host_change()
            slot, offset, count, where = (int(x) for x in records[n])
            if where < 0:  # device data, from the device's log
                source = address_of(self.arrays[P.DEVICE_LOG]) - 1 - where
                self.memory.copy_bytes(address_of(self.arrays[slot]) + offset, source, count)
            else:
                target = self.arrays[slot].reshape(-1).view(np.uint8)
                target[offset : offset + count] = saved[where : where + count]
            table = self._present_of.get(slot)
            if table is not None:  # entries absent again hold @init (a write journals only their present byte)
                self._refill_absent(table, offset, count)
        while self.host_undo:
            self._undo_host_change()
        self.words[self._size_words] = sizes
        self.words[P.LOG_COUNT] = self.words[P.LOG_USED] = self.words[P.DEVICE_LOG_USED] = 0

    def _refill_absent(self, var: VarLayout, first: int, count: int) -> None:
        """Every entry `first..first+count` (linear, in the capacity box) absent again gets `@init`."""
        present = self.arrays[var.present_slot].reshape(-1)
        absent = [n for n in range(first, first + count) if not present[n]]
        if not absent:
            return
        data = self.arrays[var.data_slot]
        init = init_array(var.shape, var.dtype, var.init)
        caps = self.capacities(var)
        for n in absent:
            key = tuple(int(k) for k in np.unravel_index(n, caps))
            if isinstance(data, DeviceBuffer):
                data.set_entry(key, init)
            else:
                data[key] = init

    def undo(self, change: Callable[[], None]) -> None:
        """Record how to undo a host change made in this step, at the undo log's position."""
        self.host_undo.append((int(self.words[P.LOG_COUNT]), change))

    def _undo_host_change(self) -> None:
        self.host_undo.pop()[1]()

    def _restore_table(self, var: VarLayout, data: np.ndarray, present: np.ndarray, caps: list[int]) -> None:
        self._set(var.data_slot, data)
        self._set(var.present_slot, present)
        for d, c in enumerate(caps):
            self.words[var.capacity_slot(d)] = c

    # --- buffers `transfer` made shared ---------------------------------------------------------
    def buffer(self, var: VarLayout) -> np.ndarray:
        """The array a buffer variable's word holds: its own, or one a `transfer` made it share."""
        own = self.arrays[var.slot]
        if not var.aliases:  # no `transfer` can make it share another buffer
            return own
        address = int(self.words[var.slot])
        if address == address_of(own):
            return own
        for array in self._shareable():
            if address_of(array) == address:  # a read destination's array holds its value first
                return array if array.shape == own.shape else array.reshape(-1)[: own.size].reshape(own.shape)
        raise ExecutionError(f"internal error: {var.name} holds an unknown buffer")

    def _shareable(self):
        for other in self.plan.vars.values():
            if other.kind in ("buffer", "resizable"):
                yield self.arrays[other.slot]
        yield from self.displaced
        yield from self.keep

    def insert(self, var: VarLayout, array: np.ndarray) -> None:
        """`insert` binds the variable to the new value, as the reference's does: a buffer another
        name shares (`transfer`) keeps its value for that name."""
        if var.kind == "resizable":  # a dynamic variable `cache.read` also fills
            self._set_resizable(var, array)
            return
        target = self.rebind(var)
        if isinstance(target, DeviceBuffer):
            target.set(array)
        else:
            np.copyto(target, array)

    def rebind(self, var: VarLayout) -> np.ndarray | DeviceBuffer:
        """The variable on a buffer no other name shares (its own, or a fresh one), returned."""
        own = self.arrays[var.slot]
        if not var.aliases:  # no `transfer` can make another name share it: its own buffer
            return own
        shared = any(int(self.words[v.slot]) == own.ctypes.data for v in self.plan.vars.values()
                     if v.kind == "buffer" and v is not var)  # fmt: skip
        if shared:
            held = {int(self.words[v.slot]) for v in self.plan.vars.values() if v.kind == "buffer"}
            self.displaced = [a for a in self.displaced if a.ctypes.data in held] + [own]
            own = np.empty_like(own)
            self._set(var.slot, own)
        elif int(self.words[var.slot]) != own.ctypes.data:
            self.words[var.slot] = own.ctypes.data
        return own

    def unshare(self) -> None:
        """Every buffer variable back on its own array (`load_state` binds each name anew)."""
        for var in self.plan.vars.values():
            if var.kind == "buffer" and int(self.words[var.slot]) != address_of(self.arrays[var.slot]):
                value = self.buffer(var).copy()
                self.words[var.slot] = self.arrays[var.slot].ctypes.data
                np.copyto(self.arrays[var.slot], value)
        self.displaced.clear()

    # --- reading state -----------------------------------------------------------------------
    def value(self, var: VarLayout) -> np.ndarray:
        """A variable's current value as the reference executor would hold it (a copy)."""
        if var.kind == "buffer":
            return _host(self.buffer(var))
        if var.kind == "auto":
            return _host(self.arrays[var.slot])
        if var.kind == "table" and var.page:
            return self.pools[var.name].dense()
        if var.kind == "table":
            box = tuple(slice(0, n) for n in self.sizes(var))
            return _host(self.arrays[var.data_slot], box)
        if var.kind == "resizable":
            shape = self.resizable_shape(var)
            return _host(self.arrays[var.slot], (slice(0, math.prod(shape)),)).reshape(shape)
        if var.kind == "view":
            if self.words[var.slot] < 0:  # not read since it was created or loaded
                return self.loaded_views[var.name].copy()
            table = self.plan.vars[var.tables[int(self.words[var.slot])]]
            selection = []
            for d in range(table.rank):
                start, count = int(self.words[var.slot + 2 + 2 * d]), int(self.words[var.slot + 3 + 2 * d])
                selection.append(start if count < 0 else slice(start, start + count))
            if table.page:
                return self.pools[table.name].select(selection)
            return _host(self.arrays[table.data_slot], tuple(selection))
        return self.initial_value(var)  # a prefix table's bare name: what the reference reads for it

    def initial_value(self, var: VarLayout) -> np.ndarray:
        """What the reference holds for a variable before anything writes it (model, @init, zeros)."""
        name = var.name.partition("@")[0]  # an async block's copy starts as the variable (plan.is_internal)
        return np.array(self.reader.value(name, Frame(self.bound.entry, {}, {}, True)), order="C")

    def exists(self, var: VarLayout) -> bool:
        """An `assign` temporary exists once a step has run its assign; everything else always."""
        return not var.temp or bool(self.words[var.exists_slot])

    def _set_resizable(self, var: VarLayout, value: np.ndarray) -> None:
        """A resizable destination holding `value` (its static dims must fit, else it starts empty)."""
        fits = value.ndim == len(var.shape) and all(d is None or d == n for d, n in zip(var.shape, value.shape))
        flat = np.ascontiguousarray(value, dtype=numpy_dtype(var.dtype)).reshape(-1) if fits else flat_empty(var)
        capacity = max(FIRST_CAPACITY, flat.size)
        padded = np.zeros(capacity, numpy_dtype(var.dtype))
        padded[: flat.size] = flat
        self._set(var.slot, padded, var.slot + 1, capacity)
        dynamic = [n if fits else 0 for n, d in zip(value.shape if fits else var.shape, var.shape) if d is None]
        for d, n in enumerate(dynamic):
            self.words[var.count_base + d] = n

    def resizable_shape(self, var: VarLayout) -> list[int]:
        dynamic = iter(int(self.words[var.count_base + d]) for d in range(len(var.shape)))
        return [next(dynamic) if d is None else d for d in var.shape]

    def table_storage(self, var: VarLayout) -> TableStorage:
        storage = TableStorage(self._declaration(var))
        storage.sizes = self.sizes(var)
        if var.page:
            for key, entry in self.pools[var.name].entries():
                storage.entries[key] = frozen(np.array(entry))  # (a rank-0 entry is a numpy scalar)
            return storage
        present = self.arrays[var.present_slot]
        data = _host(self.arrays[var.data_slot])
        for key in zip(*np.nonzero(present)):
            storage.entries[tuple(int(k) for k in key)] = frozen(data[(*key, Ellipsis)].copy())  # rank-0 entries too
        return storage

    def _declaration(self, var: VarLayout) -> Declaration:
        return self.bound.declaration(var.name)

    def export(self) -> tuple[PersistentStore, dict[str, np.ndarray]]:
        """The state as the reference executor holds it (for `save_state`)."""
        storages = {}
        values = {}
        for var in self.plan.vars.values():
            if var.memory == "persistent":
                if var.kind == "table":
                    storages[var.name] = self.table_storage(var)
                elif var.kind == "auto":
                    auto = AutoDimStorage(self._declaration(var))
                    auto.counts = self.counts(var)
                    auto.value = frozen(_host(self.arrays[var.slot]))
                    storages[var.name] = auto
                else:
                    plain = PlainStorage(self._declaration(var))
                    plain.value = frozen(_host(self.arrays[var.slot]))
                    storages[var.name] = plain
            elif var.kind != "prefix" and self.exists(var) and not P.is_internal(var.name):
                values[var.name] = self.value(var)
            elif var.name in self.entries:  # as the reference holds them: `W[1,2]`
                for key, entry in self.entries[var.name].items():
                    values[f"{var.name}[{','.join(map(str, key))}]"] = entry.copy()
        return PersistentStore(storages), values

    def restore(self, store: PersistentStore, values: dict[str, np.ndarray]) -> None:
        """Take over a state in the reference executor's form (from `load_state`)."""
        self.unshare()
        for name in store:
            var, storage = self.plan.vars[name], store[name]
            if var.kind == "table" and var.page:
                self.pools[name].load(list(storage.sizes), storage.entries)
                self.host_undo.clear()  # a loaded state is not undone by a later step's failure
            elif var.kind == "table":
                sizes = list(storage.sizes)
                caps = [first_capacity(s, f) for s, f in zip(sizes, var.fixed)]
                self._new_table(var, caps, storage.entries)
                for d, s in enumerate(sizes):
                    self.words[var.size_slot(d)] = s
            elif var.kind == "auto":
                for d, c in enumerate(storage.counts):
                    self.words[var.count_base + d] = c
                self._set(var.slot, np.array(storage.current(), order="C"))
            else:
                self._write(var.slot, storage.current())
        for var in self.plan.vars.values():  # what the file does not hold starts over, as on the reference
            if var.memory == "persistent" or var.temp or var.name in values or var.kind == "prefix" \
                    or P.is_internal(var.name):  # an async block's copies: the step refills them
                pass
            elif var.kind == "buffer":
                self._write(var.slot, self.initial_value(var))
            elif var.kind == "resizable":
                self._set_resizable(var, self.initial_value(var))
            elif var.kind == "view":
                self.words[var.slot] = -1
                self.loaded_views[var.name] = self.initial_value(var)
        for name in self.entries:  # the entries the file holds, the others made again on first use
            var = self.plan.vars[name]
            self.entries[name] = {}
            for slot, value in values.items():
                if slot.startswith(name + "[") and slot.endswith("]"):
                    key = tuple(int(k) for k in slot[len(name) + 1 : -1].split(","))
                    entry = np.array(value, dtype=numpy_dtype(var.dtype), order="C").reshape(var.shape)
                    self.entries[name][key] = entry
                    self.keep.append(entry)
        for var in self.plan.vars.values():  # a temporary exists only if the saved state has it
            if var.temp:
                self.words[var.exists_slot] = int(var.name in values)
                self._write(var.slot, 0)  # its assign makes zeros, as the reference's does
        for name, value in values.items():
            var = self.plan.vars.get(name)
            if var is None:
                continue
            if var.kind == "buffer":
                self._write(var.slot, value)
            elif var.kind == "resizable":
                self._set_resizable(var, value)
            elif var.kind == "view":
                self.words[var.slot] = -1
                self.loaded_views[name] = value.copy()
            if var.temp:
                self.words[var.exists_slot] = 1


def address_of(array: np.ndarray | DeviceBuffer) -> int:
    return array.address if isinstance(array, DeviceBuffer) else array.ctypes.data


def _host(array: np.ndarray | DeviceBuffer, key: tuple = ()) -> np.ndarray:
    """A host copy of `array[key]` (of all of it by default)."""
    if isinstance(array, DeviceBuffer):
        return array.get(key)
    return (array[key] if key else array).copy()


def flat_empty(var: VarLayout) -> np.ndarray:
    return np.zeros(0, numpy_dtype(var.dtype))


def _prefix_entries(decl, model) -> dict[tuple[int, ...], str]:
    """The model tensors of a prefix table, by index: those whose name is the pattern with each
    `{index}` replaced by a number, as the reference looks them up (`_pattern_key`)."""
    import re

    names = decl.index_names
    if decl.pattern is None:
        return {}
    pattern = re.escape(decl.pattern.data)
    for name in names:  # (an index is below 2**63: at most 19 digits)
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[0-9]{{1,19}})", 1)
    matcher = re.compile(pattern + r"\Z")
    entries: dict[tuple[int, ...], str] = {}
    for key in model.tensor_names():
        m = matcher.match(key)
        if m is not None:
            index = tuple(int(m.group(n)) for n in names)
            if _pattern_key(decl.pattern.data, names, list(index)) == key:  # not one with leading zeros
                entries[index] = key
    return entries
