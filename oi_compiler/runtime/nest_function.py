"""`plan.build()`: the plan's IR through its stages and a backend, as a function of numpy arrays.

    oi-opt nest.mlir --tile --cache --double-buffer --lower-nests -t llvm            # CPU plans
    oi-opt nest.mlir --tile --cache --double-buffer --map-gpu --lower-nests -t ptx   # GPU plans

The same passes `oi-opt --tile --cache --double-buffer --lower-nests` runs, so a plan built
in Python and its `plan.module` driven from the command line give the same code. A
parallelized plan's function takes the outermost loop's range as two trailing indices; the
returned callable splits the range into one chunk per thread and runs the chunks at once
(ctypes releases the GIL during the native call; each call has its own caches). A GPU plan's
function launches its kernel through `runtime/cuda.py`, or runs it in the CPU emulation with
`OI_GPU_EMULATE=1` (`runtime/gpu_emulation.py`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from oi_compiler.errors import ExecutionError

class NestFunction:
    """A compiled nest: call it on numpy arrays (in place for INPUT_OUTPUT arrays)."""

    def __init__(self, compiled, name: str, lowered, parallel: dict | None, arrays):
        self.compiled = compiled
        self.name = name
        self.lowered = lowered  # the module after the pipeline, what the backend translated
        self.parallel = parallel
        self.arrays = arrays
        self._fn = compiled.function(name)

    @property
    def llvm_ir(self) -> str:
        return self.compiled.llvm_ir

    @property
    def asm(self) -> str:
        return self.compiled.asm

    def __call__(self, *arrays: np.ndarray) -> None:
        if len(arrays) != len(self.arrays):
            names = ", ".join(a.name for a in self.arrays)
            raise ExecutionError(f"{self.name} takes {len(self.arrays)} arrays ({names}), got {len(arrays)}")
        if not self.parallel:
            self._fn(*arrays)
            return
        extent, step = self.parallel["extent"], self.parallel["step"]
        trips = math.ceil(extent / step)
        threads = max(1, min(int(self.parallel["threads"]), trips))
        bounds = [min(extent, (trips * t // threads) * step) for t in range(threads + 1)]
        chunks = [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if lo < hi]
        if len(chunks) == 1:
            self._fn(*arrays, *chunks[0])
            return
        with ThreadPoolExecutor(len(chunks)) as pool:
            for future in [pool.submit(self._fn, *arrays, lo, hi) for lo, hi in chunks]:
                future.result()


def build_cpu(module, name: str, arrays) -> NestFunction:
    """A nest's IR (`plan.module`) through `pipeline.NEST_STAGES` and the JIT; `arrays` are its parameters."""
    from xdsl.dialects import func

    from oi_compiler.backend.jit import compile_module
    from oi_compiler.loopnest.attrs import to_py
    from oi_compiler.pipeline import NEST_STAGES, run_stages

    run_stages(NEST_STAGES[:-1], module)  # the last stage, llvm, is compile_module's
    function = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == name)
    parallel = to_py(function.attributes.get("oi.parallel"))
    return NestFunction(compile_module(module), name, module, parallel, arrays)


def map_to_gpu(module) -> None:
    """A GPU plan's IR through `GPU_NEST_STAGES` up to PTX, in place: a gpu.module with one mapped kernel."""
    from oi_compiler.pipeline import GPU_NEST_STAGES, run_stages

    run_stages(GPU_NEST_STAGES[:-1], module)


class GpuNestFunction:
    """A compiled GPU plan: call it on numpy arrays (copied to the device and back) or device
    arrays (`__cuda_array_interface__`: CuPy, PyTorch; used in place). With `OI_GPU_EMULATE=1`
    the same mapped kernel runs on the CPU (runtime/gpu_emulation.py), on numpy arrays."""

    def __init__(self, module, ptx: str, name: str, arrays, arch: str):
        from xdsl.dialects import gpu

        from oi_compiler.loopnest.gpu_mapping import launch_of

        self.module = module  # the mapped kernel's gpu.module, what the PTX was made from
        self.ptx = ptx
        self.name = name
        self.arrays = arrays
        self.arch = arch
        kernel = next(op for op in module.walk() if isinstance(op, gpu.FuncOp) and op.sym_name.data == name)
        self.grid, self.block = launch_of(kernel)
        self._device_function = None

    def __call__(self, *arrays) -> None:
        from oi_compiler.runtime.gpu_emulation import emulate, emulation_requested

        if len(arrays) != len(self.arrays):
            names = ", ".join(a.name for a in self.arrays)
            raise ExecutionError(f"{self.name} takes {len(self.arrays)} arrays ({names}), got {len(arrays)}")
        if emulation_requested():
            emulate(self.module, self.name, self.grid, self.block, *arrays)
            return
        if self._device_function is None:
            from oi_compiler.runtime import cuda

            signature = cuda.kernel_signature(self.module, self.name)
            self._device_function = cuda.load_module(self.ptx).function(self.name, signature)
        self._device_function(*arrays, grid=self.grid, block=self.block)


def build_gpu(module, name: str, arrays, arch: str) -> GpuNestFunction:
    """A GPU plan's IR (`plan.module`) mapped to a kernel and emitted as PTX for `arch`."""
    from oi_compiler.backend.ptx import NvptxTarget, emit_ptx

    map_to_gpu(module)
    return GpuNestFunction(module, emit_ptx(module, NvptxTarget(arch)), name, arrays, arch)
