"""Compiling a bound graph to its native step function, and the host's grow callback.

`compile_step(bound)` runs the lowering pipeline (`pipeline.STEP_STAGES`) on a copy of the
graph and JIT-compiles the result; `NativeStep` holds the function, the state array's layout
(`StateLayout`, read from the lowered module) and the error sites. The step calls `oi_grow(state, kind, a, b, c)` when a
table, a resizable buffer or the undo log must grow, and to have a stale view copied out before
a write reaches it (`analysis.GROW_*`): one C callback for the process, dispatching on `handle` to
the executor's `NativeState` by the handle in the state's word `HANDLE`.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import threading
import weakref
from dataclasses import dataclass

from oi_compiler.errors import CacheError, ExecutionError, OiError, SourceLoc
from oi_compiler.lowering.analysis import HANDLE
from oi_compiler.lowering.state_layout import StateLayout
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


    @classmethod
    def of(cls, attr) -> ErrorSite:
        """The host's form of an `#oi_table.site<...>`."""
        where = attr.where
        return cls(attr.error_class.data, attr.template.data, SourceLoc(*where) if where else None,
                   attr.node.data, attr.block.data)  # fmt: skip

    def to_json(self) -> list:
        loc = self.loc
        return [self.kind, self.template, [loc.filename, loc.line, loc.column] if loc else None, self.node, self.block]

    @classmethod
    def from_json(cls, data: list) -> ErrorSite:
        kind, template, where, node, block = data
        return cls(kind, template, SourceLoc(*where) if where else None, node, block)


class NativeStep:
    """One graph's compiled step: `call(words)` runs it on a state array."""

    def __init__(self, plan: StateLayout, code, symbol: str, sites: list[ErrorSite], block: str, source: str,
                 launches: tuple = ()):  # fmt: skip
        self.plan = plan
        #: `device="cuda"`: the op kernel launches the step calls the host for, by number (`op_launches.LaunchSpec`)
        self.launches = launches
        self.code = code  # keeps the machine code alive
        self.sites = sites
        self.block = block
        self.source = source  # "compiled", "memory" or "disk"
        #: the C-ABI wrapper: (allocated, aligned, offset, size, stride) of the state array
        self.native = _STEP(code.engine.get_function_address(symbol))


def compile_step(bound: BoundGraph, device: str = "cpu") -> NativeStep:
    """The step of `bound`, from the step cache when this graph was compiled before.

    `device="cuda"` compiles `pipeline.CUDA_STEP_STAGES`: each op's nest is a call of the host,
    which launches the op's GPU kernels (`runtime/op_launches.py` binds those calls' symbols before
    the step is loaded).

    The cache key is the bound graph's text with its source locations, its sizes, the
    compiler's own source and the host:
    a hit skips the whole lowering pipeline, not only LLVM (`compile_cache` holds the entry, with
    the error sites and the step's symbol as its `meta`)."""
    from oi_compiler.gc_pause import paused_collection

    with paused_collection():
        return _compile_step(bound, device)


def _compile_step(bound: BoundGraph, device: str) -> NativeStep:
    from oi_compiler.backend import compile_cache
    from oi_compiler.backend.jit import compile_module, host_target, load_object
    from oi_compiler.dialects.oi_table import LAYOUT_ATTR, SITES_ATTR
    from oi_compiler.passes.launch_op_kernels import LAUNCHES_ATTR
    from oi_compiler.pipeline import lower_step

    _install_callback()
    host = host_target()
    attributes = _metadata_settings(bound)
    key = _step_key(bound, host, attributes, device)
    source, loaded = "memory", compile_cache.memory_get(key)
    if loaded is None:
        source, entry = "disk", compile_cache.disk_get(key)
        if entry is not None and entry.meta:
            meta = json.loads(entry.meta)
            sites = [ErrorSite.from_json(s) for s in meta["sites"]]
            launches = _bound_launches(meta.get("launches", []))
            loaded = (load_object(entry, host), meta["symbol"], StateLayout.from_json(meta["layout"]), sites, launches)
        else:
            source = "compiled"
            module = lower_step(bound.graph.module, bound.sizevars, attributes=attributes, device=device)
            step = next(op for op in module.ops if getattr(op, "sym_name", None) is not None
                        and op.sym_name.data == "step")  # fmt: skip
            layout = StateLayout.from_attr(module.attributes[LAYOUT_ATTR])
            sites = [ErrorSite.of(s) for s in step.attributes.get(SITES_ATTR, ())]  # none: a step that cannot fail
            launch_texts = [a.data for a in module.attributes.get(LAUNCHES_ATTR, ())]
            launches = _bound_launches(launch_texts)  # before the JIT resolves the step's symbols
            compiled = compile_module(module)  # the pipeline's last stage (llvm), then O2 and the JIT
            meta = {"symbol": compiled.symbol("step"), "sites": [s.to_json() for s in sites], "layout": layout.to_json(),
                    "launches": launch_texts}  # fmt: skip
            code = compiled.loaded
            compile_cache.disk_put(key, compile_cache.CacheEntry(code.object_code, code.optimized_ir, json.dumps(meta)))
            loaded = (code, meta["symbol"], layout, sites, launches)
        compile_cache.memory_put(key, loaded)
    code, symbol, layout, sites, launches = loaded
    return NativeStep(layout, code, symbol, [ErrorSite("", "", None, ""), *sites], layout.block, source, launches)


def _bound_launches(texts: list[str]) -> tuple:
    """The op kernel launches of a cuda step, their host callbacks bound (`op_launches.bind_symbols`)."""
    if not texts:
        return ()
    from oi_compiler.runtime.op_launches import LaunchSpec, bind_symbols

    launches = tuple(LaunchSpec.from_json(t) for t in texts)
    bind_symbols(launches)
    return launches


_fingerprint: str | None = None


def compiler_fingerprint() -> str:
    """A hash of oi_compiler's own source files: a changed compiler never reuses old steps."""
    global _fingerprint
    if _fingerprint is None:
        import hashlib
        from pathlib import Path

        digest = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]  # the oi_compiler package
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def _metadata_settings(bound: BoundGraph) -> dict[str, str]:
    """The model's metadata strings that op settings name: the reference reads those first."""
    from xdsl.dialects.builtin import SymbolRefAttr

    from oi_compiler.dialects.oi import NamedOp

    out = {}
    for op in bound.graph.module.walk():
        if isinstance(op, NamedOp):
            for value in op.settings.data.values():
                if isinstance(value, SymbolRefAttr):
                    text = bound.model.metadata_string(value.root_reference.data)
                    if text is not None:
                        out[value.root_reference.data] = text
    return out


def _step_key(bound: BoundGraph, host, attributes: dict[str, str] | None = None, device: str = "cpu") -> str:
    import io

    from xdsl.printer import Printer

    from oi_compiler.backend import compile_cache

    text = io.StringIO()  # with locations: the error sites the entry keeps name the source
    Printer(stream=text, print_debuginfo=True).print_op(bound.graph.module)
    return compile_cache.cache_key("oi-step", text.getvalue(), json.dumps(sorted(bound.sizevars.items())),
                                   compiler_fingerprint(), host.triple, host.cpu, host.features,
                                   json.dumps(sorted((attributes or {}).items())),
                                   *(("device=" + device,) if device != "cpu" else ()))  # fmt: skip
