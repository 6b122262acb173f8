"""Compiling a bound graph to its native step function, and the host's grow callback.

`compile_step(bound)` runs the lowering pipeline (`pipeline.STEP_PIPELINE`) on a copy of the
graph and JIT-compiles the result; `NativeStep` holds the function, the plan (the state
array's layout) and the error sites. The step calls `oi_grow(handle, kind, a, b, c)` when a
table, a resizable buffer or the undo log must grow: one C callback for the process,
dispatching on `handle` to the executor's `NativeState`.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import threading
import weakref
from dataclasses import dataclass

from oi_compiler.errors import CacheError, ExecutionError, OiError, SourceLoc
from oi_compiler.lowering.plan import StepPlan
from oi_compiler.runtime.binding import BoundGraph

_GROW = ctypes.CFUNCTYPE(ctypes.c_int64, *([ctypes.c_int64] * 5))
_STEP = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                         ctypes.c_int64)  # fmt: skip
_states: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()
_handles = itertools.count(1)
_lock = threading.Lock()
_callback = None


def _grow(handle: int, kind: int, a: int, b: int, c: int) -> int:
    state = _states.get(handle)
    if state is None:
        return 1
    try:
        state.grow(kind, a, b, c)  # type: ignore[attr-defined]
        return 0
    except BaseException as e:  # noqa: BLE001 - reported by the step's caller, never lost in C
        state.host_error = e  # type: ignore[attr-defined]
        return 1


def register_state(state) -> int:
    """A handle the step passes back to `oi_grow` for `state` (held weakly)."""
    _install_callback()
    handle = next(_handles)
    _states[handle] = state
    return handle


def _install_callback() -> None:
    global _callback
    with _lock:
        if _callback is None:
            import llvmlite.binding as llvm

            _callback = _GROW(_grow)
            llvm.add_symbol("oi_grow", ctypes.cast(_callback, ctypes.c_void_p).value)


@dataclass
class ErrorSite:
    kind: str
    template: str
    loc: SourceLoc | None
    node: str

    def error(self, args: list[int], block: str) -> OiError:
        cls = CacheError if self.kind == "CacheError" else ExecutionError
        error = cls(self.template.format(*args), self.loc)
        error.node = f"block {block} node {self.node}"
        return error


def parse_site(text: str) -> ErrorSite:
    template, where, node = json.loads(text)
    kind, _, message = template.partition(":")
    loc = None
    if where:
        file, line, col = where.rsplit(":", 2)
        loc = SourceLoc(file, int(line), int(col))
    return ErrorSite(kind, message, loc, node)


class NativeStep:
    """One graph's compiled step: `call(words)` runs it on a state array."""

    def __init__(self, plan: StepPlan, compiled, sites: list[ErrorSite], block: str):
        self.plan = plan
        self.compiled = compiled  # keeps the machine code alive
        self.sites = sites
        self.block = block
        self._native = _STEP(compiled.address("step"))

    def call(self, words) -> int:
        address = words.ctypes.data
        return self._native(address, address, 0, len(words), 1)


def compile_step(bound: BoundGraph) -> NativeStep:
    from oi_compiler.backend.jit import compile_module
    from oi_compiler.pipeline import lower_to_loops

    _install_callback()
    module, plan = lower_to_loops(bound.graph.module, bound.sizevars)
    function = next(op for op in module.ops if getattr(op, "sym_name", None) is not None
                    and op.sym_name.data == "step")  # fmt: skip
    sites = [ErrorSite("", "", None, "")] + [parse_site(s.data) for s in function.attributes["oi.error_sites"]]
    return NativeStep(plan, compile_module(module), sites, plan.entry.block_name)
