"""`plan.build()`: the plan's IR through the loop-nest passes and the llvmlite backend.

    NESTS_PIPELINE = "tile,cache,double-buffer,lower-nests"

The same passes `oi-opt --tile --cache --double-buffer --lower-nests` runs, so a plan built
in Python and its `plan.module` driven from the command line give the same code. A
parallelized plan's function takes the outermost loop's range as two trailing indices; the
returned callable splits the range into one chunk per thread and runs the chunks at once
(ctypes releases the GIL during the native call; each call has its own caches).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from oi_compiler.errors import ExecutionError

NESTS_PIPELINE = "tile,cache,double-buffer,lower-nests"


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


def build_plan(plan, args, name: str) -> NestFunction:
    from xdsl.dialects import func

    from oi_compiler.backend.jit import compile_module
    from oi_compiler.loopnest.attrs import to_py
    from oi_compiler.loopnest.emit_nest import plan_module, plan_params
    from oi_compiler.passes import run_passes

    module = plan_module(plan, name, args)
    params = plan_params(plan, args)
    run_passes(module, NESTS_PIPELINE)
    function = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == name)
    parallel = to_py(function.attributes.get("oi.parallel"))
    return NestFunction(compile_module(module), name, module, parallel, params)
