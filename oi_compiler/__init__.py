"""oi_compiler: a compiler toolkit for stateful inference programs.

    import oi_compiler as oi
    graph = oi.parse_graph(text, filename="model.oi")   # or oi.Graph.load("model.oi")
    print(graph.module)                                 # the `oi` dialect IR

Names are imported on first use, so `import oi_compiler` (and `oi-opt --help`)
stays fast.
"""

from __future__ import annotations

from importlib import import_module

from oi_compiler.version import __version__  # noqa: F401 - the public version

from oi_compiler.errors import (
    BufferTooSmallError,
    CacheError,
    ExecutionError,
    InternalError,
    InvalidProblemError,
    ModelError,
    OiError,
    OptionError,
    ParseError,
    PassError,
    ScheduleError,
    SourceLoc,
    StateError,
    UnsupportedError,
    VectorWidthError,
    VerifyError,
)

_LAZY = {
    "Graph": "oi_compiler.graph",
    "parse_graph": "oi_compiler.graph",
    "parse_mlir": "oi_compiler.graph",
    "verify_module": "oi_compiler.graph",
    "OpSpec": "oi_compiler.ops.registry",
    "SettingSpec": "oi_compiler.ops.registry",
    "register_op": "oi_compiler.ops.registry",
    "register_setting": "oi_compiler.ops.registry",
    "lookup_op": "oi_compiler.ops.registry",
    "all_ops": "oi_compiler.ops.registry",
    "register_pass": "oi_compiler.passes",
    "registered_passes": "oi_compiler.passes",
    "run_passes": "oi_compiler.passes",
    "make_context": "oi_compiler.ir_context",
    "Model": "oi_compiler.models.model",
    "Simulator": "oi_compiler.runtime.executor",
    "Executor": "oi_compiler.runtime.executor",
    "PageTable": "oi_compiler.runtime.page_pool",
    # Accera-style loop nests
    "Array": "oi_compiler.frontend.loopnest",
    "Nest": "oi_compiler.frontend.loopnest",
    "Role": "oi_compiler.frontend.loopnest",
    "Layout": "oi_compiler.frontend.loopnest",
    "ScalarType": "oi_compiler.frontend.loopnest",
    "MemorySpace": "oi_compiler.frontend.loopnest",
    "Target": "oi_compiler.frontend.loopnest",
    "GridUnit": "oi_compiler.frontend.loopnest",
    "CacheStrategy": "oi_compiler.frontend.loopnest",
    "LoopIndex": "oi_compiler.frontend.loopnest",
    "AcceraCompatWarning": "oi_compiler.frontend.loopnest",
    # the loop-nest autotuner
    "Parameter": "oi_compiler.tuning",
    "create_parameters": "oi_compiler.tuning",
    "create_parameter_grid": "oi_compiler.tuning",
    "parameter_values": "oi_compiler.tuning",
    "tune": "oi_compiler.tuning",
    "TuneResult": "oi_compiler.tuning",
    "TuneError": "oi_compiler.tuning",
}

_ERRORS = [
    "BufferTooSmallError", "CacheError", "ExecutionError", "InternalError", "InvalidProblemError", "ModelError",
    "OiError", "OptionError", "ParseError", "PassError", "ScheduleError", "SourceLoc", "StateError",
    "UnsupportedError", "VectorWidthError", "VerifyError",
]  # fmt: skip
_SUBMODULES = ("kv",)  # `oi.kv`: the KV-serving plans (numpy and the JIT load with it)
__all__ = [*_ERRORS, *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"oi_compiler.{name}")
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oi_compiler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
