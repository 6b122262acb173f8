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

import dataclasses
import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from oi_compiler.errors import ExecutionError

class NestFunction:
    """A compiled nest: call it on numpy arrays (in place for INPUT_OUTPUT arrays)."""

    def __init__(self, compiled, name: str, module, parallel: dict | None, arrays, lowered=None):
        self.compiled = compiled
        self.name = name
        self.module = module  # the plan's IR before the pipeline (`plan.module`)
        self._lowered = lowered
        self.parallel = parallel
        self.arrays = arrays
        self._fn = compiled.function(name)

    @property
    def lowered(self):
        """The module after the pipeline, what the backend translated (rebuilt on first use when
        the code came from the compile cache, which skips the passes)."""
        if self._lowered is None:
            from oi_compiler.pipeline import NEST_STAGES, run_stages

            lowered = self.module.clone()
            run_stages(NEST_STAGES[:-1], lowered)
            self._lowered = lowered
        return self._lowered

    @property
    def llvm_ir(self) -> str:
        return self.compiled.llvm_ir

    @property
    def asm(self) -> str:
        return self.compiled.asm

    def __call__(self, *arrays: np.ndarray) -> None:
        if len(arrays) != len(self.arrays):
            names = ", ".join(getattr(a, "label", a.name) for a in self.arrays)
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


def build_cpu(module, name: str, arrays, vector_bytes: int | None = None) -> NestFunction:
    """A nest's IR (`plan.module`) through `pipeline.NEST_STAGES` and the JIT; `arrays` are its parameters.
    `vector_bytes` (the plan target's): the vector width LLVM is told to prefer, for this compile only.

    A plan built before (the same IR, compiler, host and vector width) comes from the compile
    cache, in memory or on disk, without running the passes: the key is the plan's IR text, not
    the LLVM IR."""
    from xdsl.dialects import func

    from oi_compiler.backend import compile_cache
    from oi_compiler.backend.jit import CompiledModule, compile_module, host_target, load_object
    from oi_compiler.loopnest.attrs import to_py
    from oi_compiler.pipeline import NEST_STAGES, run_stages

    host = host_target().with_vector_bytes(vector_bytes)  # its features name the width: so does the key
    key = _nest_key(module, host)
    source, hit = "memory", compile_cache.memory_get(key)
    if hit is None:
        source, entry = "disk", compile_cache.disk_get(key)
        meta = _read_meta(entry)
        if meta is not None:
            hit = (load_object(entry, host), meta)
    if hit is not None:
        code, meta = hit
        compiled = CompiledModule(code, _abis_from_json(meta["abis"]), source, host, meta["symbols"])
        return NestFunction(compiled, name, module, meta["parallel"], arrays)
    lowered = module.clone()
    run_stages(NEST_STAGES[:-1], lowered)  # the last stage, llvm, is compile_module's
    function = next(op for op in lowered.ops if isinstance(op, func.FuncOp) and op.sym_name.data == name)
    parallel = to_py(function.attributes.get("oi.parallel"))
    compiled = compile_module(lowered, host)
    meta = {"abis": _abis_to_json(compiled.abis), "symbols": compiled._symbols, "parallel": parallel}
    code = compiled.loaded
    compile_cache.disk_put(key, compile_cache.CacheEntry(code.object_code, code.optimized_ir, json.dumps(meta)))
    compile_cache.memory_put(key, (code, meta))
    return NestFunction(compiled, name, module, parallel, arrays, lowered)


def _nest_key(module, host) -> str:
    """The plan's IR, the compiler's own source and the host."""
    import io

    from xdsl.printer import Printer

    from oi_compiler.backend import compile_cache
    from oi_compiler.runtime.native_step import compiler_fingerprint

    text = io.StringIO()
    Printer(stream=text).print_op(module)
    return compile_cache.cache_key("oi-nest", text.getvalue(), compiler_fingerprint(), host.triple, host.cpu,
                                   host.features)  # fmt: skip


def _read_meta(entry) -> dict | None:
    """An entry's ABIs, symbols and parallel split; None when it has none or they do not parse."""
    if entry is None or not entry.meta:
        return None
    try:
        meta = json.loads(entry.meta)
        _abis_from_json(meta["abis"])
        return meta if isinstance(meta["symbols"], dict) and "parallel" in meta else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _abis_to_json(abis) -> dict:
    return {name: dataclasses.asdict(abi) for name, abi in abis.items()}


def _abis_from_json(data: dict) -> dict:
    from oi_compiler.backend.llvm_abi import FunctionAbi, MemRefParam, ScalarParam

    def param(p: dict):
        if "shape" not in p:
            return ScalarParam(p["name"], p["element"])
        strides = None if p["strides"] is None else tuple(p["strides"])
        return MemRefParam(p["name"], p["element"], tuple(p["shape"]), strides, p["offset"], p["written"],
                           p.get("may_alias", False))  # fmt: skip

    return {name: FunctionAbi(a["name"], tuple(param(p) for p in a["params"]),
                              None if a["result"] is None else param(a["result"]))
            for name, a in data.items()}  # fmt: skip


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
            names = ", ".join(getattr(a, "label", a.name) for a in self.arrays)
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
