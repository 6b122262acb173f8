"""The CPU backend: xDSL func/scf/memref/arith/math IR -> LLVM IR -> native code, called on numpy.

    from oi_compiler.backend import compile_module
    compiled = compile_module(module)          # an xDSL ModuleOp
    compiled.function("add")(a, b, out)        # numpy arrays and Python scalars
    print(compiled.llvm_ir, compiled.asm)      # optimised LLVM IR, host assembly

Stages, in order: `llvm.translate` (one dispatch table over `llvm_arith`, `llvm_memref`,
`llvm_scf`; the ABI in `llvm_abi`), then `jit.compile_module` (O2 with the loop and SLP
vectorisers for the host CPU, an object file, MCJIT), with `compile_cache` keeping object files by IR
hash in memory and on disk. docs/backend.md describes the ABI, the ops and the cache.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "translate": "oi_compiler.backend.llvm",
    "llvm_ir_text": "oi_compiler.backend.llvm",
    "compile_module": "oi_compiler.backend.jit",
    "CompiledModule": "oi_compiler.backend.jit",
    "clear_cache": "oi_compiler.backend.compile_cache",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oi_compiler.backend' has no attribute {name!r}")
