"""Run a GPU kernel on the CPU: `--gpu-emulate`, then the CPU JIT.

    from oi_compiler.runtime.gpu_emulation import emulate
    emulate(module, "saxpy", grid=(4,), block=(64,), x, y, 2.0)   # x, y: numpy arrays, written in place

`module` is a `builtin.module` holding a `gpu.module` (an xDSL `ModuleOp` or its text); `grid`
and `block` have 1 to 3 sizes (missing ones are 1). The pass runs on a copy of the module, whose
kernels are compiled together and cached per module text, so launching a kernel of the same module
again costs one native call. With `OI_GPU_EMULATE=1` the GPU launchers take this path instead of a device.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from oi_compiler.errors import ExecutionError

_cache: dict[str, tuple[list[str], object]] = {}  # module text -> (its kernels, compiled)
_lock = threading.Lock()


def emulation_requested() -> bool:
    """Whether `OI_GPU_EMULATE` asks for the CPU emulation (`1`, `true`, `yes`, `on`)."""
    return os.environ.get("OI_GPU_EMULATE", "").strip().lower() in ("1", "true", "yes", "on")


def _sizes(what: str, sizes: Sequence[int] | int) -> tuple[int, int, int]:
    if isinstance(sizes, int):
        sizes = (sizes,)
    sizes = tuple(sizes)
    if not 1 <= len(sizes) <= 3:
        raise ExecutionError(f"gpu emulation: {what} takes 1 to 3 sizes, got {len(sizes)}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) and not hasattr(s, "__index__"):
            raise ExecutionError(f"gpu emulation: {what} sizes must be integers, got {s!r}")
        if int(s) < 0:
            raise ExecutionError(f"gpu emulation: {what} sizes must not be negative, got {tuple(sizes)}")
    return (*(int(s) for s in sizes), *(1,) * (3 - len(sizes)))


def emulated_function(module, kernel: str):
    """The CPU function of `kernel` (`JitFunction` taking the kernel's arguments and then the six
    sizes grid x, y, z, block x, y, z). The module's kernels are compiled together, once per
    module text."""
    from oi_compiler.graph import parse_mlir

    text = module if isinstance(module, str) else str(module)
    with _lock:
        compiled = _cache.get(text)
    if compiled is None:
        from oi_compiler.backend.jit import compile_module
        from oi_compiler.boundary import stage
        from oi_compiler.ir_context import make_context
        from oi_compiler.passes.gpu_emulate import GpuEmulate, kernel_names

        copy = parse_mlir(text, "<gpu-emulate>") if isinstance(module, str) else module.clone()
        names = kernel_names(copy)
        with stage("gpu-emulate"):
            GpuEmulate().apply(make_context(), copy)
            copy.verify()
        compiled = (names, compile_module(copy))
        with _lock:
            _cache[text] = compiled
    names, jit_module = compiled
    if kernel not in names:
        known = ", ".join(f"@{n}" for n in names) or "none"
        raise ExecutionError(f"gpu emulation: no kernel @{kernel} (kernels: {known})")
    return jit_module.function(kernel)


def emulate(module, kernel: str, grid: Sequence[int] | int, block: Sequence[int] | int, *args) -> None:
    """Run `kernel` of `module` over `grid` x `block` on the CPU; numpy array arguments are
    modified in place, as the kernel writes them on a GPU."""
    grid3, block3 = _sizes("grid", grid), _sizes("block", block)
    emulated_function(module, kernel)(*args, *grid3, *block3)


def clear_cache() -> None:
    """Forget the compiled kernels."""
    with _lock:
        _cache.clear()
