"""Compiling a bound graph to its native step function, and the host's grow callback.

`compile_step(bound)` runs the lowering pipeline (`pipeline.STEP_PIPELINE`) on a copy of the
graph and JIT-compiles the result; `NativeStep` holds the function, the plan (the state
array's layout) and the error sites. The step calls `oi_grow(state, kind, a, b, c)` when a
table, a resizable buffer or the undo log must grow, and to have a stale view copied out before
a write reaches it (`plan.GROW_*`): one C callback for the process, dispatching on `handle` to
the executor's `NativeState` by the handle in the state's word `HANDLE`.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import threading
import weakref
import dataclasses
from dataclasses import dataclass

from oi_compiler.errors import CacheError, ExecutionError, OiError, SourceLoc
from oi_compiler.lowering.plan import HANDLE, StepPlan, VarPlan
from oi_compiler.runtime.binding import BoundGraph

#: `oi_grow(state, kind, a, b, c)`: the state memref in the C ABI (pointer, offset, size, stride)
_GROW = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, *([ctypes.c_int64] * 7))
_STEP = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                         ctypes.c_int64)  # fmt: skip
_states: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()
_handles = itertools.count(1)
_lock = threading.Lock()
_callback = None


def _grow(words: int, offset: int, size: int, stride: int, kind: int, a: int, b: int, c: int) -> int:
    handle = ctypes.c_int64.from_address(words + 8 * (offset + HANDLE * stride)).value
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
    block: str = ""  # the block the statement is written in (a branch target's name, say)

    def error(self, args: list[int], block: str) -> OiError:
        cls = CacheError if self.kind == "CacheError" else ExecutionError
        error = cls(self.template.format(*args), self.loc)
        error.node = f"block {self.block or block} node {self.node}"
        return error


def parse_site(text: str) -> ErrorSite:
    template, where, node, *block = json.loads(text)
    kind, _, message = template.partition(":")
    loc = None
    if where:
        file, line, col = where.rsplit(":", 2)
        loc = SourceLoc(file, int(line), int(col))
    return ErrorSite(kind, message, loc, node, *block)


class NativeStep:
    """One graph's compiled step: `call(words)` runs it on a state array."""

    def __init__(self, plan: StepLayout, code, symbol: str, sites: list[ErrorSite], block: str, source: str):
        self.plan = plan
        self.code = code  # keeps the machine code alive
        self.sites = sites
        self.block = block
        self.source = source  # "compiled", "memory" or "disk"
        #: the C-ABI wrapper: (allocated, aligned, offset, size, stride) of the state array
        self.native = _STEP(code.engine.get_function_address(symbol))


def compile_step(bound: BoundGraph) -> NativeStep:
    """The step of `bound`, from the step cache when this graph was compiled before.

    The cache key is the bound graph's text with its source locations, its sizes, the
    compiler's own source and the host:
    a hit skips the whole lowering pipeline, not only LLVM (`jit_cache` holds the entry, with
    the error sites and the step's symbol as its `meta`)."""
    from oi_compiler.backend import jit_cache
    from oi_compiler.backend.jit import compile_module, host_target, load_object
    from oi_compiler.pipeline import lower_to_loops

    _install_callback()
    host = host_target()
    key = _step_key(bound, host)
    source, loaded = "memory", jit_cache.memory_get(key)
    if loaded is None:
        source, entry = "disk", jit_cache.disk_get(key)
        if entry is not None and entry.meta:
            meta = json.loads(entry.meta)
            loaded = (load_object(entry, host), meta, StepLayout.from_json(meta["layout"]))
        else:
            source = "compiled"
            module, plan = lower_to_loops(bound.graph.module, bound.sizevars)
            step = next(op for op in module.ops if getattr(op, "sym_name", None) is not None
                        and op.sym_name.data == "step")  # fmt: skip
            compiled = compile_module(module)
            layout = StepLayout.of(plan)
            meta = {"symbol": compiled.symbol("step"), "sites": [s.data for s in step.attributes["oi.error_sites"]],
                    "layout": layout.to_json()}  # fmt: skip
            code = compiled.loaded
            jit_cache.disk_put(key, jit_cache.CacheEntry(code.object_code, code.optimized_ir, json.dumps(meta)))
            loaded = (code, meta, layout)
        jit_cache.memory_put(key, loaded)
    code, meta, layout = loaded
    sites = [ErrorSite("", "", None, "")] + [parse_site(s) for s in meta["sites"]]
    return NativeStep(layout, code, meta["symbol"], sites, layout.block, source)


@dataclass
class StepLayout:
    """What the host needs of a `StepPlan`: the variables' kinds and words, kept with the code."""

    vars: dict[str, VarPlan]
    words: int
    block: str

    @classmethod
    def of(cls, plan: StepPlan) -> StepLayout:
        return cls(dict(plan.vars), plan.words, plan.entry.block_name)

    def size_words(self) -> list[int]:
        """Words that are persistent state (table sizes, @auto_dim counts): restored after a failed step."""
        words = [v.size_slot(d) for v in self.vars.values() if v.kind == "table" for d in range(v.rank)]
        return words + [v.count_base + d for v in self.vars.values() if v.kind == "auto" for d in range(v.rank)]

    def to_json(self) -> dict:
        return {"words": self.words, "block": self.block, "vars": [dataclasses.asdict(v) for v in self.vars.values()]}

    @classmethod
    def from_json(cls, data: dict) -> StepLayout:
        plans = {}
        for v in data["vars"]:
            v = {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}
            plans[v["name"]] = VarPlan(**v)
        return cls(plans, data["words"], data["block"])


_fingerprint: str | None = None


def compiler_fingerprint() -> str:
    """A hash of oi_compiler's own source files: a changed compiler never reuses old steps."""
    global _fingerprint
    if _fingerprint is None:
        import hashlib
        from pathlib import Path

        import oi_compiler

        digest = hashlib.sha256()
        root = Path(oi_compiler.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def _step_key(bound: BoundGraph, host) -> str:
    import hashlib

    import io

    from xdsl.printer import Printer

    text = io.StringIO()  # with locations: the error sites the entry keeps name the source
    Printer(stream=text, print_debuginfo=True).print_op(bound.graph.module)
    digest = hashlib.sha256()
    for part in ("oi-step", text.getvalue(), json.dumps(sorted(bound.sizevars.items())),
                 compiler_fingerprint(), host.triple, host.cpu, host.features):  # fmt: skip
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
