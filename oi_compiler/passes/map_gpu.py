"""`--map-gpu`: each GPU plan's scheduled `oi.nest` becomes a kernel over the grid.

Bound loops (`oi.plan.bind`) become block and thread indices, caches become the block's shared
memory or each thread's registers with barriers around shared fills, and the nest's function
moves into a `gpu.module` as a `gpu.func ... kernel` with its `oi.launch = {grid, block}`
(loopnest/gpu_mapping.py). Runs after `--tile`, `--cache` and `--double-buffer`, before
`--lower-nests`; nests of CPU plans are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class MapGpu(ModulePass):
    """Map GPU plans' loop nests to kernels: bound loops to block/thread ids, shared and private caches, barriers"""

    name = "map-gpu"

    def apply(self, ctx, module) -> None:
        from oi_compiler.loopnest.gpu_mapping import map_nest
        from oi_compiler.passes.tile import for_each_nest

        for_each_nest(module, map_nest, scheduled=True)
