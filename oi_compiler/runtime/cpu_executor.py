"""`device="cpu"`: an executor whose steps run the graph's compiled step function.

Same API and results as the reference executor (`executor.Executor`): inputs are copied into
the host buffers the native code reads, outputs are copied out, a failed step raises the
reference's error and leaves persistent state as it was. Traces and per-node timers need the
reference executor (the compiled step is one function); `step()` returns None.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from oi_compiler.boundary import internal_error, stage
from oi_compiler.dtypes import numpy_dtype
from oi_compiler.errors import ExecutionError, OiError, StateError, exception_summary
from oi_compiler.lowering.analysis import is_internal
from oi_compiler.runtime.executor import Executor, insert_mapping, variable_name
from oi_compiler.runtime.native import NativeState
from oi_compiler.runtime.page_pool import PageTable
from oi_compiler.runtime.tables import PersistentStore


class CpuExecutor(Executor):
    def _native_state(self) -> NativeState:
        """New buffers for the compiled step's state (`restore` fills them before they replace the old)."""
        return NativeState(self.bound, self.sim.native)

    def _fresh_state(self) -> None:
        self.native = self._native_state()
        self.interpreter = self.native.reader  # its temp_types name the `assign` temporaries

    @cached_property
    def _exact_inputs(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Dynamic variables by name: the numpy dtype and shape an inserted array needs no conversion for."""
        return {name: (np.dtype(numpy_dtype(d.dtype)), tuple(self.bound.shapes[name]))
                for name, d in self.bound.decls.items() if d.memory == "dynamic"}  # fmt: skip

    # --- inputs and steps --------------------------------------------------------------
    def insert(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> CpuExecutor:
        try:  # the hot path: a bare try, no context manager
            items = {**insert_mapping(values), **named} if values is not None else named
            exact = self._exact_inputs
            converted = [  # all or none; an array of the declared dtype and shape is copied once, into the buffer
                (name, value) if type(value) is np.ndarray and exact.get(name) == (value.dtype, value.shape)
                else (name, self._converted(name, value))
                for name, value in items.items()
            ]  # fmt: skip
            with self.lock:
                for name, array in converted:
                    self.native.insert(self.native.plan.vars[name], array)
        except OiError:
            raise
        except Exception as e:  # a bug: one diagnostic
            raise internal_error(e, "insert") from e
        return self

    def input_buffer(self, name: str) -> np.ndarray:
        """The host buffer the compiled step reads for dynamic variable `name`, writable."""
        with stage("insert"):
            self._dynamic_decl(name)
            var = self.native.plan.vars[name]
            if var.kind != "buffer":  # a cache.read destination too: the step moves its buffer
                raise ExecutionError(f"inputs[{name!r}]: {name} is also written by a cache.read, which moves its "
                                     "buffer; use insert")  # fmt: skip
            with self.lock:
                return self.native.rebind(var).reshape(self.bound.shapes[name])

    def step(self) -> None:
        with self.lock:  # one native step at a time: the step and its grow callbacks share the state
            try:
                self.native.run()
            except OiError:
                raise
            except Exception as e:  # a bug (in the host's grow callback, say): one diagnostic
                raise internal_error(e, "step") from e
            self.steps += 1
        return None

    run_step = step

    # --- outputs -------------------------------------------------------------------------
    def fetch(self, name: str) -> np.ndarray:
        try:  # a hot path: a bare try, no context manager
            var = self.native.plan.vars.get(variable_name(name))
            if var is None or is_internal(name) or not self.native.exists(var):
                raise ExecutionError(f"unknown variable: {name}")
            return self.native.value(var)
        except OiError:
            raise
        except Exception as e:  # a bug: one diagnostic
            raise internal_error(e, "fetch") from e

    def state(self, name: str) -> np.ndarray:
        with stage("state"):
            var = self._persistent_var(name)
            value = self.native.value(var)
            value.flags.writeable = False
            return value

    def _persistent_var(self, name: str):
        var = self.native.plan.vars.get(variable_name(name))
        if var is None or name not in self.bound.decls:
            raise ExecutionError(f"unknown variable: {name}")
        if var.memory != "persistent":
            raise ExecutionError(f"{name} is not persistent ({var.memory})")
        return var

    def table_sizes(self, name: str) -> list[int]:
        with stage("state"):
            var = self._persistent_var(name)
            if var.kind == "table":
                return self.native.sizes(var)
            return self.native.counts(var) if var.kind == "auto" else []

    def page_table(self, name: str) -> PageTable:
        with stage("state"):
            var = self._persistent_var(name)
            if var.kind != "table" or not var.page:
                raise ExecutionError(f"page_table: {name} is not a @paged table")
            return self.native.pools[name].csr()

    def table_nbytes(self, name: str) -> int:
        with stage("state"):
            var = self._persistent_var(name)
            if var.kind != "table":
                raise ExecutionError(f"table_nbytes: {name} is not a table")
            if var.page:
                return self.native.pools[name].nbytes()
            return self.native.arrays[var.data_slot].nbytes + self.native.arrays[var.present_slot].nbytes

    # --- checkpoints (the state in the reference executor's form) --------------------------
    @property
    def store(self) -> PersistentStore:
        return self.native.export()[0]

    @property
    def values(self) -> dict[str, np.ndarray]:
        return self.native.export()[1]

    def restore(self, store: PersistentStore, values: dict[str, np.ndarray], steps: int) -> None:
        """Rebuild the state in new buffers; they replace the old ones only once all are filled."""
        try:
            native = self._native_state()
            native.restore(store, values)
        except (ExecutionError, MemoryError, ValueError) as e:  # init_array's out of memory, numpy's
            reason = e.message if isinstance(e, OiError) else exception_summary(e)
            raise StateError(f"cannot restore the state on device '{self.sim.device}': {reason}") from None
        self.native, self.interpreter = native, native.reader
        self.steps = steps
